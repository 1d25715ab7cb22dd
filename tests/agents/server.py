"""A scripted model server on 127.0.0.1: the only fake in the agent tests.

It speaks each API through a module of its own (anthropic_api.py: the Messages API;
openai_api.py: the Responses API), each exposing

    handle(path: str, request: dict, script: Script) -> Answer

which takes the next scripted reply (or the side reply), records what it served in the
script (Script.record), and returns the status, headers and body chunks to send. The
server only routes and writes; it logs every request it could not route, so a test that
hangs on an agent asking something new says what that was.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterable

from .script import Script

log = logging.getLogger("model_server")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    chunks: Iterable[bytes]


def _route(path: str):
    """The API module that answers ``path``, or None."""
    bare = path.split("?", 1)[0].rstrip("/")
    if bare.endswith("/messages") or bare.endswith("/messages/count_tokens"):
        from . import anthropic_api
        return anthropic_api
    if bare.endswith("/responses"):
        from . import openai_api
        return openai_api
    return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "ModelServer"

    def log_message(self, fmt, *args):  # quiet: the served log is the record
        pass

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return {}

    def do_POST(self):
        request = self._body()
        self.server.requests.append((self.path, request))
        api = _route(self.path)
        if api is None:
            self.server.unrouted.append(f"POST {self.path}")
            self._send(Answer(404, {"Content-Type": "application/json"}, [b'{"error":"not scripted"}']))
            return
        try:
            self._send(api.handle(self.path, request, self.server.script))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the agent went away mid-answer (a test killed it): what was served is recorded

    def do_GET(self):
        self.server.unrouted.append(f"GET {self.path}")
        self._send(Answer(404, {"Content-Type": "application/json"}, [b'{"error":"not scripted"}']))

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, answer: Answer) -> None:
        self.send_response(answer.status)
        for k, v in answer.headers.items():
            self.send_header(k, v)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in answer.chunks:
            if chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class ModelServer(ThreadingHTTPServer):
    """``with ModelServer(script) as server:`` serves on ``server.url`` until the block ends."""

    daemon_threads = True

    def __init__(self, script: Script):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = script
        self.unrouted: list[str] = []
        self.requests: list[tuple[str, dict]] = []  # every POST as it came, for a test that needs to look
        self._thread = threading.Thread(target=self.serve_forever, name="model-server", daemon=True)

    def handle_error(self, request, client_address) -> None:
        """A request cut off by an agent the test killed is no error of the server's."""
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> "ModelServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)
