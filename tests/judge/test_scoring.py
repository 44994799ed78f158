"""Cached scoring and ``judge/score.py`` on lm-eval OEQ samples with a local judge."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from lm_eval_medinj.judge.backends import TransformersJudge
from lm_eval_medinj.judge.cache import JudgementCache
from lm_eval_medinj.judge.calibration import fit_calibration
from lm_eval_medinj.judge.items import JudgeItem, read_items
from lm_eval_medinj.judge.prompt import DEFAULT_PROMPT, PROMPTS_DIR, load_prompt
from lm_eval_medinj.judge.scoring import score_items
from tests.judge.cli import run_script
from tests.judge.samples import write_oeq_samples

ROWS = [
    ("Quel est l'antidote du paracétamol ?", "La N-acétylcystéine.", "La N-acétylcystéine."),
    ("Quel ion dépolarise le neurone ?", "Le sodium.", "Le potassium."),
    ("Quel organe produit l'insuline ?", "Le pancréas.", "Le pancréas, plus précisément les cellules bêta."),
    ("Quelle vitamine pour la coagulation ?", "La vitamine K.", "La vitamine C."),
    ("Quel organe produit l'insuline ?", "Le pancréas.", "Le pancréas."),
]
SAMPLES_NAME = "samples_medinj_oeq_native_2026-11-22T01-02-03.456789.jsonl"


def test_samples_and_plain_jsonl_give_the_same_items(tmp_path: Path) -> None:
    samples = write_oeq_samples(tmp_path / SAMPLES_NAME, ROWS)
    plain = tmp_path / "plain.jsonl"
    plain.write_text(
        "".join(
            json.dumps({"id": f"oeq-{i}", "question": q, "reference": r, "candidate": c}) + "\n"
            for i, (q, r, c) in enumerate(ROWS)
        ),
        encoding="utf-8",
    )
    assert read_items(samples) == read_items(plain)
    assert read_items(samples)[1] == JudgeItem("oeq-1", *ROWS[1])


def _conversation(question: str, reference: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "Tu es un assistant médical."},
        {"role": "user", "content": question},
        {"role": "assistant", "content": reference},
        {"role": "user", "content": "Une relance."},
        {"role": "assistant", "content": "Une autre réponse."},
    ]


def test_messages_give_the_first_user_and_assistant_turns(tmp_path: Path) -> None:
    """As the authors read them: question and reference from the record's own conversation, verbatim."""
    samples = write_oeq_samples(tmp_path / SAMPLES_NAME, ROWS[:2])
    lines = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines()]
    lines[0]["doc"]["messages"] = _conversation(" Question du dossier ?\n", "Réponse du dossier.")
    lines[1]["doc"]["reference"] = ""  # lm-eval's target is the last resort
    samples.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    assert read_items(samples) == [
        JudgeItem("oeq-0", " Question du dossier ?\n", "Réponse du dossier.", ROWS[0][2]),
        JudgeItem("oeq-1", *ROWS[1]),
    ]
    plain = tmp_path / "plain.jsonl"
    rows = [
        {"id": "a", "messages": _conversation("Q ?", "R."), "question": "autre", "candidate": "C."},
        {"id": "b", "messages": [{"role": "user", "content": "Q2 ?"}], "reference": "R2.", "candidate": "C2."},
    ]
    plain.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert read_items(plain) == [JudgeItem("a", "Q ?", "R.", "C."), JudgeItem("b", "Q2 ?", "R2.", "C2.")]


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ({"id": "x", "reference": "R.", "candidate": "C."}, r"#0 \(record 'x'\): no question \(field 'question'"),
        ({"question": "Q ?", "candidate": "C."}, r"#0: no reference \(field 'reference'"),
        ({"id": "x", "messages": "Q ?", "reference": "R."}, r"#0 \(record 'x'\), field 'messages': expected a list"),
        (
            {"id": "x", "messages": [{"role": "user", "content": " "}], "question": "Q ?", "reference": "R."},
            r"#0 \(record 'x'\): no question \(field 'question', or a user turn in field 'messages'\)",
        ),
    ],
)
def test_items_without_question_or_reference_are_refused(tmp_path: Path, row: dict, error: str) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"{re.escape(str(path))}{error}"):
        read_items(path)


