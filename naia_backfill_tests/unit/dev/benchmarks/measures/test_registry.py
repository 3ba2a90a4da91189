"""Which measures `bench all` runs (defaults per scale, --only, --skip, --dlt), why the others are skipped, and
what a measure still needs."""

from __future__ import annotations

import os

import pytest

from naia_backfill.dev.benchmarks.measures import registry
from naia_backfill.dev.benchmarks.measures.registry import Measure, Scale
from naia_backfill.dev.benchmarks.measures.rows import merge

ENV = "NAIA_TEST_BENCH_SERVICE"


@pytest.fixture
def measures(monkeypatch: pytest.MonkeyPatch) -> dict[str, Measure]:
    fake = {m.name: m for m in [
        Measure("everywhere", "x:run", "a vs b", "cmd a"),
        Measure("peer-dlt", "x:dlt", "a vs dlt", "cmd b", dlt=True),
        Measure("full-only", "x:big", "a vs c", "cmd c", defaults=("full",)),
        Measure("service", "x:svc", "a vs d", "cmd d", needs_env=(ENV,)),
    ]}
    monkeypatch.setattr(registry, "MEASURES", fake)
    monkeypatch.setenv(ENV, "127.0.0.1:1")
    return fake


def names(chosen: list[Measure]) -> list[str]:
    return [m.name for m in chosen]


def test_defaults_leave_out_dlt_peers_and_measures_of_other_scales(measures: dict[str, Measure]) -> None:
    assert names(registry.select("quick")) == ["everywhere", "service"]
    assert names(registry.select("full")) == ["everywhere", "full-only", "service"]


def test_dlt_adds_the_dlt_peers(measures: dict[str, Measure]) -> None:
    assert names(registry.select("tiny", dlt=True)) == ["everywhere", "peer-dlt", "service"]


def test_only_runs_the_named_whatever_their_defaults_in_registry_order(measures: dict[str, Measure]) -> None:
    assert names(registry.select("tiny", only=["full-only", "peer-dlt"])) == ["peer-dlt", "full-only"]


def test_skip_wins_over_defaults_and_only(measures: dict[str, Measure]) -> None:
    assert names(registry.select("quick", skip=["service"])) == ["everywhere"]
    assert names(registry.select("quick", only=["everywhere", "service"], skip=["service"])) == ["everywhere"]


@pytest.mark.parametrize("option", ["only", "skip"])
def test_unknown_names_are_refused_with_the_known_ones(measures: dict[str, Measure], option: str) -> None:
    with pytest.raises(KeyError) as raised:
        registry.select("quick", **{option: ["everywhere", "nope"]})
    message = raised.value.args[0]
    assert "nope" in message and all(name in message for name in measures)


def test_plan_says_why_each_measure_left_out_is_skipped(measures: dict[str, Measure]) -> None:
    reasons = {m.name: why for m, why in registry.plan("quick", skip=["service"])}
    assert list(reasons) == list(measures)
    assert reasons["everywhere"] is None
    assert "--dlt" in reasons["peer-dlt"]
    assert "full" in reasons["full-only"] and "--only full-only" in reasons["full-only"]
    assert reasons["service"] == "--skip"


def test_plan_with_only_lists_just_the_named(measures: dict[str, Measure]) -> None:
    assert [(m.name, why) for m, why in registry.plan("tiny", only=["full-only"])] == [("full-only", None)]


def test_plan_reports_a_missing_service_variable(measures: dict[str, Measure], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV)
    reasons = {m.name: why for m, why in registry.plan("quick")}
    assert ENV in reasons["service"] and registry.ENV_HINT in reasons["service"]
    assert reasons["everywhere"] is None


def test_missing_names_blank_variables_and_absent_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "  ")
    m = Measure("m", "x:run", "", "", needs_env=(ENV,), needs_modules=("naia_no_such_module", "json"))
    missing = m.missing()
    assert missing is not None
    assert ENV in missing and "naia_no_such_module" in missing and "json" not in missing.replace(ENV, "")


def test_nothing_missing_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "x")
    assert Measure("m", "x:run", "", "", needs_env=(ENV,), needs_modules=("json",)).missing() is None


def test_a_dlt_measure_needs_dlt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_importable", lambda module: module != "dlt")
    missing = Measure("m", "x:run", "", "", dlt=True).missing()
    assert missing is not None and "dlt" in missing


def test_function_resolves_short_and_dotted_targets() -> None:
    assert Measure("m", "rows:merge", "", "").function() is merge
    assert Measure("m", "os.path:join", "", "").function() is os.path.join


def test_every_registered_measure_resolves_to_a_function() -> None:
    for m in registry.MEASURES.values():
        assert set(m.defaults) <= set(registry.SCALES), m.name
        assert callable(m.function()), m.name


def test_scale_picks_by_name_and_timeout_grows_with_repeat() -> None:
    assert [Scale(s).pick(1, 2, 3) for s in registry.SCALES] == [1, 2, 3]
    assert Scale("tiny", repeat=3).timeout == 3 * Scale("tiny").timeout
