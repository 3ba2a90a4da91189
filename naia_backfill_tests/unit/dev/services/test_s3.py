from __future__ import annotations

import json
from pathlib import Path

from naia_backfill.dev.services import s3
from naia_backfill.dev.services.core import Layout

WEED_MINI_HELP = """Example: weed mini -dir=/tmp
Default Usage:
  -admin.port int
    \tadmin server http listen port (default 23646)
  -admin.ui
    \tenable Admin UI (default true)
  -dir string
    \tdirectories to store data files
  -ip string
    \tip or server name
  -s3.port int
    \ts3 server http listen port (default 8333)
"""


def test_identities_carry_the_test_credentials_with_every_action():
    [identity] = json.loads(s3.identities())["identities"]
    assert identity["credentials"] == [{"accessKey": s3.ACCESS_KEY, "secretKey": s3.SECRET_KEY}]
    assert {"Read", "Write", "List", "Admin"} <= set(identity["actions"])


def test_weed_flags_bind_loopback_and_move_every_inner_port(tmp_path: Path):
    flags = s3.weed_flags(tmp_path / "data", tmp_path / "s3.json", 18333, {"master.port": 18340})
    assert f"-dir={tmp_path / 'data'}" in flags
    assert {"-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3.port=18333", "-master.port=18340"} <= set(flags)
    assert {"-admin.ui=false", "-webdav=false", "-master.telemetry=false"} <= set(flags)


def test_flags_this_weed_does_not_know_are_left_out():
    known = s3.known_flags(WEED_MINI_HELP)
    assert known == {"admin.port", "admin.ui", "dir", "ip", "s3.port"}
    kept, dropped = s3.supported(["-dir=/d", "-s3.port=1", "-webdav=false", "-admin.ui=false"], known)
    assert kept == ["-dir=/d", "-s3.port=1", "-admin.ui=false"]
    assert dropped == ["-webdav=false"]


def test_ports_include_the_admin_grpc_offset_and_shift_with_the_layout(layout: Layout):
    shifted = s3.S3(Layout(root=layout.root, home=layout.home, port_offset=10))
    admin = s3.INNER_PORTS["admin.port"] + 10
    assert shifted.ports()[0] == s3.PORT + 10
    assert admin + s3.ADMIN_GRPC_OFFSET in shifted.ports()
    assert len(set(shifted.ports())) == len(s3.INNER_PORTS) + 2


def test_env_points_aws_clients_at_the_local_endpoint(layout: Layout):
    env = s3.S3(layout).env()
    assert env["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{s3.PORT}"
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (s3.ACCESS_KEY, s3.SECRET_KEY)
    assert env["NAIA_S3_BUCKET"] == s3.BUCKET


def test_weed_candidates_start_with_naia_weed(tmp_path: Path):
    found = s3.weed_candidates({"NAIA_WEED": "/opt/weed"}, tmp_path)
    assert found[0] == "/opt/weed"
    assert str(tmp_path / "pkg" / "bin" / "weed") in found
