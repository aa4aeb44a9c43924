"""User agents of register / wait_for_calls actions and the SIP accounts of a media worker:
registration with a registrar (REGISTER, refreshes, un-REGISTER or a binding kept), the answers
to incoming calls, and the cached non-registering accounts of callers (digest identity, outbound
proxy, TLS, SRTP). A mixin of :class:`~callgauge_media.adapters.pjsua.caller.CallerAgent`."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from typing import TYPE_CHECKING

import pjsua2 as pj
from callgauge_platform.recordings import safe_name

from callgauge_media.domain.jobs import (
    SRTP_KEYINGS,
    SRTP_MODES,
    TRANSPORTS,
    CallJob,
    SipAccount,
    UaJob,
    call_transport,
    keying_refusal,
    offered_srtp_keying,
    pick_codec_id,
)
from callgauge_media.domain.measurement import add_ladder, ladder_entry
from callgauge_media.domain.reasons import UserError, is_internal, short_reason, where_of
from callgauge_media.adapters.pjsua.message_log import call_id_of
from callgauge_media.adapters.pjsua.call_state import CallRun, CallerCall
from callgauge_media.adapters.pjsua.endpoint import (
    HANGUP_GRACE_S,
    PLAIN_KEYINGS,
    UNREGISTER_WAIT_S,
    srtp_config,
    user_error,
    user_reason,
)

if TYPE_CHECKING:
    from callgauge_media.adapters.pjsua.caller import CallerAgent

log = logging.getLogger(__name__)

# PJSUA_MAX_ACC of our build (third_party/pjproject/config_site.h): one account more is an assert()
# in pjsua_acc_add that aborts the process, so the agent counts its accounts (the local one, UA
# jobs, cached caller identities)
MAX_ACCOUNTS = 64
PJSIP_EBUSY = 171001  # pjsip_regc_send: "regc has another transaction pending"
UA_LADDER_MAX = 10  # responses to a UA's REGISTERs kept for its measurement
CALLEE_SETUP_S = 40.0  # an incoming call not confirmed (ACK) this long after answering is dropped
FOREVER_MS = 24 * 3600 * 1000
ANSWER_KEYINGS = ("sdes", "dtls")  # the SRTP keyings of an answering UA's account (see submit_ua)


class UaAccount(pj.Account):
    """An account of a UA job: forwards registration state and incoming calls to the agent."""

    def __init__(self, agent: CallerAgent, ua: UserAgent) -> None:
        super().__init__()
        self._agent = agent
        self._ua = ua

    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        try:
            self._agent._on_reg_state(self._ua, prm)
        except BaseException:  # noqa: BLE001
            log.exception("onRegState")

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        try:
            self._agent._on_incoming(self._ua, prm)
        except BaseException:  # noqa: BLE001
            log.exception("onIncomingCall")


class UserAgent:
    """A UA job's state in the worker."""

    def __init__(self, token: int, job: UaJob) -> None:
        self.token = token
        self.job = job
        self.account: UaAccount | None = None
        self.t0 = time.monotonic()  # the first REGISTER goes out inside Account.create, right after
        self.started_wall = time.time()
        self.t_registered: float | None = None  # first 2xx to a REGISTER (after any digest challenge)
        self.sip_call_id = ""
        self.reg_reported = False
        self.registered = False
        self.registrations = 0  # successful REGISTER transactions (the first and every refresh)
        self.refresh_failures = 0
        self.expires = 0
        self.last_code = 0
        self.last_reason = ""
        self.closing = False
        self.close_at = 0.0
        self.unreg_sent = False
        self.unreg_busy = False  # the un-REGISTER met a pending refresh (PJSIP_EBUSY): try again
        self.unreg_code: int | None = None
        self.unreg_reason = ""
        self.kept = False  # keep_registered: a last refresh went out and the account went without un-REGISTER
        self.answered = 0
        self.rejected = 0
        self.seq = 0
        self.ladder: list[tuple] = []  # without the message log: the responses onRegState showed
        self.reg_held = False  # sip_call_id is held in the message log (until the UA ends)

    def report(self) -> dict:
        return {
            "registered": self.registered, "registrations": self.registrations,
            "refresh_failures": self.refresh_failures, "expires": self.expires,
            "code": self.last_code, "reason": self.last_reason,
            "unregistered": self.unreg_code is not None and 200 <= self.unreg_code < 300,
            "unregister_code": self.unreg_code or 0, "unregister_reason": self.unreg_reason,
            "kept": self.kept,
            "register_time_ms": (round((self.t_registered - self.t0) * 1000.0, 3)
                                 if self.t_registered is not None else 0.0),
            "sip_call_id": self.sip_call_id, "started_wall": self.started_wall, "ended_wall": time.time(),
            "ladder": list(self.ladder),
            "answered": self.answered, "rejected": self.rejected,
        }


