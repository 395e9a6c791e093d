#!/usr/bin/env bash
# The side-by-side benchmark of issue 3: actorserve against the Flask +
# PyTorch reference (../shared/peer, under gunicorn) on the same model
# repository and the same request bodies, driven by wrk over keep-alive
# loopback connections, one server after the other; plus the raw in-process
# libtorch throughput of resnet18, the cost of one remote hop (digits through
# a gateway node that joins the node hosting it, against that node directly)
# and the HTTP-thread -> actor bridges. Then the rows of the HTTP edge (issue
# 13), actorserve alone on a repository with digits and affine: fairness (a
# new client's latency while 600 keep-alive connections keep it busy, against
# their p99), idle keep-alive connections (server CPU and RSS growth), the
# floor (server CPU per request for /health, a tensor and a digits prediction,
# against nginx serving a /health body of the same size) and pipelining.
# Then the protocol rows (issue 14, bench/protocol_rows.sh): digits and affine
# over v1 JSON, Open Inference Protocol JSON and binary over HTTP, and OIP
# gRPC (bench/grpc_load, a C++ asynchronous client), on one server.
# Then the response cache rows (issue 16, bench/cache_rows.sh): a repeated
# digits request without a cache, with the memory cache and with the Redis
# cache (a redis-server started here), as ratios to no cache.
# Then the CPU-default rows (issue 17, bench/cpu_rows.sh): untuned resnet18
# against in-process libtorch at 2 threads, untuned digits against its tuned
# bundled config run the old way (1 instance, 1 thread).
#
# Usage: bench/run.sh [--seconds N] [--warmup N] [--raw-seconds N]
#                     [--torch-threads N] [--http-threads N] [--bridge-calls N]
#                     [--variants] [--wait-quiet N] [--rounds N] [--no-install]
#                     [--edge-only | --no-edge] [--edge-conns N] [--idle-conns N]
#                     [--idle-seconds N] [--probes N] [--probe-timeout N]
#                     [--protocols-only | --no-protocols] [--cache-only | --no-cache]
#                     [--cpu-only | --no-cpu]
#   --seconds N        measured seconds of each wrk run (default 10)
#   --warmup N         seconds of the discarded wrk run before it (default 2; 0 = none)
#   --raw-seconds N    seconds of each raw libtorch measurement (default 5)
#   --torch-threads N  intra-op threads, the same for actorserve, the peer and
#                      the raw run at batch 1 that the target compares with
#                      (default: actorserve's own, by its CPU budget; the peer
#                      1; the target's raw run at as many threads as CPUs)
#   --http-threads N   actorserve --http-threads (default: the server's own default)
#   --bridge-calls N   round trips per bridge and thread count (default 20000)
#   --variants         also measure diagnostic variants of actorserve (resnet18
#                      with "instances": 1, digits with "instances": 2), shown
#                      as extra rows
#   --wait-quiet N     before each measurement wait up to N seconds for the
#                      machine to be idle (<= 15 % busy); default 0: don't wait
#   --rounds N         repeat every server run and raw measurement N times,
#                      interleaved; the table shows each row's median (default 1)
#   --no-install       skip deploy/install-deps.sh --bench
#   --edge-only        run only the HTTP edge rows (issue 13)
#   --no-edge          skip the HTTP edge rows
#   --protocols-only   run only the protocol rows (issue 14)
#   --no-protocols     skip the protocol rows
#   --cache-only       run only the response cache rows (issue 16)
#   --no-cache         skip the response cache rows
#   --cpu-only         run only the CPU-default rows (issue 17)
#   --no-cpu           skip the CPU-default rows
#   --edge-conns N     fairness: busy keep-alive connections (wrk) on digits
#                      predict (default 600); meanwhile --probes new clients,
#                      a fresh connection each, spread over --seconds, each
#                      given up after --probe-timeout seconds (defaults 15, 5)
#   --idle-conns N     idle: keep-alive connections held open (default 3000),
#                      once having sent one request each, once only connected;
#                      server CPU and RSS measured over --idle-seconds (10).
#                      That server runs with --keep-alive-timeout-s and
#                      --read-timeout-s 3600 so that they stay open
#   Floor: wrk -c32 GET /health, affine and digits predict, server CPU per
#   request, beside nginx (1 worker, started here on a free loopback port)
#   serving a static body of the size of actorserve's /health answer.
#   Pipelining: 16 requests in one send on one connection, answered in order.
#   Protocols: each model's one input over the four doors in turn, c=32 (gRPC:
#   32 calls in flight on 4 channels), req/s, p50/p99, server and client CPU
#   per request, each answer checked first (200 / OK).
# Environment: BENCH_BUILD_DIR (default <repo>/build-bench), PEER_DIR (default
# <repo>/../shared/peer).
#
# Results: a table on stdout, and BUILD/bench-results/<time>/ (results.md,
# results.json, the raw wrk lines and server logs); BUILD/bench-results/latest
# points at the newest. Every process started here is stopped on exit.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BENCH_BUILD_DIR:-$root/build-bench}
peer_dir=${PEER_DIR:-$root/../shared/peer}
python=/usr/bin/python3
tool="$python $root/bench/bench_tool.py"

