"""ITU-T G.107 E-model: vectors derived by hand from the Recommendation.

Every expected number below is derived in the comments from the G.107 (06/2015)
clause 7 equations with the Table 3 defaults (SLR 8, RLR 2, STMR 15, LSTR 18,
Ds 3, TELR 65, WEPL 110, qdu 1, Nc -70, Nfor -64, Ps = Pr = 35, A 0), and the
mapping the module documents: Ta = T = one-way delay, Tr = 2T.

Tolerances: derived values are carried to 4 decimals in the comments, so the
asserts use abs=1e-3 on R (well below the 0.5-R-point resolution anyone reads R
at) and abs=1e-4 on MOS; cross-checks against published figures state their own
(wider) tolerance and why.
"""

from __future__ import annotations

import math

import pytest

from callgauge_media.domain.quality.emodel import (
    CODEC_TABLE,
    g107_components,
    is_estimate,
    is_wideband,
    mos,
    mos_from_r,
    r_factor,
    supported_codecs,
)

R_TOL = 1e-3
MOS_TOL = 1e-4

# ---------------------------------------------------------------------------
# Default connection (T = Ta = Tr = 0, no loss, G.711):
#   OLR = SLR + RLR = 10
#   Nos = Ps - SLR - Ds - 100 + 0.004 (Ps - OLR - Ds - 14)^2 = -76 + 0.004*64 = -75.744
#   Pre = Pr + 10 log(1 + 10^((10 - LSTR)/10)) = 35 + 10 log(1.158489) = 35.6389
#   Nor = RLR - 121 + Pre + 0.008 (Pre - 35)^2 = -83.3578
#   Nfo = Nfor + RLR = -62
#   No  = 10 log(10^-7 + 10^-7.5744 + 10^-8.3358 + 10^-6.2) = 10 log(7.6222e-7) = -61.1792
#   Ro  = 15 - 1.5 (SLR + No) = 15 - 1.5 (-53.1792) = 94.7688
#   Xolr = OLR + 0.2 (64 + No - RLR) = 10.1642
#   Iolr = 20 [(1 + (Xolr/8)^8)^(1/8) - Xolr/8] = 0.4402
#   STMRo = -10 log(10^-1.5 + e^0 10^-6.5) = 14.9999 -> Ist = -0.0007
#   Q = 37, G = 1.07 + 0.258*37 + 0.0602*37^2 = 93.0298
#   Y = (Ro - 100)/15 + 46/8.4 - G/9 = -5.2091 ; Z = 46/30 - G/40 = -0.7924
#   Iq = 15 log(1 + 10^Y + 10^Z) = 0.9741
#   Is = Iolr + Ist + Iq = 1.4136
#   Idte = [...] (1 - e^-T) = 0 at T = 0
#   Rle = 10.5 (WEPL + 7)(Tr + 1)^-0.25 = 1228.5
#   Idle = (Ro - Rle)/2 + sqrt((Ro - Rle)^2/4 + 169) = -566.8656 + 567.0147 = 0.1490
#   Idd = 0 (Ta <= 100 ms)
#   R = 94.7688 - 1.4136 - 0.1490 - 0 = 93.2062   (G.107 quotes R = 93.2 for the defaults)
# ---------------------------------------------------------------------------
R_DEFAULT = 93.2062


