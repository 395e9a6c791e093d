#!/usr/bin/env bash
# The two commands of the README, on a fresh Debian 12 machine:
#   deploy/dev.sh serve [actorserve flags...]  install, build, make the models, serve
#   deploy/dev.sh test                         install, build, make the models, run every test
# Each step is cached: a second run only rebuilds what changed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="${ACTORSERVE_BUILD_DIR:-$root/build}"
command=${1:-}
[[ $# -gt 0 ]] && shift

case "$command" in
    serve|test) ;;
    *) echo "usage: $0 serve [actorserve flags...] | test" >&2; exit 2 ;;
esac

"$root/deploy/install-deps.sh"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)"

case "$command" in
    serve) exec "$build/actorserve" "$@" ;;
    test) cd "$build" && exec ctest --output-on-failure -j 2 ;;
esac
