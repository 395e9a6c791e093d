# The response cache rows of issue 16, sourced by bench/run.sh (they use its
# helpers and settings: start_actorserve, measure, log, $round, $results,
# $models, $python). The same digits request, repeated, at 32 connections:
# through `digits` (no cache: every request is a forward call) and through
# `digitscached` (the same model with "response_cache": {"enable": true}: all
# but the first request are hits) on one memory-cache server, and through
# `digitscached` on a second server whose cache is a redis-server started
# here. Both servers run side by side; the three rows take turns, the first
# one moving on by one each round. Scenarios: cache_off, cache_memory,
# cache_redis; bench/cache_bench.py reports them as per-round ratios to off.

cache_conns=32
cache_order=(off memory redis)
redis_pid=
redis_port=

redis_answers() { redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG; }

start_redis() {
    local dir="$results/redis-r$round"
    mkdir -p "$dir"
    redis_port=$(free_port)
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$dir" >"$dir/out" 2>&1 &
    redis_pid=$!
    started_pids+=("$redis_pid")
    wait_until 30 "redis-server to answer" redis_answers
    log "redis-server ready on 127.0.0.1:$redis_port, pid $redis_pid"
}

check_cache_answer() { # model expected_x_cache
    local out="$results/answer-cache-$1-r$round" cache
    curl -s -o "$out" -D "$out.headers" --max-time 30 -H 'Content-Type: application/json' \
        --data-binary "@$digits_body" "$server_url/api/v1/models/$1/predict" >/dev/null
    cache=$(sed -n 's/^[Xx]-[Cc]ache: *\([a-z]*\).*/\1/p' "$out.headers")
    log "cache $1: X-Cache '${cache}', top-1 $($tool label "$out")"
    [[ "$cache" == "$2" ]] || { echo "run.sh: $1 answered X-Cache '$cache', not '$2'" >&2; exit 1; }
}

cache_rows() {
    local memory_pid memory_url redis_server_pid redis_server_url i n=${#cache_order[@]} row
    log "response cache: digits repeated, c=$cache_conns: no cache, memory cache, Redis cache"
    start_redis
    start_actorserve "$models/repo-cache" cache-redis --cache redis \
        --redis-url "redis://127.0.0.1:$redis_port"
    redis_server_pid=$server_pid redis_server_url=$server_url
    check_cache_answer digitscached miss
    check_cache_answer digitscached hit
    start_actorserve "$models/repo-cache" cache-memory
    memory_pid=$server_pid memory_url=$server_url
    check_cache_answer digits ""
    check_cache_answer digitscached miss
    check_cache_answer digitscached hit
    for (( i = 0; i < n; i++ )); do
        row=${cache_order[(i + round - 1) % n]}
        case $row in
            off) server_pid=$memory_pid server_url=$memory_url
                 measure cache_off actorserve digits "$cache_conns" "$digits_body" ;;
            memory) server_pid=$memory_pid server_url=$memory_url
                 measure cache_memory actorserve digitscached "$cache_conns" "$digits_body" ;;
            redis) server_pid=$redis_server_pid server_url=$redis_server_url
                 measure cache_redis actorserve digitscached "$cache_conns" "$digits_body" ;;
        esac
    done
    server_pid=$memory_pid
    stop_server
    server_pid=$redis_server_pid
    stop_server
    stop_pid "$redis_pid"
}
