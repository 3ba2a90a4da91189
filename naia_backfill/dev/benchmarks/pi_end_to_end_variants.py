"""The clients of ``naia-backfill bench pi-end-to-end``, each run in its own process against the same simulator.

- ``naia``: ``copy_day`` with the PI Web API connector (``/streamsets/recorded``, 50 streams a request, maxCount
  paging with the equal-timestamp rule, ``pipeline_depth`` requests kept going) into
  :class:`~naia_backfill.sinks.parquet.ParquetDaySink` on a local lake.
- ``download``: the limit. The same requests as naia's (the connector plans them), sent through the same
  client, pipeline and ``concurrent_requests`` gate, with the bodies only read and their events counted: no
  parsing, no Parquet.
- ``dlt`` (``pip install 'dlt[parquet]'``): ``dlt.sources.rest_api`` with dataservers -> points
  (startIndex/maxCount offset paging) -> ``/streams/{webId}/recorded`` per point per day, a custom paginator
  following PI's maxCount paging, into ``destination="filesystem"`` with ``loader_file_format="parquet"``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

DAY = dt.date(2024, 1, 1)
DATA_SERVER = "PISRV1"
#: maxCount of dlt's ``/streams/{webId}/recorded`` requests: the server's MaxReturnedItemsPerCall, one page per
#: point-day at one sample a minute (smaller values exercise the paginator).
DLT_MAX_COUNT = 150_000


def _point_set(url: str, pipeline: dict[str, int]) -> Any:
    from naia_backfill.settings import PointSet

    source = {"kind": "pi_web_api", "base_url": url, "data_server": DATA_SERVER, **pipeline}
    return PointSet.model_validate(
        {"name": "bench_pi", "start_date": DAY, "source": source, "points": {"name_filter": "*"}}
    )


def run_naia(url: str, points: int, days: int, work: str, pipeline: dict[str, int]) -> int:
    from naia_backfill.connectors import build_source, resolve_points
    from naia_backfill.core.daycopy import copy_day
    from naia_backfill.sinks.base import DayTarget
    from naia_backfill.sinks.lake_local import LocalLake
    from naia_backfill.sinks.parquet import ParquetDaySink

    point_set = _point_set(url, pipeline)
    source = build_source(point_set)
    sink = ParquetDaySink(LocalLake(work))
    try:
        names = resolve_points(point_set, source)
        assert len(names) == points, (len(names), points)
        return sum(
            copy_day(source, names, [sink], DayTarget("bench_pi", DAY + dt.timedelta(days=i))).samples
            for i in range(days)
        )
    finally:
        sink.close()
        source.close()


def run_download(url: str, points: int, days: int, work: str, pipeline: dict[str, int]) -> int:
    """naia's first requests of each day, downloaded through the same client and pipeline: the events received
    (each stream's event at the next midnight too, which naia drops: boundaryType Inside includes endTime).

    At one sample a minute every stream fits its first page, so these are all of naia's requests; a count short
    of the simulator's shows otherwise."""
    from naia_backfill.connectors import build_source, resolve_points
    from naia_backfill.connectors.http import get_body
    from naia_backfill.connectors.pi_web_api_pipeline import OrderedPipeline

    point_set = _point_set(url, pipeline)
    source = build_source(point_set)
    try:
        names = resolve_points(point_set, source)

        def download(params: list[tuple[str, str]]) -> int:
            with source.sending:  # as many on the wire at once as naia sends
                body = get_body(source.client, "streamsets/recorded", params, "download")
            return body.count(b'"Timestamp"')

        pipeline = OrderedPipeline(download, source.settings.pipeline_depth, "download")
        for i in range(days):
            start = dt.datetime.combine(DAY + dt.timedelta(days=i), dt.time(), tzinfo=dt.UTC)
            pipeline.extend(source.first_requests(names, start, start + dt.timedelta(days=1)))
        return sum(pipeline)
    finally:
        source.close()


def _pi_recorded_paginator(max_count: int) -> Any:
    """dlt paginator for ``/streams/{webId}/recorded``: a full page (maxCount events) is asked again from its last
    timestamp, and the events at that timestamp already taken are dropped from the next page (in place, in
    ``update_state``, which dlt calls before it yields the page), so equal-timestamp runs split across pages come
    out whole. A full page of one timestamp cannot be paged through: it fails."""
    from dlt.sources.helpers.rest_client.paginators import BasePaginator

    class PiRecordedPaginator(BasePaginator):
        def __init__(self) -> None:
            super().__init__()
            self.start: str | None = None  # startTime of the next request
            self.skip = 0  # events at ``start`` already yielded

        def update_state(self, response: Any, data: list[Any] | None = None) -> None:
            items = data if data is not None else []
            full = len(items) >= max_count
            if self.skip:
                lead = 0
                while lead < min(self.skip, len(items)) and items[lead]["Timestamp"] == self.start:
                    lead += 1
                del items[:lead]
            if not full or not items:
                self._has_next_page = False
                return
            last = items[-1]["Timestamp"]
            taken = sum(1 for it in items if it["Timestamp"] == last)
            if last == self.start:
                taken += self.skip
            if taken >= max_count:
                raise RuntimeError(f"{max_count}+ events at {last}: PI pages by timestamp; raise maxCount")
            self.start, self.skip = last, taken

        def update_request(self, request: Any) -> None:
            if self._has_next_page and self.start is not None:
                request.params["startTime"] = self.start

    return PiRecordedPaginator()


def _dlt_resources(start: dt.datetime, last_tick: str, max_count: int) -> list[dict[str, Any]]:
    from dlt.sources.helpers.rest_client.paginators import OffsetPaginator

    from naia_backfill.connectors.pi_web_api_json import iso, to_ns

    return [
        {
            "name": "dataservers",
            "selected": False,
            "endpoint": {"path": "dataservers", "params": {"name": DATA_SERVER}, "data_selector": "$",
                         "paginator": "single_page"},
        },
        {
            "name": "points",
            "selected": False,
            "endpoint": {
                "path": "dataservers/{resources.dataservers.WebId}/points",
                "data_selector": "Items",
                "params": {"nameFilter": "*"},
                "paginator": OffsetPaginator(limit=1000, offset_param="startIndex", limit_param="maxCount",
                                             total_path=None),
            },
        },
        {
            "name": "recorded",
            "include_from_parent": ["Name"],
            "endpoint": {
                "path": "streams/{resources.points.WebId}/recorded",
                "data_selector": "Items",
                "params": {"startTime": iso(to_ns(start)), "endTime": last_tick, "boundaryType": "Inside",
                           "maxCount": max_count},
                "paginator": _pi_recorded_paginator(max_count),
            },
        },
    ]


def run_dlt(url: str, points: int, days: int, work: str, pipeline: dict[str, int]) -> int:
    import dlt
    import pyarrow.parquet as pq
    from dlt.sources.rest_api import rest_api_source

    from naia_backfill.connectors.pi_web_api_json import iso, to_ns

    pipeline = dlt.pipeline(
        pipeline_name="bench_pi_dlt",
        pipelines_dir=str(Path(work) / "pipelines"),
        destination=dlt.destinations.filesystem(bucket_url=str(Path(work) / "lake")),
        dataset_name="bench_pi",
    )
    for i in range(days):
        start = dt.datetime.combine(DAY + dt.timedelta(days=i), dt.time(), tzinfo=dt.UTC)
        # boundaryType Inside includes endTime; ask up to the last 100 ns tick before the next day instead
        last_tick = iso(to_ns(start + dt.timedelta(days=1)) - 100)
        source = rest_api_source({"client": {"base_url": url.rstrip("/") + "/"},
                                  "resources": _dlt_resources(start, last_tick, DLT_MAX_COUNT)})
        pipeline.run(source, loader_file_format="parquet")
    files = list((Path(work) / "lake" / "bench_pi" / "recorded").glob("*.parquet"))
    return sum(pq.read_metadata(f).num_rows for f in files)


RUNNERS = {"naia": run_naia, "download": run_download, "dlt": run_dlt}
