"""Run measuring code in fresh Python processes, so that its peak RSS and CPU time are its own.

``in_child("naia_backfill.dev.benchmarks.measures.checks:copy", points=50)`` starts
``python -m naia_backfill.dev.benchmarks.measures.child TARGET JSON``; the child imports ``TARGET``, calls it
with the JSON's keyword arguments and prints its result (a JSON object) as its last line of output, with the
process's ``peak_rss_mb`` added.

``run_benchmark("naia_backfill.dev.benchmarks.pi_parse", ["--repeat", "3"], timeout)`` runs a standalone
benchmark (``naia-backfill bench ...``) with ``--json PATH`` in a session of its own and returns the figures it
wrote; past the timeout, or when interrupted, its whole process group (simulators, variants) is stopped.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from naia_backfill.errors import NaiaError

MODULE = "naia_backfill.dev.benchmarks.measures.child"
STOP_GRACE_S = 20.0


class MeasureError(NaiaError):
    """A measuring process failed; the message ends with its error output."""


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def last_json(stdout: str) -> dict[str, Any]:
    """The JSON object a child printed last (benchmarks print their figures as their last line)."""
    lines = [line for line in stdout.strip().splitlines() if line.startswith("{")]
    if not lines:
        raise MeasureError(f"no figures in the output: {stdout[-500:]!r}")
    return json.loads(lines[-1])


def in_child(target: str, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
    """Call ``module:function`` with ``kwargs`` in a fresh process; its JSON result plus ``peak_rss_mb``."""
    proc = subprocess.run([sys.executable, "-m", MODULE, target, json.dumps(kwargs)], capture_output=True, text=True,
                          check=False, timeout=timeout)
    if proc.returncode != 0:
        raise MeasureError(f"{target} failed ({proc.returncode}): {proc.stderr.strip()[-1500:]}")
    return last_json(proc.stdout)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the benchmark's process group (its servers tear down what they made), then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.communicate(timeout=STOP_GRACE_S)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(text: str, chars: int = 1500) -> str:
    return text.strip()[-chars:]


def run_benchmark(module: str, args: Sequence[str], timeout: float) -> dict[str, Any]:
    """Run ``python -m module *args --json PATH`` and return the JSON it wrote; :class:`MeasureError` (with the
    end of its output) when it fails, writes nothing or runs past ``timeout`` seconds."""
    line = f"{module.rsplit('.', 1)[-1]} {' '.join(args)}"
    with tempfile.TemporaryDirectory(prefix="naia-bench-all-") as tmp:
        out = Path(tmp) / "figures.json"
        proc = subprocess.Popen([sys.executable, "-m", module, *args, "--json", str(out)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop_group(proc)
            raise MeasureError(f"`{line}` took over {timeout:.0f} s and was stopped") from None
        except BaseException:
            _stop_group(proc)
            raise
        if proc.returncode != 0 or not out.exists():
            raise MeasureError(f"`{line}` failed (exit status {proc.returncode}): "
                               f"{_tail(stderr) or _tail(stdout)}")
        return json.loads(out.read_text(encoding="utf-8"))


def main(argv: list[str]) -> int:
    target, kwargs = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    module, function = target.split(":")
    result = getattr(importlib.import_module(module), function)(**kwargs)
    print(json.dumps({**result, "peak_rss_mb": peak_rss_mb()}))  # the child's output is its figures
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