def test_default_components_match_hand_derivation():
    c = g107_components()
    assert c.No == pytest.approx(-61.1792, abs=1e-3)
    assert c.Ro == pytest.approx(94.7688, abs=1e-3)
    assert c.Iolr == pytest.approx(0.4402, abs=1e-3)
    assert c.Ist == pytest.approx(-0.0007, abs=1e-3)
    assert c.Iq == pytest.approx(0.9741, abs=1e-3)
    assert c.Is == pytest.approx(1.4136, abs=1e-3)
    assert c.Idte == pytest.approx(0.0, abs=1e-12)
    assert c.Idle == pytest.approx(0.1490, abs=1e-3)
    assert c.Idd == 0.0
    assert c.Ie_eff == 0.0
    assert c.R == pytest.approx(R_DEFAULT, abs=R_TOL)
    # G.107 clause 7.7: "R = 93.2" for all-default parameters.
    assert round(c.R, 1) == 93.2


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_g711_no_loss_low_delay_is_the_default_rating(codec):
    assert r_factor(codec, 0, 0) == pytest.approx(R_DEFAULT, abs=R_TOL)
    # Low delay (20 ms): TERV = 65 - 40 log(3/1.1333) = 48.0892, Re = 80 + 2.5*34.0892
    # = 165.223, Roe - Re = -70.454, Idte = (-35.227 + sqrt(1241.2 + 100) - 1)(1 - e^-20)
    # = 0.3919; Rle = 1228.5 / 41^0.25 = 485.50, Idle = -195.37 + sqrt(38170 + 169) = 0.4321;
    # Idd = 0 -> R = 94.7688 - 1.4136 - 0.8240 = 92.5313
    assert r_factor(codec, 20, 0) == pytest.approx(92.5313, abs=R_TOL)


def test_mos_of_default_rating():
    # Annex B: 1 + 0.035*93.2 + 93.2*(93.2 - 60)*(100 - 93.2)*7e-6
    #        = 1 + 3.262 + 93.2*33.2*6.8*7e-6 = 4.262 + 0.147286 = 4.409286  (quoted as 4.41)
    assert mos_from_r(93.2) == pytest.approx(4.409286, abs=MOS_TOL)
    assert mos("PCMU", 0, 0) == pytest.approx(4.4094, abs=MOS_TOL)


# ---------------------------------------------------------------------------
# Delay curve, G.711, no loss.  Roe = -1.5 (No - RLR) = 94.7688 at every delay.
#
# T = 150: TERV = 65 - 40 log((1 + 15)/(1 + 1)) + 6 e^(-0.3*150^2) = 65 - 36.1236 = 28.8764
#          Re = 80 + 2.5 (TERV - 14) = 117.1910 ; Roe - Re = -22.4222
#          Idte = (-11.2111 + sqrt(125.689 + 100) - 1)(1 - e^-150) = 2.8118
#          Rle = 1228.5 * 301^-0.25 = 294.954 ; Idle = -100.093 + sqrt(10018.6 + 169) = 0.8407
#          X = log2(1.5) = 0.58496 ; Idd = 25 [(1 + X^6)^(1/6) - 3 (1 + (X/3)^6)^(1/6) + 2] = 0.1635
#          Id = 3.8161 -> R = 94.7688 - 1.4136 - 3.8161 = 89.5391
# T = 300: TERV = 65 - 40 log(31/3) = 24.4304 ; Re = 106.0760 ; Idte = 4.8339
#          Rle = 1228.5 * 601^-0.25 = 248.118 ; Idle = 1.0943
#          X = log2 3 = 1.58496 ; Idd = 25 (1.60089 - 3*1.003578 + 2) = 14.7607
#          Id = 20.6889 -> R = 72.6664
# T = 400: TERV = 65 - 40 log(41/3.6667) = 23.0596 ; Re = 102.6490 ; Idte = 5.8082
#          Rle = 1228.5 * 801^-0.25 = 230.93 ; Idle = 1.2301
#          X = 2 ; Idd = 25 (65^(1/6) - 3 (1 + (2/3)^6)^(1/6) + 2) = 24.0701
#          Id = 31.1084 -> R = 62.2468
# ---------------------------------------------------------------------------
DELAY_POINTS = [
    # T,   Idte,   Idle,   Idd,     Id,      R
    (150, 2.8118, 0.8407, 0.1635, 3.8161, 89.5391),
    (300, 4.8339, 1.0943, 14.7607, 20.6889, 72.6664),
    (400, 5.8082, 1.2301, 24.0701, 31.1084, 62.2468),
]


@pytest.mark.parametrize(("t", "idte", "idle", "idd", "id_", "r"), DELAY_POINTS)
def test_delay_impairment_points(t, idte, idle, idd, id_, r):
    c = g107_components(T=t, Ta=t, Tr=2 * t)
    assert c.Idte == pytest.approx(idte, abs=1e-3)
    assert c.Idle == pytest.approx(idle, abs=1e-3)
    assert c.Idd == pytest.approx(idd, abs=1e-3)
    assert c.Id == pytest.approx(id_, abs=1e-3)
    assert r_factor("PCMU", t, 0) == pytest.approx(r, abs=R_TOL)


