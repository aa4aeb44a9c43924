"""Kamailio from Debian as registrar + digest-auth proxy, started by callgauge_platform.kamailio,
spoken to over raw UDP (RFC 2617 digest computed here), so the policy of infra/kamailio/kamailio.cfg
is checked without the media engine."""

from __future__ import annotations

import hashlib
import re
import socket
import uuid
from pathlib import Path

import pytest

from callgauge_platform.kamailio import Kamailio, KamailioError

pytestmark = pytest.mark.kamailio


@pytest.fixture
def kamailio(tmp_path: Path):
    k = Kamailio.on_free_port(tmp_path / "kamailio", {"alice": "alice-secret", "bob": "b:o\\b"})
    k.start()
    try:
        yield k
    finally:
        assert k.stop() == 0, k.log_tail()


class RawUa:
    def __init__(self, k: Kamailio) -> None:
        self.k = k
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5)
        self.port = self.sock.getsockname()[1]
        self.call_id = uuid.uuid4().hex
        self.cseq = 0

    def close(self) -> None:
        self.sock.close()

    def request(self, method: str, ruri: str, user: str, extra: str = "", to_user: str | None = None) -> str:
        self.cseq += 1
        to_user = to_user or user
        d = self.k.domain
        msg = (f"{method} {ruri} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};rport;branch=z9hG4bK{uuid.uuid4().hex}\r\n"
               "Max-Forwards: 70\r\n"
               f"From: <sip:{user}@{d}>;tag={self.call_id[:8]}\r\n"
               f"To: <sip:{to_user}@{d}>\r\n"
               f"Call-ID: {self.call_id}\r\n"
               f"CSeq: {self.cseq} {method}\r\n"
               f"Contact: <sip:{user}@127.0.0.1:{self.port}>\r\n"
               f"{extra}"
               "Content-Length: 0\r\n\r\n")
        self.sock.sendto(msg.encode(), (self.k.host, self.k.port))
        while True:
            data = self.sock.recv(65535).decode()
            if not data.startswith("SIP/2.0 100"):
                return data


def _digest(challenge: str, header: str, method: str, uri: str, user: str, password: str) -> str:
    realm = re.search(r'realm="([^"]+)"', challenge).group(1)
    nonce = re.search(r'nonce="([^"]+)"', challenge).group(1)
    ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    cnonce, nc = "0a4f113b", "00000001"
    resp = hashlib.md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}".encode()).hexdigest()
    return (f'{header}: Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{resp}", algorithm=MD5, qop=auth, nc={nc}, cnonce="{cnonce}"\r\n')


def _code(resp: str) -> int:
    return int(resp.split(" ", 2)[1])


def test_register_needs_digest_auth(kamailio: Kamailio) -> None:
    ua = RawUa(kamailio)
    try:
        ruri = f"sip:{kamailio.domain}"
        first = ua.request("REGISTER", ruri, "alice", "Expires: 60\r\n")
        assert _code(first) == 401, first
        challenge = re.search(r"WWW-Authenticate: (.*)\r\n", first).group(1)
        assert 'realm="127.0.0.1"' in challenge and "qop" in challenge
        ok = ua.request("REGISTER", ruri, "alice", "Expires: 60\r\n" + _digest(
            challenge, "Authorization", "REGISTER", ruri, "alice", "alice-secret"))
        assert _code(ok) == 200, ok
        assert re.search(r"Contact: .*expires=60", ok), ok
        wrong = ua.request("REGISTER", ruri, "alice", "Expires: 60\r\n" + _digest(
            challenge, "Authorization", "REGISTER", ruri, "alice", "not-the-password"))
        assert _code(wrong) == 401, wrong
    finally:
        ua.close()


def test_password_with_colon_and_backslash(kamailio: Kamailio) -> None:
    ua = RawUa(kamailio)
    try:
        ruri = f"sip:{kamailio.domain}"
        challenge = re.search(r"WWW-Authenticate: (.*)\r\n", ua.request("REGISTER", ruri, "bob")).group(1)
        ok = ua.request("REGISTER", ruri, "bob", _digest(challenge, "Authorization", "REGISTER", ruri, "bob", "b:o\\b"))
        assert _code(ok) == 200, ok
    finally:
        ua.close()


def test_unknown_user_and_foreign_credentials_are_forbidden(kamailio: Kamailio) -> None:
    ua = RawUa(kamailio)
    try:
        ruri = f"sip:{kamailio.domain}"
        challenge = re.search(r"WWW-Authenticate: (.*)\r\n", ua.request("REGISTER", ruri, "mallory")).group(1)
        unknown = ua.request("REGISTER", ruri, "mallory",
                             _digest(challenge, "Authorization", "REGISTER", ruri, "mallory", "x"))
        assert _code(unknown) == 403, unknown
        # alice's valid credentials used to register bob
        foreign = ua.request("REGISTER", ruri, "bob",
                             _digest(challenge, "Authorization", "REGISTER", ruri, "alice", "alice-secret"))
        assert _code(foreign) == 403, foreign
    finally:
        ua.close()


def test_invite_is_challenged_then_routed_to_the_location(kamailio: Kamailio) -> None:
    ua = RawUa(kamailio)
    try:
        ruri = f"sip:bob@{kamailio.domain}"
        first = ua.request("INVITE", ruri, "alice", to_user="bob")
        assert _code(first) == 407, first
        challenge = re.search(r"Proxy-Authenticate: (.*)\r\n", first).group(1)
        # ACK for the 407 is absorbed by the proxy's transaction; the authenticated retry goes on
        nobody = ua.request("INVITE", ruri, "alice", _digest(
            challenge, "Proxy-Authorization", "INVITE", ruri, "alice", "alice-secret"), to_user="bob")
        assert _code(nobody) == 404, nobody  # bob is not registered
    finally:
        ua.close()


def test_a_config_that_does_not_load_fails_start_with_its_log(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cfg"
    bad.write_text('#!KAMAILIO\nloadmodule "no_such_module.so"\nrequest_route { exit; }\n')
    k = Kamailio.on_free_port(tmp_path / "bad", {"x": "y"}, config=bad)
    with pytest.raises(KamailioError, match="no_such_module"):
        k.start(timeout=10)
    assert k.proc is None