seconds=10
warmup=2
raw_seconds=5
torch_threads=
http_threads=
bridge_calls=20000
install=1
variants=0
wait_quiet=0
rounds=1
wrk_threads=2
run_main=1
run_edge=1
run_protocols=1
run_cache=1
run_cpu=1
edge_conns=600
idle_conns=3000
idle_seconds=10
probes=15
probe_timeout=5

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
}

positive() { [[ "$2" =~ ^[0-9]+$ ]] || { echo "run.sh: $1 needs a number, got '$2'" >&2; exit 2; }; }

while (( $# )); do
    case "$1" in
        --seconds) positive "$1" "${2-}"; seconds=$2; shift 2 ;;
        --warmup) positive "$1" "${2-}"; warmup=$2; shift 2 ;;
        --raw-seconds) positive "$1" "${2-}"; raw_seconds=$2; shift 2 ;;
        --torch-threads) positive "$1" "${2-}"; torch_threads=$2; shift 2 ;;
        --http-threads) positive "$1" "${2-}"; http_threads=$2; shift 2 ;;
        --bridge-calls) positive "$1" "${2-}"; bridge_calls=$2; shift 2 ;;
        --no-install) install=0; shift ;;
        --variants) variants=1; shift ;;
        --wait-quiet) positive "$1" "${2-}"; wait_quiet=$2; shift 2 ;;
        --rounds) positive "$1" "${2-}"; rounds=$2; shift 2 ;;
        --edge-only) run_main=0; run_edge=1; run_protocols=0; run_cache=0; run_cpu=0; shift ;;
        --protocols-only) run_main=0; run_edge=0; run_protocols=1; run_cache=0; run_cpu=0; shift ;;
        --cache-only) run_main=0; run_edge=0; run_protocols=0; run_cache=1; run_cpu=0; shift ;;
        --cpu-only) run_main=0; run_edge=0; run_protocols=0; run_cache=0; run_cpu=1; shift ;;
        --no-cache) run_cache=0; shift ;;
        --no-protocols) run_protocols=0; shift ;;
        --no-cpu) run_cpu=0; shift ;;
        --no-edge) run_edge=0; shift ;;
        --edge-conns) positive "$1" "${2-}"; edge_conns=$2; shift 2 ;;
        --idle-conns) positive "$1" "${2-}"; idle_conns=$2; shift 2 ;;
        --idle-seconds) positive "$1" "${2-}"; idle_seconds=$2; shift 2 ;;
        --probes) positive "$1" "${2-}"; probes=$2; shift 2 ;;
        --probe-timeout) positive "$1" "${2-}"; probe_timeout=$2; shift 2 ;;
        -h|--help) usage ;;
        *) echo "run.sh: unknown argument $1" >&2; usage ;;
    esac
