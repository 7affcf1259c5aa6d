# Treue: one image for every process of the production layout (API, worker, migrations, jobs).
# Build: docker build -t treue .     Run: see compose.yaml and docs/operations.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# pg_dump/pg_restore for `treue backup` against PostgreSQL
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# the pinned dependencies first: this layer is rebuilt only when the lock file changes
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-deps .

RUN useradd --system --create-home --home-dir /home/treue --uid 10001 treue \
    && mkdir -p /data && chown treue /data
USER treue
WORKDIR /data

ENV TREUE_LOG_FORMAT=json \
    TREUE_LOG_LEVEL=INFO
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"

ENTRYPOINT ["treue"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--no-scheduler"]
