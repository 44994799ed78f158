"""The seven training mixtures of the study, rebuilt exactly from the three train pools.

A configuration names one, two or three provenances. The total ``N`` (33,493 by default) is
split equally between them: each gets ``N // k`` examples and the remainder goes one example
at a time to the provenances in the order native, translated, synthetic. Within a provenance
the quota is split over the selected task types in proportion to the pool by the largest
remainder method (ties go to the task type listed first: mcq, mcqu, oeq). Each stratum is
sorted by record id, shuffled with a generator seeded by ``(seed, provenance, task)`` and cut
to its quota, so a provenance's examples in a two-provenance mixture are a subset of those in
its single-provenance mixture. The mixture is finally shuffled with ``seed``.

A configuration is evaluated on the whole validation split of its provenances and task types.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_eval_medinj.benchmarks.hub import Revision
from lm_eval_medinj.benchmarks.layout import DataNotFoundError, Split
from lm_eval_medinj.benchmarks.medinjection import HUB_REPOS, SPLIT_FOLDERS
from lm_eval_medinj.benchmarks.medinjection import load_subset as load_medinjection
from lm_eval_medinj.files import write_json_atomic, write_text_atomic
from lm_eval_medinj.records import PROVENANCES, TASK_TYPES, MedRecord, Provenance, TaskType

log = logging.getLogger(__name__)

CONFIGURATIONS: dict[str, tuple[Provenance, ...]] = {
    "NAT": ("native",),
    "TRAD": ("translated",),
    "SYN": ("synthetic",),
    "NAT-TRAD": ("native", "translated"),
    "NAT-SYN": ("native", "synthetic"),
    "TRAD-SYN": ("translated", "synthetic"),
    "ALL": ("native", "translated", "synthetic"),
}
DEFAULT_TOTAL = 33_493
DEFAULT_SEED = 42
DEFAULT_TASKS: tuple[TaskType, ...] = ("mcq", "mcqu")

Pools = Mapping[Provenance, Sequence[MedRecord]]


class MixtureShortfallError(ValueError):
    """A pool holds fewer examples than the configuration's quota for it."""


@dataclass(frozen=True)
class MixtureSettings:
    """What a mixture depends on besides the pools."""

    total: int = DEFAULT_TOTAL
    seed: int = DEFAULT_SEED
    tasks: tuple[TaskType, ...] = DEFAULT_TASKS
    allow_smaller: bool = False


@dataclass(frozen=True)
class Mixture:
    """The ordered examples of one configuration and its manifest."""

    config: str
    records: list[MedRecord]
    manifest: dict[str, Any] = field(repr=False)


def resolve_configs(names: Sequence[str]) -> list[str]:
    """Configuration names, upper-cased, with ``all`` expanding to the seven in the study's order."""
    resolved: list[str] = []
    for name in names:
        wanted = list(CONFIGURATIONS) if name.lower() == "all" else [name.upper()]
        for config in wanted:
            if config not in CONFIGURATIONS:
                raise ValueError(f"unknown configuration {name!r}; choose from {', '.join(CONFIGURATIONS)} or all")
            if config not in resolved:
                resolved.append(config)
    return resolved


def largest_remainder(total: int, weights: Mapping[str, int]) -> dict[str, int]:
    """Split ``total`` in proportion to ``weights``; leftover units go to the largest fractions."""
    weight_sum = sum(weights.values())
    if weight_sum == 0:
        return dict.fromkeys(weights, 0)
    exact = {key: total * weight / weight_sum for key, weight in weights.items()}
    shares = {key: int(value) for key, value in exact.items()}
    order = sorted(weights, key=lambda key: -(exact[key] - shares[key]))  # stable: ties keep key order
    for key in order[: total - sum(shares.values())]:
        shares[key] += 1
    return shares


def provenance_quotas(total: int, provenances: Sequence[Provenance]) -> dict[Provenance, int]:
    """``total // k`` each; the remainder one by one in the order native, translated, synthetic."""
    ordered = [p for p in PROVENANCES if p in provenances]
    base, remainder = divmod(total, len(ordered))
    return {p: base + (1 if index < remainder else 0) for index, p in enumerate(ordered)}


def ids_sha256(records: Sequence[MedRecord]) -> str:
    """SHA-256 of the ordered example ids, one per line."""
    return hashlib.sha256("\n".join(r.id for r in records).encode("utf-8")).hexdigest()


def load_pools(
    provenances: Sequence[Provenance],
    tasks: Sequence[TaskType],
    data_dir: Path | None = None,
    skip_invalid: bool = False,
    split: Split = "train",
    revision: Revision = None,
) -> dict[Provenance, list[MedRecord]]:
    """The records of one split of each provenance, restricted to ``tasks`` (the Hub at ``revision``, or local)."""
    return {
        provenance: [
            record
            for task in tasks
            for record in load_medinjection(provenance, task, split, data_dir, skip_invalid, revision)
        ]
        for provenance in provenances
    }


