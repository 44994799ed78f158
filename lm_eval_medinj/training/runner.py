"""One SFT run per mixture: data, model, TRL's SFTTrainer, resume, saving, merging.

A run folder ``<output_dir>/<CONFIG>/`` holds ``manifest.json`` and ``ids.txt`` (the mixture),
``settings.json`` (every setting, the prompt source and loss, the validation set, the library
versions), ``checkpoints/`` (resumable trainer checkpoints), ``tensorboard/``, ``adapter/``
(DoRA/LoRA) or ``model/`` (full fine-tuning), ``merged/`` on request and, last, ``metrics.json``
(with the evaluations), whose presence marks the run finished.

A kill at any moment loses at most the steps since the last complete checkpoint: a checkpoint torn
by the kill is removed, with a warning, and the run resumes from the one before
(:func:`complete_checkpoints`). ``metrics.json``'s ``train_loss`` covers every step of the run, resumed
or not (:func:`whole_run_train_loss`). No credential reaches a file (:func:`without_secrets`).
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from accelerate.utils import gather_object
from huggingface_hub.errors import HFValidationError
from peft import LoraConfig, PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback, TrainerControl
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, IntervalStrategy
from trl import SFTConfig, SFTTrainer

from lm_eval_medinj.errors import InputError, one_line
from lm_eval_medinj.files import write_json_atomic
from lm_eval_medinj.records import MedRecord
from lm_eval_medinj.training.examples import to_dataset
from lm_eval_medinj.training.mixtures import Mixture, ids_sha256, write_mixture
from lm_eval_medinj.training.settings import ModelArguments, ScriptArguments

log = logging.getLogger(__name__)

_CHECKPOINT = re.compile(rf"{PREFIX_CHECKPOINT_DIR}-(\d+)")
VERSIONED_PACKAGES = ("lm-eval-medinj", "torch", "transformers", "trl", "peft", "accelerate", "datasets")


class RunExistsError(RuntimeError):
    """A finished run, or a run begun on another mixture, is in the way."""


@dataclass(frozen=True)
class RunPaths:
    """The files and folders of one run."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def settings(self) -> Path:
        return self.root / "settings.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def adapter(self) -> Path:
        return self.root / "adapter"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def merged(self) -> Path:
        return self.root / "merged"

    def weights(self, method: str) -> Path:
        """Where the trained weights go: ``model/`` for full fine-tuning, else ``adapter/``."""
        return self.model if method == "full" else self.adapter

    @property
    def finished(self) -> bool:
        return self.metrics.is_file()


def peft_config(model_args: ModelArguments) -> LoraConfig | None:
    """DoRA or LoRA on the target modules; ``None`` for full fine-tuning."""
    if model_args.method == "full":
        return None
    return LoraConfig(
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        target_modules=list(model_args.lora_target_modules),
        use_dora=model_args.method == "dora",
        task_type="CAUSAL_LM",
    )


def model_dtype(model_args: ModelArguments, training_args: SFTConfig) -> torch.dtype:
    """Weights dtype: explicit, else bf16 for adapters under ``--bf16`` and fp32 otherwise."""
    if model_args.dtype != "auto":
        return getattr(torch, model_args.dtype)
    return torch.bfloat16 if training_args.bf16 and model_args.method != "full" else torch.float32


def weights_sha256(model: torch.nn.Module) -> str:
    """SHA-256 of the trainable parameters, by name: equal on every data-parallel rank."""
    digest = hashlib.sha256()
    for name, parameter in sorted(model.named_parameters()):
        if parameter.requires_grad:
            digest.update(name.encode())
            digest.update(parameter.detach().to(torch.float32).cpu().numpy().tobytes())
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    return {name: version(name) for name in VERSIONED_PACKAGES}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _prompt_and_loss(settings: Path) -> tuple[str, str]:
    """The prompt source and loss a run folder was begun with (runs before these settings: canonical, assistant)."""
    script = json.loads(settings.read_text(encoding="utf-8"))["script"]
    return script.get("prompt", "canonical"), script.get("loss", "assistant")


def check_run_folder(paths: RunPaths, mixture: Mixture, script: ScriptArguments) -> None:
    """Raise when a finished run (without ``--overwrite``), another mixture's run, or a run with
    another prompt source or loss is in the way."""
    if paths.finished and not script.overwrite:
        raise RunExistsError(
            f"{paths.root} holds a finished run; pass --overwrite to retrain it, "
            "or --skip_finished to go on with the other configurations"
        )
    if paths.manifest.is_file() and not script.overwrite:
        previous = json.loads(paths.manifest.read_text(encoding="utf-8"))["ids_sha256"]
        if previous != mixture.manifest["ids_sha256"]:
            raise RunExistsError(
                f"{paths.root} was started on another mixture (ids SHA-256 {previous[:12]}…, now "
                f"{mixture.manifest['ids_sha256'][:12]}…); pass --overwrite or choose another --output_dir"
            )
    if paths.settings.is_file() and not script.overwrite:
        previous_prompt, previous_loss = _prompt_and_loss(paths.settings)
        if (previous_prompt, previous_loss) != (script.prompt, script.loss):
            raise RunExistsError(
                f"{paths.settings} was begun with prompt: {previous_prompt}, loss: {previous_loss}, not prompt: "
                f"{script.prompt}, loss: {script.loss}; pass --overwrite or choose another --output_dir"
            )


