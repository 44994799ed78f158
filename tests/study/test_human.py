"""The report's human column against a recomputation from the raters' journals (no model, no browser)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr

from lm_eval_medinj.annotate.folder import write_folder
from lm_eval_medinj.annotate.records import BlindItem, KeyEntry, Scale, Study
from lm_eval_medinj.study.human import human_section, read_annotations
from lm_eval_medinj.study.render import _human_md as human_md
from lm_eval_medinj.study.runs import JudgedItem, Run, StudyError

# item -> (model, record id, judge P in the runs' rows, ratings by alice and bob)
ITEMS = {
    "it-0001": ("NAT", "q1", 0.9, (5, 4)),
    "it-0002": ("NAT", "q2", 0.2, (2, 1)),
    "it-0003": ("NAT", "q3", 0.6, (4, 4)),
    "it-0004": ("base", "q1", 0.7, (3, 5)),
    "it-0005": ("base", "q2", 0.1, (1, 2)),
}


def make_folder(root: Path) -> tuple[Path, dict[str, Run]]:
    runs = {label: Run(label, root / label) for label in ("base", "NAT", "ALL")}
    for run in runs.values():
        run.folder.mkdir(parents=True)
    study = Study(format="medinj-annotation/1", scale=Scale.of("likert5"), seed=0, n=len(ITEMS),
                  stratify=("model",), models=("NAT", "base"), created_at="2026-12-07T00:00:00+00:00")  # fmt: skip
    items = [BlindItem(item=name, question="Q ?", context=None, reference="R.", answer="A.") for name in ITEMS]
    key = []
    for name, (model, record, p, _) in ITEMS.items():
        key.append(KeyEntry(item=name, model=model, run=str(runs[model].folder), task="medinj_oeq_native", doc_id=0,
                            id=record, uid=f"medinjection/native-oeq/{record}", judge=None))  # fmt: skip
        judged = JudgedItem("hf:judge on medinj_oeq_native", record, float(p >= 0.5), p, None, 10.0, record)
        runs[model].judged.append(judged)
    folder = root / "ann"
    write_folder(folder, study, items, key)
    for index, rater in enumerate(("alice", "bob")):
        lines = [{"item": n, "rating": r[3][index], "comment": "", "at": "2026-12-07T10:00:00+00:00"} for n, r in
                 ITEMS.items()]  # fmt: skip
        (folder / "ratings" / f"{rater}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return folder, runs


def test_the_human_column_is_the_mean_over_raters_then_items(tmp_path: Path) -> None:
    folder, runs = make_folder(tmp_path)
    section = human_section(read_annotations(folder), list(runs.values()), ["base", "NAT", "ALL"], 2000, 0, 0.95)
    for model in ("NAT", "base"):
        means = [np.mean(ratings) for m, _, _, ratings in ITEMS.values() if m == model]
        cell = section["table"][model]
        assert (cell["n"], cell["raters_per_item"]) == (len(means), 2.0)
        assert cell["estimate"] == pytest.approx(np.mean(means)) and cell["low"] <= cell["estimate"] <= cell["high"]
    assert section["table"]["ALL"] is None, "a model nobody rated has no figure, not a zero"
    p = [entry[2] for entry in ITEMS.values()]
    human = [np.mean(entry[3]) for entry in ITEMS.values()]
    correlation = section["judge_correlation"]
    assert correlation["n"] == len(ITEMS)
    assert correlation["pearson"]["value"] == pytest.approx(pearsonr(p, human).statistic)


def test_a_folder_rating_models_the_report_lacks_is_refused(tmp_path: Path) -> None:
    folder, runs = make_folder(tmp_path)
    with pytest.raises(StudyError, match="rates models NAT, which are not among this report's"):
        human_section(read_annotations(folder), [runs["base"]], ["base"], 200, 0, 0.95)


def test_spearman_is_scipys_and_constant_ratings_give_no_correlation_not_nan(tmp_path: Path) -> None:
    folder, runs = make_folder(tmp_path)
    labels = ["base", "NAT", "ALL"]
    section = human_section(read_annotations(folder), list(runs.values()), labels, 2000, 0, 0.95)
    p = [entry[2] for entry in ITEMS.values()]
    human = [np.mean(entry[3]) for entry in ITEMS.values()]
    assert section["judge_correlation"]["spearman"]["value"] == pytest.approx(spearmanr(p, human).statistic)
    for rater in ("alice", "bob"):  # every answer rated 3: no correlation is defined
        journal = folder / "ratings" / f"{rater}.jsonl"
        lines = [json.loads(line) | {"rating": 3} for line in journal.read_text().splitlines()]
        journal.write_text("".join(json.dumps(x) + "\n" for x in lines))
    flat = human_section(read_annotations(folder), list(runs.values()), labels, 2000, 0, 0.95)["judge_correlation"]
    assert flat["pearson"] == flat["spearman"] == {"value": None, "low": None, "high": None}
    report = {"human": {"folder": str(folder), "scale": "likert5", "table": {}, "judge_correlation": flat}}
    assert "Pearson r = n/a, Spearman rho = n/a" in "\n".join(human_md(report))
    json.dumps(flat, allow_nan=False)
