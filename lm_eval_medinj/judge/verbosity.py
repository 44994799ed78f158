"""Verbosity and position: length features, length-controlled scores, padding and slot swap."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from lm_eval_medinj.judge.calibration import logit, sigmoid
from lm_eval_medinj.judge.items import JudgeItem

# Content-free French filler appended by the padding test (adds no medical fact).
PADDING = (
    " Il convient de souligner que cette réponse doit être interprétée avec prudence, "
    "en tenant compte du contexte clinique et des recommandations en vigueur."
)


def words(text: str) -> int:
    return len(text.split())


def relative_length(items: Sequence[JudgeItem]) -> np.ndarray:
    """log((candidate words + 1) / (reference words + 1)): 0 when as long as the reference."""
    return np.array([np.log((words(i.candidate) + 1) / (words(i.reference) + 1)) for i in items])


def length_coefficient(p: np.ndarray, length: np.ndarray, labels: np.ndarray | None = None) -> float:
    """Slope of logit P(equivalent) on relative length, at fixed human label when given (OLS)."""
    columns = [np.ones_like(length), length] + ([labels.astype(float)] if labels is not None else [])
    coef = np.linalg.lstsq(np.column_stack(columns), logit(p), rcond=None)[0]
    return float(coef[1])


@dataclass(frozen=True)
class LengthControlled:
    """Scores with the length effect removed: each candidate as if as long as its reference."""

    coef: float
    coef_source: str
    mean_p: float
    mean_verdict: float


def length_controlled(
    p: np.ndarray, length: np.ndarray, coef: float | None = None, labels: np.ndarray | None = None
) -> LengthControlled:
    """Like length-controlled win rates: fit the length term, then set length to zero.

    ``coef`` from a calibration (fitted at fixed human label) separates verbosity from quality;
    without it the slope is fitted on these scores, where length and quality are confounded.
    """
    source = "given" if coef is not None else ("fit|label" if labels is not None else "fit")
    slope = coef if coef is not None else length_coefficient(p, length, labels)
    adjusted = sigmoid(logit(p) - slope * length)
    return LengthControlled(slope, source, float(adjusted.mean()), float((adjusted >= 0.5).mean()))


def padded(items: Sequence[JudgeItem]) -> list[JudgeItem]:
    """Candidates with the content-free padding appended."""
    return [replace(item, id=f"{item.id}+pad", candidate=item.candidate.rstrip() + PADDING) for item in items]


def swapped(items: Sequence[JudgeItem]) -> list[JudgeItem]:
    """Candidate and reference exchanged."""
    return [replace(item, id=f"{item.id}+swap", candidate=item.reference, reference=item.candidate) for item in items]


@dataclass(frozen=True)
class PerturbationResult:
    """How verdicts and P(equivalent) move under a perturbation."""

    n: int
    flips_to_equivalent: int
    flips_to_not_equivalent: int
    mean_delta_p: float
    agreement: float

    @property
    def flip_rate(self) -> float:
        return (self.flips_to_equivalent + self.flips_to_not_equivalent) / self.n


def compare_perturbed(p: np.ndarray, p_perturbed: np.ndarray) -> PerturbationResult:
    before, after = p >= 0.5, p_perturbed >= 0.5
    return PerturbationResult(
        n=len(p),
        flips_to_equivalent=int((~before & after).sum()),
        flips_to_not_equivalent=int((before & ~after).sum()),
        mean_delta_p=float((p_perturbed - p).mean()),
        agreement=float((before == after).mean()),
    )
