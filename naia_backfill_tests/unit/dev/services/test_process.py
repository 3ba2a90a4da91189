from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import psutil
import pytest

from naia_backfill.dev.services.core import ServiceError
from naia_backfill.dev.services.process import alive, owned_pid, read_pid, rotate, spawn, stop_pid, wait_ready

SLEEP = shutil.which("sleep") or "/bin/sleep"


@pytest.fixture
def sleeper(tmp_path: Path):
    """A detached ``sleep`` started like a server; killed afterwards if a test left it running."""
    pid = spawn([SLEEP, "300"], tmp_path / "pid", tmp_path / "sleep.log")
    yield pid
    if alive(pid):
        psutil.Process(pid).kill()


@pytest.mark.parametrize(("text", "expected"), [("123\n", 123), ("42\nextra", 42), ("", None), ("abc\n", None)])
def test_read_pid(tmp_path: Path, text: str, expected: int | None):
    pid_file = tmp_path / "pid"
    pid_file.write_text(text)
    assert read_pid(pid_file) == expected


def test_read_pid_of_a_missing_file_is_none(tmp_path: Path):
    assert read_pid(tmp_path / "pid") is None


def test_a_pid_is_ours_only_while_alive_and_its_command_line_names_our_folder(tmp_path: Path):
    pid_file = tmp_path / "pid"
    pid_file.write_text(f"{os.getpid()}\n")
    assert owned_pid(pid_file, psutil.Process().cmdline()[0]) == os.getpid()
    assert owned_pid(pid_file, str(tmp_path / "kafka")) is None  # a recycled PID of another program


def test_spawn_detaches_writes_the_pid_and_rotates_the_log(tmp_path: Path, sleeper: int):
    assert read_pid(tmp_path / "pid") == sleeper
    assert owned_pid(tmp_path / "pid", "300") == sleeper
    assert psutil.Process(sleeper).ppid() != os.getpid()  # nobody's child: no zombie in a long test session
    (tmp_path / "sleep.log").write_text("previous run\n")
    rotate(tmp_path / "sleep.log")
    assert (tmp_path / "sleep.log.1").read_text() == "previous run\n"
    assert not (tmp_path / "sleep.log").exists()


def test_spawn_refuses_a_program_that_does_not_exist(tmp_path: Path):
    with pytest.raises(ServiceError, match="not an executable"):
        spawn([str(tmp_path / "nope")], tmp_path / "pid", tmp_path / "nope.log")


def test_stop_pid_ends_the_process(sleeper: int):
    stop_pid("sleep", sleeper, grace=10)
    assert not alive(sleeper)


def test_stop_pid_kills_what_ignores_sigterm(tmp_path: Path):
    pid = spawn(["/bin/sh", "-c", "trap '' TERM; while :; do sleep 1; done"], tmp_path / "pid", tmp_path / "x.log")
    time.sleep(0.3)  # let the shell install its trap
    stop_pid("stubborn", pid, grace=0.5)
    assert not alive(pid)


def test_wait_ready_returns_once_the_probe_answers():
    answers = iter([False, False, True])
    elapsed = wait_ready("svc", lambda: next(answers), lambda _: True, time.monotonic(), 30, [])
    assert elapsed >= 0
    assert next(answers, "asked until it answered") == "asked until it answered"  # no probe skipped or left over


def test_a_server_that_exits_during_startup_is_reported_with_its_log(tmp_path: Path):
    log = tmp_path / "server.log"
    pid = spawn(["/bin/sh", "-c", "echo 'FATAL: cannot bind'; exit 3"], tmp_path / "pid", log)
    with pytest.raises(ServiceError) as failed:
        wait_ready("svc", lambda: False, lambda _: alive(pid), time.monotonic(), 30, [log])
    message = str(failed.value)
    assert "svc: the server process exited during startup" in message
    assert f"---- last lines of {log} ----\nFATAL: cannot bind" in message


def test_a_server_that_never_answers_times_out_with_its_log(tmp_path: Path):
    log = tmp_path / "server.log"
    log.write_text("still booting\n")
    with pytest.raises(ServiceError) as failed:
        wait_ready("svc", lambda: False, lambda _: True, time.monotonic(), 0.2, [log])
    assert "svc: not ready after 0s" in str(failed.value)
    assert "NAIA_SERVICES_TIMEOUT" in str(failed.value)
    assert "still booting" in str(failed.value)
