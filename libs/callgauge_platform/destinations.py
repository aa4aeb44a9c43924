"""Where SIP/RTP may be sent: the operator's allow-list and deny-list of networks and ports for dial
destinations and registrars (SSRF guard: the media engine must not become a port scanner of the
networks it sits in, nor reach cloud metadata services).

Rules, for each address a destination names or resolves to:
- an address in CALLGAUGE_DIAL_ALLOW_CIDRS is allowed;
- else one in CALLGAUGE_DIAL_DENY_CIDRS is refused (default: loopback, "this host", link-local —
  which holds 169.254.169.254 — multicast, broadcast and the cloud metadata addresses outside
  link-local: Alibaba's 100.100.100.200, AWS's fd00:ec2::254);
- else it is allowed. To allow only some networks, deny 0.0.0.0/0 and ::/0 and allow those.
- the port must be in CALLGAUGE_DIAL_ALLOW_PORTS (default 1024-65535) and not in
  CALLGAUGE_DIAL_DENY_PORTS.
An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is judged as its IPv4 address. Host names in
CALLGAUGE_DIAL_DENY_HOSTS (localhost, metadata names) are refused by name.

The runs service checks what it can without I/O when a test or run is created (address literals,
names, ports: a 422 naming the field); the media engine checks again, on every address the names
resolve to, before it dials (a name may resolve elsewhere later).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_DENY_CIDRS = ("127.0.0.0/8,::1/128,0.0.0.0/8,::/128,169.254.0.0/16,fe80::/10,224.0.0.0/4,ff00::/8,"
                      "255.255.255.255/32,100.100.100.200/32,fd00:ec2::254/128")
DEFAULT_DENY_HOSTS = "localhost,localhost.localdomain,metadata,metadata.google.internal,instance-data"
LOOPBACK_CIDRS = "127.0.0.0/8,::1/128"
DEFAULT_ALLOW_PORTS = "1024-65535"

_URI = re.compile(r"^\s*<?\s*(?P<scheme>sips?):(?:(?P<user>[^@]*)@)?(?P<host>\[[^\]]*\]|[^:;?>\s]*)"
                  r"(?::(?P<port>[^;?>\s]*))?(?P<rest>[^>]*)>?\s*$", re.IGNORECASE)


def parse_cidrs(text: str) -> tuple[IPNetwork, ...]:
    """Comma-separated CIDRs (or single addresses); ValueError names the bad one."""
    out = []
    for part in (p.strip() for p in (text or "").split(",")):
        if part:
            try:
                out.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"{part!r} is not a network (CIDR) or an address") from None
    return tuple(out)


def parse_ports(text: str) -> tuple[tuple[int, int], ...]:
    """Comma-separated ports and ranges (``5060,5080-5090``)."""
    out = []
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise ValueError(f"{part!r} is not a port or a port range") from None
        if not (0 <= a <= b <= 65535):
            raise ValueError(f"{part!r} is not a port range within 0-65535")
        out.append((a, b))
    return tuple(out)


def plain(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address as its IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class SipHost:
    host: str  # a name or an address (IPv6 without brackets)
    port: int


def sip_uri_problem(uri: str) -> str | None:
    """What makes ``uri`` unfit to dial, beyond its syntax: header fields (``?X-Foo=…``, which
    become SIP headers) and a host that starts with '-' (an option to a command line)."""
    text = (uri or "").strip()
    if "?" in text:
        return "a SIP URI with header fields (?name=value) is not accepted"
    m = _URI.match(text)
    if m and m.group("host").startswith("-"):
        return "a host cannot start with '-'"
    return None


def sip_target(uri: str) -> SipHost | None:
    """The host and port a SIP URI sends to (5060, 5061 for sips), or None when ``uri`` is not one
    (e.g. a bare user or number dialled through a registrar)."""
    m = _URI.match(uri or "")
    if not m or not m.group("host"):
        return None
    host = m.group("host").strip("[]")
    port_text = m.group("port") or ""
    try:
        port = int(port_text) if port_text else (5061 if m.group("scheme").lower() == "sips" else 5060)
    except ValueError:
        return None
    return SipHost(host, port)


def literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


@dataclass(frozen=True)
class DialPolicy:
    allow: tuple[IPNetwork, ...] = ()
    deny: tuple[IPNetwork, ...] = parse_cidrs(DEFAULT_DENY_CIDRS)
    deny_hosts: frozenset[str] = frozenset(DEFAULT_DENY_HOSTS.split(","))
    allow_ports: tuple[tuple[int, int], ...] = parse_ports(DEFAULT_ALLOW_PORTS)
    deny_ports: tuple[tuple[int, int], ...] = ()

    @classmethod
    def from_settings(cls, settings) -> DialPolicy:
        return cls(allow=parse_cidrs(settings.dial_allow_cidrs), deny=parse_cidrs(settings.dial_deny_cidrs),
                   deny_hosts=frozenset(h.strip().lower().rstrip(".") for h in settings.dial_deny_hosts.split(",")
                                        if h.strip()),
                   allow_ports=parse_ports(settings.dial_allow_ports), deny_ports=parse_ports(settings.dial_deny_ports))

    def address_refusal(self, address: IPAddress) -> str | None:
        a = plain(address)
        if any(a in n for n in self.allow if n.version == a.version):
            return None
        for n in self.deny:
            if n.version == a.version and a in n:
                return f"{a} is in a denied network ({n}; CALLGAUGE_DIAL_DENY_CIDRS)"
        return None

    def port_refusal(self, port: int) -> str | None:
        if not any(lo <= port <= hi for lo, hi in self.allow_ports):
            return f"port {port} is not an allowed destination port (CALLGAUGE_DIAL_ALLOW_PORTS)"
        if any(lo <= port <= hi for lo, hi in self.deny_ports):
            return f"port {port} is a denied destination port (CALLGAUGE_DIAL_DENY_PORTS)"
        return None

    def static_refusal(self, host: str, port: int) -> str | None:
        """What can be judged without resolving: the port, an address literal, a denied name."""
        if host.startswith("-"):
            return "a host cannot start with '-'"
        refusal = self.port_refusal(port)
        if refusal:
            return refusal
        address = literal(host)
        if address is not None:
            return self.address_refusal(address)
        if host.lower().rstrip(".") in self.deny_hosts:
            return f"host {host!r} is denied (CALLGAUGE_DIAL_DENY_HOSTS)"
        return None

    async def resolved_refusal(self, host: str, port: int, timeout: float = 5.0) -> str | None:
        """``static_refusal``, then every address ``host`` resolves to (a name that does not resolve
        is left to the SIP stack, which reports it as a failed call)."""
        refusal = self.static_refusal(host, port)
        if refusal or literal(host) is not None:
            return refusal
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM), timeout)
        except (OSError, asyncio.TimeoutError):
            return None
        for info in infos:
            refusal = self.address_refusal(ipaddress.ip_address(info[4][0].split("%")[0]))
            if refusal:
                return f"{host} resolves to {info[4][0]}: {refusal}"
        return None

    async def first_refusal(self, targets: Iterable[SipHost]) -> str | None:
        for t in targets:
            refusal = await self.resolved_refusal(t.host, t.port)
            if refusal:
                return f"{t.host}:{t.port}: {refusal}"
        return None
