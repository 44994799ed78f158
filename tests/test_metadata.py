"""One ``--metadata`` schema: a misspelt key of any family stops, listing the known keys."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lm_eval_medinj.base_task import load_dataset
from lm_eval_medinj.metadata import KEYS, MetadataError, check_metadata, family_scorers
from lm_eval_medinj.oeq.task import OEQSettings

# What lm-eval 0.4.13 merges into every task's metadata besides --metadata: the YAML's
# metadata block, its own config_source, and every --model_args key (model_args | metadata).
LM_EVAL_KEYS = {
    "version": 1.0,
    "config_source": "tasks/medinj/medinj_mcq_native.yaml",
    "pretrained": "/models/qwen",
    "dtype": "bfloat16",
    "batch_size": 8,
    "device": "cuda",
    "tokenizer": "/models/qwen",
    "max_length": 4096,
    "trust_remote_code": True,
    "gpu_memory_utilization": 0.8,
    "data_parallel_size": 2,
    "reuse_prefix": False,
    "decode_batch_size": 64,
    "base_url": "http://localhost:8000/v1",
    "num_concurrent": 4,
}


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("bertscore_modle", "bertscore_model"),
        ("data_dri", "data_dir"),
        ("datadir", "data_dir"),
        ("protocl", "protocol"),
        ("skip_invalids", "skip_invalid"),
        ("judge_ulr", "judge_url"),
        ("rouge_stemming", "rouge_stem"),
    ],
)
def test_a_misspelt_key_fails_with_the_known_keys(key: str, suggestion: str) -> None:
    with pytest.raises(MetadataError) as error:
        check_metadata({key: "x"})
    message = str(error.value)
    assert f"unknown --metadata key {key!r} (did you mean {suggestion!r}?)" in message
    assert all(name in message for name in KEYS), "every known key is listed"


def test_lm_evals_own_keys_and_model_args_pass() -> None:
    assert check_metadata({**LM_EVAL_KEYS, "data_dir": "/data", "bertscore_layer": 9}) == {
        "data_dir": "/data",
        "bertscore_layer": 9,
    }


def test_values_are_typed() -> None:
    with pytest.raises(MetadataError, match="'judge_top_logprobs' must be of type int"):
        check_metadata({"judge_top_logprobs": True})


def test_load_dataset_refuses_a_misspelt_key(demo_data_dir: Path) -> None:
    with pytest.raises(MetadataError, match=r"'data_dri' \(did you mean 'data_dir'\?\)\. Known keys: data: data_dir"):
        load_dataset(benchmark="medinjection", task="mcq", data_dir=str(demo_data_dir), data_dri="/data")
    with pytest.raises(MetadataError, match="'bertscore_modle'"):
        load_dataset(benchmark="medinjection", task="oeq", data_dir=str(demo_data_dir), bertscore_modle="x")
    dataset = load_dataset(
        benchmark="medinjection", task="mcq", provenances=["native"], data_dir=str(demo_data_dir), **LM_EVAL_KEYS
    )
    assert len(dataset["test"]) > 0


def test_oeq_settings_and_the_judge_refuse_a_misspelt_key() -> None:
    with pytest.raises(MetadataError, match=r"'bertscore_modle' \(did you mean 'bertscore_model'\?\)"):
        OEQSettings.from_metadata({"bertscore_modle": "x"})
    from lm_eval_medinj.judge.harness import HarnessJudge

    with pytest.raises(MetadataError, match=r"'judge_modle' \(did you mean 'judge_model'\?\)"):
        HarnessJudge.from_metadata({"judge_url": "http://localhost:1/v1", "judge_modle": "tiny"})


def test_a_misspelt_key_stops_the_task_before_any_model_runs(tmp_path: Path) -> None:
    from lm_eval.tasks import TaskManager

    from lm_eval_medinj.paths import tasks_path
    from tests.oeq.conftest import OEQ_FIXTURE_DIR

    metadata = {"data_dir": str(OEQ_FIXTURE_DIR), "bertscore_modle": "x", "pretrained": "m"}
    manager = TaskManager(include_path=str(tasks_path()), include_defaults=False, metadata=metadata)
    with pytest.raises(MetadataError, match="'bertscore_modle'.*Known keys"):
        manager.load(["medinj_oeq_native"])


def test_the_open_question_metrics_do_not_import_the_judge() -> None:
    assert family_scorers({"data_dir": "/data", "bertscore_layer": 9}) == []
    code = (
        "import sys; import lm_eval_medinj.oeq.task; "
        "judge = sorted(m for m in sys.modules if m.startswith('lm_eval_medinj.judge')); "
        "assert not judge, judge"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_schema_defaults_are_the_judge_packages() -> None:
    """The in-harness judge reads its defaults from the schema; they must be the scripts' defaults."""
    from lm_eval_medinj.judge.backends import DEFAULT_JUDGE
    from lm_eval_medinj.judge.prompt import DEFAULT_PROMPT
    from lm_eval_medinj.metadata import KEYS, family_settings

    assert KEYS["judge_prompt"].default == DEFAULT_PROMPT
    assert KEYS["judge_model"].default == DEFAULT_JUDGE.removeprefix("hf:")
    settings = family_settings({"judge_url": "http://x/v1", "judge_api": "completions"}, "judge")
    chosen = (settings["judge_url"], settings["judge_api"], settings["judge_concurrency"])
    assert chosen == ("http://x/v1", "completions", 8)
