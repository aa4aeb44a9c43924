"""Who holds a local port (Linux /proc), and whether a port is free: `callgauge up` checks every
port it needs before it starts anything, and names the holder of a taken one.

A socket's owner is found the way ss(8) does: the socket's inode from /proc/net/{tcp,tcp6,udp,udp6}
(TCP: listening sockets only), then the process with an fd pointing at ``socket:[inode]``. Processes
of other users are only visible to root; the holder is then unknown (None), not guessed."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_TCP_LISTEN = "0A"


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str  # its command line, shortened
    data_dir: str = ""  # CALLGAUGE_DATA_DIR of a Callgauge process (when its environment is readable)

    def describe(self) -> str:
        text = f"pid {self.pid} ({self.command})"
        if self.data_dir:
            text += f", a Callgauge stack with data dir {self.data_dir}"
        return text


def port_free(host: str, port: int, kind: int = socket.SOCK_STREAM) -> bool:
    """Whether ``port`` can be bound on ``host`` the way a server binds it (TCP with SO_REUSEADDR,
    so a connection in TIME_WAIT does not count as taken; a listening socket does)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _inodes(port: int, kind: int) -> set[str]:
    proto = "tcp" if kind == socket.SOCK_STREAM else "udp"
    found: set[str] = set()
    for name in (proto, proto + "6"):
        try:
            lines = (_PROC / "net" / name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) < 10:
                continue
            try:
                local_port = int(f[1].rsplit(":", 1)[1], 16)
            except (IndexError, ValueError):
                continue
            if local_port != port or (proto == "tcp" and f[3] != _TCP_LISTEN):
                continue
            if f[9] != "0":
                found.add(f[9])
    return found


def _command(pid: int) -> str:
    try:
        argv = (_PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in argv if a]
    if len(words) >= 4 and words[0].endswith("setpriv") and "--" in words:  # our children run under setpriv
        words = words[words.index("--") + 1:]
    text = " ".join(Path(words[0]).name if i == 0 else w for i, w in enumerate(words)) if words else "?"
    return text if len(text) <= 120 else text[:117] + "..."


def _data_dir(pid: int) -> str:
    try:
        env = (_PROC / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return ""
    for item in env:
        if item.startswith(b"CALLGAUGE_DATA_DIR="):
            return item.split(b"=", 1)[1].decode(errors="replace")
    return ""


def holders(port: int, kind: int = socket.SOCK_STREAM) -> list[Holder]:
    """The processes holding ``port`` (TCP: listening; UDP: bound), as far as /proc lets us see."""
    inodes = _inodes(port, kind)
    if not inodes:
        return []
    wanted = {f"socket:[{i}]" for i in inodes}
    out = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if str(fd.readlink()) in wanted:
                    pid = int(entry.name)
                    out.append(Holder(pid, _command(pid), _data_dir(pid)))
                    break
            except OSError:
                continue
    return sorted(out, key=lambda h: h.pid)


def holder_pids(port: int, kind: int = socket.SOCK_STREAM) -> set[int]:
    return {h.pid for h in holders(port, kind)}