@pytest.mark.parametrize(
    ("t", "published_id", "tol"),
    [
        # Cole & Rosenbluth, "Voice over IP performance monitoring", ACM SIGCOMM CCR
        # 31(2), 2001: fit of the G.107 default-parameter Id as
        #   Id ~ 0.024 d + 0.11 (d - 177.3) H(d - 177.3).
        # 150 ms -> 3.6, 300 ms -> 20.7, 400 ms -> 34.1.  Their fit is piecewise
        # linear; the Idd curve is S-shaped, so it overshoots near 400 ms: the
        # tolerance is 0.5 R points up to 300 ms and 3.5 at 400 ms.
        (150, 3.6, 0.5),
        (300, 20.7, 0.5),
        (400, 34.1, 3.5),
    ],
)
def test_delay_curve_matches_published_fit(t, published_id, tol):
    assert g107_components(T=t, Ta=t, Tr=2 * t).Id == pytest.approx(published_id, abs=tol)


def test_idd_is_zero_up_to_100_ms_and_positive_beyond():
    assert g107_components(Ta=100).Idd == 0.0
    assert g107_components(Ta=100.5).Idd > 0.0
    # X = 1 at Ta = 200: Idd = 25 (2^(1/6) - 3 (1 + 3^-6)^(1/6) + 2) = 3.0444
    assert g107_components(Ta=200).Idd == pytest.approx(3.0444, abs=1e-3)


# ---------------------------------------------------------------------------
# Packet loss, G.711 with PLC (Ie 0, Bpl 25.1), T = 0:
#   Ie,eff = 95 Ppl / (Ppl / BurstR + 25.1) ; R = 93.2062 - Ie,eff
#   1 %, BurstR 1: 95/26.1         = 3.6398  -> 89.5664
#   1 %, BurstR 2: 95/25.6         = 3.7109  -> 89.4953
#   2 %, BurstR 1: 190/27.1        = 7.0111  -> 86.1951
#   2 %, BurstR 2: 190/26.1        = 7.2797  -> 85.9265
#   5 %, BurstR 1: 475/30.1        = 15.7807 -> 77.4255
#   5 %, BurstR 2: 475/27.6        = 17.2101 -> 75.9961
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("loss", "burst", "expected_r"),
    [
        (1, 1, 89.5664),
        (1, 2, 89.4953),
        (2, 1, 86.1951),
        (2, 2, 85.9265),
        (5, 1, 77.4255),
        (5, 2, 75.9961),
    ],
)
def test_g711_plc_loss_points(loss, burst, expected_r):
    assert r_factor("PCMU", 0, loss, burst_ratio=burst) == pytest.approx(expected_r, abs=R_TOL)
    assert r_factor("PCMA", 0, loss, burst_ratio=burst) == pytest.approx(expected_r, abs=R_TOL)


def test_g711_without_plc_uses_bpl_4_3():
    # 1 %: Ie,eff = 95/(1 + 4.3) = 17.9245 -> R = 75.2817
    assert r_factor("PCMU", 0, 1, plc=False) == pytest.approx(75.2817, abs=R_TOL)


def test_other_narrowband_codecs():
    # G.729A + VAD: Ie 11 -> R = 93.2062 - 11 = 82.2062 ; at 2 %, Ie,eff = 11 + 84*2/21 = 19 exactly
    assert r_factor("G729", 0, 0) == pytest.approx(82.2062, abs=R_TOL)
    assert r_factor("G729", 0, 2) == pytest.approx(74.2062, abs=R_TOL)
    # Concealment is part of G.729: the plc flag changes nothing.
    assert r_factor("G729", 0, 2, plc=False) == r_factor("G729", 0, 2)


