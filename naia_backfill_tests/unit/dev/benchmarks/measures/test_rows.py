"""Rows of `bench all`: ratio of paired runs, verdicts against goals on the ratio or on naia's figure, merging the
rows of repeated runs, and the goal as the table shows it."""

from __future__ import annotations

import statistics

from naia_backfill.dev.benchmarks.measures.rows import FAILED, MET, MISSED, NO_GOAL, Goal, Row, failed, merge


def test_paired_runs_give_the_median_of_per_run_ratios() -> None:
    naia, peer = [10.0, 30.0, 20.0], [10.0, 10.0, 40.0]
    row = Row("m", "rows/s", naia, "limit", peer)
    assert row.ratio == statistics.median(n / p for n, p in zip(naia, peer, strict=True))


def test_unpaired_runs_give_the_ratio_of_medians() -> None:
    row = Row("m", "rows/s", [10.0], "limit", [4.0, 5.0, 6.0])
    assert row.ratio == 10.0 / statistics.median([4.0, 5.0, 6.0])


def test_verdicts() -> None:
    assert Row("m", "x", [3.0], "p", [2.0], Goal(">=", 1.0)).verdict == MET
    assert Row("m", "x", [1.0], "p", [2.0], Goal(">=", 1.0)).verdict == MISSED
    assert Row("m", "MB", [250.0], goal=Goal("<=", 200.0, on="naia")).verdict == MISSED
    assert Row("m", "x", [1.0], "p", [2.0]).verdict == NO_GOAL
    assert Row("m", "x", [1.0], goal=Goal(">=", 1.0)).verdict == NO_GOAL  # no peer: no ratio to judge
    assert failed("m", "boom").verdict == FAILED


def test_merge_appends_runs_and_keeps_a_failure() -> None:
    first = [Row("a", "x", [1.0], "p", [2.0]), Row("b", "x", [1.0])]
    second = [Row("a", "x", [3.0], "p", [4.0]), Row("b", "x", [], state="failed", note="boom")]
    a, b = merge([first, second])
    assert (a.naia, a.peer) == ([1.0, 3.0], [2.0, 4.0])
    assert (b.state, b.note) == ("failed", "boom")
    assert first[0].naia == [1.0]  # the runs' own rows are left as they were


def test_goal_text_shows_the_bound_unless_the_label_states_it() -> None:
    assert Goal(">=", 0.6).text("x") == "≥ 0.6"
    assert Goal("<=", 50.0, on="naia").text("ms") == "≤ 50 ms"
    assert Goal("<=", 1.1, label="≈ 1.0").text("x") == "≈ 1.0 (≤ 1.1)"
    assert Goal("<=", 200.0, on="naia", label="≤ +200 MB").text("MB") == "≤ +200 MB"
