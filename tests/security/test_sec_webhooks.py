"""Finding 10: webhook receivers must be global addresses (Python's is_global plus the ranges it
gets wrong, IPv4 embedded in IPv6), and the delivery connects to the address that was checked."""

from __future__ import annotations

import http.server
import ipaddress
import socket
import threading

import httpx
import pytest

from callgauge_runs.domain.webhooks import address_refused
from callgauge_runs.adapters.webhook_http import pinned_request, resolve_receiver

REFUSED = ["100.100.100.200", "100.64.0.1", "192.0.0.192", "192.0.0.9", "2002:a9fe:a9fe::", "2002:7f00:1::",
           "64:ff9b::a9fe:a9fe", "::ffff:10.0.0.1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "198.18.0.1",
           "127.0.0.1", "169.254.169.254", "10.1.2.3", "fd00::1", "fe80::1", "::1", "0.0.0.0", "240.0.0.1"]


@pytest.mark.parametrize("ip", REFUSED)
def test_non_global_addresses_are_refused(ip):
    assert address_refused(ip), ip


@pytest.mark.parametrize("ip", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2002:0808:0808::"])
def test_global_addresses_pass(ip):
    assert address_refused(ip) == "", ip


@pytest.mark.parametrize("url", ["http://100.100.100.200/latest/meta-data", "http://[2002:a9fe:a9fe::]/x",
                                 "https://192.0.0.192/hook", "http://100.64.1.1:8080/", "http://[64:ff9b::7f00:1]/"])
def test_webhook_creation_refuses_them(api, url):
    r = api.post("/webhooks", json={"url": url, "events": ["run.finished"]})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "VALIDATION_ERROR"


def _loopback_name() -> str:
    name = socket.gethostname()
    try:
        if all(ipaddress.ip_address(i[4][0]).is_loopback for i in socket.getaddrinfo(name, 80)):
            return name
    except OSError:
        pass
    pytest.skip("the host name does not resolve to loopback here")


async def test_a_name_is_judged_by_what_it_resolves_to():
    name = _loopback_name()
    why, address = await resolve_receiver(f"http://{name}/hook")
    assert "loopback" in why and address == ""


def test_pinned_request_keeps_host_and_sni():
    url, headers, ext = pinned_request("https://hooks.example.com:8443/h/1?x=1", "93.184.216.34")
    assert url == "https://93.184.216.34:8443/h/1?x=1"
    assert headers == {"Host": "hooks.example.com:8443"} and ext == {"sni_hostname": "hooks.example.com"}
    url, headers, ext = pinned_request("http://hooks.example.com/", "2606:2800:220:1::1")
    assert url == "http://[2606:2800:220:1::1]/" and headers == {"Host": "hooks.example.com"} and ext == {}


async def test_delivery_goes_to_the_checked_address_with_the_original_host():
    """A receiver on loopback (allowed here): the request connects to the resolved address and the
    receiver sees the name it was registered under in Host."""
    name = _loopback_name()
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            seen.append(self.headers["Host"])
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        registered = f"http://{name}:{server.server_port}/hook"
        why, address = await resolve_receiver(registered, allow_private=True)
        assert why == "" and ipaddress.ip_address(address).is_loopback
        url, headers, ext = pinned_request(registered, address)
        assert name not in url
        async with httpx.AsyncClient() as client:
            r = await client.post(url, content=b"{}", headers=headers, extensions=ext)
        assert r.status_code == 204
        assert seen == [f"{name}:{server.server_port}"]
    finally:
        server.shutdown()
