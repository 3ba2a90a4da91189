"""Object keys of a point set's days: the hive default and key templates; parsing keys back to days, globs
that find exactly the point set's objects, the folder a full day cleans."""

from __future__ import annotations

import datetime as dt
import posixpath
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from naia_backfill.settings import PointSet
from naia_backfill.sinks import layout
from naia_backfill.sinks.layout import Layout

DAY = dt.date(2024, 1, 15)
G = "0123456789ab"
SEED_002 = "timeseries/{yyyy}/{mm}/{dd}/ses_falls_city.parquet"


def test_hive_default_is_the_historic_layout():
    lay = Layout("plant_a")
    assert lay.key(DAY) == layout.object_key("plant_a", DAY) == "point_set=plant_a/date=2024-01-15/all.parquet"
    assert lay.key(DAY, G) == layout.object_key("plant_a", DAY, G)
    assert lay.folder(DAY) == layout.day_prefix("plant_a", DAY)
    assert lay.listing_prefix() == layout.point_set_prefix("plant_a")
    assert lay.globs() == ["point_set=plant_a/date=????-??-??/*.parquet"] and lay.hive


@pytest.mark.parametrize(("template", "key", "group_key", "prefix"), [
    (SEED_002, "timeseries/2024/01/15/ses_falls_city.parquet",
     f"timeseries/2024/01/15/ses_falls_city.points-{G}.parquet", "timeseries"),
    ("x/{point_set}_{yyyy}{mm}{dd}.parquet", "x/plant_a_20240115.parquet",
     f"x/plant_a_20240115.points-{G}.parquet", "x"),
    ("{point_set}/{date}.parquet", "plant_a/2024-01-15.parquet", f"plant_a/2024-01-15.points-{G}.parquet", "plant_a"),
])
def test_templates(template, key, group_key, prefix):
    lay = Layout("plant_a", template)
    assert (lay.key(DAY), lay.key(DAY, G), lay.listing_prefix()) == (key, group_key, prefix)
    assert lay.day_of(key) == lay.day_of(group_key) == DAY
    assert lay.day_of(key.replace("15", "32")) is None and lay.day_of("elsewhere/" + key) is None
    assert lay.group_names(DAY, [posixpath.basename(key), posixpath.basename(group_key), "other.parquet"]) == [
        posixpath.basename(group_key)]
    assert lay.days([group_key, key, "junk.parquet"]) == {DAY: sorted([key, group_key])}


def test_day_parts_must_agree():
    lay = Layout("plant_a", "{point_set}/{yyyy}/{date}.parquet")
    assert lay.day_of("plant_a/2024/2024-01-15.parquet") == DAY
    assert lay.day_of("plant_a/2023/2024-01-15.parquet") is None


def test_unfilled_site_is_refused_and_of_reads_the_sink():
    with pytest.raises(ValueError, match=r"\{site\} was not filled in"):
        Layout("plant_a", "t/{date}/{site}.parquet")
    ps = PointSet.model_validate({"name": "plant_a", "start_date": "2024-01-01", "source": {"kind": "synthetic"},
                                  "sinks": [{"kind": "parquet", "key_template": "{point_set}/{date}.parquet"}]})
    assert Layout.of(ps).key(DAY) == "plant_a/2024-01-15.parquet"


def _touch(root: Path, key: str) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"key": [key]}), path)


def test_globs_find_the_point_sets_objects_and_nothing_else(tmp_path):
    mine = Layout("plant_a", "lake/{point_set}_{yyyy}{mm}{dd}.parquet")
    other = Layout("plant_a_b", "lake/{point_set}_{yyyy}{mm}{dd}.parquet")
    site = Layout("s_1", SEED_002)
    keys = {lay: [lay.key(DAY), lay.key(DAY, G), lay.key(DAY + dt.timedelta(days=1))] for lay in (mine, other, site)}
    for ks in keys.values():
        for k in ks:
            _touch(tmp_path, k)
    _touch(tmp_path, "timeseries/2024/01/15/other_site.parquet")
    _touch(tmp_path, "timeseries/2024/01/15/.ses_falls_city.parquet.123-host-abc.tmp")
    for lay, ks in keys.items():
        globs = [str(tmp_path / g) for g in lay.globs()]
        found = duckdb.sql(f"SELECT key FROM read_parquet({globs})").fetchall()
        assert sorted(k for (k,) in found) == sorted(ks)


def test_group_objects_pass_the_lake_filter():
    assert layout.is_data_object("all.parquet") and layout.is_data_object(f"points-{G}.parquet")
    assert layout.is_data_object(f"ses_falls_city.points-{G}.parquet")
    assert not layout.is_data_object("ses_falls_city.parquet.tmp")
