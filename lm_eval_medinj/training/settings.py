"""Command-line and YAML settings of ``train/sft.py``, with the paper's values as defaults.

Every setting is a flag. ``--settings FILE.yaml`` (repeatable, later files win) replaces the
defaults with the file's values, and flags given on the command line win over both. The mixtures
are chosen with ``--mixtures NAT|...|all``. The old spelling ``--config NAT ...`` still works, with a
deprecation message; ``--config FILE.yaml`` (TRL's convention: a YAML file of settings) means
``--settings FILE.yaml``. In a settings file, the old key ``config:`` likewise means ``mixtures:``.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from transformers import HfArgumentParser
from trl import SFTConfig

from lm_eval_medinj.errors import InputError, one_line
from lm_eval_medinj.files import read_text
from lm_eval_medinj.prompts import PROMPT_SOURCES
from lm_eval_medinj.training.mixtures import DEFAULT_SEED, DEFAULT_TASKS, DEFAULT_TOTAL

LOSS_SCOPES = ("all", "assistant")
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# The authors' run (SFT-Training.py), plus run defaults (output, logging, checkpoints kept);
# train/configs/paper.yaml holds the same values.
PAPER_SETTINGS: dict[str, Any] = {
    "total": DEFAULT_TOTAL,
    "mixture_seed": DEFAULT_SEED,
    "tasks": list(DEFAULT_TASKS),
    "prompt": "conversation",
    "loss": "all",
    "method": "dora",
    "lora_r": 16,
    "lora_alpha": 16,
    "lora_dropout": 0.05,
    "lora_target_modules": LORA_TARGETS,
    "learning_rate": 1.0e-4,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0.05,
    "num_train_epochs": 10,
    "per_device_train_batch_size": 12,
    "gradient_accumulation_steps": 8,
    "max_length": 2048,
    "train_sampling_strategy": "group_by_length",
    "pad_to_multiple_of": 8,
    "eval_strategy": "epoch",
    "save_strategy": "steps",
    "save_steps": 50,
    "activation_checkpointing": True,
    "seed": 42,
    "output_dir": "runs/sft",
    "report_to": ["tensorboard"],
    "logging_steps": 10,
    "save_total_limit": 2,
}


@dataclass
class ScriptArguments:
    """Which mixtures to build and what to do with them."""

    mixtures: list[str] = field(
        default_factory=list,
        metadata={
            "help": "mixtures: NAT TRAD SYN NAT-TRAD NAT-SYN TRAD-SYN ALL, or all "
            "(formerly --config, still accepted with a deprecation message)"
        },
    )
    settings: list[str] = field(
        default_factory=list, metadata={"help": "YAML file(s) of settings; flags override them"}
    )
    data_dir: str | None = field(
        default=None,
        metadata={"help": "local copy in the Hub layout (Native/Train/mcq/*.json, ...); default: Hub"},
    )
    revision: str | None = field(
        default=None,
        metadata={
            "help": "Hub dataset revision of the pools (default: the pinned ones, lm_eval_medinj/benchmarks/hub.py)"
        },
    )
    total: int = field(default=DEFAULT_TOTAL, metadata={"help": "examples per mixture"})
    mixture_seed: int = field(default=DEFAULT_SEED, metadata={"help": "seed of the mixture sampling"})
    tasks: list[str] = field(default_factory=lambda: list(DEFAULT_TASKS), metadata={"help": "task types: mcq mcqu oeq"})
    prompt: str = field(
        default="conversation",
        metadata={
            "help": "conversation: each record's own messages (canonical where it has none); "
            "canonical: lm_eval_medinj.prompts.render_messages. Same names as lm-eval's --metadata prompt",
            "choices": list(PROMPT_SOURCES),
        },
    )
    loss: str = field(
        default="all",
        metadata={
            "help": "all: the whole chat-formatted conversation as text, loss on every token (the paper); "
            "assistant: prompt-completion, loss on the assistant turn only",
            "choices": list(LOSS_SCOPES),
        },
    )
    allow_smaller: bool = field(default=False, metadata={"help": "use a whole pool that cannot fill its share"})
    skip_invalid: bool = field(default=False, metadata={"help": "skip unreadable records instead of failing"})
    dry_run: bool = field(
        default=False, metadata={"help": "build and report the mixtures, write manifests, no training"}
    )
    merge: bool = field(default=False, metadata={"help": "also save the adapter merged into the base model (merged/)"})
    overwrite: bool = field(default=False, metadata={"help": "delete and retrain a finished run"})
    skip_finished: bool = field(default=False, metadata={"help": "leave finished runs alone and go on with the rest"})


@dataclass
class ModelArguments:
    """The base model and the fine-tuning method."""

    model_name_or_path: str | None = field(default=None, metadata={"help": "base model: Hub id or local folder"})
    method: Literal["dora", "lora", "full"] = field(default="dora", metadata={"help": "dora, lora or full"})
    lora_r: int = 16
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(default_factory=lambda: list(LORA_TARGETS))
    dtype: Literal["auto", "bfloat16", "float32"] = field(
        default="auto",
        metadata={"help": "weights dtype; auto: bfloat16 for dora/lora under --bf16, else float32"},
    )
    attn_implementation: str | None = field(default=None, metadata={"help": "e.g. sdpa, flash_attention_2"})


def bf16_supported() -> bool:
    """bf16 on a GPU that supports it; CPU runs default to fp32."""
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def load_settings_file(path: str | Path) -> dict[str, Any]:
    """A YAML mapping of flag names (without dashes) to values; unreadable YAML is one line naming
    the file, line and column."""
    try:
        values = yaml.safe_load(read_text(Path(path))) or {}
    except InputError as error:
        raise InputError(f"settings file {error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise InputError(f"settings file {path}: not valid YAML ({where}{' '.join(problem.split())})") from None
    if not isinstance(values, dict):
        raise InputError(f"settings file {path} must hold a YAML mapping of flag names to values")
    if "config" in values:
        if "mixtures" in values:
            raise ValueError(f"settings file {path}: give mixtures, not both mixtures and config (its old name)")
        _deprecated(f"settings file {path}: the key 'config' is now 'mixtures'")
        values["mixtures"] = values.pop("config")
    return values


_YAML_SUFFIXES = (".yaml", ".yml")
_WARNED: set[str] = set()


def _deprecated(message: str) -> None:
    """A FutureWarning (shown by default), once per message and process."""
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, FutureWarning, stacklevel=3)


def translate_old_flags(argv: Sequence[str]) -> list[str]:
    """``--config NAT ...`` (the old spelling) becomes ``--mixtures NAT ...`` with a deprecation message;
    ``--config FILE.yaml`` (TRL's convention) becomes ``--settings FILE.yaml``; ``--dry-run`` is
    ``--dry_run``."""
    args: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--dry-run":
            args.append("--dry_run")
            continue
        name, eq, value = arg.partition("=")
        if name != "--config":
            args.append(arg)
            continue
        following = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
        if following.lower().endswith(_YAML_SUFFIXES):
            args.append(f"--settings={value}" if eq else "--settings")
        else:
            _deprecated("--config is deprecated for the mixtures: use --mixtures (--config FILE.yaml reads settings)")
            args.append(f"--mixtures={value}" if eq else "--mixtures")
    return args


def make_parser(defaults: dict[str, Any]) -> HfArgumentParser:
    """The parser of the three dataclasses, its defaults replaced by ``defaults``.

    Flags are never abbreviated (``--learning_r`` is not ``--learning_rate``), and a bad value is
    an exception (:func:`parse_args` makes it a ``ValueError``), not argparse's exit."""
    parser = HfArgumentParser((ScriptArguments, ModelArguments, SFTConfig), allow_abbrev=False, exit_on_error=False)
    dests = {action.dest for action in parser._actions}
    unknown = sorted(set(defaults) - dests)
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(unknown)} (see python train/sft.py --help)")
    parser.set_defaults(**defaults)
    return parser


