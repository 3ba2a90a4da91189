"""The rows of `naia-backfill bench all`: one comparison each (a naia figure against its limit or peer measured in
the same run), their medians over repeats, ratio, goal and verdict, and the one table and JSON they make.

A row's ratio is ``naia / peer`` of the figures in its unit: above 1 means naia's figure is larger (more
samples/s, or more seconds). With paired runs (as many naia figures as peer figures, measured side by side)
it is the median of the per-run ratios, which a load change between pairs moves less than a ratio of medians.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any, Literal

MET, MISSED, NO_GOAL, SKIPPED, FAILED = "met", "missed", "-", "skipped", "failed"
State = Literal["measured", "skipped", "failed"]


@dataclasses.dataclass(frozen=True)
class Goal:
    """What a row must reach: ``op`` ``target`` on its ratio, or on the naia figure itself (``on="naia"``)."""

    op: Literal[">=", "<="]
    target: float
    on: Literal["ratio", "naia"] = "ratio"
    label: str = ""  # how the issue puts it, e.g. "≈ 1.0"; shown before the exact bound

    def met(self, ratio: float | None, naia: float | None) -> bool | None:
        value = ratio if self.on == "ratio" else naia
        if value is None or math.isnan(value):
            return None
        return value >= self.target if self.op == ">=" else value <= self.target

    def text(self, unit: str) -> str:
        bound = f"{'≥' if self.op == '>=' else '≤'} {self.target:g}" + (f" {unit}" if self.on == "naia" else "")
        if f"{self.target:g}" in self.label:  # the label states the bound already
            return self.label
        return f"{self.label} ({bound})" if self.label else bound


@dataclasses.dataclass
class Row:
    """One comparison: naia's figures and its peer's (one per run), in ``unit``."""

    measure: str
    unit: str
    naia: list[float] = dataclasses.field(default_factory=list)
    peer_name: str = ""
    peer: list[float] = dataclasses.field(default_factory=list)
    goal: Goal | None = None
    peak_rss_mb: list[float] = dataclasses.field(default_factory=list)  # naia side's, per run
    note: str = ""
    state: State = "measured"
    source: str = ""  # the registry name that measured it (set by the runner)
    load: float | None = None  # 1-minute load average when its measure started (set by the runner)

    @property
    def naia_value(self) -> float | None:
        return _median(self.naia)

    @property
    def peer_value(self) -> float | None:
        return _median(self.peer)

    @property
    def ratio(self) -> float | None:
        if self.naia and len(self.naia) == len(self.peer) and all(p > 0 for p in self.peer):
            return statistics.median(n / p for n, p in zip(self.naia, self.peer, strict=True))
        n, p = self.naia_value, self.peer_value
        return n / p if n is not None and p else None

    @property
    def peak_rss(self) -> float | None:
        return max(self.peak_rss_mb) if self.peak_rss_mb else None

    @property
    def verdict(self) -> str:
        if self.state != "measured":
            return SKIPPED if self.state == "skipped" else FAILED
        if self.goal is None:
            return NO_GOAL
        met = self.goal.met(self.ratio, self.naia_value)
        return NO_GOAL if met is None else MET if met else MISSED

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source, "measure": self.measure, "unit": self.unit, "state": self.state,
            "naia": self.naia_value, "naia_runs": self.naia, "peer_name": self.peer_name, "peer": self.peer_value,
            "peer_runs": self.peer, "ratio": self.ratio, "runs": max(len(self.naia), len(self.peer)),
            "goal": dataclasses.asdict(self.goal) if self.goal else None,
            "goal_text": self.goal.text(self.unit) if self.goal else None, "verdict": self.verdict,
            "peak_rss_mb": self.peak_rss, "load": self.load, "note": self.note,
        }


def skipped(measure: str, why: str) -> Row:
    """A row saying why a measure did not run (a missing service variable, a missing package)."""
    return Row(measure, "", note=why, state="skipped")


def failed(measure: str, why: str) -> Row:
    return Row(measure, "", note=why, state="failed")


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def merge(runs: Iterable[list[Row]]) -> list[Row]:
    """The rows of several runs of one measure as one row per comparison: figures appended run after run; a
    comparison that failed or was skipped in any run keeps its first such note."""
    out: dict[str, Row] = {}
    for rows in runs:
        for row in rows:
            have = out.get(row.measure)
            if have is None:
                out[row.measure] = dataclasses.replace(row, naia=list(row.naia), peer=list(row.peer),
                                                       peak_rss_mb=list(row.peak_rss_mb))
                continue
            have.naia += row.naia
            have.peer += row.peer
            have.peak_rss_mb += row.peak_rss_mb
            if row.state != "measured" and have.state == "measured":
                have.state, have.note = row.state, row.note
    return list(out.values())


def number(value: float | None, unit: str = "") -> str:
    """A figure for the table: thousands separated when large, three significant digits when small."""
    if value is None or math.isnan(value):
        return "-"
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".rstrip()


def table(rows: Sequence[Row], title: str, caption: str = "") -> Any:
    """The one rich table of the run: a section per measure, failed and skipped ones saying why in the note."""
    from rich.markup import escape
    from rich.table import Table

    colour = {MET: "green", MISSED: "red", FAILED: "bold red", SKIPPED: "yellow"}
    out = Table(title=title, title_justify="left", caption=caption or None, caption_justify="left")
    out.add_column("measure", no_wrap=True)
    out.add_column("what", ratio=5)
    for name in ("naia", "limit / peer"):
        out.add_column(name, ratio=2)
    for name in ("ratio", "goal", "verdict", "peak RSS MB", "load"):
        out.add_column(name, no_wrap=True)
    out.add_column("note", ratio=3)
    last = None
    for r in rows:
        if last is not None and r.source != last:
            out.add_section()
        last = r.source
        runs = max(len(r.naia), len(r.peer))
        peer = f"{number(r.peer_value, r.unit)} {r.peer_name}".strip() if r.peer else r.peer_name
        verdict = f"[{colour[r.verdict]}]{r.verdict}[/]" if r.verdict in colour else r.verdict
        out.add_row(
            r.source, r.measure, number(r.naia_value, r.unit), peer or "-",
            "-" if r.ratio is None else f"{r.ratio:.2f}" + (f" ×{runs}" if runs > 1 else ""),
            r.goal.text(r.unit) if r.goal else "-", verdict, number(r.peak_rss), number(r.load),
            r.note if r.state == "measured" else escape(r.note),
        )
    return out
