"""BLEU, ROUGE, METEOR and answer lengths against values computed by hand on whole French words."""

from __future__ import annotations

import math
import unicodedata

import pytest
import sacrebleu
from nltk.stem.snowball import SnowballStemmer
from nltk.translate.meteor_score import single_meteor_score
from rouge_score.rouge_scorer import RougeScorer

from lm_eval_medinj.oeq.bleu import corpus_bleu, sentence_bleu, signature
from lm_eval_medinj.oeq.lengths import answer_lengths
from lm_eval_medinj.oeq.meteor import meteor
from lm_eval_medinj.oeq.rouge import rouge
from lm_eval_medinj.oeq.text import words

SEVERE = "Le patient présente une hépatite sévère."
MILD = "Le patient présente une hépatite légère."


def test_words_keep_accented_words_whole_and_split_elisions() -> None:
    assert words("L'hépatite SÉVÈRE, c'est-à-dire « grave ».") == [
        "l",
        "hépatite",
        "sévère",
        "c",
        "est",
        "à",
        "dire",
        "grave",
    ]
    assert words(unicodedata.normalize("NFD", "sévère")) == ["sévère"]


def test_rouge_l_is_computed_on_whole_words() -> None:
    # Six words each, five in common and in order: LCS 5, P = R = F = 5/6.
    assert rouge(SEVERE, MILD)["rougeL"] == pytest.approx(5 / 6)
    # rouge-score's own tokenizer cuts the accented words into fragments and finds 8/10.
    assert RougeScorer(["rougeL"]).score(SEVERE, MILD)["rougeL"].fmeasure == pytest.approx(0.8)


def test_rouge_tells_apart_answers_that_differ_only_in_accented_words() -> None:
    reference = "La peau pèle au soleil."
    right, wrong = "La peau pèle au soleil.", "La peau pâle au soleil."
    # The default tokenizer reads both "pèle" and "pâle" as "p le": it cannot tell them apart.
    default = RougeScorer(["rouge1"])
    assert default.score(reference, right)["rouge1"].fmeasure == default.score(reference, wrong)["rouge1"].fmeasure
    assert rouge(reference, right) == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    # 4 of 5 words, 2 of 4 bigrams ("la peau", "au soleil"), LCS 4 of 5.
    assert rouge(reference, wrong) == pytest.approx({"rouge1": 0.8, "rouge2": 0.5, "rougeL": 0.8})


def test_rouge_french_stemmer_is_optional() -> None:
    assert rouge("Les patients sévères", "le patient sévère") == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    assert rouge("Les patients sévères", "le patient sévère", stem=True) == {
        "rouge1": 1.0,
        "rouge2": 1.0,
        "rougeL": 1.0,
    }


def test_rouge_of_decomposed_accents_and_of_an_empty_answer() -> None:
    assert rouge(SEVERE, unicodedata.normalize("NFD", SEVERE))["rougeL"] == 1.0
    assert rouge(SEVERE, "") == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}


def test_sentence_bleu_by_hand() -> None:
    # intl tokens: 7 each (the final "." included); n-gram matches 6/7, 4/6, 3/5, 2/4; BP = 1.
    assert sentence_bleu(MILD, SEVERE) == pytest.approx(100 * (6 / 7 * 4 / 6 * 3 / 5 * 2 / 4) ** 0.25)


def test_bleu_tokenizer_is_a_setting_that_changes_french_scores() -> None:
    reference, answer = "Une hépatite sévère.", "L'hépatite sévère."
    # intl splits the elision: L ' hépatite sévère . -> 3/5, 2/4, 1/3, 0/2 (smoothed to 1/4).
    assert sentence_bleu(reference, answer) == pytest.approx(100 * (3 / 5 * 2 / 4 * 1 / 3 * 1 / 4) ** 0.25)
    # 13a keeps "L'hépatite": 2/3, 1/2, 0/1 (smoothed to 1/2), no 4-gram; BP = exp(1 - 4/3).
    assert sentence_bleu(reference, answer, tokenize="13a") == pytest.approx(
        100 * math.exp(-1 / 3) * (2 / 3 * 1 / 2 * 1 / 2) ** (1 / 3)
    )


