"""`callgauge up` never mixes two stacks (issue 18 item 5): one stack per data dir (a lock), every
port checked free before anything starts (the holder named), readiness only from the processes this
start made (an instance token). Real sockets and processes; the whole-stack case is in
tests/e2e/test_up_lifecycle.py."""

from __future__ import annotations

import http.server
import os
import socket
import threading

import pytest

from callgauge_platform.ports import holders, port_free
from callgauge_platform.stack import Stack, StackError, _ready


def test_one_stack_per_data_dir(tmp_path) -> None:
    first = Stack.on_free_ports(tmp_path / "data")
    first.lock()
    second = Stack.on_free_ports(tmp_path / "data")
    with pytest.raises(StackError) as err:
        second.start(timeout=5)
    assert f"data dir {(tmp_path / 'data').resolve()} is in use by another Callgauge stack (pid {os.getpid()})" \
        in str(err.value)
    assert not second.children and not (tmp_path / "data" / "logs").exists()  # nothing started
    first.unlock()
    second.lock()  # free again once the first let go
    second.unlock()


def test_a_taken_port_is_named_with_its_holder_before_anything_starts(tmp_path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert not port_free("127.0.0.1", port)
        assert [h.pid for h in holders(port)] == [os.getpid()]
        stack = Stack.on_free_ports(tmp_path / "data")
        stack.settings.gateway_port = port
        with pytest.raises(StackError) as err:
            stack.start(timeout=5)
        text = str(err.value)
        assert f"port {port}/TCP on 127.0.0.1 for the gateway, the REST API (CALLGAUGE_GATEWAY_PORT) is in use, " \
               f"held by pid {os.getpid()} (" in text, text
        assert "nothing was started" in text
        assert not stack.children and not (tmp_path / "data" / "logs").exists()
        stack.lock()  # the failed start left the data dir unlocked
        stack.unlock()
    assert port_free("127.0.0.1", port)


def test_a_udp_port_taken_is_named_too(tmp_path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        stack = Stack.on_free_ports(tmp_path / "data")
        stack.settings.responder_port = port
        with pytest.raises(StackError, match=rf"port {port}/UDP on 127.0.0.1 for the SIP responder .* held by pid "
                                             rf"{os.getpid()} "):
            stack.check_ports()


class _Readyz(http.server.BaseHTTPRequestHandler):
    token = ""

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        if self.token:
            self.send_header("X-Callgauge-Instance", self.token)
        self.end_headers()
        self.wfile.write(b"ready\n")

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize("answered", ["", "someone-elses-token"])
def test_readiness_from_another_process_is_a_clash_not_a_success(answered: str) -> None:
    handler = type("H", (_Readyz,), {"token": answered})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/readyz"
        with pytest.raises(StackError, match=rf"port {server.server_port}/TCP of .* is answered by another "
                                             rf"process \(pid {os.getpid()} "):
            _ready(url, "our-token")
        assert _ready(url) is True  # without a token (nothing to compare): plain readiness
    finally:
        server.shutdown()
        server.server_close()


def test_readiness_with_our_token() -> None:
    handler = type("H", (_Readyz,), {"token": "our-token"})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert _ready(f"http://127.0.0.1:{server.server_port}/readyz", "our-token") is True
    finally:
        server.shutdown()
        server.server_close()


def test_two_parts_of_one_stack_on_the_same_port_are_refused(tmp_path) -> None:
    stack = Stack.on_free_ports(tmp_path / "data")
    stack.settings.media_http_port = stack.settings.gateway_port
    with pytest.raises(StackError, match=rf"port {stack.settings.gateway_port}/TCP is set for both media-engine "
                                         rf"health/metrics \(CALLGAUGE_MEDIA_HTTP_PORT\) and the gateway"):
        stack.check_ports()
