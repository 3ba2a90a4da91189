"""Load-time refusals and sharing that keep secrets, files and request rates where they belong."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from naia_backfill.connectors import resolve_points
from naia_backfill.connectors.synthetic import SyntheticConnector
from naia_backfill.errors import PointSetError, UnknownPointsError
from naia_backfill.settings import load_point_set, load_point_sets


def write(folder: Path, name: str, **doc: object) -> Path:
    base = {"name": name, "start_date": "2024-01-01", "source": {"kind": "synthetic", "points": 4}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**base, **doc}))
    return path


def pi(url: str, **extra: object) -> dict:
    return {"kind": "pi_web_api", "base_url": url, "data_server": "S", **extra}


def test_credentials_in_a_url_are_refused_without_echoing_them(tmp_path: Path):
    path = write(tmp_path, "plant", source=pi("http://admin:s3cret@pi.example/piwebapi"))
    with pytest.raises(PointSetError) as e:
        load_point_set(path)
    assert "must not contain credentials" in str(e.value) and "s3cret" not in str(e.value)


def test_pool_and_limit_key_carry_no_user_info_and_depend_on_host_and_port(tmp_path: Path):
    ps = load_point_set(write(tmp_path, "plant", source=pi("https://PI.example:8443/piwebapi")))
    assert ps.source.pool_name == "naia_pi_web_api_pi_example_8443"
    assert ps.source.limit_key == "https://pi.example:8443"


def test_point_sets_of_one_source_share_the_strictest_rate_limit(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    write(tmp_path, "fast", source=pi("http://pi.example/piwebapi", rate_limit={"requests": 4, "per_seconds": 2}))
    write(tmp_path, "slow", source=pi("http://pi.example:80/piwebapi", rate_limit={"requests": 2, "per_seconds": 1}))
    write(tmp_path, "other", source=pi("http://pi2.example/piwebapi", rate_limit={"requests": 9, "per_seconds": 1}))
    with caplog.at_level(logging.WARNING):
        sets = load_point_sets([tmp_path])
    limits = {n: (sets[n].source.rate_limit.requests, sets[n].source.rate_limit.per_seconds) for n in ("fast", "slow", "other")}
    assert limits == {"fast": (2, 1.0), "slow": (2, 1.0), "other": (9, 1.0)}  # 2/1s: same rate, smaller burst
    assert "point set fast" in caplog.text and "strictest" in caplog.text and "point set other" not in caplog.text


def test_points_file_must_be_inside_the_point_set_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0\n")
    folder = tmp_path / "sets"
    folder.mkdir()
    with pytest.raises(PointSetError, match="must be inside the point set's folder"):
        load_point_set(write(folder, "plant", points={"file": "../secret.txt"}))
    with pytest.raises(PointSetError, match="must be inside"):
        load_point_set(write(folder, "plant", points={"file": "/etc/passwd"}))
    monkeypatch.setenv("NAIA_POINT_FILE_DIRS", str(tmp_path))
    assert load_point_set(write(folder, "plant", points={"file": "../secret.txt"})).point_names_from_file() == ["root:x:0:0"]


def test_unknown_points_from_a_file_name_lines_not_contents(tmp_path: Path):
    (tmp_path / "points.txt").write_text("# header\nSYN00001\nPASSWORD=hunter2\n\nSYN00002\nnot_a_point\n")
    ps = load_point_set(write(tmp_path, "plant", points={"file": "points.txt"}))
    with pytest.raises(UnknownPointsError) as e:
        resolve_points(ps, SyntheticConnector(ps.source))
    assert "2 of the 4 point names" in str(e.value) and "lines 3, 6" in str(e.value)
    assert "hunter2" not in str(e.value) and "not_a_point" not in str(e.value)
