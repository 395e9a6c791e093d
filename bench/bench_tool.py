#!/usr/bin/python3
"""Helpers of bench/run.sh (Debian's /usr/bin/python3: it has cv2 and numpy).

  bench_tool.py bodies OUTDIR
      writes OUTDIR/digits.json (one 20x20 handwritten digit from OpenCV's
      digits.png, PNG, base64) and OUTDIR/resnet18.json (fruits.jpg resized
      to 224x224, JPEG, base64), both {"instances": [{"image": ...}]}.
  bench_tool.py config SRC DST KEY=VALUE...
      copies a model's config.json with batching keys replaced, e.g.
      batching.max_batch_size=1 batching.max_queue_delay_us=0.
  bench_tool.py check-config CONFIG
      fails unless the config has what the peer reads without defaults.
  bench_tool.py label RESPONSE_FILE
      prints the top-1 label of a predict answer (or the error).
  bench_tool.py proc PID
      prints {"rss_kb", "pss_kb", "cpu_s", "processes"} summed over PID and
      all its descendants (gunicorn: master + workers), from /proc.
  bench_tool.py http-row SCENARIO SERVER CONNS WRK_JSON PROC_BEFORE PROC_AFTER
                         WRK_CPU BUSY_BEFORE BUSY_AFTER METRICS_BEFORE METRICS_AFTER
      prints one result row (JSON) of a wrk run: wrk's numbers, the server's
      CPU and memory, the CPU other processes took meanwhile and, from
      actorserve's /metrics, what batching did during the run.
  bench_tool.py report RESULTS_DIR
      turns RESULTS_DIR/http.jsonl, raw-t*.json and bridge.json into the
      table (stdout), RESULTS_DIR/results.md and RESULTS_DIR/results.json.
"""
import base64
import json
import os
import sys
from pathlib import Path

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")


def b64_body(encoded: bytes) -> str:
    return json.dumps({"instances": [{"image": base64.b64encode(encoded).decode()}]})


def bodies(outdir: str) -> None:
    import cv2

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    digits = cv2.imread(str(OPENCV_DATA / "digits.png"), cv2.IMREAD_GRAYSCALE)
    if digits is None:
        sys.exit("cannot read digits.png (package opencv-doc)")
    # digits.png: 50 rows x 100 columns of 20x20 cells, 5 rows per digit.
    row, col = 35, 3  # a handwritten 7
    cell = digits[row * 20:(row + 1) * 20, col * 20:(col + 1) * 20]
    ok, png = cv2.imencode(".png", cell)
    assert ok
    (out / "digits.json").write_text(b64_body(png.tobytes()))

    fruits = cv2.imread(str(OPENCV_DATA / "fruits.jpg"), cv2.IMREAD_COLOR)
    if fruits is None:
        sys.exit("cannot read fruits.jpg (package opencv-doc)")
    small = cv2.resize(fruits, (224, 224), interpolation=cv2.INTER_AREA)
    ok, jpg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    (out / "resnet18.json").write_text(b64_body(jpg.tobytes()))
    for name in ("digits.json", "resnet18.json"):
        print(f"{out / name}: {(out / name).stat().st_size} bytes")


def config(src: str, dst: str, *assignments: str) -> None:
    data = json.loads(Path(src).read_text())
    for assignment in assignments:
        key, _, value = assignment.partition("=")
        node = data
        *path, leaf = key.split(".")
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = json.loads(value)
    Path(dst).write_text(json.dumps(data, indent=2) + "\n")


def check_config(path: str) -> None:
    data = json.loads(Path(path).read_text())
    spec = data.get("input", {})
    if spec.get("type", "image") == "image":
        missing = [k for k in ("width", "height") if k not in spec]
        if missing:
            sys.exit(f"{path}: the peer needs input.{', input.'.join(missing)}")


def label(path: str) -> None:
    try:
        body = json.loads(Path(path).read_text())
    except ValueError:
        print("not-json")
        return
    if "predictions" in body:
        top = body["predictions"][0]
        print(f"{top['label']} ({top['score']:.4f})")
    else:
        print(json.dumps(body)[:200])


def proc(pid: str) -> None:
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parents[int(entry.name)] = (int(fields[1]), fields)
    tree, frontier = set(), {int(pid)}
    while frontier:
        tree |= frontier
        frontier = {p for p, (pp, _) in parents.items() if pp in frontier and p not in tree}
    rss = pss = 0
    ticks = 0
    hz = os.sysconf("SC_CLK_TCK")
    for p in tree:
        if p not in parents:
            continue
        fields = parents[p][1]
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (stat fields 14, 15)
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            pass
    print(json.dumps({"rss_kb": rss, "pss_kb": pss, "cpu_s": ticks / hz,
                      "processes": len(tree & parents.keys())}))


