#!/usr/bin/python3
"""The CPU-default rows of issue 17 (bench/cpu_rows.sh) as a Markdown report.

Usage: cpu_report.py RESULTS_DIR

Reads RESULTS_DIR/http.jsonl (the cpu_* scenarios), cpu-raw-t2-r*.json and
cpu-plans.jsonl. Every row is shown as its median over the rounds with the
range; each ratio is taken within a round (the two runs it compares shared
that minute of the machine), then its median and range are shown.
"""

import json
import statistics
import sys
from pathlib import Path

RESNET_C8 = "cpu_resnet18_auto"
DIGITS = "cpu_digits_auto"
DIGITS_TODAY = "cpu_digits_today"

LABELS = {
    "cpu_resnet18_auto": "resnet18, untuned (defaults), 8 conns",
    "cpu_resnet18_i1t2": "resnet18, 1 instance x 2 threads, 8 conns",
    "cpu_resnet18_auto_c1": "resnet18, untuned (defaults), 1 conn",
    "cpu_resnet18_i1t2_c1": "resnet18, 1 instance x 2 threads, 1 conn",
    "cpu_digits_auto": "digits, bundled config, defaults, 32 conns",
    "cpu_digits_today": "digits, bundled config, 1 instance x 1 thread (before), 32 conns",
    "cpu_digits_i1t2": "digits, bundled config, 1 instance x 2 threads, 32 conns",
}


def load_jsonl(path: Path) -> list:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def rps(row: dict) -> float:
    return row["requests"] / (row["duration_us"] / 1e6)


def median_range(values: list) -> str:
    if not values:
        return "-"
    text = f"{statistics.median(values):.2f}"
    if len(values) > 1:
        text += f" ({min(values):.2f}..{max(values):.2f})"
    return text


def main(results_dir: str) -> None:
    rdir = Path(results_dir)
    runs = [r for r in load_jsonl(rdir / "http.jsonl") if r["scenario"].startswith("cpu_")]
    plans = load_jsonl(rdir / "cpu-plans.jsonl")
    raws = {1: {}, 2: {}}  # threads -> round -> batch-1 row
    for threads, by_round in raws.items():
        for f in sorted(rdir.glob(f"cpu-raw-t{threads}-r*.json")):
            rnd = int(f.stem.rsplit("-r", 1)[1])
            by_round[rnd] = [r for r in json.loads(f.read_text()) if r["batch"] == 1][0]
    raw = raws[2]

    by = {}  # scenario -> round -> row
    for r in runs:
        by.setdefault(r["scenario"], {})[r["round"]] = r
    split = {}
    for p in plans:
        split.setdefault(p["scenario"], set()).add(f"{p['instances']}x{p['threads']}")

    print("# CPU defaults (issue 17)\n")
    print("| row | instances x threads | req/s | p50 ms | p99 ms | server CPU ms/req "
          "| others (cores) | rounds |")
    print("|---|---|---|---|---|---|---|---|")
    for scenario, label in LABELS.items():
        rows = list(by.get(scenario, {}).values())
        if not rows:
            continue
        base = scenario.removesuffix("_c1")
        print(f"| {label} | {', '.join(sorted(split.get(base, {'?'})))} "
              f"| {median_range([rps(r) for r in rows])} "
              f"| {median_range([r['p50_us'] / 1000 for r in rows])} "
              f"| {median_range([r['p99_us'] / 1000 for r in rows])} "
              f"| {median_range([1000 * r['server_cpu_s'] / r['requests'] for r in rows])} "
              f"| {median_range([r['other_cores'] for r in rows])} | {len(rows)} |")
    for threads, by_round in raws.items():
        if by_round:
            rows = list(by_round.values())
            print(f"| resnet18 in-process libtorch, batch 1, {threads} thread(s) | - "
                  f"| {median_range([r['images_per_s'] for r in rows])} "
                  f"| {median_range([r['ms_per_call_p50'] for r in rows])} | - | - "
                  f"| {median_range([r['other_cores'] for r in rows])} | {len(rows)} |")

    def ratios(a: str, b) -> list:
        result = []
        for rnd, row in by.get(a, {}).items():
            other = b(rnd)
            if other:
                result.append(rps(row) / other)
        return result

    print("\n## Ratios, per round\n")
    targets = [
        ("untuned resnet18 (8 conns) / in-process libtorch at 2 threads, batch 1",
         ratios(RESNET_C8, lambda rnd: raw.get(rnd, {}).get("images_per_s")), 0.95),
        ("untuned digits / tuned bundled config as before (1x1), 32 conns",
         ratios(DIGITS, lambda rnd: rps(by[DIGITS_TODAY][rnd])
                if rnd in by.get(DIGITS_TODAY, {}) else None), 1.0),
    ]
    diagnostics = [
        ("untuned resnet18 (8 conns) / in-process libtorch at 1 thread, batch 1",
         ratios(RESNET_C8, lambda rnd: raws[1].get(rnd, {}).get("images_per_s"))),
        ("in-process libtorch, batch 1: 2 threads / 1 thread (~1.4 on idle cores; "
         "below 1: the 2-thread team lost to other processes)",
         [r["images_per_s"] / raws[1][rnd]["images_per_s"] for rnd, r in raw.items()
          if rnd in raws[1]]),
        ("resnet18 8 conns: defaults / 1 instance x 2 threads",
         ratios(RESNET_C8, lambda rnd: rps(by["cpu_resnet18_i1t2"][rnd])
                if rnd in by.get("cpu_resnet18_i1t2", {}) else None)),
        ("resnet18 1 conn: defaults / 1 instance x 2 threads",
         ratios("cpu_resnet18_auto_c1", lambda rnd: rps(by["cpu_resnet18_i1t2_c1"][rnd])
                if rnd in by.get("cpu_resnet18_i1t2_c1", {}) else None)),
        ("digits 32 conns: defaults / 1 instance x 2 threads",
         ratios(DIGITS, lambda rnd: rps(by["cpu_digits_i1t2"][rnd])
                if rnd in by.get("cpu_digits_i1t2", {}) else None)),
    ]
    print("| ratio | median (range) | rounds |")
    print("|---|---|---|")
    for label, values, _ in targets:
        print(f"| {label} | {median_range(values)} | {len(values)} |")
    for label, values in diagnostics:
        print(f"| {label} | {median_range(values)} | {len(values)} |")
    print("\n## Targets (issue 17)\n")
    for label, values, floor in targets:
        if values:
            med = statistics.median(values)
            verdict = "PASS" if med >= floor else "MISS"
            print(f"- [{verdict}] {label} >= {floor}x: median {med:.2f}x over "
                  f"{len(values)} rounds ({min(values):.2f}..{max(values):.2f})")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
