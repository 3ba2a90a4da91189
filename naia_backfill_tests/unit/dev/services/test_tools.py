from __future__ import annotations

from pathlib import Path

import pytest

from naia_backfill.dev.services import tools
from naia_backfill.dev.services.core import ServiceError

OPENJDK_17 = """Property settings:
    java.home = /usr/lib/jvm/java-17-openjdk-amd64
    java.specification.version = 17
    java.vm.specification.version = 17
"""


@pytest.mark.parametrize(
    ("output", "major"),
    [
        (OPENJDK_17, 17),
        ("    java.specification.version = 21\n", 21),
        ("    java.specification.version = 1.8\n", 8),
        ("Error: could not create the Java Virtual Machine.\n", None),
    ],
)
def test_java_major_reads_the_specification_version(output: str, major: int | None):
    assert tools.java_major(output) == major


def test_java_candidates_prefer_naia_java_then_java_home():
    found = tools.java_candidates({"NAIA_JAVA": "/opt/my/java", "JAVA_HOME": "/opt/jdk"})
    assert found[:2] == ["/opt/my/java", "/opt/jdk/bin/java"]


def test_maven_is_not_asked_again_while_the_pom_is_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    pom, lib = tmp_path / "kafka-pom.xml", tmp_path / "lib"
    pom.write_text("<project/>")
    lib.mkdir()
    (lib / ".pom.sha256").write_text(tools.file_sha256(pom) + "\n")

    def no_maven(*args: object, **kwargs: object) -> None:
        raise AssertionError("Maven ran although the pom did not change")

    monkeypatch.setattr(tools, "run_logged", no_maven)
    tools.maven_fetch("kafka", pom, lib)


def test_a_missing_pom_is_reported(tmp_path: Path):
    with pytest.raises(ServiceError, match="kafka-pom.xml is missing"):
        tools.maven_fetch("kafka", tmp_path / "kafka-pom.xml", tmp_path / "lib")


def test_a_failing_step_raises_with_its_log(tmp_path: Path):
    log = tmp_path / "step.log"
    with pytest.raises(ServiceError) as failed:
        tools.run_logged("kafka", "formatting storage", ["/bin/sh", "-c", "echo 'bad cluster id' >&2; exit 1"], log)
    assert "kafka: formatting storage failed" in str(failed.value)
    assert "bad cluster id" in str(failed.value)
