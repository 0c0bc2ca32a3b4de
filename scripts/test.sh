#!/usr/bin/env bash
# The one test command (README, and .ci/run calls it): installs what the suite needs
# (Debian packages when absent, a .venv with the project and its test extras), then runs
# ruff, hadolint and the whole pytest suite. Extra arguments go to pytest. The browser
# test leaves a screenshot of /docs in artifacts/ (kept by CI), the Docker image test
# its size and time-to-healthy (artifacts/docker-image.json).
set -euo pipefail
cd "$(dirname "$0")/.."

debs=()
command -v curl >/dev/null 2>&1 || debs+=(curl)
command -v redis-server >/dev/null 2>&1 || debs+=(redis-server)
# The /docs browser test drives Debian's headless chromium with its matching driver.
command -v chromium >/dev/null 2>&1 || debs+=(chromium)
command -v chromedriver >/dev/null 2>&1 || debs+=(chromium-driver)
if ((${#debs[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing Debian packages: ${debs[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${debs[@]}" >/dev/null
fi

python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

# A throwaway Redis for the store tests, on a free loopback port, stopped on exit.
redis_dir=$(mktemp -d)
redis_port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
  --daemonize yes --pidfile "$redis_dir/redis.pid" --dir "$redis_dir" --logfile "$redis_dir/redis.log"
stop_redis() {
  [ -f "$redis_dir/redis.pid" ] && kill "$(cat "$redis_dir/redis.pid")" 2>/dev/null || true
  rm -rf "$redis_dir"
}
trap stop_redis EXIT
for _ in $(seq 50); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done
export QUIMBI_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"

# --- Docker (tests marked `docker`) -----------------------------------------------------
# docker.io + docker-compose when absent, dockerd when none answers (stopped on exit only
# if started here), the base images pulled or stood in for: scripts/docker-engine.sh.
# QUIMBI_TEST_DOCKER=0 leaves all of it out (then pass -m "not docker").
docker_state=$(mktemp -d)
stop_all() {
  bash scripts/docker-engine.sh down "$docker_state" || true
  rm -rf "$docker_state"
  stop_redis
}
trap stop_all EXIT
if [ "${QUIMBI_TEST_DOCKER:-1}" != 0 ]; then
  bash scripts/docker-engine.sh up "$docker_state"
fi
# --- end Docker ---------------------------------------------------------------------------

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/hadolint Dockerfile
.venv/bin/python -m pytest -x -q "$@"
