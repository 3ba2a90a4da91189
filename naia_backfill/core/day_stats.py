"""A day's checks computed while the day streams through the copy, instead of reading the day back.

:class:`DayStats` sees every canonical batch on its way to the sinks and keeps, per point, what the checks
need: how many events, the first and last timestamp, the largest gap (and where it starts) and how many gaps
pass the threshold, how often time went back, and, per range rule, how many values fell outside. All of it is
vectorised per batch (numpy over the batch's rows; a Python step only per new point name) and its memory
grows with the number of points, never with the number of samples. :meth:`DayStats.report` turns the figures
into the same results :mod:`naia_backfill.core.validation` computes from the objects, so a day checked while
it streamed and a day re-checked later by `naia-backfill validate` read alike.

Only a day written whole (one object) is checked this way: a point group added to a day that already has
objects can duplicate events across objects, which only a re-read can tell.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from naia_backfill.core import check_outcomes as co
from naia_backfill.settings import PointSet

NS_PER_DAY = 86_400 * 10**9
_GROW = 1024


class DayStats:
    """Per-point figures of one day's events, fed batch by batch with :meth:`add`."""

    def __init__(self, point_set: PointSet, day: dt.date) -> None:
        self.day, self.start = day, co.day_ns(day)
        threshold = co.gap_threshold_seconds(point_set)
        self.threshold = threshold
        self.limit = round(threshold * 1e9) if threshold is not None else None
        self.rules = list(point_set.checks.ranges)
        self.names: list[str] = []
        self._ids: dict[str, int] = {}
        self.count = np.zeros(0, np.int64)
        self.last = np.zeros(0, np.int64)
        self.latest = np.zeros(0, np.int64)  # the latest timestamp (differs from last only if time went back)
        self.gap = np.zeros(0, np.int64)  # largest gap so far (from the day's start on)
        self.gap_from = np.zeros(0, np.int64)
        self.gaps = np.zeros(0, np.int64)  # gaps over the threshold
        self.back = np.zeros(0, np.int64)  # times the point's time went back
        self.match = np.zeros((len(self.rules), 0), bool)
        self.ranges = np.zeros((len(self.rules), 5, 0))  # per rule: values, violations, not good, min, max

    def _grow(self, n: int) -> None:
        size = len(self.count)
        if n <= size:
            return
        extra = max(n - size, _GROW)
        self.count = np.concatenate([self.count, np.zeros(extra, np.int64)])
        self.last = np.concatenate([self.last, np.full(extra, self.start, np.int64)])
        self.latest = np.concatenate([self.latest, np.full(extra, self.start, np.int64)])
        for name in ("gap", "gap_from", "gaps", "back"):
            setattr(self, name, np.concatenate([getattr(self, name), np.zeros(extra, np.int64)]))
        self.match = np.concatenate([self.match, np.zeros((len(self.rules), extra), bool)], axis=1)
        filler = np.zeros((len(self.rules), 5, extra))
        filler[:, 3], filler[:, 4] = np.inf, -np.inf
        self.ranges = np.concatenate([self.ranges, filler], axis=2)

    def _global_ids(self, names: Sequence[str]) -> np.ndarray:
        out = np.empty(len(names), np.int64)
        for i, name in enumerate(names):
            gid = self._ids.get(name)
            if gid is None:
                gid = self._ids[name] = len(self.names)
                self.names.append(name)
                self._grow(gid + 1)
                for r, rule in enumerate(self.rules):
                    self.match[r, gid] = fnmatch.fnmatchcase(name.upper(), rule.points.upper())
            out[i] = gid
        return out

    def add(self, batch: pa.RecordBatch) -> None:
        """Take one canonical batch (each point's events in time order, as every source yields them)."""
        if batch.num_rows == 0:
            return
        ts = batch.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False)
        runs = pc.run_end_encode(batch.column("point"))
        names = runs.values.to_pylist()
        order = None
        if len(set(names)) == len(names):  # each point's events in one run, as most sources yield them
            seg = self._global_ids(names)
            starts = np.r_[0, runs.run_ends.to_numpy(zero_copy_only=False)[:-1]].astype(np.int64)
        else:  # interleaved points (ACE IoT pages): group them, keeping each point's order
            codes = pc.dictionary_encode(batch.column("point"))
            gid = self._global_ids(codes.dictionary.to_pylist())[codes.indices.to_numpy(zero_copy_only=False)]
            order = np.argsort(gid, kind="stable")
            g, ts = gid[order], ts[order]
            starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
            seg = g[starts]
        self._timing(seg, starts, ts)
        if self.rules:
            self._ranges(batch, seg, starts, order)

    def _timing(self, seg: np.ndarray, starts: np.ndarray, t: np.ndarray) -> None:
        """``t`` holds runs of one point each (``seg[i]`` from ``starts[i]`` on), each point in one run."""
        n = len(t)
        ends = np.r_[starts[1:], n]
        step = np.empty(n, np.int64)
        np.subtract(t[1:], t[:-1], out=step[1:])
        step[starts] = t[starts] - self.last[seg]  # from the point's last event (or the day's start)
        self.back[seg] += np.add.reduceat(step < 0, starts, dtype=np.int64)
        if self.limit is not None:
            self.gaps[seg] += np.add.reduceat(step > self.limit, starts, dtype=np.int64)
        top = np.maximum.reduceat(step, starts)
        for i in np.flatnonzero(top > self.gap[seg]):  # a new largest gap: where it starts (few per day)
            at = starts[i] + int(np.argmax(step[starts[i]:ends[i]]))
            self.gap[seg[i]] = top[i]
            self.gap_from[seg[i]] = self.last[seg[i]] if at == starts[i] else t[at - 1]
        self.count[seg] += ends - starts
        self.latest[seg] = np.maximum(self.latest[seg], np.maximum.reduceat(t, starts))
        self.last[seg] = t[ends - 1]

    def _ranges(self, batch: pa.RecordBatch, seg: np.ndarray, starts: np.ndarray, order: np.ndarray | None) -> None:
        value = batch.column("value")
        nulls = value.null_count > 0
        valid = value.is_valid().to_numpy(zero_copy_only=False) if nulls else None
        v = (value.fill_null(0.0) if nulls else value).to_numpy(zero_copy_only=False)
        good = batch.column("good").to_numpy(zero_copy_only=False)
        if order is not None:
            v, good = v[order], good[order]
            valid = valid[order] if nulls else None
        lengths = np.diff(np.r_[starts, len(v)])
        for r, rule in enumerate(self.rules):
            hit = self.match[r, seg]
            if not hit.any():
                continue
            mask = None if hit.all() else np.repeat(hit, lengths)  # None: every row counts
            if valid is not None:
                mask = valid if mask is None else mask & valid
            out = np.zeros(len(v), bool)
            if rule.min is not None:
                out |= v < rule.min
            if rule.max is not None:
                out |= v > rule.max
            if mask is not None:
                out &= mask
            figures = self.ranges[r]
            figures[0, seg] += lengths if mask is None else np.add.reduceat(mask, starts, dtype=np.int64)
            figures[1, seg] += np.add.reduceat(out, starts, dtype=np.int64)
            figures[2, seg] += np.add.reduceat(out & ~good, starts, dtype=np.int64)
            low, high = (v, v) if mask is None else (np.where(mask, v, np.inf), np.where(mask, v, -np.inf))
            figures[3, seg] = np.minimum(figures[3, seg], np.minimum.reduceat(low, starts))
            figures[4, seg] = np.maximum(figures[4, seg], np.maximum.reduceat(high, starts))

    def report(self, point_set: str, objects: list[str], expected: Sequence[str] | None) -> co.DayReport:
        """The day's check results, as :func:`naia_backfill.core.validation.validate_day` would give them."""
        n = len(self.names)
        counts = pa.table({"point": pa.array(self.names, pa.string()), "samples": pa.array(self.count[:n], pa.int64())})
        order = pc.sort_indices(counts, sort_keys=[("point", "ascending")])
        counts = counts.take(order)
        samples = int(self.count[:n].sum())
        seen = {name for name, c in zip(self.names, self.count[:n], strict=True) if c}
        reversals = {self.names[i]: int(self.back[i]) for i in np.flatnonzero(self.back[:n])}
        checks = [
            co.samples_present(objects, samples, seen, expected),
            co.duplicates_outcome({}, reversals, {p: [o.rsplit("/", 1)[-1] for o in objects] for p in reversals}),
            co.gaps_outcome(self._gap_rows(), self.threshold),
            co.ranges_outcome(self._range_rows(), self.rules),
        ]
        return co.DayReport(point_set, self.day, objects, samples, counts, {c.name: c for c in checks})

    def _gap_rows(self) -> list[dict]:
        if self.limit is None:
            return []
        n = len(self.names)
        end = self.start + NS_PER_DAY - self.latest[:n]  # from the latest event to the day's end
        gap, start, gaps = self.gap[:n].copy(), self.gap_from[:n].copy(), self.gaps[:n] + (end > self.limit)
        tail = end > gap
        gap[tail], start[tail] = end[tail], self.latest[:n][tail]
        rows = [{"point": self.names[i], "gaps": int(gaps[i]), "largest_ns": int(gap[i]), "largest_from": int(start[i])}
                for i in np.flatnonzero((gap > self.limit) & (self.count[:n] > 0))]
        return sorted(rows, key=lambda r: (-r["largest_ns"], r["point"]))

    def _range_rows(self) -> list[dict]:
        n = len(self.names)
        rows = []
        for r in range(len(self.rules)):
            figures = self.ranges[r]
            mine = [{"i": r, "point": self.names[i], "n_values": int(figures[0, i]), "violations": int(figures[1, i]),
                     "not_good": int(figures[2, i]), "min": float(figures[3, i]), "max": float(figures[4, i])}
                    for i in np.flatnonzero(figures[0, :n] > 0)]
            rows += sorted(mine, key=lambda x: (-x["violations"], x["point"]))
        return rows
