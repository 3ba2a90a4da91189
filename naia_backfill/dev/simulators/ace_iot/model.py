"""The sample generator of one ACE IoT site: points sharing an interval form a raster (slots x points, points
ordered by phase then id) whose row-major order is already time order, so the large site's pages are
generated without sorting; groups of different intervals are merged by (time, point id, burst index).
"""

from __future__ import annotations

import math

import numpy as np

from naia_backfill.connectors.synthetic import M1, M2, splitmix64
from naia_backfill.dev.simulators.ace_iot.data import (
    KIND_NUMBER,
    POW10,
    PPM,
    US_PER_DAY,
    US_PER_S,
    AcePoint,
    AceSite,
    Samples,
    field,
    name_hash,
    salt,
)


class _Group:
    """Points sharing one interval, ordered by (phase, point id): a raster whose row-major order is time order."""

    def __init__(self, interval_us: int, pidx: list[int], points: list[AcePoint], bases: list[np.uint64]) -> None:
        order = sorted(range(len(pidx)), key=lambda i: (points[i].phase_us, pidx[i]))
        pts = [points[i] for i in order]
        self.interval = interval_us
        self.pidx = np.array([pidx[i] for i in order], dtype=np.int32)
        self.phase = np.array([p.phase_us for p in pts], dtype=np.int64)
        self.base = np.array([bases[i] for i in order], dtype=np.uint64)
        self.zero = np.array([p.zero for p in pts])
        self.span = np.array([p.span for p in pts])
        self.omega = np.array([2 * math.pi / p.period_s / US_PER_S for p in pts])
        self.angle = (self.base % np.uint64(360)).astype(np.float64) * math.pi / 180.0
        self.scale = POW10[[p.decimals for p in pts]]
        self.binary = np.array([p.binary for p in pts])
        self.gap_ppm = np.array([round(p.gap_fraction * 1e6) for p in pts], dtype=np.uint64)
        self.burst_every = np.array([p.burst_every for p in pts], dtype=np.int64)
        self.burst_size = np.array([p.burst_size for p in pts], dtype=np.int64)
        self.odd_every = np.array([p.odd_every for p in pts], dtype=np.int64)
        # a burst holds 2..burst_size samples, burst_size / 2 more than one on average
        per_slot = [
            (1 - p.gap_fraction) * (1 + (p.burst_size / 2 / p.burst_every if p.burst_every else 0)) for p in pts
        ]
        self.samples_per_us = sum(per_slot) / interval_us

    def samples(self, a: int, b: int) -> Samples:
        """The group's samples with ``a <= t < b``, in time order (equal times by point id, burst index)."""
        interval, n_points = self.interval, len(self.pidx)
        k0, k1 = a // interval, (b - 1) // interval
        if k1 < k0 or n_points == 0:
            return Samples.empty()
        k = np.arange(k0, k1 + 1, dtype=np.int64)
        if not self.gap_ppm.any() and not self.burst_every.any():
            # every slot holds one sample: compute on the (slots, points) raster, broadcasting point parameters
            t = k[:, None] * interval + self.phase
            with np.errstate(over="ignore"):
                h = splitmix64((k.astype(np.uint64) * M2)[:, None] ^ self.base)
            mant, kind = self._values(t, h, None, None)
            t = t.ravel()
            lo, hi = np.searchsorted(t, a), np.searchsorted(t, b)  # row-major order is time order
            pidx = np.tile(self.pidx, len(k))[lo:hi]
            zeros = np.zeros(hi - lo, dtype=np.int32)
            return Samples(t[lo:hi], pidx, zeros, kind.ravel()[lo:hi], mant.ravel()[lo:hi])
        k = np.repeat(k, n_points)
        col = np.tile(np.arange(n_points), k1 - k0 + 1)
        t = k * interval + self.phase[col]
        keep = (t >= a) & (t < b)
        with np.errstate(over="ignore"):
            h = splitmix64(k.astype(np.uint64) * M2 ^ self.base[col])
        keep &= salt(h, 1) % PPM >= self.gap_ppm[col]
        t, col, h = t[keep], col[keep], h[keep]
        j = np.zeros(len(t), dtype=np.int32)
        if self.burst_every.any():
            hb = salt(h, 4)
            every = self.burst_every[col]
            burst = (every > 0) & (field(hb, 0) % np.maximum(every, 1) == 0)
            mult = np.where(burst, 2 + field(hb, 20) % (self.burst_size[col] - 1), 1)
            starts = np.cumsum(mult) - mult
            j = (np.arange(int(mult.sum()), dtype=np.int64) - np.repeat(starts, mult)).astype(np.int32)
            t, col, h = np.repeat(t, mult), np.repeat(col, mult), np.repeat(h, mult)
            with np.errstate(over="ignore"):
                h = np.where(j > 0, splitmix64(h ^ j.astype(np.uint64) * M1), h)
        mant, kind = self._values(t, h, j, col)
        return Samples(t, self.pidx[col], j, kind, mant)

    def _values(
        self, t: np.ndarray, h: np.ndarray, j: np.ndarray | None, col: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mantissa and kind of samples at ``t`` with hash ``h``; point parameters are gathered by ``col``, or
        broadcast along the last axis when ``col`` is None (the raster)."""

        def par(values: np.ndarray) -> np.ndarray:
            return values if col is None else values[col]

        noise = (h >> np.uint64(11)).astype(np.float64) / 2.0**53 - 0.5
        wave = np.sin(t * par(self.omega) + par(self.angle))
        span = par(self.span)
        x = par(self.zero) + span * (0.5 + 0.45 * wave + 0.02 * noise)
        if j is not None:
            x = x + j * span * 0.013
        if self.binary.any():
            x = np.where(par(self.binary), (wave + 0.6 * noise > 0).astype(np.float64), x)
        mant = np.rint(x * par(self.scale)).astype(np.int64)
        kind = np.zeros(t.shape, dtype=np.uint8)
        if self.odd_every.any():
            every = par(self.odd_every)
            odd = (every > 0) & (field(h, 0) % np.maximum(every, 1) == 0)
            kind[odd] = (1 + field(h[odd], 40) % 5).astype(np.uint8)
        return mant, kind


class SiteModel:
    """The sample generator of one site for one version of its point list (points ordered by id)."""

    def __init__(self, site: AceSite, entries: list[tuple[int, AcePoint]], seed: int) -> None:
        entries = sorted(entries, key=lambda e: e[0])
        self.site = site
        self.points = [p for _, p in entries]
        self.pids = np.array([pid for pid, _ in entries], dtype=np.int64)
        self.names = [p.name for p in self.points]
        self.index = {p.name: i for i, p in enumerate(self.points)}
        self.decimals = np.array([p.decimals for p in self.points], dtype=np.int64)
        self.configured = np.array([p.configured for p in self.points], dtype=bool)
        self.integer_text = np.array([p.integer_text and p.decimals == 0 for p in self.points], dtype=bool)
        bases = [name_hash(seed, p.name) for p in self.points]
        by_interval: dict[int, list[int]] = {}
        for i, p in enumerate(self.points):
            by_interval.setdefault(p.interval_us, []).append(i)
        self.groups = [
            _Group(iv, idx, [self.points[i] for i in idx], [bases[i] for i in idx])
            for iv, idx in sorted(by_interval.items())
        ]
        self.samples_per_us = sum(g.samples_per_us for g in self.groups)
        self.site_base = name_hash(seed, "site:" + site.name)
        self.span_us = round(site.page_span_s * US_PER_S) if site.page_span_s else None

    def offline(self, days: np.ndarray) -> np.ndarray:
        """Which UTC days (days since the epoch) the site has no samples at all."""
        if self.site.offline_day_fraction <= 0:
            return np.zeros(len(days), dtype=bool)
        with np.errstate(over="ignore"):
            h = splitmix64(days.astype(np.uint64) * M1 ^ self.site_base)
        return h % PPM < np.uint64(round(self.site.offline_day_fraction * 1e6))

    def between(self, a: int, b: int) -> Samples:
        """Every sample with ``a <= t < b`` in served order."""
        if b <= a:
            return Samples.empty()
        parts = [g.samples(a, b) for g in self.groups]
        s = Samples.concat(parts) if parts else Samples.empty()
        if len(parts) > 1:
            s = s.take(np.lexsort((s.j, self.pids[s.pidx], s.t)))
        drop = None
        if self.site.outage_s is not None:
            lo, hi = (round(x * US_PER_S) for x in self.site.outage_s)
            sod = s.t % US_PER_DAY
            drop = (sod >= lo) & (sod < hi)
        if self.site.offline_day_fraction > 0 and len(s):
            days = s.t // US_PER_DAY
            first = int(days[0])
            off = self.offline(np.arange(first, int(days[-1]) + 1))[days - first]
            drop = off if drop is None else drop | off
        return s if drop is None or not drop.any() else s.take(~drop)

    def after(self, s: Samples, key: tuple[int, int, int]) -> Samples:
        """The samples of ``s`` strictly after ``key`` = (time, point id, burst index) in served order."""
        t, pid, j = key
        pids = self.pids[s.pidx]
        keep = (s.t > t) | ((s.t == t) & ((pids > pid) | ((pids == pid) & (s.j > j))))
        return s if keep.all() else s.take(keep)

    def key(self, s: Samples, i: int) -> tuple[int, int, int]:
        return int(s.t[i]), int(self.pids[s.pidx[i]]), int(s.j[i])

    def scan(
        self, lo: int, hi: int, after: tuple[int, int, int] | None, limit: int
    ) -> tuple[Samples, tuple[int, int, int] | None]:
        """One page of the samples with ``lo <= t < hi`` after ``after``: at most ``limit`` samples, covering
        at most the site's page span. Returns the page and the key to continue after (None at the end); a
        page cut by the span ends with the key ``(span end, -1, -1)``, whatever it holds (maybe nothing)."""
        start = max(lo, after[0]) if after else lo
        cap = hi if self.span_us is None else min(hi, start + self.span_us)
        parts: list[Samples] = []
        count, t, grow = 0, start, 1
        while t < cap and count <= limit:
            need = limit + 1 - count
            width = math.ceil(need / self.samples_per_us * 1.05) + 1 if self.samples_per_us > 0 else cap - t
            w = min(cap, t + width * grow)
            s = self.between(t, w)
            if after is not None and t == start:
                s = self.after(s, after)
            parts.append(s)
            count += len(s)
            grow = grow * 4 if len(s) == 0 else 1  # through gaps and offline days in few steps
            t = w
        page = Samples.concat(parts) if parts else Samples.empty()
        if len(page) > limit:
            page = page.take(slice(0, limit))
            return page, self.key(page, limit - 1)
        return page, ((cap, -1, -1) if cap < hi else None)

    def values(self, s: Samples) -> np.ndarray:
        """The float value of each sample (NaN for odd kinds): exactly what its text parses to."""
        v = s.mant / POW10[self.decimals[s.pidx]]
        return np.where(s.kind == KIND_NUMBER, v, np.nan)
