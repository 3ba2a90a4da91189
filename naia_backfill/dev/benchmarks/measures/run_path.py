"""The `naia-backfill run` path (``bench run-path``): memory per day size, fixed cost per day, Dagster's cost per
stored event (issue 15, goals 2 and 3). Every figure comes from one of run_path's child processes.

Flatness is the process's whole peak RSS at the largest day over that at the smallest (≤ 1.10): the budget row
above it holds the part over the baseline to ≤ +200 MB.
"""

from __future__ import annotations

import os

from naia_backfill.dev.benchmarks import run_path as bench
from naia_backfill.dev.benchmarks.measures.registry import Scale, _importable
from naia_backfill.dev.benchmarks.measures.rows import Goal, Row

BUDGET = Goal("<=", bench.GOAL_MB, on="naia", label="≤ +200 MB")
FLAT = Goal("<=", 1.10, label="within 10%")
FIXED = Goal("<=", bench.GOAL_MS, on="naia")


def _samples(n: int) -> str:
    return f"{n / 1e6:.2g}M" if n >= 100_000 else f"{n:,}"


def memory(points: list[int]) -> list[Row]:
    rows, peaks = [], []
    for p in points:
        r = bench._child(["memory", str(p)])
        over = r["peak_mb"] - r["baseline_mb"]
        peaks.append((r["samples"], r["peak_mb"], over))
        rows.append(Row(f"run memory, {_samples(r['samples'])}-sample day: peak over baseline", "MB", [over],
                        goal=BUDGET, peak_rss_mb=[r["peak_mb"]],
                        note=f"baseline {r['baseline_mb']:.0f} MB; {r['samples'] / r['seconds']:,.0f} samples/s"))
    if len(peaks) > 1:
        (small, low, low_over), (large, high, high_over) = peaks[0], peaks[-1]
        rows.append(Row(f"run memory flat: peak RSS at {_samples(large)} (vs at {_samples(small)})", "MB", [high],
                        f"at {_samples(small)}", [low], FLAT, peak_rss_mb=[high],
                        note=f"over baseline {high_over:.0f} vs {low_over:.0f} MB"))
    return rows


def overhead(days: int, events: int) -> list[Row]:
    r = bench._child(["overhead", str(days)])
    fixed, data = (1000 * (r["seconds"] - r["data_seconds"]) / r["days"], 1000 * r["data_seconds"] / r["days"])
    per_day = r["events"] / r["days"]
    rows = [Row(f"fixed cost per day, {r['days']} days of 50 points (vs data time per day)", "ms", [fixed],
                "data", [data], FIXED, peak_rss_mb=[r["peak_mb"]],
                note=f"{per_day:.1f} Dagster events per day; {r['seconds']:.1f} s in all")]
    backends = ["sqlite"] + (["postgres"] if os.environ.get("NAIA_PG_DSN") and _importable("dagster_postgres") else [])
    for backend in backends:
        e = bench._child(["events", f"{backend}:{events}"])
        rows.append(Row(f"Dagster, {backend} instance: one stored event", "ms", [e["ms_per_event"]],
                        peak_rss_mb=[e.get("peak_rss_mb", 0.0)] if "peak_rss_mb" in e else [],
                        note=f"x {per_day:.1f} events/day ≈ {e['ms_per_event'] * per_day:.0f} ms of the fixed cost"))
    if "postgres" not in backends:
        rows.append(Row("Dagster, postgres instance: one stored event", "", state="skipped",
                        note="needs NAIA_PG_DSN and dagster-postgres"))
    return rows


def run(scale: Scale) -> list[Row]:
    points = list(scale.pick([20, 200], [458, 4583], [458, 4583, 45830]))
    days, events = int(scale.pick(3, 30, 365)), int(scale.pick(20, 100, 300))
    return memory(points) + overhead(days, events)
