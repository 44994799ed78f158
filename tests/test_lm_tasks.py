"""lm-eval hooks: dataset loading, choices, targets and per-sample scoring."""

from __future__ import annotations

from pathlib import Path

import pytest

from lm_eval_medinj.base_task import doc_to_target, doc_to_text, load_dataset
from lm_eval_medinj.mcq.task import doc_to_choice, process_choice_results, process_generation_results
from lm_eval_medinj.records import MedRecord

MCQ_DOC = MedRecord("q", "native", "demo", "mcq", "Q ?", {k: k.lower() for k in "ABCDE"}, ("A", "C")).to_doc()
MCQU_DOC = MedRecord("u", "native", "demo", "mcqu", "Q ?", {k: k.lower() for k in "ABCD"}, ("B",)).to_doc()


def test_load_frenchmedmcqa_dataset(frenchmedmcqa_dir: Path) -> None:
    dataset = load_dataset(benchmark="frenchmedmcqa", task="mcq", data_dir=str(frenchmedmcqa_dir), version=1.0)
    assert (len(dataset["test"]), len(dataset["validation"])) == (301, 148)
    assert set(dataset["test"][0]["option_letters"]) == set("ABCDE")


def test_load_pooled_medinjection_dataset(demo_data_dir: Path) -> None:
    dataset = load_dataset(
        benchmark="medinjection", task="mcqu", provenances=["native", "translated"], data_dir=str(demo_data_dir)
    )
    assert len(dataset["test"]) == 36 and len(dataset["validation"]) == 7
    assert {doc["provenance"] for doc in dataset["test"]} == {"native", "translated"}


def test_unknown_benchmark() -> None:
    with pytest.raises(ValueError, match="unknown benchmark 'medqa'"):
        load_dataset(benchmark="medqa", task="mcq", data_dir=".")


def test_choices_and_targets() -> None:
    assert len(doc_to_choice(MCQ_DOC)) == 31 and doc_to_target(MCQ_DOC) == "A, C"
    assert doc_to_choice(MCQU_DOC) == ["A", "B", "C", "D"] and doc_to_target(MCQU_DOC) == "B"
    assert doc_to_text(MCQ_DOC).endswith("(E) e\n\nRéponse :")


def test_choice_scoring_takes_the_most_likely_candidate() -> None:
    choices = doc_to_choice(MCQ_DOC)
    results = [(-10.0, False)] * len(choices)
    results[choices.index("A, C")] = (-1.0, True)
    assert process_choice_results(MCQ_DOC, results) == {"em": 1.0, "hamming": 1.0}
    results[choices.index("A, B, C")] = (-0.5, False)
    assert process_choice_results(MCQ_DOC, results) == {"em": 0.0, "hamming": pytest.approx(2 / 3)}
    assert process_choice_results(MCQU_DOC, [(-3.0, False), (-1.0, True), (-2.0, False), (-4.0, False)]) == {"em": 1.0}


@pytest.mark.parametrize(
    ("generated", "em", "hamming"),
    [(" A, C", 1.0, 1.0), ("C, A\n", 1.0, 1.0), ("A", 0.0, 0.5), ("A, C, F", 0.0, 0.0), ("Réponse A, C", 0.0, 0.0)],
)
def test_greedy_generation_strict_parse(generated: str, em: float, hamming: float) -> None:
    doc = {**MCQ_DOC, "protocol": "strict"}
    assert process_generation_results(doc, [generated]) == {"em": em, "hamming": pytest.approx(hamming)}


@pytest.mark.parametrize(
    ("generated", "em", "hamming"),
    [(" A, C", 1.0, 1.0), ("C\n\nA\n\nC", 1.0, 1.0), ("a;c.", 1.0, 1.0), ("A", 0.0, 0.5), ("A, C, F", 0.0, 0.0),
     ("Réponse A, C", 0.0, 0.0), (",", 0.0, 0.0)],
)  # fmt: skip
def test_generation_authors_parse(generated: str, em: float, hamming: float) -> None:
    doc = {**MCQ_DOC, "protocol": "paper"}
    assert process_generation_results(doc, [generated]) == {"em": em, "hamming": pytest.approx(hamming)}


def test_documents_carry_protocol_and_prompt_source(demo_data_dir: Path, frenchmedmcqa_dir: Path) -> None:
    native = load_dataset(benchmark="medinjection", task="mcq", provenances=["native"], data_dir=str(demo_data_dir))
    assert {(doc["protocol"], doc["prompt_source"]) for doc in native["test"]} == {("paper", "conversation")}
    canonical = load_dataset(benchmark="medinjection", task="mcq", provenances=["native"],
                             data_dir=str(demo_data_dir), protocol="strict", prompt="canonical")  # fmt: skip
    assert {(doc["protocol"], doc["prompt_source"]) for doc in canonical["test"]} == {("strict", "canonical")}
    fmm = load_dataset(benchmark="frenchmedmcqa", task="mcqu", data_dir=str(frenchmedmcqa_dir))
    assert {doc["prompt_source"] for doc in fmm["test"]} == {"canonical"}, "no conversation: canonical prompt"


@pytest.mark.parametrize(("key", "value"), [("protocol", "paperr"), ("prompt", "chat")])
def test_unknown_protocol_or_prompt_is_refused(demo_data_dir: Path, key: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"--metadata '{key}' must be one of"):
        load_dataset(benchmark="medinjection", task="mcq", data_dir=str(demo_data_dir), **{key: value})
