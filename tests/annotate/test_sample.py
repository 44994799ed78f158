"""Drawing rating items: stratified by model (and verdict), blinded, seeded; bad runs refused in one line."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lm_eval_medinj.annotate.folder import read_folder
from lm_eval_medinj.annotate.sample import allocate, read_answers, sample_folder
from lm_eval_medinj.errors import InputError, UsageError
from tests.annotate.helpers import write_run


@given(st.lists(st.integers(0, 30), min_size=1, max_size=6), st.data())
def test_allocation_is_the_even_split_the_sizes_allow(sizes: list[int], data: st.DataObject) -> None:
    n = data.draw(st.integers(0, sum(sizes)))
    shares = allocate(dict(enumerate(sizes)), n)
    assert sum(shares.values()) == n
    assert all(0 <= shares[i] <= size for i, size in enumerate(sizes))
    # max-min fair: a stratum with fewer than another's share minus one has given all it has
    for i, size in enumerate(sizes):
        for j in range(len(sizes)):
            if shares[i] < shares[j] - 1:
                assert shares[i] == size
            if shares[i] < shares[j] and shares[i] < size:  # the extra units of an uneven split go first
                assert shares[j] == shares[i] + 1 and j < i


def test_items_are_stratified_by_model_blinded_and_seeded(tmp_path: Path) -> None:
    runs = [("NAT", write_run(tmp_path / "nat", "NAT", 10)), ("base", write_run(tmp_path / "base", "base", 4))]
    study = sample_folder(tmp_path / "ann", runs, n=9, seed=3)
    folder = read_folder(tmp_path / "ann")
    assert study.stratify == ("model",) and study.models == ("NAT", "base") and study.n == 9
    assert Counter(entry.model for entry in folder.key.values()) == {"NAT": 5, "base": 4}
    for name, item in folder.items.items():
        entry = folder.key[name]
        assert item.answer == f"{entry.model} répond {entry.doc_id}"  # the key un-blinds the item
        assert item.question == f"Question {entry.doc_id} ?" and item.reference == f"Référence {entry.doc_id}."
        assert (entry.task, entry.id, entry.uid) == (
            "medinj_oeq_native",
            f"q{entry.doc_id}",
            f"medinj_oeq_native/q{entry.doc_id}",
        )
        assert entry.run == str(dict(runs)[entry.model]) and entry.judge is None
    items_text = (tmp_path / "ann" / "items.jsonl").read_text(encoding="utf-8")
    assert "NAT" not in json.dumps([json.loads(line)["item"] for line in items_text.splitlines()])
    assert all(
        set(json.loads(line)) == {"item", "question", "context", "reference", "answer"}
        for line in items_text.splitlines()
    )
    models = [folder.key[name].model for name in folder.items]
    assert models != sorted(models, key=["NAT", "base"].index)  # shuffled: position does not reveal the model

    sample_folder(tmp_path / "again", runs, n=9, seed=3)
    assert (tmp_path / "again" / "key.jsonl").read_text() == (tmp_path / "ann" / "key.jsonl").read_text()
    sample_folder(tmp_path / "other", runs, n=9, seed=4)
    assert (tmp_path / "other" / "key.jsonl").read_text() != (tmp_path / "ann" / "key.jsonl").read_text()


def test_by_verdict_rates_both_verdicts_of_each_model(tmp_path: Path) -> None:
    runs = [
        ("NAT", write_run(tmp_path / "nat", "NAT", 6, judge_p=[0.9, 0.8, 0.1, 0.2, 0.3, 0.4])),
        ("base", write_run(tmp_path / "base", "base", 6, judge_p=[0.9, 0.1, 0.2, 0.3, 0.35, 0.45])),
    ]
    study = sample_folder(tmp_path / "ann", runs, n=8, seed=0, by_verdict=True)
    folder = read_folder(tmp_path / "ann")
    assert study.stratify == ("model", "judge_verdict")
    strata = Counter((e.model, e.judge.verdict) for e in folder.key.values() if e.judge is not None)
    # base has a single "equivalent" answer: it gives it, and its other 3 come from "not equivalent"
    assert strata == {("NAT", 1): 2, ("NAT", 0): 2, ("base", 1): 1, ("base", 0): 3}
    entry = next(e for e in folder.key.values() if e.model == "NAT" and e.doc_id == 0)
    assert entry.judge is not None and entry.judge.p_equivalent == 0.9


def test_the_context_is_shown_unless_the_question_already_holds_it(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", "A", 2)
    samples = next(run.rglob("samples_*.jsonl"))
    rows = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines()]
    rows[0]["doc"]["context"] = "Femme de 30 ans, enceinte."
    rows[1]["doc"]["context"] = "Question"
    samples.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    answers = read_answers("A", run)
    assert [a.context for a in answers] == ["Femme de 30 ans, enceinte.", None]


def test_bad_runs_and_draws_are_refused_in_one_line(tmp_path: Path) -> None:
    good = write_run(tmp_path / "good", "A", 3)
    empty = tmp_path / "mcq-only"
    (empty / "m").mkdir(parents=True)
    (empty / "m" / "samples_medinj_mcq_gen_2026-01-01T00-00-00.jsonl").write_text("{}\n")
    with pytest.raises(InputError, match=r"model B: no OEQ samples \(samples_\*oeq\*\.jsonl\) below .*mcq-only"):
        sample_folder(tmp_path / "ann", [("A", good), ("B", empty)], n=2)
    with pytest.raises(UsageError, match=r"--n 4 is larger than the pool: 3 answers \(A 3\)"):
        sample_folder(tmp_path / "ann", [("A", good)], n=4)
    with pytest.raises(UsageError, match="--by-verdict needs judge/score.py rows"):
        sample_folder(tmp_path / "ann", [("A", good)], n=2, by_verdict=True)
    with pytest.raises(UsageError, match="model labels repeat"):
        sample_folder(tmp_path / "ann", [("A", good), ("A", good)], n=2)
    with pytest.raises(UsageError, match="smaller than the number of strata"):
        sample_folder(tmp_path / "ann", [("A", good), ("B", write_run(tmp_path / "b", "B", 3))], n=1)
    assert not (tmp_path / "ann").exists()


def test_judge_rows_must_match_their_samples_and_one_judge_be_chosen(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", "A", 3, judge_p=[0.9, 0.1, 0.2], judge_slug="hf-judge-a")
    write_run(tmp_path / "run", "A", 3, judge_p=[0.2, 0.1, 0.9], judge_slug="hf-judge-b")
    with pytest.raises(
        UsageError, match=r"judged by several judges \(hf-judge-a, hf-judge-b\); choose one with --judge"
    ):
        read_answers("A", run)
    assert [a.judge.verdict for a in read_answers("A", run, "hf:judge/b")] == [0, 0, 1]  # type: ignore[union-attr]
    judged = next(run.rglob("judge_hf-judge-a_*.jsonl"))
    rows = judged.read_text(encoding="utf-8").splitlines()
    judged.write_text("\n".join([rows[1], rows[0], rows[2]]) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"judge_hf-judge-a_.*:1: does not match .*samples_.*:1"):
        read_answers("A", run, "hf:judge/a")


def _edit_line(path: Path, index: int, **fields: object) -> None:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    rows[index].update(fields)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def test_a_judge_not_found_or_a_verdict_that_is_not_0_or_1_is_refused_naming_it(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", "A", 3, judge_p=[0.9, 0.1, 0.2], judge_slug="hf-judge-a")
    with pytest.raises(UsageError, match=r"--judge hf:judge/typo: no judge_hf-judge-typo_.* \(hf-judge-a found\)"):
        read_answers("A", run, "hf:judge/typo")
    judged = next(run.rglob("judge_hf-judge-a_*.jsonl"))
    for field, value, message in [
        ("verdict", True, "field 'verdict': Input should be a valid integer"),
        ("verdict", 0.0, "field 'verdict': Input should be a valid integer"),
        ("p_equivalent", "0.9", "field 'p_equivalent': Input should be a valid number"),
        ("p_equivalent", None, "field 'p_equivalent': Input should be a valid number"),
    ]:
        original = judged.read_bytes()
        _edit_line(judged, 1, **{field: value})
        with pytest.raises(InputError, match=rf"^{judged}:2: {message}"):
            read_answers("A", run)
        judged.write_bytes(original)


def test_a_sample_whose_doc_id_is_not_a_number_is_refused_and_the_key_holds_absolute_run_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = write_run(tmp_path / "run", "A", 3)
    monkeypatch.chdir(tmp_path)
    assert {answer.run for answer in read_answers("A", Path("run"))} == {str(run.resolve())}
    samples = next(run.rglob("samples_*oeq*.jsonl"))
    _edit_line(samples, 2, doc_id=True)
    with pytest.raises(InputError, match=rf"^{samples}:3: not an lm-eval sample \(fields 'doc' and 'doc_id'\)"):
        read_answers("A", run)