def test_corpus_bleu_pools_ngram_counts_and_is_not_a_mean_of_sentence_scores() -> None:
    first = (MILD, SEVERE)
    second = ("Traitement par amoxicilline orale.", "Traitement par amoxicilline.")
    # Second pair: matches 4/4, 2/3, 1/2, 0/1; 4 answer tokens for 5 reference tokens.
    assert sentence_bleu(*second) == pytest.approx(100 * math.exp(1 - 5 / 4) * (2 / 3 * 1 / 2 * 1 / 2) ** 0.25)
    # Pooled: 10/11, 6/9, 4/7, 2/5; 11 answer tokens for 12 reference tokens.
    expected = 100 * math.exp(1 - 12 / 11) * (10 / 11 * 6 / 9 * 4 / 7 * 2 / 5) ** 0.25
    result = corpus_bleu([first, second])
    assert result.score == pytest.approx(expected)
    mean_of_sentences = (sentence_bleu(*first) + sentence_bleu(*second)) / 2
    assert abs(result.score - mean_of_sentences) > 1


def test_bleu_signature_is_known_before_scoring() -> None:
    assert corpus_bleu([(MILD, SEVERE)]).signature == signature()
    assert signature() == f"nrefs:1|case:mixed|eff:no|tok:intl|smooth:exp|version:{sacrebleu.__version__}"
    assert "tok:13a" in signature("13a")
    assert "eff:yes" in signature(sentence=True)


def test_meteor_by_hand() -> None:
    # 5 exact matches of 6 words: P = R = Fmean = 5/6; one chunk: penalty 0.5 * (1/5)^3.
    assert meteor(SEVERE, MILD) == pytest.approx(5 / 6 * (1 - 0.5 * (1 / 5) ** 3))
    # Stems only ("patient", "séver"): P = R = 1, one chunk of 2: penalty 0.5 * (1/2)^3.
    assert meteor("patients sévères", "patient sévère") == pytest.approx(1 - 0.5 * (1 / 2) ** 3)
    # All four words match in two chunks: penalty 0.5 * (2/4)^3.
    assert meteor("fièvre élevée toux sèche", "toux sèche fièvre élevée") == pytest.approx(1 - 0.5 * (2 / 4) ** 3)
    assert meteor(SEVERE, "") == 0.0
    assert meteor(SEVERE, "rien à voir") == 0.0


class _NoSynonyms:
    """A WordNet without synonyms, to run NLTK's METEOR with exact and stem matching only."""

    def synsets(self, word: str) -> list[object]:
        return []


@pytest.mark.parametrize(
    ("reference", "answer"),
    [
        (SEVERE, MILD),
        ("Des hépatites sévères et une fièvre.", "une fièvre et une hépatite sévère"),
        ("le le le la fièvre la", "la le fièvre le"),
        ("Arrêter le médicament suspect.", "Il faut arrêter les médicaments suspects."),
    ],
)
def test_meteor_equals_nltk_without_wordnet(reference: str, answer: str) -> None:
    expected = single_meteor_score(
        words(reference), words(answer), stemmer=SnowballStemmer("french"), wordnet=_NoSynonyms()
    )
    assert meteor(reference, answer) == pytest.approx(expected, abs=1e-12)


def test_answer_lengths() -> None:
    assert answer_lengths("  Le patient  présente\nune hépatite sévère. ") == {"answer_chars": 41, "answer_words": 6}
    assert answer_lengths(unicodedata.normalize("NFD", "sévère")) == {"answer_chars": 6, "answer_words": 1}
    assert answer_lengths("") == {"answer_chars": 0, "answer_words": 0}
