"""Build the MedInjection-FR SFT mixtures and fine-tune one base model on each (DoRA, LoRA or full).

    python train/sft.py --config all --data_dir DATA --dry-run
    python train/sft.py --config NAT-TRAD --model_name_or_path BASE [--method dora] [--merge]
    accelerate launch --config_file train/accelerate/ddp.yaml train/sft.py --config all ...

Defaults are the authors' run (train/configs/paper.yaml): each record's own conversation as one
chat-formatted text, loss on every token, evaluation on the validation split every epoch;
``--settings FILE.yaml`` replaces them and flags override both. See docs/TRAINING.md.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from accelerate import PartialState
from transformers.trainer_utils import IntervalStrategy

from lm_eval_medinj.records import PROVENANCES, TASK_TYPES
from lm_eval_medinj.sources import DataNotFoundError, resolve_data_dir
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


def main(argv: Sequence[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    args = ["--dry_run" if arg == "--dry-run" else arg for arg in args]
    try:
        script, model_args, training_args = parse_args(args)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from error
    state = PartialState(cpu=training_args.use_cpu)
    logging.basicConfig(level=logging.INFO if state.is_main_process else logging.WARNING, format="%(message)s")
    if not script.config:
        raise SystemExit(f"choose mixtures with --config ({' '.join(CONFIGURATIONS)} or all)")
    if not script.dry_run and not model_args.model_name_or_path:
        raise SystemExit("--model_name_or_path is required to train (or pass --dry-run)")
    configs = resolve_configs(script.config)
    unknown = sorted(set(script.tasks) - set(TASK_TYPES))
    if unknown:
        raise SystemExit(f"unknown task type(s) {', '.join(unknown)}; choose from {' '.join(TASK_TYPES)}")
    data_dir = resolve_data_dir(script.data_dir)
    settings = MixtureSettings(script.total, script.mixture_seed, tuple(script.tasks), script.allow_smaller)
    needed = [p for p in PROVENANCES if any(p in CONFIGURATIONS[c] for c in configs)]
    pools = load_pools(needed, settings.tasks, data_dir, script.skip_invalid)
    validation_pools = {}
    if not script.dry_run and training_args.eval_strategy != IntervalStrategy.NO:
        try:
            validation_pools = load_validation_pools(needed, settings.tasks, data_dir, script.skip_invalid)
        except DataNotFoundError as error:
            raise SystemExit(f"error: {error}") from error
    source = str(data_dir) if data_dir else "hub"
    for config in configs:
        try:
            mixture = build_mixture(config, pools, settings, source)
        except MixtureShortfallError as error:
            raise SystemExit(f"error: {error}") from error
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
        try:
            check_run_folder(paths, mixture, script)
        except RunExistsError as error:
            raise SystemExit(f"error: {error}") from error
        validation = validation_set(config, validation_pools) if validation_pools else []
        metrics = run_configuration(mixture, script, model_args, training_args, validation=validation)
        log.info("%s: finished at step %d -> %s", config, metrics["global_step"], paths.root)
    state.destroy_process_group()


if __name__ == "__main__":
    main()
