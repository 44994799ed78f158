"""Calibration of P(equivalent) to P(the human says equivalent): Platt (logistic) or isotonic."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, NonNegativeInt, ValidationError, model_validator

from lm_eval_medinj.errors import InputError
from lm_eval_medinj.files import read_text

EPS = 1e-6


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _PlattParams(_Strict):
    slope: FiniteFloat
    intercept: FiniteFloat


class _IsotonicParams(_Strict):
    x: list[FiniteFloat] = Field(min_length=1)
    y: list[FiniteFloat] = Field(min_length=1)

    @model_validator(mode="after")
    def _a_map(self) -> _IsotonicParams:
        if len(self.x) != len(self.y):
            raise ValueError(f"x and y differ in length ({len(self.x)} and {len(self.y)})")
        if any(b < a for a, b in zip(self.x, self.x[1:], strict=False)):
            raise ValueError("x is not in increasing order")
        if any(not 0.0 <= v <= 1.0 for v in self.y):
            raise ValueError("y holds a value outside [0, 1]")
        return self


class CalibrationFile(_Strict):
    """The schema of a calibration JSON (what :meth:`Calibration.save` writes); ``params`` are
    checked against the method's own schema (:data:`PARAMS`)."""

    judge: str
    prompt: str
    method: Literal["platt", "isotonic"]
    params: dict[str, Any]
    n: NonNegativeInt
    length_coef: FiniteFloat | None = None
    metrics: dict[str, FiniteFloat | None] = Field(default_factory=dict)


PARAMS: dict[str, type[_Strict]] = {"platt": _PlattParams, "isotonic": _IsotonicParams}


def _first_error(error: ValidationError, prefix: str = "") -> str:
    """The first problem of a validation error, as ``field 'a.b': message``."""
    first = error.errors()[0]
    where = ".".join([prefix, *map(str, first["loc"])] if prefix else map(str, first["loc"]))
    message = first["msg"].removeprefix("Value error, ")
    return f"field {where!r}: {message}" if where else message


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
        path.write_text(json.dumps(asdict(self), indent=2, allow_nan=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Calibration:
        """A calibration file, checked against :class:`CalibrationFile`: a corrupt or edited one is one line."""
        try:
            data = json.loads(read_text(path))
        except json.JSONDecodeError as error:
            raise InputError(
                f"{path}: not a calibration file: invalid JSON ({error.msg}, line {error.lineno})"
            ) from None
        try:
            checked = CalibrationFile.model_validate(data)
        except ValidationError as error:
            raise InputError(f"{path}: not a calibration file: {_first_error(error)}") from None
        try:
            params = PARAMS[checked.method].model_validate(checked.params)
        except ValidationError as error:
            raise InputError(f"{path}: not a calibration file: {_first_error(error, 'params')}") from None
        return cls(**{**checked.model_dump(), "params": params.model_dump()})

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
