"""Training examples and labels; a few CPU steps of LoRA, DoRA and full fine-tuning: resume, merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import SFTTrainer

from lm_eval_medinj.benchmarks.layout import DataNotFoundError, resolve_data_dir
from lm_eval_medinj.prompts import render_messages
from lm_eval_medinj.records import MedRecord
from lm_eval_medinj.training.examples import to_dataset, training_messages
from lm_eval_medinj.training.mixtures import (
    MixtureSettings,
    build_mixture,
    load_pools,
    load_validation_pools,
    validation_set,
)
from lm_eval_medinj.training.runner import (
    RunExistsError,
    RunPaths,
    check_run_folder,
    peft_config,
    run_configuration,
)
from tests.training.fixtures import write_pools

PROVENANCES = ("native", "translated", "synthetic")


def _mixture(script, config: str = "NAT-TRAD"):
    settings = MixtureSettings(script.total, script.mixture_seed, tuple(script.tasks))
    pools = load_pools(PROVENANCES, settings.tasks, resolve_data_dir(script.data_dir))
    return build_mixture(config, pools, settings)


def _validation(script, config: str = "NAT-TRAD") -> list[MedRecord]:
    pools = load_validation_pools(PROVENANCES, script.tasks, resolve_data_dir(script.data_dir))
    return validation_set(config, pools)


def _trainer(tiny_args, *flags: str, count: int = 6):
    """An SFTTrainer on the first records of the NAT-TRAD mixture, with its records and tokenizer."""
    script, model_args, training_args = tiny_args("--eval_strategy", "no", *flags)
    records = _mixture(script).records[:count]
    tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path)
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_args.model_name_or_path),
        args=training_args,
        train_dataset=to_dataset(records, tokenizer, script.prompt, script.loss),
        processing_class=tokenizer,
    )
    return trainer, records, tokenizer


def test_training_text_is_the_chat_template_of_the_whole_conversation(tiny_args, tiny_model_dir: Path) -> None:
    script, _, _ = tiny_args()
    assert (script.prompt, script.loss) == ("conversation", "all")
    records = _mixture(script).records
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    with_system = [r for r in records if r.messages[0]["role"] == "system"]
    assert with_system
    rows = to_dataset(records, tokenizer)
    for record, row in zip(records, rows, strict=True):
        conversation = [dict(turn) for turn in record.messages]
        assert row == {"text": tokenizer.apply_chat_template(conversation, tokenize=False)}
    assert rows[records.index(with_system[0])]["text"].startswith("<|im_start|>system\nTu es un assistant médical.")
    canonical = to_dataset(records[:1], tokenizer, prompt="canonical")[0]["text"]
    assert canonical == tokenizer.apply_chat_template(render_messages(records[0]), tokenize=False)


def test_paper_loss_trains_every_token_of_the_text_plus_trls_eos(tiny_args) -> None:
    trainer, records, tokenizer = _trainer(tiny_args)
    assert trainer.args.pad_to_multiple_of == 8
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(records))])
    assert batch["input_ids"].shape[1] % 8 == 0
    real = batch["attention_mask"] == 1
    assert torch.equal(batch["labels"][real], batch["input_ids"][real])
    assert (batch["labels"][~real] == -100).all()
    for row, record in enumerate(records):
        text = tokenizer.apply_chat_template([dict(t) for t in record.messages], tokenize=False)
        # TRL 1.16 appends the EOS to a text that does not end with it (this template ends with "\n"),
        # and tokenizes with the tokenizer's own special tokens (this one adds no BOS).
        expected = tokenizer(text + tokenizer.eos_token)["input_ids"]
        assert batch["input_ids"][row][real[row]].tolist() == expected


def test_assistant_loss_is_on_the_assistant_turn_only(tiny_args) -> None:
    trainer, records, tokenizer = _trainer(tiny_args, "--loss", "assistant")
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(records))])
    for row, record in enumerate(records):
        ids, labels = batch["input_ids"][row], batch["labels"][row]
        trained = labels != -100
        first = int(trained.nonzero()[0])
        prompt = tokenizer.apply_chat_template(record.prompt_turns, add_generation_prompt=True, tokenize=False)
        assert tokenizer.decode(ids[:first]) == prompt
        assert torch.equal(labels[trained], ids[trained])
        assert tokenizer.decode(ids[trained]) == record.messages[-1]["content"] + "<|im_end|>\n"


def test_a_conversation_without_a_final_assistant_turn_is_refused(tiny_args) -> None:
    record = _mixture(tiny_args()[0]).records[0]
    broken = MedRecord(**{**record.__dict__, "messages": record.messages[:-1]})
    with pytest.raises(ValueError, match=rf"record '{record.id}', field 'messages'.*prompt: canonical"):
        training_messages(broken, "conversation")
    assert training_messages(broken, "canonical") == render_messages(record)


def test_the_validation_set_is_the_whole_split_and_a_missing_one_is_named(tmp_path: Path) -> None:
    sizes = {"native": {"mcq": 4, "mcqu": 4}, "translated": {"mcq": 4, "mcqu": 4}}
    root = write_pools(tmp_path, sizes, {"native": {"mcq": 3, "mcqu": 2}, "translated": {"mcq": 1}})
    pools = load_validation_pools(["native"], ["mcq", "mcqu"], root)
    assert [r.id for r in validation_set("NAT", pools)] == [
        *(f"native-mcq-val-{i:04d}" for i in range(3)),
        *(f"native-mcqu-val-{i:04d}" for i in range(2)),
    ]
    with pytest.raises(DataNotFoundError, match=r"no translated validation records for task mcqu in .*"
                       r"Translated/Validation/mcqu/\*\.json.*--eval_strategy no"):  # fmt: skip
        load_validation_pools(["native", "translated"], ["mcq", "mcqu"], root)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["lora", "dora", "full"])
def test_a_few_steps_of_each_method(tiny_args, method: str) -> None:
    script, model_args, training_args = tiny_args("--method", method)
    mixture = _mixture(script)
    metrics = run_configuration(mixture, script, model_args, training_args, validation=_validation(script))
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
        run_configuration(mixture, script, model_args, training_args, [_Interrupt()], _validation(script))
    paths = RunPaths(Path(training_args.output_dir) / "NAT-TRAD")
    assert not paths.finished and (paths.checkpoints / "checkpoint-2").is_dir()
    with pytest.raises(RunExistsError, match="another mixture"):
        check_run_folder(paths, _mixture(script, "NAT-SYN"), script)
    changed = tiny_args("--method", "lora", "--loss", "assistant")[0]
    with pytest.raises(RunExistsError, match="loss: all, not prompt: conversation, loss: assistant"):
        check_run_folder(paths, mixture, changed)
    metrics = run_configuration(mixture, script, model_args, training_args, validation=_validation(script))
    assert (metrics["resumed_from"], metrics["global_step"]) == ("checkpoint-2", 3)


@pytest.mark.slow
def test_merged_checkpoint_computes_what_base_plus_dora_adapter_computes(tiny_args) -> None:
    script, model_args, training_args = tiny_args("--method", "dora", "--merge", "--max_steps", "2")
    run_configuration(_mixture(script), script, model_args, training_args, validation=_validation(script))
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
