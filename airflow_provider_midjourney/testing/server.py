"""uvicorn in a background thread, on a socket bound before the server starts."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp


class ServerThread:
    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto is
        # TCP, and without it Nagle + delayed ACKs add ~40 ms to every response.
        self.sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
        except OSError:
            self.sock.close()
            raise
        self.port: int = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            log_config=None,
            http="h11",
            ws="none",
            loop="asyncio",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run,
            kwargs={"sockets": [self.sock]},
            name=f"midjourney-emulator-{self.port}",
            daemon=True,
        )

    def start(self, timeout: float = 10.0) -> None:
        """Run the server and wait (bounded) until it accepts connections."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                self.sock.close()
                raise RuntimeError("the Midjourney emulator server exited during startup")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Midjourney emulator did not start within {timeout}s")
            time.sleep(0.005)

    def stop(self, timeout: float = 3.0) -> None:
        self.server.should_exit = True
        self.thread.join(min(1.5, timeout))
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout)
        self.sock.close()