def test_gsm_is_full_rate_with_g113_ie_20_and_bpl_43():
    # Given pjsua2's "GSM" codec, which is GSM 06.10 full rate (RFC 3551 PT 3), not EFR,
    # when the E-model scores it,
    # then it uses G.113 Appendix I's GSM-FR values: Ie 20, Bpl 43 (Table I.3).
    assert CODEC_TABLE["GSM"].ie == 20.0 and CODEC_TABLE["GSM"].bpl(True) == 43.0
    # no loss: R = 93.2062 - 20 = 73.2062
    assert r_factor("GSM", 0, 0) == pytest.approx(73.2062, abs=R_TOL)
    # 10 %: Ie,eff = 20 + 75*10/(10 + 43) = 34.1509 -> R = 59.0553
    assert r_factor("GSM", 0, 10) == pytest.approx(59.0553, abs=R_TOL)
    # concealment is GSM's own (06.11): the plc flag changes nothing
    assert r_factor("GSM", 0, 10, plc=False) == r_factor("GSM", 0, 10)
    assert not is_estimate("GSM")


# ---------------------------------------------------------------------------
# Wideband, G.722 (G.107.1 scale, Ro,WB = 129, Is,WB = 0, Id,WB = 1.29 Id_nb,
# Ie,WB 13, provisional Bpl,WB 25.1 with PLC):
#   T = 0, no loss: R = 129 - 1.29*0.1490 - 13 = 115.8077
#   MOS: R_nb = 115.8077/1.29 = 89.7734 ; 1 + 3.1421 + 89.7734*29.7734*10.2266*7e-6 = 4.3334
#   1 % loss: Ie,eff = 13 + 82/26.1 = 16.1418 -> R = 112.6660
#   T = 150: R = 129 - 1.29*3.8161 - 13 = 111.0772
# ---------------------------------------------------------------------------
def test_g722_wideband_scale():
    assert is_wideband("G722") and not is_wideband("PCMU")
    assert r_factor("G722", 0, 0) == pytest.approx(115.8077, abs=R_TOL)
    assert r_factor("G722", 0, 1) == pytest.approx(112.6660, abs=R_TOL)
    assert r_factor("G722", 150, 0) == pytest.approx(111.0772, abs=R_TOL)
    assert mos("G722", 0, 0) == pytest.approx(4.3334, abs=MOS_TOL)
    # The wideband R is above 100: mapping it as narrowband would saturate.
    assert mos_from_r(r_factor("G722", 0, 0)) == 4.5
    assert r_factor("G722", 0, 0) <= 129.0


def test_g722_values_are_g113_appendix_iv_ie_and_a_provisional_bpl():
    # Given G.722 at 64 kbit/s, when its row is read,
    # then Ie,WB is G.113 Appendix IV's 13 and Bpl,WB the provisional 25.1 / 4.3 (G.113's Bpl,wb
    # table has AMR-WB rows only, so there is no G.722 value to take; see emodel's docstring).
    row = CODEC_TABLE["G722"]
    assert (row.ie, row.bpl(True), row.bpl(False), row.wideband) == (13.0, 25.1, 4.3, True)
    assert "provisional" in row.source


# ---------------------------------------------------------------------------
# Opus on the G.107.1 scale, ESTIMATED Ie,WB 10 and Bpl,WB 20 (no ITU-T value exists; G.113
# Appendices IV/V have no Opus row -- see emodel's docstring):
#   T = 0, no loss: R = 129 - 1.29*0.1490 - 10 = 118.8077 ; MOS: R_nb = 92.0990 -> 4.3870
#   1 %: Ie,eff = 10 + 85*1/21 = 14.0476 -> R = 114.7601
#   5 %: Ie,eff = 10 + 85*5/25 = 27 -> R = 101.8077 ; MOS 3.9826
# ---------------------------------------------------------------------------
def test_opus_is_scored_on_the_wideband_model_with_estimated_values():
    # Given an Opus call (pjsua2 names it "opus/48000/2"),
    # when the E-model scores it,
    # then it is wideband (G.107.1), its values are flagged as estimates, and R/MOS follow them.
    assert is_wideband("opus") and is_wideband("opus/48000/2") and is_estimate("opus")
    assert not is_estimate("G722") and not is_estimate("PCMU")
    assert r_factor("opus", 0, 0) == pytest.approx(118.8077, abs=R_TOL)
    assert mos("opus", 0, 0) == pytest.approx(4.3870, abs=MOS_TOL)
    assert r_factor("opus", 0, 1) == pytest.approx(114.7601, abs=R_TOL)
    assert r_factor("OPUS/48000/2", 0, 5) == pytest.approx(101.8077, abs=R_TOL)
    assert mos("opus", 0, 5) == pytest.approx(3.9826, abs=MOS_TOL)
    # Opus conceals in its decoder: the plc flag changes nothing
    assert r_factor("opus", 0, 5, plc=False) == r_factor("opus", 0, 5)
    # loss always costs quality, and clean Opus does not score below clean G.722
    assert mos("opus", 0, 0) > mos("opus", 0, 1) > mos("opus", 0, 5)
    assert mos("opus", 0, 0) >= mos("G722", 0, 0)
    assert "ESTIMATE" in CODEC_TABLE["OPUS"].source


