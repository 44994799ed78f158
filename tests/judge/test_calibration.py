"""Calibration, length control and perturbations on synthetic data with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lm_eval_medinj.judge.calibration import (
    Calibration,
    expected_calibration_error,
    fit_calibration,
    logit,
    sigmoid,
)
from lm_eval_medinj.judge.items import JudgeItem
from lm_eval_medinj.judge.verbosity import (
    PADDING,
    compare_perturbed,
    length_coefficient,
    length_controlled,
    padded,
    relative_length,
    swapped,
)


def test_platt_recovers_the_true_map(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.98, size=20000)
    labels = (rng.uniform(size=p.size) < sigmoid(2.0 * logit(p) + 0.5)).astype(int)
    fitted = fit_calibration("hf:j", "v1@x", p, labels, "platt", length_coef=0.3)
    assert fitted.params["slope"] == pytest.approx(2.0, abs=0.1)
    assert fitted.params["intercept"] == pytest.approx(0.5, abs=0.1)
    assert fitted.metrics["brier_calibrated_cv"] < fitted.metrics["brier_raw"]
    fitted.save(tmp_path / "cal.json")
    loaded = Calibration.load(tmp_path / "cal.json")
    assert loaded == fitted
    np.testing.assert_allclose(loaded.apply(p[:5]), sigmoid(2.0 * logit(p[:5]) + 0.5), atol=0.03)
    loaded.check("hf:j", "v1@x")
    with pytest.raises(ValueError, match="fitted for judge"):
        loaded.check("hf:other", "v1@x")


def test_isotonic_is_monotone_and_bounded() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(size=500)
    labels = (rng.uniform(size=500) < p**2).astype(int)
    fitted = fit_calibration("hf:j", "v1@x", p, labels, "isotonic")
    grid = np.linspace(-0.5, 1.5, 101)
    out = fitted.apply(grid)
    assert np.all(np.diff(out) >= 0) and out.min() >= 0 and out.max() <= 1


def test_calibration_needs_both_labels() -> None:
    with pytest.raises(ValueError, match="both"):
        fit_calibration("hf:j", "v1@x", np.array([0.2, 0.8]), np.array([1, 1]))


def test_expected_calibration_error_by_hand() -> None:
    # Bin [0.1, 0.2): mean p .1, observed 0 -> .1 ; bin [0.9, 1]: mean p .9, observed .5 -> .4
    p = np.array([0.1, 0.1, 0.9, 0.9])
    labels = np.array([0, 0, 1, 0])
    assert expected_calibration_error(p, labels) == pytest.approx((2 * 0.1 + 2 * 0.4) / 4)


def test_length_control_removes_a_known_length_effect() -> None:
    rng = np.random.default_rng(2)
    length = rng.normal(size=200)
    labels = rng.integers(0, 2, size=200)
    p = sigmoid(-0.3 + 1.5 * length + 2.0 * labels)
    assert length_coefficient(p, length, labels) == pytest.approx(1.5)
    controlled = length_controlled(p, length, coef=1.5)
    assert controlled.mean_p == pytest.approx(float(sigmoid(-0.3 + 2.0 * labels).mean()))
    assert controlled.coef_source == "given"
    assert length_controlled(p, length, labels=labels).coef == pytest.approx(1.5)


def test_perturbations() -> None:
    items = [JudgeItem("a", "Q ?", "Le sodium.", "Le sodium."), JudgeItem("b", "Q ?", "Un deux trois", "Un")]
    assert [i.candidate for i in padded(items)] == ["Le sodium." + PADDING, "Un" + PADDING]
    assert [(i.reference, i.candidate) for i in swapped(items)] == [
        ("Le sodium.", "Le sodium."),
        ("Un", "Un deux trois"),
    ]
    np.testing.assert_allclose(relative_length(items), [0.0, np.log(2 / 4)])
    result = compare_perturbed(np.array([0.9, 0.2, 0.6, 0.4]), np.array([0.4, 0.7, 0.8, 0.3]))
    assert (result.flips_to_equivalent, result.flips_to_not_equivalent) == (1, 1)
    assert result.flip_rate == 0.5 and result.agreement == 0.5
    assert result.mean_delta_p == pytest.approx((-0.5 + 0.5 + 0.2 - 0.1) / 4)
