"""The one ``--metadata`` schema of every MedInjection-FR task family and of the served judge.

lm-eval hands a task's ``config.metadata`` to its parsers: the YAML's own ``metadata:`` block,
the user's ``--metadata`` and, merged in by lm-eval 0.4.13 itself (``simple_evaluate`` and the
CLI both do ``model_args | metadata``), every ``--model_args`` key. Each parser of this package
(``base_task.load_dataset``, ``OEQSettings.from_metadata``, ``HarnessJudge``) reads it through
:func:`check_metadata`, which refuses a key that is evidently meant for this package but is not
one of :data:`KEYS`:

- a key of one of our families' prefixes (``bleu_``, ``rouge_``, ``bertscore_``, ``judge_``);
- a key close to a known one (``data_dri``, ``protocl``, ``skipinvalid``).

The error names the key, suggests the closest known one and lists them all. Other keys (model
arguments such as ``pretrained`` or ``dtype``, lm-eval's ``version``) pass: lm-eval merges them
into the same dictionary, and no task can tell them apart from a user's.

Families with a scorer (the judge) name it here by import path, so the open-question metrics
load it only when one of its keys is set (:func:`family_scorers`) and never import it otherwise.
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lm_eval_medinj.errors import UsageError
from lm_eval_medinj.prompts import DEFAULT_PROMPT_SOURCE, PROMPT_SOURCES
from lm_eval_medinj.protocol import DEFAULT_PROTOCOL, PROTOCOLS

# A key this close to a known one (difflib ratio) is taken for a misspelling of it.
TYPO_CUTOFF = 0.8


@dataclass(frozen=True)
class MetadataKey:
    """One accepted ``--metadata`` key."""

    name: str
    family: str
    types: tuple[type, ...]
    default: Any
    help: str


def _keys(*keys: MetadataKey) -> dict[str, MetadataKey]:
    return {key.name: key for key in keys}


KEYS: dict[str, MetadataKey] = _keys(
    # data: every task family (base_task.load_dataset, lm_eval_medinj.benchmarks)
    MetadataKey("data_dir", "data", (str, os.PathLike), None, "local data (default: $MEDINJ_DATA_DIR, else the Hub)"),
    MetadataKey("skip_invalid", "data", (bool, str, int), False, "drop invalid records with a warning"),
    MetadataKey(
        "revision", "data", (str, dict), None, "Hub dataset revision, or {repo: revision} (default: the pinned ones)"
    ),
    # protocol: every task family (base_task.load_dataset; lm_eval_medinj.protocol, lm_eval_medinj.prompts)
    MetadataKey("protocol", "protocol", (str,), DEFAULT_PROTOCOL.name, f"decoding protocol: {', '.join(PROTOCOLS)}"),
    MetadataKey("prompt", "protocol", (str,), DEFAULT_PROMPT_SOURCE, f"prompt source: {', '.join(PROMPT_SOURCES)}"),
    # oeq: open-question metrics (lm_eval_medinj.oeq.task.OEQSettings)
    MetadataKey("bleu_tokenize", "oeq", (str,), "intl", "sacreBLEU tokenizer"),
    MetadataKey("rouge_stem", "oeq", (bool,), False, "stem words before ROUGE"),
    MetadataKey("bertscore_model", "oeq", (str,), "bert-base-multilingual-cased", "encoder: Hub id or folder"),
    MetadataKey("bertscore_name", "oeq", (str,), None, "name for layer and baseline look-ups"),
    MetadataKey("bertscore_layer", "oeq", (int,), None, "hidden layer (default: bert-score's for the name)"),
    MetadataKey("bertscore_rescale", "oeq", (bool,), True, "rescale with the French baseline"),
    MetadataKey("bertscore_baseline", "oeq", (str,), None, "bert-score baseline file"),
    MetadataKey("bertscore_batch_size", "oeq", (int,), 32, "answers per encoder batch"),
    MetadataKey("bertscore_device", "oeq", (str,), None, "encoder device (default: cuda if available)"),
    # judge: the served judge of open questions (lm_eval_medinj.judge.harness.HarnessJudge)
    MetadataKey("judge_url", "judge", (str,), None, "OpenAI-compatible base URL; turns the judge on"),
    MetadataKey("judge_model", "judge", (str,), "google/medgemma-27b-text-it", "served model name"),
    MetadataKey("judge_prompt", "judge", (str,), "paper", "judge prompt (paper, v1 or a file)"),
    MetadataKey("judge_api", "judge", (str,), "chat", "chat or completions"),
    MetadataKey("judge_top_logprobs", "judge", (int, str), 20, "top log-probabilities asked per token"),
    MetadataKey("judge_tokenizer", "judge", (str,), None, "tokenizer of the judge (completions only)"),
    MetadataKey("judge_concurrency", "judge", (int, str), 8, "requests in flight"),
    MetadataKey("judge_timeout", "judge", (int, float, str), 120.0, "seconds per request attempt"),
    MetadataKey("judge_max_retries", "judge", (int, str), 5, "retries of a failed request (backoff, jitter)"),
    MetadataKey("judge_cache", "judge", (str, os.PathLike), ":memory:", "SQLite cache of judgements"),
    MetadataKey("judge_calibration", "judge", (str, os.PathLike), None, "calibration JSON of meta_eval.py"),
)
# Keys lm-eval or this package write into a task's metadata themselves, or merge into it.
OWN_KEYS = frozenset(
    {
        "version",  # the YAML's metadata block
        "config_source",  # lm-eval's task factory
        "lm_eval_medinj_version",  # written by MedinjTask
        "config",
        "_metadata",
        "sacrebleu_signature",  # written by OEQTask
        "sacrebleu_sentence_signature",
        "bertscore_signature",
        "reuse_prefix",  # model arguments of medinj-hf, merged in by lm-eval
        "decode_batch_size",
    }
)
# Prefixes that only this package's keys use.
PREFIXES = ("bleu_", "rouge_", "bertscore_", "judge_")
# family -> "module:callable" building its per-sample scorer from the metadata, or returning None.
SCORERS: dict[str, str] = {"judge": "lm_eval_medinj.judge.harness:HarnessJudge.from_metadata"}


class MetadataError(UsageError):
    """A ``--metadata`` key this package does not know, or a value of the wrong type."""


def known_keys() -> str:
    """Every accepted key, by family, for error messages."""
    families: dict[str, list[str]] = {}
    for key in KEYS.values():
        families.setdefault(key.family, []).append(key.name)
    return "; ".join(f"{family}: {', '.join(names)}" for family, names in families.items())


def unknown_key_error(key: str) -> MetadataError:
    close = difflib.get_close_matches(key, KEYS, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return MetadataError(f"unknown --metadata key {key!r}{hint}. Known keys: {known_keys()}")


def is_misspelt(key: str) -> bool:
    """Whether ``key`` is meant for this package but is not one of its keys."""
    if key in KEYS or key in OWN_KEYS:
        return False
    return key.startswith(PREFIXES) or bool(difflib.get_close_matches(key, KEYS, n=1, cutoff=TYPO_CUTOFF))


def check_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """This package's keys of ``metadata`` (``None`` values left out), checked.

    Raises :class:`MetadataError` on a misspelt key (see the module docstring) or a value of a
    type the key does not accept.
    """
    for key in metadata:
        if is_misspelt(key):
            raise unknown_key_error(key)
    ours = {key: value for key, value in metadata.items() if key in KEYS and value is not None}
    for key, value in ours.items():
        types = KEYS[key].types
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise MetadataError(f"--metadata {key!r} must be of type {types[0].__name__}, got {value!r}")
    return ours


def family_values(metadata: Mapping[str, Any], family: str) -> dict[str, Any]:
    """The checked values of one family's keys."""
    return {key: value for key, value in check_metadata(metadata).items() if KEYS[key].family == family}


def family_settings(metadata: Mapping[str, Any], family: str) -> dict[str, Any]:
    """Every key of one family: its checked value, else the schema's default (the one place defaults live)."""
    given = family_values(metadata, family)
    return {name: given.get(name, key.default) for name, key in KEYS.items() if key.family == family}


def family_scorers(metadata: Mapping[str, Any]) -> list[Any]:
    """The scorers of the families with a key in ``metadata`` (imported then, not before).

    A scorer has ``sample_fields(doc, prediction) -> dict`` for ``process_results`` and
    ``metric_list() -> list`` for lm-eval's metric list (see ``HarnessJudge``).
    """
    present = {KEYS[key].family for key in check_metadata(metadata)}
    scorers = []
    for family, target in SCORERS.items():
        if family not in present:
            continue
        module, _, attribute = target.partition(":")
        factory: Any = importlib.import_module(module)
        for part in attribute.split("."):
            factory = getattr(factory, part)
        scorer = factory(metadata)
        if scorer is not None:
            scorers.append(scorer)
    return scorers