# argparse types whose values a YAML scalar (number, boolean, string) must convert to
_CHECKED_TYPES = (int, float)


def check_settings(values: dict[str, Any], parser: argparse.ArgumentParser, path: str | Path) -> dict[str, Any]:
    """A settings file's values, checked as the same flags on the command line would be: known
    names, one value where the flag takes one (a list where it takes several), numbers for numeric
    flags, booleans for switches, one of the choices. Settings whose flag takes free text (dicts,
    JSON, unions) pass as they are."""
    actions = {action.dest: action for action in parser._actions}
    unknown = sorted(set(values) - set(actions))
    if unknown:
        raise InputError(
            f"settings file {path}: unknown settings: {', '.join(unknown)} (see python train/sft.py --help)"
        )
    checked: dict[str, Any] = {}
    for name, value in values.items():
        action = actions[name]
        where = f"settings file {path}: {name}"
        if value is None:
            checked[name] = value
        elif action.nargs in ("+", "*"):
            items = value if isinstance(value, list) else [value]
            checked[name] = [_checked_value(action, item, where) for item in items]
        elif isinstance(value, list | dict) and (action.type in _CHECKED_TYPES or action.choices is not None):
            raise InputError(f"{where}: expected one value, got {one_line(repr(value))}")
        else:
            checked[name] = _checked_value(action, value, where)
    return checked


