"""`naia-backfill validate`: check the days of a point set in the lake, draw a coverage picture, record results.

Exit codes: 0 when no day fails an ERROR-level check (missing day, duplicates), 1 when one does, 2 on bad input.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape
from rich.table import Table

from naia_backfill.cli.common import (
    BadInput,
    Ctx,
    Failed,
    check_lake,
    console,
    day_range,
    days_between,
    ensure_dagster_home,
    out,
)
from naia_backfill.errors import NaiaError, PointSetError
from naia_backfill.settings import PointSet, SyntheticSource

if TYPE_CHECKING:
    import numpy as np

    from naia_backfill.core.check_outcomes import DayReport

MAX_ROWS = 150  # rows of the picture; more points are binned
STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red"}


def expected_points(ps: PointSet) -> list[str] | None:
    """The points every day should have, when known without asking a remote source."""
    if ps.points.names is not None:
        return list(ps.points.names)
    if ps.points.file is not None:
        return ps.point_names_from_file()
    if isinstance(ps.source, SyntheticSource):
        from naia_backfill.connectors.synthetic import SyntheticConnector

        return SyntheticConnector(ps.source).list_points(ps.points.name_filter or "*")
    return None


def coverage_matrix(reports: Sequence[DayReport], expected: Sequence[str] | None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Point names, samples per (point, day) and which days have no object at all."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    names = pa.concat_arrays([pa.array(list(expected or []), pa.string())] +
                             [r.point_samples.column("point").combine_chunks() for r in reports])
    points = sorted(set(pc.unique(names).to_pylist()))
    index = pa.array(points, pa.string())
    counts = np.zeros((len(points), len(reports)), dtype=np.int64)
    for j, r in enumerate(reports):
        rows = pc.index_in(r.point_samples.column("point"), value_set=index).to_numpy(zero_copy_only=False)
        counts[rows.astype(np.int64), j] = r.point_samples.column("samples").to_numpy()
    no_object = np.array([not r.objects for r in reports], dtype=bool)
    return points, counts, no_object


GREY, RED, AMBER = "#c7c7c7", "#d62728", "#fdae6b"
STATUS_COLOUR = {"pass": "#2ca02c", "warn": "#ff7f0e", "fail": RED}


def draw_coverage(reports: Sequence[DayReport], expected: Sequence[str] | None, path: Path, title: str) -> Path:
    """Points x days picture: colour = samples per point-day; red = point without samples; amber = the day's
    object has no rows (the source had no data); grey = no object. Above: points missing per day and each
    day's check status. More than MAX_ROWS points are binned into rows of consecutive names."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import colors

    points, counts, no_object = coverage_matrix(reports, expected)
    no_rows = np.array([bool(r.objects) and r.samples == 0 for r in reports], dtype=bool)
    n_points, n_days = counts.shape
    size = max(1, math.ceil(n_points / MAX_ROWS))
    n_rows = max(1, math.ceil(n_points / size))
    padded = np.zeros((n_rows * size, n_days))
    present = np.zeros((n_rows * size, n_days))
    padded[:n_points], present[:n_points] = counts, counts > 0
    members = np.minimum(size, n_points - np.arange(n_rows) * size)[:, None] if n_points else np.ones((1, 1))
    mean = padded.reshape(n_rows, size, n_days).sum(axis=1) / members
    seen = present.reshape(n_rows, size, n_days).sum(axis=1)

    cmap = plt.get_cmap("viridis")
    norm = colors.Normalize(vmin=0, vmax=max(1.0, float(mean.max()) if mean.size else 1.0))
    image = cmap(norm(mean))
    image[seen == 0] = colors.to_rgba(RED)
    image[:, no_rows] = colors.to_rgba(AMBER)
    image[:, no_object] = colors.to_rgba(GREY)

    fig, (top, strip, ax) = plt.subplots(
        3, 1, figsize=(14, 9.5), height_ratios=[1, 0.12, 4], sharex=True, layout="constrained"
    )
    x = np.arange(n_days)
    missing = np.where(no_object | no_rows, 0, (counts == 0).sum(axis=0))
    top.bar(x, missing, width=1.0, color=RED, label="points without samples")
    top.bar(x[no_rows], np.full(no_rows.sum(), n_points), width=1.0, color=AMBER, label="object without rows (no data at source)")
    top.bar(x[no_object], np.full(no_object.sum(), n_points), width=1.0, color=GREY, label="no object (day missing)")
    top.set_ylabel("points")
    top.set_ylim(0, max(1, n_points))
    top.legend(loc="upper right", fontsize=8)
    top.set_title(title)

    status = np.array([[colors.to_rgba(STATUS_COLOUR[r.status]) for r in reports]]).reshape(1, n_days, 4)
    strip.imshow(status, aspect="auto", interpolation="nearest", extent=(-0.5, n_days - 0.5, 0.5, -0.5))
    strip.set_yticks([0], ["checks"], fontsize=8)
    strip.set_title("check status per day: green pass, orange warning, red ERROR", fontsize=8, loc="left")

    ax.imshow(image, aspect="auto", interpolation="nearest", extent=(-0.5, n_days - 0.5, n_rows - 0.5, -0.5))
    step = max(1, math.ceil(n_days / 15))
    ax.set_xticks(x[::step], [r.day.isoformat() for r in reports][::step], rotation=45, ha="right", fontsize=8)
    rows = np.arange(0, n_rows, max(1, math.ceil(n_rows / 40)))
    if not n_points:
        rows, labels = np.arange(0), []
    elif size == 1:
        labels = [points[i] for i in rows]
    else:
        labels = [f"{points[i * size]} .. {points[min(n_points, (i + 1) * size) - 1]}" for i in rows]
    ax.set_yticks(rows, labels, fontsize=7)
    ax.set_ylabel(f"points ({n_points:,}" + (f", {size} per row)" if size > 1 else ")"))
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, fraction=0.03, pad=0.01)
    bar.set_label("samples per point-day" + (" (mean of the row's points)" if size > 1 else ""))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def print_day(report: DayReport, rows: bool = False) -> None:
    status = report.status
    counts = f"{report.samples:>12,} rows" if rows else f"{report.samples:>12,} samples  {report.points:>6,} points"
    line = f"{report.day}  [{STYLE[status]}]{status.upper():4s}[/]  {counts}  {len(report.objects)} object(s)"
    out.print(line, highlight=False)
    for c in report.checks.values():
        if not c.passed:
            mark = "[bold red]x[/]" if c.severity == "ERROR" else "[yellow]![/]"
            out.print(f"    {mark} {c.name} [{c.severity}]: {escape(c.summary)}", highlight=False, soft_wrap=True)


