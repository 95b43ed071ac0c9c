"""A scriptable hostile HTTP server on loopback: redirects, drips, huge and crafted answers.

Each request is recorded (method, path, headers, body) and answered by ``answer(seen)``: an
:class:`Answer` whose body is bytes or a bounded list of ``(piece, pause)`` steps, written raw so
the server can misbehave in ways a framework would not let it.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    headers: Sequence[tuple[str, str]] = (("Content-Type", "application/json"),)
    body: bytes = b"{}"
    #: Written instead of ``body`` when given: each piece, then a pause (a drip), at most 10,000 steps.
    steps: Sequence[tuple[bytes, float]] = ()
    #: Bytes of a body announced without Content-Length, streamed in 64 KiB pieces (a huge answer).
    stream_bytes: int = 0


@dataclass
class HostileServer:
    answer: Callable[[Seen], Answer]
    seen: list[Seen] = field(default_factory=list)
    base_url: str = ""
    #: Bytes of each ``stream_bytes`` answer the client took before it hung up.
    streamed: list[int] = field(default_factory=list)

    def handle(self, rfile: socket.SocketIO, wfile: socket.SocketIO) -> None:
        line = rfile.readline(65536).decode("latin-1").strip()
        if not line:
            return
        method, target, _ = line.split(" ", 2)
        headers: dict[str, str] = {}
        while (header := rfile.readline(65536).decode("latin-1").strip()) != "":
            name, _, value = header.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = rfile.read(int(headers.get("content-length", "0") or 0))
        seen = Seen(method, target, headers, body)
        self.seen.append(seen)
        answer = self.answer(seen)
        head = [f"HTTP/1.1 {answer.status} X", "Connection: close", *(f"{k}: {v}" for k, v in answer.headers)]
        if not answer.steps and not answer.stream_bytes:
            head.append(f"Content-Length: {len(answer.body)}")
        wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        try:
            if answer.stream_bytes:
                piece, sent = b" " * 65536, 0
                try:
                    for _ in range(answer.stream_bytes // len(piece)):
                        wfile.write(piece)
                        sent += len(piece)
                finally:
                    self.streamed.append(sent)
            elif answer.steps:
                for piece, pause in answer.steps[:10_000]:
                    wfile.write(piece)
                    wfile.flush()
                    time.sleep(pause)
            else:
                wfile.write(answer.body)
            wfile.flush()
        except OSError:
            pass  # the client gave up: what the bounds are for

    def requests_to(self, path_part: str) -> list[Seen]:
        return [s for s in self.seen if path_part in s.path]


@contextmanager
def hostile_server(answer: Callable[[Seen], Answer]) -> Iterator[HostileServer]:
    server = HostileServer(answer)

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            server.handle(self.rfile, self.wfile)  # type: ignore[arg-type]

    class Threaded(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    with Threaded(("127.0.0.1", 0), Handler) as tcp:
        server.base_url = f"http://127.0.0.1:{tcp.server_address[1]}"
        thread = threading.Thread(target=tcp.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield server
        finally:
            tcp.shutdown()
