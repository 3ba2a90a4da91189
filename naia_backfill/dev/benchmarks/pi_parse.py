"""Benchmark: PI Web API streamsets response bytes -> canonical Arrow batch on one core, against msgspec's decode alone.

Builds one realistic ``/streamsets/recorded`` response in memory (compact JSON in PI's key order, Value last,
timestamps with 0-7 fractional digits; most streams numeric with a system state now and then, some digital,
some string) and times, alternately and on one pinned core:

- ``naia``: :func:`naia_backfill.connectors.pi_web_api_json.parse_streamset` plus the batch it yields;
- ``msgspec decode``: the same bytes decoded into typed structs (TimedValue fields as PI sends them, the value
  as any JSON) and nothing else -- the limit a bytes-to-Arrow path built on msgspec can approach;
- with ``--compare``, ``orjson dicts``: ``orjson.loads`` + column comprehensions, the alternative the connector
  rejected.

Each timed call ends with its result freed, so both sides pay for freeing what they decoded. The ratio is
``naia`` samples per CPU-second over ``msgspec decode`` samples per CPU-second (medians).

    naia-backfill bench pi-parse [--streams 100] [--values 10000] [--repeat 5] [--compare] [--no-pin] [--json PATH]
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import click
import msgspec
import numpy as np
import orjson
import pyarrow as pa

from naia_backfill.connectors.pi_web_api_json import TS_TYPE, parse_streamset

START_NS = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z
SYSTEM = ((246, "I/O Timeout"), (248, "No Data"), (254, "Shutdown"), (255, "Bad Input"))
FLAGS_DEFAULT = b'","UnitsAbbreviation":"","Good":true,"Questionable":false,"Substituted":false,"Annotated":false'
FLAGS_BAD = b'","UnitsAbbreviation":"","Good":false,"Questionable":false,"Substituted":false,"Annotated":false'


class _RefTimedValue(msgspec.Struct, gc=False):
    """The reference decode's TimedValue: every field PI sends for a value, Value as any JSON."""

    Timestamp: str
    Good: bool = True
    Questionable: bool = False
    Substituted: bool = False
    Annotated: bool = False
    Value: Any = None


class _RefStream(msgspec.Struct, gc=False):
    WebId: str | None = None
    Name: str | None = None
    Items: list[_RefTimedValue] | None = None


class _RefStreamSet(msgspec.Struct, gc=False):
    Items: list[_RefStream] | None = None


_REF_DECODER = msgspec.json.Decoder(_RefStreamSet)


def _stamps(ns: np.ndarray) -> list[str]:
    """PI's form: UTC, 'Z', 0-7 fractional digits with trailing zeros trimmed."""
    full = np.datetime_as_string(ns.astype("datetime64[ns]")).astype("U27").tolist()
    return [s.rstrip("0").rstrip(".") + "Z" for s in full]


def _state(code: int, name: str, system: bool) -> bytes:
    return orjson.dumps({"Name": name, "Value": code, "IsSystem": system})


