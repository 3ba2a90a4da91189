"""A TCP forwarder on 127.0.0.1 that can be taken down and brought back: a QuestDB that stops and returns,
without touching the shared QuestDB behind it."""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Self

from naia_backfill.dev.services.process import free_port


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``target`` ("host:port") while up. :meth:`down` closes the listener and cuts
    every open connection (clients then see connection refused/reset); :meth:`up` listens again on the same port."""

    def __init__(self, target: str, port: int | None = None) -> None:
        host, _, port_text = target.rpartition(":")
        self.target = (host, int(port_text))
        self.port = port or free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.accepted = 0

    def up(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self._listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, set()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def _keep(self, listener: socket.socket, *socks: socket.socket) -> bool:
        """Track ``socks`` unless the proxy went down meanwhile (then close them): no connection outlives down()."""
        with self._lock:
            if self._listener is listener:
                self._conns.update(socks)
                return True
        for s in socks:
            s.close()
        return False

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if not self._keep(listener, client):
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            if not self._keep(listener, server):
                return
            self.accepted += 1
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()