def merge_adapter(base: str, adapter: Path, out: Path, dtype: torch.dtype) -> Path:
    """Save the base model with the adapter merged in: a plain checkpoint (vLLM cannot serve DoRA)."""
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(str(adapter)).save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def checkpoint_step(folder: Path) -> int | None:
    """N for a folder named ``checkpoint-N`` (the Trainer's naming), else ``None``."""
    match = _CHECKPOINT.fullmatch(folder.name)
    return int(match.group(1)) if match and folder.is_dir() else None


def is_complete(checkpoint: Path) -> bool:
    """Whether the Trainer finished writing this checkpoint.

    ``Trainer._save_checkpoint`` (transformers 5.19-5.39) writes the weights, the optimizer and
    scheduler, the RNG states and, last, ``trainer_state.json``; so a checkpoint whose
    ``trainer_state.json`` reads as JSON and names its own step was written to the end. A kill
    during the write leaves it missing, or cut short (not JSON)."""
    try:
        state = json.loads((checkpoint / TRAINER_STATE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and state.get("global_step") == checkpoint_step(checkpoint)


def complete_checkpoints(folder: Path) -> tuple[Path | None, list[Path]]:
    """The newest complete checkpoint under ``folder`` (``None``: none), and the incomplete ones."""
    found = sorted((path for path in folder.iterdir() if checkpoint_step(path) is not None), key=checkpoint_step)
    complete = [path for path in found if is_complete(path)]
    return (complete[-1] if complete else None), [path for path in found if path not in complete]


def remove_incomplete(checkpoints: Sequence[Path], resume_from: Path | None) -> None:
    """Remove checkpoints a kill left half-written, saying so (the resumed run writes them again)."""
    for checkpoint in checkpoints:
        log.warning(
            "%s is incomplete (no readable %s: the run was stopped while writing it); removed, resuming from %s",
            checkpoint,
            TRAINER_STATE_NAME,
            resume_from.name if resume_from else "the start",
        )
        shutil.rmtree(checkpoint, ignore_errors=True)


def whole_run_train_loss(log_history: Sequence[dict[str, Any]]) -> tuple[float | None, int]:
    """The mean training loss over every step of the run, and the steps it covers.

    Each ``loss`` entry of the log is the mean over the steps since the previous one (the previous
    ``loss`` entry, or the checkpoint a run resumed from: :class:`LogBeforeSave` logs at every
    checkpoint), so the whole run's mean is ``sum(loss_i * (step_i - step_{i-1})) / last step``:
    the Trainer's own ``train_loss`` for a run never resumed (a test checks it), and the whole run,
    not the steps since the resume, for one that was."""
    total, covered = 0.0, 0
    for entry in log_history:
        if "loss" in entry and entry.get("step", 0) > covered:
            total += float(entry["loss"]) * (entry["step"] - covered)
            covered = int(entry["step"])
    return (total / covered if covered else None), covered


class LogBeforeSave(TrainerCallback):
    """Log the training loss at every checkpoint and at the last step, so that a checkpoint's log
    history holds the loss of every step before it, and a resumed run's loss can cover the whole run
    (:func:`whole_run_train_loss`). Runs after the Trainer's own flow callback, which decides the
    saves; with ``save_steps`` a multiple of ``logging_steps`` (the defaults) it adds no log entry."""

    def on_step_end(self, args: Any, state: Any, control: TrainerControl, **kwargs: Any) -> TrainerControl:
        if control.should_save or control.should_training_stop:
            control.should_log = True
        return control

    def on_epoch_end(self, args: Any, state: Any, control: TrainerControl, **kwargs: Any) -> TrainerControl:
        if control.should_save:
            control.should_log = True
        return control


def without_secrets(args: SFTConfig) -> SFTConfig:
    """``args`` without a credential: the Trainer pickles its arguments (``training_args.bin``) into
    every checkpoint and the weights folder, and logs them to TensorBoard. ``hub_token`` (the only
    credential among the arguments) goes to the Hub client through ``HF_TOKEN`` instead."""
    if not args.hub_token:
        return args
    os.environ["HF_TOKEN"] = args.hub_token
    log.warning(
        "--hub_token is kept out of every file of the run: the Hub client reads it from HF_TOKEN "
        "(prefer setting HF_TOKEN yourself: a command line is visible to other users of the machine)"
    )
    return dataclasses.replace(args, hub_token=None)


def load_base(model_args: ModelArguments, dtype: torch.dtype) -> tuple[Any, Any]:
    """The tokenizer and model of ``--model_name_or_path``; one that cannot be loaded is one line."""
    name = model_args.model_name_or_path
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        model = AutoModelForCausalLM.from_pretrained(
            name, dtype=dtype, attn_implementation=model_args.attn_implementation
        )
    except (OSError, HFValidationError) as error:
        raise InputError(f"--model_name_or_path {name}: {one_line(str(error), 240)}") from None
    return tokenizer, model


def evaluations(log_history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The evaluation entries of a trainer's log history (those with ``eval_loss``)."""
    return [entry for entry in log_history if "eval_loss" in entry]


def run_configuration(
    mixture: Mixture,
    script: ScriptArguments,
    model_args: ModelArguments,
    training_args: SFTConfig,
    callbacks: Sequence[TrainerCallback] = (),
    validation: Sequence[MedRecord] = (),
) -> dict[str, Any]:
    """Train (or resume) one configuration and return its metrics; see the module doc for the folder.

    ``validation`` is the evaluation set, required unless ``eval_strategy`` is ``no``.
    """
    state = PartialState()
    paths = RunPaths(Path(training_args.output_dir) / mixture.config)
    if training_args.eval_strategy != IntervalStrategy.NO and not validation:
        raise ValueError(f"{mixture.config}: evaluation is on (eval_strategy) but no validation records were given")
    if script.overwrite and paths.root.exists() and state.is_main_process:
        shutil.rmtree(paths.root)  # a fresh start: no checkpoint of the old run is resumed
    state.wait_for_everyone()
    args = dataclasses.replace(
        without_secrets(training_args),
        output_dir=str(paths.checkpoints),
        run_name=mixture.config,
        completion_only_loss=script.loss == "assistant",
    )
    validation_summary = {"examples": len(validation), "ids_sha256": ids_sha256(validation)} if validation else None
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(paths.tensorboard)  # read by transformers' TensorBoard callback
    if state.is_main_process:
        write_mixture(mixture, paths.root)
        write_json_atomic(
            paths.settings,
            _jsonable(
                {
                    "config": mixture.config,
                    "prompt": script.prompt,
                    "loss": script.loss,
                    "validation": validation_summary,
                    "script": dataclasses.asdict(script),
                    "model": dataclasses.asdict(model_args),
                    "training": args.to_dict(),
                    "world_size": state.num_processes,
                    "versions": _versions(),
                }
            ),
        )
    tokenizer, model = load_base(model_args, model_dtype(model_args, args))
    data = {"tokenizer": tokenizer, "prompt": script.prompt, "loss": script.loss, "text_field": args.dataset_text_field}
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=to_dataset(mixture.records, **data),
        eval_dataset=to_dataset(validation, **data) if validation else None,
        processing_class=tokenizer,
        peft_config=peft_config(model_args),
        callbacks=[LogBeforeSave(), *callbacks],
    )
    last, incomplete = complete_checkpoints(paths.checkpoints) if paths.checkpoints.is_dir() else (None, [])
    state.wait_for_everyone()  # every rank has chosen before the main process removes anything
    if incomplete and state.is_main_process:
        remove_incomplete(incomplete, last)
    state.wait_for_everyone()
    if last:
        log.info("%s: resuming from %s", mixture.config, last)
    result = trainer.train(resume_from_checkpoint=str(last) if last else None)
    train_loss, steps_logged = whole_run_train_loss(trainer.state.log_history)
    if steps_logged != trainer.state.global_step:
        log.warning(
            "%s: train_loss covers the %d logged steps of %d (a checkpoint resumed from was written before its "
            "steps were logged)",
            mixture.config,
            steps_logged,
            trainer.state.global_step,
        )
    weights = paths.weights(model_args.method)
    trainer.save_model(str(weights))
    distributed = trainer.accelerator.distributed_type.value
    digest = (
        None
        if distributed in {"FSDP", "DEEPSPEED"}
        else weights_sha256(trainer.accelerator.unwrap_model(trainer.model))
    )
    digests = gather_object([digest])
    metrics = {
        "config": mixture.config,
        "method": model_args.method,
        "prompt": script.prompt,
        "loss": script.loss,
        "global_step": trainer.state.global_step,
        "resumed_from": last.name if last else None,
        "examples": len(mixture.records),
        "ids_sha256": mixture.manifest["ids_sha256"],
        "distributed_type": distributed,
        "world_size": state.num_processes,
        "weights_sha256_by_rank": digests,
        "weights": weights.name,
        # train_loss: every step of the run (whole_run_train_loss); the Trainer's own covers this session only
        "train": {**result.metrics, "train_loss": train_loss, "session_train_loss": result.metrics["train_loss"]},
        "train_loss_steps": steps_logged,
        "validation": validation_summary,
        "evaluations": evaluations(trainer.state.log_history),
    }
    state.wait_for_everyone()
    if state.is_main_process:
        if script.merge and model_args.method != "full":
            merge_adapter(model_args.model_name_or_path, weights, paths.merged, model_dtype(model_args, args))
            metrics["merged"] = paths.merged.name
        write_json_atomic(paths.metrics, _jsonable(metrics))
    state.wait_for_everyone()
    del trainer, model  # free the device before the next configuration
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return metrics
