# The pipeline services: producer, consumer, alert worker, backfill, status/watch.
#
#   docker build -t upbit-pipeline .
#   docker run --rm upbit-pipeline --help
#
# One image, one command per container (deploy/docker-compose.yml). Under Docker there is no
# systemd: NOTIFY_SOCKET is unset, so the services' sd_notify calls are no-ops, and liveness comes
# from `restart: unless-stopped` plus the Prometheus endpoint (*.metrics_port) and `ops watch`.
# On the VMs of docs/operations.md the same package runs under systemd instead.
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY dbt ./dbt
RUN python -m venv /opt/upbit-pipeline/venv \
 && /opt/upbit-pipeline/venv/bin/pip install ".[gcs,s3]"

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="upbit-pipeline" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/upbit-pipeline/venv /opt/upbit-pipeline/venv
# A dedicated, unprivileged user; /var/lib/upbit-pipeline holds ./data (spool, checkpoint, local
# lake, alert log), as StateDirectory= does under systemd.
RUN useradd --system --home-dir /var/lib/upbit-pipeline --create-home --shell /usr/sbin/nologin upbit
USER upbit
WORKDIR /var/lib/upbit-pipeline
ENV PATH=/opt/upbit-pipeline/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1
VOLUME ["/var/lib/upbit-pipeline"]
ENTRYPOINT ["upbit-pipeline", "--log-format", "json"]
CMD ["--help"]
