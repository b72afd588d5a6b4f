# convo's image: `convo bot` in webhook mode, as a non-root user, with the SQLite store on the /data volume.
#
#   docker build -t convo .
#   docker run -e TELEGRAM_BOT_TOKEN=... -e OPENAI_API_KEY=... -e CONVO_WEBHOOK_URL=https://bot.example.org/telegram \
#       -p 8080:8080 -v convo-data:/data convo
#
# Build arguments:
#   BASE         the Python image both stages start from (Python 3.11 or later, with `venv`; Debian-like, for useradd).
#   PIP_OPTIONS  extra options of the one `pip install`, e.g. `--no-index --find-links=/wheels` to install from
#                wheels mounted into the build instead of from PyPI (empty: PyPI).
# Any other `convo` command runs in the same image: `docker run ... convo convo export 123456789`.
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
ARG PIP_OPTIONS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY domain/ domain/
COPY service/ service/
COPY adapters/ adapters/
COPY entrypoints/ entrypoints/
# PIP_OPTIONS is split into words on purpose: it holds several options.
# hadolint ignore=SC2086
RUN python3 -m venv /opt/convo \
    && /opt/convo/bin/pip install ${PIP_OPTIONS} /src

FROM ${BASE}
RUN groupadd --gid 10001 convo \
    && useradd --no-log-init --uid 10001 --gid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin convo \
    && mkdir /data \
    && chown 10001:10001 /data
COPY --from=build /opt/convo /opt/convo
ENV PATH=/opt/convo/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CONVO_STORE=sqlite:////data/convo.db \
    CONVO_WEBHOOK_LISTEN=0.0.0.0:8080 \
    CONVO_LOG_FORMAT=json
VOLUME /data
WORKDIR /data
USER 10001:10001
EXPOSE 8080
# GET /healthz on the webhook server (CONVO_WEBHOOK_LISTEN); polling mode serves no /healthz, so a container that
# runs `convo bot` without --webhook-url should be started with the health check off (--no-healthcheck).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/opt/convo/bin/python", "-m", "entrypoints.healthcheck"]
# The shell only puts CONVO_WEBHOOK_URL on the command line (and stops with one line when it is unset); `exec` leaves
# convo as PID 1, so SIGTERM reaches it and it finishes the updates it holds.
CMD ["/bin/sh", "-c", "exec convo bot --webhook-url \"${CONVO_WEBHOOK_URL:?set CONVO_WEBHOOK_URL to the public https URL Telegram posts updates to}\""]