def read_metrics(path: str) -> dict:
    """Prometheus text -> {metric name: value summed over its label sets}."""
    totals = {}
    try:
        text = Path(path).read_text()
    except OSError:
        return totals
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        try:
            totals[name] = totals.get(name, 0.0) + float(value)
        except ValueError:
            pass
    return totals


def batching_delta(before_path: str, after_path: str) -> dict:
    before, after = read_metrics(before_path), read_metrics(after_path)

    def delta(name):
        return after.get(name, 0.0) - before.get(name, 0.0)

    batches = delta("actorserve_batch_size_count")
    if batches <= 0:
        return {}
    rows = delta("actorserve_batch_size_sum")
    result = {"batches": int(batches), "batched_rows": int(rows),
              "mean_batch": round(rows / batches, 2)}
    calls = delta("actorserve_inference_seconds_count")
    if calls > 0:
        result["forward_ms_per_batch"] = round(
            1000 * delta("actorserve_inference_seconds_sum") / calls, 3)
    waits = delta("actorserve_queue_wait_seconds_count")
    if waits > 0:
        result["queue_wait_ms_mean"] = round(
            1000 * delta("actorserve_queue_wait_seconds_sum") / waits, 3)
    return result


def http_row(scenario, server, conns, wrk_json, before, after, wrk_cpu, busy0, busy1,
             metrics_before, metrics_after) -> None:
    row = {"scenario": scenario, "server": server, "connections": int(conns),
           "round": int(os.environ.get("BENCH_ROUND", "1"))}
    row.update(json.loads(wrk_json))
    b, a = json.loads(before), json.loads(after)
    server_cpu = a["cpu_s"] - b["cpu_s"]
    wrk = sum(float(x) for x in wrk_cpu.split())
    machine = float(busy1) - float(busy0)
    seconds = row["duration_us"] / 1e6
    row.update(rss_kb=a["rss_kb"], pss_kb=a["pss_kb"], processes=a["processes"],
               server_cpu_s=round(server_cpu, 3), wrk_cpu_s=round(wrk, 3),
               machine_busy_s=round(machine, 3),
               other_cores=round(max(0.0, machine - server_cpu - wrk) / seconds, 2))
    row.update(batching_delta(metrics_before, metrics_after))
    print(json.dumps(row))


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------

SCENARIOS = [
    # key, label
    ("digits32", "digits, 1 image/request, 32 conns"),
    ("resnet8", "resnet18 224x224 JPEG, 8 conns"),
    ("digits64_on", "digits, 64 conns, batching on"),
    ("digits64_off", "digits, 64 conns, batching off"),
    ("digits64", "digits, 64 conns"),
    ("digits32_direct", "digits, 32 conns, direct to node A (clustered)"),
    ("digits32_gateway", "digits, 32 conns, via gateway G -> node A"),
]


