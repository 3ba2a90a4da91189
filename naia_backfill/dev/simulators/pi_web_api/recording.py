"""Recorded PI Web API responses for connector unit tests, taken from the simulator (seed 0, default points).

``python -m naia_backfill.dev.simulators.pi_web_api.recording [DIR]`` writes ``sim_*.json`` and ``sim_manifest.json``
(each file's request, status and notable headers) into ``recorded/`` beside this module (package data). URLs are
rewritten to :data:`FIXTURE_BASE` and ``ServerTime`` is pinned, so the files are stable; an integration test
checks they still equal what the simulator serves.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from naia_backfill.dev.simulators.pi_web_api import RECORDED_DIR
from naia_backfill.dev.simulators.pi_web_api.simulator import PiSimulator, serve

FIXTURE_BASE = "https://pi.example.com/piwebapi"
SERVER_TIME = "2024-01-02T00:00:00Z"
DEFAULT_DIR = RECORDED_DIR
_HEADERS = ("Content-Type", "Retry-After", "WWW-Authenticate")


def _requests(sim: PiSimulator) -> list[dict[str, Any]]:
    ds = sim.data_server_webid
    burst, fast = sim.webid("BURST.VALVE"), sim.webid("FAST.1HZ")
    window = [("startTime", "2024-01-01T04:23:00Z"), ("endTime", "2024-01-01T05:23:00Z"), ("maxCount", "66")]
    streamset = [("webId", sim.webid(n)) for n in ("FAST.1HZ", "CDM158", "BURST.VALVE", "OPERATOR.NOTE")] + window
    day = [("startTime", "2024-01-01T00:00:00Z"), ("endTime", "2024-01-02T00:00:00Z")]
    return [
        {"file": "sim_landing.json", "path": "", "note": "landing links"},
        {"file": "sim_dataservers.json", "path": "/dataservers", "note": "one data server, ServerTime pinned"},
        {
            "file": "sim_points_page.json",
            "path": f"/dataservers/{ds}/points",
            "query": [("nameFilter", "*"), ("startIndex", "0"), ("maxCount", "5")],
            "note": "a full page of 5",
        },
        {
            "file": "sim_points_last_page.json",
            "path": f"/dataservers/{ds}/points",
            "query": [("nameFilter", "*"), ("startIndex", "15"), ("maxCount", "5")],
            "note": "a short, last page",
        },
        {"file": "sim_point_by_path.json", "path": "/points", "query": [("path", "\\\\PISRV1\\SINUSOID")]},
        {"file": "sim_point_digital.json", "path": "/points", "query": [("path", "\\\\PISRV1\\CDM158")]},
        {
            "file": "sim_recorded_truncated.json",
            "path": f"/streams/{burst}/recorded",
            "query": [*day, ("boundaryType", "Inside"), ("maxCount", "12")],
            "note": "silently truncated at maxCount; runs of equal timestamps, one cut by the truncation",
        },
        {
            "file": "sim_streamsets_recorded.json",
            "path": "/streamsets/recorded",
            "query": streamset,
            "note": "numbers with system states, a bad value, flags and equal timestamps; digital; bursts; strings",
        },
        {
            "file": "sim_streamsets_unknown_webid.json",
            "path": "/streamsets/recorded",
            "query": [("webId", burst), ("webId", "P1DPUElTUlYxXE5PUEU"), *window[:2], ("maxCount", "3")],
            "note": "an unknown point's item carries a WebException (simulator's choice; PI's is undocumented)",
        },
        {
            "file": "sim_value_errors.json",
            "path": "/streamsets/recorded",
            "query": streamset[:1] + window[:2] + [("maxCount", "9")],
            "fault": ("value_errors", {"every": 3}),
            "note": "every third value is an error value, in each of the three shapes",
        },
        {
            "file": "sim_webexception.json",
            "path": f"/streams/{fast}/recorded",
            "query": day,
            "fault": ("webexception", {}),
            "note": "200 carrying a WebException: treat as 500",
        },
        {"file": "sim_error_404_point.json", "path": "/points", "query": [("path", "\\\\PISRV1\\NO.SUCH.TAG")]},
        {
            "file": "sim_error_400_maxcount.json",
            "path": f"/streams/{fast}/recorded",
            "query": [*day, ("maxCount", "200000")],
        },
        {"file": "sim_error_400_webid.json", "path": "/streams/not-a-webid/recorded", "query": day},
        {
            "file": "sim_error_429.json",
            "path": "/streamsets/recorded",
            "query": streamset,
            "fault": ("429", {}),
            "note": "rate limited, Retry-After in seconds",
        },
        {"file": "sim_error_503.json", "path": "/dataservers", "fault": ("503", {})},
        {
            "file": None,
            "path": "/dataservers",
            "fault": ("401", {}),
            "note": "a failed login: 401, WWW-Authenticate, empty body",
        },
    ]


def record(sim: PiSimulator | None = None) -> dict[str | None, tuple[dict[str, Any], str]]:
    """Fetch every fixture request from a fresh seed-0 simulator: file -> (manifest entry, body text as served,
    URLs rewritten and ServerTime pinned)."""
    sim = sim or PiSimulator()
    out: dict[str | None, tuple[dict[str, Any], Any]] = {}
    with serve(sim) as base, httpx.Client(base_url=base, timeout=60) as client:
        for req in _requests(sim):
            if "fault" in req:
                fault, kw = req["fault"]
                sim.inject(fault, **kw)
            query = req.get("query", [])
            r = client.get(req["path"], params=query)
            text = re.sub(r'"ServerTime":"[^"]*"', f'"ServerTime":"{SERVER_TIME}"', r.text.replace(base, FIXTURE_BASE))
            entry = {
                "file": req["file"],
                "method": "GET",
                "url": "/piwebapi" + req["path"] + ("?" + urlencode(query) if query else ""),
                "status": r.status_code,
                "headers": {h: ", ".join(r.headers.get_list(h)) for h in _HEADERS if h in r.headers},
            }
            if "fault" in req:
                entry["fault"] = req["fault"][0]
            if "note" in req:
                entry["note"] = req["note"]
            out[req["file"]] = (entry, text)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    args.directory.mkdir(parents=True, exist_ok=True)
    recorded = record()
    for file, (_, text) in recorded.items():
        if file is not None:
            (args.directory / file).write_text(text, encoding="utf-8")
    manifest = [entry for entry, _ in recorded.values()]
    (args.directory / "sim_manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(manifest)} fixtures to {args.directory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
