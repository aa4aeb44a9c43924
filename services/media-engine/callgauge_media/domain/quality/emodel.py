"""ITU-T G.107 E-model: transmission rating factor R and the R -> MOS mapping.

Public API (stable, imported by other media-engine modules)::

    r_factor(codec, one_way_delay_ms, packet_loss_pct, burst_ratio=1.0, plc=True) -> float
    mos_from_r(r, *, wideband=False) -> float

plus helpers: ``mos`` (r_factor + mos_from_r on the right scale), ``is_wideband``, ``is_estimate``,
``supported_codecs``, ``g107_components`` (every G.107 input exposed, returns the
intermediate terms), ``CODEC_TABLE``.

Narrowband model (PCMU, PCMA, G729, GSM) -- ITU-T G.107 (06/2015), clause 7
----------------------------------------------------------------------------
``R = Ro - Is - Id - Ie,eff + A`` with the full formulas:

* Ro = 15 - 1.5 (SLR + No); No sums circuit noise Nc, room noise at the send
  side Nos, at the receive side Nor, and the noise floor Nfo (eqs 7-3..7-7).
* Is = Iolr + Ist + Iq (loudness, sidetone, quantizing distortion; eqs 7-8..7-17).
* Id = Idte + Idle + Idd (talker echo, listener echo, absolute delay; eqs
  7-18..7-28), including the STMR < 9 dB TERV correction and the STMR > 20 dB
  Idte/Ist combination, and the sT/mT form of Idd (sT = 1, mT = 100 ms gives the
  classic curve).
* Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl)          (eq 7-29)
* A = 0.

Every parameter other than the delay and the loss keeps its G.107 Table 3 default:
SLR 8, RLR 2, STMR 15, LSTR 18, Ds 3, Dr 3, TELR 65 dB, WEPL 110 dB, qdu 1,
Nc -70 dBm0p, Nfor -64 dBmp, Ps = Pr = 35 dB(A), A 0. The delays are mapped as
``Ta = T = one_way_delay_ms`` and ``Tr = 2 T``. With every default the model gives
R = 93.2 (Ro 94.77, Is 1.41, Id 0.15), MOS 4.41.

Two properties of the Recommendation's formulas, kept as specified: Idte is
slightly negative for very small T (the "- 1" in eq 7-18 dominates when echo is
well controlled; minimum about -0.11 near T = 1 ms), so R peaks at 93.26 at
T ~ 1 ms before decreasing monotonically; and Ist is a tiny negative number at the
defaults.

The delay is the one-way mouth-to-ear delay the caller knows (network delay plus
packetisation and jitter buffer, if it has them); the model is not told anything
else. R is not clamped (it can fall below 0 at absurd delays or loss);
``mos_from_r`` clamps.

Codec values (Ie, Bpl) -- ITU-T G.113 Appendix I
--------------------------------------------------------------------
===========  ===================  =====  =======================================
codec        G.113 entry          Ie     Bpl
===========  ===================  =====  =======================================
PCMU, PCMA   G.711                0      25.1 with PLC (G.711 App. I), 4.3 without
G729         G.729A + VAD         11     19.0 (concealment is part of the codec;
                                         ``plc`` is ignored)
GSM          GSM-FR (06.10)       20     43 (codec concealment; ``plc`` ignored)
===========  ===================  =====  =======================================

``GSM``: RTP payload "GSM" (RFC 3551 static PT 3, the codec pjsua2 has) is GSM
06.10 *full rate*, not EFR, so its Ie is G.113 Appendix I's GSM-FR value, 20
(before, the EFR value 5 was used, which scored GSM calls ~15 R points too high),
and its Bpl is the GSM-FR value 43 (G.113 Appendix I, Table I.3; the value the
issue #16 brief gives -- the Recommendation's table itself was not at hand to
re-read here). Before, the EFR Bpl 10 was used, which made GSM-FR look four times
more fragile under loss than G.113 plans it.

Wideband model (G722, opus) -- ITU-T G.107.1 (wideband E-model)
---------------------------------------------------------
* Scale: R runs up to 129; Ro,WB = 129, Is,WB = 0, A = 0 (G.107.1 defaults).
* Ie,eff,WB = Ie,WB + (95 - Ie,WB) * Ppl / (Ppl / BurstR + Bpl,WB). The 95 is the
  constant G.107.1 keeps from G.107 (it is *not* rescaled to 129). G.107.1 models
  random loss only; the BurstR term is G.107's and changes nothing at BurstR = 1.
* Ie,WB(G.722 at 64 kbit/s) = 13: G.113 Appendix IV (wideband equipment impairment
  factors, provisional planning values).
* Bpl,WB(G.722) = 25.1 with PLC, 4.3 without -- PROVISIONAL engineering values,
  NOT taken from the Recommendation: the G.113 Appendix IV robustness table was
  not available to check, so the G.711 values (same class of sample-based
  codec with waveform concealment, G.722 App. III/IV vs G.711 App. I) are reused.
  Replace them when a checked Bpl,WB for G.722 is at hand (edit ``CODEC_TABLE``).
  Checked for issue #16: the G.113 Appendix IV Bpl,wb table (Table IV.4 of the
  09/2024 edition, as quoted by implementations that carry it) lists AMR-WB
  (G.722.2) modes only -- 4.3 at 12.65, 4.6 at 23.05, 4.9 at 23.85 kbit/s --
  and no G.722 row, so G.722's Bpl,WB stays provisional.
* Opus (RFC 6716, pjsua2's libopus codec, RTP clock 48000, RFC 7587): ITU-T has
  published NO Ie,WB or Bpl,WB for Opus (G.113 Appendices IV and V have no Opus
  row). The row is an ESTIMATE: Ie,WB = 10, chosen so that Opus at pjsua2's
  defaults (VBR, wideband-or-wider audio, 20 ms frames) does not score below
  G.722 at 64 kbit/s (Ie,WB 13, G.113 App. IV) nor above AMR-WB at 23.05 kbit/s
  (Ie,WB 1); Bpl,WB = 20, the codec's own concealment (SILK/CELT PLC), placed
  between G.729A (19) and G.711 with PLC (25.1). Both values are planning
  guesses, not measurements; a call scored with them says so in its notes.
  Opus negotiated fullband (48 kHz audio) is scored on this wideband scale too:
  the fullband E-model (G.107.2, Ro,FB 148, Ie,FB from G.113 Appendix V) is not
  implemented, so a fullband Opus call's MOS is a wideband-context estimate.
* Id,WB = 1.29 * Id (the narrowband G.107 delay impairment above, same defaults
  and Ta = T, Tr = 2T), i.e. the delay impairment transposed to the wideband
  scale by its factor 1.29. For the absolute-delay term this is how G.107.1
  defines Idd,WB; G.107.1 also has its own wideband talker-echo term, which this
  simplification approximates (with the default echo losses Idte + Idle stays
  under 6 narrowband R points up to T = 300 ms; Idd dominates beyond 200 ms).

``mos_from_r`` and the wideband scale: G.107.1 Annex A maps a wideband R to MOS
by converting it to the narrowband scale, ``R_nb = R_wb / 1.29``, and applying the
G.107 Annex B polynomial. Pass ``wideband=True`` (or use ``mos(codec, ...)``,
which does it for G722 and opus). Called without it, ``mos_from_r`` treats R as
narrowband, so an R_wb above 100 saturates at 4.5 -- never feed it a wideband R
that way. Note that a wideband MOS is on the wideband-context scale: G.722's
clean MOS (about 4.33) is not "worse than G.711's 4.41"; the two come from
different listening contexts.

Other codecs of pjsua2 (speex, iLBC, L16): ``r_factor`` raises
``ValueError`` naming the supported codecs. ITU-T publishes no G.113 planning
values for them, and inventing Ie/Bpl would produce numbers that look measured
and are not. Callers score such calls without a MOS (loss/jitter/RTT are still
reported) or add a reviewed row to ``CODEC_TABLE``.

Inputs: codec names are case-insensitive, accept an SDP-style "/rate/channels"
suffix ("PCMU/8000", "G722/16000/1") and a few aliases ("G.711", "G711U",
"G729A", "GSM-EFR", "G.722"). Loss is in percent, 0..100 (ValueError outside or
NaN); the delay must be finite and >= 0; burst_ratio must be finite and > 0, and
values between 0 and 1 are raised to 1 (G.107's range starts at 1; measured
ratios slightly below 1 are estimation noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "CODEC_TABLE",
    "CodecImpairment",
    "ESTIMATED",
    "EModelComponents",
    "RO_WB",
    "WB_SCALE",
    "g107_components",
    "is_estimate",
    "is_wideband",
    "mos",
    "mos_from_r",
    "r_factor",
    "supported_codecs",
]

#: G.107.1: the wideband R scale is the narrowband one stretched by 1.29 (Ro,WB = 129).
WB_SCALE = 1.29
#: G.107.1 basic signal-to-noise ratio on the wideband scale (with Is,WB = 0).
RO_WB = 129.0


@dataclass(frozen=True)
class CodecImpairment:
    """Equipment impairment Ie and packet-loss robustness Bpl of one codec."""

    name: str
    ie: float
    bpl_plc: float
    bpl_no_plc: float
    wideband: bool
    source: str

    def bpl(self, plc: bool) -> float:
        return self.bpl_plc if plc else self.bpl_no_plc


CODEC_TABLE: dict[str, CodecImpairment] = {
    "PCMU": CodecImpairment(
        "PCMU", 0.0, 25.1, 4.3, False, "G.113 App. I: G.711, PLC per G.711 App. I / no PLC"
    ),
    "PCMA": CodecImpairment(
        "PCMA", 0.0, 25.1, 4.3, False, "G.113 App. I: G.711, PLC per G.711 App. I / no PLC"
    ),
    "G729": CodecImpairment("G729", 11.0, 19.0, 19.0, False, "G.113 App. I: G.729A + VAD"),
    "GSM": CodecImpairment("GSM", 20.0, 43.0, 43.0, False, "G.113 App. I: GSM-FR (06.10), Ie 20, Bpl 43"),
    "G722": CodecImpairment(
        "G722",
        13.0,
        25.1,
        4.3,
        True,
        "Ie,WB: G.113 App. IV (G.722 64 kbit/s); Bpl,WB: provisional (G.711 values)",
    ),
    "OPUS": CodecImpairment(
        "OPUS",
        10.0,
        20.0,
        20.0,
        True,
        "ESTIMATE: no ITU-T Ie,WB/Bpl,WB for Opus; Ie,WB 10 between AMR-WB 23.05 (1) and G.722 64k (13), "
        "Bpl,WB 20 (codec PLC)",
    ),
}

#: Codecs whose Ie/Bpl are estimates rather than ITU-T planning values (a call scored with one gets a note).
ESTIMATED = frozenset({"OPUS"})

_ALIASES = {
    "PCMU": "PCMU",
    "G711": "PCMU",
    "G711U": "PCMU",
    "G711MU": "PCMU",
    "G711ULAW": "PCMU",
    "ULAW": "PCMU",
    "PCMA": "PCMA",
    "G711A": "PCMA",
    "G711ALAW": "PCMA",
    "ALAW": "PCMA",
    "G729": "G729",
    "G729A": "G729",
    "GSM": "GSM",
    "GSMFR": "GSM",
    "G722": "G722",
    "OPUS": "OPUS",
}


@dataclass(frozen=True)
class EModelComponents:
    """Every term of one G.107 evaluation (R = Ro - Is - Id - Ie_eff + A)."""

    No: float
    Ro: float
    Iolr: float
    Ist: float
    Iq: float
    Is: float
    Idte: float
    Idle: float
    Idd: float
    Id: float
    Ie_eff: float
    A: float
    R: float


def supported_codecs() -> tuple[str, ...]:
    """Canonical names ``r_factor`` accepts (aliases map onto these)."""
    return tuple(sorted(CODEC_TABLE))


def _lookup(codec: str) -> CodecImpairment:
    if not isinstance(codec, str):
        raise ValueError(f"codec must be a string, got {type(codec).__name__}")
    key = codec.strip().split("/", 1)[0].upper()
    for ch in ".-_ ":
        key = key.replace(ch, "")
    canonical = _ALIASES.get(key)
    if canonical is None:
        raise ValueError(
            f"unsupported codec {codec!r} for the E-model: supported codecs are "
            f"{', '.join(supported_codecs())} (ITU-T G.113 gives no planning values "
            "for speex, iLBC or L16)"
        )
    return CODEC_TABLE[canonical]


def is_estimate(codec: str) -> bool:
    """True when the codec's Ie/Bpl are estimates, not ITU-T G.113 planning values (opus)."""
    return _lookup(codec).name in ESTIMATED


