"""Apache Kafka: a single-node KRaft broker and controller, resolved from Maven Central."""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

from naia_backfill.dev.services.base import Service
from naia_backfill.dev.services.core import HOST, log, port_open
from naia_backfill.dev.services.tools import find_java, maven_fetch, run_logged

PORT = 19092
CONTROLLER_PORT = 19093
HEADER = "# Written by naia_backfill.dev.services on every start; edit that package, not this file.\n"

SERVER_LOG4J2 = """status = warn
appender.server.type = RollingFile
appender.server.name = server
appender.server.fileName = ${sys:kafka.logs.dir}/server.log
appender.server.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.server.layout.type = PatternLayout
appender.server.layout.pattern = [%d] %p %m (%c)%n
appender.server.policies.type = Policies
appender.server.policies.size.type = SizeBasedTriggeringPolicy
appender.server.policies.size.size = 20MB
appender.server.strategy.type = DefaultRolloverStrategy
appender.server.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.server.ref = server
"""

TOOLS_LOG4J2 = """status = warn
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = stderr
"""

JVM_OPTIONS = [
    "-Xms128m", "-Xmx512m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true",
]  # fmt: skip


def server_properties(data_dir: Path, port: int, controller_port: int) -> str:
    """``server.properties`` of a single node that is broker and controller, every listener on 127.0.0.1."""
    listeners = f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}"
    lines = [
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.bootstrap.servers={HOST}:{controller_port}",
        f"listeners={listeners}",
        f"advertised.listeners={listeners}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        f"log.dirs={data_dir}",
        "num.partitions=1",
        "auto.create.topics.enable=true",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=4",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "transaction.state.log.num.partitions=4",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        # Without this a consumer group waits 3 s before its first assignment.
        "group.initial.rebalance.delay.ms=0",
    ]
    return HEADER + "\n".join(lines) + "\n"


def new_cluster_id() -> str:
    """A random KRaft cluster id: 16 bytes, URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")


class Kafka(Service):
    name = "kafka"
    log_name = "kafka.log"

    @property
    def port(self) -> int:
        return self.layout.port(PORT)

    @property
    def controller_port(self) -> int:
        return self.layout.port(CONTROLLER_PORT)

    def ports(self) -> list[int]:
        return [self.port, self.controller_port]

    def env(self) -> dict[str, str]:
        return {"NAIA_KAFKA_BOOTSTRAP": f"{HOST}:{self.port}"}

    def where(self) -> str:
        return f"{HOST}:{self.port} (controller :{self.controller_port})"

    def data(self) -> list[Path]:
        return [self.folder / "data", self.folder / "logs"]

    def logs(self) -> list[Path]:
        return [self.log_file, self.folder / "logs" / "server.log"]

    def java(self, log4j2: str, *args: str) -> list[str]:
        """A java command line over the resolved Kafka jars, logging as ``config/<log4j2>`` says."""
        return [
            find_java(),
            f"-Dkafka.logs.dir={self.folder / 'logs'}",
            f"-Dlog4j2.configurationFile={self.folder / 'config' / log4j2}",
            "-cp",
            f"{self.folder / 'lib'}/*",
            *args,
        ]

    def prepare(self) -> None:
        config = self.folder / "config"
        for sub in (config, self.folder / "data", self.folder / "logs"):
            sub.mkdir(parents=True, exist_ok=True)
        maven_fetch(self.name, self.layout.root / "scripts" / "services" / "kafka-pom.xml", self.folder / "lib")
        (config / "server.properties").write_text(
            server_properties(self.folder / "data", self.port, self.controller_port)
        )
        (config / "log4j2.properties").write_text(SERVER_LOG4J2)
        (config / "tools-log4j2.properties").write_text(TOOLS_LOG4J2)
        if not (self.folder / "data" / "meta.properties").is_file():
            self.format_storage()

    def format_storage(self) -> None:
        """Format the KRaft metadata log once, with a fresh cluster id."""
        cluster_id = new_cluster_id()
        log.info("kafka: formatting storage (cluster id %s)", cluster_id)
        shutil.rmtree(self.folder / "data", ignore_errors=True)
        (self.folder / "data").mkdir()
        argv = self.java(
            "log4j2.properties", "kafka.tools.StorageTool", "format", "--standalone",
            "-t", cluster_id, "-c", str(self.folder / "config" / "server.properties"),
        )  # fmt: skip
        run_logged(self.name, "formatting storage", argv, self.folder / "format.log")

    def command(self) -> list[str]:
        java, *rest = self.java("log4j2.properties", "kafka.Kafka", str(self.folder / "config" / "server.properties"))
        return [java, *JVM_OPTIONS, *rest]

    def ready(self) -> bool:
        if not port_open(self.port):
            return False
        # Imported here: librdkafka takes a moment to load, and status/env/down never need it.
        from confluent_kafka.admin import AdminClient

        try:
            metadata = AdminClient({"bootstrap.servers": f"{HOST}:{self.port}"}).list_topics(timeout=5)
        except Exception:  # noqa: BLE001 - any failure means "not ready yet"
            return False
        return bool(metadata.brokers)

    def healthy(self) -> bool:
        return port_open(self.port)
