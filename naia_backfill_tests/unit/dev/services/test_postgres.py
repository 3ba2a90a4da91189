from __future__ import annotations

from pathlib import Path

import pytest

from naia_backfill.dev.services import postgres
from naia_backfill.dev.services.core import Layout


def test_server_options_listen_on_loopback_with_our_port_and_socket_folder(tmp_path: Path):
    options = postgres.server_options(15432, tmp_path).split()
    assert options[:2] == ["-c", "listen_addresses=127.0.0.1"]
    assert options[options.index("-p") + 1] == "15432"
    assert options[options.index("-k") + 1] == str(tmp_path)


def test_socket_folder_moves_to_tmp_when_the_path_is_too_long():
    assert postgres.socket_dir(Path("/work/main/.services/postgres"), "abc") == Path(
        "/work/main/.services/postgres/run"
    )
    deep = Path("/" + "x" * 90)
    assert postgres.socket_dir(deep, "abc") == Path("/tmp/naia-pg-abc")


@pytest.mark.parametrize(("root", "prefix"), [(True, ["runuser", "-u", "postgres", "--"]), (False, [])])
def test_commands_run_as_the_postgres_user_only_for_root(monkeypatch: pytest.MonkeyPatch, root: bool, prefix: list):
    monkeypatch.setattr(postgres, "is_root", lambda: root)
    assert postgres.as_postgres(["initdb", "-D", "x"]) == [*prefix, "initdb", "-D", "x"]


def test_major_versions_sort_numerically():
    assert sorted(["9.6", "15", "10"], key=postgres._version_key) == ["9.6", "10", "15"]


def test_the_cluster_lives_where_the_location_file_says(layout: Layout):
    service = postgres.Postgres(layout)
    assert service.data_dir == service.folder / "data"
    service.folder.mkdir(parents=True)
    (service.folder / "location").write_text("/var/tmp/naia-services-x/postgres\n")
    assert service.data_dir == Path("/var/tmp/naia-services-x/postgres/data")
    assert service.log_file == Path("/var/tmp/naia-services-x/postgres/log/postgres.log")


def test_env_is_a_libpq_uri_of_the_naia_database(layout: Layout):
    assert postgres.Postgres(layout).env() == {"NAIA_PG_DSN": "postgresql://postgres@127.0.0.1:15432/naia"}
