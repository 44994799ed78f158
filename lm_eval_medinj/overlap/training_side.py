"""The training side of the audit: every training record's normalised text, source and groups.

``--train PATH`` is one of four layouts, told apart by what the folder holds (one and only one):

- **mixtures**: a folder written by ``train/sft.py --mixtures ... --dry-run --output_dir PATH``,
  one sub-folder per configuration with ``manifest.json`` and ``ids.txt`` (or one such folder).
  The pools are reloaded from the manifest's ``settings.source`` (a data folder, or ``hub``) and
  the ids selected; the groups of the summary are the mixtures, and a record belongs to every
  mixture that lists it.
- **hub**: a data folder in the Hub layout (``Native/``, ``Translated/``, ``Synthetic/``): the
  whole train pools, grouped by provenance.
- **frenchmedmcqa**: a FrenchMedMCQA folder (``train.json``, ``dev.json``, ``test.json``): its
  train and validation splits, grouped by split.
- **mediqal**: a MediQAl folder (``mcqu/``, ``mcqm/``, ``oeq/``): its train and validation splits
  of the three configurations, grouped by split.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from lm_eval_medinj.benchmarks.frenchmedmcqa import load as load_frenchmedmcqa
from lm_eval_medinj.benchmarks.medinjection import HUB_REPOS
from lm_eval_medinj.benchmarks.mediqal import load as load_mediqal
from lm_eval_medinj.errors import InputError, UsageError
from lm_eval_medinj.files import read_json, read_text
from lm_eval_medinj.overlap.progress import bar
from lm_eval_medinj.overlap.text import line_keys, pack_questions
from lm_eval_medinj.records import PROVENANCES, TASK_TYPES, MedRecord, Provenance, TaskType
from lm_eval_medinj.training.mixtures import CONFIGURATIONS, load_pools

SUBSETS = {provenance: repo.split("/")[1] for provenance, repo in HUB_REPOS.items()}
MEDIQAL_FOLDERS = ("mcqu", "mcqm", "oeq")
BENCHMARK_SPLITS = ("train", "validation")
_SHA256 = re.compile(r"[0-9a-f]{64}")
PACK_BATCH = 2048  # records normalised together
T = TypeVar("T")


@dataclass
class TrainCorpus:
    """The training records, in reading order: id, provenance, origin, task, groups, packed text."""

    layout: str
    path: Path
    groups: list[str]
    ids: list[str] = field(default_factory=list)
    meta: list[tuple[str, str, str]] = field(default_factory=list)  # provenance, origin, task
    membership: list[int] = field(default_factory=list)  # bit g: the record is in groups[g]
    texts: list[str] = field(default_factory=list)
    line_counts: Counter[int] = field(default_factory=Counter)  # line hash -> records
    details: dict[str, Any] = field(default_factory=dict)

    def extend(self, records: Iterable[tuple[MedRecord, int]]) -> None:
        """Add (record, group bits) pairs, their texts normalised a batch at a time."""
        for batch in _batched(records, PACK_BATCH):
            texts = pack_questions((r.question, r.context, r.options.values()) for r, _ in batch)
            for (record, groups), text in zip(batch, texts, strict=True):
                self.ids.append(record.id)
                self.meta.append((record.provenance, sys.intern(record.origin), record.task))
                self.membership.append(groups)
                self.texts.append(text)
                self.line_counts.update(line_keys(text))

    def group_names(self, membership: int) -> list[str]:
        return [name for bit, name in enumerate(self.groups) if membership >> bit & 1]

    def group_sizes(self) -> dict[str, int]:
        return {name: sum(1 for m in self.membership if m >> bit & 1) for bit, name in enumerate(self.groups)}


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of ``size`` items (the last one shorter); itertools.batched from Python 3.12."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _child(folder: Path, name: str) -> Path | None:
    """A sub-folder matched case-insensitively."""
    for child in sorted(folder.iterdir()):
        if child.is_dir() and child.name.lower() == name.lower():
            return child
    return None


def _mixture_folders(path: Path) -> list[Path]:
    if (path / "manifest.json").exists() or (path / "ids.txt").exists():
        return [path]
    children = [child for child in sorted(path.iterdir()) if child.is_dir()]
    return [child for child in children if (child / "manifest.json").exists() or (child / "ids.txt").exists()]


def detect_layout(path: Path) -> str:
    """Which layout ``path`` is (mixtures, hub, frenchmedmcqa, mediqal); refuses none, or several."""
    if not path.exists():
        raise UsageError(f"--train {path} does not exist")
    if not path.is_dir():
        raise UsageError(f"--train {path} is a file; it must be a folder (see below for the layouts)")
    found = []
    if _mixture_folders(path):
        found.append("mixtures")
    if any(_child(path, subset) for subset in SUBSETS.values()):
        found.append("hub")
    if (path / "test.json").is_file() and ((path / "train.json").is_file() or (path / "dev.json").is_file()):
        found.append("frenchmedmcqa")
    if any(_child(path, folder) for folder in MEDIQAL_FOLDERS):
        found.append("mediqal")
    if not found:
        raise UsageError(
            f"--train {path} is no known layout: expected a mixtures folder of train/sft.py --dry-run "
            "(<config>/manifest.json and ids.txt), a data folder in the Hub layout (Native/, Translated/, "
            "Synthetic/), a FrenchMedMCQA folder (train.json, dev.json, test.json) or a MediQAl folder "
            "(mcqu/, mcqm/, oeq/)"
        )
    if len(found) > 1:
        raise UsageError(f"--train {path} holds several layouts ({', '.join(found)}); point it at one of them")
    return found[0]


@dataclass(frozen=True)
class ReadSettings:
    """How the training files are read: ``skip_invalid`` drops unreadable records with a warning."""

    skip_invalid: bool = False
    progress: bool | None = None


def load_train(path: Path, read: ReadSettings = ReadSettings()) -> TrainCorpus:
    """The training corpus of ``path``, whichever layout it is."""
    layout = detect_layout(path)
    loaders: dict[str, Callable[[Path, ReadSettings], TrainCorpus]] = {
        "mixtures": _load_mixtures,
        "hub": _load_hub,
        "frenchmedmcqa": _load_frenchmedmcqa,
        "mediqal": _load_mediqal,
    }
    return loaders[layout](path, read)


# --------------------------------------------------------------------------- mixtures


@dataclass(frozen=True)
class Manifest:
    """What the audit reads of one mixture's ``manifest.json`` and ``ids.txt``."""

    folder: Path
    config: str
    provenances: tuple[Provenance, ...]
    tasks: tuple[TaskType, ...]
    source: str
    ids: list[str]


