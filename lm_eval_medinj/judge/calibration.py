"""Calibration of P(equivalent) to P(the human says equivalent): Platt (logistic) or isotonic."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lm_eval_medinj.errors import InputError

EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    clipped = np.clip(p, EPS, 1 - EPS)
    return np.log(clipped / (1 - clipped))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


@dataclass(frozen=True)
class Calibration:
    """A fitted map for one judge and prompt version, saved as JSON.

    ``length_coef`` is the effect of log relative length on logit P(equivalent) at fixed human
    label, which :func:`lm_eval_medinj.judge.verbosity.length_controlled` can reuse.
    """

    judge: str
    prompt: str
    method: str
    params: dict[str, Any]
    n: int
    length_coef: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def apply(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype=float)
        if self.method == "platt":
            return sigmoid(self.params["slope"] * logit(p) + self.params["intercept"])
        return np.interp(p, self.params["x"], self.params["y"])

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Calibration:
        return cls(**json.loads(path.read_text(encoding="utf-8")))

    def check(self, judge: str, prompt: str) -> None:
        """Refuse a calibration fitted for another judge or prompt version."""
        if (self.judge, self.prompt) != (judge, prompt):
            raise InputError(
                f"calibration was fitted for judge {self.judge!r} with prompt {self.prompt!r}, "
                f"not {judge!r} with {prompt!r}"
            )


def _fit_params(p: np.ndarray, labels: np.ndarray, method: str) -> dict[str, Any]:
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=1e6).fit(logit(p)[:, None], labels)
        return {"slope": float(model.coef_[0, 0]), "intercept": float(model.intercept_[0])}
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, labels)
        return {"x": model.X_thresholds_.tolist(), "y": model.y_thresholds_.tolist()}
    raise ValueError(f"unknown calibration method {method!r} (platt, isotonic)")


def brier(p: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean((p - labels) ** 2))


def expected_calibration_error(p: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """Mean |observed - predicted| over equal-width bins, weighted by bin size."""
    index = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.sum() * abs(labels[mask].mean() - p[mask].mean())
    return float(total / len(p))


def fit_calibration(
    judge: str,
    prompt: str,
    p: np.ndarray,
    labels: np.ndarray,
    method: str = "platt",
    length_coef: float | None = None,
    folds: int = 5,
    seed: int = 0,
) -> Calibration:
    """Fit on all items; report Brier and ECE raw, in-sample and ``folds``-fold cross-validated."""
    if len(set(labels.tolist())) < 2:
        raise InputError("calibration needs both equivalent and non-equivalent human labels")
    params = _fit_params(p, labels, method)
    fitted = Calibration(judge, prompt, method, params, len(p), length_coef)
    cross = np.empty_like(p)
    order = np.random.default_rng(seed).permutation(len(p))
    for fold in np.array_split(order, folds):
        train = np.setdiff1d(order, fold)
        if len(set(labels[train].tolist())) < 2:
            cross[fold] = labels[train].mean()
            continue
        cross[fold] = Calibration(
            judge, prompt, method, _fit_params(p[train], labels[train], method), len(train)
        ).apply(p[fold])
    in_sample = fitted.apply(p)
    metrics = {
        "brier_raw": brier(p, labels),
        "brier_calibrated": brier(in_sample, labels),
        "brier_calibrated_cv": brier(cross, labels),
        "ece_raw": expected_calibration_error(p, labels),
        "ece_calibrated": expected_calibration_error(in_sample, labels),
        "ece_calibrated_cv": expected_calibration_error(cross, labels),
    }
    return Calibration(judge, prompt, method, params, len(p), length_coef, metrics)
