"""`naia-backfill bench all` over a registry of fake measures: skipped and failed measures are reported, a failure
makes the exit status 1 while a skip does not, --repeat runs a measure again, and the JSON holds every row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from naia_backfill.dev.benchmarks import all as bench_all
from naia_backfill.dev.benchmarks.measures import registry
from naia_backfill.dev.benchmarks.measures.registry import Measure, Scale
from naia_backfill.dev.benchmarks.measures.rows import Goal, Row

HERE = __name__
ENV = "NAIA_TEST_BENCH_ALL_SERVICE"
calls: list[str] = []


def fast(scale: Scale) -> list[Row]:
    calls.append(scale.name)
    return [Row("fast vs its limit", "rows/s", [3.0], "limit", [2.0], Goal(">=", 1.0)),
            Row("fast memory", "MB", [50.0], goal=Goal("<=", 10.0, on="naia"))]


def broken(scale: Scale) -> list[Row]:
    raise RuntimeError("the simulator did not start\nTraceback ...\nOSError: port in use")


def empty(scale: Scale) -> list[Row]:
    return []


@pytest.fixture(autouse=True)
def fake_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    calls.clear()
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr(registry, "MEASURES", {m.name: m for m in [
        Measure("fast", f"{HERE}:fast", "fast vs limit", "naia-backfill bench fast"),
        Measure("broken", f"{HERE}:broken", "broken vs limit", "naia-backfill bench broken"),
        Measure("service", f"{HERE}:fast", "needs a server", "naia-backfill bench service", needs_env=(ENV,)),
        Measure("big", f"{HERE}:fast", "only at full", "naia-backfill bench big", defaults=("full",)),
        Measure("empty", f"{HERE}:empty", "measures nothing", "naia-backfill bench empty", defaults=("full",)),
    ]})


def bench(*args: str) -> Result:
    return CliRunner().invoke(bench_all.command, ["--scale", "tiny", *args])


def report(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_a_failing_measure_fails_the_command_and_the_others_still_run(tmp_path: Path) -> None:
    result = bench("--json", str(tmp_path / "all.json"))
    assert result.exit_code == 1, result.output
    states = {m["name"]: m["state"] for m in report(tmp_path / "all.json")["measures"]}
    assert states == {"fast": "measured", "broken": "failed", "service": "skipped", "big": "skipped",
                      "empty": "skipped"}
    assert calls == ["tiny"]


def test_skipped_measures_do_not_fail_the_command(tmp_path: Path) -> None:
    result = bench("--skip", "broken", "--json", str(tmp_path / "all.json"))
    assert result.exit_code == 0, result.output
    measures = {m["name"]: m for m in report(tmp_path / "all.json")["measures"]}
    assert ENV in measures["service"]["reason"]
    assert "--only big" in measures["big"]["reason"]
    assert measures["broken"]["reason"] == "--skip"


def test_a_measure_without_rows_fails(tmp_path: Path) -> None:
    result = bench("--only", "empty", "--json", str(tmp_path / "all.json"))
    assert result.exit_code == 1
    assert "no rows" in report(tmp_path / "all.json")["measures"][0]["error"]


def test_the_error_is_kept_whole_in_json_and_briefly_in_the_table(tmp_path: Path) -> None:
    result = bench("--only", "broken", "--json", str(tmp_path / "all.json"))
    out = report(tmp_path / "all.json")
    assert "Traceback" in out["measures"][0]["error"]
    [row] = out["rows"]
    assert row["verdict"] == "failed" and row["source"] == "broken"
    assert row["note"].startswith("RuntimeError: the simulator did not start") and "port in use" in row["note"]
    assert "port in use" in result.output


def test_json_holds_the_run_and_every_row(tmp_path: Path) -> None:
    bench("--only", "fast", "--only", "service", "--json", str(tmp_path / "all.json"))
    out = report(tmp_path / "all.json")
    assert {"command", "scale", "repeat", "cpus", "started", "seconds", "load_start", "load_end", "measures",
            "rows"} <= set(out)
    assert out["scale"] == "tiny" and len(out["load_start"]) == len(out["load_end"]) == 3
    fast_rows = [r for r in out["rows"] if r["source"] == "fast"]
    expected = fast(Scale("tiny"))
    assert [r["measure"] for r in fast_rows] == [r.measure for r in expected]
    assert [r["ratio"] for r in fast_rows] == [r.ratio for r in expected]
    assert [r["verdict"] for r in fast_rows] == [r.verdict for r in expected]
    assert all(isinstance(r["load"], float) for r in fast_rows)
    [service] = [r for r in out["rows"] if r["source"] == "service"]
    assert service["verdict"] == "skipped" and ENV in service["note"]


def test_repeat_runs_a_measure_again_and_keeps_every_run(tmp_path: Path) -> None:
    result = bench("--only", "fast", "--repeat", "3", "--json", str(tmp_path / "all.json"))
    assert result.exit_code == 0, result.output
    assert calls == ["tiny"] * 3
    first = report(tmp_path / "all.json")["rows"][0]
    assert first["naia_runs"] == [3.0] * 3 and first["runs"] == 3


def test_the_table_names_every_measure_and_the_load(tmp_path: Path) -> None:
    result = bench()
    assert all(name in result.output for name in registry.MEASURES)
    assert "load average" in result.output and "noisy" in result.output


def test_unknown_names_are_a_usage_error() -> None:
    result = bench("--only", "nope")
    assert result.exit_code == 2 and "nope" in result.output


def test_list_prints_the_registry_and_what_is_missing() -> None:
    result = CliRunner().invoke(bench_all.command, ["--list"])
    assert result.exit_code == 0
    assert all(name in result.output for name in registry.MEASURES)
    assert ENV in result.output and calls == []
