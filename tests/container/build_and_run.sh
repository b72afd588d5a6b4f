#!/usr/bin/env bash
# Builds the Dockerfile with podman on a Debian base made here, then runs the image in webhook mode against the local
# Telegram and OpenAI servers, twice: with its default store (SQLite on the /data volume), then with a fresh database
# on the PostgreSQL server CONVO_TEST_POSTGRES names (as compose.yaml configures the bot). Each time its HEALTHCHECK
# passes, /start and one question are answered, and SIGTERM stops it cleanly (tests/container/run_image.py).
#
#   PYTHON=.venv/bin/python tests/container/build_and_run.sh      # as root; FRESH=1 makes the base image again
#
# No registry can be reached from this project's machines, so nothing is pulled:
# - the base is `debootstrap --variant=minbase bookworm` with python3 and python3-venv, imported as BASE_TAG and
#   given to the build as `--build-arg BASE=...` (made once, then reused while the engine keeps it);
# - the Python packages are wheels built here with PYTHON's pip (from the indexes that pip is configured with), mounted
#   into the build and installed with `--build-arg PIP_OPTIONS="--no-index --find-links=/wheels"`.
# The build uses `--isolation chroot` (no OCI runtime needed, hence `--network host`) and `--format docker` (the OCI
# format has no HEALTHCHECK). The run tries the engine as it is, then with runc and lower rlimits (this machine's
# crun refuses its hybrid cgroups, and both runtimes refuse podman's default rlimits).
# When no container can be started at all, it says SKIPPED loudly, with why, and exits 0; any other failure exits 1.
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON="${PYTHON:-python3}"
WORK="${CONVO_CONTAINER_WORK:-/var/tmp/convo-container}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE_TAG=localhost/convo-base:bookworm
IMAGE=localhost/convo:test
START=$(date +%s)

step() { echo "== $* (at $(($(date +%s) - START)) s)"; }
skip() { echo "SKIPPED: NO CONTAINER ENGINE CAN RUN HERE, THE IMAGE WAS NOT TESTED: $*" >&2; exit 0; }

"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || { echo "PYTHON must be Python 3.11, as in the Debian bookworm base (the wheels are built with it)" >&2; exit 1; }

missing=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
    step "installing ${missing[*]}"
    [[ $(id -u) == 0 ]] || skip "${missing[*]} missing, and only root can install them"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null; } \
        || skip "apt-get could not install podman, runc and debootstrap"
fi
mkdir -p "$WORK"

if [[ "${FRESH:-}" == 1 ]] || ! podman image exists "$BASE_TAG"; then
    step "debootstrap bookworm into $WORK/rootfs"
    rm -rf "$WORK/rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv bookworm "$WORK/rootfs" "$MIRROR" \
        >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
    rm -rf "$WORK"/rootfs/var/cache/apt/archives/*.deb "$WORK"/rootfs/var/lib/apt/lists/*
    step "podman import as $BASE_TAG"
    tar -C "$WORK/rootfs" -c . | podman import --quiet - "$BASE_TAG" >/dev/null
    rm -rf "$WORK/rootfs"
fi

step "finding how containers run here"
engine=()
run_options=()
why=""
for candidate in "podman" "podman --runtime=runc --ulimit=nofile=20000:20000 --ulimit=nproc=32768:32768"; do
    read -r -a words <<<"$candidate"
    global=(podman)
    options=()
    for word in "${words[@]:1}"; do
        if [[ $word == --runtime=* ]]; then global+=("$word"); else options+=("$word"); fi
    done
    if why=$("${global[@]}" run --rm "${options[@]}" "$BASE_TAG" python3 -c 'print("ok")' 2>&1); then
        engine=("${global[@]}")
        run_options=("${options[@]}")
        break
    fi
done
((${#engine[@]})) || skip "podman could not start a container from $BASE_TAG: $why"
echo "engine: ${engine[*]}; run options: ${run_options[*]:-none}"

step "building wheels with $PYTHON's pip into $WORK/wheels"
rm -rf "$WORK/wheels"
"$PYTHON" -m pip wheel --quiet --wheel-dir "$WORK/wheels" . setuptools Babel wheel \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
rm -f "$WORK"/wheels/convo-*.whl

step "podman build $IMAGE"
podman build --quiet --isolation chroot --network host --format docker \
    --volume "$WORK/wheels:/wheels:ro" \
    --build-arg "BASE=$BASE_TAG" --build-arg "PIP_OPTIONS=--no-index --find-links=/wheels" \
    --tag "$IMAGE" . >/dev/null

step "running $IMAGE with SQLite on /data"
"$PYTHON" -m tests.container.run_image "$IMAGE" --engine "${engine[*]}" "${run_options[@]/#/--run-option=}"
step "running $IMAGE with PostgreSQL"
"$PYTHON" -m tests.container.run_image "$IMAGE" --engine "${engine[*]}" "${run_options[@]/#/--run-option=}" \
    --postgres "${CONVO_TEST_POSTGRES:-postgresql://postgres@127.0.0.1:5432/test}"
step "passed"