def _field(manifest: dict[str, Any], name: str, file: Path) -> Any:
    value: Any = manifest
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            raise InputError(f"{file}: field {name!r} is missing: not a manifest of train/sft.py --dry-run")
        value = value[part]
    return value


def read_manifest(folder: Path) -> Manifest:
    """One mixture folder's manifest and ids, checked against each other."""
    file, ids_file = folder / "manifest.json", folder / "ids.txt"
    for required in (file, ids_file):
        if not required.is_file():
            raise InputError(f"{folder}: no {required.name}; a mixture folder of train/sft.py --dry-run holds both")
    manifest = read_json(file)
    config = _field(manifest, "config", file)
    if config not in CONFIGURATIONS:
        raise InputError(f"{file}: field 'config' is {config!r}, not one of {', '.join(CONFIGURATIONS)}")
    provenances = _field(manifest, "provenances", file)
    if provenances != list(CONFIGURATIONS[config]):
        raise InputError(f"{file}: field 'provenances' is {provenances!r}; {config} is {list(CONFIGURATIONS[config])}")
    tasks = _field(manifest, "settings.tasks", file)
    if not isinstance(tasks, list) or not tasks or any(task not in TASK_TYPES for task in tasks):
        raise InputError(f"{file}: field 'settings.tasks' is {tasks!r}; expected task types of {TASK_TYPES}")
    source = _field(manifest, "settings.source", file)
    if not isinstance(source, str) or not source:
        raise InputError(f"{file}: field 'settings.source' is {source!r}; expected a data folder or 'hub'")
    if _field(manifest, "settings.split", file) != "train":
        raise InputError(f"{file}: field 'settings.split' is not 'train'")
    sha = _field(manifest, "ids_sha256", file)
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise InputError(f"{file}: field 'ids_sha256' is {sha!r}; expected a SHA-256 in hex")
    ids = read_text(ids_file).splitlines()
    if hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest() != sha:
        raise InputError(f"{ids_file}: its ids do not hash to the manifest's ids_sha256 ({file}); the two disagree")
    return Manifest(folder, config, tuple(provenances), tuple(tasks), source, ids)


def _source_dir(manifest: Manifest) -> Path | None:
    if manifest.source == "hub":
        return None
    folder = Path(manifest.source).expanduser()
    if not folder.is_dir():
        raise InputError(
            f"{manifest.folder / 'manifest.json'}: field 'settings.source' names {folder}, which is not a folder "
            "(the data folder the mixture was built from)"
        )
    return folder


