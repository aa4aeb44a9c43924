"""Engine errors as short reasons a person can act on (pure: no pjsua2, no I/O).

pjsua2 raises ``pj.Error`` with a title naming the C call (``pjsua_call_make_call(acc.getId(),
&pj_dst_uri, …)``), pjlib's message with its symbol (``gethostbyname() has returned error
(PJ_ERESOLVE)``) and a status number; its callbacks report local failures as a SIP code whose reason
is that same message (``502 gethostbyname() has returned error (PJ_ERESOLVE)``, ``503 Connection
refused``). SIPp prints its own (``Unknown remote host 'x'.``). None of that belongs in what a user
reads: :func:`short_reason` maps what is known to a short sentence naming the host, port and
transport concerned ("cannot resolve host 'pbx.example.invalid'"), and strips the rest down to the
message itself. The full internal text goes to the engine's log (the caller logs it).
"""

from __future__ import annotations

import re

from callgauge_platform.destinations import sip_target

PJ_ERRNO_START_STATUS = 70_000
PJ_ERRNO_START_SYS = 120_000
PJ_ERESOLVE = PJ_ERRNO_START_STATUS + 18
PJ_ETIMEDOUT = PJ_ERRNO_START_STATUS + 9
PJ_ETOOMANY = PJ_ERRNO_START_STATUS + 10

_SYMBOL = re.compile(r"\s*\((?:PJ|PJSIP|PJLIB_UTIL|PJMEDIA|PJSUA|PJNATH)_[A-Z0-9_]+\)\s*$")
_STATUS = re.compile(r"\s*\(status[ =]\d+\)\s*$")
_SYMBOL_NAME = re.compile(r"\(((?:PJ|PJSIP|PJLIB_UTIL|PJMEDIA|PJSUA|PJNATH)_[A-Z0-9_]+)\)")
_SIPP_HOST = re.compile(r"Unknown remote host '([^']*)'")

# errno values (Linux) pjlib reports as PJ_ERRNO_START_SYS + errno, and their strerror texts
_ERRNO = {1: "EPERM", 13: "EACCES", 22: "EINVAL", 101: "ENETUNREACH", 110: "ETIMEDOUT", 111: "ECONNREFUSED",
          113: "EHOSTUNREACH", 104: "ECONNRESET", 99: "EADDRNOTAVAIL"}
_STRERROR = {"operation not permitted": "EPERM", "permission denied": "EACCES", "invalid argument": "EINVAL",
             "network is unreachable": "ENETUNREACH", "connection timed out": "ETIMEDOUT",
             "connection refused": "ECONNREFUSED", "no route to host": "EHOSTUNREACH",
             "connection reset by peer": "ECONNRESET", "cannot assign requested address": "EADDRNOTAVAIL"}
_DNS = ("PJ_ERESOLVE", "PJLIB_UTIL_EDNSNOANSWERREC", "PJLIB_UTIL_EDNS_NXDOMAIN", "PJLIB_UTIL_EDNS_SERVFAIL",
        "PJLIB_UTIL_EDNSNOWORKINGNS", "PJLIB_UTIL_EDNS_REFUSED", "PJLIB_UTIL_EDNSNONS")


class UserError(RuntimeError):
    """An engine error whose message is written for the user (it becomes the run's error as is)."""


def run_error(exc: BaseException) -> str:
    """The run's error for an exception that ended its execution: messages written for users
    (:class:`UserError`, and the ValueError/LookupError the engine raises about a run's spec, such as
    a pool it did not resolve, not a KeyError/IndexError) as they are; anything else as an internal
    error (the traceback is in the engine's log)."""
    written = isinstance(exc, (UserError, ValueError, LookupError)) and not isinstance(exc, (KeyError, IndexError))
    if written and str(exc):
        return str(exc)
    return f"internal error in the media engine ({type(exc).__name__}; details in its log)"


def internal_error(exc: BaseException, what: str = "the media engine") -> str:
    """What a user reads about an unexpected exception: its type, and where the details are (the
    caller logs the exception itself)."""
    return f"internal error in {what} ({type(exc).__name__}; details in the media engine's log)"


def where_of(uri: str, transport: str = "") -> tuple[str, int, str]:
    """(host, port, transport) a SIP URI (or ``host:port``) points at; port 0 when unknown."""
    text = (uri or "").strip().strip("<>")
    if not re.match(r"(?i)^sips?:", text):
        text = "sip:" + text
    target = sip_target(text)
    t = (transport or "").lower()
    m = re.search(r"(?i);transport=(\w+)", text)
    if m:
        t = m.group(1).lower()
    elif text[:5].lower() == "sips:":
        t = "tls"  # a sips: URI is reached over TLS only
    if target is None:
        return "", 0, t or "udp"
    return target.host, target.port, t or "udp"


