"""Several ACE IoT sites in one point-set file become one asset, job and pool each, sharing one rate limit."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from naia_backfill.lib.definitions import build_definitions
from naia_backfill.settings import load_point_sets
from naia_backfill_tests.conftest import write_point_set

SOURCE = {"kind": "ace_iot", "base_url": "https://ace.example.com/api", "sites": ["ses_falls_city", "annex_2"],
          "auth": {"kind": "bearer", "token_env": "NAIA_ACE_TOKEN"}}


def test_one_asset_per_site(tmp_path: Path):
    write_point_set(tmp_path, "hospital", source=SOURCE, points={"name_filter": "*"}, sinks=["parquet"])
    sets = {n: ps for n, ps in load_point_sets([tmp_path]).items() if n.startswith("hospital")}
    assert sorted(sets) == ["hospital_annex_2", "hospital_ses_falls_city"]
    defs = build_definitions(sets)
    graph = defs.resolve_asset_graph()
    pools = {k.to_user_string(): graph.get(k).pools for k in graph.get_all_asset_keys()}
    assert pools == {"hospital_annex_2": {"naia_ace_iot_ace_example_com_annex_2"},
                     "hospital_ses_falls_city": {"naia_ace_iot_ace_example_com_ses_falls_city"}}
    assert {ps.source.limit_key for ps in sets.values()} == {"https://ace.example.com:443"}
    for name in sets:
        assert defs.resolve_job_def(f"{name}_job") is not None
        assert graph.get(dg.AssetKey(name)).kinds == {"ace_iot", "parquet"}
    assert set(defs.resources) >= {"hospital_annex_2_credentials", "hospital_ses_falls_city_credentials"}
