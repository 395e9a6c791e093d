#!/usr/bin/env bash
# The container image, built and run by a real Docker engine (CTest label
# `docker`): build deploy/Dockerfile, run it as the compose stack does
# (read-only, no capabilities), wait for /ready, predict held-out digits with
# an API key, check the server runs as uid 10001, the HEALTHCHECK turns
# healthy, and `docker stop` (SIGTERM) ends it with exit code 0.
#
# Two ways to build the image, one runtime stage:
#   --prebuilt BINARY MODEL_REPOSITORY   (CTest's, within CI's time) the
#       image's files laid out by deploy/image-files.sh from the binary the
#       project built, as the build context of the Dockerfile's `prebuilt`
#       stage, with BuildKit (it builds only the stages the image needs);
#   --from-source   the whole multi-stage build from the sources (the build
#       stage installs the packages and compiles everything: ~6 minutes on an
#       idle machine, close to an hour on a loaded one; CTest registers it
#       with -DACTORSERVE_DOCKER_SOURCE_TEST=ON).
#
# Starts dockerd (vfs storage, no iptables, no bridge: it runs inside
# containers and needs no kernel modules) if none answers, and stops it after;
# makes the debian:bookworm(-slim) base images with deploy/make-base-image.sh
# if they are missing. Needs root for both, or a running engine and the images
# (without either it skips: exit code 77).
#
# What a run leaves (vfs stores every layer whole): prebuilt, only the base
# images (the image is removed at the end unless ACTORSERVE_KEEP_IMAGE is set,
# BuildKit's cache is pruned after the build); from source, the image and its
# build stage stay tagged (ACTORSERVE_TEST_IMAGE and -build) so that the next
# run builds from their cache. Dangling images (earlier runs') are pruned.
#
# Usage: tests/docker_image_test.sh --prebuilt BINARY MODEL_REPOSITORY | --from-source
# Environment: DOCKER (docker), ACTORSERVE_TEST_IMAGE (actorserve:test, or
#   actorserve:test-source from source), ACTORSERVE_IMAGE_MAX_MB (900: the
#   image must not grow past it), ACTORSERVE_KEEP_IMAGE (keep the prebuilt
#   image).
set -euo pipefail

