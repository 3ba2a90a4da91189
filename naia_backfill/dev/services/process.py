"""Detached server processes: start with a PID file, recognise our own, stop gracefully, wait until they answer.

Servers outlive the command that starts them (``up`` returns; pytest sessions and other shells share them), so a
process is found again through its PID file, and it counts as ours only while its command line names its own
folder under ``.services`` (a recycled PID of some other program never does).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psutil
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from naia_backfill.dev.services.core import ServiceError, log, log_tail

POLL_S = 0.5


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def read_pid(pid_file: Path) -> int | None:
    """The number in the PID file (first line), if it holds one."""
    try:
        first = pid_file.read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() else None


def owned_pid(pid_file: Path, marker: str) -> int | None:
    """The PID in ``pid_file`` when that process is alive and its command line contains ``marker``."""
    pid = read_pid(pid_file)
    if pid is None or not alive(pid):
        return None
    try:
        cmdline = " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return None
    return pid if marker in cmdline else None


def rotate(log_file: Path) -> None:
    """Keep the previous run's log as ``<log>.1``."""
    if log_file.exists():
        log_file.replace(log_file.with_name(log_file.name + ".1"))


# The server is started by a short-lived shell in a new session, so it is nobody's child once the shell exits:
# it outlives a long pytest session without turning into a zombie there, and is immune to the caller's Ctrl-C.
_LAUNCH = 'log=$1; shift; exec "$@" >"$log" 2>&1 </dev/null & echo $!'


def spawn(argv: Sequence[str], pid_file: Path, log_file: Path) -> int:
    """Start ``argv`` detached with its output in ``log_file``; returns its PID, also written to ``pid_file``."""
    if shutil.which(argv[0]) is None:
        raise ServiceError(f"cannot start {argv[0]}: not an executable")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    rotate(log_file)
    pid_file.unlink(missing_ok=True)
    done = subprocess.run(
        ["/bin/sh", "-c", _LAUNCH, "sh", str(log_file), *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        start_new_session=True,
        timeout=30,
        check=False,
    )
    pid = done.stdout.strip()
    if done.returncode != 0 or not pid.isdigit():
        raise ServiceError(f"could not start {argv[0]}: {done.stderr.strip() or 'no PID from the launcher'}")
    pid_file.write_text(f"{pid}\n")
    return int(pid)


def gone_within(pid: int, seconds: float) -> bool:
    """Whether ``pid`` ends (or is a zombie: not our child, so not ours to reap) within ``seconds``."""
    retrying = Retrying(stop=stop_after_delay(seconds), wait=wait_fixed(0.1), retry=retry_if_result(bool))
    try:
        retrying(alive, pid)
    except RetryError:
        return False
    return True


def stop_pid(service: str, pid: int, grace: float) -> None:
    """SIGTERM, then SIGKILL if ``pid`` is still running ``grace`` seconds later."""
    for sig, wait_s in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if gone_within(pid, wait_s):
            return
        if sig == signal.SIGTERM:
            log.info("%s: still running %.0fs after SIGTERM; sending SIGKILL to %d", service, grace, pid)
    raise ServiceError(f"{service}: PID {pid} survived SIGKILL")


def wait_ready(
    service: str,
    probe: Callable[[], bool],
    running: Callable[[float], bool],
    started: float,
    timeout: float,
    logs: Sequence[Path],
) -> float:
    """Poll ``probe`` until it answers True; returns the seconds since ``started`` (a ``time.monotonic`` value).

    ``running(elapsed)`` says whether the server process is still there; when it is not, or ``timeout`` seconds
    pass, a ServiceError carries the tail of ``logs``.
    """

    def attempt() -> bool:
        if probe():
            return True
        if not running(time.monotonic() - started):
            raise ServiceError(_with_tail(f"{service}: the server process exited during startup", logs))
        return False

    retrying = Retrying(
        stop=stop_after_delay(max(timeout - (time.monotonic() - started), 0.0)),
        wait=wait_fixed(POLL_S),
        retry=retry_if_result(lambda ok: not ok),
    )
    try:
        retrying(attempt)
    except RetryError:
        message = f"{service}: not ready after {timeout:.0f}s (raise NAIA_SERVICES_TIMEOUT if the machine is slow)"
        raise ServiceError(_with_tail(message, logs)) from None
    return time.monotonic() - started


def _with_tail(message: str, logs: Sequence[Path]) -> str:
    tail = log_tail(logs)
    names = ", ".join(str(p) for p in logs)
    return f"{message} (logs: {names})" + (f"\n{tail}" if tail else "")


# Foreground process groups: servers a benchmark or a test starts for its own duration (dagster dev, a code
# server, webserver and daemon), each the leader of its own group so that stopping it stops its children too.


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _default_signals() -> None:
    # A shell that started us in the background may have set SIGINT to ignored; children inherit that.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def spawn_group(argv: Sequence[str], cwd: Path, env: Mapping[str, str], log_file: Path) -> subprocess.Popen[bytes]:
    """Start ``argv`` as the leader of a new process group, its output in ``log_file``."""
    with log_file.open("wb") as out:
        return subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_default_signals)


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # only zombies not yet reaped
        return True
    return True


def stop_group(proc: subprocess.Popen[bytes], first_grace: float) -> None:
    """SIGINT to ``proc``'s group, then SIGTERM, then SIGKILL, each time until the leader and the rest of the
    group (code servers, run workers) are gone."""
    pgid = proc.pid
    for sig, grace in ((signal.SIGINT, first_grace), (signal.SIGTERM, 15.0), (signal.SIGKILL, 15.0)):
        if not group_alive(pgid):
            break
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and (proc.poll() is None or group_alive(pgid)):
            time.sleep(0.25)
    proc.wait(timeout=15)
