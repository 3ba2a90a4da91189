"""Backfills of point sets on a running Dagster webserver, over its GraphQL API.

Launch, follow, cancel and retry the same asset backfills the UI launches (Assets → a point set →
Materialize → a date range): a backfill of a point set's asset over a range of days, which the daemon splits
into runs of ``chunk_days`` days (the asset's ``BackfillPolicy``). Progress comes from the backfill's runs:
the days they materialized (each with its ``samples`` metadata), and the days of failed or canceled runs that
no run materialized, which is how Dagster itself counts a backfill's failed partitions.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from typing import Any, Self

import httpx

from naia_backfill.cli.backfill_status import BackfillStatus, RunInfo, _first_line, parse_backfill
from naia_backfill.errors import NaiaError

__all__ = ["BackfillStatus", "RunInfo", "parse_backfill"]

DEFAULT_URL = "http://127.0.0.1:3000"

BACKFILL_FIELDS = """
fragment BackfillFields on PartitionBackfill {
  id status title timestamp endTimestamp numPartitions partitionNames
  assetSelection { path }
  error { message className }
  assetBackfillData {
    assetBackfillStatuses { ... on AssetPartitionsStatusCounts { numPartitionsTargeted numPartitionsMaterialized } }
  }
  runs {
    runId status startTime endTime
    tags { key value }
    assetMaterializations { partition timestamp assetKey { path } metadataEntries { label ... on IntMetadataEntry { intRepr } } }
  }
}
"""

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message } ... on PythonError { className }
  }
}
"""

BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename ...BackfillFields ... on Error { message } ... on PythonError { className }
  }
}
""" + BACKFILL_FIELDS

BACKFILLS = """
query Backfills($limit: Int) {
  partitionBackfillsOrError(limit: $limit) {
    __typename ... on PartitionBackfills { results { ...BackfillFields } } ... on PythonError { message className }
  }
}
""" + BACKFILL_FIELDS

CANCEL = """
mutation Cancel($id: String!) {
  cancelPartitionBackfill(backfillId: $id) {
    __typename ... on CancelBackfillSuccess { backfillId } ... on Error { message } ... on PythonError { className }
  }
}
"""

# FROM_FAILURE makes a new backfill of the days its parent did not materialize (failed, canceled or never
# run); ALL_STEPS would run every day again.
RETRY = """
mutation Retry($params: ReexecutionParams) {
  reexecutePartitionBackfill(reexecutionParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message } ... on PythonError { className }
  }
}
"""


class ControlError(NaiaError):
    """The Dagster webserver could not be reached or refused a request."""

    bad_input = False


class BackfillNotFoundError(ControlError):
    """No backfill has this id."""

    bad_input = True


class BackfillStateError(ControlError):
    """The backfill is in a state that does not allow the request (cancel a finished one, ...)."""

    bad_input = True


class LaunchRejectedError(ControlError):
    """The webserver refused to launch the backfill (unknown asset, days outside its partitions, ...)."""

    bad_input = True


class DagsterControl:
    """A client of one Dagster webserver's GraphQL endpoint."""

    def __init__(self, url: str = DEFAULT_URL, *, timeout: float = 60.0, transport: httpx.BaseTransport | None = None):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.Client(timeout=timeout, transport=transport, headers={"User-Agent": "naia-backfill"})

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def execute(self, document: str, variables: dict[str, Any], root: str) -> dict[str, Any]:
        """Run a GraphQL document; return the object under ``root`` or raise a :class:`ControlError`."""
        endpoint = f"{self.url}/graphql"
        try:
            response = self._http.post(endpoint, json={"query": document, "variables": variables})
        except httpx.TimeoutException:
            raise ControlError(f"the Dagster webserver at {self.url} did not answer within {self.timeout:g}s") from None
        except httpx.HTTPError as e:
            raise ControlError(
                f"cannot reach the Dagster webserver at {self.url} ({e or type(e).__name__}); is `dagster dev` or "
                "dagster-webserver running there? Point --url or $NAIA_DAGSTER_URL at it"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or ("data" not in body and "errors" not in body):
            raise ControlError(
                f"{endpoint} answered HTTP {response.status_code} without a GraphQL response; "
                f"is {self.url} a Dagster webserver (with any path prefix)?"
            )
        result = (body.get("data") or {}).get(root)
        if result is None:
            messages = "; ".join(str(e.get("message", e)) for e in body.get("errors") or []) or "no data"
            raise ControlError(f"the Dagster webserver at {self.url} rejected the request: {messages}")
        return result

    def _raise(self, result: Mapping[str, Any], action: str, backfill_id: str | None = None) -> None:
        """Raise the error a non-success GraphQL result stands for."""
        kind = result.get("__typename", "")
        cls = result.get("className") or "error"
        message = _first_line(result.get("message") or kind, cls)
        if kind == "BackfillNotFoundError" or message.startswith("No backfill found for id"):
            raise BackfillNotFoundError(f"no backfill with id {backfill_id!r} at {self.url}")
        if kind == "UnauthorizedError":
            raise ControlError(f"not allowed to {action} at {self.url}: {message}")
        if kind == "PythonError" and cls == "DagsterInvariantViolationError":
            raise BackfillStateError(f"cannot {action}: {message}")
        if kind == "PythonError":
            raise ControlError(f"the Dagster webserver at {self.url} failed to {action}: {cls}: {message}")
        raise LaunchRejectedError(f"cannot {action}: {message}")

    def launch(self, point_set: str, first: dt.date, last: dt.date, *, tags: Mapping[str, str] | None = None) -> str:
        """Launch an asset backfill of ``point_set`` for the UTC days ``first``..``last`` (inclusive)."""
        params = {
            "partitionsByAssets": [
                {"assetKey": {"path": [point_set]},
                 "partitions": {"range": {"start": first.isoformat(), "end": last.isoformat()}}}
            ],
            "title": f"{point_set} {first}..{last}",
            "tags": [{"key": k, "value": v} for k, v in {"naia/launched_by": "cli", **(tags or {})}.items()],
        }
        result = self.execute(LAUNCH, {"params": params}, "launchPartitionBackfill")
        if "backfillId" in result:
            return result["backfillId"]
        if result.get("className") == "KeyError" and "AssetKey" in (result.get("message") or ""):
            raise LaunchRejectedError(
                f"the Dagster webserver at {self.url} has no asset {point_set!r}: is the point set among the "
                "server's point sets (its $NAIA_POINT_SETS), and was the code location reloaded?"
            )
        if result.get("className") == "CheckError":  # the request does not fit the asset's partitions
            raise LaunchRejectedError(f"cannot launch a backfill of {point_set!r}: {_first_line(result['message'])}")
        self._raise(result, f"launch a backfill of {point_set!r}")
        raise AssertionError("unreachable")

    def status(self, backfill_id: str) -> BackfillStatus:
        result = self.execute(BACKFILL, {"id": backfill_id}, "partitionBackfillOrError")
        if result.get("__typename") != "PartitionBackfill":
            self._raise(result, f"read backfill {backfill_id!r}", backfill_id)
        return parse_backfill(result)

    def list(self, limit: int = 10) -> list[BackfillStatus]:
        """The most recent backfills, newest first."""
        result = self.execute(BACKFILLS, {"limit": limit}, "partitionBackfillsOrError")
        if "results" not in result:
            self._raise(result, "list backfills")
        now = time.time()
        return [parse_backfill(node, now) for node in result["results"]]

    def cancel(self, backfill_id: str) -> BackfillStatus:
        """Ask Dagster to cancel an unfinished backfill (its queued and running runs are canceled)."""
        current = self.status(backfill_id)
        if current.finished:
            raise BackfillStateError(f"backfill {backfill_id} already ended ({current.status}); nothing to cancel")
        if current.status != "CANCELING":
            result = self.execute(CANCEL, {"id": backfill_id}, "cancelPartitionBackfill")
            if "backfillId" not in result:
                self._raise(result, f"cancel backfill {backfill_id!r}", backfill_id)
        return current

    def retry(self, backfill_id: str) -> str:
        """A new backfill of the days ``backfill_id`` did not materialize; returns its id."""
        current = self.status(backfill_id)
        if not current.finished:
            raise BackfillStateError(
                f"backfill {backfill_id} is still {current.status}; wait for it to end or cancel it first")
        if current.succeeded:
            raise BackfillStateError(
                f"nothing to retry: all {current.days_total} day(s) of backfill {backfill_id} are done")
        params = {"parentRunId": backfill_id, "strategy": "FROM_FAILURE"}
        result = self.execute(RETRY, {"params": params}, "reexecutePartitionBackfill")
        if "backfillId" not in result:
            self._raise(result, f"retry backfill {backfill_id!r}", backfill_id)
        return result["backfillId"]


def launch_backfill(url: str, point_set: str, start: dt.date, end: dt.date, **kw: Any) -> str:
    with DagsterControl(url, **kw) as control:
        return control.launch(point_set, start, end)


def backfill_status(url: str, backfill_id: str, **kw: Any) -> BackfillStatus:
    with DagsterControl(url, **kw) as control:
        return control.status(backfill_id)


def list_backfills(url: str, limit: int = 10, **kw: Any) -> list[BackfillStatus]:
    with DagsterControl(url, **kw) as control:
        return control.list(limit)


def cancel_backfill(url: str, backfill_id: str, **kw: Any) -> BackfillStatus:
    with DagsterControl(url, **kw) as control:
        return control.cancel(backfill_id)


def retry_backfill(url: str, backfill_id: str, **kw: Any) -> str:
    with DagsterControl(url, **kw) as control:
        return control.retry(backfill_id)