def _checked_value(action: argparse.Action, value: Any, where: str) -> Any:
    kind = action.type
    if isinstance(value, bool) and kind in _CHECKED_TYPES:
        raise InputError(f"{where}: expected a number, got {value}")
    if not (kind in _CHECKED_TYPES or action.choices is not None or getattr(kind, "__name__", "") == "string_to_bool"):
        return value
    try:
        converted = kind(value if isinstance(value, str) else str(value)) if callable(kind) else value
    except (TypeError, ValueError, argparse.ArgumentTypeError) as error:
        raise InputError(f"{where}: {one_line(repr(value))} is not valid ({one_line(str(error))})") from None
    if action.choices is not None and converted not in action.choices:
        raise InputError(f"{where}: {value!r} is not one of {', '.join(map(str, action.choices))}")
    return converted if kind in _CHECKED_TYPES else value


def unknown_arguments_error(remaining: Sequence[str], parser: argparse.ArgumentParser) -> str:
    """One line for arguments no flag takes, with the closest flag for each unknown one."""
    options = [option for action in parser._actions for option in action.option_strings]
    described = []
    for argument in remaining:
        if argument.startswith("-"):
            flag = argument.partition("=")[0]
            close = difflib.get_close_matches(flag, options, n=1, cutoff=0.6)
            described.append(f"{flag}" + (f" (did you mean {close[0]}?)" if close else ""))
    if not described:
        return f"unexpected argument(s): {' '.join(remaining)}"
    return f"unknown flag(s): {', '.join(described)}; flags are not abbreviated (python train/sft.py --help)"


def parse_args(argv: Sequence[str] | None = None) -> tuple[ScriptArguments, ModelArguments, SFTConfig]:
    """Defaults (paper, then ``--settings`` files in order), overridden by the flags in ``argv``.

    Raises ``ValueError`` (one line) on an unknown or abbreviated flag, a bad value, an unreadable
    or ill-typed settings file, or a model or output path that cannot be what it names."""
    argv = translate_old_flags(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--settings", nargs="+", action="extend", default=[])
    known, _ = pre.parse_known_args(argv)
    defaults = {**PAPER_SETTINGS, "bf16": bf16_supported()}
    plain = make_parser({})
    for path in known.settings:
        defaults.update(check_settings(load_settings_file(path), plain, path))
    parser = make_parser(defaults)
    try:
        script, model, training, remaining = parser.parse_args_into_dataclasses(
            args=argv, return_remaining_strings=True
        )
    except argparse.ArgumentError as error:
        raise ValueError(str(error)) from None
    if remaining:
        raise ValueError(unknown_arguments_error(remaining, parser))
    check_loss_settings(script, training)
    check_paths(model, training)
    return script, model, training


def looks_local(name: str) -> bool:
    """Whether a model name is meant as a path (a Hub id is ``name`` or ``org/name``)."""
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1 or Path(name).exists()


def check_paths(model: ModelArguments, training: SFTConfig) -> None:
    """A local model path that is not a folder, or an output folder that is a file: refused now,
    before the data is read."""
    name = model.model_name_or_path
    if name and looks_local(name):
        path = Path(name).expanduser()
        if not path.exists():
            raise InputError(f"--model_name_or_path {name}: no such folder")
        if not path.is_dir():
            raise InputError(f"--model_name_or_path {name}: a file, not a model folder")
    output = Path(training.output_dir).expanduser()
    if output.exists() and not output.is_dir():
        raise InputError(f"--output_dir {training.output_dir}: a file, not a folder")


def check_loss_settings(script: ScriptArguments, training: SFTConfig) -> None:
    """Refuse an unknown prompt source or loss, and TRL loss switches that contradict ``loss``."""
    if script.prompt not in PROMPT_SOURCES:
        raise ValueError(f"prompt: {script.prompt!r} is not one of {', '.join(PROMPT_SOURCES)}")
    if script.loss not in LOSS_SCOPES:
        raise ValueError(f"loss: {script.loss!r} is not one of {', '.join(LOSS_SCOPES)}")
    if training.assistant_only_loss:
        raise ValueError(
            f"assistant_only_loss: true is not used here (loss: {script.loss}); choose the loss with loss: all "
            "(every token) or loss: assistant (the assistant turn, through TRL's completion_only_loss)"
        )
    wanted = script.loss == "assistant"
    if training.completion_only_loss is not None and training.completion_only_loss is not wanted:
        raise ValueError(
            f"completion_only_loss: {str(training.completion_only_loss).lower()} contradicts loss: "
            f"{script.loss}, which sets it to {str(wanted).lower()}; drop completion_only_loss"
        )
