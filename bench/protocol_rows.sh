# The protocol rows of issue 14, sourced by bench/run.sh (they use its
# helpers and settings: start_actorserve, measure_path, log, $round,
# $results, $build). One actorserve with digits and affine and --grpc-port;
# for each model the same input (bench_tool.py bodies) over v1 JSON, Open
# Inference Protocol JSON, OIP binary (the binary tensor extension, outputs
# asked back in binary) over HTTP, driven by wrk, and OIP over gRPC, driven by
# bench/grpc_load (C++, asynchronous completion queue, one thread, 4
# channels), all at 32 connections / calls in flight like the floor rows,
# with the server's CPU per request. The protocols take turns, the first one
# moving on by one each round, so that a slow minute of the shared machine
# does not always land on the same protocol. Scenarios: proto_MODEL_PROTOCOL.

protocol_conns=32
# gRPC multiplexes calls on a connection: 32 calls in flight over 4 TCP
# connections (each an HTTP/2 channel), beside wrk's 32 HTTP/1.1 connections.
grpc_channels=4
grpc_address=
protocol_order=(v1 oipjson oipbin grpc)

# grpc_load's description of a model's one input: name, datatype, shape.
grpc_input() { # model
    case $1 in
        digits) echo "image BYTES 1" ;;
        affine) echo "input FP32 1,2,2" ;;
        *) echo "protocol_rows: no gRPC input for $1" >&2; return 1 ;;
    esac
}

grpc_load() { # model raw_file [grpc_load flags...]
    local model=$1 raw=$2 name datatype shape
    shift 2
    read -r name datatype shape <<<"$(grpc_input "$model")"
    "$build/bench/grpc_load" --address "$grpc_address" --model "$model" \
        --input-name "$name" --datatype "$datatype" --shape "$shape" --raw "$raw" "$@"
}

# measure_path's load runner for the gRPC rows: "path" is the model.
run_grpc_load() { # seconds concurrency model raw_file
    grpc_load "$3" "$4" --seconds "$1" --concurrency "$2" --channels "$grpc_channels" \
        --threads 1
}

binary_headers() { # body
    printf 'Inference-Header-Content-Length: %s\nContent-Type: application/octet-stream' \
        "$(<"$1.hlen")"
}

check_http_answer() { # label model path body [curl arguments...]
    local label=$1 model=$2 path=$3 body=$4 out status
    shift 4
    out="$results/answer-proto-$model-${label// /-}"
    status=$(curl -s -o "$out" -D "$out.headers" -w '%{http_code}' --max-time 30 "$@" \
        --data-binary "@$body" "$server_url$path")
    log "$label $model: HTTP $status, $(stat -c %s "$out") bytes:" \
        "$(head -c 120 "$out" | tr -c '[:print:]' '.')"
    [[ "$status" == 200 ]] || { echo "run.sh: $label $model answered $status" >&2; exit 1; }
}

# One request per door before the load: each must answer 200 (gRPC: OK).
check_protocol_answers() { # model
    local model=$1 body="$results/bodies/$1"
    check_http_answer "v1 JSON" "$model" "/api/v1/models/$model/predict" "$body.json" \
        -H 'Content-Type: application/json'
    check_http_answer "OIP JSON" "$model" "/v2/models/$model/infer" "$body.oip.json" \
        -H 'Content-Type: application/json'
    check_http_answer "OIP binary" "$model" "/v2/models/$model/infer" "$body.oip.bin" \
        -H 'Content-Type: application/octet-stream' \
        -H "Inference-Header-Content-Length: $(<"$body.oip.bin.hlen")"
    grpc_load "$model" "$body.grpc.raw" --check >"$results/answer-proto-$model-grpc" ||
        { echo "run.sh: gRPC $model: $(cat "$results/answer-proto-$model-grpc")" >&2; exit 1; }
    log "OIP gRPC $model: $(head -1 "$results/answer-proto-$model-grpc")"
}

measure_protocol() { # model protocol
    local model=$1 protocol=$2 body="$results/bodies/$1"
    local scenario="proto_${model}_$protocol" path="/v2/models/$model/infer"
    case $protocol in
        v1) measure_path "$scenario" actorserve "/api/v1/models/$model/predict" \
                "$protocol_conns" "$body.json" ;;
        oipjson) measure_path "$scenario" actorserve "$path" "$protocol_conns" \
                "$body.oip.json" ;;
        oipbin) BENCH_HEADERS=$(binary_headers "$body.oip.bin") \
                measure_path "$scenario" actorserve "$path" "$protocol_conns" "$body.oip.bin" ;;
        grpc) load_runner=run_grpc_load
              measure_path "$scenario" actorserve "$model" "$protocol_conns" "$body.grpc.raw"
              load_runner=run_wrk ;;
    esac
}

protocol_rows() {
    local grpc_port model i n=${#protocol_order[@]}
    log "protocols: v1 JSON, OIP JSON, OIP binary, OIP gRPC on digits and affine, c=$protocol_conns"
    grpc_port=$(free_port)
    start_actorserve "$models/repo-edge" protocols --grpc-port "$grpc_port"
    grpc_address="127.0.0.1:$grpc_port"
    for model in digits affine; do
        check_protocol_answers "$model"
    done
    for model in digits affine; do
        for (( i = 0; i < n; i++ )); do
            measure_protocol "$model" "${protocol_order[(i + round - 1) % n]}"
        done
    done
    stop_server
}
