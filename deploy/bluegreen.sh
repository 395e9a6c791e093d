#!/usr/bin/env bash
# Blue-green switch of actorserve behind nginx, for plain processes or for the
# compose stack (deploy/compose.yaml). One switch:
#   1. start the idle colour (process: the flags after `--`; compose: the service)
#   2. wait until its /ready answers 200 (a failed start leaves the old colour serving)
#   3. point nginx's upstream at it, `nginx -s reload`, and wait until every old
#      nginx worker has exited (a rejected config leaves them running: roll back)
#   4. point Prometheus' file_sd target list at it
#   5. SIGTERM the old colour: /ready turns 503, in-flight requests finish, exit 0
#
# Usage: deploy/bluegreen.sh [options] switch [-- actorserve flags...]
#        deploy/bluegreen.sh [options] status | stop
# Options:
#   --compose                drive the compose stack (services blue, green, nginx)
#   --compose-file FILE      default: deploy/compose.yaml
#   --state-dir DIR          pids, ports, logs, active colour (process mode)
#                            default: /run/actorserve-bluegreen
#   --upstream FILE          the nginx include this script owns
#                            default: STATE/upstream.conf, compose: deploy/nginx/upstream/actorserve.conf
#   --targets FILE           Prometheus file_sd list naming the active colour
#                            default: none, compose: deploy/prometheus/targets/actorserve.json
#   --nginx "CMD"            how to call nginx (process mode), default: nginx
#   --nginx-pid FILE         nginx master pid file (process mode), default: /run/nginx.pid
#   --binary FILE            actorserve binary (process mode), default: build/actorserve
#   --host ADDR              the colours' listen address (process mode), default: 127.0.0.1
#   --ready-timeout-s N      default 300;  --drain-timeout-s N  default 60
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=process
compose_file=$root/deploy/compose.yaml
state=/run/actorserve-bluegreen
upstream='' targets='' nginx=nginx nginx_pid=/run/nginx.pid
binary=$root/build/actorserve host=127.0.0.1
ready_timeout_s=300 drain_timeout_s=60

die() { echo "bluegreen: $*" >&2; exit 1; }
say() { echo "bluegreen: $*" >&2; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --compose) mode=compose ;;
        --compose-file) compose_file=$2; shift ;;
        --state-dir) state=$2; shift ;;
        --upstream) upstream=$2; shift ;;
        --targets) targets=$2; shift ;;
        --nginx) nginx=$2; shift ;;
        --nginx-pid) nginx_pid=$2; shift ;;
        --binary) binary=$2; shift ;;
        --host) host=$2; shift ;;
        --ready-timeout-s) ready_timeout_s=$2; shift ;;
        --drain-timeout-s) drain_timeout_s=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $1" ;;
        *) break ;;
    esac
    shift
