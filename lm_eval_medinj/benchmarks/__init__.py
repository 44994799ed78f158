"""The benchmarks, one module each, looked up by name: where their files are and how their records read.

| name | module | Hub | configurations |
|---|---|---|---|
| ``medinjection`` | :mod:`.medinjection` | MedInjection-FR/{Native,Translated,Synthetic}, ALL | provenance x task |
| ``frenchmedmcqa`` | :mod:`.frenchmedmcqa` | qanastek/frenchmedmcqa | mcqu, mcq (by answer count) |
| ``mediqal`` | :mod:`.mediqal` | ANR-MALADES/MediQAl | mcqu, mcqm, oeq |

Each loads one task type of one split, from the Hub at its pinned revision (:mod:`.hub`) or from
``data_dir`` in the benchmark's own layout, or from a single file a user gives as ``data_dir``
(:mod:`.single_file`, read as the test split).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from lm_eval_medinj.benchmarks import frenchmedmcqa, hub, medinjection, mediqal, single_file
from lm_eval_medinj.benchmarks.layout import Split
from lm_eval_medinj.errors import UsageError
from lm_eval_medinj.records import MedRecord, Provenance, TaskType


@dataclass(frozen=True)
class Benchmark:
    """A benchmark's name, what it is, and its loader."""

    name: str
    title: str
    hub_repos: tuple[str, ...]
    _load: Callable[..., list[MedRecord]]

    def load(
        self,
        task: TaskType,
        split: Split,
        data_dir: Path | None = None,
        skip_invalid: bool = False,
        provenances: Sequence[Provenance] | None = None,
        revision: hub.Revision = None,
    ) -> list[MedRecord]:
        """The records of one task type and split (``provenances``: MedInjection-FR's subsets to pool)."""
        if provenances is not None and self.name != medinjection.NAME:
            raise UsageError(f"benchmark {self.name} has no provenances to choose (got {list(provenances)})")
        extra = {"provenances": tuple(provenances)} if provenances is not None else {}
        return self._load(task, split, data_dir, skip_invalid, revision=revision, **extra)


BENCHMARKS: dict[str, Benchmark] = {
    benchmark.name: benchmark
    for benchmark in (
        Benchmark(
            medinjection.NAME,
            "MedInjection-FR (LREC 2026)",
            (*medinjection.HUB_REPOS.values(), medinjection.ALL_REPO),
            partial(medinjection.load, file_parser=single_file.parse_any),
        ),
        Benchmark(
            frenchmedmcqa.NAME, "FrenchMedMCQA (Labrak et al., 2023)", (frenchmedmcqa.HUB_REPO,), frenchmedmcqa.load
        ),
        Benchmark(mediqal.NAME, "MediQAl (Bazoge, 2025)", (mediqal.HUB_REPO,), mediqal.load),
    )
}


def benchmark_named(name: str) -> Benchmark:
    """The benchmark of that name (a task's ``dataset_kwargs.benchmark``)."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise UsageError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}") from None
