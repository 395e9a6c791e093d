"""What the row reports (protocol_bench.py, cache_bench.py) share: medians,
formatting and per-round paired ratios over the wrk runs in http.jsonl."""


def median(values):
    ordered = sorted(v for v in values if v is not None)
    n = len(ordered)
    return None if n == 0 else (ordered[(n - 1) // 2] + ordered[n // 2]) / 2


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def times(ratio):
    return "-" if ratio is None else f"{ratio:.2f}x"


def rps(row):
    return row["requests"] / (row["duration_us"] / 1e6) if row["duration_us"] else None


def cpu_us(row):
    return 1e6 * row["server_cpu_s"] / row["requests"] if row["requests"] else None


def paired_ratio(rounds_a, rounds_b, metric):
    """Median over the rounds of metric(a) / metric(b), each round's pair
    measured minutes apart (the machine's load moves less within a round)."""
    ratios = []
    for key in rounds_a.keys() & rounds_b.keys():
        a, b = metric(rounds_a[key]), metric(rounds_b[key])
        if a is not None and b:
            ratios.append(a / b)
    return median(ratios)


def spread_note(runs):
    """How many runs a median is of, their req/s range, and the CPU other
    processes took meanwhile."""
    note = f"median of {len(runs)}" if len(runs) > 1 else ""
    if len(runs) > 1:
        values = sorted(rps(r) for r in runs)
        note += f": {values[0]:.0f}..{values[-1]:.0f} req/s"
    others = median(r.get("other_cores") for r in runs)
    if others is not None:
        note += (", " if note else "") + f"other processes {others:.2f} cores"
    return note
