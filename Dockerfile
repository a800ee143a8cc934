# fund-sentinel worker image (docker-compose.yml). Tables live in RocksDB (store rocksdb://):
# faust-streaming's "rocksdict" extra installs rocksdict (RocksDB 8 bindings, prebuilt wheels),
# which Faust's rocksdb:// store uses when python-rocksdb (the "rocksdb" extra) is absent.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first (cached until pyproject.toml changes), then the code.
COPY pyproject.toml README.md ./
RUN mkdir -p service detectors \
    && touch service/__init__.py detectors/__init__.py \
    && pip install . "faust-streaming[rocksdict]>=0.15.3,<0.16" \
    && pip uninstall -y fund-sentinel \
    && rm -rf service detectors build *.egg-info

COPY service ./service
COPY detectors ./detectors
RUN pip install --no-deps . \
    && python -c "import rocksdict, service.cli, detectors" \
    && rm -rf build *.egg-info

RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin fund-sentinel \
    && mkdir -p /var/lib/fund-sentinel \
    && chown fund-sentinel /var/lib/fund-sentinel
USER fund-sentinel
WORKDIR /var/lib/fund-sentinel

EXPOSE 6066
CMD ["fund-sentinel", "worker"]
