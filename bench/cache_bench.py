"""The response cache rows of issue 16 (bench/cache_rows.sh), used by
bench_tool.py: digits repeated without a cache, with the memory cache and
with the Redis cache, each row's req/s and p99 as the median over rounds,
and the ratios to the no-cache row as the median of the per-round ratios
(each round's rows are measured minutes apart). The hit rate comes from
actorserve_cache_requests_total in the /metrics taken around each run.
"""
from pathlib import Path

from row_stats import cpu_us, fmt, median, paired_ratio, rps, spread_note, times

ROWS = [  # scenario, label
    ("cache_off", "no cache (every request a forward call)"),
    ("cache_memory", "memory cache (--cache memory)"),
    ("cache_redis", "Redis cache (--cache redis, local redis-server)"),
]


def _p99(row):
    return row["p99_us"] / 1000


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
        hit_rate = median(_hit_rate(rdir, r) for r in runs)
        note = spread_note(runs)
        rows.append([label, fmt(median(rps(r) for r in runs), ".0f"),
                     fmt(median(r["p50_us"] / 1000 for r in runs), ".2f"),
                     fmt(median(_p99(r) for r in runs), ".2f"),
                     fmt(median(cpu_us(r) for r in runs), ".1f"),
                     "-" if hit_rate is None else f"{100 * hit_rate:.1f} %",
                     str(sum(r["non2xx"] for r in runs)),
                     "-" if scenario == "cache_off" else times(paired_ratio(rounds[scenario], off, rps)),
                     "-" if scenario == "cache_off" else times(paired_ratio(rounds[scenario], off, _p99)),
                     note])
    return header, rows
