"""OEQ settings from ``--metadata``, per-sample scoring and data errors, without running a model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lm_eval_medinj.base_task import load_dataset
from lm_eval_medinj.oeq.bertscore import BertScoreSettings
from lm_eval_medinj.oeq.bleu import sentence_bleu, signature
from lm_eval_medinj.oeq.meteor import meteor
from lm_eval_medinj.oeq.rouge import rouge
from lm_eval_medinj.oeq.task import METRICS, OEQSettings, score_sample
from lm_eval_medinj.records import RecordError


def test_settings_defaults_and_metadata_keys() -> None:
    assert OEQSettings.from_metadata({"data_dir": "/data", "version": 1.0}) == OEQSettings()
    settings = OEQSettings.from_metadata(
        {
            "bleu_tokenize": "13a",
            "rouge_stem": True,
            "bertscore_model": "/models/xlm-roberta-large",
            "bertscore_layer": 16,
            "bertscore_rescale": False,
            "bertscore_batch_size": 8,
        }
    )
    assert settings == OEQSettings(
        bleu_tokenize="13a",
        rouge_stem=True,
        bertscore=BertScoreSettings(model="/models/xlm-roberta-large", layer=16, rescale=False, batch_size=8),
    )
    assert settings.signatures() == {
        "sacrebleu_signature": signature("13a"),
        "sacrebleu_sentence_signature": signature("13a", sentence=True),
        "bertscore_signature": settings.bertscore.signature,
    }
    assert settings.signatures()["bertscore_signature"].startswith("xlm-roberta-large_L16_no-idf")


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"bleu_tokenize": "moses"}, "must be one of"),
        ({"bertscore_layer": "9"}, "must be of type int"),
        ({"bertscore_layer": True}, "must be of type int"),
        ({"rouge_stem": "yes"}, "must be of type bool"),
    ],
)
def test_settings_errors(metadata: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OEQSettings.from_metadata(metadata)


def test_score_sample_keeps_pairs_for_corpus_metrics_and_scores_the_rest() -> None:
    reference, generated = "Le patient présente une hépatite sévère.", " Le patient présente une hépatite légère.\n"
    answer = generated.strip()
    scores = score_sample({"reference": reference}, [generated], OEQSettings())
    assert set(scores) == set(METRICS)
    assert scores["bleu"] == scores["bertscore"] == (reference, answer)
    assert scores["bleu_sentence"] == sentence_bleu(reference, answer)
    assert scores["meteor"] == meteor(reference, answer)
    assert {name: scores[name] for name in ("rouge1", "rouge2", "rougeL")} == rouge(reference, answer)
    assert (scores["answer_chars"], scores["answer_words"]) == (len(answer), 6)


def test_empty_reference_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "Native" / "Test" / "oeq"
    folder.mkdir(parents=True)
    record = {
        "id": "oeq-empty",
        "messages": [{"role": "user", "content": "Quelle est la cause ?"}, {"role": "assistant", "content": " "}],
        "answer": " ",
    }
    (folder / "oeq_test.json").write_text(json.dumps([record]), encoding="utf-8")
    with pytest.raises(RecordError, match="oeq-empty.*empty reference"):
        load_dataset("medinjection", "oeq", ["native"], data_dir=str(tmp_path))


def test_fixture_is_read_as_french_open_questions(oeq_data_dir: Path) -> None:
    docs = load_dataset("medinjection", "oeq", ["native"], data_dir=str(oeq_data_dir))["test"]
    assert len(docs) == 4
    assert {doc["task"] for doc in docs} == {"oeq"}
    assert all(doc["reference"].strip() for doc in docs)
