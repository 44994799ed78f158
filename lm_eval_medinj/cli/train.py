"""``medinj train`` (and ``python train/sft.py``): build the SFT mixtures, report them (``--dry-run``)
or fine-tune a base model on each.

``run(argv)`` raises the package's errors (tests call it); ``main(argv)`` is the command line, which
prints a data or usage error as one line and exits 2 (``--debug`` or ``MEDINJ_DEBUG=1``: traceback).
Settings: :mod:`lm_eval_medinj.training.settings`; see docs/TRAINING.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from accelerate import PartialState
from transformers.trainer_utils import IntervalStrategy

from lm_eval_medinj.benchmarks.layout import resolve_data_dir
from lm_eval_medinj.errors import UsageError, run_cli
from lm_eval_medinj.records import PROVENANCES, TASK_TYPES
from lm_eval_medinj.training.mixtures import (
    CONFIGURATIONS,
    Mixture,
    MixtureSettings,
    MixtureShortfallError,
    build_mixture,
    load_pools,
    load_validation_pools,
    resolve_configs,
    validation_set,
    write_mixture,
)
from lm_eval_medinj.training.runner import (
    RunExistsError,
    RunPaths,
    check_run_folder,
    merge_adapter,
    model_dtype,
    run_configuration,
)
from lm_eval_medinj.training.settings import parse_args

log = logging.getLogger("sft")
# Reported as one line by ``main``, besides lm_eval_medinj.errors.data_errors().
ERRORS = (MixtureShortfallError, RunExistsError)


def report(mixture: Mixture, manifest: Path) -> str:
    """One line per mixture: counts by provenance and task, and the ids' SHA-256."""
    counts = mixture.manifest["counts"]
    provenances = " ".join(f"{p}={n}" for p, n in counts["provenance"].items())
    tasks = " ".join(f"{t}={n}" for t, n in counts["task"].items())
    return (
        f"{mixture.config:<9} total={mixture.manifest['total']:<6} {provenances} | {tasks} | "
        f"sha256={mixture.manifest['ids_sha256']} -> {manifest}"
    )


def dry_run(mixture: Mixture, paths: RunPaths) -> str:
    """Write the mixture's manifest unless the run folder holds another mixture; report it."""
    if paths.manifest.is_file():
        previous = json.loads(paths.manifest.read_text(encoding="utf-8"))["ids_sha256"]
        if previous != mixture.manifest["ids_sha256"]:
            return f"{report(mixture, paths.manifest)} NOT WRITTEN: the run there used sha256={previous}"
    return report(mixture, write_mixture(mixture, paths.root))


def run(argv: Sequence[str]) -> None:
    """Build the mixtures the flags choose; report them (``--dry-run``) or train on each in turn."""
    try:
        script, model_args, training_args = parse_args(list(argv))
    except ValueError as error:  # the settings' own checks
        raise UsageError(str(error)) from error
    state = PartialState(cpu=training_args.use_cpu)
    logging.basicConfig(level=logging.INFO if state.is_main_process else logging.WARNING, format="%(message)s")
    if not script.mixtures:
        raise UsageError(f"choose mixtures with --mixtures ({' '.join(CONFIGURATIONS)} or all)")
    if not script.dry_run and not model_args.model_name_or_path:
        raise UsageError("--model_name_or_path is required to train (or pass --dry-run)")
    try:
        configs = resolve_configs(script.mixtures)
    except ValueError as error:
        raise UsageError(str(error)) from error
    unknown = sorted(set(script.tasks) - set(TASK_TYPES))
    if unknown:
        raise UsageError(f"unknown task type(s) {', '.join(unknown)}; choose from {' '.join(TASK_TYPES)}")
    data_dir = resolve_data_dir(script.data_dir)
    settings = MixtureSettings(script.total, script.mixture_seed, tuple(script.tasks), script.allow_smaller)
    needed = [p for p in PROVENANCES if any(p in CONFIGURATIONS[c] for c in configs)]
    pools = load_pools(needed, settings.tasks, data_dir, script.skip_invalid, revision=script.revision)
    validation_pools = {}
    if not script.dry_run and training_args.eval_strategy != IntervalStrategy.NO:
        validation_pools = load_validation_pools(needed, settings.tasks, data_dir, script.skip_invalid, script.revision)
    source = str(data_dir) if data_dir else "hub"
    for config in configs:
        mixture = build_mixture(config, pools, settings, source)
        paths = RunPaths(Path(training_args.output_dir) / config)
        if script.dry_run:
            if state.is_main_process:
                log.info(dry_run(mixture, paths))
            continue
        if paths.finished and not script.overwrite:
            if script.merge and model_args.method != "full" and not paths.merged.exists():
                if state.is_main_process:
                    dtype = model_dtype(model_args, training_args)
                    merge_adapter(model_args.model_name_or_path, paths.adapter, paths.merged, dtype)
                    log.info("%s: merged the finished adapter into %s", config, paths.merged)
                state.wait_for_everyone()
                continue
            if script.skip_finished:
                log.info("%s: finished run in %s, skipped", config, paths.root)
                continue
        check_run_folder(paths, mixture, script)
        validation = validation_set(config, validation_pools) if validation_pools else []
        metrics = run_configuration(mixture, script, model_args, training_args, validation=validation)
        log.info("%s: finished at step %d -> %s", config, metrics["global_step"], paths.root)
    state.destroy_process_group()


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    """``medinj train`` / ``train/sft.py``: ``run`` with data and usage errors printed as one line (exit status 2)."""
    run_cli(run, argv, errors=ERRORS, prog=prog)
