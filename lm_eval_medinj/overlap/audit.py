"""The audit: every training record against every test question, by the three matchers.

1. Boilerplate lines (in more than ``boilerplate`` records, training and test together) are found.
2. The distinct test texts are indexed: exact keys, n-grams (:class:`GramIndex`), MinHash LSH
   (:class:`NearIndex`).
3. The training records stream through in batches: exact keys are looked up, n-grams recorded,
   near candidates proposed by the LSH and verified by exact Jaccard.
4. The n-gram shares are counted; each (training record, test question) pair gets the strongest
   kind it has (exact, then ngram, then near), with its evidence.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from lm_eval_medinj.errors import UsageError
from lm_eval_medinj.overlap.hashing import Vocabulary
from lm_eval_medinj.overlap.near import LshParameters, NearIndex
from lm_eval_medinj.overlap.ngrams import GramIndex
from lm_eval_medinj.overlap.progress import counter
from lm_eval_medinj.overlap.test_side import TestSets
from lm_eval_medinj.overlap.text import boilerplate_lines, matched
from lm_eval_medinj.overlap.training_side import TrainCorpus

KINDS = ("exact", "ngram", "near")


@dataclass(frozen=True)
class AuditSettings:
    """The matchers' settings (docs/OVERLAP.md says why these defaults)."""

    ngram: int = 13
    ngram_share: float = 0.5
    threshold: float = 0.55
    boilerplate: int = 100
    num_perm: int = 128
    batch_size: int = 4096

    def check(self) -> None:
        if self.ngram < 1:
            raise UsageError(f"--ngram must be at least 1, got {self.ngram}")
        if not 0 <= self.ngram_share <= 1:
            raise UsageError(f"--ngram-share must be between 0 and 1, got {self.ngram_share}")
        if not 0 < self.threshold <= 1:
            raise UsageError(f"--threshold must be above 0 and at most 1, got {self.threshold}")
        if self.boilerplate < 1:
            raise UsageError(f"--boilerplate must be at least 1, got {self.boilerplate}")


@dataclass(frozen=True)
class Match:
    """One training record matching one test text."""

    train: int
    kind: str
    jaccard: float | None = None
    ngram: str | None = None
    ngram_share: float | None = None


@dataclass
class _Evidence:
    """What the matchers found for one (training record, test text) pair."""

    exact: bool = False
    ngram: tuple[str, float] | None = None  # one shared n-gram, the share
    jaccard: float | None = None

    def match(self, record: int) -> Match:
        kind = "exact" if self.exact else "ngram" if self.ngram else "near"
        ngram, share = self.ngram or (None, None)
        return Match(record, kind, self.jaccard, ngram, share)


@dataclass
class AuditResult:
    settings: AuditSettings
    lsh: LshParameters
    train: TrainCorpus
    tests: TestSets
    texts: list[str]  # the distinct test texts
    matches: dict[int, list[Match]] = field(default_factory=dict)  # text index -> matches
    boilerplate_lines: int = 0
    boilerplate_ngrams: int = 0

    def doc_matches(self) -> list[list[Match]]:
        """The matches of each test document, in ``tests.docs`` order."""
        index = {text: i for i, text in enumerate(self.texts)}
        return [self.matches.get(index[doc.text], []) for doc in self.tests.docs]


def run_audit(
    train: TrainCorpus, tests: TestSets, settings: AuditSettings, progress: bool | None = None
) -> AuditResult:
    """Match every training record against every distinct test text."""
    settings.check()
    boiler = boilerplate_lines(train.line_counts + tests.line_counts(), settings.boilerplate)
    texts = list(dict.fromkeys(doc.text for doc in tests.docs))
    test_matched = [matched(text, boiler) for text in texts]
    test_words = [m.words for m in test_matched]
    exact_index: dict[str, list[int]] = defaultdict(list)
    for test, m in enumerate(test_matched):
        exact_index[m.key].append(test)
    vocabulary = Vocabulary()
    mixed, lengths = vocabulary.encode(test_words)
    grams = GramIndex(mixed, lengths, settings.ngram)
    near = NearIndex(test_words, mixed, lengths, settings.threshold, settings.num_perm)

    exact: list[tuple[int, int]] = []
    similar: dict[tuple[int, int], float] = {}
    with counter(len(train.texts), "matching training records", "rec", progress) as bar:
        for start in range(0, len(train.texts), settings.batch_size):
            batch = [matched(text, boiler) for text in train.texts[start : start + settings.batch_size]]
            for offset, m in enumerate(batch):
                exact.extend((start + offset, test) for test in exact_index.get(m.key, ()))
            words = [m.words for m in batch]
            mixed, lengths = vocabulary.encode(words)
            grams.observe(start, mixed, lengths)
            for record, test in near.candidates(mixed, lengths):
                similarity = near.verified(words[record], test)
                if similarity is not None:
                    similar[(start + record, test)] = similarity
            bar.update(len(batch))

    found: dict[tuple[int, int], _Evidence] = defaultdict(_Evidence)
    for pair in exact:
        found[pair].exact = True
    gram_pairs = grams.pairs(settings.ngram_share, settings.boilerplate)
    for record, test, share, slot in zip(
        gram_pairs.train.tolist(),
        gram_pairs.test.tolist(),
        gram_pairs.share.tolist(),
        gram_pairs.evidence_gram.tolist(),
        strict=True,
    ):
        found[(record, test)].ngram = (grams.evidence(slot, test_words), share)
    for pair, similarity in similar.items():
        found[pair].jaccard = similarity
    result = AuditResult(settings, near.parameters, train, tests, texts)
    result.boilerplate_lines = len(boiler)
    result.boilerplate_ngrams = int(grams.boilerplate(settings.boilerplate).sum())
    for (record, test), evidence in sorted(found.items()):
        result.matches.setdefault(test, []).append(evidence.match(record))
    for matches in result.matches.values():
        matches.sort(key=lambda m: (KINDS.index(m.kind), -(m.jaccard or 0.0), train.ids[m.train]))
    return result
