"""Key templates and the Parquet sink's column settings, checked when a point set loads."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from naia_backfill.settings import ParquetSink, key_template


@pytest.mark.parametrize("template", [
    "timeseries/{yyyy}/{mm}/{dd}/{site}.parquet",
    "{point_set}/{date}.parquet",
    "a/b/{point_set}_{yyyy}{mm}{dd}.parquet",
    "x={site}/date={date}/all.parquet",
])
def test_valid_templates(template):
    assert key_template.check(template) == template


@pytest.mark.parametrize(("template", "reason"), [
    ("timeseries/{yyyy}/{mm}/{site}.parquet", "must name the day"),  # seed 001's monthly objects
    ("timeseries/{date}/data.parquet", "{point_set} or {site}"),
    ("../{point_set}/{date}.parquet", "stay under the lake root"),
    ("a/./{point_set}/{date}.parquet", "stay under the lake root"),
    ("a//{point_set}/{date}.parquet", "stay under the lake root"),
    ("/abs/{point_set}/{date}.parquet", "relative"),
    ("s3://b/{point_set}/{date}.parquet", "stay under the lake root"),
    ("a\\{point_set}/{date}.parquet", "relative"),
    ("a/.{point_set}/{date}.parquet", "temporary"),
    ("{point_set}/{date}.csv", "end in <name>.parquet"),
    ("{point_set}/{date}/.parquet", "end in <name>.parquet"),
    ("{point_set}/{YYYY}/{mm}/{dd}.parquet", r"\{YYYY\} \(use \{yyyy\}\)"),
    ("{point_set}/{date}/{x.parquet", "brace"),
    ("{point_set}/*/{date}.parquet", "glob"),
])
def test_refused_templates(template, reason):
    with pytest.raises(ValueError, match=reason):
        key_template.check(template)


def test_render_substitute_regex_and_glob():
    t = "ts/{yyyy}/{mm}/{dd}/{site}.parquet"
    assert key_template.render(t, dt.date(2024, 2, 9), {"site": "s1"}) == "ts/2024/02/09/s1.parquet"
    filled = key_template.substitute(t, {"site": "s1"})
    assert filled == "ts/{yyyy}/{mm}/{dd}/s1.parquet"
    assert key_template.day_glob(filled) == "ts/????/??/??/s1.parquet"
    import re

    m = re.fullmatch(key_template.day_regex("{date}/{yyyy}.parquet"), "2024-01-02/2024.parquet")
    assert m and m["date"] == "2024-01-02"
    with pytest.raises(ValueError, match="no value for"):
        key_template.render(t, dt.date(2024, 2, 9), {})


def test_parquet_sink_column_settings():
    sink = ParquetSink(kind="parquet", key_template="timeseries/{yyyy}/{mm}/{dd}/{site}.parquet",
                       columns={"ts": "timestamp", "point": "point_name", "value": "value"},
                       constant_columns={"site_name": "{site}"}, timestamp_unit="ms", timestamp_as="int64",
                       compression="snappy", row_group_rows=10_000)
    assert sink.columns == {"ts": "timestamp", "point": "point_name", "value": "value"}
    bad = [
        ({"key_template": "{point_set}.parquet"}, "must name the day"),
        ({"columns": {"ts": "t", "valu": "v", "point": "p"}}, "unknown canonical column"),
        ({"columns": {"ts": "t", "value": "v"}}, "keep point and ts"),
        ({"columns": {"ts": "t", "point": "t"}}, "unique"),
        ({"columns": {"ts": "t", "point": "p"}, "constant_columns": {"p": "x"}}, "unique"),
        ({"constant_columns": {"d": "{date}"}}, "unknown placeholder"),
    ]
    for fields, reason in bad:
        with pytest.raises(ValidationError, match=reason):
            ParquetSink(kind="parquet", **fields)
