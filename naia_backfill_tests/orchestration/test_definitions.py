"""The code location loads, and its shape is what users were promised (a snapshot, always run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from naia_backfill.definitions import defs
from naia_backfill.lib.definitions import build_definitions
from naia_backfill.settings import load_point_sets
from naia_backfill_tests.conftest import ROOT, write_point_set

SNAPSHOT = Path(__file__).with_name("definitions_snapshot.json")


def snapshot(d: dg.Definitions) -> dict:
    graph = d.resolve_asset_graph()
    out = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        pdef = node.partitions_def
        out[key.to_user_string()] = {
            "group": node.group_name,
            "partitions": type(pdef).__name__,
            "partition_start": pdef.start.isoformat() if pdef else None,
            "timezone": pdef.timezone if pdef else None,
            "end_offset": pdef.end_offset if pdef else None,
            "backfill_policy": str(node.backfill_policy.max_partitions_per_run) if node.backfill_policy else None,
            "pools": sorted(node.pools or []),
            "kinds": sorted(node.kinds),
            "tags": dict(sorted(node.tags.items())),
            "checks": sorted(c.name for c in graph.get_check_keys_for_assets({key})),
        }
    repo = d.get_repository_def()

    def targets(job_names) -> dict[str, list[str]]:
        return {j: sorted(k.to_user_string() for k in repo.get_job(j).asset_layer.selected_asset_keys) for j in job_names}

    return {
        "assets": out,
        "jobs": targets(sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__"))),
        "resources": sorted((d.resources or {}).keys()),
        "schedules": {s.name: {"cron": s.cron_schedule, "targets": targets([s.job_name])} for s in repo.schedule_defs},
        "sensors": {s.name: {"targets": targets(sorted(t.job_name for t in s.targets))} for s in repo.sensor_defs},
    }


def test_definitions_load_and_match_the_snapshot():
    loaded = defs()
    assert isinstance(loaded, dg.Definitions)
    got = snapshot(loaded)
    if os.environ.get("NAIA_UPDATE_SNAPSHOT") == "1":  # after a deliberate change: review the diff, commit
        SNAPSHOT.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    assert got == json.loads(SNAPSHOT.read_text()), "definitions changed; NAIA_UPDATE_SNAPSHOT=1 rewrites the snapshot"


def test_every_point_set_is_exactly_one_daily_asset():
    point_sets = load_point_sets()
    graph = build_definitions(point_sets).resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == set(point_sets)
    demo = graph.get(dg.AssetKey("demo"))
    assert demo.backfill_policy == dg.BackfillPolicy.multi_run(30)
    assert demo.pools == {"naia_synthetic"}
    assert isinstance(demo.partitions_def, dg.DailyPartitionsDefinition)
    assert demo.partitions_def.get_first_partition_key() == "2024-01-01"


def test_extra_point_sets_from_the_environment(tmp_path, monkeypatch):
    write_point_set(tmp_path, "plant_b", end_date="2024-01-10", chunk_days=7)
    monkeypatch.setenv("NAIA_POINT_SETS", str(tmp_path))
    graph = defs().resolve_asset_graph()
    node = graph.get(dg.AssetKey("plant_b"))
    assert node.partitions_def.get_partition_keys()[-1] == "2024-01-10"
    assert node.backfill_policy.max_partitions_per_run == 7


def test_dagster_validates_the_workspace():
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Validation successful" in proc.stderr + proc.stdout
