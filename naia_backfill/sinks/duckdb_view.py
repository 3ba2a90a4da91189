"""The SQL of a point set's DuckDB view, built so that creating or binding it never reads a lake object.

DuckDB binds ``read_parquet`` over a list of files by reading the *first* file's footer (with
``union_by_name = false``; ``true`` reads every footer). So the list starts with a *schema anchor*: an empty
Parquet file with the columns the point set's objects have, kept beside the database
(``<database>.views/point_set=<name>/date=1970-01-01/schema.parquet``: the hive folders give it the view's
partition columns; ``<database>.views/<name>/schema.parquet`` for a key template), whose zero rows keep it out of
every result. The lake's objects are opened only when a
query scans them, after the ``date`` filter pruned the others: a corrupt or foreign object fails only the
queries that read its day.

The hive layout (default) gets ``point_set`` and ``date`` from the folders. A ``key_template`` layout gets
``date`` from the object's name, which DuckDB also prunes on; its columns are read back as the canonical ones
(:func:`naia_backfill.sinks.parquet_columns.canonical_select`).
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from naia_backfill.errors import SinkError
from naia_backfill.schema import SAMPLE_SCHEMA
from naia_backfill.sinks.lake import Lake
from naia_backfill.sinks.layout import Layout

ANCHOR_DAY = "1970-01-01"
_DATE_RE = {"date": r"(\d{4}-\d{2}-\d{2})", "yyyy": r"(\d{4})", "mm": r"(\d{2})", "dd": r"(\d{2})"}


def literal(text: str) -> str:
    """A SQL string literal (DDL takes no parameters)."""
    if "\x00" in text:
        raise SinkError("a DuckDB path contains a NUL character")
    return "'" + text.replace("'", "''") + "'"


def written_schema(parquet: Any, point_set: str, batches: pa.Schema | None) -> pa.Schema:
    """The columns the Parquet sink writes for these batches: its column mapping of canonical batches, else
    the batches' own schema (sources that copy rows as they are), else the canonical schema."""
    canonical = batches is None or batches.remove_metadata().equals(SAMPLE_SCHEMA.remove_metadata())
    if parquet is not None and canonical:
        from naia_backfill.sinks.parquet_columns import ColumnMapping

        return ColumnMapping(parquet, point_set).schema.remove_metadata()
    return (batches or SAMPLE_SCHEMA).remove_metadata()


def _filename_regex(template: str) -> tuple[str, dict[str, int]]:
    """An RE2 pattern matching the end of a templated object's URI (full day or point group), and the group
    number of each date part in it."""
    parts = re.split(r"\{([^{}]*)\}", template.removesuffix(".parquet"))
    pattern, groups = [], {}
    for i, part in enumerate(parts):
        if i % 2 == 0:
            pattern.append(re.escape(part))
        elif part in groups:
            pattern.append(_DATE_RE[part].replace("(", "(?:", 1))
        else:
            groups[part] = len(groups) + 1
            pattern.append(_DATE_RE[part])
    return "".join(pattern) + r"(?:\.points-[0-9a-f]{12})?\.parquet$", groups


def _date_sql(template: str) -> str:
    """A DuckDB expression of ``filename`` giving the day of a templated object's URI."""
    pattern, groups = _filename_regex(template)
    regex = literal(pattern)

    def part(name: str) -> str:
        return f"regexp_extract(filename, {regex}, {groups[name]})"

    if "date" in groups:
        return f"CAST({part('date')} AS DATE)"
    return "make_date(" + ", ".join(f"CAST({part(n)} AS INTEGER)" for n in ("yyyy", "mm", "dd")) + ")"


class ViewDefinition:
    """The view of one point set: its SQL over [anchor, lake globs] and a digest of everything it depends on."""

    def __init__(self, lake: Lake, anchors: Path, point_set: str, parquet: Any = None,
                 batches: pa.Schema | None = None) -> None:
        layout = Layout(point_set, getattr(parquet, "key_template", None))
        self.name = point_set
        self.schema = written_schema(parquet, point_set, batches)
        if layout.hive:
            self.anchor = anchors / f"point_set={point_set}" / f"date={ANCHOR_DAY}" / "schema.parquet"
            options = "hive_partitioning = true, hive_types = {'point_set': 'VARCHAR', 'date': 'DATE'}"
            columns = "*"
            if parquet is not None and not _is_canonical(parquet):
                columns = f"{_canonical_select(parquet)}, point_set, date"
            globs, where = layout.globs(), ""
        else:
            self.anchor = anchors / point_set / "schema.parquet"
            options = "hive_partitioning = false, filename = true"
            columns = (f"{_canonical_select(parquet)}, {literal(point_set)} AS point_set, "
                       f"{_date_sql(layout.template)} AS date")
            # One glob for full days and point groups (every glob of the list must match a file); the filter on
            # the name, pruned before any file is opened, drops what only looks like this point set's objects.
            globs = [layout.globs()[0].removesuffix(".parquet") + "*.parquet"]
            where = f" WHERE regexp_matches(filename, {literal(_filename_regex(layout.template)[0])})"
        # DuckDB's S3 listing takes a '?' literally (a list entry then names no file): one '*' per run of them.
        self.globs = [lake.uri(re.sub(r"\?+", "*", g)) for g in globs]
        self.query = f"SELECT {columns} FROM read_parquet([<files>], union_by_name = false, {options}){where}"
        self.sql = f'CREATE OR REPLACE VIEW "{point_set}" AS ' + self._query(self.globs)
        digest = hashlib.sha256(self.sql.encode() + self.schema.serialize().to_pybytes())
        self.digest = "naia:" + digest.hexdigest()[:32]

    def _query(self, globs: list[str]) -> str:
        return self.query.replace("<files>", ", ".join(literal(p) for p in [str(self.anchor), *globs]), 1)

    def has_objects(self, con: duckdb.DuckDBPyConnection) -> bool:
        """Whether the lake holds an object the view would read (a view over no object cannot be created)."""
        return any(con.execute("SELECT count(*) FROM glob(?)", [g]).fetchone()[0] for g in self.globs)

    def dry_run(self, con: duckdb.DuckDBPyConnection) -> None:
        """Bind the view's query over the anchor alone: its columns, options and filters work."""
        self.write_anchor()
        con.execute(self._query([]) + " LIMIT 0").fetchall()

    def is_current(self, con: duckdb.DuckDBPyConnection) -> bool:
        row = con.execute(
            "SELECT comment FROM duckdb_views() WHERE view_name = ? AND schema_name = 'main'", [self.name]
        ).fetchone()
        return row is not None and row[0] == self.digest and self.anchor.is_file()

    def write_anchor(self) -> None:
        """The empty Parquet file whose schema the view binds to, moved into place whole."""
        self.anchor.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.anchor.with_name(f".schema.{uuid.uuid4().hex}.tmp")
        pq.write_table(self.schema.empty_table(), tmp)
        os.replace(tmp, self.anchor)

    def create(self, con: duckdb.DuckDBPyConnection) -> None:
        """Write the anchor, then replace the view and its comment in one transaction."""
        self.write_anchor()
        con.execute("BEGIN")
        try:
            con.execute(self.sql)
            con.execute(f'COMMENT ON VIEW "{self.name}" IS {literal(self.digest)}')
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def _is_canonical(parquet: Any) -> bool:
    from naia_backfill.sinks.parquet_columns import is_canonical

    return is_canonical(parquet)


def _canonical_select(parquet: Any) -> str:
    from naia_backfill.sinks.parquet_columns import canonical_select

    if parquet is None:
        return "*"
    return canonical_select(parquet)
