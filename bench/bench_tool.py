#!/usr/bin/python3
"""Helpers of bench/run.sh (Debian's /usr/bin/python3: it has cv2 and numpy).

  bench_tool.py bodies OUTDIR
      writes OUTDIR/digits.json (one 20x20 handwritten digit from OpenCV's
      digits.png, PNG, base64) and OUTDIR/resnet18.json (fruits.jpg resized
      to 224x224, JPEG, base64), both {"instances": [{"image": ...}]}, and
      OUTDIR/affine.json (one 2x2 tensor for the affine model); and the
      same digit and tensor as Open Inference Protocol JSON and binary bodies
      and gRPC raw inputs (bench/protocol_bench.py).
  bench_tool.py config SRC DST KEY=VALUE...
      copies a model's config.json with batching keys replaced, e.g.
      batching.max_batch_size=1 batching.max_queue_delay_us=0.
  bench_tool.py check-config CONFIG
      fails unless the config has what the peer reads without defaults.
  bench_tool.py label RESPONSE_FILE
      prints the top-1 label of a predict answer (the first output values of
      a raw one, or the error).
  bench_tool.py proc PID
      prints {"rss_kb", "pss_kb", "cpu_s", "processes"} summed over PID and
      all its descendants (gunicorn: master + workers), from /proc.
  bench_tool.py http-row SCENARIO SERVER CONNS WRK_JSON PROC_BEFORE PROC_AFTER
                         WRK_CPU BUSY_BEFORE BUSY_AFTER METRICS_BEFORE METRICS_AFTER
      prints one result row (JSON) of a wrk run: wrk's numbers, the server's
      CPU and memory, the CPU other processes took meanwhile and, from
      actorserve's /metrics, what batching did during the run.
  bench_tool.py fairness --url URL --lua POST_LUA --pid PID --raw FILE
                         [--body FILE] [--conns 600] [--seconds 10] [--probes 15]
                         [--probe-timeout 5] [--lead 2] [--wrk-threads 2]
      the edge's fairness row (issue 13): wrk keeps CONNS keep-alive
      connections busy on URL while PROBES new clients (a fresh connection
      each) send the same request; prints their median and max latency
      beside wrk's p99 (one JSON line). wrk's output goes to FILE.
  bench_tool.py idle --url URL --pid PID [--conns 3000] [--seconds 10]
                     [--mode request|connect] [--answer-timeout 30]
      the edge's idle row: the server's CPU and context switches with no
      connection, then it opens CONNS connections (mode request: each sends
      one GET /health first and reads the answer) and measures its CPU,
      context switches and RSS growth over SECONDS of idleness, and how many
      of the connections are still open at the end (one JSON line).
  bench_tool.py pipelining --url URL [--count 16] [--body FILE --predict-path P]
      COUNT requests back to back on one connection, distinct X-Request-Ids;
      passes when every one is answered 200 with its id, in order.
  bench_tool.py report RESULTS_DIR
      turns RESULTS_DIR/http.jsonl, raw-t*.json, bridge.json and edge.jsonl
      into the tables (stdout), RESULTS_DIR/results.md and results.json;
      the protocol rows (issue 14) from http.jsonl's proto_* scenarios, the
      response cache rows (issue 16) from its cache_* scenarios.
"""
import base64
import json
import os
import sys
from pathlib import Path

import cache_bench
import protocol_bench

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
    # affine: the tensor model of tools/make_models.py, input shape [2, 2].
    affine_rows = [[1, 2], [3, 4]]
    (out / "affine.json").write_text(json.dumps({"instances": [{"data": affine_rows}]}))
    for name in ("digits.json", "resnet18.json", "affine.json"):
        print(f"{out / name}: {(out / name).stat().st_size} bytes")
    protocol_bench.write_bodies(out, png.tobytes(), affine_rows)


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
        if "label" in top:
            print(f"{top['label']} ({top['score']:.4f})")
        else:  # a raw prediction: its output row
            print(f"output {top['output'][:4]} shape {top.get('shape')}")
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
# the HTTP edge rows (issue 13): fairness, idle connections, pipelining
# ---------------------------------------------------------------------------

def _split_url(url: str):
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    return parts.hostname, parts.port or 80, parts.path or "/"


