"""Headless Debian chromium driven over the DevTools protocol (remote debugging port + a
websocket), for the report pages' browser tests: navigate, read the HTTP status of the document,
collect console errors, uncaught exceptions and browser log errors (failed loads, CSP), evaluate
JavaScript, take a screenshot. Every wait is bounded."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import websocket
from callgauge_platform.stack import stop_process

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@dataclass
class PageLoad:
    status: int | None
    errors: list[str] = field(default_factory=list)


class Browser:
    def __init__(self, timeout: float = 30.0) -> None:
        if CHROMIUM is None:
            raise RuntimeError("chromium is not installed (Debian package `chromium`; install.sh installs it)")
        self.timeout = timeout
        self._dir = tempfile.TemporaryDirectory(prefix="cg-chromium-", ignore_cleanup_errors=True)
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
             "--disable-background-networking", "--disable-component-update", "--mute-audio",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
             f"--user-data-dir={self._dir.name}", "--window-size=1400,1000", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        port = self._port()
        ws_url = self._page_ws(port)
        self.ws = websocket.create_connection(ws_url, timeout=self.timeout, suppress_origin=True)
        self._ids = itertools.count(1)
        self._events: list[dict] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")

    def _port(self) -> int:
        marker = Path(self._dir.name) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}")
            if marker.exists() and (text := marker.read_text().split()):
                return int(text[0])
            time.sleep(0.1)
        raise RuntimeError("chromium did not open its DevTools port")

    def _page_ws(self, port: int) -> str:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
            time.sleep(0.1)
        raise RuntimeError("chromium has no page target")

    def send(self, method: str, **params) -> dict:
        msg_id = next(self._ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self._events.append(msg)
        raise TimeoutError(f"{method}: no answer in {self.timeout} s")

    def _wait_event(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for i, ev in enumerate(self._events):
                if ev["method"] == method:
                    return self._events.pop(i)
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            self._events.append(json.loads(self.ws.recv()))
        raise TimeoutError(f"no {method} in {self.timeout} s")

    def navigate(self, url: str, settle: float = 0.5) -> PageLoad:
        """Load `url` to its load event; the document's HTTP status and every error reported."""
        self._events.clear()
        frame = self.send("Page.navigate", url=url)
        if frame.get("errorText"):
            raise RuntimeError(f"navigation to {url} failed: {frame['errorText']}")
        self._wait_event("Page.loadEventFired")
        # let late console messages (chart drawing happens synchronously, but be fair) arrive
        end = time.monotonic() + settle
        self.ws.settimeout(0.1)
        while time.monotonic() < end:
            try:
                self._events.append(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                pass
        self.ws.settimeout(self.timeout)
        status, errors = None, []
        for ev in self._events:
            p = ev.get("params", {})
            if ev["method"] == "Network.responseReceived" and p.get("type") == "Document":
                status = p["response"]["status"]
            elif ev["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                errors.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"]))
            elif ev["method"] == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                errors.append("exception: " + (d.get("exception", {}).get("description") or d.get("text", "")))
            elif ev["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                e = p["entry"]
                errors.append(f"log: {e.get('source')}: {e.get('text')} {e.get('url', '')}".strip())
        return PageLoad(status, errors)

    def evaluate(self, expression: str):
        res = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"evaluate failed: {res['exceptionDetails'].get('text')}")
        return res.get("result", {}).get("value")

    def set_header(self, name: str, value: str) -> None:
        self.send("Network.setExtraHTTPHeaders", headers={name: value})

    def clear_headers(self) -> None:
        self.send("Network.setExtraHTTPHeaders", headers={})

    def screenshot(self, path: Path) -> Path:
        metrics = self.send("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics.get("contentSize")
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 6000), "scale": 1}
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001 - closing a broken socket
            pass
        stop_process(self.proc)
        self._dir.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
