from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from naia_backfill.errors import PointSetError
from naia_backfill.settings import BUNDLED_DIR, PointSet, load_point_set, load_point_sets
from naia_backfill_tests.conftest import write_point_set


def test_bundled_demo_is_valid():
    sets = load_point_sets()
    demo = sets["demo"]
    assert demo.source.kind == "synthetic"
    assert demo.chunk_days == 30
    assert [s.kind for s in demo.sinks] == ["parquet", "duckdb"]
    assert demo.path == BUNDLED_DIR / "demo.yaml"


def test_defaults_and_sink_shorthand(tmp_path: Path):
    ps = load_point_set(write_point_set(tmp_path, "plant", sinks=["parquet"], chunk_days=30))
    assert ps.end_date is None
    assert ps.sinks[0].compression == "zstd"
    assert ps.sinks[0].row_group_rows == 250_000
    assert ps.source.pool_name == "naia_synthetic"


def test_invalid_yaml_names_file_and_line(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nsource: [unclosed\n")
    with pytest.raises(PointSetError, match=r"broken\.yaml: invalid YAML at line 3"):
        load_point_set(path)


@pytest.mark.parametrize(
    ("override", "field", "reason"),
    [
        ({"name": "Bad-Name"}, "name", "should match pattern"),
        ({"start_date": "2024-02-30"}, "start_date", "date"),
        ({"end_date": "2023-12-31"}, "(top level)", "before start_date"),
        ({"chunk_days": 0}, "chunk_days", "greater than or equal to 1"),
        ({"points": {"names": ["A"], "name_filter": "B*"}}, "points", "exactly one of"),
        ({"points": {"names": ["A", "A"]}}, "points", "duplicate point names: A"),
        ({"sinks": ["parquet", "parquet"]}, "(top level)", "sink listed twice"),
        ({"sinks": ["duckdb"]}, "(top level)", "add the parquet sink"),
        ({"sinks": ["tape"]}, "sinks.0", "does not match any of the expected tags"),
        ({"source": {"kind": "pi_web_api", "data_server": "S"}}, "source.base_url", "Field required"),
        ({"source": {"kind": "pi_web_api", "base_url": "ftp://x", "data_server": "S"}}, "source.base_url", "http"),
    ],
)
def test_invalid_field_names_file_field_and_reason(tmp_path: Path, override, field, reason):
    path = write_point_set(tmp_path, "plant")
    doc = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**doc, **override}))
    with pytest.raises(PointSetError) as err:
        load_point_set(path)
    message = str(err.value)
    assert str(path) in message
    assert f"field '{field}'" in message
    assert reason in message


def test_secret_in_yaml_is_refused_with_a_hint(tmp_path: Path):
    source = {
        "kind": "pi_web_api", "base_url": "https://pi/piwebapi", "data_server": "S",
        "auth": {"kind": "basic", "username_env": "U", "password_env": "P", "password": "hunter2"},
    }
    with pytest.raises(PointSetError, match="secrets belong in environment variables") as err:
        load_point_set(write_point_set(tmp_path, "plant", source=source))
    assert "hunter2" not in str(err.value)


def test_points_file_is_read_relative_to_the_yaml(tmp_path: Path):
    (tmp_path / "names.txt").write_text("# plant A\nSYN00001\n\nSYN00002\nSYN00001\n")
    ps = load_point_set(write_point_set(tmp_path, "plant", points={"file": "names.txt"}))
    assert ps.point_names_from_file() == ["SYN00001", "SYN00002"]


def test_missing_points_file_is_an_error(tmp_path: Path):
    with pytest.raises(PointSetError, match="points.file .*names.txt cannot be read"):
        load_point_set(write_point_set(tmp_path, "plant", points={"file": "names.txt"}))


def test_not_a_mapping(tmp_path: Path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(PointSetError, match="a point set is a YAML mapping"):
        load_point_set(path)


def test_duplicate_names_across_files(tmp_path: Path):
    write_point_set(tmp_path, "plant")
    other = tmp_path / "sub"
    other.mkdir()
    write_point_set(other, "plant")
    with pytest.raises(PointSetError, match="'plant' is already used by"):
        load_point_sets([tmp_path, other])


def test_missing_location(tmp_path: Path):
    with pytest.raises(PointSetError, match="no such point-set file or folder"):
        load_point_sets([tmp_path / "nope"])


def test_model_is_frozen_and_typed():
    ps = PointSet.model_validate(
        {"name": "x", "source": {"kind": "synthetic"}, "start_date": dt.date(2024, 1, 1)}
    )
    assert ps.points.name_filter == "*"
    with pytest.raises(Exception, match="frozen"):
        ps.name = "y"  # type: ignore[misc]


def test_secret_env_names_the_variables_by_credential_field(tmp_path: Path):
    base = {"kind": "pi_web_api", "base_url": "https://pi/piwebapi", "data_server": "S"}
    basic = load_point_set(write_point_set(tmp_path, "basic", source={
        **base, "auth": {"kind": "basic", "username_env": "PI_USER", "password_env": "PI_PASS"}}))
    bearer = load_point_set(write_point_set(tmp_path, "bearer", source={
        **base, "auth": {"kind": "bearer", "token_env": "PI_TOKEN"}}))
    assert basic.secret_env() == {"username": "PI_USER", "password": "PI_PASS"}
    assert bearer.secret_env() == {"token": "PI_TOKEN"}
    assert load_point_set(write_point_set(tmp_path, "anon", source=base)).secret_env() == {}
    assert load_point_set(write_point_set(tmp_path, "syn")).secret_env() == {}