def _raise_nofile(needed: int) -> int:
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _proc_numbers(pid: int) -> dict:
    """{"cpu_s", "rss_kb"} of one process (the edge rows measure actorserve
    alone: one process), from /proc/PID/stat and /proc/PID/status."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return {"cpu_s": (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"),
            "rss_kb": rss}


def _context_switches(pid: int) -> int:
    """Voluntary + involuntary context switches of all PID's threads so far
    (threads that exited meanwhile are lost: a lower bound)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for line in (task / "status").read_text().splitlines():
                if "ctxt_switches:" in line:
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def _options(args, defaults: dict) -> dict:
    """--key value pairs -> dict (values typed like the defaults)."""
    opts = dict(defaults)
    it = iter(args)
    for key in it:
        name = key.lstrip("-").replace("-", "_")
        if name not in opts:
            sys.exit(f"unknown option {key}")
        value = next(it)
        opts[name] = type(opts[name])(value) if opts[name] is not None else value
    return opts


def _median(values):
    ordered = sorted(values)
    n = len(ordered)
    return None if n == 0 else (ordered[(n - 1) // 2] + ordered[n // 2]) / 2


def fairness(*args) -> None:
    """wrk keeps CONNS keep-alive connections busy; meanwhile PROBES new
    clients, each on a fresh TCP connection, send the same request, spread
    evenly over the run (each in its own thread, so a stuck one does not
    delay the next). wrk is stopped (SIGINT: it still reports) once the last
    probe is answered or timed out and at least SECONDS have passed."""
    import http.client
    import signal
    import subprocess
    import threading
    import time

    o = _options(args, {"url": None, "body": "", "conns": 600, "seconds": 10, "probes": 15,
                        "probe_timeout": 5.0, "lead": 2.0, "wrk_threads": 2, "lua": None,
                        "pid": 0, "raw": None})
    host, port, path = _split_url(o["url"])
    body = Path(o["body"]).read_bytes() if o["body"] else None
    _raise_nofile(o["conns"] + o["probes"] + 256)
    budget = o["seconds"] + o["lead"] + o["probe_timeout"] + 30  # wrk's own end, a backstop
    env = dict(os.environ, BENCH_BODY=o["body"])
    before = _proc_numbers(o["pid"]) if o["pid"] else None
    t0 = time.monotonic()
    with open(o["raw"], "w") as raw, open(o["raw"] + ".err", "w") as err:
        wrk = subprocess.Popen(
            ["wrk", "-t", str(o["wrk_threads"]), "-c", str(o["conns"]), "-d", f"{budget:.0f}s",
             "--timeout", "10s", "--latency", "-s", o["lua"], o["url"]],
            stdout=raw, stderr=err, env=env)
        results = [None] * o["probes"]

        def probe(i):
            start = time.monotonic()
            conn = http.client.HTTPConnection(host, port, timeout=o["probe_timeout"])
            try:
                headers = {"X-Request-Id": f"probe-{i}"}
                if body is not None:
                    headers["Content-Type"] = "application/json"
                conn.request("POST" if body is not None else "GET", path, body=body,
                             headers=headers)
                answer = conn.getresponse()
                answer.read()
                results[i] = {"s": time.monotonic() - start, "status": answer.status}
            except (OSError, http.client.HTTPException) as e:
                results[i] = {"s": time.monotonic() - start, "status": None,
                              "error": type(e).__name__}
            finally:
                conn.close()

        interval = max(0.1, o["seconds"] / o["probes"])
        threads = []
        time.sleep(o["lead"])  # wrk's connections are open and busy
        for i in range(o["probes"]):
            if wrk.poll() is not None:
                break
            t = threading.Thread(target=probe, args=(i,), daemon=True)
            t.start()
            threads.append(t)
            time.sleep(interval)
        for t in threads:
            t.join(o["probe_timeout"] + 5)
        while time.monotonic() - t0 < o["seconds"] + o["lead"] and wrk.poll() is None:
            time.sleep(0.05)
        if wrk.poll() is None:
            wrk.send_signal(signal.SIGINT)
        try:
            wrk.wait(30)
        except subprocess.TimeoutExpired:
            wrk.kill()
            wrk.wait()
    after = _proc_numbers(o["pid"]) if o["pid"] else None
    text = Path(o["raw"]).read_text()
    line = next((l[len("BENCH_JSON "):] for l in text.splitlines()
                 if l.startswith("BENCH_JSON ")), None)
    if line is None:
        sys.exit(f"fairness: no result from wrk, see {o['raw']}")
    row = {"row": "fairness", "server": "actorserve", "connections": o["conns"],
           "url_path": path, "round": int(os.environ.get("BENCH_ROUND", "1"))}
    row["wrk"] = json.loads(line)
    done = [r for r in results if r is not None]
    ok = [r for r in done if r["status"] == 200]
    latencies = [r["s"] for r in done]  # a timed-out probe counts as its timeout
    row.update(probes=len(done), probes_ok=len(ok),
               probe_errors=sorted({r.get("error") or str(r["status"])
                                    for r in done if r["status"] != 200}),
               probe_timeout_s=o["probe_timeout"],
               probe_median_ms=round(1000 * _median(latencies), 2) if latencies else None,
               probe_max_ms=round(1000 * max(latencies), 2) if latencies else None,
               probe_ms=[round(1000 * s, 2) for s in latencies])
    if row["probe_median_ms"] is not None and row["wrk"]["p99_us"]:
        row["median_over_p99"] = round(row["probe_median_ms"] * 1000 / row["wrk"]["p99_us"], 2)
    if before and after:
        row["server_cpu_s"] = round(after["cpu_s"] - before["cpu_s"], 3)
        row["rss_kb"] = after["rss_kb"]
    print(json.dumps(row))


def _read_answer(sock_file):
    """One HTTP/1.1 response from a socket's file: (status, headers, body)."""
    status_line = sock_file.readline()
    if not status_line:
        raise EOFError("connection closed")
    status = int(status_line.split()[1])
    headers = {}
    while True:
        line = sock_file.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = sock_file.read(int(headers.get("content-length", "0")))
    return status, headers, body


def idle(*args) -> None:
    """Opens CONNS connections to the server and leaves them idle: in mode
    "request" each first sends one GET /health and reads its answer (a real
    keep-alive connection), in mode "connect" each only connects. Then the
    server's CPU (utime+stime of PID) over SECONDS of idleness, its VmRSS
    before the connections and at the end, and how many connections are
    still open at the end (no EOF, no reset)."""
    import selectors
    import socket
    import time

    o = _options(args, {"url": None, "conns": 3000, "seconds": 10.0, "mode": "request",
                        "pid": 0, "answer_timeout": 30.0})
    host, port, _ = _split_url(o["url"])
    nofile = _raise_nofile(o["conns"] + 256)
    if nofile < o["conns"] + 16:
        sys.exit(f"idle: RLIMIT_NOFILE is {nofile}, need {o['conns'] + 16}")
    pid = o["pid"]
    # The server's own idle cost, with no connection, for comparison.
    base_s = max(2.0, o["seconds"] / 2)
    base0, base_switches0 = _proc_numbers(pid), _context_switches(pid)
    time.sleep(base_s)
    base1, base_switches1 = _proc_numbers(pid), _context_switches(pid)
    rss_before = base1["rss_kb"]
    request = f"GET /health HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    socks, connect_errors = [], 0
    t_open = time.monotonic()
    for _ in range(o["conns"]):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            s.connect((host, port))
        except OSError:
            connect_errors += 1
            s.close()
            continue
        if o["mode"] == "request":
            try:
                s.sendall(request)
            except OSError:
                pass
        socks.append(s)
    # Collect the answers (mode request) without blocking on any one socket:
    # a server that holds a thread per connection answers only some at once.
    answered, refused, closed = 0, 0, 0
    if o["mode"] == "request":
        sel = selectors.DefaultSelector()
        buffers = {}
        for s in socks:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            buffers[s] = b""
        pending = len(socks)
        deadline = time.monotonic() + o["answer_timeout"]
        last_progress = time.monotonic()
        # Give up after answer_timeout, or after 5 s without any answer: a
        # server that parks the rest in a queue will not answer them.
        while (pending and time.monotonic() < deadline
               and time.monotonic() - last_progress < 5):
            for key, _ in sel.select(timeout=0.5):
                last_progress = time.monotonic()
                s = key.fileobj
                try:
                    chunk = s.recv(65536)
                except OSError:
                    chunk = b""
                if chunk:
                    buffers[s] += chunk
                    head, sep, rest = buffers[s].partition(b"\r\n\r\n")
                    if not sep:
                        continue
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    if len(rest) < length:
                        continue
                    status = int(head.split()[1])
                    if status == 200:
                        answered += 1
                    else:
                        refused += 1
                else:
                    closed += 1
                sel.unregister(s)
                pending -= 1
        sel.close()
    open_s = time.monotonic() - t_open
    time.sleep(1.0)  # let the server settle after the last answer
    start, switches0 = _proc_numbers(pid), _context_switches(pid)
    t0 = time.monotonic()
    time.sleep(o["seconds"])
    end, switches1 = _proc_numbers(pid), _context_switches(pid)
    wall = time.monotonic() - t0
    # Open: neither EOF nor reset. Bytes the server sent meanwhile (a 408,
    # a 503; in mode request every answer was already read) are counted.
    still_open = spoke = 0
    for s in socks:
        s.setblocking(False)
        got = 0
        while True:
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                still_open += 1  # nothing (more) to read: open
                break
            except OSError:
                break
            if not chunk:
                break
            got += len(chunk)
        spoke += got > 0
    for s in socks:
        s.close()
    row = {"row": "idle", "mode": o["mode"], "server": "actorserve", "connections": o["conns"],
           "round": int(os.environ.get("BENCH_ROUND", "1")),
           "connect_errors": connect_errors, "answered": answered, "refused": refused,
           "closed_before_answer": closed, "open_s": round(open_s, 2),
           "unanswered": (len(socks) - answered - refused - closed
                          if o["mode"] == "request" else None),
           "idle_s": round(wall, 2),
           "cpu_pct_of_core": round(100 * (end["cpu_s"] - start["cpu_s"]) / wall, 2),
           "context_switches_per_s": round((switches1 - switches0) / wall),
           "baseline_cpu_pct_of_core": round(100 * (base1["cpu_s"] - base0["cpu_s"]) / base_s, 2),
           "baseline_context_switches_per_s": round(
               (base_switches1 - base_switches0) / base_s),
           "rss_before_kb": rss_before, "rss_after_kb": end["rss_kb"],
           "rss_growth_kb": end["rss_kb"] - rss_before, "still_open": still_open,
           "sent_unasked": spoke}
    print(json.dumps(row))


def pipelining(*args) -> None:
    """COUNT requests written back to back on one connection in one send
    (alternately GET /health and, when BODY is given, POST PREDICT_PATH with
    it), each with its own X-Request-Id; passes when all COUNT are answered
    200 and the echoed ids come back in the order sent."""
    import socket
    import uuid

    o = _options(args, {"url": None, "count": 16, "body": "", "predict_path": "",
                        "timeout": 10.0})
    host, port, _ = _split_url(o["url"])
    body = Path(o["body"]).read_bytes() if o["body"] else None
    tag = uuid.uuid4().hex[:8]
    ids, wire = [], b""
    for i in range(o["count"]):
        rid = f"pipe-{tag}-{i:02d}"
        ids.append(rid)
        if body is not None and o["predict_path"] and i % 2:
            wire += (f"POST {o['predict_path']} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                     f"X-Request-Id: {rid}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        else:
            wire += (f"GET /health HTTP/1.1\r\nHost: {host}:{port}\r\n"
                     f"X-Request-Id: {rid}\r\n\r\n").encode()
    got, statuses, error = [], [], None
    with socket.create_connection((host, port), timeout=o["timeout"]) as s:
        s.sendall(wire)
        f = s.makefile("rb")
        try:
            for _ in range(o["count"]):
                status, headers, _ = _read_answer(f)
                statuses.append(status)
                got.append(headers.get("x-request-id"))
        except (OSError, EOFError, ValueError, IndexError) as e:
            error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    in_order = got == ids[:len(got)]
    passed = len(got) == o["count"] and in_order and all(s == 200 for s in statuses)
    print(json.dumps({"row": "pipelining", "server": "actorserve", "count": o["count"],
                      "round": int(os.environ.get("BENCH_ROUND", "1")),
                      "answered": len(got), "statuses": statuses, "in_order": in_order,
                      "error": error, "passed": passed}))


EDGE_TARGETS = {
    "fairness_ratio": 2.0,     # new client's median latency / busy clients' p99
    "fairness_max_ms": 2000.0,  # new client's worst latency
    "idle_cpu_pct": 5.0,       # server CPU with the idle connections, % of a core
    "idle_rss_mb": 300.0,      # server RSS growth with them
    "floor_health": 2.0,       # actorserve/nginx CPU per request, GET /health
    "floor_affine": 3.0,       # actorserve/nginx CPU per request, tensor predict
}


def edge_report(rdir: Path, all_runs: list):
    """The edge rows (issue 13): (header, rows, targets); rows empty when
    the edge rows were not run."""
    edge = load_jsonl(rdir / "edge.jsonl")
    header = ["edge row", "actorserve", "reference", "ratio", "target", "note"]
    rows, targets = [], []

    def us_per_request(scenario, server):
        values = [1e6 * r["server_cpu_s"] / r["requests"] for r in all_runs
                  if r["scenario"] == scenario and r["server"] == server and r.get("requests")]
        return _median(values), len(values), values

    # fairness: median over rounds of the ratio
    fair = sorted((r for r in edge if r["row"] == "fairness"),
                  key=lambda r: r.get("median_over_p99") or float("inf"))
    if fair:
        r = fair[(len(fair) - 1) // 2]
        w = r["wrk"]
        wrk_rps = w["requests"] / (w["duration_us"] / 1e6)
        timeouts = r["probes"] - r["probes_ok"]
        note = f"{r['probes_ok']}/{r['probes']} probes answered 200"
        if timeouts:
            note += (f" (others: {', '.join(r['probe_errors'])}; a probe that timed out "
                     f"counts as its {r['probe_timeout_s']:g} s timeout)")
        errors = w["connect_errors"] + w["read_errors"] + w["write_errors"] + w["timeouts"]
        note += f"; wrk {wrk_rps:.0f} req/s, socket errors {errors}, non-2xx {w['non2xx']}"
        if len(fair) > 1:
            note += f"; median of {len(fair)} rounds"
        label = f"fairness: new client vs {r['connections']} busy keep-alive conns"
        ratio = r.get("median_over_p99")
        rows.append([label + ", median", f"{r['probe_median_ms']:.1f} ms",
                     f"busy p99 {w['p99_us'] / 1000:.1f} ms",
                     fmt(ratio, ".2f") + "x" if ratio is not None else "-",
                     f"<= {EDGE_TARGETS['fairness_ratio']:g}x", note])
        rows.append([label + ", max", f"{r['probe_max_ms']:.1f} ms",
                     f"busy max {w['max_us'] / 1000:.1f} ms", "-",
                     f"<= {EDGE_TARGETS['fairness_max_ms'] / 1000:g} s", ""])
        targets.append((f"fairness: new client's median <= {EDGE_TARGETS['fairness_ratio']:g}x "
                        "the busy clients' p99",
                        ratio is not None and ratio <= EDGE_TARGETS["fairness_ratio"]
                        and r["probes_ok"] == r["probes"],
                        f"{fmt(ratio, '.2f')}x ({r['probe_median_ms']:.1f} ms vs "
                        f"{w['p99_us'] / 1000:.1f} ms; {r['probes_ok']}/{r['probes']} ok)"))
        targets.append((f"fairness: new client's max <= "
                        f"{EDGE_TARGETS['fairness_max_ms'] / 1000:g} s",
                        r["probe_max_ms"] <= EDGE_TARGETS["fairness_max_ms"]
                        and r["probes_ok"] == r["probes"],
                        f"{r['probe_max_ms'] / 1000:.2f} s"))

    # idle connections, per mode: median over rounds of the CPU share
    for mode, what in (("request", "one request each, then idle"),
                       ("connect", "connected only")):
        group = sorted((r for r in edge if r["row"] == "idle" and r["mode"] == mode),
                       key=lambda r: r["cpu_pct_of_core"])
        if not group:
            continue
        r = group[(len(group) - 1) // 2]
        growth_mb = r["rss_growth_kb"] / 1024
        note = f"still open at the end {r['still_open']}/{r['connections']}"
        if mode == "request":
            note += f"; answered {r['answered']}"
            if r["refused"]:
                note += f", refused (non-200) {r['refused']}"
            if r["closed_before_answer"]:
                note += f", closed unanswered {r['closed_before_answer']}"
            if r["unanswered"]:
                note += f", no answer within the wait {r['unanswered']}"
        if r["connect_errors"]:
            note += f"; connect errors {r['connect_errors']}"
        if r.get("sent_unasked"):
            note += f"; {r['sent_unasked']} got unasked bytes (e.g. 503, 408)"
        note += (f"; RSS {r['rss_before_kb'] / 1024:.0f} -> {r['rss_after_kb'] / 1024:.0f} MB"
                 f" over {r['idle_s']:.0f} s idle")
        if "context_switches_per_s" in r:
            note += f"; {r['context_switches_per_s']} context switches/s"
        if "baseline_cpu_pct_of_core" in r:
            note += (f" (with no connection: {r['baseline_cpu_pct_of_core']:.1f} %, "
                     f"{r['baseline_context_switches_per_s']}/s)")
        if len(group) > 1:
            note += f"; median of {len(group)} rounds"
        label = f"idle: {r['connections']} keep-alive conns, {what}"
        rows.append([label + ", server CPU", f"{r['cpu_pct_of_core']:.1f} % of a core", "-", "-",
                     f"< {EDGE_TARGETS['idle_cpu_pct']:g} %", note])
        rows.append([label + ", RSS growth", f"{growth_mb:.0f} MB", "-", "-",
                     f"< {EDGE_TARGETS['idle_rss_mb']:g} MB", ""])
        all_open = r["still_open"] == r["connections"]
        targets.append((f"idle ({mode}): server CPU < {EDGE_TARGETS['idle_cpu_pct']:g} % of a "
                        f"core with all {r['connections']} connections open",
                        r["cpu_pct_of_core"] < EDGE_TARGETS["idle_cpu_pct"] and all_open,
                        f"{r['cpu_pct_of_core']:.1f} %, {r['still_open']} open"))
        targets.append((f"idle ({mode}): RSS growth < {EDGE_TARGETS['idle_rss_mb']:g} MB with "
                        f"all {r['connections']} connections open",
                        growth_mb < EDGE_TARGETS["idle_rss_mb"] and all_open,
                        f"{growth_mb:.0f} MB, {r['still_open']} open"))

    # floor: CPU per request, actorserve against nginx's static /health
    nginx, n_nginx, _ = us_per_request("floor_health", "nginx")
    for scenario, label, target in (
            ("floor_health", "GET /health", EDGE_TARGETS["floor_health"]),
            ("floor_affine", "tensor predict (affine)", EDGE_TARGETS["floor_affine"]),
            ("floor_digits", "digits predict", None)):
        mine, n, values = us_per_request(scenario, "actorserve")
        if mine is None:
            continue
        ratio = mine / nginx if nginx else None
        note = "server utime+stime / requests, wrk -c32"
        if n > 1:
            note += f"; median of {n}: {min(values):.1f}..{max(values):.1f} us"
        if scenario == "floor_health" and n_nginx > 1:
            note += f"; nginx median of {n_nginx}"
        rows.append([f"floor: CPU per request, {label}", f"{mine:.1f} us",
                     f"nginx static /health {fmt(nginx, '.1f')} us",
                     f"{ratio:.2f}x" if ratio else "-",
                     f"<= {target:g}x" if target else "(none)", note])
        if target and ratio:
            targets.append((f"floor: {label} CPU/request <= {target:g}x nginx's /health",
                            ratio <= target, f"{ratio:.2f}x ({mine:.1f} vs {nginx:.1f} us)"))

    # pipelining: every round must pass
    pipes = [r for r in edge if r["row"] == "pipelining"]
    if pipes:
        passed = all(r["passed"] for r in pipes)
        worst = min(pipes, key=lambda r: (r["passed"], r["answered"]))
        note = (f"answered {worst['answered']}/{worst['count']}, "
                f"{'in order' if worst['in_order'] else 'OUT OF ORDER'}"
                + (f", {worst['error']}" if worst["error"] else "")
                + (f"; statuses {sorted(set(worst['statuses']))}" if worst["statuses"] else ""))
        if len(pipes) > 1:
            note += f"; worst of {len(pipes)} rounds"
        rows.append([f"pipelining: {worst['count']} requests back to back on one connection",
                     "pass" if passed else "FAIL", "-", "-", "all answered, in order", note])
        targets.append((f"pipelining: {worst['count']} requests answered in order", passed,
                        "pass" if passed else "fail"))
    return header, rows, targets


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
    if server_threads == "auto":  # the server splits all its CPUs: libtorch on as many
        server_threads = meta.get("nproc", 1)
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

    edge_header, edge_rows, edge_targets = edge_report(rdir, all_runs)
    proto_header, proto_rows, proto_targets = protocol_bench.protocol_report(all_runs)
    cache_header, cache_rows = cache_bench.cache_report(rdir, all_runs)

    def lines_of(target_list):
        return [f"  [{'PASS' if ok else 'MISS'}] {name}: {value}"
                for name, ok, value in target_list]

    target_lines, edge_lines = lines_of(targets), lines_of(edge_targets)
    proto_lines = lines_of(proto_targets)
    settings = ", ".join(f"{k}={v}" for k, v in sorted(meta.items()))

    if rows:
        print(text)
    if bridge_rows:
        print("\nHTTP-thread -> actor bridges (echo actor, one process):")
        print(render_text(bridge_header, bridge_rows))
    if edge_rows:
        print("\nHTTP edge (issue 13):")
        print(render_text(edge_header, edge_rows))
    if proto_rows:
        print("\nprotocols (issue 14), c=32, one server with digits and affine; "
              "ratios vs v1: median of the per-round ratios:")
        print(render_text(proto_header, proto_rows))
    if cache_rows:
        print("\nresponse cache (issue 16), digits repeated, c=32; ratios vs no cache: "
              "median of the per-round ratios:")
        print(render_text(cache_header, cache_rows))
    if target_lines:
        print("\ntargets (issue 3):")
        print("\n".join(target_lines))
    if edge_lines:
        print("\ntargets (issue 13, the HTTP edge):")
        print("\n".join(edge_lines))
    if proto_lines:
        print("\ntargets (issue 14, the protocols):")
        print("\n".join(proto_lines))
    print(f"\nsettings: {settings}")

    (rdir / "results.md").write_text(
        "# actorserve benchmark\n\n" + f"Settings: {settings}\n\n"
        + (md + "\n\n" if rows else "")
        + ("## HTTP-thread -> actor bridges\n\n" + render_md(bridge_header, bridge_rows) + "\n\n"
           if bridge_rows else "")
        + ("## HTTP edge (issue 13)\n\n" + render_md(edge_header, edge_rows) + "\n\n"
           if edge_rows else "")
        + ("## Protocols (issue 14)\n\n" + render_md(proto_header, proto_rows) + "\n\n"
           if proto_rows else "")
        + ("## Response cache (issue 16)\n\n" + render_md(cache_header, cache_rows) + "\n\n"
           if cache_rows else "")
        + ("## Targets (issue 3)\n\n" + "\n".join(f"- {line.strip()}" for line in target_lines)
           + "\n\n" if target_lines else "")
        + ("## Targets (issue 13, the HTTP edge)\n\n"
           + "\n".join(f"- {line.strip()}" for line in edge_lines) + "\n\n" if edge_lines else "")
        + ("## Targets (issue 14, the protocols)\n\n"
           + "\n".join(f"- {line.strip()}" for line in proto_lines) + "\n" if proto_lines else ""))
    (rdir / "results.json").write_text(json.dumps({
        "settings": meta, "http": all_runs, "rss": all_memory, "raw": all_raw,
        "bridge": bridge, "edge": load_jsonl(rdir / "edge.jsonl"),
        "targets": [{"target": n, "met": ok, "value": v} for n, ok, v in targets],
        "edge_targets": [{"target": n, "met": ok, "value": v} for n, ok, v in edge_targets],
        "protocol_targets": [{"target": n, "met": ok, "value": v}
                             for n, ok, v in proto_targets],
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
                "fairness": fairness, "idle": idle, "pipelining": pipelining,
                "report": report}
    if len(argv) < 2 or argv[1] not in commands:
        sys.exit(__doc__)
    commands[argv[1]](*argv[2:])


if __name__ == "__main__":
    main(sys.argv)
