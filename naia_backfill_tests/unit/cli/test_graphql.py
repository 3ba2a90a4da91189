"""Backfill control over GraphQL against handwritten responses (shaped like Dagster 1.13's): parsing of
progress, failed days, samples/s and ETA; error mapping; the click commands. No Dagster, no servers."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from naia_backfill.cli.graphql import (
    BackfillNotFoundError,
    BackfillStateError,
    ControlError,
    DagsterControl,
    LaunchRejectedError,
    backfill_status,
    launch_backfill,
    parse_backfill,
)

URL = "http://dagster.test"
T0 = 1_704_103_200.0  # backfill created
Handler = Callable[[str, dict[str, Any]], Any]


def materialization(day: str, samples: int, at: float, asset: str = "plant") -> dict[str, Any]:
    return {
        "partition": day,
        "timestamp": str(int(at * 1000)),
        "assetKey": {"path": [asset]},
        "metadataEntries": [
            {"label": "points", "intRepr": "6"},
            {"label": "samples", "intRepr": str(samples)},
            {"label": "seconds"},
            {"label": "parquet_uri"},
        ],
    }


def run(run_id: str, status: str, first: str, last: str, started: float | None, events: list[dict[str, Any]],
        ended: float | None = None) -> dict[str, Any]:
    return {
        "runId": run_id, "status": status, "startTime": started, "endTime": ended,
        "tags": [{"key": "dagster/asset_partition_range_end", "value": last},
                 {"key": "dagster/asset_partition_range_start", "value": first},
                 {"key": "dagster/backfill", "value": "bf1"}],
        "assetMaterializations": events,
    }


def backfill(status: str, runs: list[dict[str, Any]], *, days: int = 4, materialized: int = 0,
             ended: float | None = None, backfill_id: str = "bf1") -> dict[str, Any]:
    names = [(dt.date(2024, 1, 1) + dt.timedelta(days=i)).isoformat() for i in range(days)]
    return {
        "__typename": "PartitionBackfill", "id": backfill_id, "status": status, "title": "plant", "timestamp": T0,
        "endTimestamp": ended, "numPartitions": days, "partitionNames": names,
        "assetSelection": [{"path": ["plant"]}], "error": None,
        "assetBackfillData": {"assetBackfillStatuses": [
            {"numPartitionsTargeted": days, "numPartitionsMaterialized": materialized, "numPartitionsFailed": 0}]},
        "runs": runs,
    }


FAILED = backfill("COMPLETED_FAILED", ended=T0 + 100, materialized=3, runs=[
    run("r2", "SUCCESS", "2024-01-03", "2024-01-04", T0 + 10,
        [materialization("2024-01-03", 1000, T0 + 40), materialization("2024-01-04", 1000, T0 + 50)]),
    run("r1", "FAILURE", "2024-01-01", "2024-01-02", T0 + 20, [materialization("2024-01-01", 500, T0 + 30)]),
])
SUCCEEDED = backfill("COMPLETED_SUCCESS", ended=T0 + 60, materialized=2, days=2, runs=[
    run("r1", "SUCCESS", "2024-01-01", "2024-01-02", T0 + 10,
        [materialization("2024-01-01", 10, T0 + 20), materialization("2024-01-02", 10, T0 + 30)]),
])
RUNNING = backfill("REQUESTED", materialized=1, runs=[
    run("r1", "STARTED", "2024-01-01", "2024-01-02", T0 + 10, [materialization("2024-01-01", 300, T0 + 20)]),
    run("r2", "QUEUED", "2024-01-03", "2024-01-04", None, []),
])


def transport(handler: Handler, seen: list[tuple[str, dict[str, Any]]] | None = None) -> httpx.MockTransport:
    """Answers GraphQL POSTs: ``handler(operation, variables)`` returns ``(http_status, body)`` or a ``data`` dict."""

    def respond(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/graphql"
        payload = json.loads(request.content)
        operation = payload["query"].split("(", 1)[0].split()[-1]  # "query Backfill($id...": Backfill
        if seen is not None:
            seen.append((operation, payload["variables"]))
        answer = handler(operation, payload["variables"])
        status, body = answer if isinstance(answer, tuple) else (200, {"data": answer})
        return httpx.Response(status, json=body)

    return httpx.MockTransport(respond)


def control(handler: Handler, seen: list[tuple[str, dict[str, Any]]] | None = None) -> DagsterControl:
    return DagsterControl(URL, transport=transport(handler, seen))


def python_error(root: str, cls: str, message: str) -> tuple[int, dict[str, Any]]:
    """What Dagster answers when the resolver raised: HTTP 500 with a PythonError as the result."""
    return 500, {"data": {root: {"__typename": "PythonError", "className": cls, "message": message, "stack": []}}}


def by_operation(**answers: Any) -> Handler:
    return lambda operation, variables: answers[operation]


def test_failed_days_are_the_failed_runs_days_nothing_materialized():
    st = parse_backfill(FAILED, now=T0 + 500)
    assert (st.id, st.point_set, st.status, st.finished) == ("bf1", "plant", "COMPLETED_FAILED", True)
    assert (st.days_total, st.days_done, st.days_in_progress) == (4, 3, 0)
    assert st.failed_days == ["2024-01-02"] and st.days_failed == 1 and not st.succeeded
    assert st.samples == 2500
    assert st.samples_per_s == pytest.approx(2500 / 90)  # first run start .. backfill end
    assert st.eta_seconds is None
    assert {(r.run_id, r.status, r.first_day, r.last_day) for r in st.runs} == {
        ("r1", "FAILURE", "2024-01-01", "2024-01-02"), ("r2", "SUCCESS", "2024-01-03", "2024-01-04")}
    assert st.created == dt.datetime.fromtimestamp(T0, dt.UTC) and st.ended == dt.datetime.fromtimestamp(T0 + 100, dt.UTC)


def test_running_backfill_rate_and_eta_from_days_so_far():
    st = parse_backfill(RUNNING, now=T0 + 30)
    assert (st.days_done, st.days_in_progress, st.failed_days, st.finished) == (1, 3, [], False)
    assert st.samples == 300 and st.samples_per_s == pytest.approx(300 / 20)
    assert st.eta_seconds == pytest.approx(3 / (1 / 20))  # 3 days left at 1 day per 20 s
    assert st.percent_done == 25.0


def test_latest_materialization_per_day_counts_once_and_other_keys_are_ignored():
    node = backfill("REQUESTED", days=2, materialized=2, runs=[
        run("r1", "FAILURE", "2024-01-01", "2024-01-02", T0, [materialization("2024-01-01", 5, T0 + 1)]),
        run("r2", "SUCCESS", "2024-01-01", "2024-01-02", T0 + 5, [
            materialization("2024-01-01", 7, T0 + 6), materialization("2024-01-02", 7, T0 + 7),
            materialization("2024-01-02", 99, T0 + 8, asset="other"), materialization("2023-12-31", 99, T0 + 9)]),
    ])
    st = parse_backfill(node, now=T0 + 10)
    assert (st.days_done, st.failed_days, st.samples) == (2, [], 14)


def test_the_daemons_count_wins_when_runs_are_gone_and_single_partition_runs_are_read():
    node = backfill("COMPLETED_SUCCESS", days=2, materialized=2, ended=T0 + 5, runs=[])
    assert parse_backfill(node).days_done == 2
    single = run("r1", "FAILURE", "", "", T0, [])
    single["tags"] = [{"key": "dagster/partition", "value": "2024-01-02"}]
    assert parse_backfill(backfill("COMPLETED_FAILED", [single], days=2, ended=T0 + 5)).failed_days == ["2024-01-02"]


def test_launch_sends_an_asset_backfill_of_the_day_range():
    seen: list[tuple[str, dict[str, Any]]] = []
    ctl = control(lambda op, v: {"launchPartitionBackfill": {"__typename": "LaunchBackfillSuccess",
                                                             "backfillId": "new1"}}, seen)
    assert ctl.launch("plant", dt.date(2024, 1, 1), dt.date(2024, 1, 3)) == "new1"
    [(operation, variables)] = seen
    params = variables["params"]
    assert operation == "Launch"
    assert params["partitionsByAssets"] == [
        {"assetKey": {"path": ["plant"]}, "partitions": {"range": {"start": "2024-01-01", "end": "2024-01-03"}}}]
    assert "selector" not in params and "partitionNames" not in params  # an asset backfill: chunked by policy
    assert {"key": "naia/launched_by", "value": "cli"} in params["tags"]


@pytest.mark.parametrize(("error", "kind", "words"), [
    (python_error("launchPartitionBackfill", "KeyError", "KeyError: AssetKey(['plant'])\n"), LaunchRejectedError, "has no asset 'plant'"),
    (python_error("launchPartitionBackfill", "CheckError", "dagster_shared.check.functions.CheckError: Invariant failed. Description: "
                                "Partition key range start 2023-01-01 is before the partitions definition start"),
     LaunchRejectedError, "cannot launch a backfill of 'plant': Partition key range start 2023-01-01"),
    (python_error("launchPartitionBackfill", "DagsterUserCodeUnreachableError", "dagster._core.errors.DagsterUserCodeUnreachableError: "
                                                     "Could not reach user code server\nstack"),
     ControlError, "failed to launch a backfill of 'plant': DagsterUserCodeUnreachableError: Could not reach"),
    ((200, {"data": {"launchPartitionBackfill": {"__typename": "UnauthorizedError", "message": "Viewer cannot launch"}}}),
     ControlError, "not allowed to launch a backfill of 'plant' at http://dagster.test: Viewer cannot launch"),
    ((200, {"data": {"launchPartitionBackfill": {"__typename": "PartitionKeysNotFoundError", "message": "Partition keys missing"}}}),
     LaunchRejectedError, "Partition keys missing"),
    ((400, {"data": None, "errors": [{"message": "Unknown argument 'partitionsByAssets'"}]}),
     ControlError, "rejected the request: Unknown argument 'partitionsByAssets'"),
])
def test_launch_errors_become_clear_exceptions(error: Any, kind: type[ControlError], words: str):
    ctl = control(by_operation(Launch=error))
    with pytest.raises(kind) as raised:
        ctl.launch("plant", dt.date(2024, 1, 1), dt.date(2024, 1, 3))
    assert words in str(raised.value)
    assert type(raised.value) is kind and (kind is not ControlError or not raised.value.bad_input)


def test_http_and_connection_errors():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(ControlError, match=r"cannot reach the Dagster webserver at http://dagster.test .*NAIA_DAGSTER_URL"):
        backfill_status(URL, "bf1", transport=httpx.MockTransport(refuse))
    with pytest.raises(ControlError, match="did not answer within 5s"):
        backfill_status(URL, "bf1", transport=httpx.MockTransport(slow), timeout=5)
    not_dagster = httpx.MockTransport(lambda r: httpx.Response(404, text="<html>not found</html>"))
    with pytest.raises(ControlError, match="answered HTTP 404 without a GraphQL response; is http://dagster.test a Dagster"):
        launch_backfill(URL + "/", "plant", dt.date(2024, 1, 1), dt.date(2024, 1, 1), transport=not_dagster)


def test_status_of_an_unknown_backfill():
    ctl = control(lambda op, v: {"partitionBackfillOrError": {"__typename": "BackfillNotFoundError",
                                                              "message": "Backfill nope could not be found."}})
    with pytest.raises(BackfillNotFoundError, match="no backfill with id 'nope' at http://dagster.test"):
        ctl.status("nope")


def test_list_parses_every_backfill():
    seen: list[tuple[str, dict[str, Any]]] = []
    ctl = control(lambda op, v: {"partitionBackfillsOrError": {"results": [RUNNING, FAILED]}}, seen)
    assert [(b.status, b.days_done) for b in ctl.list(5)] == [("REQUESTED", 1), ("COMPLETED_FAILED", 3)]
    assert seen == [("Backfills", {"limit": 5})]
    ctl = control(by_operation(Backfills=python_error("partitionBackfillsOrError", "Exception", "Exception: storage is down")))
    with pytest.raises(ControlError, match="failed to list backfills: Exception: storage is down"):
        ctl.list()


def test_cancel_only_unfinished_backfills():
    seen: list[tuple[str, dict[str, Any]]] = []
    ctl = control(by_operation(Backfill={"partitionBackfillOrError": RUNNING},
                               Cancel={"cancelPartitionBackfill": {"__typename": "CancelBackfillSuccess",
                                                                   "backfillId": "bf1"}}), seen)
    assert ctl.cancel("bf1").days_done == 1
    assert [op for op, _ in seen] == ["Backfill", "Cancel"] and seen[1][1] == {"id": "bf1"}

    seen.clear()
    ctl = control(by_operation(Backfill={"partitionBackfillOrError": SUCCEEDED}), seen)
    with pytest.raises(BackfillStateError, match="backfill bf1 already ended \\(COMPLETED_SUCCESS\\); nothing to cancel"):
        ctl.cancel("bf1")
    assert [op for op, _ in seen] == ["Backfill"]  # a finished backfill is never set to CANCELING

    ctl = control(by_operation(Backfill={"partitionBackfillOrError": RUNNING}, Cancel=python_error(
        "cancelPartitionBackfill", "CheckError", "dagster_shared.check.functions.CheckError: Failure condition: No backfill found for id: bf1\n")))
    with pytest.raises(BackfillNotFoundError, match="no backfill with id 'bf1'"):
        ctl.cancel("bf1")


def test_retry_re_executes_from_failure():
    seen: list[tuple[str, dict[str, Any]]] = []
    ctl = control(by_operation(Backfill={"partitionBackfillOrError": FAILED},
                               Retry={"reexecutePartitionBackfill": {"__typename": "LaunchBackfillSuccess",
                                                                     "backfillId": "bf2"}}), seen)
    assert ctl.retry("bf1") == "bf2"
    assert seen[-1] == ("Retry", {"params": {"parentRunId": "bf1", "strategy": "FROM_FAILURE"}})

    for node, words in [(RUNNING, "still REQUESTED; wait for it to end or cancel it"),
                        (SUCCEEDED, "nothing to retry: all 2 day\\(s\\) of backfill bf1 are done")]:
        with pytest.raises(BackfillStateError, match=words):
            control(by_operation(Backfill={"partitionBackfillOrError": node})).retry("bf1")

    ctl = control(by_operation(Backfill={"partitionBackfillOrError": FAILED}, Retry=python_error(
        "reexecutePartitionBackfill", "DagsterInvariantViolationError", "dagster._core.errors.DagsterInvariantViolationError: Cannot re-execute "
                                          "from failure an asset backfill that has no missing materializations.\n")))
    with pytest.raises(BackfillStateError, match="cannot retry backfill 'bf1': Cannot re-execute from failure"):
        ctl.retry("bf1")


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Runs the control commands on the main CLI group with GraphQL answered by ``handler``."""
    from naia_backfill.cli import cli

    monkeypatch.setenv("NAIA_DAGSTER_URL", URL)
    monkeypatch.setattr("naia_backfill.cli.remote.time.sleep", lambda s: None)

    init = DagsterControl.__init__

    def call(handler: Handler, *args: str) -> Any:
        monkeypatch.setattr(DagsterControl, "__init__",
                            lambda self, url, **kw: init(self, url, transport=transport(handler), **kw))
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return call


