"""The response cache rows of issue 16 (bench/cache_rows.sh), used by
bench_tool.py: digits repeated without a cache, with the memory cache and
with the Redis cache, each row's req/s and p99 as the median over rounds,
and the ratios to the no-cache row as the median of the per-round ratios
(each round's rows are measured minutes apart). The hit rate comes from
actorserve_cache_requests_total in the /metrics taken around each run.
"""
from pathlib import Path

ROWS = [  # scenario, label
    ("cache_off", "no cache (every request a forward call)"),
    ("cache_memory", "memory cache (--cache memory)"),
    ("cache_redis", "Redis cache (--cache redis, local redis-server)"),
]


def _median(values):
    ordered = sorted(v for v in values if v is not None)
    n = len(ordered)
    return None if n == 0 else (ordered[(n - 1) // 2] + ordered[n // 2]) / 2


def _fmt(x, spec):
    return "-" if x is None else format(x, spec)


def _x(ratio):
    return "-" if ratio is None else f"{ratio:.2f}x"


def _rps(row):
    return row["requests"] / (row["duration_us"] / 1e6) if row["duration_us"] else None


def _p99(row):
    return row["p99_us"] / 1000


def _cpu_us(row):
    return 1e6 * row["server_cpu_s"] / row["requests"] if row["requests"] else None


def _hits(path: Path) -> dict:
    """{result: count} of actorserve_cache_requests_total in a /metrics file."""
    counts = {}
    try:
        text = path.read_text()
    except OSError:
        return counts
    for line in text.splitlines():
        if line.startswith("actorserve_cache_requests_total{"):
            labels, _, value = line.rpartition(" ")
            result = labels.split('result="', 1)[1].split('"', 1)[0]
            counts[result] = counts.get(result, 0.0) + float(value)
    return counts


def _hit_rate(rdir: Path, row) -> float:
    base = rdir / f"wrk-{row['scenario']}-actorserve-r{row['round']}.txt"
    before = _hits(Path(str(base) + ".metrics-before"))
    after = _hits(Path(str(base) + ".metrics-after"))
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    total = sum(delta.values())
    return delta.get("hit", 0.0) / total if total > 0 else None


def _paired(rounds_a, rounds_b, metric):
    ratios = []
    for key in rounds_a.keys() & rounds_b.keys():
        a, b = metric(rounds_a[key]), metric(rounds_b[key])
        if a is not None and b:
            ratios.append(a / b)
    return _median(ratios)


def cache_report(rdir: Path, all_runs: list):
    """(header, rows) of the cache rows found in http.jsonl."""
    header = ["row", "req/s", "p50 ms", "p99 ms", "server CPU us/req", "hit rate",
              "non-2xx", "req/s vs off", "p99 vs off", "note"]
    rounds = {scenario: {r["round"]: r for r in all_runs
                         if r["scenario"] == scenario and r["server"] == "actorserve"}
              for scenario, _ in ROWS}
    off = rounds["cache_off"]
    rows = []
    for scenario, label in ROWS:
        runs = list(rounds[scenario].values())
        if not runs:
            continue
        hit_rate = _median(_hit_rate(rdir, r) for r in runs)
        note = f"median of {len(runs)}" if len(runs) > 1 else ""
        if len(runs) > 1:
            values = sorted(_rps(r) for r in runs)
            note += f": {values[0]:.0f}..{values[-1]:.0f} req/s"
        others = _median(r.get("other_cores") for r in runs)
        if others is not None:
            note += (", " if note else "") + f"other processes {others:.2f} cores"
        rows.append([label, _fmt(_median(_rps(r) for r in runs), ".0f"),
                     _fmt(_median(r["p50_us"] / 1000 for r in runs), ".2f"),
                     _fmt(_median(_p99(r) for r in runs), ".2f"),
                     _fmt(_median(_cpu_us(r) for r in runs), ".1f"),
                     "-" if hit_rate is None else f"{100 * hit_rate:.1f} %",
                     str(sum(r["non2xx"] for r in runs)),
                     "-" if scenario == "cache_off" else _x(_paired(rounds[scenario], off, _rps)),
                     "-" if scenario == "cache_off" else _x(_paired(rounds[scenario], off, _p99)),
                     note])
    return header, rows
