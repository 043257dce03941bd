"""An HTTP receiver on 127.0.0.1 for the alert sinks that POST (webhook, Slack, PagerDuty)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Receiver:
    """An HTTP server that answers POSTs from a script of (status, headers) and records what it got."""

    url: str
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    body: bytes = b""  # what every answer carries (Slack explains a refusal in it)

    def answer(self, *responses: int | tuple[int, dict[str, str]]) -> None:
        self.script = [r if isinstance(r, tuple) else (r, {}) for r in responses]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.received.append((dict(self.headers.items()), body))
            state.times.append(time.monotonic())
            # The last scripted answer repeats: "always 500" is a script of one.
            status, headers = state.script.pop(0) if len(state.script) > 1 else state.script[0]
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep pytest's output for failures

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/secret-token"
    state.answer(200)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