class Registration:
    """The user agents and accounts of a :class:`~callgauge_media.adapters.pjsua.caller.CallerAgent`."""

    # ---- UA jobs (register / wait_for_calls)
    def submit_ua(self, token: int, job: UaJob) -> None:
        """Create the UA's account (which sends the first REGISTER). Exactly one
        ("ua_event", token, {"event": "registered" | "ready" | "failed", ...}) follows, later
        ("ua_call", ...) per answered call, and ("ua_done", token, report) after :meth:`close_ua`."""
        ua = UserAgent(token, job)
        if not self._started:
            self._ua_failed(ua, 0, "media worker not started", done=True)
            return
        a = job.account
        if a.transport not in TRANSPORTS:
            self._ua_failed(ua, 0, f"unsupported transport {a.transport!r} (udp, tcp, tls)", done=True)
            return
        if (job.srtp or "off") not in SRTP_MODES:
            self._ua_failed(ua, 0, f"unknown srtp mode {job.srtp!r} ({', '.join(SRTP_MODES)})", done=True)
            return
        if (job.srtp_keying or "sdes") not in SRTP_KEYINGS:
            self._ua_failed(ua, 0, f"unknown srtp_keying {job.srtp_keying!r} ({', '.join(SRTP_KEYINGS)})",
                            done=True)
            return
        if a.transport == "tcp" and not self._endpoint.ensure_tcp():
            self._ua_failed(ua, 0, "no TCP transport in this media worker", done=True)
            return
        if not self._make_account_room():
            self._ua_failed(ua, 0, f"this media worker has no room for another SIP user (pjsua allows "
                                   f"{MAX_ACCOUNTS} accounts per process)", done=True)
            return
        try:
            # an answering UA's account with SRTP takes both keyings: pjsua 2.15.1 crashes (use after
            # free in pjsua_call_on_incoming) when an offer fails the account's SRTP keying after pjsua2
            # gave the call to onIncomingCall; _on_incoming refuses an offer of the other keying itself
            srtp = job.srtp or "off"
            keyings = ANSWER_KEYINGS if srtp != "off" else PLAIN_KEYINGS
            acfg = self._endpoint.account_config(a, register=job.register, regexpire=job.regexpire, srtp=srtp,
                                                 srtp_keyings=keyings)
            acc = UaAccount(self, ua)
            ua.account = acc
            self._uas[token] = ua
            if job.answer:
                self._answer_codec = pick_codec_id(self._endpoint.codec_ids, job.codec) if job.codec else None
                self._endpoint.open_codecs(self._answer_codec)
            ua.t0 = time.monotonic()
            ua.started_wall = time.time()
            msgs = self._endpoint.messages
            if msgs is not None:
                msgs.last_register = ""
            self._creating = ua
            try:
                acc.create(acfg, True)  # sends the first REGISTER; onRegState may already fire in here
            finally:
                self._creating = None
            if msgs is not None and job.register and msgs.last_register:
                self._hold_registration(ua, msgs.last_register)
        except Exception as exc:  # noqa: BLE001
            self._uas.pop(token, None)
            self._release_registration(ua)
            ua.account = None
            self._ua_failed(ua, 0, user_error(exc, "account not created", where=job.account.registrar,
                                               transport=job.account.transport), done=True)
            return
        if not job.register and not ua.reg_reported:
            ua.reg_reported = True
            self._emit("ua_event", token, {"event": "ready", "code": 0, "reason": "not registering"})

    def close_ua(self, token: int, reason: str = "the action ended") -> None:
        """Hang up the UA's calls, unregister (or, for a job with ``unregister`` false, keep the
        binding: see :meth:`_shutdown_keeping_binding`); ("ua_done", ...) follows."""
        ua = self._uas.get(token)
        if ua is None or ua.closing:
            return
        ua.closing = True
        ua.close_at = time.monotonic()
        for run in list(self._runs.values()):
            if run.ua is ua and run.hangup_at is None and not run.disconnected:
                self._hangup(run, reason)
        if ua.registered and ua.job.unregister and ua.account is not None:
            self._unregister(ua)
        self._try_close(ua, time.monotonic())

    def _unregister(self, ua: UserAgent) -> None:
        """Send the un-REGISTER; when a refresh is in flight (PJSIP_EBUSY) :meth:`_try_close` tries
        again, since deleting the account then would leave the binding in place."""
        try:
            ua.account.setRegistration(False)
            ua.unreg_sent = True
            ua.unreg_reason = ""
        except pj.Error as exc:
            ua.unreg_busy = int(getattr(exc, "status", 0) or 0) == PJSIP_EBUSY
            ua.unreg_reason = f"un-REGISTER not sent: {user_error(exc, 'un-REGISTER', where=ua.job.account.registrar, transport=ua.job.account.transport)}"

    def _try_close(self, ua: UserAgent, now: float) -> None:
        if ua.unreg_busy and not ua.unreg_sent and ua.account is not None and now - ua.close_at < UNREGISTER_WAIT_S:
            ua.unreg_busy = False
            self._unregister(ua)
        calls_left = any(r.ua is ua for r in self._runs.values()) or any(r.ua is ua for r in self._lingering)
        waiting_unreg = ((ua.unreg_sent and ua.unreg_code is None) or ua.unreg_busy) and now - ua.close_at < UNREGISTER_WAIT_S
        if (calls_left or waiting_unreg) and now - ua.close_at < UNREGISTER_WAIT_S + HANGUP_GRACE_S:
            return
        self._uas.pop(ua.token, None)
        if ua.unreg_sent and ua.unreg_code is None:
            ua.unreg_reason = ua.unreg_reason or f"no answer to the un-REGISTER within {UNREGISTER_WAIT_S:.0f} s"
        acc, ua.account = ua.account, None
        if acc is not None:
            if ua.registered and not ua.job.unregister and not ua.unreg_sent:
                self._shutdown_keeping_binding(ua, acc)
            else:
                try:
                    acc.shutdown()
                except Exception:  # noqa: BLE001
                    log.exception("UA account shutdown")
        if not self._answering():
            self._answer_codec = None
        report = ua.report()
        if self._endpoint.messages is not None and (ua.refresh_failures or not ua.registrations):
            report["ladder"] = self._reg_ladder(ua)[0]  # for its RegistrationMeasurement: it failed
        self._release_registration(ua)
        self._emit("ua_done", ua.token, report)

    def _shutdown_keeping_binding(self, ua: UserAgent, acc: pj.Account) -> None:
        """Delete the account without un-REGISTERing (``keep_registered``).

        pjsua_acc_del always tries an un-REGISTER, but pjsip_regc sends nothing while another
        REGISTER transaction of the same client is pending (PJSIP_EBUSY), and pjsua_acc_del then
        destroys the client anyway. So: a last refresh (``setRegistration(True)``), and the account
        deleted in the same turn, before any answer can arrive. The refresh renews the binding for
        ``regexpire`` seconds; its answer is not seen (the client's callback is gone); the registrar
        drops the binding when it expires. Checked against Kamailio in
        tests/integration/test_media_sip.py."""
        note, status = "", 0
        try:
            acc.setRegistration(True)
        except pj.Error as exc:
            # EBUSY: a refresh is in flight already, which blocks the un-REGISTER just the same
            note, status = user_error(exc, "last refresh", where=ua.job.account.registrar,
                                       transport=ua.job.account.transport), int(getattr(exc, "status", 0) or 0)
        busy = not note or status == PJSIP_EBUSY
        try:
            acc.shutdown()
        except Exception:  # noqa: BLE001
            log.exception("UA account shutdown")
        if busy:
            ua.kept = True
            ua.unreg_reason = (f"binding kept until it expires (a last refresh asked for {ua.job.regexpire} s; "
                               f"no un-REGISTER sent)")
        else:
            ua.unreg_reason = f"refresh not sent ({note}): pjsua sent its un-REGISTER on delete, answer not seen"

    def _answering(self) -> bool:
        return any(ua.job.answer and not ua.closing for ua in self._uas.values())

    def _hold_registration(self, ua: UserAgent, call_id: str) -> None:
        msgs = self._endpoint.messages
        if msgs is not None and call_id and not ua.reg_held:
            ua.sip_call_id = ua.sip_call_id or call_id
            ua.reg_held = True
            msgs.hold(call_id)

    def _release_registration(self, ua: UserAgent) -> None:
        msgs = self._endpoint.messages
        if msgs is not None and ua.reg_held:
            msgs.release(ua.sip_call_id)
        ua.reg_held = False

    def _reg_ladder(self, ua: UserAgent) -> tuple[list[tuple], int]:
        """The registration's SIP messages so far (REGISTER, challenge, REGISTER with credentials,
        the answer; refreshes), or what onRegState showed when the message log is off."""
        msgs = self._endpoint.messages
        if msgs is None:
            return list(ua.ladder), 0
        try:
            return msgs.ladder(ua.sip_call_id, t0=ua.t0) if ua.reg_held else ([], 0)
        except Exception:  # noqa: BLE001 - the ladder is a nicety
            log.exception("registration ladder")
            return [], 0

    def _ua_failed(self, ua: UserAgent, code: int, reason: str, *, done: bool = False) -> None:
        ua.last_code, ua.last_reason = code, reason
        if not ua.reg_reported:
            ua.reg_reported = True
            ladder, left_out = self._reg_ladder(ua)
            self._emit("ua_event", ua.token, {"event": "failed", "code": code, "reason": reason,
                                               "ladder": ladder, "ladder_left_out": left_out,
                                               "call_id": ua.sip_call_id})
        if done:
            self._emit("ua_done", ua.token, ua.report())

    def _on_reg_state(self, ua: UserAgent, prm: pj.OnRegStateParam) -> None:
        code, reason, expires = int(prm.code), str(prm.reason), int(prm.expiration)
        try:
            msgs = self._endpoint.messages
            if msgs is not None and not ua.reg_held:
                if self._creating is ua and msgs.last_register:  # failed at once, inside acc.create
                    self._hold_registration(ua, msgs.last_register)
            text = prm.rdata.wholeMsg
            if text:
                if msgs is not None:
                    if not ua.reg_held:  # the REGISTER went out after acc.create returned
                        self._hold_registration(ua, call_id_of(text))
                else:  # the registrar's last responses (pjsip answers 401/407 challenges unseen)
                    ua.ladder.append(ladder_entry((time.monotonic() - ua.t0) * 1000.0, "in", text,
                                                  str(prm.rdata.srcAddress)))
                    del ua.ladder[:-UA_LADDER_MAX]
        except Exception:  # noqa: BLE001 - the ladder is a nicety
            pass
        if not ua.sip_call_id:
            try:
                ua.sip_call_id = call_id_of(prm.rdata.wholeMsg or "")
            except Exception:  # noqa: BLE001
                pass
        if ua.closing and ua.unreg_sent:  # the answer to our un-REGISTER
            ua.unreg_code = code
            ua.unreg_reason = user_reason(code, reason, ua.job.account.registrar, ua.job.account.transport)
            ua.registered = False
            return
        if 200 <= code < 300 and expires > 0:
            if ua.t_registered is None:
                ua.t_registered = time.monotonic()
            ua.registrations += 1
            ua.expires = expires
            ua.last_code, ua.last_reason = code, reason
            ua.registered = True
            if not ua.reg_reported:
                ua.reg_reported = True
                self._emit("ua_event", ua.token, {"event": "registered", "code": code, "reason": reason,
                                                   "expires": expires})
            return
        if is_internal(reason) or (code == 0 and prm.status != 0):  # the SIP stack's own error, not the registrar's
            log.warning("registration of %s: %s %s (pjsip status %s)", ua.job.account.aor, code, reason, prm.status)
            a = ua.job.account
            host, port, t = where_of(a.registrar, a.transport)
            reason = short_reason(reason, int(prm.status), host=host, port=port, transport=t)
        if ua.reg_reported:
            ua.refresh_failures += 1
            ua.registered = False
            ua.last_code, ua.last_reason = code, reason
            ladder, left_out = self._reg_ladder(ua) if ua.refresh_failures == 1 else ([], 0)
            self._emit("ua_event", ua.token, {"event": "lost", "code": code, "reason": reason,
                                               "ladder": ladder, "ladder_left_out": left_out,
                                               "call_id": ua.sip_call_id})
        else:
            self._ua_failed(ua, code, reason)

    def _on_incoming(self, ua: UserAgent, prm: pj.OnIncomingCallParam) -> None:
        now = time.monotonic()
        if not ua.job.answer:
            # pjsua gives the call to the first account of that user: when a wait_for_calls of the
            # same user lives here too, it answers
            for other in self._uas.values():
                o = other.job
                if (o.answer and not other.closing and o.account.username == ua.job.account.username
                        and o.account.domain == ua.job.account.domain):
                    ua = other
                    break
        job = ua.job
        ua.seq += 1
        self._callee_keys -= 1
        hangup_ms = job.duration_ms if job.hangup_by == "callee" and job.duration_ms > 0 else FOREVER_MS
        cjob = CallJob(
            call_id=f"{job.ua_id}:in{ua.seq}", destination="", duration_ms=hangup_ms, tone_hz=job.tone_hz,
            codec=job.codec, setup_timeout_ms=int(CALLEE_SETUP_S * 1000) + job.answer_delay_ms,
            from_user=job.account.username, transport=job.account.transport,
            step=job.step, action=job.action, index=job.index,
            play_file=job.play_file, play_loop=job.play_loop, srtp=job.srtp or "off",
            srtp_keying=job.srtp_keying or "sdes",
            record_path=f"{job.record_dir}/{safe_name(f'{job.ua_id}:in{ua.seq}')}.callee.wav"
            if job.record_dir else "",
        )
        run = CallRun(self._callee_keys, cjob, ua)
        raw = run.raw
        raw.role = "callee"
        raw.expect_dtmf = job.expect_dtmf
        raw.started_wall = time.time()
        raw.t_invite = now
        msgs = self._endpoint.messages
        if msgs is None:
            try:
                add_ladder(raw, ladder_entry(0.0, "in", prm.rdata.wholeMsg, str(prm.rdata.srcAddress)))
            except Exception:  # noqa: BLE001
                pass
        call = CallerCall(ua.account, self, run, prm.callId)
        run.call = call
        try:
            ci = call.getInfo()
            raw.sip_call_id = ci.callIdString
            run.job = raw.job = replace(cjob, destination=ci.remoteUri)
        except pj.Error:
            pass
        busy = ua.closing or not job.answer or (job.max_calls and ua.answered >= job.max_calls)
        refusal = ("" if busy or (job.srtp or "off") == "off"
                   else keying_refusal(job.srtp, job.srtp_keying, self._offered_keying(prm)))
        if refusal:
            log.info("%s: 488 to %s: %s", job.ua_id, raw.sip_call_id, refusal)
        if msgs is not None and not busy and not refusal:
            msgs.hold(raw.sip_call_id)  # released in _finish
        if busy or refusal:
            ua.rejected += 1
            op = pj.CallOpParam()
            op.statusCode = 488 if refusal else 486
            try:
                call.hangup(op)
            except pj.Error:
                pass
            self._rejected.append(call)  # keep the object until pjsua lets the call go
            return
        self._runs[run.token] = run
        run.setup_deadline = now + job.answer_delay_ms / 1000.0 + CALLEE_SETUP_S
        op = pj.CallOpParam()
        op.statusCode = 180
        call.answer(op)
        run.answer_due = now + max(0, job.answer_delay_ms) / 1000.0

    @staticmethod
    def _offered_keying(prm: pj.OnIncomingCallParam) -> str:
        """The SRTP keying of the INVITE's offer ("" when there is none, or it cannot be read)."""
        try:
            return offered_srtp_keying(prm.rdata.wholeMsg)
        except Exception:  # noqa: BLE001 - the offer goes to pjsua as it is
            return ""

    @staticmethod
    def _account_key(a: SipAccount, srtp: str = "off", keying: str = "sdes") -> tuple:
        return (a.username, a.domain, a.registrar, a.transport, a.auth_username, a.password, a.tls_verify,
                srtp, keying)

    @classmethod
    def _job_key(cls, job: CallJob) -> tuple:
        """The cached account a caller job uses: its SIP user's, or a local one per (transport
        class, srtp, srtp keying) for direct dials that need TLS or SRTP."""
        srtp = job.srtp or "off"
        keying = (job.srtp_keying or "sdes") if srtp != "off" else "sdes"  # no SRTP: one account either way
        if job.account is not None:
            return cls._account_key(job.account, srtp, keying)
        return ("local", call_transport(job) == "tls", srtp, keying)

    def _accounts_used(self) -> int:
        return 1 + sum(1 for ua in self._uas.values() if ua.account is not None) + len(self._caller_accounts)

    def _make_account_room(self) -> bool:
        """True when one more pjsua account may be created; drops idle cached caller accounts
        (no live call uses them) to make room."""
        if self._accounts_used() < MAX_ACCOUNTS:
            return True
        busy = {self._job_key(r.job) for r in (*self._runs.values(), *self._lingering) if r.ua is None}
        for key in list(self._caller_accounts):
            if key in busy:
                continue
            acc = self._caller_accounts.pop(key)
            try:
                acc.shutdown()
            except Exception:  # noqa: BLE001
                log.exception("caller account shutdown")
            if self._accounts_used() < MAX_ACCOUNTS:
                return True
        return False

    def _caller_account(self, job: CallJob) -> pj.Account:
        """A non-registering account per caller identity (digest credentials, outbound proxy) and
        srtp mode and keying, created on first use and cached (idle ones are dropped when pjsua's account
        table is full). Direct dials use the local account, or for TLS or SRTP a local one bound to
        the verifying TLS transport and/or with SRTP on."""
        a, srtp = job.account, job.srtp or "off"
        ep = self._endpoint
        key = self._job_key(job)
        if a is None and key == ("local", False, "off", "sdes"):
            return ep.account
        acc = self._caller_accounts.get(key)
        if acc is None:
            if a is not None and a.transport == "tcp" and not ep.ensure_tcp():
                raise UserError("no TCP transport in this media worker")
            if not self._make_account_room():
                raise UserError(f"this media worker has no room for another SIP identity (pjsua allows "
                                   f"{MAX_ACCOUNTS} accounts per process, all in use)")
            if a is not None:
                acfg = ep.account_config(a, register=False, srtp=srtp, srtp_keyings=(key[-1],))
            else:
                acfg = pj.AccountConfig()
                acfg.idUri = f"sip:{self._opts.contact_user}@{ep.host_for_uri}:{ep.sip_port}"
                if key[1]:  # TLS: the transport that checks certificates (sips: and ;transport=tls dials)
                    acfg.sipConfig.transportId = ep.ensure_tls(True)
                srtp_config(acfg, srtp, (key[-1],))
                ep.media_transport(acfg)
            acc = pj.Account()
            acc.create(acfg, False)
            self._caller_accounts[key] = acc
        return acc
