"""copy_day: every sink sees every batch, sinks commit in the registry's order (streams, then the lake object
that marks the day written, then what reads the lake), and one failure aborts every sink."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from naia_backfill.connectors.synthetic import SyntheticConnector
from naia_backfill.core.daycopy import commit_order, copy_day
from naia_backfill.errors import SinkError
from naia_backfill.settings import SyntheticSource
from naia_backfill.sinks.base import DayTarget, DayWriter, Sink, SinkResult


class Recorder(Sink):
    def __init__(self, kind: str, log: list[tuple[str, str]], fail_on_commit: bool = False) -> None:
        self.kind, self.log, self.fail_on_commit = kind, log, fail_on_commit

    def open_day(self, target: DayTarget) -> DayWriter:
        sink = self

        class Writer(DayWriter):
            rows = 0

            def write(self, batch: pa.RecordBatch) -> None:
                self.rows += batch.num_rows

            def commit(self) -> SinkResult:
                sink.log.append(("commit", sink.kind))
                if sink.fail_on_commit:
                    raise SinkError(f"{sink.kind} refused")
                return SinkResult(sink=sink.kind, rows=self.rows)

            def abort(self) -> None:
                sink.log.append(("abort", sink.kind))

        return Writer()


@pytest.fixture
def source() -> SyntheticConnector:
    return SyntheticConnector(SyntheticSource(kind="synthetic", points=4, interval_seconds=3600, seed=1))


def test_sinks_commit_streams_first_then_the_lake_then_the_view(source: SyntheticConnector):
    log: list[tuple[str, str]] = []
    sinks = [Recorder(k, log) for k in ("duckdb", "parquet", "questdb", "kafka")]
    result = copy_day(source, source.list_points(), sinks, DayTarget("plant", dt.date(2024, 1, 1)))
    assert log == [("commit", "kafka"), ("commit", "questdb"), ("commit", "parquet"), ("commit", "duckdb")]
    assert [s.sink for s in result.sinks] == ["kafka", "questdb", "parquet", "duckdb"]
    assert {s.rows for s in result.sinks} == {result.samples} and result.samples > 0


def test_a_failed_commit_leaves_later_sinks_uncommitted_and_aborts_all(source: SyntheticConnector):
    log: list[tuple[str, str]] = []
    sinks = [Recorder("duckdb", log), Recorder("parquet", log), Recorder("kafka", log, fail_on_commit=True)]
    with pytest.raises(SinkError, match="kafka refused"):
        copy_day(source, source.list_points(), sinks, DayTarget("plant", dt.date(2024, 1, 1)))
    assert log[0] == ("commit", "kafka")
    assert ("commit", "parquet") not in log and ("commit", "duckdb") not in log  # the lake object never appears
    assert sorted(k for action, k in log if action == "abort") == ["duckdb", "kafka", "parquet"]


def test_commit_order_comes_from_the_sink_registry():
    sinks = [Recorder(k, []) for k in ("parquet", "duckdb", "kafka", "questdb")]
    assert [s.kind for s in commit_order(sinks)] == ["kafka", "questdb", "parquet", "duckdb"]
