"""The media of a call in a media worker: its audio connected to the conference bridge (tone,
played file, recorder), the impairment relays in front of its RTP/RTCP, and its RTP/RTCP stream
statistics turned into the measurement's figures (loss, jitter, round trip). A mixin of
:class:`~callgauge_media.adapters.pjsua.caller.CallerAgent`."""

from __future__ import annotations

import logging

import pjsua2 as pj

from callgauge_media.domain.measurement import StreamSnapshot
from callgauge_media.adapters.impair.media import RelayHost, rewrite_offer, sdp_ssrc
from callgauge_media.adapters.pjsua.call_state import CallRun, CallerCall
from callgauge_media.adapters.pjsua.endpoint import fixed_jitter_buffer, srtp_keying_of, srtp_of, user_error

log = logging.getLogger(__name__)

TONE_VOLUME = 0  # 0 = pjmedia default tone amplitude


class CallMedia:
    """The media of the calls of a :class:`~callgauge_media.adapters.pjsua.caller.CallerAgent`."""

    def _on_media_state(self, run: CallRun, call: CallerCall) -> None:
        if run.relays is not None and self._relay_host is not None and not run.relays.primed:
            self._prime_relays(run, call)  # first thing: both ends learn the relay's address
        ci = call.getInfo()
        for idx, mi in enumerate(ci.media):
            if mi.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            if mi.status not in (
                pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_LOCAL_HOLD, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD
            ):
                continue
            aud = call.getAudioMedia(idx)
            run.media_idx = idx
            run.raw.media_active = True
            try:
                si = call.getStreamInfo(idx)
                run.raw.codec = si.codecName
                run.raw.codec_clock_hz = int(si.audCodecParam.info.clockRate or si.codecClockRate or 0)
            except pj.Error:
                pass
            self._srtp_state(run)
            port = aud.getPortId()
            if port == run.aud_port:
                return
            run.aud = aud
            run.aud_port = port
            self._attach_audio_files(run, aud)
            if run.source is None:
                if run.player is not None:
                    run.source = run.player
                elif run.job.tone_hz > 0:
                    tone = pj.ToneGenerator()
                    tone.createToneGenerator(8000 if self._opts.low_cpu else 16000, 1)
                    desc = pj.ToneDesc()
                    desc.freq1 = int(run.job.tone_hz)
                    desc.freq2 = 0
                    desc.on_msec = 1000
                    desc.off_msec = 0
                    desc.volume = TONE_VOLUME
                    tones = pj.ToneDescVector()
                    tones.append(desc)
                    tone.play(tones, True)
                    run.tone = tone
                    run.source = tone
                elif run.ua is None or run.ua.job.silent:
                    run.source = self._capture  # null device capture: continuous silence
            if run.ua is not None and run.tone is None and run.player is None and not run.ua.job.silent:
                run.source = aud  # callee without a tone: echo what arrives
                aud.startTransmit(aud)
                return
            run.source.startTransmit(aud)
            if self._opts.drain_rx:
                aud.startTransmit(self._playback)  # so the jitter buffer is drained like a real phone
            return

    def _on_sdp_created(self, run: CallRun, prm: pj.OnCallSdpCreatedParam) -> None:
        """An impaired call's offer (and any later SDP of ours) names its relays' ports instead of
        our RTP/RTCP ports; the relays are opened on the first one (impair/media.py)."""
        imp = run.job.impairment
        if imp is None or run.ua is not None:
            return
        sdp = prm.sdp.wholeSdp
        if run.relays is None:
            probe = rewrite_offer(sdp, 0, 0)
            if probe is None:
                return
            _, rtp, rtcp = probe
            if self._relay_host is None:
                self._relay_host = RelayHost()
            host = self._endpoint.host_for_uri  # where our RTP socket is; the relays listen where it does
            run.relays = self._relay_host.open(self._opts.bind_host or "0.0.0.0", (host, rtp), (host, rtcp), imp)
        if run.relays.ssrc is None:
            run.relays.ssrc = sdp_ssrc(sdp)
        out = rewrite_offer(sdp, run.relays.rtp_port, run.relays.rtcp_port)
        if out is not None:
            prm.sdp.wholeSdp = out[0]

    def _on_stream_pre_create(self, run: CallRun, prm: pj.OnStreamPreCreateParam) -> None:
        """A recorded call's audio stream gets the fixed jitter buffer
        (``EndpointOptions.recorded_jitter_buffer_ms``). An impaired call's audio stream is about to
        start sending: the far end hears from the relay first (impair/media.py ``greet_far_end``)."""
        ms = self._opts.recorded_jitter_buffer_ms
        if ms > 0 and run.job.record_path and prm.streamInfo.type == pj.PJMEDIA_TYPE_AUDIO:
            try:
                fixed_jitter_buffer(prm.streamInfo, ms)
            except Exception as exc:  # noqa: BLE001 - the call goes on with pjmedia's adaptive buffer
                run.raw.notes.append(f"jitter buffer: {user_error(exc, 'fixed jitter buffer')}")
        relays = run.relays
        if relays is None or relays.greeted or self._relay_host is None:
            return
        si = prm.streamInfo
        if si.type != pj.PJMEDIA_TYPE_AUDIO:
            return
        host, _, port = si.remoteRtpAddress.rpartition(":")
        try:
            far_end = (host.strip("[]"), int(port))
        except ValueError:
            return
        self._relay_host.greet_far_end(relays, far_end)

    def _prime_relays(self, run: CallRun, call: CallerCall) -> None:
        far_end = None
        ci = call.getInfo()  # kept: its media vector lives in it
        for idx, mi in enumerate(ci.media):
            if mi.type == pj.PJMEDIA_TYPE_AUDIO:
                try:
                    host, _, port = call.getStreamInfo(idx).remoteRtpAddress.rpartition(":")
                    far_end = (host.strip("[]"), int(port))
                except (pj.Error, ValueError):
                    pass  # no greeting to the far end; the replay to us still helps
                break
        run.relays.primed = True
        self._relay_host.prime(run.relays, far_end)

    def _close_relays(self, run: CallRun) -> None:
        """Stop the call's relays and put what they did into its RawCall."""
        relays = run.relays
        if relays is None or relays.closed or self._relay_host is None:
            return
        rx, tx = relays.counts()
        self._relay_host.close(relays)
        run.raw.impairment = {"rx_packets": rx.received, "rx_dropped": rx.lost, "rx_forwarded": rx.forwarded,
                              "tx_packets": tx.received, "tx_dropped": tx.lost}

    def _attach_audio_files(self, run: CallRun, aud: pj.AudioMedia) -> None:
        """The job's WAV player (made once per call) and its recorder of what arrives."""
        job = run.job
        try:
            if job.play_file and run.player is None:
                player = pj.AudioMediaPlayer()
                player.createPlayer(job.play_file, 0 if job.play_loop else pj.PJMEDIA_FILE_NO_LOOP)
                run.player = player
            if job.record_path:
                if run.recorder is None:
                    rec = pj.AudioMediaRecorder()
                    rec.createRecorder(job.record_path)
                    run.recorder = rec
                aud.startTransmit(run.recorder)
        except pj.Error as exc:
            run.fail(f"audio file: {user_error(exc, 'audio file')}")

    def sample_stats(self) -> list[tuple[int, int, int, float]]:
        """``(token, rx_packets, rx_lost, jitter_ms)`` of every answered call whose audio is up
        (RTCP receive statistics so far), for per-second statistics."""
        out = []
        for run in self._runs.values():
            if run.raw.t_answer is None or run.media_idx is None or run.disconnected or run.hangup_at is not None:
                continue
            if run.ua is not None:  # our callee's side of a call: not one of the pool's jobs
                continue
            try:
                rx = run.call.getStreamStat(run.media_idx).rtcp.rxStat
            except Exception:  # noqa: BLE001 - the stream may be going away
                continue
            out.append((run.token, int(rx.pkt), int(rx.loss), float(rx.jitterUsec.mean) / 1000.0))
        return out

    def _on_stream_destroyed(self, run: CallRun, idx: int) -> None:
        if not run.stats_final and (run.media_idx is None or idx == run.media_idx):
            self._snapshot(run)

    @staticmethod
    def _srtp_state(run: CallRun) -> None:
        """Whether SRTP protects the call's audio (its suite) and how its keys were agreed, once
        active: at the media's start (SDES keys are in the SDP) and again before the statistics
        are read (DTLS-SRTP keys come from a handshake on the media path, after the media starts)."""
        if (run.job.srtp or "off") == "off" or run.raw.srtp_suite:
            return
        if run.call is None or run.media_idx is None:
            return
        suite = srtp_of(run.call)
        if suite:
            run.raw.srtp_suite = suite
            run.raw.srtp_keying = srtp_keying_of(run.call, run.media_idx)

    def _snapshot(self, run: CallRun) -> None:
        if run.call is None or run.media_idx is None:
            return
        self._srtp_state(run)
        try:
            ss = run.call.getStreamStat(run.media_idx)
        except pj.Error:
            return
        r = ss.rtcp
        rtt = r.rttUsec
        run.raw.stats = StreamSnapshot(
            tx_packets=int(r.txStat.pkt),
            rx_packets=int(r.rxStat.pkt),
            rx_lost=int(r.rxStat.loss),
            tx_lost=int(r.txStat.loss),
            jitter_us=float(r.rxStat.jitterUsec.mean),
            rtt_us=float(rtt.mean) if rtt.n > 0 else 0.0,
            jb_avg_delay_ms=float(ss.jbuf.avgDelayMsec),
        )


    def _drop_media(self, run: CallRun) -> None:
        src, aud = run.source, run.aud
        run.source = None
        run.aud = None
        if src is not None and aud is not None and not run.disconnected:
            try:
                src.stopTransmit(aud)
            except pj.Error:
                pass
        self._close_recorder(run, aud)
        run.tone = None  # destroys the tone generator's conference port
        run.player = None
        if run.relays is not None and not run.relays.closed and self._relay_host is not None:
            self._relay_host.close(run.relays)

    @staticmethod
    def _close_recorder(run: CallRun, aud: pj.AudioMedia | None = None) -> None:
        rec, aud = run.recorder, aud or run.aud
        if rec is None:
            return
        run.recorder = None
        if aud is not None and not run.disconnected:
            try:
                aud.stopTransmit(rec)
            except pj.Error:
                pass
        del rec  # destroys the recorder: pjmedia writes the WAV header's sizes then