done
command=${1:-}
[[ $# -gt 0 ]] && shift
[[ "${1:-}" == "--" ]] && shift
if [[ $mode == compose ]]; then
    upstream=${upstream:-$root/deploy/nginx/upstream/actorserve.conf}
    targets=${targets:-$root/deploy/prometheus/targets/actorserve.json}
else
    upstream=${upstream:-$state/upstream.conf}
    mkdir -p "$state"
fi

other() { [[ $1 == blue ]] && echo green || echo blue; }
dc() { docker compose -f "$compose_file" "$@"; }

# Prints every file atomically (readers such as nginx never see half a file).
write_atomically() {
    mkdir -p "$(dirname "$1")"
    cat >"$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"
}

# --- the colours: process mode keeps pid, port and exit code in $state -------
active_colour() {
    if [[ $mode == compose ]]; then
        sed -n 's/^ *server \(blue\|green\):.*/\1/p' "$upstream" 2>/dev/null | head -n1
    else
        cat "$state/active" 2>/dev/null || true
    fi
}

colour_address() { # the host:port nginx and Prometheus should use
    if [[ $mode == compose ]]; then echo "$1:8080"; else echo "$host:$(cat "$state/$1.port")"; fi
}

start_colour() {
    local colour=$1; shift
    if [[ $mode == compose ]]; then
        # The shared state the colours use (Redis), when the stack has it.
        if dc config --services | grep -x redis >/dev/null; then dc up -d redis; fi
        dc up -d --no-deps "$colour"
        return
    fi
    [[ -x $binary ]] || binary=$(command -v actorserve) || die "no actorserve binary"
    if [[ -s $state/$colour.pid && ! -e $state/$colour.exit ]] &&
        kill -0 "$(cat "$state/$colour.pid")" 2>/dev/null; then
        die "$colour is still running (pid $(cat "$state/$colour.pid")): '$0 stop' it first"
    fi
    rm -f "$state/$colour".{pid,port,exit,out}
    # setsid: the colour outlives this script and the caller's terminal.
    # shellcheck disable=SC2016 # expanded by the inner bash
    setsid bash -c '"$@" & echo $! >"$0.pid"; wait $!; echo $? >"$0.exit"' \
        "$state/$colour" "$binary" --host "$host" --port 0 "$@" \
        >"$state/$colour.out" 2>>"$state/$colour.log" </dev/null &
    local deadline=$((SECONDS + ready_timeout_s)) line
    until line=$(grep -m1 -o 'ready on http://.*' "$state/$colour.out" 2>/dev/null); do
        if [[ -e $state/$colour.exit ]] || ((SECONDS > deadline)); then
            tail -n 20 "$state/$colour.log" >&2 || true
            kill -KILL "$(cat "$state/$colour.pid" 2>/dev/null)" 2>/dev/null || true
            say "$colour did not print its ready line"
            return 1
        fi
        sleep 0.1
    done
    echo "${line##*:}" >"$state/$colour.port"
}

colour_ready() {
    if [[ $mode == compose ]]; then
        dc exec -T "$1" curl -fsS -o /dev/null http://127.0.0.1:8080/ready 2>/dev/null
    else
        curl -fsS -o /dev/null "http://$(colour_address "$1")/ready" 2>/dev/null
    fi
}

wait_ready() {
    local deadline=$((SECONDS + ready_timeout_s))
    until colour_ready "$1"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# Sends SIGTERM and waits until the colour has drained and exited; fails when
# it did not exit, or exited with a non-zero code.
stop_colour() {
    local colour=$1 code
    if [[ $mode == compose ]]; then
        dc stop -t "$drain_timeout_s" "$colour" >&2
        code=$(docker inspect -f '{{.State.ExitCode}}' "$(dc ps -aq "$colour")")
    else
        [[ -e $state/$colour.pid ]] || return 0
        if [[ -s $state/$colour.exit ]]; then # gone already (crashed or killed)
            say "$colour had already exited with code $(cat "$state/$colour.exit")"
            rm -f "$state/$colour.pid"
            return 0
        fi
        kill -TERM "$(cat "$state/$colour.pid")" 2>/dev/null || true
        local deadline=$((SECONDS + drain_timeout_s + 10))
        until [[ -s $state/$colour.exit ]]; do
            if ((SECONDS > deadline)); then
                kill -KILL "$(cat "$state/$colour.pid")" 2>/dev/null || true
                die "$colour did not drain within ${drain_timeout_s}s; killed"
            fi
            sleep 0.1
        done
        code=$(cat "$state/$colour.exit")
        rm -f "$state/$colour.pid"
    fi
    [[ $code == 0 ]] || die "$colour exited with code $code"
    say "$colour drained and exited 0"
}

# --- nginx ------------------------------------------------------------------
nginx_running() {
    if [[ $mode == compose ]]; then
        [[ -n $(dc ps -q --status running nginx 2>/dev/null) ]]
    else
        [[ -s $nginx_pid ]] && kill -0 "$(cat "$nginx_pid")" 2>/dev/null
    fi
}

# The pids of nginx's worker processes (children of the master).
nginx_workers() {
    # shellcheck disable=SC2016 # expanded by the inner sh
    local list='for d in /proc/[0-9]*; do
        set -- $(cat "$d/stat" 2>/dev/null) && [ "$4" = "$0" ] && echo "$1"; done; true'
    if [[ $mode == compose ]]; then
        dc exec -T nginx sh -c "$list" 1
    else
        sh -c "$list" "$(cat "$nginx_pid")"
    fi
}

# Reloads nginx and waits until all workers of the old configuration have
# finished their requests and exited. Fails if they do not (e.g. the new
# configuration was rejected).
reload_nginx() {
    local old new deadline=$((SECONDS + drain_timeout_s))
    old=$(nginx_workers | sort)
    if [[ $mode == compose ]]; then dc exec -T nginx nginx -s reload; else $nginx -s reload; fi
    while :; do
        new=$(nginx_workers | sort)
        [[ -n $new && -z $(comm -12 <(echo "$old") <(echo "$new")) ]] && return 0
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}

point_at() {
    local address
    address=$(colour_address "$1")
    write_atomically "$upstream" <<EOF
# Written by deploy/bluegreen.sh: the serving colour is $1.
upstream actorserve {
    server $address max_fails=0;
    keepalive 32;
    keepalive_timeout 4s; # below actorserve's --keep-alive-timeout-s (5)
}
EOF
    if [[ -n $targets ]]; then
        write_atomically "$targets" <<EOF
[{"targets": ["$address"], "labels": {"colour": "$1"}}]
EOF
    fi
}

# --- commands ---------------------------------------------------------------
switch() {
    local from to
    from=$(active_colour)
    to=$(other "${from:-green}")
    say "starting $to${from:+ (serving: $from)}"
    start_colour "$to" "$@" || die "$to did not start; ${from:-nothing} keeps serving"
    if ! wait_ready "$to"; then
        stop_colour "$to" || true
        die "$to never answered /ready; $from keeps serving"
    fi
    point_at "$to"
    if nginx_running; then
        if ! reload_nginx; then
            if [[ -n $from ]]; then point_at "$from"; reload_nginx || true; fi
            stop_colour "$to" || true
            die "nginx did not take the new upstream; rolled back to ${from:-nothing}"
        fi
    elif [[ $mode == compose ]]; then
        dc up -d nginx prometheus
    else
        say "nginx is not running; start it with $upstream included"
    fi
    [[ $mode == process ]] && echo "$to" >"$state/active"
    say "nginx now sends traffic to $to ($(colour_address "$to"))"
    if [[ -n $from ]]; then stop_colour "$from"; fi
    echo "$to"
}

status() {
    local colour
    colour=$(active_colour)
    [[ -n $colour ]] || { echo "no colour serving"; return 0; }
    echo "$colour $(colour_address "$colour")"
}

stop() {
    local colour
    for colour in blue green; do
        if [[ $mode == compose ]]; then dc stop -t "$drain_timeout_s" "$colour"; else stop_colour "$colour"; fi
    done
    rm -f "$state/active"
}

case "$command" in
    switch) switch "$@" ;;
    status) status ;;
    stop) stop ;;
    *) die "usage: $0 [options] switch [-- actorserve flags...] | status | stop" ;;
esac