usage() {
    echo "usage: $0 --prebuilt BINARY MODEL_REPOSITORY | --from-source" >&2
    exit 2
}
case "${1:-}" in
    --prebuilt) (( $# == 3 )) || usage; mode=prebuilt binary=$2 repository=$3 ;;
    --from-source) (( $# == 1 )) || usage; mode=source ;;
    *) usage ;;
esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
docker=${DOCKER:-docker}
default_image=actorserve:test
[[ $mode == source ]] && default_image=actorserve:test-source
image=${ACTORSERVE_TEST_IMAGE:-$default_image}
max_mb=${ACTORSERVE_IMAGE_MAX_MB:-900}
python=/usr/bin/python3 # Debian's, for the JSON below
api_key="docker-test-key"

work=$(mktemp -d)
dockerd_pid="" container=""
started=$SECONDS

log() { echo "docker_image_test [$((SECONDS - started))s]: $*"; }
fail() {
    echo "docker_image_test: FAIL: $*" >&2
    if [[ -n "$container" ]]; then
        echo "--- container log" >&2
        "$docker" logs --tail 40 "$container" >&2 2>&1 || true
    fi
    exit 1
}

cleanup() {
    if [[ -n "$container" ]]; then "$docker" rm -f "$container" >/dev/null 2>&1 || true; fi
    if [[ $mode == prebuilt && -z "${ACTORSERVE_KEEP_IMAGE:-}" ]]; then
        "$docker" rmi "$image" >/dev/null 2>&1 || true
    fi
    if [[ -n "$dockerd_pid" ]]; then
        kill "$dockerd_pid" 2>/dev/null || true
        wait "$dockerd_pid" 2>/dev/null || true
        log "stopped the dockerd it started"
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# --- the engine -------------------------------------------------------------
ensure_dockerd() {
    if "$docker" info >/dev/null 2>&1; then
        return
    fi
    command -v dockerd >/dev/null || fail "no dockerd: deploy/install-deps.sh installs docker.io"
    if (( EUID != 0 )); then
        echo "docker_image_test: SKIP: no Docker engine answers, and starting one needs root"
        exit 77
    fi
    log "starting dockerd (log: $work/dockerd.log)"
    # shellcheck disable=SC2086 # the flags are words
    nice -n 10 dockerd ${ACTORSERVE_DOCKERD_FLAGS:---storage-driver=vfs --iptables=false --bridge=none} \
        >"$work/dockerd.log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 120); do
        "$docker" info >/dev/null 2>&1 && return
        kill -0 "$dockerd_pid" 2>/dev/null || break
        sleep 0.5
    done
    tail -n 20 "$work/dockerd.log" >&2
    fail "dockerd did not start"
}

# --- the image --------------------------------------------------------------
# From source: the context is what git knows of the working tree (tracked and
# new files, not ignored ones: no build folders, no generated models),
# streamed as a tar so that every builder (legacy or BuildKit) gets the same
# files.
build_from_source() {
    (cd "$root" && git ls-files -z --cached --others --exclude-standard) >"$work/files"
    tar -C "$root" --null --ignore-failed-read -T "$work/files" -cf "$work/context.tar" 2>/dev/null
    # The build stage is tagged too (the legacy builder leaves it untagged), so
    # that pruning the engine's dangling images keeps this build's cache and
    # drops the stages earlier runs left behind: vfs stores each layer whole,
    # a build stage is gigabytes. The second build reuses the first.
    local stage tag
    for stage in build runtime; do
        tag=$image
        [[ $stage == build ]] && tag=$image-build
        nice -n 10 "$docker" build --network host -f deploy/Dockerfile --target "$stage" \
            -t "$tag" - <"$work/context.tar" \
            >>"$work/build.log" 2>&1 || {
            tail -n 40 "$work/build.log" >&2
            fail "docker build --target $stage failed"
        }
    done
}

# BuildKit builds only the stages the target needs; the legacy builder would
# run the build stage too. A client with buildx, else Debian's docker.io
# client (before Docker 23 BuildKit is built into `docker build`).
buildkit() {
    if "$docker" buildx version >/dev/null 2>&1; then
        nice -n 10 "$docker" buildx build --load "$@"
    elif [[ -x /usr/bin/docker ]]; then
        DOCKER_BUILDKIT=1 nice -n 10 /usr/bin/docker build "$@"
    else
        DOCKER_BUILDKIT=1 nice -n 10 "$docker" build "$@"
    fi
}

# Prebuilt: the image's files from the built binary (deploy/image-files.sh),
# leaving out the libraries of the base image's packages.
build_prebuilt() {
    # shellcheck disable=SC2016 # dpkg-query's format
    "$docker" run --rm --network none --entrypoint dpkg-query debian:bookworm-slim \
        -W -f '${Package}\n' >"$work/base-packages" || fail "could not list the base image's packages"
    "$root/deploy/image-files.sh" "$binary" "$repository" "$work/image" "$work/base-packages" \
        >>"$work/build.log" 2>&1 || {
        tail -n 20 "$work/build.log" >&2
        fail "deploy/image-files.sh failed"
    }
    log "$(tail -n 1 "$work/build.log")"
    buildkit --progress plain --network host -f "$root/deploy/Dockerfile" \
        --build-arg ACTORSERVE_FILES=prebuilt --target runtime -t "$image" "$work/image" \
        >>"$work/build.log" 2>&1 || {
        tail -n 40 "$work/build.log" >&2
        fail "docker build (prebuilt) failed"
    }
    rm -rf "$work/image"
    # BuildKit's cache holds the context and the prebuilt stage (each the
    # size of the image); the next run's context differs anyway.
    "$docker" builder prune --all --force >/dev/null 2>&1 || true
}

build_image() {
    local began=$SECONDS bytes
    if [[ $mode == source ]]; then build_from_source; else build_prebuilt; fi
    build_seconds=$((SECONDS - began))
    "$docker" image prune --force >/dev/null 2>&1 || true
    bytes=$("$docker" image inspect --format '{{.Size}}' "$image")
    image_mb=$((bytes / 1000000))
    log "built $image ($mode) in ${build_seconds}s: ${image_mb} MB"
    "$docker" history --format '{{.Size}}\t{{.CreatedBy}}' "$image" | cut -c1-110 | head -n 12
    (( image_mb <= max_mb )) || fail "the image is ${image_mb} MB, above ${max_mb} MB"
}

# Nothing to build software with in the runtime stage.
# Asked of the running container: under vfs every new container copies the
# whole image.
check_no_toolchain() {
    local found
    # shellcheck disable=SC2016 # expanded by the container's shell
    found=$("$docker" exec "$container" sh -c \
        'for t in cc gcc g++ c++ clang cmake make python3; do command -v $t; done;
         ls -d /usr/include/torch /usr/include/opencv4 2>/dev/null' || true)
    [[ -z "$found" ]] || fail "the runtime image holds build tools: $found"
}

# --- the container ----------------------------------------------------------
# Published on a free loopback port when the engine has a bridge network;
# on the host's network otherwise (then the server and its HEALTHCHECK are
# told the port).
run_container() {
    local run=(--detach --read-only --tmpfs /tmp --cap-drop ALL
        --security-opt no-new-privileges:true -e "ACTORSERVE_API_KEYS=$api_key")
    if "$docker" network inspect bridge >/dev/null 2>&1; then
        container=$("$docker" run "${run[@]}" -p 127.0.0.1::8080 "$image")
        port=$("$docker" port "$container" 8080/tcp | head -n 1)
        port=${port##*:}
        log "running with 8080 published on 127.0.0.1:$port"
    else
        port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        container=$("$docker" run "${run[@]}" --network host -e "ACTORSERVE_PORT=$port" "$image" \
            --host 127.0.0.1 --port "$port" --model-repository /opt/actorserve/models)
        log "running on the host's network, port $port (the engine has no bridge)"
    fi
    base="http://127.0.0.1:$port"
}

running() { [[ $("$docker" inspect --format '{{.State.Running}}' "$container") == true ]]; }

wait_ready() {
    for _ in $(seq 360); do
        curl -fsS -o /dev/null "$base/ready" 2>/dev/null && return
        running || fail "the container exited before it was ready"
        sleep 0.5
    done
    fail "not ready after 180 s"
}

# The first 20 held-out digits, as other e2e tests send them (test_support's
# first_digit_body), predicted through the image's bundled digits model.
check_prediction() {
    "$python" - "$root/models/digits-holdout.jsonl" >"$work/body.json" "$work/labels" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]).readlines()[:20]]
json.dump({"instances": [{"image": l["png"]} for l in lines]}, sys.stdout)
open(sys.argv[2], "w").write(json.dumps([str(l["label"]) for l in lines]))
EOF
    local status
    status=$(curl -sS -o "$work/answer.json" -w '%{http_code}' -H "X-API-Key: $api_key" \
        -H 'Content-Type: application/json' --data-binary "@$work/body.json" \
        "$base/api/v1/models/digits/predict")
    [[ "$status" == 200 ]] || fail "predict answered $status: $(head -c 300 "$work/answer.json")"
    "$python" - "$work/answer.json" "$work/labels" <<'EOF' || fail "wrong predictions"
import json, sys
answer = json.load(open(sys.argv[1]))
labels = json.load(open(sys.argv[2]))
got = [p["label"] for p in answer["predictions"]]
right = sum(g == l for g, l in zip(got, labels))
print(f"docker_image_test: digits {answer['model']} v{answer['version']}: {right}/{len(labels)} right")
sys.exit(0 if len(got) == len(labels) and right >= 18 else 1)
EOF
    # Without a key the server refuses (it listens beyond loopback).
    status=$(curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary "@$work/body.json" "$base/api/v1/models/digits/predict")
    [[ "$status" == 401 ]] || fail "predict without a key answered $status, not 401"
}

check_non_root() {
    local uids
    uids=$("$docker" exec "$container" sh -c 'grep ^Uid: /proc/1/status')
    [[ $(awk '{print $2 $3 $4 $5}' <<<"$uids") == 10001100011000110001 ]] ||
        fail "the server does not run as uid 10001: $uids"
    [[ $("$docker" exec "$container" cat /proc/1/comm) == actorserve ]] ||
        fail "PID 1 is not the server"
}

wait_healthy() {
    local health
    for _ in $(seq 90); do
        health=$("$docker" inspect --format '{{.State.Health.Status}}' "$container")
        [[ "$health" == healthy ]] && return
        [[ "$health" == unhealthy ]] && fail "the HEALTHCHECK says unhealthy"
        sleep 2
    done
    fail "not healthy after 180 s (last: $health)"
}

check_stop() {
    local began=$SECONDS code
    "$docker" stop -t 40 "$container" >/dev/null
    code=$("$docker" inspect --format '{{.State.ExitCode}}' "$container")
    [[ "$code" == 0 ]] || fail "docker stop: exit code $code, not 0"
    # Exit 0 also ends a drain that timed out: the log tells them apart.
    "$docker" logs "$container" >"$work/server.log" 2>&1
    grep -q '"event":"shutdown"' "$work/server.log" || fail "no shutdown event in the server's log"
    grep -q '"event":"stopped"' "$work/server.log" || fail "the server did not stop cleanly"
    if grep -q '"event":"forced_exit"' "$work/server.log"; then fail "the drain was cut short"; fi
    log "docker stop: drained and exited 0 in $((SECONDS - began))s"
}

ensure_dockerd
"$root/deploy/make-base-image.sh"
log "base images"
build_image
run_container
wait_ready
log "ready"
check_no_toolchain
check_prediction
check_non_root
log "runs as uid 10001"
wait_healthy
log "HEALTHCHECK healthy"
check_stop
log "PASS"