def load_jsonl(path: Path) -> list:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def mb(kb):
    return None if kb is None else kb / 1024.0


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def median_rows(rows: list, key, value) -> list:
    """One row per key(row): the one with the median value(row), with the
    number of rounds and the range of values it stands for."""
    groups = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    result = []
    for group in groups.values():
        ordered = sorted(group, key=value)
        chosen = dict(ordered[(len(ordered) - 1) // 2])
        chosen["rounds"] = len(ordered)
        chosen["range"] = (value(ordered[0]), value(ordered[-1]))
        result.append(chosen)
    return result


def report(results_dir: str) -> None:
    rdir = Path(results_dir)
    all_runs = load_jsonl(rdir / "http.jsonl")
    all_memory = load_jsonl(rdir / "rss.jsonl")
    meta = json.loads((rdir / "meta.json").read_text()) if (rdir / "meta.json").exists() else {}
    all_raw = []
    for f in sorted(rdir.glob("raw-t*.json")):
        all_raw.extend(json.loads(f.read_text()))
    bridge = json.loads((rdir / "bridge.json").read_text()) if (rdir / "bridge.json").exists() else []
    runs = median_rows(all_runs, lambda r: (r["scenario"], r["server"]),
                       lambda r: r["requests"] / r["duration_us"])
    memory = median_rows(all_memory, lambda m: (m["scenario"], m["server"]),
                         lambda m: m["rss_kb"])
    raw = sorted(median_rows(all_raw, lambda r: (r["threads"], r["batch"]),
                             lambda r: r["images_per_s"]),
                 key=lambda r: (r["threads"], r["batch"]))

    def run(key, server):
        for r in runs:
            if r["scenario"] == key and r["server"] == server:
                return r
        return None

    def rps(r):
        return r["requests"] / (r["duration_us"] / 1e6) if r else None

    rows = []  # scenario, server, req/s, p50 ms, p99 ms, non-2xx, RSS MB, PSS MB, cpu ms/req, others, ratio, note

    def add_http(key, label, server, ratio=None, note=""):
        r = run(key, server)
        if r is None:
            return
        errors = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
        cpu_ms = (1000.0 * r["server_cpu_s"] / r["requests"]) if r.get("requests") else None
        if errors:
            note = (note + "; " if note else "") + f"socket errors {errors}"
        if r.get("rounds", 1) > 1:
            lo, hi = (x * 1e6 for x in r["range"])
            note = (note + "; " if note else "") + f"median of {r['rounds']}: {lo:.0f}..{hi:.0f} req/s"
        rows.append([label, server, fmt(rps(r), ".0f"), fmt(r["p50_us"] / 1000, ".2f"),
                     fmt(r["p99_us"] / 1000, ".2f"), str(r["non2xx"]),
                     fmt(mb(r.get("rss_kb")), ".0f"), fmt(mb(r.get("pss_kb")), ".0f"),
                     fmt(cpu_ms, ".3f"), fmt(r.get("other_cores"), ".2f"), ratio or "", note])

    def ratio(a, b, suffix=""):
        return f"{a / b:.2f}x{suffix}" if a is not None and b else ""

    targets = []

    # digits, 32 conns
    a, p = run("digits32", "actorserve"), run("digits32", "peer")
    add_http("digits32", SCENARIOS[0][1], "actorserve", note=batch_note(a))
    add_http("digits32", SCENARIOS[0][1], "peer", ratio(rps(a), rps(p)))
    if a and p:
        targets.append(("digits 32 conns: actorserve >= 10x peer req/s",
                        rps(a) >= 10 * rps(p), f"{rps(a) / rps(p):.2f}x"))
        targets.append(("digits 32 conns: actorserve p99 < peer p99",
                        a["p99_us"] < p["p99_us"],
                        f"{a['p99_us'] / 1000:.2f} ms vs {p['p99_us'] / 1000:.2f} ms"))

    v = run("digits32_i2", "actorserve")
    if v:
        add_http("digits32_i2", SCENARIOS[0][1] + ", instances 2 (variant)", "actorserve",
                 ratio(rps(v), rps(p)),
                 note="; ".join(filter(None, ["not the shipped config", batch_note(v)])))

    # one remote hop: the same node measured directly, then through a gateway
    d, g = run("digits32_direct", "actorserve"), run("digits32_gateway", "actorserve")
    add_http("digits32_direct", SCENARIOS[5][1], "actorserve", note=batch_note(d))
    add_http("digits32_gateway", SCENARIOS[6][1], "actorserve",
             ratio(rps(g), rps(d), " (gateway/direct)"),
             note="server CPU and RSS: the gateway alone")

    # resnet18, 8 conns, and raw in-process
    a, p = run("resnet8", "actorserve"), run("resnet8", "peer")
    add_http("resnet8", SCENARIOS[1][1], "actorserve", note=batch_note(a))
    add_http("resnet8", SCENARIOS[1][1], "peer", ratio(rps(a), rps(p)))
    v = run("resnet8_i1", "actorserve")
    if v:
        add_http("resnet8_i1", SCENARIOS[1][1] + ", instances 1 (variant)", "actorserve",
                 ratio(rps(v), rps(p)),
                 note="; ".join(filter(None, ["not the shipped config", batch_note(v)])))
    server_threads = meta.get("torch_threads", 1)
    raw_b1 = None
    for r in raw:
        label = f"resnet18 raw in-process, batch {r['batch']}, torch threads {r['threads']}"
        rat = ""
        if r["batch"] == 1 and a:
            rat = ratio(rps(a), r["images_per_s"], " (actorserve/raw)")
        if r["batch"] == 1 and r["threads"] == server_threads:
            raw_b1 = r["images_per_s"]
        rows.append([label, "libtorch", f"{r['images_per_s']:.1f} img/s",
                     f"{r['ms_per_call_p50']:.2f}", "-", "-", "-", "-", "-",
                     fmt(r.get("other_cores"), ".2f"), rat,
                     "per forward call" + (f"; median of {r['rounds']}: {r['range'][0]:.1f}.."
                                           f"{r['range'][1]:.1f} img/s"
                                           if r["rounds"] > 1 else "")])
    if a and p:
        targets.append(("resnet18 8 conns: actorserve >= 1.0x peer req/s",
                        rps(a) >= rps(p), f"{rps(a) / rps(p):.2f}x"))
    if a and raw_b1:
        targets.append((f"resnet18 8 conns: actorserve >= 0.95x raw batch-1 "
                        f"(torch threads {server_threads})",
                        rps(a) >= 0.95 * raw_b1, f"{rps(a) / raw_b1:.2f}x"))

    # batching on vs off, 64 conns
    on, off = run("digits64_on", "actorserve"), run("digits64_off", "actorserve")
    add_http("digits64_on", SCENARIOS[2][1], "actorserve",
             note=batch_note(on))
    add_http("digits64_off", SCENARIOS[3][1], "actorserve", ratio(rps(on), rps(off), " (on/off)"),
             note=batch_note(off))
    if run("digits64", "peer"):
        add_http("digits64", SCENARIOS[4][1], "peer", ratio(rps(on), rps(run("digits64", "peer"))))
    if on and off:
        targets.append(("digits 64 conns: batching on >= 2x off", rps(on) >= 2 * rps(off),
                        f"{rps(on) / rps(off):.2f}x"))

    # RSS with resnet18 loaded
    def mem(key, server):
        for m in memory:
            if m["scenario"] == key and m["server"] == server:
                return m
        return None

    for key, label in (("resnet18_idle", "RSS, resnet18 loaded, idle"),
                       ("resnet18_after", "RSS, resnet18 loaded, after load")):
        ma, mp = mem(key, "actorserve"), mem(key, "peer")
        for server, m in (("actorserve", ma), ("peer", mp)):
            if m is None:
                continue
            rat = ""
            if server == "peer" and ma:
                rat = ratio(ma["rss_kb"], m["rss_kb"], " (RSS)")
            rows.append([label, f"{server} ({m['processes']} proc)", "-", "-", "-", "-",
                         fmt(mb(m["rss_kb"]), ".0f"), fmt(mb(m["pss_kb"]), ".0f"), "-", "-", rat,
                         ""])
        if ma and mp:
            targets.append((f"{label}: actorserve <= 0.5x peer",
                            ma["rss_kb"] <= 0.5 * mp["rss_kb"],
                            f"{ma['rss_kb'] / mp['rss_kb']:.2f}x "
                            f"(PSS {ma['pss_kb'] / mp['pss_kb']:.2f}x)"))

    header = ["scenario", "server", "req/s", "p50 ms", "p99 ms", "non-2xx", "RSS MB",
              "PSS MB", "server CPU ms/req", "others (cores)", "ratio", "note"]
    text = render_text(header, rows)
    md = render_md(header, rows)

    bridge_header = ["bridge", "threads", "calls", "p50 us", "p99 us", "calls/s", "errors"]
    bridge_rows = [[b["bridge"], str(b["threads"]), str(b["calls"]), f"{b['p50_us']:.1f}",
                    f"{b['p99_us']:.1f}", f"{b['calls_per_s']:.0f}", str(b["errors"])]
                   for b in bridge]

    target_lines = [f"  [{'PASS' if ok else 'MISS'}] {name}: {value}" for name, ok, value in targets]
    settings = ", ".join(f"{k}={v}" for k, v in sorted(meta.items()))

    print(text)
    if bridge_rows:
        print("\nHTTP-thread -> actor bridges (echo actor, one process):")
        print(render_text(bridge_header, bridge_rows))
    print("\ntargets (issue 3):")
    print("\n".join(target_lines))
    print(f"\nsettings: {settings}")

    (rdir / "results.md").write_text(
        "# actorserve benchmark\n\n" + f"Settings: {settings}\n\n" + md + "\n\n"
        + ("## HTTP-thread -> actor bridges\n\n" + render_md(bridge_header, bridge_rows) + "\n\n"
           if bridge_rows else "")
        + "## Targets (issue 3)\n\n" + "\n".join(f"- {line.strip()}" for line in target_lines)
        + "\n")
    (rdir / "results.json").write_text(json.dumps({
        "settings": meta, "http": all_runs, "rss": all_memory, "raw": all_raw,
        "bridge": bridge,
        "targets": [{"target": n, "met": ok, "value": v} for n, ok, v in targets],
    }, indent=2) + "\n")
    print(f"\nwritten: {rdir / 'results.md'}, {rdir / 'results.json'}")


def batch_note(r):
    if not r or not r.get("batches"):
        return ""
    note = f"mean batch {r['mean_batch']:.1f}"
    if "forward_ms_per_batch" in r:
        note += f", forward round trip {r['forward_ms_per_batch']:.2f} ms/batch"
    if "queue_wait_ms_mean" in r:
        note += f", queue wait {r['queue_wait_ms_mean']:.2f} ms"
    return note


def render_text(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def render_md(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv):
    commands = {"bodies": bodies, "config": config, "check-config": check_config,
                "label": label, "proc": proc, "http-row": http_row,
                "report": report}
    if len(argv) < 2 or argv[1] not in commands:
        sys.exit(__doc__)
    commands[argv[1]](*argv[2:])


if __name__ == "__main__":
    main(sys.argv)
