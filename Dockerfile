# Quimbi Sandbox image. Build: docker build -t quimbi-sandbox .
# Configured entirely by QUIMBI_SANDBOX_* variables (README "Running it").
# tests/test_docker.py runs this file's install line, ENV, CMD and HEALTHCHECK without
# Docker; tests/test_docker_engine.py builds and runs it on an engine; hadolint checks it
# in scripts/test.sh.

# Builder: turns the source tree into one wheel (contract and fixtures bundled inside).
FROM python:3.11-slim AS builder
WORKDIR /src
COPY pyproject.toml README.md openapi.yaml ./
COPY fixtures ./fixtures
COPY sandbox ./sandbox
COPY contract_tests ./contract_tests
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Runtime: the installed wheel only; no source tree.
FROM python:3.11-slim
COPY --from=builder /wheels /wheels
RUN pip install --no-cache-dir /wheels/quimbi_sandbox-*.whl && rm -rf /wheels
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin sandbox
USER 10001:10001
ENV QUIMBI_SANDBOX_HOST=0.0.0.0 \
    QUIMBI_SANDBOX_PORT=8080 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
EXPOSE 8080
# Exec-form CMD: the sandbox is PID 1 and gets SIGTERM itself, finishes the requests
# in flight and exits 0.
STOPSIGNAL SIGTERM
# Reads the same settings as serve, so a changed QUIMBI_SANDBOX_PORT is followed. The
# first probe runs one interval after the start (the engine has no faster first probe
# before API 1.44), so the interval is what a CI job waits on a service container;
# a probe costs ~0.1 s of CPU.
HEALTHCHECK --interval=5s --timeout=5s --start-period=15s --retries=3 \
    CMD ["quimbi-sandbox", "healthcheck"]
CMD ["quimbi-sandbox", "serve"]
