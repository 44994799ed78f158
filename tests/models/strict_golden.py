"""Outputs of the ``_gen`` and ``_greedy`` tasks as they were before the authors' protocol
became the default (commit 0ee09d5), kept to prove that ``protocol: strict`` reproduces them.

``python -m tests.models.strict_golden`` rewrote ``golden/strict_outputs.json`` at that commit;
the test compares today's strict runs with it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager

from lm_eval_medinj.paths import tasks_path

GOLDEN_FILE = Path(__file__).with_name("golden") / "strict_outputs.json"
# (model, data, task, limit, chat template): the tiny model's free answers are all empty, so
# free generation is recorded on SmolLM2.
RUNS = [
    ("tiny", "demo", "medinj_mcq_native_gen", 8, False),
    ("tiny", "demo", "medinj_mcq_native_gen", 8, True),
    ("tiny", "demo", "medinj_mcqu_native_gen", 8, True),
    ("smollm2", "frenchmedmcqa", "medinj_frenchmedmcqa_mcq_gen", 8, True),
    ("smollm2", "frenchmedmcqa", "medinj_frenchmedmcqa_mcq_greedy", 8, True),
    ("smollm2", "frenchmedmcqa", "medinj_frenchmedmcqa_mcqu_greedy", 8, True),
]
STRICT_METADATA = {"protocol": "strict", "prompt": "canonical"}


def run_key(model: str, data: str, task: str, limit: int, chat: bool) -> str:
    return f"{model}/{data}/{task}/{limit}/{'chat' if chat else 'plain'}"


def task_outputs(
    lm: Any, data_dir: Path, task: str, limit: int, chat: bool, metadata: dict[str, Any]
) -> dict[str, str]:
    """Each document's generated text, by record id."""
    manager = TaskManager(
        include_path=str(tasks_path()), include_defaults=False, metadata={"data_dir": str(data_dir), **metadata}
    )
    results = simple_evaluate(
        model=lm, tasks=[task], task_manager=manager, limit=limit, log_samples=True, apply_chat_template=chat
    )
    return {sample["doc"]["id"]: sample["resps"][0][0] for sample in results["samples"][task]}


def main(out: Path = GOLDEN_FILE) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lm_eval_medinj.demo import smollm2_gguf
    from lm_eval_medinj.models.hf import MedinjHFLM
    from lm_eval_medinj.paths import demo_data_path
    from tests.conftest import FRENCHMEDMCQA_DIR
    from tests.helpers.tiny_model import build_tiny_model

    folder, gguf_file = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    smollm2 = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32)
    models = {
        "tiny": MedinjHFLM(
            pretrained=str(build_tiny_model(Path(sys.argv[1]))), dtype="float32", batch_size=4, device="cpu"
        ),
        "smollm2": MedinjHFLM(pretrained=smollm2, tokenizer=tokenizer, batch_size=8, device="cpu"),
    }
    data = {"demo": demo_data_path(), "frenchmedmcqa": FRENCHMEDMCQA_DIR}
    golden = {
        run_key(*run): task_outputs(models[run[0]], data[run[1]], *run[2:], metadata=STRICT_METADATA) for run in RUNS
    }
    out.write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