def test_mos_from_r_wideband_conversion():
    # Annex A of G.107.1: R_nb = R_wb / 1.29
    assert mos_from_r(129.0, wideband=True) == pytest.approx(4.5, abs=MOS_TOL)
    assert mos_from_r(64.5, wideband=True) == pytest.approx(2.575, abs=MOS_TOL)  # R_nb = 50
    assert mos_from_r(-1.0, wideband=True) == 1.0
    assert mos_from_r(200.0, wideband=True) == 4.5


# ---------------------------------------------------------------------------
# Monotonicity.
# ---------------------------------------------------------------------------
LOSS_GRID = [0, 0.1, 0.5, 1, 2, 3, 5, 10, 20, 50, 100]
DELAY_GRID = [0, 1, 10, 50, 100, 150, 177.3, 200, 250, 300, 400, 500, 800, 1000]


@pytest.mark.parametrize("codec", sorted(supported_codecs()))
@pytest.mark.parametrize("plc", [True, False])
@pytest.mark.parametrize("burst", [1.0, 2.0, 4.0])
def test_r_strictly_decreases_with_loss(codec, plc, burst):
    values = [r_factor(codec, 50, loss, burst_ratio=burst, plc=plc) for loss in LOSS_GRID]
    assert all(a > b for a, b in zip(values, values[1:])), values


@pytest.mark.parametrize("codec", sorted(supported_codecs()))
@pytest.mark.parametrize("loss", [0, 2])
def test_r_strictly_decreases_with_delay(codec, loss):
    # From T ~ 1 ms on. Below that G.107's own Idte is slightly negative: with
    # Roe - Re -> -inf the bracket of eq 7-18 tends to -1, e.g. at T = 1:
    # TERV = 65 - 40 log(1.1/1.00667) + 6 e^-0.3 = 67.906, Re = 214.77,
    # Idte = (-60.0 + sqrt(3600 + 100) - 1)(1 - e^-1) = -0.109 -> R(1) = 93.2627 > R(0).
    values = [r_factor(codec, d, loss) for d in DELAY_GRID[1:]]
    assert all(a > b for a, b in zip(values, values[1:])), values
    assert r_factor(codec, 1, loss) - r_factor(codec, 0, loss) == pytest.approx(
        0.0565 * (1.29 if is_wideband(codec) else 1.0), abs=R_TOL
    )


def test_bursty_loss_scores_worse_than_random_loss():
    for loss in (0.5, 1, 5, 20):
        assert r_factor("PCMU", 0, loss, burst_ratio=2) < r_factor("PCMU", 0, loss, burst_ratio=1)


# ---------------------------------------------------------------------------
# mos_from_r (G.107 Annex B).
#   R = 50: 1 + 1.75 + 50*(-10)*50*7e-6 = 2.575
#   R = 60: 1 + 2.1 + 0             = 3.1
#   R = 70: 1 + 2.45 + 70*10*30*7e-6 = 3.597
#   R = 80: 1 + 2.8 + 80*20*20*7e-6  = 4.024
#   R = 90: 1 + 3.15 + 90*30*10*7e-6 = 4.339
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("r", "expected"),
    [(0, 1.0), (50, 2.575), (60, 3.1), (70, 3.597), (80, 4.024), (90, 4.339), (100, 4.5)],
)
def test_mos_from_r_points(r, expected):
    assert mos_from_r(r) == pytest.approx(expected, abs=MOS_TOL)


