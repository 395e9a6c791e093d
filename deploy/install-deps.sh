#!/usr/bin/env bash
# Install the Debian 12 (bookworm) packages needed to build, test and run
# actorserve. Idempotent: only packages that are not installed yet are passed
# to apt-get, and `apt-get update` runs at most once, only when something is
# missing.
#
# Usage: deploy/install-deps.sh [--bench | --build-only]
#   --bench       also install the benchmark tools (wrk and the Flask baseline).
#   --build-only  only what building the server and its models needs (the
#                 build stage of deploy/Dockerfile): no test or deployment tools.
set -euo pipefail

usage() {
    echo "usage: $0 [--bench | --build-only]" >&2
    exit 2
}

with_bench=0
build_only=0
for arg in "$@"; do
    case "$arg" in
        --bench) with_bench=1 ;;
        --build-only) build_only=1 ;;
        -h|--help) usage ;;
        *) echo "unknown argument: $arg" >&2; usage ;;
    esac
done

packages=(
    # build
    cmake g++ make pkg-config ninja-build
    # libraries
    libtorch-dev libcaf-dev libcpp-httplib-dev libopencv-dev libspdlog-dev
    nlohmann-json3-dev libgtest-dev libgmock-dev prometheus-cpp-dev libssl-dev
    libjemalloc-dev
    # shared jobs and response cache (actors/redis_connection.cpp)
    libhiredis-dev
    # the gRPC door (grpc/): gRPC C++ and protobuf, and protoc with the gRPC
    # plugins that compile grpc/inference.proto (C++ here, Python in tests)
    libgrpc++-dev protobuf-compiler protobuf-compiler-grpc
    # libtorch links the system BLAS; Debian's default is the reference BLAS.
    # OpenBLAS (the OpenMP build, like libtorch's own threading) makes a
    # small-batch forward ~4x faster.
    libopenblas0-openmp
    # models / data (tools/make_models.py, digits.png from opencv-doc)
    opencv-doc python3 python3-torch python3-torchvision python3-opencv
    python3-numpy
)
dev_packages=(
    ccache clang-format
    # the libFuzzer target (fuzz/run.sh): clang with its sanitizer runtimes
    clang
    # tests / tools (Python clients: requests, grpcio with generated stubs)
    curl prometheus python3-requests python3-grpcio python3-protobuf
    # shared-state tests start real Redis servers on free loopback ports
    redis-server
    # deployment tests: real nginx for blue-green, promtool (prometheus),
    # systemd-analyze, shellcheck, the compose file's YAML
    nginx systemd shellcheck python3-yaml
    # operator-page tests (tests/browser/): a real browser and node for
    # playwright-core and the OpenAPI validator (npm ci in the build dir)
    chromium nodejs
    # the container image test (tests/docker_image_test.sh): a Docker engine
    # and debootstrap for its base images (deploy/make-base-image.sh)
    docker.io debootstrap
)
bench_packages=(
    # benchmark: load generator and the Python baseline server
    wrk gunicorn python3-flask python3-pydantic python3-prometheus-client
    python3-flask-limiter python3-pythonjsonlogger
)
if (( with_bench && build_only )); then
    echo "--bench and --build-only exclude each other" >&2
    usage
fi
if (( !build_only )); then
    packages+=("${dev_packages[@]}")
fi
if (( with_bench )); then
    packages+=("${bench_packages[@]}")
fi

SUDO=()
if (( EUID != 0 )); then
    SUDO=(sudo)
fi

is_installed() {
    local status
    status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
    [[ "$status" == "install ok installed" ]]
}

missing=()
for pkg in "${packages[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done
# Debian's nodejs comes without npm; other builds of nodejs bring their own
# (and conflict with Debian's npm package).
if (( !build_only )) && ! command -v npm >/dev/null; then
    missing+=(npm)
fi

if (( ${#missing[@]} == 0 )); then
    echo "install-deps: all ${#packages[@]} packages already installed"
    exit 0
fi

echo "install-deps: installing ${#missing[@]} missing package(s): ${missing[*]}"
"${SUDO[@]}" apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
echo "install-deps: done"
