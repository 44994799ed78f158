"""Two ``judge/score.py`` processes on one cache and one input: both finish, each item scored and stored once."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.judge.cli import cli_env, script_argv

N_ITEMS = 36


@pytest.mark.slow
def test_two_score_processes_share_one_cache(tmp_path: Path, tiny_model_dir: Path) -> None:
    items = tmp_path / "items.jsonl"
    with items.open("w", encoding="utf-8") as handle:
        for i in range(N_ITEMS):
            row = {
                "id": f"q{i}",
                "question": f"Question {i} : quel traitement pour l'hypertension ?",
                "reference": "Un diurétique thiazidique ou un IEC.",
                "candidate": f"Réponse {i} : les IEC.",
            }
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    cache = tmp_path / "cache.sqlite"
    processes = [
        subprocess.Popen(
            script_argv(
                "score.py",
                items,
                "--judge",
                f"hf:{tiny_model_dir}",
                "--cache",
                cache,
                "--batch-size",
                "2",
                "--no-progress",
                "--output-dir",
                tmp_path / name,
            ),
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for name in ("a", "b")
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
    aggregates = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]
    assert sum(a["scored"] for a in aggregates) == N_ITEMS  # each item scored by one process only
    assert all(a["scored"] + a["cached"] == N_ITEMS for a in aggregates)
    with sqlite3.connect(cache) as db:
        keys = [key for (key,) in db.execute("SELECT key FROM judgements")]
        assert db.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0
    assert len(keys) == len(set(keys)) == N_ITEMS
    per_item = [
        [json.loads(line) for line in next((tmp_path / name).glob("judge_*.jsonl")).read_text().splitlines()]
        for name in ("a", "b")
    ]
    assert [row["id"] for row in per_item[0]] == [row["id"] for row in per_item[1]] == [f"q{i}" for i in range(N_ITEMS)]
    assert [row["p_equivalent"] for row in per_item[0]] == [row["p_equivalent"] for row in per_item[1]]