def _symbol(text: str, status: int) -> str:
    m = _SYMBOL_NAME.search(text or "")
    if m:
        return m.group(1)
    if status == PJ_ERESOLVE:
        return "PJ_ERESOLVE"
    if status > PJ_ERRNO_START_SYS and status - PJ_ERRNO_START_SYS in _ERRNO:
        return _ERRNO[status - PJ_ERRNO_START_SYS]
    plain = _STATUS.sub("", text or "").strip().rstrip(".").lower()
    return _STRERROR.get(plain, "")


def is_internal(text: str) -> bool:
    """Whether a reason text is the SIP stack's own error message rather than a SIP reason phrase."""
    return bool(_symbol(text, 0)) or "gethostbyname" in (text or "")


def plain_message(text: str) -> str:
    """pjlib's message without its symbol and status: ``Invalid URI (PJSIP_EINVALIDURI)`` -> ``Invalid URI``."""
    return _STATUS.sub("", _SYMBOL.sub("", _STATUS.sub("", text or ""))).strip()


def short_reason(text: str, status: int = 0, *, host: str = "", port: int = 0, transport: str = "") -> str:
    """A short reason for an engine error (``text``: pjlib's message, or a reason pjsua reported;
    ``status``: the pj status when there is one), naming ``host``/``port``/``transport`` where
    they help. Unknown errors give their message without the C call, symbol and status."""
    sym = _symbol(text, status)
    t = (transport or "udp").upper()
    at = f"{host}:{port}" if host and port else host or "the destination"
    if sym in _DNS or "gethostbyname" in (text or ""):
        return f"cannot resolve host '{host}'" if host else "cannot resolve the host name"
    if sym == "ECONNREFUSED":
        return f"connection refused by {at} ({t})"
    if sym in ("ETIMEDOUT", "PJ_ETIMEDOUT"):
        return f"connection to {at} ({t}) timed out"
    if sym == "ENETUNREACH":
        return f"network unreachable: {at}"
    if sym == "EHOSTUNREACH":
        return f"no route to host {host or at}"
    if sym == "ECONNRESET":
        return f"connection reset by {at} ({t})"
    if sym in ("EPERM", "EACCES"):
        return f"sending to {at} is not permitted on this machine (a firewall?)"
    if sym in ("EINVAL", "EADDRNOTAVAIL"):
        return f"cannot send to {at} from this media engine's SIP address"
    if sym in ("PJSIP_EUNSUPTRANSPORT", "PJSIP_ETPNOTSUITABLE", "PJSIP_ETPNOTAVAIL"):
        return (f"no {t} transport for {at} in this media engine (the URI's ;transport= and the action's "
                f"transport must agree: udp, tcp or tls)")
    if sym in ("PJSIP_EINVALIDURI", "PJSIP_EINVALIDREQURI", "PJSIP_EINVALIDSCHEME", "PJSIP_EURITOOLONG"):
        return "invalid SIP URI"
    if sym == "PJ_ETOOMANY" or status == PJ_ETOOMANY:
        return "too many calls in one media worker"
    if sym.startswith("PJSIP_TLS_"):
        return f"TLS with {at} failed: {plain_message(text)}"
    message = plain_message(text)
    return message[:1].lower() + message[1:] if message else "unknown error"


def sipp_reason(stderr: str, returncode: int | None, *, fallback: bool = True) -> str:
    """What SIPp's error output means for a user (``Unknown remote host 'x'.`` -> cannot resolve
    host 'x'); its raw text stays in the engine's log. An error not known here gives a sentence
    with the exit code, or "" without ``fallback``."""
    text = stderr or ""
    m = _SIPP_HOST.search(text)
    if m:
        return f"cannot resolve host '{m.group(1)}'"
    low = text.lower()
    if "address already in use" in low or "unable to bind" in low:
        return "SIPp could not bind its local port (in use)"
    if "permission denied" in low:
        return "SIPp was not permitted to open its sockets"
    if "connection refused" in low:
        return "the far end refused SIPp's connection"
    if not fallback:
        return ""
    return f"SIPp stopped with exit code {returncode} before placing calls (details in the media engine's log)"
