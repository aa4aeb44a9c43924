"""A webhook receiver for the tests: a real HTTP server on 127.0.0.1 that records every POST."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from callgauge_runs.domain import webhooks


class WebhookReceiver:
    """Records each POST as (headers, body); answers 500 to the first `fail` of them, then `status`
    (with a Location header when `location` is given). start()/close(), or a context manager."""

    def __init__(self, fail: int = 0, status: int = 204, location: str = "", path: str = "/hooks") -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(({k: v for k, v in self.headers.items()}, body))
                self.send_response(500 if len(receiver.requests) <= fail else status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def verified(self, secret: str) -> list[dict]:
        """The bodies received so far, each one's signature checked with `secret`."""
        out = []
        for headers, body in list(self.requests):
            assert webhooks.verify(secret, headers[webhooks.TIMESTAMP_HEADER], body, headers[webhooks.SIGNATURE_HEADER],
                                   int(time.time())), f"bad signature: {headers}"
            out.append(json.loads(body))
        return out
