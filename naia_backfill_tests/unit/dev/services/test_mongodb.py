from __future__ import annotations

import stat
from pathlib import Path

from naia_backfill.dev.services import mongodb
from naia_backfill.dev.services.core import Layout


def test_ferretdb_runs_on_sqlite_bound_to_loopback_without_telemetry(tmp_path: Path):
    args = mongodb.ferretdb_args(tmp_path / "data", tmp_path / "state", 27018, 27019)
    assert args == [
        "--handler=sqlite",
        f"--sqlite-url=file:{tmp_path / 'data'}/",
        "--listen-addr=127.0.0.1:27018",
        "--debug-addr=127.0.0.1:27019",
        f"--state-dir={tmp_path / 'state'}",
        "--telemetry=disable",
    ]


def test_command_runs_the_versioned_binary_under_the_services_folder(layout: Layout):
    service = mongodb.MongoDB(Layout(root=layout.root, home=layout.home, port_offset=5))
    argv = service.command()
    assert argv[0] == str(service.folder / "bin" / f"ferretdb-{mongodb.VERSION}")
    assert f"--listen-addr=127.0.0.1:{mongodb.PORT + 5}" in argv
    assert service.ports() == [mongodb.PORT + 5, mongodb.DEBUG_PORT + 5]
    assert service.env() == {"NAIA_MONGODB_URI": f"mongodb://127.0.0.1:{mongodb.PORT + 5}/"}


def test_a_read_only_module_copy_becomes_writable_and_removable(tmp_path: Path):
    tree = tmp_path / "module"
    (tree / "build" / "version").mkdir(parents=True)
    (tree / "build" / "version" / "version.txt").write_text("")
    for path in [tree / "build" / "version" / "version.txt", tree / "build" / "version", tree / "build", tree]:
        path.chmod(stat.S_IRUSR | stat.S_IXUSR)
    mongodb.make_writable(tree)
    assert all(path.stat().st_mode & stat.S_IWUSR for path in [tree, *tree.rglob("*")])
    (tree / "build" / "version" / "version.txt").write_text(mongodb.VERSION)
    mongodb.remove_tree(tree)
    assert not tree.exists()


def test_go_versions_are_read_from_goversion():
    assert mongodb.go_version("go1.26.8\n") == (1, 26)
    assert mongodb.go_version("go1.19.8") == (1, 19) < mongodb.MIN_GO
    assert mongodb.go_version("devel +abc") is None


def test_go_is_looked_for_in_naia_go_first():
    found = mongodb.go_candidates({"NAIA_GO": "/opt/go/bin/go"})
    assert found[0] == "/opt/go/bin/go"
    assert "/usr/local/go/bin/go" in found