done
(( seconds > 0 )) || { echo "run.sh: --seconds must be > 0" >&2; exit 2; }
(( rounds > 0 )) || { echo "run.sh: --rounds must be > 0" >&2; exit 2; }
(( run_main || run_edge || run_protocols || run_cache || run_cpu )) ||
    { echo "run.sh: these --*-only / --no-* flags leave nothing to run" >&2; exit 2; }
(( probes > 0 && probe_timeout > 0 && edge_conns > 0 )) ||
    { echo "run.sh: --probes, --probe-timeout and --edge-conns must be > 0" >&2; exit 2; }

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- processes: every one started here is stopped on exit ------------------
started_pids=()

stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for (( i = 0; i < 150; i++ )); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid ignored SIGTERM for 15 s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    for pid in "${started_pids[@]}"; do
        stop_pid "$pid"
    done
    started_pids=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- set-up -------------------------------------------------------------------
if (( install )); then
    "$root/deploy/install-deps.sh" --bench
fi
(( run_cache )) && { command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
    { echo "run.sh: redis-server and redis-cli not found (the cache rows use them)" >&2; exit 1; }; }
for tool_name in wrk gunicorn curl; do
    command -v "$tool_name" >/dev/null || { echo "run.sh: $tool_name not found" >&2; exit 1; }
done
if (( run_main )); then
    [[ -f "$peer_dir/seed_flask_server.py" ]] || { echo "run.sh: no peer in $peer_dir" >&2; exit 1; }
fi
nginx=
if (( run_edge )); then
    # Debian installs it in /usr/sbin, which is not on every user's PATH.
    nginx=$(command -v nginx || echo /usr/sbin/nginx)
    [[ -x "$nginx" ]] || { echo "run.sh: nginx not found (the edge rows compare with it)" >&2; exit 1; }
    # The idle row holds --idle-conns connections: the server (and the
    # Python client, which raises its own soft limit) need a descriptor each.
    if (( $(ulimit -n) < idle_conns + 1024 )); then
        ulimit -n "$(( idle_conns + 1024 ))" 2>/dev/null ||
            log "WARNING: cannot raise the open-file limit to $(( idle_conns + 1024 )) (it is $(ulimit -n))"
    fi
fi

log "building actorserve and the bench programs in $build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DACTORSERVE_BENCH=ON >/dev/null
build_targets=(actorserve)
(( run_main )) && build_targets+=(torch_throughput bridge_bench)
(( run_cpu )) && build_targets+=(torch_throughput)
(( run_protocols )) && build_targets+=(grpc_load)
ninja -C "$build" -j 2 "${build_targets[@]}" >&2

models="$build/bench-models"
log "making the models (cached) in $models/src"
model_list=digits,affine
(( run_main || run_cpu )) && model_list+=,resnet18
"$python" "$root/tools/make_models.py" --out "$models/src" --models "$model_list" >&2

