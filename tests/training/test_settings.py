"""Settings: the paper's defaults, YAML files and flags, in that order of precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from lm_eval_medinj.training.settings import PAPER_SETTINGS, bf16_supported, load_settings_file, parse_args

PAPER_YAML = Path(__file__).resolve().parents[2] / "train" / "configs" / "paper.yaml"


def test_paper_yaml_holds_the_built_in_defaults() -> None:
    assert load_settings_file(PAPER_YAML) == PAPER_SETTINGS


def test_defaults_are_the_papers() -> None:
    script, model, training = parse_args(["--mixtures", "NAT"])
    assert (model.method, model.lora_r, model.lora_alpha, model.lora_dropout) == ("dora", 16, 16, 0.05)
    assert model.lora_target_modules == [
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    ]
    assert (training.learning_rate, training.lr_scheduler_type.value, training.warmup_steps) == (
        1e-4,
        "cosine",
        0.05,
    )
    assert (training.num_train_epochs, training.per_device_train_batch_size) == (10, 12)
    assert (training.gradient_accumulation_steps, training.max_length) == (8, 2048)
    assert (script.total, script.tasks) == (33_493, ["mcq", "mcqu"])
    assert training.bf16 is bf16_supported()  # fp32 on CPU unless asked


def test_defaults_reproduce_the_authors_run() -> None:
    script, _, training = parse_args(["--mixtures", "NAT"])
    assert (script.prompt, script.loss) == ("conversation", "all")
    assert (training.train_sampling_strategy, training.pad_to_multiple_of) == ("group_by_length", 8)
    assert (training.eval_strategy.value, training.save_strategy.value, training.save_steps) == ("epoch", "steps", 50)
    assert training.activation_checkpointing and training.seed == 42
    assert (training.completion_only_loss, training.assistant_only_loss) == (None, False)  # set from loss at run time
    assert training.dataset_text_field == "text"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--loss", "all", "--completion_only_loss", "true"], "completion_only_loss: true contradicts loss: all"),
        (["--loss", "assistant", "--completion_only_loss", "false"], "contradicts loss: assistant"),
        (["--assistant_only_loss", "true"], "assistant_only_loss: true is not used here"),
        (["--loss", "assistant", "--assistant_only_loss", "true"], "assistant_only_loss: true is not used here"),
    ],
)
def test_trl_loss_switches_that_contradict_loss_are_refused(flags: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_args(["--mixtures", "NAT", *flags])


def test_a_matching_trl_switch_is_accepted() -> None:
    script, _, training = parse_args(["--loss", "assistant", "--completion_only_loss", "true"])
    assert (script.loss, training.completion_only_loss) == ("assistant", True)


def test_unknown_prompt_or_loss_in_yaml_is_an_error(tmp_path: Path) -> None:
    settings = tmp_path / "s.yaml"
    settings.write_text("prompt: authors\n", encoding="utf-8")
    with pytest.raises(ValueError, match="prompt: 'authors' is not one of conversation, canonical"):
        parse_args(["--settings", str(settings)])
    settings.write_text("loss: completion\n", encoding="utf-8")
    with pytest.raises(ValueError, match="loss: 'completion' is not one of all, assistant"):
        parse_args(["--settings", str(settings)])


def test_yaml_replaces_defaults_and_flags_win(tmp_path: Path) -> None:
    settings = tmp_path / "s.yaml"
    settings.write_text("method: lora\nlora_r: 8\nlearning_rate: 3.0e-4\nmixtures: [NAT, SYN]\n", encoding="utf-8")
    script, model, training = parse_args(["--settings", str(settings), "--lora_r", "4"])
    assert (model.method, model.lora_r, training.learning_rate, script.mixtures) == (
        "lora",
        4,
        3e-4,
        ["NAT", "SYN"],
    )


def test_the_old_config_key_in_yaml_still_means_mixtures(tmp_path: Path) -> None:
    settings = tmp_path / "s.yaml"
    settings.write_text("config: [NAT, SYN]\n", encoding="utf-8")
    with pytest.warns(FutureWarning, match="the key 'config' is now 'mixtures'"):
        script, _, _ = parse_args(["--settings", str(settings)])
    assert script.mixtures == ["NAT", "SYN"]


def test_unknown_yaml_keys_are_an_error(tmp_path: Path) -> None:
    settings = tmp_path / "s.yaml"
    settings.write_text("lora_rank: 8\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown settings: lora_rank"):
        parse_args(["--settings", str(settings)])
