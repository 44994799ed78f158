"""BERTScore against a greedy cosine matching computed here from the encoder's hidden states."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from lm_eval_medinj.oeq.bertscore import (
    SHIPPED_BASELINES,
    BertScoreSettings,
    BertScoreSettingsError,
    bertscore,
    scorer,
)

REFERENCES = ["Le patient présente une hépatite sévère.", "Une toux sèche et une fièvre."]
ANSWERS = ["Le patient présente une hépatite légère.", "Une fièvre."]


def _hand_f1(encoder_dir: Path, layer: int, pairs: list[tuple[str, str]]) -> list[float]:
    """Greedy cosine matching of the layer's token vectors, as bert-score does without idf.

    Every token may be matched, but [CLS] and [SEP] get zero weight in the means.
    """
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    model = AutoModel.from_pretrained(encoder_dir).eval()

    def vectors(text: str) -> torch.Tensor:
        with torch.no_grad():
            hidden = model(**tokenizer(text, return_tensors="pt"), output_hidden_states=True).hidden_states
        tokens = hidden[layer][0]
        return tokens / tokens.norm(dim=-1, keepdim=True)

    scores = []
    for reference, answer in pairs:
        similarity = vectors(answer) @ vectors(reference).T
        precision = similarity[1:-1].max(dim=1).values.mean().item()
        recall = similarity[:, 1:-1].max(dim=0).values.mean().item()
        scores.append(2 * precision * recall / (precision + recall))
    return scores


def test_bertscore_equals_greedy_cosine_matching(tiny_encoder_dir: Path) -> None:
    settings = BertScoreSettings(model=str(tiny_encoder_dir), layer=1, rescale=False, batch_size=1)
    expected = _hand_f1(tiny_encoder_dir, 1, list(zip(REFERENCES, ANSWERS, strict=True)))
    assert bertscore(REFERENCES, ANSWERS, settings) == pytest.approx(expected, abs=1e-5)
    assert bertscore(REFERENCES, REFERENCES, settings) == pytest.approx([1.0, 1.0], abs=1e-5)


def test_bertscore_rescales_with_a_baseline_file(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.tsv"
    baseline.write_text("LAYER,P,R,F\n0,0.1,0.1,0.1\n1,0.5,0.5,0.4\n", encoding="utf-8")
    plain = BertScoreSettings(model=str(tiny_encoder_dir), layer=1, rescale=False)
    rescaled = BertScoreSettings(model=str(tiny_encoder_dir), layer=1, baseline=str(baseline))
    expected = [(f1 - 0.4) / (1 - 0.4) for f1 in bertscore(REFERENCES, ANSWERS, plain)]
    assert bertscore(REFERENCES, ANSWERS, rescaled) == pytest.approx(expected, abs=1e-6)
    assert "custom-rescaled" in rescaled.signature


def test_empty_answer_scores_zero_before_rescaling(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.tsv"
    baseline.write_text("LAYER,P,R,F\n0,0.1,0.1,0.1\n1,0.5,0.5,0.4\n", encoding="utf-8")
    plain = BertScoreSettings(model=str(tiny_encoder_dir), layer=1, rescale=False)
    rescaled = BertScoreSettings(model=str(tiny_encoder_dir), layer=1, baseline=str(baseline))
    assert bertscore([REFERENCES[0], REFERENCES[1]], [" ", ANSWERS[1]], plain) == pytest.approx(
        [0.0, bertscore([REFERENCES[1]], [ANSWERS[1]], plain)[0]]
    )
    assert bertscore([REFERENCES[0]], [""], rescaled) == pytest.approx([(0 - 0.4) / (1 - 0.4)])


def test_encoder_is_loaded_once_per_settings(tiny_encoder_dir: Path) -> None:
    settings = BertScoreSettings(model=str(tiny_encoder_dir), layer=2, rescale=False)
    assert scorer(settings) is scorer(BertScoreSettings(model=str(tiny_encoder_dir), layer=2, rescale=False))


def test_default_is_multilingual_bert_with_the_shipped_french_baseline() -> None:
    settings = BertScoreSettings()
    assert settings.model_name == "bert-base-multilingual-cased"
    assert settings.num_layers == 9
    assert settings.baseline_path == SHIPPED_BASELINES / "bert-base-multilingual-cased.tsv"
    assert settings.baseline_path.is_file()
    assert settings.signature.startswith("bert-base-multilingual-cased_L9_no-idf_version=")
    assert settings.signature.endswith("-rescaled_fast-tokenizer")


def test_local_folder_is_named_for_layer_and_baseline(tiny_encoder_dir: Path) -> None:
    named = BertScoreSettings(model="/models/copies/xlm-roberta-large/")
    assert (named.model_name, named.num_layers) == ("xlm-roberta-large", 17)
    assert BertScoreSettings(model=str(tiny_encoder_dir), name="xlm-roberta-base").num_layers == 9
    unknown = BertScoreSettings(model=str(tiny_encoder_dir))
    with pytest.raises(BertScoreSettingsError, match="bertscore_layer"):
        unknown.check()
    with pytest.raises(BertScoreSettingsError, match="bertscore_rescale"):
        BertScoreSettings(model=str(tiny_encoder_dir), layer=2).check()
    BertScoreSettings(model=str(tiny_encoder_dir), layer=2, rescale=False).check()


def test_missing_encoder_fails_before_scoring(tmp_path: Path) -> None:
    with pytest.raises(BertScoreSettingsError, match="local folder"):
        BertScoreSettings(model=str(tmp_path / "absent"), layer=2, rescale=False).check()
