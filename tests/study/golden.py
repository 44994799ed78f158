"""A fixed study, built in memory, whose report figures are kept in ``golden_report.json``.

The file was written by the report code of commit 52b197e (before the draws were shared between
figures and the samples streamed), from this very module:

    git archive 52b197e lm_eval_medinj | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old:. python -m tests.study.golden tests/study/golden_report.json

``test_report_figures.py`` checks that today's report gives every one of its figures unchanged
(those from fractional scores to 1e-12: the machine's BLAS kernel rounds their sums).
Only fields both versions know are used (no ``uid``, one run per label).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from lm_eval_medinj.study.report import ReportOptions, build_report
from lm_eval_medinj.study.runs import Item, JudgedItem, Run

GOLDEN = Path(__file__).with_name("golden_report.json")
LABELS = ("base", "NAT", "ALL")
OPTIONS = {"baseline": "base", "pairs": (("NAT", "ALL"),), "n_resamples": 400, "seed": 3}
SIZES = {"mcqu": 90, "mcq": 70}  # different cluster counts: the strata are drawn from different streams
PROVENANCES = ("native", "translated", "synthetic")
ORIGINS = ("FrenchMedMCQA", "MediQAl", "MedQA", "")


def _items(suite: str, fmt: str, skill: float, rng: np.random.Generator, layout: np.random.Generator) -> list[Item]:
    mode = suite.removeprefix("medinj_mcq")
    items = []
    for i in range(SIZES[fmt]):
        correct = float(rng.random() < skill)
        hamming = None
        if fmt == "mcq":  # partial credit in fifths and thirds: sums that are not exact in binary
            hamming = 1.0 if correct else float(rng.choice([0.0, 0.2, 0.4, 1 / 3, 2 / 3, 0.8]))
        items.append(
            Item(
                task=f"medinj_{fmt}_all{mode}",
                id=f"{fmt}-{i:03d}",
                format=fmt,
                cluster=f"case-{i // 3}" if fmt == "mcq" and i % 7 < 4 else f"{fmt}-{i:03d}",
                provenance=PROVENANCES[int(layout.integers(0, 3))],
                origin=ORIGINS[int(layout.integers(0, 4))],
                em=correct,
                hamming=hamming,
                protocol="paper",
                prompt_source="conversation",
            )
        )
    return items


def golden_runs() -> list[Run]:
    """Three models, two suites (MCQU + MCQ each) and judged open answers, drawn from fixed seeds."""
    runs = []
    for index, label in enumerate(LABELS):
        rng = np.random.default_rng(100 + index)
        suites = {}
        for suite in ("medinj_mcq", "medinj_mcq_gen"):
            layout = np.random.default_rng(7)  # the same provenance and origin in every run
            suites[suite] = [item for fmt in SIZES for item in _items(suite, fmt, 0.3 + 0.1 * index, rng, layout)]
        judged = [
            JudgedItem(
                source="hf:judge on medinj_oeq_native",
                id=f"oeq-{i:02d}",
                verdict=float(rng.random() < 0.4 + 0.1 * index),
                p_equivalent=float(rng.random()),
                p_calibrated=float(rng.random()),
                words=float(rng.integers(5, 80)),
                cluster=f"oeq-{i:02d}",
            )
            for i in range(40)
        ]
        settings = {"chat_template_sha": "abc", "system_instruction_sha": None, "fewshot_as_multiturn": True}
        settings["n_shot"] = {item.task: 0 for items in suites.values() for item in items}
        runs.append(Run(label, Path(label), suites, judged, [{"length_controlled": None}], settings))
    return runs


def golden_report() -> dict:
    return build_report(golden_runs(), ReportOptions(**OPTIONS))


if __name__ == "__main__":
    report = golden_report()
    kept = {key: report[key] for key in ("suites", "comparisons", "judge", "tests_corrected")}
    Path(sys.argv[1]).write_text(json.dumps(kept, indent=1, sort_keys=True) + "\n", encoding="utf-8")
