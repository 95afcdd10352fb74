# syntax=docker/dockerfile:1
# Inventory (库存管理) container image: wheels are built in one stage, the slim runtime gets only the
# virtualenv, the code and the compiled catalogues. Dependabot keeps both (identical) base tags fresh.

FROM python:3.11.15-slim-trixie AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements.lock ./
# Wheels first (the only step that may compile), then a virtualenv from those wheels alone; both
# check every file against the hashes in the lock (`make lock` writes it).
RUN pip wheel --no-cache-dir --require-hashes --wheel-dir /wheels -r requirements.lock \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes --no-index --find-links /wheels -r requirements.lock
# .dockerignore is an allow-list: the app, templates, static assets, translations and migrations.
COPY . .
# Gettext catalogues are compiled from the .po sources on every build (stale .mo files stay out).
RUN /opt/venv/bin/pybabel compile --statistics -d translations \
    && mkdir -p instance static \
    && /opt/venv/bin/pip uninstall --yes pip

FROM python:3.11.15-slim-trixie AS runtime
ARG INVENTORY_VERSION=dev
ARG VCS_REF=unknown
ARG BUILD_DATE=unknown
LABEL org.opencontainers.image.title="inventory" \
      org.opencontainers.image.description="Inventory (库存管理): stock management for warehouse staff" \
      org.opencontainers.image.version="${INVENTORY_VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.licenses="Proprietary" \
      org.opencontainers.image.source="https://github.com/example/inventory"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    INVENTORY_VERSION=${INVENTORY_VERSION} \
    INVENTORY_ENV=production \
    PROMETHEUS_MULTIPROC_DIR=/run/prometheus \
    GUNICORN_BIND=0.0.0.0:8000
# The MariaDB client tools (mariadb-dump, mariadb, mariadb-binlog) for `flask backup`. Not pinned to
# a point release: the Debian stable archive keeps only the current security build of each package.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends mariadb-client \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 inventory \
    && useradd --system --uid 10001 --gid inventory --no-create-home --home-dir /app --shell /usr/sbin/nologin inventory \
    && mkdir -p /run/prometheus \
    && chown inventory:inventory /run/prometheus
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=root:root /src /app
RUN chown inventory:inventory /app/instance
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["gunicorn", "--config", "/app/gunicorn.conf.py", "wsgi:app"]