def is_wideband(codec: str) -> bool:
    """True when ``r_factor(codec, ...)`` returns an R on the G.107.1 (0..129) scale."""
    return _lookup(codec).wideband


def _finite(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


def _ie_eff(ie: float, bpl: float, ppl: float, burst_r: float) -> float:
    # G.107 eq 7-29 (and its G.107.1 wideband counterpart, same constant 95).
    if ppl == 0.0:
        return ie
    return ie + (95.0 - ie) * ppl / (ppl / burst_r + bpl)


def g107_components(
    *,
    SLR: float = 8.0,
    RLR: float = 2.0,
    STMR: float = 15.0,
    LSTR: float = 18.0,
    Ds: float = 3.0,
    Dr: float = 3.0,  # only enters through LSTR = STMR + Dr; kept for completeness
    TELR: float = 65.0,
    WEPL: float = 110.0,
    T: float = 0.0,
    Tr: float = 0.0,
    Ta: float = 0.0,
    qdu: float = 1.0,
    Ie: float = 0.0,
    Bpl: float = 4.3,  # only matters when Ppl > 0; r_factor always passes the codec's
    Ppl: float = 0.0,
    BurstR: float = 1.0,
    Nc: float = -70.0,
    Nfor: float = -64.0,
    Ps: float = 35.0,
    Pr: float = 35.0,
    A: float = 0.0,
    mT: float = 100.0,
    sT: float = 1.0,
) -> EModelComponents:
    """Evaluate ITU-T G.107 with every input exposed (defaults: G.107 Table 3)."""
    del Dr
    log10 = math.log10

    # 7.2 Basic signal-to-noise ratio Ro.
    OLR = SLR + RLR
    Nos = Ps - SLR - Ds - 100.0 + 0.004 * (Ps - OLR - Ds - 14.0) ** 2
    Pre = Pr + 10.0 * log10(1.0 + 10.0 ** ((10.0 - LSTR) / 10.0))
    Nor = RLR - 121.0 + Pre + 0.008 * (Pre - 35.0) ** 2
    Nfo = Nfor + RLR
    No = 10.0 * log10(10.0 ** (Nc / 10.0) + 10.0 ** (Nos / 10.0) + 10.0 ** (Nor / 10.0) + 10.0 ** (Nfo / 10.0))
    Ro = 15.0 - 1.5 * (SLR + No)

    # 7.3 Simultaneous impairment factor Is = Iolr + Ist + Iq.
    Xolr = OLR + 0.2 * (64.0 + No - RLR)
    Iolr = 20.0 * ((1.0 + (Xolr / 8.0) ** 8) ** (1.0 / 8.0) - Xolr / 8.0)
    STMRo = -10.0 * log10(10.0 ** (-STMR / 10.0) + math.exp(-T / 4.0) * 10.0 ** (-TELR / 10.0))
    Ist = (
        12.0 * (1.0 + ((STMRo - 13.0) / 6.0) ** 8) ** (1.0 / 8.0)
        - 28.0 * (1.0 + ((STMRo + 1.0) / 19.4) ** 35) ** (1.0 / 35.0)
        - 13.0 * (1.0 + ((STMRo - 3.0) / 33.0) ** 13) ** (1.0 / 13.0)
        + 29.0
    )
    Q = 37.0 - 15.0 * log10(qdu)
    G = 1.07 + 0.258 * Q + 0.0602 * Q**2
    Z = 46.0 / 30.0 - G / 40.0
    Y = (Ro - 100.0) / 15.0 + 46.0 / 8.4 - G / 9.0
    Iq = 15.0 * log10(1.0 + 10.0**Y + 10.0**Z)
    Is = Iolr + Ist + Iq

    # 7.4 Delay impairment factor Id = Idte + Idle + Idd.
    Roe = -1.5 * (No - RLR)
    TERV = TELR - 40.0 * log10((1.0 + T / 10.0) / (1.0 + T / 150.0)) + 6.0 * math.exp(-0.3 * T**2)
    if STMR < 9.0:
        TERV += Ist / 2.0
    Re = 80.0 + 2.5 * (TERV - 14.0)
    Idte = ((Roe - Re) / 2.0 + math.sqrt((Roe - Re) ** 2 / 4.0 + 100.0) - 1.0) * (1.0 - math.exp(-T))
    if STMR > 20.0:
        Idte = math.sqrt(Idte**2 + Ist**2)
    Rle = 10.5 * (WEPL + 7.0) * (Tr + 1.0) ** -0.25
    Idle = (Ro - Rle) / 2.0 + math.sqrt((Ro - Rle) ** 2 / 4.0 + 169.0)
    if Ta <= mT:
        Idd = 0.0
    else:
        X = log10(Ta / mT) / log10(2.0)
        e = 6.0 * sT
        Idd = 25.0 * ((1.0 + X**e) ** (1.0 / e) - 3.0 * (1.0 + (X / 3.0) ** e) ** (1.0 / e) + 2.0)
    Id = Idte + Idle + Idd

    # 7.5 Effective equipment impairment factor.
    Ie_eff = _ie_eff(Ie, Bpl, Ppl, BurstR)

    R = Ro - Is - Id - Ie_eff + A
    return EModelComponents(
        No=No, Ro=Ro, Iolr=Iolr, Ist=Ist, Iq=Iq, Is=Is,
        Idte=Idte, Idle=Idle, Idd=Idd, Id=Id, Ie_eff=Ie_eff, A=A, R=R,
    )  # fmt: skip


def r_factor(
    codec: str,
    one_way_delay_ms: float,
    packet_loss_pct: float,
    burst_ratio: float = 1.0,
    plc: bool = True,
) -> float:
    """Transmission rating factor R for one call direction.

    Narrowband codecs give R on the G.107 scale (93.2 at best); G722 gives R on the
    G.107.1 wideband scale (up to 129) -- see the module docstring. ``plc`` selects
    the G.711 (and provisional G.722) Bpl with/without packet-loss concealment.
    """
    entry = _lookup(codec)
    delay = _finite("one_way_delay_ms", one_way_delay_ms)
    if delay < 0.0:
        raise ValueError(f"one_way_delay_ms must be >= 0, got {one_way_delay_ms!r}")
    loss = _finite("packet_loss_pct", packet_loss_pct)
    if loss < 0.0 or loss > 100.0:
        raise ValueError(f"packet_loss_pct must be within 0..100 (percent), got {packet_loss_pct!r}")
    burst = _finite("burst_ratio", burst_ratio)
    if burst <= 0.0:
        raise ValueError(f"burst_ratio must be > 0, got {burst_ratio!r}")
    burst = max(burst, 1.0)
    bpl = entry.bpl(bool(plc))

    if not entry.wideband:
        return g107_components(T=delay, Ta=delay, Tr=2.0 * delay, Ie=entry.ie, Bpl=bpl, Ppl=loss, BurstR=burst).R

    # G.107.1: R_WB = Ro,WB - Is,WB - Id,WB - Ie,eff,WB + A, Is,WB = 0, A = 0.
    id_nb = g107_components(T=delay, Ta=delay, Tr=2.0 * delay).Id
    return RO_WB - 0.0 - WB_SCALE * id_nb - _ie_eff(entry.ie, bpl, loss, burst) + 0.0


def mos_from_r(r: float, *, wideband: bool = False) -> float:
    """MOS (conversational quality estimate) from R, ITU-T G.107 Annex B.

    R < 0 -> 1; R > 100 -> 4.5; otherwise 1 + 0.035 R + R (R - 60)(100 - R) 7e-6.
    The polynomial dips slightly below 1 (minimum 0.98) for 0 < R < 6.515, where
    it crosses 1 again; the result is floored at 1, which is the same as taking
    R < 6.5 -> 1 as the lower branch. With ``wideband=True`` R is a G.107.1
    (0..129) rating and is first converted to the narrowband scale,
    R_nb = R / 1.29 (G.107.1 Annex A).
    """
    value = _finite("r", r)
    if wideband:
        value /= WB_SCALE
    if value < 0.0:
        return 1.0
    if value > 100.0:
        return 4.5
    return max(1.0, 1.0 + 0.035 * value + value * (value - 60.0) * (100.0 - value) * 7e-6)


def mos(
    codec: str,
    one_way_delay_ms: float,
    packet_loss_pct: float,
    burst_ratio: float = 1.0,
    plc: bool = True,
) -> float:
    """``mos_from_r(r_factor(...))`` on the scale the codec's R is on."""
    r = r_factor(codec, one_way_delay_ms, packet_loss_pct, burst_ratio, plc)
    return mos_from_r(r, wideband=is_wideband(codec))