# One repository per scenario, holding only the models it needs: the peer
# loads every model and every version folder it finds.
make_repo() { # name model [KEY=VALUE for config.json...]
    local repo="$models/$1" model=$2
    shift 2
    rm -rf "$repo"
    mkdir -p "$repo"
    cp -r "$models/src/$model" "$repo/$model"
    if (( $# )); then
        $tool config "$models/src/$model/config.json" "$repo/$model/config.json" "$@"
    fi
    $tool check-config "$repo/$model/config.json"
}
# shellcheck source=bench/cpu_rows.sh
source "$root/bench/cpu_rows.sh"
if (( run_main )); then
    make_repo repo-digits digits
    make_repo repo-digits-nobatch digits batching.max_batch_size=1 batching.max_queue_delay_us=0
    make_repo repo-resnet18 resnet18
    make_repo repo-resnet18-i1 resnet18 instances=1
    make_repo repo-digits-i2 digits instances=2
    # The gateway node hosts nothing itself.
    rm -rf "$models/repo-empty"
    mkdir -p "$models/repo-empty"
fi
if (( run_cpu )); then
    make_repo repo-digits digits
    make_untuned_repo repo-resnet18-untuned resnet18
fi
if (( run_edge || run_protocols )); then
    # The edge and protocol rows: digits (a realistic model) and affine (a
    # tensor model, next to nothing to compute) in one repository.
    make_repo repo-edge digits
    cp -r "$models/src/affine" "$models/repo-edge/affine"
fi
if (( run_cache )); then
    # The same digits twice: `digitscached` with its response cache on.
    make_repo repo-cache digits
    cp -r "$models/src/digits" "$models/repo-cache/digitscached"
    $tool config "$models/src/digits/config.json" "$models/repo-cache/digitscached/config.json" \
        response_cache.enable=true
fi

# The load generator already shares the 2 cores with the server; anything else
# busy on the machine skews every number, so measure and record it.
machine_busy_pct() { # share of all cores busy over one second
    local _ u1 n1 s1 i1 w1 q1 sq1 u2 n2 s2 i2 w2 q2 sq2 total idle
    read -r _ u1 n1 s1 i1 w1 q1 sq1 _ </proc/stat
    sleep 1
    read -r _ u2 n2 s2 i2 w2 q2 sq2 _ </proc/stat
    total=$(( (u2 + n2 + s2 + i2 + w2 + q2 + sq2) - (u1 + n1 + s1 + i1 + w1 + q1 + sq1) ))
    idle=$(( (i2 + w2) - (i1 + w1) ))
    echo $(( total > 0 ? 100 * (total - idle) / total : 0 ))
}
# Waits (up to --wait-quiet seconds) until other processes leave the cores
# alone; the idle servers of this script take well under 15 %.
wait_for_quiet() {
    local deadline=$(( SECONDS + wait_quiet )) busy
    (( wait_quiet > 0 )) || return 0
    while busy=$(machine_busy_pct); (( busy > 15 )); do
        if (( SECONDS >= deadline )); then
            log "the machine is still ${busy}% busy after ${wait_quiet}s; measuring anyway"
            return 0
        fi
    done
}

busy_pct=$(machine_busy_pct)
if (( busy_pct > 10 )); then
    log "WARNING: the machine is ${busy_pct}% busy before the benchmark; numbers will be skewed"
    ps -eo pid=,pcpu=,args= --sort=-pcpu | head -5 | cut -c1-120 >&2
fi

results="$build/bench-results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$results"
ln -sfn "$results" "$build/bench-results/latest"
$tool bodies "$results/bodies" >&2
cat >"$results/meta.json" <<EOF
{"seconds": $seconds, "warmup": $warmup, "raw_seconds": $raw_seconds,
 "torch_threads": "${torch_threads:-auto}", "http_threads": "${http_threads:-default}",
 "wrk_threads": $wrk_threads, "main_rows": $run_main, "edge_rows": $run_edge,
 "protocol_rows": $run_protocols, "cache_rows": $run_cache,
 "edge_conns": $edge_conns, "idle_conns": $idle_conns, "idle_seconds": $idle_seconds,
 "probes": $probes, "probe_timeout_s": $probe_timeout, "machine_busy_pct_at_start": $busy_pct, "wait_quiet_s": $wait_quiet, "rounds": $rounds, "peer_workers": 2, "nproc": $(nproc),
 "commit": "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"}
EOF

# --- servers ------------------------------------------------------------------
server_pid=
server_url=

wait_until() { # seconds description command...
    local limit=$1 what=$2 i
    shift 2
    for (( i = 0; i < limit * 10; i++ )); do
        if "$@"; then return 0; fi
        if [[ -n "$server_pid" ]] && ! kill -0 "$server_pid" 2>/dev/null; then
            echo "run.sh: the server exited while waiting for $what" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "run.sh: timed out after ${limit}s waiting for $what" >&2
    return 1
}

start_actorserve() { # repository tag [more actorserve flags...]
    local repo=$1 tag=$2 out="$results/actorserve-$2-r$round"
    shift 2
    # wrk is one client without a key: lift the per-client rate limits (the
    # peer's limiter is set high the same way).
    local flags=(--model-repository "$repo" --port 0 --log-level warn
                 --anonymous-rate-per-s 0 --predict-rate-per-s 0)
    [[ -n "$torch_threads" ]] && flags+=(--torch-threads "$torch_threads")
    flags+=("$@")
    [[ -n "$http_threads" ]] && flags+=(--http-threads "$http_threads")
    # Run in the results directory: CAF may read a stray caf-application.ini.
    (cd "$results" && exec "$build/actorserve" "${flags[@]}") >"$out.out" 2>"$out.err" &
    server_pid=$!
    started_pids+=("$server_pid")
    wait_until 300 "actorserve ($tag) to be ready" grep -qs '^actorserve ready on http://' "$out.out"
    server_url=$(sed -n 's|^actorserve ready on \(http://[^ ]*\)$|\1|p' "$out.out" | head -1)
    log "actorserve ($tag) ready on $server_url, pid $server_pid"
}

free_port() {
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# True once the server lists an available version of digits hosted on another
# node (a version with a "node" field).
lists_remote_digits() {
    curl -sf --max-time 2 "$server_url/api/v1/models/digits" | "$python" -c '
import json, sys
versions = json.load(sys.stdin).get("versions", [])
sys.exit(0 if any(v.get("state") == "available" and v.get("node") for v in versions) else 1)'
}

peer_healthy() { curl -sf -o /dev/null --max-time 2 "$server_url/health"; }

# True when the tree's RSS has not moved by more than 1 % over a second:
# both gunicorn workers import torch and load the models after the first
# one answers /health.
rss_settled() {
    local a b
    a=$($tool proc "$server_pid" | sed 's/.*"rss_kb": \([0-9]*\).*/\1/')
    sleep 1
    b=$($tool proc "$server_pid" | sed 's/.*"rss_kb": \([0-9]*\).*/\1/')
    (( b - a < a / 100 && a - b < a / 100 ))
}

start_peer() { # repository tag
    local repo=$1 tag=$2 out="$results/peer-$2-r$round" port
    port=$(free_port)
    PEER_MODEL_REPOSITORY="$repo" PEER_TORCH_THREADS="${torch_threads:-1}" \
        gunicorn -w 2 -b "127.0.0.1:$port" --chdir "$peer_dir" --graceful-timeout 5 \
        --log-level warning seed_flask_server:app >"$out.out" 2>"$out.err" &
    server_pid=$!
    started_pids+=("$server_pid")
    server_url="http://127.0.0.1:$port"
    wait_until 300 "the peer ($tag) to answer /health" peer_healthy
    wait_until 60 "the peer's workers ($tag) to finish loading" rss_settled
    log "peer ($tag) ready on $server_url, pid $server_pid"
}

stop_server() {
    stop_pid "$server_pid"
    local kept=() pid
    for pid in "${started_pids[@]}"; do
        [[ "$pid" == "$server_pid" ]] || kept+=("$pid")
    done
    started_pids=("${kept[@]}")
    server_pid=
    server_url=
}

# --- measurements -----------------------------------------------------------
check_answer() { # server model body
    local status
    status=$(curl -s -o "$results/answer-$1-$2.json" -w '%{http_code}' --max-time 30 \
        -H 'Content-Type: application/json' --data-binary "@$3" \
        "$server_url/api/v1/models/$2/predict")
    log "$1 $2: HTTP $status, top-1 $($tool label "$results/answer-$1-$2.json")"
    [[ "$status" == 200 ]] || { echo "run.sh: $1 did not answer 200 for $2" >&2; exit 1; }
}

# The load generator of measure_path: run_wrk, or run_grpc_load
# (protocol_rows.sh), called with the same four arguments.
load_runner=run_wrk

run_wrk() { # seconds connections path body (empty body: GET)
    BENCH_BODY=$4 wrk -t "$wrk_threads" -c "$2" -d "${1}s" --timeout 10s --latency \
        -s "$root/bench/post.lua" "$server_url$3"
}

machine_busy_s() { # CPU seconds all cores have been busy since boot
    local _ user nice system irq softirq steal
    read -r _ user nice system _ _ irq softirq steal _ </proc/stat
    echo "$(( user + nice + system + irq + softirq + steal )) $(getconf CLK_TCK)" |
        awk '{ printf "%.2f", $1 / $2 }'
}

measure() { # scenario server model connections body
    measure_path "$1" "$2" "/api/v1/models/$3/predict" "$4" "$5"
}

measure_path() { # scenario server path connections body (empty: GET)
    local scenario=$1 server=$2 path=$3 conns=$4 body=$5 before after line raw
    local busy_before busy_after wrk_cpu TIMEFORMAT='%U %S'
    wait_for_quiet
    if (( warmup > 0 )); then
        "$load_runner" "$warmup" "$conns" "$path" "$body" >/dev/null
    fi
    raw="$results/wrk-$scenario-$server-r$round.txt"
    log "$server $scenario: ${load_runner#run_} -c $conns for ${seconds}s"
    curl -sf --max-time 5 -o "$raw.metrics-before" "$server_url/metrics" || true
    before=$($tool proc "$server_pid")
    busy_before=$(machine_busy_s)
    # `time` reports wrk's own CPU; the machine's busy time minus the
    # server's and wrk's is what other processes took during the run.
    wrk_cpu=$({ time "$load_runner" "$seconds" "$conns" "$path" "$body" >"$raw" 2>"$raw.err"; } 2>&1)
    busy_after=$(machine_busy_s)
    after=$($tool proc "$server_pid")
    curl -sf --max-time 5 -o "$raw.metrics-after" "$server_url/metrics" || true
    line=$(sed -n 's/^BENCH_JSON //p' "$raw")
    [[ -n "$line" ]] || { echo "run.sh: no result from wrk, see $raw" >&2; exit 1; }
    BENCH_ROUND=$round $tool http-row "$scenario" "$server" "$conns" "$line" "$before" "$after" "$wrk_cpu" \
        "$busy_before" "$busy_after" "$raw.metrics-before" "$raw.metrics-after" \
        >>"$results/http.jsonl"
    tail -1 "$results/http.jsonl" >&2
}

record_memory() { # scenario server
    local m
    m=$($tool proc "$server_pid")
    printf '{"scenario": "%s", "server": "%s", "round": %d, %s\n' "$1" "$2" "$round" "${m#\{}" \
        >>"$results/rss.jsonl"
    log "$2 $1: $m"
}

# --- the HTTP edge rows (issue 13) --------------------------------------------
nginx_pid=
nginx_url=

# nginx, one process (no master, 1 worker), on a free loopback port with its
# own prefix and configuration, serving FILE at /health over keep-alive (as
# many requests per connection as actorserve's --keep-alive-max-count).
start_nginx() { # file
    local dir="$results/nginx-r$round" port
    rm -rf "$dir"
    mkdir -p "$dir/html" "$dir/logs"
    cp "$1" "$dir/html/health"
    port=$(free_port)
    cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    default_type application/json;
    keepalive_timeout 65s;
    keepalive_requests 10000;
    server {
        listen 127.0.0.1:$port;
        root $dir/html;
        location = /health { }
    }
}
EOF
    "$nginx" -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" >"$dir/logs/out" 2>&1 &
    nginx_pid=$!
    started_pids+=("$nginx_pid")
    nginx_url="http://127.0.0.1:$port"
    wait_until 30 "nginx to answer /health" curl -sf -o /dev/null --max-time 2 "$nginx_url/health"
    log "nginx ready on $nginx_url, pid $nginx_pid, /health body $(stat -c %s "$1") bytes"
}

stop_nginx() {
    local kept=() pid
    stop_pid "$nginx_pid"
    for pid in "${started_pids[@]}"; do
        [[ "$pid" == "$nginx_pid" ]] || kept+=("$pid")
    done
    started_pids=("${kept[@]}")
    nginx_pid=
}

check_status() { # path body
    local status
    status=$(curl -s -o "$results/answer-edge${1//\//-}" -w '%{http_code}' --max-time 30 \
        -H 'Content-Type: application/json' --data-binary "@$2" "$server_url$1")
    [[ "$status" == 200 ]] || { echo "run.sh: actorserve answered $status for $1" >&2; exit 1; }
}

edge_rows() {
    local as_pid as_url mode
    log "HTTP edge: pipelining, floor against nginx, fairness at $edge_conns connections"
    start_actorserve "$models/repo-edge" edge
    check_status /api/v1/models/digits/predict "$digits_body"
    check_status /api/v1/models/affine/predict "$affine_body"
    curl -sf --max-time 5 -o "$results/health-r$round.json" "$server_url/health"

    BENCH_ROUND=$round $tool pipelining --url "$server_url" --count 16 --body "$affine_body" \
        --predict-path /api/v1/models/affine/predict >>"$results/edge.jsonl"
    tail -1 "$results/edge.jsonl" >&2

    # Floor: CPU per request, nginx before and after actorserve's three rows.
    start_nginx "$results/health-r$round.json"
    as_pid=$server_pid as_url=$server_url
    server_pid=$nginx_pid server_url=$nginx_url
    measure_path floor_health nginx /health 32 ""
    server_pid=$as_pid server_url=$as_url
    measure_path floor_health actorserve /health 32 ""
    measure floor_affine actorserve affine 32 "$affine_body"
    measure floor_digits actorserve digits 32 "$digits_body"
    server_pid=$nginx_pid server_url=$nginx_url
    measure_path floor_health nginx /health 32 ""
    server_pid=$as_pid server_url=$as_url
    stop_nginx

    wait_for_quiet
    log "actorserve fairness: wrk -c $edge_conns on digits, $probes new clients"
    BENCH_ROUND=$round $tool fairness --url "$server_url/api/v1/models/digits/predict" \
        --body "$digits_body" --conns "$edge_conns" --seconds "$seconds" --probes "$probes" \
        --probe-timeout "$probe_timeout" --wrk-threads "$wrk_threads" \
        --lua "$root/bench/post.lua" --pid "$server_pid" \
        --raw "$results/wrk-fairness-r$round.txt" >>"$results/edge.jsonl"
    tail -1 "$results/edge.jsonl" >&2
    stop_server

    # Idle: a fresh server per mode, so that RSS growth is the connections'.
    for mode in request connect; do
        log "actorserve idle: $idle_conns connections ($mode), ${idle_seconds}s"
        start_actorserve "$models/repo-edge" "edge-idle-$mode" \
            --keep-alive-timeout-s 3600 --read-timeout-s 3600
        check_status /api/v1/models/affine/predict "$affine_body"
        curl -sf --max-time 5 -o /dev/null "$server_url/health"
        sleep 1
        wait_for_quiet
        BENCH_ROUND=$round $tool idle --url "$server_url" --pid "$server_pid" \
            --conns "$idle_conns" --seconds "$idle_seconds" --mode "$mode" \
            >>"$results/edge.jsonl"
        tail -1 "$results/edge.jsonl" >&2
        stop_server
    done
}

# shellcheck source=bench/protocol_rows.sh
source "$root/bench/protocol_rows.sh"
# shellcheck source=bench/cache_rows.sh
source "$root/bench/cache_rows.sh"

digits_body="$results/bodies/digits.json"
resnet_body="$results/bodies/resnet18.json"
affine_body="$results/bodies/affine.json"

# The rows of issue 3: actorserve against the peer, raw libtorch.
main_rows() {
    log "digits: actorserve (batching on), 32 and 64 connections"
    start_actorserve "$models/repo-digits" digits
    check_answer actorserve digits "$digits_body"
    measure digits32 actorserve digits 32 "$digits_body"
    measure digits64_on actorserve digits 64 "$digits_body"
    stop_server

    log "digits: actorserve (batching off: max_batch_size 1, max_queue_delay_us 0), 64 connections"
    start_actorserve "$models/repo-digits-nobatch" digits-nobatch
    check_answer actorserve-nobatch digits "$digits_body"
    measure digits64_off actorserve digits 64 "$digits_body"
    stop_server

    log "digits: one remote hop, 32 connections: direct to node A, then through gateway G"
    cluster_port=$(free_port)
    start_actorserve "$models/repo-digits" digits-node --cluster-port "$cluster_port"
    node_pid=$server_pid
    measure digits32_direct actorserve digits 32 "$digits_body"
    start_actorserve "$models/repo-empty" digits-gateway --join "127.0.0.1:$cluster_port"
    wait_until 60 "the gateway to list digits on node A" lists_remote_digits
    check_answer actorserve-gateway digits "$digits_body"
    # The row's server CPU and RSS are the gateway's alone; node A serves too.
    measure digits32_gateway actorserve digits 32 "$digits_body"
    stop_server
    server_pid=$node_pid
    stop_server

    if (( variants )); then
        log "digits variant: actorserve with instances 2, 32 connections"
        start_actorserve "$models/repo-digits-i2" digits-i2
        check_answer actorserve-i2 digits "$digits_body"
        measure digits32_i2 actorserve digits 32 "$digits_body"
        stop_server
    fi

    log "digits: peer, 32 and 64 connections"
    start_peer "$models/repo-digits" digits
    check_answer peer digits "$digits_body"
    measure digits32 peer digits 32 "$digits_body"
    measure digits64 peer digits 64 "$digits_body"
    stop_server

    log "resnet18: actorserve, 8 connections"
    start_actorserve "$models/repo-resnet18" resnet18
    sleep 2
    record_memory resnet18_idle actorserve
    check_answer actorserve resnet18 "$resnet_body"
    measure resnet8 actorserve resnet18 8 "$resnet_body"
    record_memory resnet18_after actorserve
    stop_server

    # Raw in-process libtorch, right after actorserve's resnet18 run so that the
    # two are compared on the same machine minute.
    for threads in $(printf "%s\n" 1 2 "${torch_threads:-$(nproc)}" | sort -un); do
        log "resnet18 raw in-process libtorch, torch threads $threads"
        wait_for_quiet
        "$build/bench/torch_throughput" --model "$models/repo-resnet18/resnet18/1/model.pt" \
            --shape 3,224,224 --threads "$threads" --batches 1,4,8 --seconds "$raw_seconds" \
            --json "$results/raw-t$threads-r$round.json" >&2
    done

    if (( variants )); then
        log "resnet18 variant: actorserve with instances 1, 8 connections"
        start_actorserve "$models/repo-resnet18-i1" resnet18-i1
        check_answer actorserve-i1 resnet18 "$resnet_body"
        measure resnet8_i1 actorserve resnet18 8 "$resnet_body"
        stop_server
    fi

    log "resnet18: peer, 8 connections"
    start_peer "$models/repo-resnet18" resnet18
    record_memory resnet18_idle peer
    check_answer peer resnet18 "$resnet_body"
    measure resnet8 peer resnet18 8 "$resnet_body"
    record_memory resnet18_after peer
    stop_server
}

for (( round = 1; round <= rounds; round++ )); do
    (( rounds == 1 )) || log "round $round of $rounds"
    if (( run_main )); then main_rows; fi
    if (( run_edge )); then edge_rows; fi
    if (( run_protocols )); then protocol_rows; fi
    if (( run_cache )); then cache_rows; fi
    if (( run_cpu )); then cpu_rows; fi
done

if (( run_main )); then
    log "HTTP-thread -> actor bridges, $bridge_calls round trips each"
    wait_for_quiet
    (cd "$results" && "$build/bench/bridge_bench" --calls "$bridge_calls" --threads 1,8 \
        --json "$results/bridge.json") >&2
fi

echo
if (( run_main || run_edge || run_protocols || run_cache )); then
    $tool report "$results"
fi
if (( run_cpu )); then
    "$python" "$root/bench/cpu_report.py" "$results" | tee "$results/cpu.md"
fi
