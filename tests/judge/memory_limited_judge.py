"""Judge items with the hf backend in a process whose address space is capped: a real out-of-memory.

    python -m tests.judge.memory_limited_judge MODEL_DIR ITEMS.jsonl EXTRA_MB

Loads the judge, then caps the address space (``RLIMIT_AS``) at what the process already uses plus
``EXTRA_MB``, and prints one JSON line per item as ``judge_each`` yields it:
``{"index": i, "p": ...}`` or ``{"index": i, "error": "ClassName: message"}``.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

import torch

from lm_eval_medinj.judge.backends import TransformersJudge
from lm_eval_medinj.judge.failures import JudgeError
from lm_eval_medinj.judge.items import JudgeItem, read_items
from lm_eval_medinj.judge.prompt import load_prompt


def address_space_bytes() -> int:
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def main(model_dir: str, items_path: str, extra_mb: str) -> None:
    torch.set_num_threads(1)
    judge = TransformersJudge(model_dir, device="cpu")
    items, prompt = read_items(Path(items_path)), load_prompt()
    judge.p_equivalent([JudgeItem("warm-up", "Q ?", "R.", "C.")], prompt)  # lazy imports, before the cap
    limit = address_space_bytes() + int(extra_mb) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    for index, judgement in judge.judge_each(items, prompt):
        row = (
            {"index": index, "error": f"{type(judgement).__name__}: {judgement}"}
            if isinstance(judgement, JudgeError)
            else {"index": index, "p": judgement}
        )
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