def test_cache_scores_each_text_once(tmp_path: Path, tiny_model_dir: Path) -> None:
    judge, prompt = TransformersJudge(str(tiny_model_dir)), load_prompt()
    items = [JudgeItem(str(i), *row) for i, row in enumerate(ROWS)]
    items.append(JudgeItem("dup", *ROWS[0]))  # same text, other id: one key
    cache = JudgementCache(tmp_path / "cache.sqlite")
    first = score_items(items[:3], judge, prompt, cache, batch_size=2, progress=False)
    second = score_items(items, judge, prompt, cache, batch_size=2, progress=False)
    assert (first.cached, first.scored) == (0, 3)
    assert (second.cached, second.scored) == (3, 2)
    assert cache.count() == 5
    np.testing.assert_array_equal(second.p[:3], first.p)
    assert second.p[5] == second.p[0]
    np.testing.assert_allclose(second.p, judge.p_equivalent(items, prompt), atol=1e-5)
    with pytest.raises(sqlite3.IntegrityError):
        cache.put_many(judge.judge_id, prompt.prompt_id, [(items[0].key(judge.judge_id, prompt.prompt_id), 0.5)])
    other_prompt = score_items(items[:1], judge, load_prompt(str(_prompt_copy(tmp_path))), cache, progress=False)
    assert other_prompt.scored == 1
    cache.close()


def _prompt_copy(tmp_path: Path) -> Path:
    """The default prompt with one more comment line: another version for the cache."""
    path = tmp_path / "edited.txt"
    original = (PROMPTS_DIR / f"{DEFAULT_PROMPT}.txt").read_text(encoding="utf-8")
    path.write_text("# edited\n" + original, encoding="utf-8")
    return path


@pytest.mark.slow
def test_score_cli_writes_items_and_aggregate_beside_samples(tmp_path: Path, tiny_model_dir: Path) -> None:
    run_dir = tmp_path / "lm-eval-out" / "model"
    samples = write_oeq_samples(run_dir / SAMPLES_NAME, ROWS)
    write_oeq_samples(run_dir / "samples_medinj_mcqu_native_2026-11-22T01-02-03.456789.jsonl", ROWS[:1])
    cache = tmp_path / "cache.sqlite"
    done = run_script(
        "score.py",
        tmp_path / "lm-eval-out",
        "--judge",
        f"hf:{tiny_model_dir}",
        "--cache",
        cache,
        "--batch-size",
        "2",
        "--no-progress",
    )
    assert done.returncode == 0, done.stderr
    stem = samples.stem.removeprefix("samples_")
    slug = f"hf-{str(tiny_model_dir).strip('/').replace('/', '-')}"
    per_item = [json.loads(line) for line in (run_dir / f"judge_{slug}_{stem}.jsonl").read_text().splitlines()]
    aggregate = json.loads((run_dir / f"judge_results_{slug}_{stem}.json").read_text())
    assert len(list(run_dir.glob("judge_results_*"))) == 1  # the MCQ samples file is not an OEQ task
    assert [row["candidate"] for row in per_item] == [row[2] for row in ROWS]
    p = np.array([row["p_equivalent"] for row in per_item])
    assert [row["verdict"] for row in per_item] == (p >= 0.5).astype(int).tolist()
    assert (aggregate["n"], aggregate["scored"], aggregate["cached"]) == (5, 5, 0)
    assert aggregate["mean_p_equivalent"] == pytest.approx(p.mean())
    assert aggregate["mean_verdict"] == pytest.approx((p >= 0.5).mean())
    assert aggregate["length_controlled"]["coef_source"] == "fit"
    assert aggregate["mean_p_calibrated"] is None

    prompt = load_prompt()  # score.py's default
    calibration = fit_calibration(
        f"hf:{tiny_model_dir}",
        prompt.prompt_id,
        np.array([0.2, 0.4, 0.6, 0.8]),
        np.array([0, 1, 0, 1]),
        "platt",
        length_coef=0.25,
        folds=2,
    )
    calibration.save(tmp_path / "cal.json")
    again = run_script(
        "score.py",
        samples,
        "--judge",
        f"hf:{tiny_model_dir}",
        "--cache",
        cache,
        "--calibration",
        tmp_path / "cal.json",
        "--no-progress",
    )
    assert again.returncode == 0, again.stderr
    rerun = json.loads(again.stdout.strip().splitlines()[-1])
    assert (rerun["cached"], rerun["scored"]) == (5, 0)
    assert rerun["mean_p_calibrated"] == pytest.approx(float(calibration.apply(p).mean()))
    assert rerun["length_controlled"] == {**rerun["length_controlled"], "coef": 0.25, "coef_source": "given"}
