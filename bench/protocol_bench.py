"""The protocol rows of issue 14 (bench/protocol_rows.sh), used by
bench_tool.py: the request bodies of each protocol, equal in content to the
v1 bodies, and the table that compares the protocols.

Bodies, written beside the v1 ones (NAME is digits or affine):
  NAME.oip.json       Open Inference Protocol JSON (digits: BYTES, base64)
  NAME.oip.bin        the binary tensor extension: the JSON part, then the
                      tensor (digits: 4-byte little-endian length + PNG);
                      outputs asked back in binary (binary_data_output)
  NAME.oip.bin.hlen   the JSON part's length (Inference-Header-Content-Length)
  NAME.grpc.raw       the gRPC raw_input_contents of the same tensor
"""
import base64
import json
import struct
from pathlib import Path

from row_stats import cpu_us, fmt, median, paired_ratio, rps, spread_note, times

# Each model's one input: name, OIP datatype, shape of the one-row request.
INPUTS = {"digits": ("image", "BYTES", [1]), "affine": ("input", "FP32", [1, 2, 2])}
PROTOCOLS = [  # scenario suffix, label
    ("v1", "v1 JSON (HTTP)"),
    ("oipjson", "OIP JSON (HTTP)"),
    ("oipbin", "OIP binary (HTTP)"),
    ("grpc", "OIP gRPC"),
]
HTTP_PROTOCOLS = ("v1", "oipjson", "oipbin")
# Issue 14: no new door more than 10 % slower per request than v1 on digits.
DIGITS_SLOWER_LIMIT = 1.10


def _write_model_bodies(out: Path, model: str, raw: bytes, json_data: list) -> None:
    name, datatype, shape = INPUTS[model]
    tensor = {"name": name, "shape": shape, "datatype": datatype}
    (out / f"{model}.oip.json").write_text(
        json.dumps({"inputs": [dict(tensor, data=json_data)]}))
    header = json.dumps({"inputs": [dict(tensor, parameters={"binary_data_size": len(raw)})],
                         "parameters": {"binary_data_output": True}}).encode()
    (out / f"{model}.oip.bin").write_bytes(header + raw)
    (out / f"{model}.oip.bin.hlen").write_text(f"{len(header)}\n")
    (out / f"{model}.grpc.raw").write_bytes(raw)
    for suffix in ("oip.json", "oip.bin", "grpc.raw"):
        path = out / f"{model}.{suffix}"
        print(f"{path}: {path.stat().st_size} bytes")


def write_bodies(out: Path, digit_png: bytes, affine_rows: list) -> None:
    """The OIP and gRPC bodies of the digit image and the affine tensor that
    the v1 bodies carry."""
    _write_model_bodies(out, "digits", struct.pack("<I", len(digit_png)) + digit_png,
                        [base64.b64encode(digit_png).decode()])
    flat = [float(x) for row in affine_rows for x in row]
    _write_model_bodies(out, "affine", struct.pack(f"<{len(flat)}f", *flat), flat)


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------


def _client_us(row):
    return 1e6 * row["wrk_cpu_s"] / row["requests"] if row["requests"] else None


def _by_round(runs, model, protocol):
    return {r["round"]: r for r in runs
            if r["scenario"] == f"proto_{model}_{protocol}" and r["server"] == "actorserve"}


def protocol_report(all_runs: list):
    """(header, rows, targets) of the protocol rows found in http.jsonl."""
    header = ["model", "protocol", "req/s", "p50 ms", "p99 ms", "server CPU us/req",
              "server cores", "client CPU us/req", "non-OK", "req/s vs v1", "CPU/req vs v1", "note"]
    rows, targets = [], []
    for model in INPUTS:
        rounds = {p: _by_round(all_runs, model, p) for p, _ in PROTOCOLS}
        if not any(rounds.values()):
            continue
        v1 = rounds["v1"]
        medians = {}
        for protocol, label in PROTOCOLS:
            runs = list(rounds[protocol].values())
            if not runs:
                continue
            m = {"rps": median(rps(r) for r in runs),
                 "p50": median(r["p50_us"] / 1000 for r in runs),
                 "p99": median(r["p99_us"] / 1000 for r in runs),
                 "cpu": median(cpu_us(r) for r in runs),
                 "cores": median(r["server_cpu_s"] / (r["duration_us"] / 1e6) for r in runs),
                 "client": median(_client_us(r) for r in runs),
                 "bad": sum(r["non2xx"] + r["connect_errors"] + r["read_errors"]
                            + r["write_errors"] + r["timeouts"] for r in runs),
                 "rps_ratio": paired_ratio(rounds[protocol], v1, rps),
                 "cpu_ratio": paired_ratio(rounds[protocol], v1, cpu_us)}
            medians[protocol] = m
            note = spread_note(runs)
            rows.append([model, label, fmt(m["rps"], ".0f"), fmt(m["p50"], ".2f"),
                         fmt(m["p99"], ".2f"), fmt(m["cpu"], ".1f"), fmt(m["cores"], ".2f"),
                         fmt(m["client"], ".1f"),
                         str(m["bad"]),
                         "-" if protocol == "v1" else times(m["rps_ratio"]),
                         "-" if protocol == "v1" else times(m["cpu_ratio"]),
                         note])
        targets += _model_targets(model, rounds, medians)
    return header, rows, targets


def _model_targets(model, rounds, medians):
    targets = []
    have = lambda *ps: all(p in medians for p in ps)  # noqa: E731
    if model == "affine" and have("v1", "oipbin"):
        ratio = medians["oipbin"]["rps_ratio"]
        targets.append(("affine: OIP binary req/s >= v1 JSON", ratio is not None and ratio >= 1.0,
                        f"{times(ratio)} (server CPU/req {times(medians['oipbin']['cpu_ratio'])})"))
    http = [p for p in HTTP_PROTOCOLS if p in medians]
    if "grpc" in medians and http:
        ratios = {p: paired_ratio(rounds["grpc"], rounds[p], rps) for p in http}
        worst = min(ratios, key=lambda p: ratios[p] or 0.0)
        ok = all(r is not None and r >= 1.0 for r in ratios.values())
        targets.append((f"{model}: gRPC req/s >= every HTTP door's", ok,
                        ", ".join(f"{times(ratios[p])} {p}" for p in http)
                        + f" (lowest against {worst})"))
    if model == "digits" and "v1" in medians:
        for protocol, label in PROTOCOLS[1:]:
            if protocol not in medians:
                continue
            m = medians[protocol]
            # Slower per request: wall time per request (1 / req/s at the same
            # concurrency) and server CPU per request, each within 10 %.
            time_ratio = 1 / m["rps_ratio"] if m["rps_ratio"] else None
            ok = (time_ratio is not None and time_ratio <= DIGITS_SLOWER_LIMIT
                  and m["cpu_ratio"] is not None and m["cpu_ratio"] <= DIGITS_SLOWER_LIMIT)
            targets.append((f"digits: {label} per request <= {DIGITS_SLOWER_LIMIT:.2f}x v1 "
                            "(time and server CPU)", ok,
                            f"time {times(time_ratio)}, CPU {times(m['cpu_ratio'])}"))
    return targets
