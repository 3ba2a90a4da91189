"""Point sets of sources with several sites load as one point set per site; ``{site}`` is filled in the
Parquet sink; point sets whose objects would clash are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from naia_backfill.errors import PointSetError
from naia_backfill.settings import load_point_set, load_point_sets
from naia_backfill.settings.loading import expand_sites
from naia_backfill_tests.conftest import write_point_set

ACE = {"kind": "ace_iot", "base_url": "http://ace.test/api", "auth": {"kind": "bearer", "token_env": "ACE_TOKEN"}}
SEED_002 = {"kind": "parquet", "key_template": "timeseries/{yyyy}/{mm}/{dd}/{site}.parquet",
            "columns": {"ts": "timestamp", "point": "point_name", "value": "value"},
            "constant_columns": {"site_name": "{site}"}, "timestamp_unit": "ms", "timestamp_as": "int64"}


def ace_file(folder: Path, name: str, source: dict, sinks: list | None = None) -> Path:
    return write_point_set(folder, name, source={**ACE, **source}, points={"name_filter": "*"},
                           sinks=sinks or [SEED_002])


def test_sites_become_one_point_set_each(tmp_path):
    ace_file(tmp_path, "hospital", {"sites": ["ses_falls_city", "North-Wing.2"]})
    sets = load_point_sets([tmp_path])
    a, b = sets["hospital_ses_falls_city"], sets["hospital_north_wing_2"]
    assert (a.source.site, a.source.sites, b.source.site) == ("ses_falls_city", None, "North-Wing.2")
    assert a.sink("parquet").key_template == "timeseries/{yyyy}/{mm}/{dd}/ses_falls_city.parquet"
    assert b.sink("parquet").constant_columns == {"site_name": "North-Wing.2"}
    assert a.source.pool_name != b.source.pool_name and a.source.limit_key == b.source.limit_key
    assert a.path == b.path == tmp_path / "hospital.yaml"
    assert "hospital" not in sets


def test_one_site_keeps_its_name_and_gets_site_filled(tmp_path):
    ps = load_point_set(ace_file(tmp_path, "plant", {"site": "s1"}))
    assert ps.name == "plant" and ps.sink("parquet").key_template == "timeseries/{yyyy}/{mm}/{dd}/s1.parquet"
    assert expand_sites(ps) == [ps]


def test_every_site_of_the_token(tmp_path, monkeypatch):
    import naia_backfill.connectors.ace_iot_sites as ace

    monkeypatch.setattr(ace, "list_sites", lambda settings: ["b_site", "a_site"])
    ace_file(tmp_path, "all_of_them", {"sites": "*"})
    sets = load_point_sets([tmp_path])
    assert {"all_of_them_a_site", "all_of_them_b_site"} <= set(sets)


def test_site_placeholder_needs_a_site_and_names_must_fit(tmp_path):
    write_point_set(tmp_path, "synth", sinks=[SEED_002])
    with pytest.raises(PointSetError, match=r"\{site\} in the parquet sink needs a source with a site"):
        load_point_set(tmp_path / "synth.yaml")
    (tmp_path / "long").mkdir()
    ace_file(tmp_path / "long", "a" * 50, {"sites": ["x" * 20]})
    with pytest.raises(PointSetError, match="not a valid name"):
        load_point_sets([tmp_path / "long"])


def test_point_sets_writing_the_same_objects_are_refused(tmp_path):
    ace_file(tmp_path, "one", {"site": "s1"})
    ace_file(tmp_path, "two", {"sites": ["s1", "s2"]})
    with pytest.raises(PointSetError, match=r"'one' and 'two_s1' would write the same objects"):
        load_point_sets([tmp_path])
    path = tmp_path / "one.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["sinks"][0]["key_template"] = "timeseries/{date}/{point_set}.parquet"
    path.write_text(yaml.safe_dump(doc))
    assert {"one", "two_s1", "two_s2"} <= set(load_point_sets([tmp_path]))
