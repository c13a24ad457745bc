# syntax=docker/dockerfile:1
#
# One Dockerfile, one image layer stack, one target per service:
#
#   docker build --target gateway     -t gatehouse/gateway .
#   docker build --target identity    -t gatehouse/identity .
#   docker build --target sync-worker -t gatehouse/sync-worker .
#   docker build --target audit       -t gatehouse/audit .
#   docker build --target console     -t gatehouse/console .
#
# All targets share the `runtime` stage (same venv with every Gatehouse package installed),
# so building all of them costs one dependency install; they differ only in entry point, listen
# address/port defaults, EXPOSE and HEALTHCHECK. compose.yaml builds them with `target:`.

ARG PYTHON_IMAGE=python:3.11-slim

# --------------------------------------------------------------------------------------------
# build: a venv with the pinned third-party dependencies, then the local packages (no deps).
# --------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/gatehouse
ENV PATH=/opt/gatehouse/bin:$PATH
WORKDIR /src

# Dependencies first, in their own layer (rebuilt only when the lock or a pyproject changes).
# requirements.lock pins every third-party package, test/dev tools included; the image gets only
# what the Gatehouse packages depend on, at the locked versions (the lock is used as constraints),
# and `image-deps.py verify` fails the build if anything installed is not pinned by the lock.
COPY requirements.lock ./
COPY scripts/image-deps.py scripts/
COPY contracts/pyproject.toml contracts/
COPY services/gateway/pyproject.toml services/gateway/
COPY services/identity/pyproject.toml services/identity/
COPY services/sync-worker/pyproject.toml services/sync-worker/
COPY services/audit/pyproject.toml services/audit/
COPY services/console/pyproject.toml services/console/
RUN python scripts/image-deps.py requirements > /tmp/requirements.txt \
 && grep -vE '^[[:space:]]*(-e[[:space:]]|\.|/|file:|gatehouse-)' requirements.lock > /tmp/constraints.txt \
 && pip install --only-binary=:all: -c /tmp/constraints.txt -r /tmp/requirements.txt

# Then the local packages themselves, without dependencies.
COPY contracts/ contracts/
COPY services/ services/
RUN pip install --no-deps \
        ./contracts \
        ./services/gateway \
        ./services/identity \
        ./services/sync-worker \
        ./services/audit \
        ./services/console \
 && pip check \
 && python scripts/image-deps.py verify

# --------------------------------------------------------------------------------------------
# runtime: slim base + the venv, non-root user.
# --------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/gatehouse/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOG_LEVEL=INFO
RUN groupadd --system --gid 10001 gatehouse \
 && useradd --system --uid 10001 --gid gatehouse --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin gatehouse
COPY --from=build /opt/gatehouse /opt/gatehouse
WORKDIR /app
USER 10001:10001

# --------------------------------------------------------------------------------------------
# One target per service. Inside a container the services must listen on 0.0.0.0.
# --------------------------------------------------------------------------------------------
FROM runtime AS identity
ENV IDENTITY_HOST=0.0.0.0 IDENTITY_PORT=8081
EXPOSE 8081
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8081/healthz', timeout=4)"]
CMD ["gatehouse-identity"]

FROM runtime AS sync-worker
ENV SYNC_WORKER_HOST=0.0.0.0 SYNC_WORKER_HEALTH_PORT=8082
EXPOSE 8082
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8082/healthz', timeout=4)"]
CMD ["gatehouse-sync-worker"]

FROM runtime AS audit
ENV AUDIT_HOST=0.0.0.0 AUDIT_HEALTH_PORT=8083
EXPOSE 8083
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8083/healthz', timeout=4)"]
CMD ["gatehouse-audit"]

# --------------------------------------------------------------------------------------------
# demo: the demo identity provider, MCP servers and set-up of `docker compose --profile demo up`
# (demo/, docs/demo.md). Python: the runtime venv plus the `mcp` SDK and PyJWT at their locked
# versions; Node 22 and oidc-provider for the tests' oidc-provider server (tests/servers/oidc).
# --------------------------------------------------------------------------------------------
FROM build AS demo-build
RUN pip install --only-binary=:all: -c /tmp/constraints.txt mcp PyJWT cryptography uvicorn httpx \
 && pip check

# bookworm: its node binary also runs on python:3.11-slim (Debian bookworm or newer glibc)
FROM node:22-bookworm-slim AS demo-node
WORKDIR /src/tests
COPY tests/package.json tests/package-lock.json ./
# --ignore-scripts: the `node` package's install script would fetch a second Node 22
RUN npm ci --ignore-scripts --no-audit --no-fund

FROM runtime AS demo
USER root
COPY --from=demo-build /opt/gatehouse /opt/gatehouse
COPY --from=demo-node /usr/local/bin/node /usr/local/bin/node
COPY --from=demo-node /src/tests/node_modules /app/tests/node_modules
COPY tests/package.json /app/tests/
COPY tests/servers/oidc/server.mjs /app/tests/servers/oidc/
COPY demo/ /app/demo/
RUN mkdir /state && chown 10001:10001 /state
USER 10001:10001

FROM runtime AS console
ENV CONSOLE_HOST=0.0.0.0 CONSOLE_PORT=8084
EXPOSE 8084
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8084/healthz', timeout=4)"]
CMD ["gatehouse-console"]

# gateway is last so that a plain `docker build .` yields the gateway image.
FROM runtime AS gateway
ENV GATEWAY_HOST=0.0.0.0 GATEWAY_PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
CMD ["gatehouse-gateway"]