def test_cli_status_list_detail_and_follow(invoke: Callable[..., Any]):
    res = invoke(lambda op, v: {"partitionBackfillsOrError": {"results": [RUNNING, FAILED]}}, "status")
    assert res.exit_code == 0, res.output
    assert "bf1" in res.output and "COMPLETED_FAILED" in res.output and "3/4" in res.output

    res = invoke(lambda op, v: {"partitionBackfillOrError": FAILED}, "status", "bf1")
    assert res.exit_code == 0, res.output
    assert "3/4 (75%)" in res.output and "1: 2024-01-02" in res.output and "2,500" in res.output

    polls = iter([RUNNING, RUNNING, FAILED])
    res = invoke(lambda op, v: {"partitionBackfillOrError": next(polls)}, "status", "bf1", "--follow")
    assert res.exit_code == 1
    assert "1 day(s) failed: 2024-01-02" in res.output and "retry bf1" in res.output

    res = invoke(lambda op, v: {"partitionBackfillOrError": SUCCEEDED}, "status", "bf1", "--follow")
    assert res.exit_code == 0, res.output
    assert "all 2 day(s) of plant done" in res.output


def test_cli_errors_exit_codes(invoke: Callable[..., Any]):
    missing = {"partitionBackfillOrError": {"__typename": "BackfillNotFoundError", "message": "not found"}}
    res = invoke(lambda op, v: missing, "cancel", "nope")
    assert res.exit_code == 2 and "no backfill with id 'nope'" in res.output

    res = invoke(lambda op, v: {"partitionBackfillOrError": SUCCEEDED}, "cancel", "bf1")
    assert res.exit_code == 2 and "already ended" in res.output

    res = invoke(lambda op, v: {"partitionBackfillOrError": SUCCEEDED}, "retry", "bf1")
    assert res.exit_code == 2 and "nothing to retry" in res.output

    res = invoke(by_operation(Backfills=(502, {"errors": [{"message": "bad gateway"}]})), "status")
    assert res.exit_code == 1 and "rejected the request: bad gateway" in res.output

    res = invoke(lambda op, v: pytest.fail("no request on bad input"), "status", "--follow")
    assert res.exit_code == 2 and "--follow needs a backfill ID" in res.output

    res = invoke(lambda op, v: pytest.fail("no request on bad input"),
                 "backfill", "demo", "--start", "2024-01-05", "--end", "2024-01-01")
    assert res.exit_code == 2 and "--start 2024-01-05 is after --end 2024-01-01" in res.output


def test_cli_backfill_and_retry_print_the_new_id(invoke: Callable[..., Any]):
    seen: list[tuple[str, dict[str, Any]]] = []

    def handler(operation: str, variables: dict[str, Any]) -> Any:
        seen.append((operation, variables))
        if operation == "Launch":
            return {"launchPartitionBackfill": {"__typename": "LaunchBackfillSuccess", "backfillId": "bf9"}}
        if operation == "Retry":
            return {"reexecutePartitionBackfill": {"__typename": "LaunchBackfillSuccess", "backfillId": "bf10"}}
        return {"partitionBackfillOrError": FAILED}

    res = invoke(handler, "backfill", "demo", "--start", "2024-01-01", "--end", "2024-01-31")
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == "bf9"
    assert seen[0][1]["params"]["partitionsByAssets"][0]["partitions"]["range"] == {
        "start": "2024-01-01", "end": "2024-01-31"}

    res = invoke(handler, "retry", "bf1", "--url", "http://other.test")
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == "bf10"
