"""Calibration tables: monotone, in [0, 1], percentile semantics, strict loading; ROC AUC."""

import itertools
import json

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from r1data.quality.calibration import Calibration, CalibrationError
from r1data.quality.metrics import binary_report, roc_auc

positive_floats = st.floats(min_value=1.0, max_value=1e6, allow_nan=False, allow_infinity=False)
unit_floats = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(sample=st.lists(positive_floats, min_size=2, max_size=300), probes=st.lists(positive_floats, min_size=2, max_size=50))
def test_perplexity_calibration_is_monotone(sample, probes):
    cal = Calibration.fit(sample, higher_is_better=False, space="log")
    probes = sorted(probes)
    scores = cal.score_array(probes)
    assert np.all((scores >= 0) & (scores <= 1))
    # higher perplexity never gets a higher score
    assert all(b <= a + 1e-12 for a, b in zip(scores, scores[1:]))


@settings(max_examples=200, deadline=None)
@given(sample=st.lists(unit_floats, min_size=2, max_size=300), probes=st.lists(unit_floats, min_size=2, max_size=50))
@example(sample=[0.0, 1.0, 2.225073858507e-311], probes=[0.5, 2.2250738585e-313])  # subnormal knots: np.interp's slope is inf
def test_probability_calibration_is_monotone(sample, probes):
    cal = Calibration.fit(sample, higher_is_better=True)
    probes = sorted(probes)
    scores = cal.score_array(probes)
    assert np.all((scores >= 0) & (scores <= 1))
    assert all(b >= a - 1e-12 for a, b in zip(scores, scores[1:]))


@settings(max_examples=100, deadline=None)
@given(sample=st.lists(positive_floats, min_size=2, max_size=200))
def test_round_trip_through_json_gives_the_same_scores(sample):
    cal = Calibration.fit(sample, higher_is_better=False, space="log")
    back = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    probes = np.geomspace(0.5, 2e6, 40)
    np.testing.assert_allclose(back.score_array(probes), cal.score_array(probes), atol=1e-5)


def test_percentile_meaning():
    ppl = np.arange(1, 1001, dtype=float)  # perplexities 1..1000
    cal = Calibration.fit(ppl, higher_is_better=False, space="log")
    # 300 is better (lower) than 70 % of the sample
    assert cal.score(300.5) == pytest.approx(0.7, abs=0.01)
    assert cal.raw_at(30) == pytest.approx(300.7, rel=0.01)  # CCNet's "p30" cut-off
    assert cal.score(0.5) == 1.0 and cal.score(5000) == 0.0
    assert cal.score(float("inf")) == 0.0 and cal.score(float("nan")) == 0.0
    probs = np.linspace(0, 1, 101)
    cal2 = Calibration.fit(probs, higher_is_better=True)
    assert cal2.score(0.9) == pytest.approx(0.9, abs=0.01)


def test_ties_get_their_mid_rank_and_the_extremes_stay_0_and_1():
    cal = Calibration.fit([1.0] * 30 + [2.0] * 40 + [3.0] * 30, higher_is_better=True)
    assert cal.score(2.0) == pytest.approx(0.5, abs=0.02)
    assert (cal.score(1.0), cal.score(3.0)) == (0.0, 1.0)
    flat = Calibration.fit([5.0] * 10, higher_is_better=True)
    assert (flat.score(4.0), flat.score(5.0), flat.score(6.0)) == (0.0, 0.5, 1.0)


def test_non_finite_raw_scores_are_skipped_when_fitting():
    cal = Calibration.fit([1.0, 2.0, float("nan"), float("inf"), 3.0], higher_is_better=True)
    assert cal.n_documents == 3 and cal.skipped == 2
    with pytest.raises(CalibrationError, match="at least 2"):
        Calibration.fit([1.0, float("nan")], higher_is_better=True)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update(format="other"), "unknown format"),
        (lambda d: d.update(values=d["values"][::-1]), "non-decreasing"),
        (lambda d: d.update(values=d["values"][:-1]), "same length"),
        (lambda d: d.pop("higher_is_better"), "missing or malformed"),
        (lambda d: d.update(percentiles=[0] * len(d["percentiles"])), "percentiles must increase"),
        (lambda d: d.update(space="cubic"), "space must be"),
    ],
)
def test_malformed_tables_are_refused_with_the_reason(mutate, message):
    d = Calibration.fit([1.0, 2.0, 3.0, 10.0], higher_is_better=False, space="log").to_dict()
    mutate(d)
    with pytest.raises(CalibrationError, match=message):
        Calibration.from_dict(d, where="x.card.json")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=12), st.lists(st.integers(0, 5), min_size=1, max_size=12))
def test_roc_auc_matches_pairwise_definition(pos, neg):
    pairs = [(1.0 if p > n else 0.5 if p == n else 0.0) for p, n in itertools.product(pos, neg)]
    assert roc_auc(pos, neg) == pytest.approx(sum(pairs) / len(pairs))


def test_binary_report():
    r = binary_report([0.9, 0.8, 0.3], [0.1, 0.6])
    assert (r["precision"], r["recall"], r["roc_auc"]) == (pytest.approx(0.6667, abs=1e-4), pytest.approx(0.6667, abs=1e-4), pytest.approx(5 / 6, abs=1e-4))
