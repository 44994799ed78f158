"""A few CPU steps of LoRA, DoRA and full fine-tuning on the tiny model: labels, resume, merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import SFTTrainer

from lm_eval_medinj.prompts import render_target
from lm_eval_medinj.sources import resolve_data_dir
from lm_eval_medinj.training.mixtures import MixtureSettings, build_mixture, load_pools
from lm_eval_medinj.training.runner import (
    RunExistsError,
    RunPaths,
    check_run_folder,
    peft_config,
    run_configuration,
    to_dataset,
)


def _mixture(script, config: str = "NAT-TRAD"):
    settings = MixtureSettings(script.total, script.mixture_seed, tuple(script.tasks))
    pools = load_pools(("native", "translated", "synthetic"), settings.tasks, resolve_data_dir(script.data_dir))
    return build_mixture(config, pools, settings)


def test_loss_is_on_the_assistant_turn_only(tiny_args) -> None:
    script, model_args, training_args = tiny_args()
    mixture = _mixture(script)
    tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path)
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_args.model_name_or_path),
        args=training_args,
        train_dataset=to_dataset(mixture.records[:4]),
        processing_class=tokenizer,
    )
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    for row, record in enumerate(mixture.records[:4]):
        ids, labels = batch["input_ids"][row], batch["labels"][row]
        trained = labels != -100
        first = int(trained.nonzero()[0])
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": to_dataset([record])[0]["prompt"][0]["content"]}],
            add_generation_prompt=True,
            tokenize=False,
        )
        assert tokenizer.decode(ids[:first]) == prompt
        assert torch.equal(labels[trained], ids[trained])
        assert tokenizer.decode(ids[trained]).startswith(render_target(record) + "<|im_end|>")


@pytest.mark.slow
@pytest.mark.parametrize("method", ["lora", "dora", "full"])
def test_a_few_steps_of_each_method(tiny_args, method: str) -> None:
    script, model_args, training_args = tiny_args("--method", method)
    mixture = _mixture(script)
    metrics = run_configuration(mixture, script, model_args, training_args)
    paths = RunPaths(Path(training_args.output_dir) / "NAT-TRAD")
    assert metrics["global_step"] == 3
    assert json.loads(paths.metrics.read_text(encoding="utf-8"))["method"] == method
    assert json.loads(paths.manifest.read_text(encoding="utf-8")) == mixture.manifest
    settings = json.loads(paths.settings.read_text(encoding="utf-8"))
    assert settings["model"]["method"] == method and settings["training"]["max_steps"] == 3
    if method == "full":
        trained = AutoModelForCausalLM.from_pretrained(paths.model)
        base = AutoModelForCausalLM.from_pretrained(model_args.model_name_or_path)
        assert not torch.equal(trained.lm_head.weight, base.lm_head.weight)
    else:
        config = json.loads((paths.adapter / "adapter_config.json").read_text(encoding="utf-8"))
        assert config["use_dora"] is (method == "dora")
        assert config["r"] == 16 and sorted(config["target_modules"]) == sorted(model_args.lora_target_modules)
    with pytest.raises(RunExistsError, match="finished run"):
        check_run_folder(paths, mixture, script)


class _Interrupt(TrainerCallback):
    """Stops training before step 3, after checkpoint-2 is saved (a crash stand-in)."""

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == 2:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_an_interrupted_run_resumes_from_its_last_checkpoint(tiny_args) -> None:
    script, model_args, training_args = tiny_args("--method", "lora")
    mixture = _mixture(script)
    with pytest.raises(KeyboardInterrupt):
        run_configuration(mixture, script, model_args, training_args, callbacks=[_Interrupt()])
    paths = RunPaths(Path(training_args.output_dir) / "NAT-TRAD")
    assert not paths.finished and (paths.checkpoints / "checkpoint-2").is_dir()
    with pytest.raises(RunExistsError, match="another mixture"):
        check_run_folder(paths, _mixture(script, "NAT-SYN"), script)
    metrics = run_configuration(mixture, script, model_args, training_args)
    assert (metrics["resumed_from"], metrics["global_step"]) == ("checkpoint-2", 3)


@pytest.mark.slow
def test_merged_checkpoint_computes_what_base_plus_dora_adapter_computes(tiny_args) -> None:
    script, model_args, training_args = tiny_args("--method", "dora", "--merge", "--max_steps", "2")
    run_configuration(_mixture(script), script, model_args, training_args)
    paths = RunPaths(Path(training_args.output_dir) / "NAT-TRAD")
    base = AutoModelForCausalLM.from_pretrained(model_args.model_name_or_path)
    with_adapter = PeftModel.from_pretrained(base, str(paths.adapter)).eval()
    merged = AutoModelForCausalLM.from_pretrained(paths.merged).eval()
    inputs = AutoTokenizer.from_pretrained(paths.merged)("Question : quel traitement ?", return_tensors="pt")
    with torch.no_grad():
        expected, actual = with_adapter(**inputs).logits, merged(**inputs).logits
    assert torch.allclose(expected, actual, atol=1e-5)
    base_only = AutoModelForCausalLM.from_pretrained(model_args.model_name_or_path).eval()
    with torch.no_grad():
        assert not torch.allclose(base_only(**inputs).logits, actual, atol=1e-5)


def test_full_fine_tuning_has_no_adapter_config(tiny_args) -> None:
    assert peft_config(tiny_args("--method", "full")[1]) is None
