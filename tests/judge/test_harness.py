"""The in-harness judge (``--metadata judge_url``) against a served tiny model."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from lm_eval_medinj.judge.backends import TransformersJudge
from lm_eval_medinj.judge.calibration import fit_calibration
from lm_eval_medinj.judge.harness import HarnessJudge
from lm_eval_medinj.judge.items import JudgeItem
from lm_eval_medinj.judge.prompt import load_prompt
from lm_eval_medinj.records import MedRecord

ANSWERS = [
    ("Quel est l'antidote du paracétamol ?", "La N-acétylcystéine.", " La N-acétylcystéine IV.\n"),
    ("Quel ion dépolarise le neurone ?", "Le sodium.", "Le potassium."),
    ("Quel organe produit l'insuline ?", "Le pancréas.", "Le foie."),
]


def test_harness_judge_aggregates_served_judgements(
    tmp_path: Path, tiny_model_dir: Path, served_tiny_model: str
) -> None:
    assert HarnessJudge.from_metadata({"bleu_tokenize": "intl"}) is None
    metadata = {
        "judge_url": served_tiny_model,
        "judge_model": "tiny",
        "judge_api": "completions",
        "judge_tokenizer": str(tiny_model_dir),
        "judge_top_logprobs": 512,
        "judge_cache": str(tmp_path / "judge.sqlite"),
    }
    prompt = load_prompt()
    local = np.array(
        TransformersJudge(str(tiny_model_dir)).p_equivalent(
            [JudgeItem(str(i), q, r, a.strip()) for i, (q, r, a) in enumerate(ANSWERS)], prompt
        )
    )
    calibration = fit_calibration(
        "openai:tiny", prompt.prompt_id, np.array([0.2, 0.4, 0.6, 0.8]), np.array([0, 1, 0, 1]), folds=2
    )
    calibration.save(tmp_path / "cal.json")
    judge = HarnessJudge.from_metadata({**metadata, "judge_calibration": str(tmp_path / "cal.json")})
    assert judge is not None
    docs = [MedRecord(f"q{i}", "native", "test", "oeq", q, reference=r).to_doc() for i, (q, r, _) in enumerate(ANSWERS)]
    samples = [judge.sample_fields(doc, answer) for doc, (_, _, answer) in zip(docs, ANSWERS, strict=True)]
    entries = {entry["metric"]: entry for entry in copy.deepcopy(judge.metric_list())}  # as lm-eval does
    assert set(entries) == {"judge_equivalent", "judge_p_equivalent", "judge_p_calibrated"}
    values = {name: entry["aggregation"]([s[name] for s in samples]) for name, entry in entries.items()}
    assert values["judge_p_equivalent"] == pytest.approx(local.mean(), abs=1e-4)
    assert values["judge_equivalent"] == pytest.approx((local >= 0.5).mean())
    assert values["judge_p_calibrated"] == pytest.approx(calibration.apply(local).mean(), abs=1e-4)
    assert judge.cache.count() == 3  # three metrics, each item scored once


def test_oeq_task_asks_the_served_judge(tmp_path: Path, tiny_model_dir: Path, served_tiny_model: str) -> None:
    from lm_eval.tasks import TaskManager

    from lm_eval_medinj.paths import tasks_path
    from tests.oeq.conftest import OEQ_FIXTURE_DIR
    from tests.oeq.models import build_tiny_encoder

    metadata = {
        "data_dir": str(OEQ_FIXTURE_DIR),
        "bertscore_model": str(build_tiny_encoder(tmp_path / "encoder")),
        "bertscore_layer": 2,
        "bertscore_rescale": False,
        "judge_url": served_tiny_model,
        "judge_model": "tiny",
        "judge_api": "completions",
        "judge_tokenizer": str(tiny_model_dir),
        "judge_top_logprobs": 512,
    }
    manager = TaskManager(include_path=str(tasks_path()), include_defaults=False, metadata=metadata)
    task = manager.load(["medinj_oeq_native"])["tasks"]["medinj_oeq_native"]
    docs = list(task.test_docs())[:2]
    samples = [task.process_results(doc, [" Une réponse."]) for doc in docs]
    assert {"judge_equivalent", "judge_p_equivalent", "bleu", "rougeL"} <= set(samples[0])
    # The authors' question and reference: the record's first user and first assistant turns.
    turns = [{turn["role"]: turn["content"] for turn in reversed(doc["messages"])} for doc in docs]
    assert samples[0]["judge_p_equivalent"] == (turns[0]["user"], turns[0]["assistant"], "Une réponse.")
    items = [JudgeItem(str(i), t["user"], t["assistant"], "Une réponse.") for i, t in enumerate(turns)]
    local = TransformersJudge(str(tiny_model_dir)).p_equivalent(items, load_prompt())
    aggregate = task.aggregation()["judge_p_equivalent"]([s["judge_p_equivalent"] for s in samples])
    assert aggregate == pytest.approx(float(np.mean(local)), abs=1e-4)


def test_sample_fields_read_the_first_user_and_assistant_turns(served_tiny_model: str) -> None:
    judge = HarnessJudge({"judge_url": served_tiny_model, "judge_model": "tiny"})
    assert judge.prompt.prompt_id == load_prompt().prompt_id
    messages = [
        {"role": "system", "content": "Tu es un assistant médical."},
        {"role": "user", "content": " Question du dossier ?\n"},
        {"role": "assistant", "content": "Réponse du dossier."},
        {"role": "user", "content": "Une relance."},
    ]
    record = MedRecord("q0", "native", "test", "oeq", "Question reformulée ?", reference="Référence.")
    doc = {**record.to_doc(), "messages": messages}
    fields = judge.sample_fields(doc, " Ma réponse.\n")
    assert fields["judge_p_equivalent"] == (" Question du dossier ?\n", "Réponse du dossier.", "Ma réponse.")
    assert judge.sample_fields(record.to_doc(), "R")["judge_equivalent"] == ("Question reformulée ?", "Référence.", "R")
    with pytest.raises(ValueError, match="lm-eval doc 'q0': no reference"):
        judge.sample_fields({**record.to_doc(), "reference": ""}, "R")
