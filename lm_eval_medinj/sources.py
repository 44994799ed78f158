"""Where records come from: the Hugging Face Hub by default, a local folder or file on request.

``data_dir`` (task metadata, or the ``MEDINJ_DATA_DIR`` environment variable) may hold:

- the Hub layout of one or more subsets: ``Native/Test/mcqu/*.json``, ``Translated/...``;
- the ALL parquet files (``test-*.parquet``, ``validation-*.parquet``, ``train-*.parquet``);
- FrenchMedMCQA's ``train.json``, ``dev.json``, ``test.json``;
- MediQAl's ``mcqu/``, ``mcqm/``, ``oeq/`` folders of ``train.json``, ``validation.json``, ``test.json``;
- or be a single JSON/JSONL/parquet file, read as the test split.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

from lm_eval_medinj.readers import DATA_SUFFIXES, ReadOptions, data_files, read_records
from lm_eval_medinj.records import MedRecord, Provenance, TaskType

log = logging.getLogger(__name__)

Split = Literal["train", "validation", "test"]

DATA_DIR_ENV = "MEDINJ_DATA_DIR"
SKIP_INVALID_ENV = "MEDINJ_SKIP_INVALID"
HUB_REPOS: dict[Provenance, str] = {
    "native": "MedInjection-FR/Native",
    "translated": "MedInjection-FR/Translated",
    "synthetic": "MedInjection-FR/Synthetic",
}
FRENCHMEDMCQA_HUB = "qanastek/frenchmedmcqa"
MEDIQAL_HUB = "ANR-MALADES/MediQAl"
# MediQAl's configs: single answer, several answers, open questions (test split only).
MEDIQAL_CONFIGS: dict[TaskType, str] = {"mcqu": "mcqu", "mcq": "mcqm", "oeq": "oeq"}
SPLIT_FOLDERS: dict[Split, str] = {"train": "Train", "validation": "Validation", "test": "Test"}
FRENCHMEDMCQA_FILES: dict[Split, str] = {"train": "train.json", "validation": "dev.json", "test": "test.json"}


class DataNotFoundError(FileNotFoundError):
    """No data file for a requested benchmark split."""


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path | None:
    """The explicit ``data_dir``, else ``$MEDINJ_DATA_DIR``, else ``None`` (use the Hub)."""
    value = data_dir or os.environ.get(DATA_DIR_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.exists():
        raise DataNotFoundError(f"data_dir {path} does not exist")
    return path


def resolve_skip_invalid(skip_invalid: bool | str | None) -> bool:
    """The explicit switch, else ``$MEDINJ_SKIP_INVALID`` ("1", "true", "yes")."""
    value = skip_invalid if skip_invalid is not None else os.environ.get(SKIP_INVALID_ENV, "")
    return str(value).strip().lower() in {"1", "true", "yes"}


def _child(folder: Path, name: str) -> Path | None:
    """A sub-folder matched case-insensitively."""
    if not folder.is_dir():
        return None
    for child in folder.iterdir():
        if child.is_dir() and child.name.lower() == name.lower():
            return child
    return None


def _hub_snapshot(repo_id: str, allow_patterns: list[str] | None = None) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, repo_type="dataset", allow_patterns=allow_patterns))
    except Exception as error:  # network, auth or offline mode: say what to do instead
        raise DataNotFoundError(
            f"could not download dataset {repo_id} from the Hugging Face Hub ({error}); "
            f'pass --metadata \'{{"data_dir": "PATH"}}\' or set {DATA_DIR_ENV} to a local copy'
        ) from error


def _medinjection_files(
    provenance: Provenance, split: Split, task: TaskType, data_dir: Path | None
) -> tuple[list[Path], bool]:
    """Files to read, and whether they are a mixed source that needs filtering (ALL, one file)."""
    split_folder = SPLIT_FOLDERS[split]
    if data_dir is None:
        root = _hub_snapshot(HUB_REPOS[provenance], [f"{split_folder}/{task}/*"])
        folder = _child(root / split_folder, task) if (root / split_folder).is_dir() else None
        return (data_files(folder) if folder else []), False
    if data_dir.is_file():
        return ([data_dir] if split == "test" else []), True
    subset = _child(data_dir, HUB_REPOS[provenance].split("/")[1])
    if subset is not None:
        split_dir = _child(subset, split_folder)
        folder = _child(split_dir, task) if split_dir else None
        return (data_files(folder) if folder else []), False
    parquet = sorted(data_dir.rglob(f"{split}-*.parquet"))
    return parquet, True


def load_medinjection(
    provenance: Provenance,
    task: TaskType,
    split: Split,
    data_dir: Path | None = None,
    skip_invalid: bool = False,
) -> list[MedRecord]:
    """Records of one MedInjection-FR subset, split and task type."""
    files, mixed = _medinjection_files(provenance, split, task, data_dir)
    where = data_dir if data_dir is not None else HUB_REPOS[provenance]
    if not files:
        if split == "test":
            raise DataNotFoundError(
                f"no {provenance} {split} files for task {task} in {where} (looked for "
                f"{HUB_REPOS[provenance].split('/')[1]}/{SPLIT_FOLDERS[split]}/{task}/*.json, "
                f"or {split}-*.parquet for the ALL dataset)"
            )
        log.info("no %s %s files for %s in %s", provenance, split, task, where)
        return []
    options = ReadOptions(
        provenance=None if mixed else provenance,
        task=None if mixed else task,
        origin=HUB_REPOS[provenance],
        skip_invalid=skip_invalid,
    )
    records = read_records(files, options).records
    return [r for r in records if r.task == task and r.provenance == provenance]


def load_frenchmedmcqa(
    task: TaskType, split: Split, data_dir: Path | None = None, skip_invalid: bool = False
) -> list[MedRecord]:
    """FrenchMedMCQA records of one split: ``mcqu`` is single-answer, ``mcq`` multi-answer."""
    name = FRENCHMEDMCQA_FILES[split]
    if data_dir is not None and data_dir.is_file():
        files = [data_dir] if split == "test" else []
    else:
        root = data_dir if data_dir is not None else _hub_snapshot(FRENCHMEDMCQA_HUB)
        files = sorted(root.rglob(name))[:1]
    if not files:
        if split == "test":
            raise DataNotFoundError(f"no FrenchMedMCQA {name} in {data_dir or FRENCHMEDMCQA_HUB}")
        return []
    records = read_records(files, ReadOptions(skip_invalid=skip_invalid)).records
    return [r for r in records if r.task == task]


def _mediqal_file(folder: Path | None, split: Split) -> Path | None:
    """``<split>.json`` (or .jsonl / .parquet) of one MediQAl config folder."""
    if folder is None:
        return None
    for suffix in DATA_SUFFIXES:
        for path in sorted(folder.glob(f"{split}*{suffix}")):
            return path
    return None


def load_mediqal(
    task: TaskType, split: Split, data_dir: Path | None = None, skip_invalid: bool = False
) -> list[MedRecord]:
    """MediQAl records of one config (``mcqu``, ``mcqm`` for task ``mcq``, ``oeq``) and split."""
    config = MEDIQAL_CONFIGS[task]
    if data_dir is not None and data_dir.is_file():
        files = [data_dir] if split == "test" else []
    else:
        root = data_dir if data_dir is not None else _hub_snapshot(MEDIQAL_HUB, [f"{config}/*"])
        found = _mediqal_file(_child(root, config), split)
        files = [found] if found else []
    if not files:
        if split == "test":
            raise DataNotFoundError(
                f"no MediQAl {split} file for {config} in {data_dir or MEDIQAL_HUB} (looked for {config}/{split}.json)"
            )
        log.info("no MediQAl %s file for %s in %s", split, config, data_dir or MEDIQAL_HUB)
        return []
    return read_records(files, ReadOptions(task=task, skip_invalid=skip_invalid)).records