def load_validation_pools(
    provenances: Sequence[Provenance],
    tasks: Sequence[TaskType],
    data_dir: Path | None = None,
    skip_invalid: bool = False,
    revision: Revision = None,
) -> dict[Provenance, list[MedRecord]]:
    """The whole validation split of each provenance and task; raises when one is missing."""
    pools = load_pools(provenances, tasks, data_dir, skip_invalid, split="validation", revision=revision)
    for provenance in provenances:
        for task in tasks:
            if not any(record.task == task for record in pools[provenance]):
                subset = HUB_REPOS[provenance].split("/")[1]
                where = data_dir if data_dir is not None else f"the Hub dataset {HUB_REPOS[provenance]}"
                raise DataNotFoundError(
                    f"no {provenance} validation records for task {task} in {where} (looked for "
                    f"{subset}/{SPLIT_FOLDERS['validation']}/{task}/*.json, or validation-*.parquet); "
                    "evaluation during training needs them: add the split or pass --eval_strategy no"
                )
    return pools


def validation_set(config: str, pools: Pools) -> list[MedRecord]:
    """The validation records of a configuration's provenances, in the order native, translated, synthetic."""
    return [record for provenance in CONFIGURATIONS[config] for record in pools[provenance]]


def _sample_stratum(records: Sequence[MedRecord], quota: int, seed: int, provenance: str, task: str) -> list[MedRecord]:
    stratum = sorted(records, key=lambda r: r.id)
    random.Random(f"{seed}:{provenance}:{task}").shuffle(stratum)
    return stratum[:quota]


def _ordered(counter: Counter[str], order: Sequence[str]) -> dict[str, int]:
    return {key: counter[key] for key in order if counter[key]}


def _counts(records: Sequence[MedRecord]) -> dict[str, Any]:
    """Counts by provenance, task, origin, and task within provenance."""
    return {
        "provenance": _ordered(Counter(r.provenance for r in records), PROVENANCES),
        "task": _ordered(Counter(r.task for r in records), TASK_TYPES),
        "origin": dict(sorted(Counter(r.origin for r in records).items())),
        "provenance_task": {
            p: _ordered(Counter(r.task for r in records if r.provenance == p), TASK_TYPES)
            for p in PROVENANCES
            if any(r.provenance == p for r in records)
        },
    }


def build_mixture(
    config: str, pools: Pools, settings: MixtureSettings = MixtureSettings(), source: str = "hub"
) -> Mixture:
    """Sample one configuration from the pools; raises :class:`MixtureShortfallError` when one is short."""
    provenances = CONFIGURATIONS[config]
    tasks = tuple(t for t in TASK_TYPES if t in settings.tasks)
    quotas = provenance_quotas(settings.total, provenances)
    selected: list[MedRecord] = []
    shortfalls: dict[str, int] = {}
    pool_sizes: dict[str, dict[str, int]] = {}
    for provenance, quota in quotas.items():
        by_task = {t: [r for r in pools.get(provenance, ()) if r.task == t] for t in tasks}
        pool_sizes[provenance] = {t: len(records) for t, records in by_task.items()}
        available = sum(pool_sizes[provenance].values())
        if available < quota:
            shortfalls[provenance] = quota - available
            if not settings.allow_smaller:
                raise MixtureShortfallError(
                    f"configuration {config}: the {provenance} train pool ({'/'.join(tasks)}, from {source}) "
                    f"holds {available} examples but the mixture needs {quota}: short by {quota - available}."
                    " Lower --total or pass --allow_smaller to train on a smaller mixture."
                )
            log.warning("%s: %s pool short by %d; using all %d", config, provenance, quota - available, available)
            quota = available
        for task, share in largest_remainder(quota, pool_sizes[provenance]).items():
            selected.extend(_sample_stratum(by_task[task], share, settings.seed, provenance, task))
    random.Random(settings.seed).shuffle(selected)
    manifest = {
        "config": config,
        "provenances": list(provenances),
        "seed": settings.seed,
        "settings": {
            "requested_total": settings.total,
            "tasks": list(tasks),
            "allow_smaller": settings.allow_smaller,
            "split": "train",
            "source": source,
        },
        "total": len(selected),
        "quotas": quotas,
        "shortfalls": shortfalls,
        "pool_sizes": pool_sizes,
        # the data read: a Hub commit, or sha256 of the local files, per provenance
        "data_revisions": {
            provenance: sorted(
                {r.data_revision for r in pools.get(provenance, ()) if r.task in tasks and r.data_revision}
            )
            for provenance in quotas
        },
        "counts": _counts(selected),
        "ids_sha256": ids_sha256(selected),
    }
    return Mixture(config, selected, manifest)


def write_mixture(mixture: Mixture, folder: Path) -> Path:
    """Write ``manifest.json`` and ``ids.txt`` (the ordered example ids) to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / "ids.txt", "".join(f"{r.id}\n" for r in mixture.records))
    manifest = folder / "manifest.json"
    write_json_atomic(manifest, mixture.manifest)
    return manifest