@pytest.mark.parametrize(
    ("r", "published"),
    # G.107 Annex B, Table B.1 (R -> MOS_CQE, user satisfaction classes), given to
    # two decimals; 4.03 at R = 80 is the table's rounding of 4.024, hence 0.01.
    [(90, 4.34), (80, 4.03), (70, 3.60), (60, 3.10), (50, 2.58)],
)
def test_mos_from_r_matches_table_b1(r, published):
    assert mos_from_r(r) == pytest.approx(published, abs=0.01)


def test_mos_from_r_bounds_and_shape():
    assert mos_from_r(-0.001) == 1.0
    assert mos_from_r(-1e9) == 1.0
    assert mos_from_r(100.001) == 4.5
    assert mos_from_r(1e9) == 4.5
    # Continuous at both ends of the polynomial.
    assert mos_from_r(1e-9) == pytest.approx(1.0, abs=1e-6)
    assert mos_from_r(100 - 1e-9) == pytest.approx(4.5, abs=1e-6)
    # The Annex B polynomial is below 1 on 0 < R < 6.515 (roots of
    # R^2 - 160 R + 1000 = 0, i.e. where 0.035 + 7e-6 (R - 60)(100 - R) = 0), e.g.
    # R = 5: 1 + 0.175 - 5*55*95*7e-6 = 0.9921 -> floored at 1.
    assert mos_from_r(5) == 1.0
    assert mos_from_r(6.6) > 1.0
    grid = [i * 0.5 for i in range(-10, 221)]
    values = [mos_from_r(r) for r in grid]
    assert all(1.0 <= v <= 4.5 for v in values)
    assert all(a <= b for a, b in zip(values, values[1:]))


# ---------------------------------------------------------------------------
# Input handling.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("loss", [-0.001, -5, 100.001, 150, math.nan, math.inf])
def test_bad_loss_is_rejected(loss):
    with pytest.raises(ValueError):
        r_factor("PCMU", 0, loss)


@pytest.mark.parametrize("delay", [-1, math.nan, math.inf, "x"])
def test_bad_delay_is_rejected(delay):
    with pytest.raises(ValueError):
        r_factor("PCMU", delay, 0)


@pytest.mark.parametrize("burst", [0, -1, math.nan, math.inf])
def test_bad_burst_ratio_is_rejected(burst):
    with pytest.raises(ValueError):
        r_factor("PCMU", 0, 1, burst_ratio=burst)


def test_burst_ratio_below_one_is_raised_to_one():
    assert r_factor("PCMU", 0, 5, burst_ratio=0.7) == r_factor("PCMU", 0, 5, burst_ratio=1.0)


def test_loss_bounds_are_inclusive():
    assert r_factor("PCMU", 0, 0) == pytest.approx(R_DEFAULT, abs=R_TOL)
    # 100 %: Ie,eff = 9500/125.1 = 75.9392 -> R = 17.2670
    assert r_factor("PCMU", 0, 100) == pytest.approx(17.2670, abs=R_TOL)


def test_mos_from_r_rejects_nan():
    with pytest.raises(ValueError):
        mos_from_r(math.nan)


@pytest.mark.parametrize("codec", ["speex", "iLBC", "L16", "AMR", "", "G726"])
def test_unsupported_codecs_raise_and_name_the_supported_ones(codec):
    with pytest.raises(ValueError) as err:
        r_factor(codec, 0, 0)
    for name in ("PCMU", "PCMA", "G729", "GSM", "G722", "OPUS"):
        assert name in str(err.value)


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("pcmu", "PCMU"),
        ("PCMU/8000", "PCMU"),
        ("PCMU/8000/1", "PCMU"),
        ("G.711", "PCMU"),
        ("g711a", "PCMA"),
        ("G729/8000", "G729"),
        ("G.729A", "G729"),
        ("GSM-FR", "GSM"),
        ("gsm/8000/1", "GSM"),
        ("G722/16000/1", "G722"),
        ("G.722", "G722"),
    ],
)
def test_codec_names_are_normalised(alias, canonical):
    assert r_factor(alias, 120, 1.5) == r_factor(canonical, 120, 1.5)
