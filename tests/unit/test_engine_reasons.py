"""Engine errors shown to users are short reasons a person can act on (issue 18 item 4); pjlib's
C call, symbol and status, SIPp's raw output and Python exception names stay in the logs."""

from __future__ import annotations

import pytest

from callgauge_media.domain.reasons import (
    PJ_ERESOLVE,
    UserError,
    internal_error,
    is_internal,
    run_error,
    short_reason,
    sipp_reason,
    where_of,
)


@pytest.mark.parametrize(("text", "status", "where", "expected"), [
    ("gethostbyname() has returned error (PJ_ERESOLVE)", PJ_ERESOLVE, "sip:echo@pbx.example.invalid:5060",
     "cannot resolve host 'pbx.example.invalid'"),
    ("DNS \"Name Error\" (PJLIB_UTIL_EDNS_NXDOMAIN)", 0, "pbx.example.invalid", "cannot resolve host 'pbx.example.invalid'"),
    ("Connection refused", 120111, "sip:x@10.0.0.5:5080;transport=tcp", "connection refused by 10.0.0.5:5080 (TCP)"),
    ("Connection refused", 0, "10.0.0.5:5080", "connection refused by 10.0.0.5:5080 (UDP)"),
    ("No route to host", 120113, "sip:x@10.9.9.9", "no route to host 10.9.9.9"),
    ("Network is unreachable", 120101, "sip:x@10.9.9.9:5060", "network unreachable: 10.9.9.9:5060"),
    ("Invalid argument", 120022, "sip:x@192.0.2.1:5060", "cannot send to 192.0.2.1:5060 from this media engine's SIP address"),
    ("Unsupported transport (PJSIP_EUNSUPTRANSPORT)", 171060, "sip:x@h.example;transport=tcp",
     "no TCP transport for h.example:5060 in this media engine (the URI's ;transport= and the action's "
     "transport must agree: udp, tcp or tls)"),
    ("Invalid URI (PJSIP_EINVALIDURI)", 0, "", "invalid SIP URI"),
    ("Object is busy (PJSIP_EBUSY)", 171001, "", "object is busy"),
])
def test_short_reasons(text: str, status: int, where: str, expected: str) -> None:
    host, port, transport = where_of(where) if where else ("", 0, "")
    reason = short_reason(text, status, host=host, port=port, transport=transport)
    assert reason == expected
    assert "PJ" not in reason and "status" not in reason and "(" not in reason.split(" (")[0]


def test_internal_texts_are_told_from_sip_reason_phrases() -> None:
    for text in ("gethostbyname() has returned error (PJ_ERESOLVE)", "Connection refused",
                 "Transaction has been destroyed (PJSIP_ETSXDESTROYED)"):
        assert is_internal(text), text
    for text in ("Service Unavailable", "Busy Here", "Request Terminated", "OK", ""):
        assert not is_internal(text), text


def test_sipp_errors() -> None:
    err = ("Resolving remote host 'nohost.invalid'... 2026-12-05\t18:38:49.509577\t1796495929.509577: "
           "Unknown remote host 'nohost.invalid'.\nUse 'sipp -h' for details")
    assert sipp_reason(err, 255) == "cannot resolve host 'nohost.invalid'"
    assert sipp_reason("bind failed: Address already in use", 255) == "SIPp could not bind its local port (in use)"
    assert sipp_reason("something new", 255, fallback=False) == ""
    assert sipp_reason("something new", 255) == ("SIPp stopped with exit code 255 before placing calls "
                                                 "(details in the media engine's log)")


def test_run_errors() -> None:
    assert run_error(UserError("cannot resolve host 'x'")) == "cannot resolve host 'x'"
    assert run_error(ValueError("target_pool 'p' was not resolved for this run")) == \
        "target_pool 'p' was not resolved for this run"
    assert run_error(KeyError("calls")) == "internal error in the media engine (KeyError; details in its log)"
    text = run_error(ZeroDivisionError("division by zero"))
    assert text == "internal error in the media engine (ZeroDivisionError; details in its log)"


def test_internal_errors_name_the_type_and_the_log_not_the_message() -> None:
    text = internal_error(OSError(2, "No such file or directory: '/srv/x/rec.wav'"), "the audio scorer")
    assert text == "internal error in the audio scorer (FileNotFoundError; details in the media engine's log)"
