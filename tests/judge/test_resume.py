"""Kill ``judge/score.py`` with SIGKILL mid-run, re-run it: nothing lost, nothing scored twice."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.judge.cli import cli_env, run_script, script_argv
from tests.judge.samples import write_oeq_samples

N_ITEMS = 200


def _rows(cache: Path) -> dict[str, float]:
    if not cache.exists():
        return {}
    with sqlite3.connect(cache) as db:
        try:
            return dict(db.execute("SELECT key, scored_at FROM judgements"))
        except sqlite3.OperationalError:  # the table is not created yet
            return {}


@pytest.mark.slow
def test_sigkill_then_rerun_scores_only_the_rest(tmp_path: Path, tiny_model_dir: Path) -> None:
    rows = [
        (
            f"Question {i} : quel traitement pour l'hypertension ?",
            "Un diurétique thiazidique ou un IEC.",
            f"Réponse {i} : " + "les diurétiques thiazidiques et les IEC sont indiqués " * 6,
        )
        for i in range(N_ITEMS)
    ]
    samples = write_oeq_samples(tmp_path / "run" / "samples_medinj_oeq_native_2026-11-22T00-00-00.0.jsonl", rows)
    cache = tmp_path / "cache.sqlite"
    args = (
        samples,
        "--judge",
        f"hf:{tiny_model_dir}",
        "--cache",
        cache,
        "--batch-size",
        "1",
        "--no-progress",
    )

    process = subprocess.Popen(
        script_argv("score.py", *args), env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 180
    try:
        while not _rows(cache):
            assert process.poll() is None, "score.py ended before committing a row"
            assert time.monotonic() < deadline, "no row committed within 180 s"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    before = _rows(cache)
    assert 1 <= len(before) < N_ITEMS, f"the kill came too late: {len(before)} rows"

    done = run_script("score.py", *args)
    assert done.returncode == 0, done.stderr
    aggregate = json.loads(done.stdout.strip().splitlines()[-1])
    assert (aggregate["cached"], aggregate["scored"], aggregate["n"]) == (
        len(before),
        N_ITEMS - len(before),
        N_ITEMS,
    )
    after = _rows(cache)
    assert len(after) == N_ITEMS
    assert {key: after[key] for key in before} == before  # first-run rows untouched, none re-scored
    per_item = (
        (
            samples.parent / f"judge_hf-{str(tiny_model_dir).strip('/').replace('/', '-')}_"
            f"{samples.stem.removeprefix('samples_')}.jsonl"
        )
        .read_text()
        .splitlines()
    )
    assert len(per_item) == N_ITEMS
