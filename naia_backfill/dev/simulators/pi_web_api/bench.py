"""How fast the PI Web API simulator serves recorded values over loopback, so it never bounds a connector.

Fetches full days of a point (default FAST.1HZ: over 86,400 events a day) with ``maxCount`` above a day's
count, over keep-alive httpx connections, and reports values/s received (bytes read, not parsed) and, for
comparison, values/s when the client also parses the JSON with orjson.
``python -m naia_backfill.dev.simulators.pi_web_api.bench --days 10 --clients 1``
"""

from __future__ import annotations

import argparse
import datetime as dt
import threading
import time

import httpx
import orjson

from naia_backfill.dev.simulators.pi_web_api.simulator import PiSimulator, serve


def _fetch_days(url: str, webid: str, days: list[dt.date], parse: bool, counts: list[int], cpu: list[float]) -> None:
    started = time.thread_time()
    with httpx.Client(base_url=url, timeout=120) as client:
        for day in days:
            start = dt.datetime.combine(day, dt.time(), dt.UTC)
            params = {
                "startTime": start.isoformat().replace("+00:00", "Z"),
                "endTime": (start + dt.timedelta(days=1)).isoformat().replace("+00:00", "Z"),
                "boundaryType": "Inside",
                "maxCount": 150_000,
            }
            r = client.get(f"/streams/{webid}/recorded", params=params)
            r.raise_for_status()
            counts.append(len(orjson.loads(r.content)["Items"]) if parse else r.content.count(b'"Timestamp"'))
    cpu.append(time.thread_time() - started)


def run(point: str = "FAST.1HZ", days: int = 10, clients: int = 1, parse: bool = False) -> dict[str, float]:
    sim = PiSimulator()
    first = dt.date(2024, 1, 1)
    all_days = [first + dt.timedelta(days=i) for i in range(days)]
    counts: list[int] = []
    client_cpu: list[float] = []
    with serve(sim) as url:
        _fetch_days(url, sim.webid(point), all_days[:1], parse, [], [])  # warm up caches
        started = time.perf_counter()
        threads = [
            threading.Thread(
                target=_fetch_days, args=(url, sim.webid(point), all_days[i::clients], parse, counts, client_cpu)
            )
            for i in range(clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - started
    values = sum(counts)
    server_cpu = sum(e["cpu_s"] for e in sim.request_log[1:])
    return {
        "values": values,
        "requests": len(counts),
        "seconds": seconds,
        "values_per_s": values / seconds,
        "server_cpu_s": server_cpu,
        "values_per_server_cpu_s": values / server_cpu,
        "client_cpu_s": sum(client_cpu),
        "values_per_client_cpu_s": values / sum(client_cpu),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--point", default="FAST.1HZ")
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--parse", action="store_true", help="parse each response with orjson in the client")
    args = parser.parse_args(argv)
    result = run(args.point, args.days, args.clients, args.parse)
    print(
        f"{args.point}: {result['values']:,} values in {result['requests']} requests, "
        f"{result['seconds']:.2f} s -> {result['values_per_s']:,.0f} values/s "
        f"({args.clients} client(s), {'parsed' if args.parse else 'raw bytes'}); server CPU "
        f"{result['server_cpu_s']:.2f} s -> {result['values_per_server_cpu_s']:,.0f} values per CPU second; client "
        f"CPU {result['client_cpu_s']:.2f} s -> {result['values_per_client_cpu_s']:,.0f} values per CPU second"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
