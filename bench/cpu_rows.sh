# The CPU-default rows of issue 17, sourced by bench/run.sh (they use its
# helpers and settings: make_repo, start_actorserve, measure, check_answer,
# stop_server, log, $round, $results, $build, $models, $raw_seconds). Models
# whose config.json says nothing about instances or threads, served with the
# server's defaults (--torch-threads 0 --instances 0: split by the CPU
# budget, config/compute_plan.hpp), against the targets of the issue:
#   - resnet18 at 8 connections against in-process libtorch at 2 threads,
#     batch 1 (bench/torch_throughput), in the same round;
#   - digits at 32 connections against today's tuned bundled config run as
#     it ran before these defaults (1 instance, 1 thread).
# Beside them the split the rule did not choose: 1 instance x 2 threads (and
# resnet18 at 1 connection both ways, where threads cut the latency). Every
# server run reports what each version got (cpu-plans.jsonl). The runs of a
# round take turns, the first moving on by one each round, so that a busy
# minute of the shared machine does not always land on the same run.
# Scenarios: cpu_<model>_<split>[_c1], raw cpu-raw-t<threads>-r<round>.json;
# bench/cpu_report.py turns them into
# per-round ratios with medians and ranges.

cpu_runs=(resnet_auto resnet_i1t2 raw_t2 digits_auto digits_today digits_i1t2 raw_t1)

# A copy of a model whose config.json says nothing about instances or threads.
make_untuned_repo() { # name model
    make_repo "$1" "$2"
    "$python" - "$models/$1/$2/config.json" <<'EOF'
import json, sys
path = sys.argv[1]
config = json.load(open(path))
config.pop("instances", None)
config.pop("threads", None)
open(path, "w").write(json.dumps(config, indent=2) + "\n")
EOF
}

# What each version of the model got, from /api/v1/models/{model}.
record_plan() { # scenario model
    curl -sf --max-time 5 "$server_url/api/v1/models/$2" | "$python" -c '
import json, sys
scenario, rnd = sys.argv[1], int(sys.argv[2])
for v in json.load(sys.stdin)["versions"]:
    print(json.dumps({"scenario": scenario, "round": rnd, "version": v["version"],
                      "instances": v.get("instances"), "threads": v.get("threads")}))' \
        "$1" "$round" >>"$results/cpu-plans.jsonl"
    log "$1: $(tail -1 "$results/cpu-plans.jsonl")"
}

# One server run: start with FLAGS (after run.sh's own, so they win), check,
# measure at each connection count, stop.
cpu_server_run() { # scenario repo model body "conns..." [flags...]
    local scenario=$1 repo=$2 model=$3 body=$4 conns=$5 c
    shift 5
    start_actorserve "$repo" "$scenario" --torch-threads 0 --instances 0 "$@"
    check_answer "actorserve-$scenario" "$model" "$body"
    record_plan "$scenario" "$model"
    for c in $conns; do
        if (( c == 1 )); then # wrk needs a connection per thread
            wrk_threads=1 measure "${scenario}_c1" actorserve "$model" 1 "$body"
        else
            measure "$scenario" actorserve "$model" "$c" "$body"
        fi
    done
    stop_server
}

# In-process libtorch on resnet18 at batch 1: the target at 2 threads; at 1
# thread it shows what sharing the cores with other processes did to the
# 2-thread team in the same round.
cpu_raw() { # threads
    log "resnet18 raw in-process libtorch, $1 thread(s), batch 1"
    wait_for_quiet
    "$build/bench/torch_throughput" \
        --model "$models/repo-resnet18-untuned/resnet18/1/model.pt" --shape 3,224,224 \
        --threads "$1" --batches 1 --seconds "$raw_seconds" \
        --json "$results/cpu-raw-t$1-r$round.json" >&2
}

cpu_run() { # run name
    case $1 in
        resnet_auto) cpu_server_run cpu_resnet18_auto "$models/repo-resnet18-untuned" \
                         resnet18 "$resnet_body" "8 1" ;;
        resnet_i1t2) cpu_server_run cpu_resnet18_i1t2 "$models/repo-resnet18-untuned" \
                         resnet18 "$resnet_body" "8 1" --instances 1 --torch-threads 2 ;;
        raw_t1 | raw_t2) cpu_raw "${1#raw_t}" ;;
        digits_auto) cpu_server_run cpu_digits_auto "$models/repo-digits" digits \
                         "$digits_body" 32 ;;
        digits_today) cpu_server_run cpu_digits_today "$models/repo-digits" digits \
                          "$digits_body" 32 --instances 1 --torch-threads 1 ;;
        digits_i1t2) cpu_server_run cpu_digits_i1t2 "$models/repo-digits" digits \
                         "$digits_body" 32 --instances 1 --torch-threads 2 ;;
    esac
}

cpu_rows() {
    local i n=${#cpu_runs[@]}
    log "CPU defaults: untuned resnet18 vs libtorch at 2 threads, untuned digits vs 1x1"
    for (( i = 0; i < n; i++ )); do
        cpu_run "${cpu_runs[(i + round - 1) % n]}"
    done
}
