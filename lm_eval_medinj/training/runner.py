"""One SFT run per mixture: data, model, TRL's SFTTrainer, resume, saving, merging.

A run folder ``<output_dir>/<CONFIG>/`` holds ``manifest.json`` and ``ids.txt`` (the mixture),
``settings.json`` (every setting, the prompt source and loss, the validation set, the library
versions), ``checkpoints/`` (resumable trainer checkpoints), ``tensorboard/``, ``adapter/``
(DoRA/LoRA) or ``model/`` (full fine-tuning), ``merged/`` on request and, last, ``metrics.json``
(with the evaluations), whose presence marks the run finished.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from accelerate.utils import gather_object
from peft import LoraConfig, PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from transformers.trainer_utils import IntervalStrategy, get_last_checkpoint
from trl import SFTConfig, SFTTrainer

from lm_eval_medinj.records import MedRecord
from lm_eval_medinj.training.examples import to_dataset
from lm_eval_medinj.training.mixtures import Mixture, ids_sha256, write_json_atomic, write_mixture
from lm_eval_medinj.training.settings import ModelArguments, ScriptArguments

log = logging.getLogger(__name__)

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
        training_args,
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
    tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path)
    model = AutoModelForCausalLM.from_pretrained(
        model_args.model_name_or_path,
        dtype=model_dtype(model_args, args),
        attn_implementation=model_args.attn_implementation,
    )
    data = {"tokenizer": tokenizer, "prompt": script.prompt, "loss": script.loss, "text_field": args.dataset_text_field}
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=to_dataset(mixture.records, **data),
        eval_dataset=to_dataset(validation, **data) if validation else None,
        processing_class=tokenizer,
        peft_config=peft_config(model_args),
        callbacks=list(callbacks),
    )
    last = get_last_checkpoint(str(paths.checkpoints)) if paths.checkpoints.is_dir() else None
    if last:
        log.info("%s: resuming from %s", mixture.config, last)
    result = trainer.train(resume_from_checkpoint=last)
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
        "resumed_from": Path(last).name if last else None,
        "examples": len(mixture.records),
        "ids_sha256": mixture.manifest["ids_sha256"],
        "distributed_type": distributed,
        "world_size": state.num_processes,
        "weights_sha256_by_rank": digests,
        "weights": weights.name,
        "train": result.metrics,
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
