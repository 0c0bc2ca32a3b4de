#!/usr/bin/env bash
# The one test command (README, and .ci/run calls it): installs what the suite needs
# (Debian packages when absent, a .venv with the project and its test extras), then runs
# ruff, hadolint and the whole pytest suite. Extra arguments go to pytest. The browser
# test leaves a screenshot of /docs in artifacts/ (kept by CI).
set -euo pipefail
cd "$(dirname "$0")/.."

debs=()
command -v curl >/dev/null 2>&1 || debs+=(curl)
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

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/hadolint Dockerfile
.venv/bin/python -m pytest -x -q "$@"
