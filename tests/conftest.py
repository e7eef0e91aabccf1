"""Shared test fixtures: a throw-away HTTP server on 127.0.0.1 and a URL where nothing listens."""
from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest


@pytest.fixture
def http_server():
    """Serve `server.files[name] = bytes` at `server.url + name`; `server.modes[name] = "truncate"` sends a
    Content-Length larger than the body and closes the connection, "slow" sends the body 100 bytes every 50 ms,
    "late" waits 0.5 s before it answers.
    `server.requests` logs the paths asked for."""
    files: dict[str, bytes] = {}
    modes: dict[str, str] = {}
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            name = self.path.lstrip("/")
            requests.append(name)
            if name not in files:
                self.send_error(404, "not found")
                return
            body = files[name]
            if modes.get(name) == "late":
                time.sleep(0.5)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if modes.get(name) == "truncate":
                self.wfile.write(body[: len(body) // 2])
                self.close_connection = True
                return
            if modes.get(name) == "slow":
                try:
                    for i in range(0, len(body), 100):
                        self.wfile.write(body[i:i + 100])
                        self.wfile.flush()
                        time.sleep(0.05)
                except (BrokenPipeError, ConnectionResetError):       # the client gave up: its deadline
                    pass
                return
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_address[1]}/", files=files, modes=modes, requests=requests)
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def dead_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