def _pools(
    pools: Iterable[tuple[Provenance, TaskType]], data_dir: Path | None, read: ReadSettings
) -> Iterable[MedRecord]:
    """The records of each (provenance, task) train pool, one pool in memory at a time."""
    pools = list(pools)
    for provenance, task in bar(pools, "reading train pools", "pool", read.progress):
        yield from load_pools([provenance], [task], data_dir, read.skip_invalid)[provenance]


def _selected(
    records: Iterable[MedRecord], wanted: dict[tuple[str, str], int], found: set[tuple[str, str]]
) -> Iterable[tuple[MedRecord, int]]:
    """The records a mixture lists (by provenance and id), each once, with their mixture bits."""
    for record in records:
        key = (record.provenance, record.id)
        if key in wanted and key not in found:
            found.add(key)
            yield record, wanted[key]


def _load_mixtures(path: Path, read: ReadSettings) -> TrainCorpus:
    manifests = [read_manifest(folder) for folder in _mixture_folders(path)]
    order = list(CONFIGURATIONS)
    manifests.sort(key=lambda m: (order.index(m.config), str(m.folder)))
    names = [m.folder.name if m.folder != path else m.config for m in manifests]
    corpus = TrainCorpus("mixtures", path, names)
    by_source: dict[str, list[int]] = {}
    for index, manifest in enumerate(manifests):
        by_source.setdefault(manifest.source, []).append(index)
    for source, members in by_source.items():
        data_dir = _source_dir(manifests[members[0]])
        wanted: dict[tuple[str, str], int] = {}  # (provenance, id) -> mixture bits
        for index in members:
            for record_id in manifests[index].ids:
                for provenance in manifests[index].provenances:
                    key = (provenance, record_id)
                    wanted[key] = wanted.get(key, 0) | 1 << index
        pools = sorted(
            {(p, t) for i in members for p in manifests[i].provenances for t in manifests[i].tasks},
            key=lambda pool: (PROVENANCES.index(pool[0]), TASK_TYPES.index(pool[1])),
        )
        found: set[tuple[str, str]] = set()
        corpus.extend(_selected(_pools(pools, data_dir, read), wanted, found))
        for index in members:
            provenances = manifests[index].provenances
            missing = [i for i in manifests[index].ids if not any((p, i) in found for p in provenances)]
            if missing:
                raise InputError(
                    f"{manifests[index].folder / 'ids.txt'}: {len(missing)} id(s) not in the train pools of {source} "
                    f"({', '.join(manifests[index].provenances)}; {', '.join(manifests[index].tasks)}), "
                    f"first {missing[0]!r}: the mixture was built from other data"
                )
    corpus.details = {
        "mixtures": {
            name: {"config": m.config, "folder": str(m.folder), "source": m.source, "examples": len(m.ids)}
            for name, m in zip(names, manifests, strict=True)
        }
    }
    return corpus


# --------------------------------------------------------------------------- data folders


def _load_hub(path: Path, read: ReadSettings) -> TrainCorpus:
    provenances = [p for p in PROVENANCES if _child(path, SUBSETS[p])]
    corpus = TrainCorpus("hub", path, list(provenances))
    records = _pools([(p, t) for p in provenances for t in TASK_TYPES], path, read)
    corpus.extend((record, 1 << provenances.index(record.provenance)) for record in records)
    return corpus


def _load_benchmark(
    layout: str, path: Path, tasks: tuple[TaskType, ...], loader: Callable[..., list[MedRecord]], read: ReadSettings
) -> TrainCorpus:
    corpus = TrainCorpus(layout, path, list(BENCHMARK_SPLITS))
    parts = [(split, task) for split in BENCHMARK_SPLITS for task in tasks]
    for split, task in bar(parts, f"reading {layout}", "file", read.progress):
        corpus.extend(
            (record, 1 << BENCHMARK_SPLITS.index(split)) for record in loader(task, split, path, read.skip_invalid)
        )
    return corpus


def _load_frenchmedmcqa(path: Path, read: ReadSettings) -> TrainCorpus:
    return _load_benchmark("frenchmedmcqa", path, ("mcqu", "mcq"), load_frenchmedmcqa, read)


def _load_mediqal(path: Path, read: ReadSettings) -> TrainCorpus:
    return _load_benchmark("mediqal", path, ("mcqu", "mcq", "oeq"), load_mediqal, read)