def _stream(i: int, values: int, rng: np.random.Generator) -> bytes:
    step = 86_400 * 10_000_000 // values * 100  # spread over one day, in 100 ns ticks
    stamps = _stamps(START_NS + step * np.arange(values, dtype=np.int64))
    kind = "digital" if i % 25 == 7 else "string" if i % 50 == 13 else "numeric"
    if kind == "numeric":
        vals = [orjson.dumps(v) for v in np.round(rng.normal(50, 10, values), 6).tolist()]
    elif kind == "digital":
        vals = [_state(int(c), ("Off", "On", "Fault")[c], False) for c in rng.integers(0, 3, values)]
    else:
        vals = [orjson.dumps(s) for s in rng.choice(["idle", "running", "cleaning"], values).tolist()]
    bad = set(rng.choice(values, values // 500, replace=False).tolist()) if kind == "numeric" else set()
    for k in bad:
        vals[k] = _state(*SYSTEM[k % len(SYSTEM)], True)
    items = b",".join(
        b'{"Timestamp":"' + s.encode() + (FLAGS_BAD if k in bad else FLAGS_DEFAULT) + b',"Value":' + v + b"}"
        for k, (s, v) in enumerate(zip(stamps, vals, strict=True))
    )
    head = orjson.dumps({"WebId": f"F1DPbench{i:05d}", "Name": f"BENCH{i:05d}", "Path": f"\\\\BENCH\\BENCH{i:05d}"})
    return head[:-1] + b',"Links":{},"Items":[' + items + b'],"UnitsAbbreviation":""}'


def build_response(streams: int, values: int, seed: int = 0) -> bytes:
    """One streamsets response of ``streams`` streams with ``values`` events each."""
    rng = np.random.default_rng(seed)
    return b'{"Links":{},"Items":[' + b",".join(_stream(i, values, rng) for i in range(streams)) + b"]}"


def _orjson_parse(body: bytes) -> int:
    items = [x for s in orjson.loads(body)["Items"] for x in s["Items"]]
    ts = pa.array([x["Timestamp"] for x in items], pa.string()).cast(TS_TYPE)
    vals = [x["Value"] for x in items]
    value = pa.array([v if v.__class__ is float else None for v in vals], pa.float64())
    flags = [pa.array([x.get(k, k == "Good") for x in items], pa.bool_())
             for k in ("Good", "Questionable", "Substituted", "Annotated")]
    return len(ts) + len(value) * 0 + len(flags) * 0


def _naia_parse(body: bytes) -> int:
    page = parse_streamset(body)
    return page.batch([f"BENCH{i:05d}" for i in range(len(page.web_ids))]).num_rows


def _decode_alone(body: bytes) -> int:
    return sum(len(s.Items or ()) for s in _REF_DECODER.decode(body).Items or ())


VARIANTS: dict[str, Callable[[bytes], int]] = {
    "naia": _naia_parse,
    "msgspec decode": _decode_alone,
    "orjson dicts": _orjson_parse,
}


def measure(body: bytes, names: list[str], repeat: int) -> dict[str, dict[str, Any]]:
    """Per variant: samples and each run's wall and CPU seconds; variants alternate so load drifts hit all."""
    runs: dict[str, dict[str, Any]] = {name: {"walls": [], "cpus": [], "samples": 0} for name in names}
    for name in names:  # warm up: first-call costs (imports, allocator growth) stay out of the figures
        VARIANTS[name](body)
    for _ in range(repeat):
        for name in names:
            c0, w0 = time.process_time(), time.perf_counter()
            runs[name]["samples"] = VARIANTS[name](body)
            runs[name]["walls"].append(time.perf_counter() - w0)
            runs[name]["cpus"].append(time.process_time() - c0)
    for r in runs.values():
        r["wall"], r["cpu"] = statistics.median(r["walls"]), statistics.median(r["cpus"])
    return runs


def _print(runs: dict[str, dict[str, Any]]) -> None:
    for name, r in runs.items():
        n = r["samples"]
        print(f"{name:15s} {n:,} samples: median {r['wall']:.3f}s wall, {r['cpu']:.3f}s CPU -> "
              f"{n / r['cpu'] / 1e6:.2f}M samples/s per CPU-second (best {n / min(r['cpus']) / 1e6:.2f}M)")
    naia, ref = runs["naia"], runs["msgspec decode"]
    print(f"naia / msgspec decode alone: {ref['cpu'] / naia['cpu']:.2f} (samples per CPU-second, medians; "
          f"per run: {', '.join(f'{d / c:.2f}' for d, c in zip(ref['cpus'], naia['cpus'], strict=True))})")
    if "orjson dicts" in runs:
        print(f"naia / orjson dicts: {runs['orjson dicts']['cpu'] / naia['cpu']:.2f}x")


@click.command("pi-parse")
@click.option("--streams", type=click.IntRange(min=1), default=100, show_default=True, help="Streams in the response.")
@click.option("--values", type=click.IntRange(min=1), default=10_000, show_default=True, help="Events per stream.")
@click.option("--repeat", type=click.IntRange(min=1), default=5, show_default=True,
              help="Timed runs of each variant (alternating; medians are reported).")
@click.option("--compare", is_flag=True, help="Also time orjson.loads + comprehensions.")
@click.option("--no-pin", is_flag=True, help="Do not pin the process to one CPU.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write every run's figures here.")
def command(streams: int, values: int, repeat: int, compare: bool, no_pin: bool, json_path: str | None) -> None:
    """PI Web API response bytes -> Arrow, samples per CPU-second on one core, against msgspec's decode alone."""
    if not no_pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        pa.set_cpu_count(1)
    built = time.perf_counter()
    body = build_response(streams, values)
    print(f"response: {streams} streams x {values:,} values, {len(body) / 1e6:,.0f} MB JSON "
          f"(built in {time.perf_counter() - built:.1f}s); load average {os.getloadavg()[0]:.1f}")
    runs = measure(body, ["naia", "msgspec decode"] + (["orjson dicts"] if compare else []), repeat)
    _print(runs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:,.0f} MB; pinned to one CPU: {not no_pin}")
    line = (f"naia-backfill bench pi-parse --streams {streams} --values {values} --repeat {repeat}"
            + (" --compare" if compare else "") + (" --no-pin" if no_pin else ""))
    print(f"command: {line}")
    if json_path:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump({"command": line, "bytes": len(body), "pinned": not no_pin, "peak_rss_mb": peak, "runs": runs},
                      f, indent=1)


if __name__ == "__main__":
    command()