def print_summary(ps: PointSet, reports: Sequence[DayReport]) -> None:
    from naia_backfill.core.check_outcomes import CHECK_NAMES

    table = Table("check", "passed", "warned", "failed", "not checked", title=f"{ps.name}: {len(reports)} day(s)")
    for name in CHECK_NAMES:
        outcomes = [r.checks[name] for r in reports]
        table.add_row(
            name,
            str(sum(c.passed and not c.skipped for c in outcomes)),
            str(sum(not c.passed and c.severity == "WARN" for c in outcomes)),
            str(sum(not c.passed and c.severity == "ERROR" for c in outcomes)),
            str(sum(c.skipped for c in outcomes)),
        )
    out.print(table)
    skipped = {c.summary for r in reports for c in r.checks.values() if c.skipped and "no data" not in c.summary
               and "unreadable" not in c.summary}
    for note in sorted(skipped):
        out.print(f"note: {escape(note)}", highlight=False)


@click.command("validate")
@click.argument("point_set", metavar="NAME|FILE")
@click.option("--start", help="First UTC day (YYYY-MM-DD); default the point set's start_date.")
@click.option("--end", help="Last UTC day, inclusive; default the last complete day.")
@click.option("--lake", help="Lake root (folder or s3://bucket/prefix); default $NAIA_LAKE_URL or ./data/lake.")
@click.option("--png", "png", type=click.Path(dir_okay=False), help="Coverage picture; default ./data/coverage-NAME-START-END.png.")
@click.option("--record/--no-record", default=True, show_default=True,
              help="Record the check results and the picture's path in the Dagster instance ($DAGSTER_HOME).")
@click.pass_obj
def validate_cmd(obj: Ctx, point_set: str, start: str | None, end: str | None, lake: str | None, png: str | None,
                 record: bool) -> None:
    """Check the days of a point set in the lake: samples present, no duplicates, gaps, value ranges."""
    from naia_backfill.core.check_outcomes import rows_shaped
    from naia_backfill.core.validation import iter_range
    from naia_backfill.sinks.lake import lake_from_url

    _, ps = obj.one(point_set)
    first, last = day_range(ps, start, end)
    if ps.sink("parquet") is None:
        raise BadInput(f"point set {ps.name!r} writes no Parquet lake (no parquet sink): nothing to validate")
    if lake and "://" in lake and not lake.startswith(("s3://", "file://")):
        raise BadInput(f"--lake {lake!r}: use a folder, file:///path or s3://bucket/prefix")
    try:
        expected = expected_points(ps)
        # An s3:// lake must answer with the configured credentials before any day is read (exit 2 if not).
        on_s3 = (lake or os.environ.get("NAIA_LAKE_URL") or "").startswith("s3://")
        the_lake = check_lake(lake, writable=False) if on_s3 else lake_from_url(lake)
    except (PointSetError, ValueError) as e:
        raise BadInput(str(e)) from None
    picture = Path(png) if png else Path("data") / f"coverage-{ps.name}-{first}-{last}.png"
    if record:
        ensure_dagster_home()
    console.print(f"validating {ps.name} {first} .. {last} in {the_lake.url}"
                  + (f" against {len(expected):,} expected points" if expected is not None else ""), highlight=False)
    reports = []
    try:
        for report in iter_range(the_lake, ps, days_between(first, last), expected):
            print_day(report, rows=rows_shaped(ps))
            reports.append(report)
    except NaiaError as e:  # the lake stopped answering (listing refused, endpoint gone)
        raise Failed(f"reading the lake {the_lake.url} failed: {e}") from None
    print_summary(ps, reports)
    draw_coverage(reports, expected, picture, f"{ps.name}: samples per point and day, {first} .. {last}")
    out.print(f"coverage picture: {picture}", highlight=False)
    if record:
        import dagster as dg

        from naia_backfill.lib.checks import record_reports

        n = record_reports(dg.DagsterInstance.get(), ps, reports, str(picture.resolve()))
        out.print(f"recorded {n} check result(s) and the picture in the Dagster instance", highlight=False)
    failed = [r.day.isoformat() for r in reports if r.status == "fail"]
    if failed:
        shown = ", ".join(failed[:10]) + (f" and {len(failed) - 10} more" if len(failed) > 10 else "")
        raise Failed(f"{len(failed)} day(s) failed an ERROR-level check: {shown}")
