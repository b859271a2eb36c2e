"""The Webex simulator over real HTTP on loopback, for end-to-end tests and benchmarks.

``serve(sim)`` runs a ``ThreadingHTTPServer`` (HTTP/1.1 keep-alive, one daemon thread per
connection) in a background thread and yields the base URL ``http://127.0.0.1:<port>/v1``.
Each request sleeps ``sim.latency`` and is answered by ``sim.respond``; a reset fault drops the
connection without answering (alternately a close and a TCP RST). On exit the listener stops,
open keep-alive connections are shut down and their threads joined.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from reporting.webex.simulator.app import Simulator
from reporting.webex.simulator.faults import ConnectionReset


class _Server(ThreadingHTTPServer):
    """A threading HTTP server that knows its open connections, to close them on shutdown."""

    daemon_threads = True
    # Room for ~200 clients connecting at once without SYN drops.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], sim: Simulator) -> None:
        super().__init__(address, _Handler)
        self.sim = sim
        self.connections: set[socket.socket] = set()
        self.abort: set[socket.socket] = set()
        self.conn_lock = threading.Lock()

    def shutdown_request(self, request: Any) -> None:
        """Close a finished connection; an aborted one is closed with RST, not FIN."""
        with self.conn_lock:
            self.connections.discard(request)
            aborted = request in self.abort
            self.abort.discard(request)
        if aborted:
            # SO_LINGER(on, 0) makes close() send RST; skipping shutdown() avoids a FIN first.
            self.close_request(request)
            return
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up mid-answer (a cancelled request) is normal here, not an error."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Shut down every open connection so blocked keep-alive reads return."""
        with self.conn_lock:
            open_now = list(self.connections)
        for conn in open_now:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by its handler


class _Handler(BaseHTTPRequestHandler):
    """Turns each HTTP request into ``Simulator.respond`` and writes the answer in one send."""

    protocol_version = "HTTP/1.1"
    server_version = "WebexSimulator/1.0"
    sys_version = ""
    # Headers and body go out in one write and Nagle is off: no 40 ms delayed-ACK stalls.
    disable_nagle_algorithm = True
    # An idle keep-alive connection is dropped after this many seconds.
    timeout = 60
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.conn_lock:
            self.server.connections.add(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests and benchmarks do not want a line per request."""

    def _serve(self) -> None:
        sim = self.server.sim
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""  # also keeps the stream in sync
        if sim.latency > 0:
            time.sleep(sim.latency)
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        try:
            answer = sim.respond(
                self.command, f"http://{host}{self.path}", dict(self.headers.items()), body
            )
        except ConnectionReset as reset:
            self.close_connection = True
            if reset.abortive:
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                with self.server.conn_lock:
                    self.server.abort.add(self.connection)
            return
        try:
            reason = HTTPStatus(answer.status).phrase
        except ValueError:
            reason = ""
        lines = [f"HTTP/1.1 {answer.status} {reason}"]
        lines.extend(f"{k}: {v}" for k, v in answer.headers.items())
        lines.append(f"Content-Length: {len(answer.body)}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="replace")
        self.wfile.write(head + (answer.body if self.command != "HEAD" else b""))

    do_GET = _serve
    do_POST = _serve
    do_PUT = _serve
    do_PATCH = _serve
    do_DELETE = _serve
    do_HEAD = _serve
    do_OPTIONS = _serve


@contextmanager
def serve(sim: Simulator, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``sim`` over HTTP in a background thread; yields ``http://<host>:<port>/v1``."""
    server = _Server((host, port), sim)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="webex-simulator",
        daemon=True,
    )
    thread.start()
    bound_host, bound_port = server.server_address[:2]
    try:
        yield f"http://{bound_host!s}:{bound_port}/v1"
    finally:
        server.shutdown()
        thread.join()
        server.close_connections()
        server.server_close()  # also joins the connection threads
