"""QuestDB: the self-contained server jar from Maven Central, run as a Java module."""

from __future__ import annotations

from pathlib import Path

from naia_backfill.dev.services.base import Service
from naia_backfill.dev.services.core import HOST, ServiceError
from naia_backfill.dev.services.tools import find_java, maven_fetch

HTTP_PORT = 19000
MIN_HTTP_PORT = 19003
PG_PORT = 18812
ILP_TCP_PORT = 19009
HEADER = "# Written by naia_backfill.dev.services on every start; edit that package, not this file.\n"


def server_conf(http: int, min_http: int, pg: int, ilp_tcp: int) -> str:
    """``conf/server.conf``: every listener on 127.0.0.1, no UDP, no telemetry, a small worker pool."""
    lines = [
        f"http.bind.to={HOST}:{http}",
        "http.min.enabled=true",
        f"http.min.net.bind.to={HOST}:{min_http}",
        f"pg.net.bind.to={HOST}:{pg}",
        f"line.tcp.net.bind.to={HOST}:{ilp_tcp}",
        "line.udp.enabled=false",
        "telemetry.enabled=false",
        # The machines running tests have two cores; QuestDB sizes its pools by core count otherwise.
        "shared.worker.count=2",
        "wal.apply.worker.count=1",
    ]
    return HEADER + "\n".join(lines) + "\n"


def server_jar(lib: Path) -> Path:
    """The ``questdb-*.jar`` Maven put into ``lib``."""
    jars = sorted(lib.glob("questdb-*.jar"))
    if not jars:
        raise ServiceError(f"questdb: no questdb-*.jar in {lib}; delete {lib} and retry")
    return jars[0]


class QuestDB(Service):
    name = "questdb"
    log_name = "questdb.log"

    @property
    def http_port(self) -> int:
        return self.layout.port(HTTP_PORT)

    @property
    def pg_port(self) -> int:
        return self.layout.port(PG_PORT)

    @property
    def ilp_tcp_port(self) -> int:
        return self.layout.port(ILP_TCP_PORT)

    def ports(self) -> list[int]:
        return [self.http_port, self.layout.port(MIN_HTTP_PORT), self.pg_port, self.ilp_tcp_port]

    def env(self) -> dict[str, str]:
        return {
            "NAIA_QUESTDB_HTTP": f"{HOST}:{self.http_port}",
            "NAIA_QUESTDB_PG": f"{HOST}:{self.pg_port}",
            "NAIA_QUESTDB_ILP_TCP": f"{HOST}:{self.ilp_tcp_port}",
        }

    def where(self) -> str:
        return f"http {HOST}:{self.http_port} pg :{self.pg_port} ilp/tcp :{self.ilp_tcp_port}"

    def data(self) -> list[Path]:
        return [self.folder / "root" / "db"]

    def prepare(self) -> None:
        maven_fetch(self.name, self.layout.root / "scripts" / "services" / "questdb-pom.xml", self.folder / "lib")
        conf = self.folder / "root" / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "server.conf").write_text(
            server_conf(self.http_port, self.layout.port(MIN_HTTP_PORT), self.pg_port, self.ilp_tcp_port)
        )
        (self.folder / "tmp").mkdir(exist_ok=True)

    def command(self) -> list[str]:
        return [
            find_java(), "-Xms64m", "-Xmx512m", "-XX:+UseParallelGC", "-Djava.awt.headless=true",
            # QuestDB unpacks its native libraries into java.io.tmpdir; keep them with the rest.
            f"-Djava.io.tmpdir={self.folder / 'tmp'}",
            "--add-exports", "java.base/jdk.internal.math=io.questdb",
            "-p", str(server_jar(self.folder / "lib")), "-m", "io.questdb/io.questdb.ServerMain",
            "-d", str(self.folder / "root"),
        ]  # fmt: skip

    def ready(self) -> bool:
        """``select 1`` over REST answers ``[[1]]``."""
        # Imported here: httpx takes a quarter of a second to load, and status/env/down never need it.
        import httpx

        try:
            response = httpx.get(
                f"http://{HOST}:{self.http_port}/exec", params={"query": "select 1"}, timeout=5, trust_env=False
            )
            return response.status_code == 200 and response.json().get("dataset") == [[1]]
        except (httpx.HTTPError, ValueError):
            return False
