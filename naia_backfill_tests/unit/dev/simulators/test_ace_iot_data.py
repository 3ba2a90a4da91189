"""The ACE IoT simulator's samples, sites, paging scan and truth, without sockets."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from naia_backfill.dev.simulators.ace_iot.data import (
    KIND_NUMBER,
    ODD_TEXTS,
    US_PER_DAY,
    US_PER_S,
    AcePoint,
    AceSite,
    Samples,
    to_us,
)
from naia_backfill.dev.simulators.ace_iot.model import SiteModel
from naia_backfill.dev.simulators.ace_iot.simulator import AceIotSimulator
from naia_backfill.dev.simulators.ace_iot.sites import DEMO_SITE, LARGE_SITE, LARGE_SITE_CONFIGURED, demo_site
from naia_backfill.schema import SAMPLE_SCHEMA

DAY = dt.date(2024, 1, 2)
T0 = to_us(DAY)
HOUR = 3_600 * US_PER_S


@pytest.fixture(scope="module")
def sim() -> AceIotSimulator:
    return AceIotSimulator(seed=3)


@pytest.fixture(scope="module")
def demo(sim) -> SiteModel:
    return sim.model(DEMO_SITE)


def served_keys(model: SiteModel, s: Samples) -> list[tuple[int, int, int]]:
    return list(zip(s.t.tolist(), model.pids[s.pidx].tolist(), s.j.tolist(), strict=True))


def same(a: Samples, b: Samples) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("t", "pidx", "j", "kind", "mant"))


def test_samples_are_in_served_order_and_do_not_depend_on_the_window_asked(demo):
    day = demo.between(T0, T0 + US_PER_DAY)
    keys = served_keys(demo, day)
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    hours = Samples.concat([demo.between(T0 + h * HOUR, T0 + (h + 1) * HOUR) for h in range(24)])
    assert same(day, hours)
    odd_window = demo.between(T0 + 1_234_567, T0 + 7 * HOUR + 89)
    inside = (day.t >= T0 + 1_234_567) & (day.t < T0 + 7 * HOUR + 89)
    assert same(odd_window, day.take(inside))


def test_points_sit_on_their_grid_and_the_site_has_its_outage_and_offline_days(demo):
    day = demo.between(T0, T0 + US_PER_DAY)
    for i, p in enumerate(demo.points):
        t = day.t[day.pidx == i]
        assert ((t - p.phase_us) % p.interval_us == 0).all(), p.name
    sod = day.t % US_PER_DAY
    assert not ((sod >= 2 * HOUR) & (sod < 4 * HOUR)).any()
    supply = demo.index["acme/demo_site/AHU-1/Supply Air Temp"]  # a plain one-minute point: 1440 minus the outage
    assert (day.pidx == supply).sum() == 1_440 - 120
    offline = [d for d in range(19_700, 19_800) if demo.offline(np.array([d]))[0]]
    assert 3 <= len(offline) <= 20  # about one day in ten
    assert len(demo.between(offline[0] * US_PER_DAY, (offline[0] + 1) * US_PER_DAY)) == 0


def test_demo_day_has_every_oddity(demo):
    day = demo.between(T0, T0 + US_PER_DAY)
    assert set(np.unique(day.kind).tolist()) == set(ODD_TEXTS) | {KIND_NUMBER}
    assert (day.t % US_PER_S != 0).any()  # sub-second instants
    assert (day.j > 0).any()  # several samples of one point at one instant
    pid_t = np.stack([day.pidx, day.t], axis=1)
    assert len(np.unique(pid_t, axis=0)) < len(day)
    assert len(np.unique(day.t)) < len(day)  # and different points at one instant
    names = {demo.names[i] for i in np.unique(day.pidx)}
    assert {p.name for p in demo.points if not p.configured} <= names  # unconfigured and retired points too
    assert any(" " in n and "/" in n for n in names) and any(not n.isascii() for n in names)


def test_scan_pages_reproduce_the_range_through_bursts_spans_and_the_outage(demo):
    lo, hi = T0 - 90 * US_PER_S, T0 + US_PER_DAY + 1
    whole = demo.between(lo, hi)
    pages, key, empty = [], None, 0
    while True:
        page, key = demo.scan(lo, hi, key, 777)
        assert len(page) <= 777
        if len(page):
            assert page.t[-1] - page.t[0] <= 3_600 * US_PER_S  # the demo site's page span
        empty += len(page) == 0
        pages.append(page)
        if key is None:
            break
    assert same(Samples.concat(pages), whole)
    assert empty >= 1  # the 02:00-04:00 outage spans a whole page


def test_scan_of_an_offline_day_is_empty_and_ends():
    site = AceSite("off", "c", (AcePoint("c/off/p"),), page_span_s=600.0, offline_day_fraction=1.0)
    model = SiteModel(site, [(1, site.points[0])], seed=0)
    key, pages = None, 0
    while True:
        page, key = model.scan(T0, T0 + US_PER_DAY, key, 10)
        pages += 1
        assert len(page) == 0
        if key is None:
            break
    assert pages == 144  # one empty page per ten-minute span, each carrying a cursor but the last


def test_large_site_has_seed_002_scale(sim):
    entries = sim.point_entries(LARGE_SITE)
    assert len(entries) == 4_800 and len(sim.points(LARGE_SITE, configured_only=True)) == LARGE_SITE_CONFIGURED
    model = sim.model(LARGE_SITE)
    hour = model.between(T0, T0 + HOUR)
    assert len(hour) == 4_800 * 60
    assert all(len(n) > 80 and n.count("/") >= 5 for n in model.names)
    stats = sim.truth_stats(LARGE_SITE, DAY)
    assert stats["samples"] + stats["dropped_null"] == LARGE_SITE_CONFIGURED * 1_440
    assert 0 < stats["dropped_null"] < 2_000 and stats["dropped_unconfigured"] == 217 * 1_440
    assert stats["points"] == LARGE_SITE_CONFIGURED


def test_truth_is_configured_finite_samples_of_the_day(sim, demo):
    truth = sim.truth(DEMO_SITE, DAY)
    assert truth.schema == SAMPLE_SCHEMA
    day = demo.between(T0, T0 + US_PER_DAY)
    keep = demo.configured[day.pidx] & (day.kind == KIND_NUMBER)
    assert truth.column("point").to_pylist() == [demo.names[i] for i in day.pidx[keep]]
    ts = truth.column("ts").cast("int64").to_numpy()
    assert (ts == day.t[keep] * 1000).all() and ts.min() >= T0 * 1000 and ts.max() < (T0 + US_PER_DAY) * 1000
    values = truth.column("value").to_numpy()
    assert np.isfinite(values).all() and values.tolist() == demo.values(day.take(keep)).tolist()
    assert set(truth.column("good").to_pylist()) == {True} and truth.column("text").null_count == len(truth)
    stats = sim.truth_stats(DEMO_SITE, DAY)
    assert stats["samples"] == len(truth) and stats["value_sum"] == pytest.approx(values.sum())
    assert stats["dropped_unconfigured"] == int((~demo.configured[day.pidx]).sum())
    assert stats["served"] == len(day)
    chosen = ["acme/demo_site/Old BAS/Point 17"]  # a retired point, asked for by name
    assert set(sim.truth(DEMO_SITE, DAY, points=chosen).column("point").to_pylist()) == set(chosen)


def test_seed_changes_values_not_shape():
    a, b = AceIotSimulator(seed=1, sites=[demo_site()]), AceIotSimulator(seed=2, sites=[demo_site()])
    sa, sb = a.model(DEMO_SITE).between(T0, T0 + HOUR), b.model(DEMO_SITE).between(T0, T0 + HOUR)
    assert not np.array_equal(sa.mant[: min(len(sa), len(sb))], sb.mant[: min(len(sa), len(sb))])
    again = AceIotSimulator(seed=1, sites=[demo_site()]).model(DEMO_SITE).between(T0, T0 + HOUR)
    assert same(sa, again)


def test_points_can_be_added_replaced_and_removed(sim):
    local = AceIotSimulator(sites=[demo_site()])
    pid = local.add_point(DEMO_SITE, AcePoint("acme/demo_site/New/Point", interval_s=600.0))
    assert "acme/demo_site/New/Point" in local.points(DEMO_SITE, configured_only=True)
    assert local.add_point(DEMO_SITE, AcePoint("acme/demo_site/New/Point", collect_enabled=False)) == pid
    assert "acme/demo_site/New/Point" not in local.points(DEMO_SITE, configured_only=True)
    local.remove_point("acme/demo_site/New/Point")
    assert local.find_point("acme/demo_site/New/Point") is None
    with pytest.raises(KeyError):
        local.remove_point("acme/demo_site/New/Point")
    with pytest.raises(ValueError):
        AcePoint("x", interval_s=60, phase_s=60)


def test_offline_days_helper_matches_the_model(sim, demo):
    days = sim.offline_days(DEMO_SITE, dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    assert days and all(len(demo.between(to_us(d), to_us(d) + US_PER_DAY)) == 0 for d in days)
    first_online = next(d for d in (dt.date(2024, 1, 1) + dt.timedelta(n) for n in range(90)) if d not in days)
    assert len(demo.between(to_us(first_online), to_us(first_online) + US_PER_DAY)) > 0
