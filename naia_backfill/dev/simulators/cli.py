"""``simulate``: the click group that serves a source simulator on 127.0.0.1 until Ctrl-C or SIGTERM.

The product CLI mounts it as ``naia-backfill simulate``; each command prints the base URL once it listens.
"""

from __future__ import annotations

import click

from naia_backfill.dev.simulators.ace_iot.simulator import main as ace_iot
from naia_backfill.dev.simulators.pi_web_api.simulator import main as pi_web_api
from naia_backfill.dev.simulators.waqi.simulator import main as waqi


@click.group(name="simulate")
def simulate() -> None:
    """Serve a source simulator on 127.0.0.1 (for tests, benchmarks and demos)."""


simulate.add_command(pi_web_api, "pi-web-api")
simulate.add_command(ace_iot, "ace-iot")
simulate.add_command(waqi, "waqi")

if __name__ == "__main__":
    simulate()
