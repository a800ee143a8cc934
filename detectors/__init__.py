"""The pure core of fund-sentinel: domain types and detectors.

Imports only the standard library, numpy and scipy. No Faust, no Kafka, no I/O.
"""
