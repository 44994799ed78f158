"""``medinj eval`` registers the medinj-* backends without hiding lm-eval's own (in a fresh interpreter)."""

from __future__ import annotations

import os
import subprocess
import sys


def test_registering_the_backends_keeps_lm_evals_models() -> None:
    script = (
        "from lm_eval_medinj.lm_eval_hook import register_backends; register_backends(); "
        "from lm_eval.api.registry import get_model; print(get_model('hf').__name__, get_model('medinj-hf').__name__)"
    )
    env = {**os.environ, "MEDINJ_LM_EVAL_TASKS": "0"}  # the start-up hook off: medinj eval's own registration
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.split() == ["HFLM", "MedinjHFLM"]
