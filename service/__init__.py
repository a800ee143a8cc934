"""fund-sentinel service: the thin Faust shell around the pure detectors."""
