"""The judge against a real loopback server that fails the way busy or misconfigured servers do.

Every fault is injected for real by ``tests.judge.openai_server.Faults`` (HTTP 500, 429 with
Retry-After, a closed connection, a stalled answer, HTML, JSON without ``choices`` or ``logprobs``,
NaN or -Infinity log-probabilities), and a SIGKILL of ``judge/score.py`` halfway. The probabilities stored are
checked against the local transformers judge on the same tiny model.
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lm_eval_medinj.judge.backends import OpenAIJudge, TransformersJudge
from lm_eval_medinj.judge.cache import JudgementCache
from lm_eval_medinj.judge.failures import JudgeResponseError
from lm_eval_medinj.judge.items import JudgeItem, read_items
from lm_eval_medinj.judge.prompt import load_prompt
from lm_eval_medinj.judge.scoring import output_paths, score_items
from tests.judge.cli import REPO_ROOT, cli_env, run_script, script_argv
from tests.judge.openai_server import Faults, serve_model
from tests.judge.samples import write_oeq_samples

POISON = "POISON"  # a candidate holding this word can be made to fail on every attempt


def _rows(n: int, poisoned: int | None = None) -> list[tuple[str, str, str]]:
    return [
        (
            f"Question {i} : quel traitement pour l'hypertension ?",
            "Un diurétique thiazidique ou un IEC.",
            f"Réponse {i} : un IEC" + (f" {POISON}" if i == poisoned else ""),
        )
        for i in range(n)
    ]


def _samples(folder: Path, n: int, poisoned: int | None = None) -> Path:
    path = folder / "samples_medinj_oeq_native_2026-11-22T00-00-00.0.jsonl"
    return write_oeq_samples(path, _rows(n, poisoned))


def _score_args(samples: Path, url: str, cache: Path, *extra: str | Path) -> tuple[str | Path, ...]:
    # top-k = the whole vocabulary of the tiny model: P(equivalent) exact, comparable with the local judge
    judge = f"openai:tiny@{url}"
    return (samples, "--judge", judge, "--cache", cache, "--top-logprobs", "512", "--no-progress", *extra)


def _stored(cache: Path) -> dict[str, float]:
    if not cache.exists():
        return {}
    with sqlite3.connect(cache) as db:
        try:
            return dict(db.execute("SELECT key, p_equivalent FROM judgements"))
        except sqlite3.OperationalError:  # the table is not created yet
            return {}


def _local_p(model_dir: Path, items: list[JudgeItem]) -> np.ndarray:
    return np.array(TransformersJudge(str(model_dir)).p_equivalent(items, load_prompt()))


def _per_item(samples: Path, output_dir: Path | None = None) -> list[dict]:
    path, _ = output_paths(samples, "openai:tiny", output_dir)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.slow
def test_a_server_failing_one_request_in_three_gets_every_item_stored_in_one_run(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    samples, cache = _samples(tmp_path / "run", 40), tmp_path / "cache.sqlite"
    faults = Faults("500", every=3)
    with serve_model(tiny_model_dir, faults=faults) as url:
        done = run_script("score.py", *_score_args(samples, url, cache))
    assert done.returncode == 0, done.stderr
    spoiled = sum(1 for _, kind in faults.log if kind)
    assert spoiled >= 13 and len(faults.log) == 40 + spoiled  # each HTTP 500 was sent again, once
    assert "HTTP 500 Internal Server Error" in done.stderr and "retry 1 of 5" in done.stderr
    aggregate = json.loads(done.stdout.strip().splitlines()[-1])
    assert (aggregate["n"], aggregate["scored"], aggregate["cached"]) == (40, 40, 0)
    assert len(_stored(cache)) == 40
    items = read_items(samples)
    p = np.array([row["p_equivalent"] for row in _per_item(samples)])
    np.testing.assert_allclose(p, _local_p(tiny_model_dir, items), atol=1e-4)


def test_http_429_waits_at_least_its_retry_after(tmp_path: Path, tiny_model_dir: Path) -> None:
    items = read_items(_samples(tmp_path, 3))
    faults = Faults("429", every=2, retry_after_s=1)
    with serve_model(tiny_model_dir, faults=faults) as url:
        # a backoff of at most 10 ms: any longer wait is the server's Retry-After
        judge = OpenAIJudge("tiny", url, top_logprobs=512, concurrency=1, backoff_s=0.01)
        run = score_items(items, judge, load_prompt(), JudgementCache(tmp_path / "c.sqlite"), progress=False)
    np.testing.assert_allclose(run.p, _local_p(tiny_model_dir, items), atol=1e-4)
    log = faults.log
    waits = [log[i + 1][0] - log[i][0] for i in range(len(log) - 1) if log[i][1] == "429"]
    assert len(waits) == 3 and min(waits) >= 0.99, waits


@pytest.mark.parametrize(
    ("kind", "timeout"),
    [("500", 30.0), ("close", 30.0), ("stall", 0.5)],
    ids=["http-500", "connection-closed", "answer-after-the-timeout"],
)
def test_transient_faults_are_retried_until_every_item_is_judged(
    tmp_path: Path, tiny_model_dir: Path, kind: str, timeout: float
) -> None:
    items = read_items(_samples(tmp_path, 4))
    faults = Faults(kind, every=2, stall_s=2.0)
    with serve_model(tiny_model_dir, faults=faults) as url:
        judge = OpenAIJudge("tiny", url, top_logprobs=512, concurrency=2, timeout=timeout, backoff_s=0.05)
        run = score_items(items, judge, load_prompt(), JudgementCache(tmp_path / "c.sqlite"), progress=False)
    assert (run.scored, run.failures) == (4, ())
    assert sum(1 for _, spoiled in faults.log if spoiled == kind) >= 2
    np.testing.assert_allclose(run.p, _local_p(tiny_model_dir, items), atol=1e-4)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("html", r"the response is not JSON \(text/html; charset=utf-8: '<html>"),
        ("no_choices", r"the response has no 'choices'"),
        ("no_logprobs", r"the response has no 'logprobs' \(the server must return log-probabilities"),
        ("nan_logprobs", r"a top log-probability is not a number \(\{'.*': nan"),
        ("-inf_logprobs", r"the verdict probability is nan, not a number in \[0, 1\] \(top log-probabilities: \{"),
    ],
)
def test_an_answer_that_is_not_a_judgement_stops_the_run_naming_judge_and_item(
    tmp_path: Path, tiny_model_dir: Path, kind: str, message: str
) -> None:
    samples = _samples(tmp_path, 3)
    items = read_items(samples)
    names = [f"{samples}#{i} (record {item.id!r})" for i, item in enumerate(items)]
    cache = JudgementCache(tmp_path / "c.sqlite")
    with serve_model(tiny_model_dir, faults=Faults(kind)) as url:
        judge = OpenAIJudge("tiny", url, top_logprobs=512, concurrency=1)
        with pytest.raises(JudgeResponseError) as stopped:
            score_items(items, judge, load_prompt(), cache, progress=False, names=names)
    line = str(stopped.value)
    assert "\n" not in line and line.startswith(f"{names[0]}: judge openai:tiny: ")
    assert re.search(message, line), line
    assert cache.count() == 0  # nothing wrong stored
    with sqlite3.connect(tmp_path / "c.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM claims").fetchone() == (0,)  # and nothing left claimed


def test_score_py_against_an_html_server_exits_with_one_line_and_stores_nothing(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    samples, cache = _samples(tmp_path / "run", 5), tmp_path / "cache.sqlite"
    with serve_model(tiny_model_dir, faults=Faults("html")) as url:
        done = run_script("score.py", *_score_args(samples, url, cache))
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"score.py: error: {samples}#") and "(record 'oeq-" in line
    assert "judge openai:tiny: the response is not JSON (text/html" in line
    assert _stored(cache) == {} and not list(samples.parent.glob("judge_*"))


@pytest.mark.slow
def test_an_item_failing_through_every_retry_is_listed_the_rest_stored_and_a_rerun_completes(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    samples, cache = _samples(tmp_path / "run", 6, poisoned=3), tmp_path / "cache.sqlite"
    faults = Faults("500", match=POISON)
    with serve_model(tiny_model_dir, faults=faults) as url:
        failed = run_script("score.py", *_score_args(samples, url, cache, "--max-retries", "2"))
    assert failed.returncode == 2
    assert sum(1 for _, kind in faults.log if kind) == 3  # the poisoned item: 1 attempt + 2 retries
    lines = failed.stderr.strip().splitlines()
    assert "Traceback" not in failed.stderr
    assert f"score.py: not judged: {samples}#3 (record 'oeq-3'): judge openai:tiny: HTTP 500" in failed.stderr
    assert "(3 attempts)" in failed.stderr
    assert f"score.py: {samples}: 1 item(s) not judged: outputs not written" in lines
    assert lines[-1].startswith("score.py: error: 1 item(s) not judged; what was judged is stored in the cache")
    assert len(_stored(cache)) == 5 and not list(samples.parent.glob("judge_*"))

    with serve_model(tiny_model_dir) as url:  # the server recovered: only the missing item is judged
        done = run_script("score.py", *_score_args(samples, url, cache))
    assert done.returncode == 0, done.stderr
    aggregate = json.loads(done.stdout.strip().splitlines()[-1])
    assert (aggregate["n"], aggregate["cached"], aggregate["scored"]) == (6, 5, 1)
    assert len(_per_item(samples)) == 6


@pytest.mark.slow
def test_sigkill_halfway_then_rerun_equals_an_uninterrupted_run(tmp_path: Path, tiny_model_dir: Path) -> None:
    n = 60
    samples, cache = _samples(tmp_path / "run", n), tmp_path / "cache.sqlite"
    with serve_model(tiny_model_dir, faults=Faults(delay_s=0.05)) as url:
        args = _score_args(samples, url, cache, "--concurrency", "2")
        process = subprocess.Popen(
            script_argv("score.py", *args), env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        try:
            while len(_stored(cache)) < n // 3:
                assert process.poll() is None, "score.py ended before a third was judged"
                assert time.monotonic() < deadline, "a third not judged within 120 s"
                time.sleep(0.01)
            process.send_signal(signal.SIGKILL)
        finally:
            process.kill()
            process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL
        before = _stored(cache)
        assert n // 3 <= len(before) < n, f"the kill came too late: {len(before)} stored"

        resumed = run_script("score.py", *args)
        reference_dir = tmp_path / "uninterrupted"
        uninterrupted = run_script(
            "score.py", *_score_args(samples, url, tmp_path / "other.sqlite", "--output-dir", reference_dir)
        )
    assert resumed.returncode == 0 and uninterrupted.returncode == 0, resumed.stderr + uninterrupted.stderr
    aggregate = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert (aggregate["cached"], aggregate["scored"]) == (len(before), n - len(before))  # only the rest
    after = _stored(cache)
    assert {key: after[key] for key in before} == before
    assert _per_item(samples) == _per_item(samples, reference_dir)
    assert (
        json.loads(uninterrupted.stdout.strip().splitlines()[-1])["mean_p_equivalent"]
        == (aggregate["mean_p_equivalent"])
    )


@pytest.mark.slow
def test_hf_judge_splits_a_batch_that_runs_out_of_memory_and_names_the_item_that_fails_alone(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    """A real allocation failure: the judge runs in a process whose address space is capped."""
    moderate = [(f"Question {i} : " + "quel traitement ? " * 300, "Un IEC.", f"Réponse {i}.") for i in range(6)]
    huge = ("Question : " + "quel traitement ? " * 6000, "Un IEC.", "Réponse.")  # alone over the cap
    rows = [*moderate[:5], huge, moderate[5]]
    items_path = tmp_path / "items.jsonl"
    items_path.write_text(
        "".join(
            json.dumps({"id": f"r{i}", "question": q, "reference": r, "candidate": c}) + "\n"
            for i, (q, r, c) in enumerate(rows)
        ),
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "tests.judge.memory_limited_judge", str(tiny_model_dir), str(items_path), "100"],
        cwd=REPO_ROOT, env=cli_env(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    outcomes = {row["index"]: row for row in map(json.loads, done.stdout.splitlines())}
    assert sorted(outcomes) == list(range(7))
    assert "out of memory on a batch of 7; splitting it in two" in done.stderr
    assert (
        outcomes[5]["error"].startswith("ItemNotJudged: judge hf:")
        and "out of memory on this item alone" in (outcomes[5]["error"])
    )
    items = read_items(items_path)
    judged = [i for i in range(7) if i != 5]
    local = TransformersJudge(str(tiny_model_dir)).p_equivalent([items[i] for i in judged], load_prompt())
    np.testing.assert_allclose([outcomes[i]["p"] for i in judged], local, atol=1e-4)


def test_the_in_harness_judge_has_the_same_client(tmp_path: Path, tiny_model_dir: Path) -> None:
    """``--metadata judge_timeout / judge_max_retries`` reach the retrying client; a malformed answer
    stops the aggregation naming the sample; the defaults are the scripts'."""
    import argparse

    from lm_eval_medinj.judge.cli_args import add_judge_args
    from lm_eval_medinj.judge.harness import HarnessJudge
    from lm_eval_medinj.judge.http import RetryPolicy
    from lm_eval_medinj.metadata import KEYS

    parser = argparse.ArgumentParser()
    add_judge_args(parser)
    cli = parser.parse_args([])
    assert KEYS["judge_timeout"].default == cli.timeout == RetryPolicy().timeout_s
    assert KEYS["judge_max_retries"].default == cli.max_retries == RetryPolicy().max_retries

    triples = [(q, r, a) for q, r, a in _rows(3)]
    metadata = {"judge_model": "tiny", "judge_top_logprobs": 512, "judge_timeout": "7.5", "judge_max_retries": 9}
    with serve_model(tiny_model_dir, faults=Faults("500", every=2)) as url:
        judge = HarnessJudge.from_metadata({**metadata, "judge_url": url})
        assert judge is not None and judge.backend.poster.policy == RetryPolicy(max_retries=9, timeout_s=7.5)
        mean = judge.aggregate(triples, "judge_p_equivalent")
    items = [JudgeItem(str(i), *triple) for i, triple in enumerate(triples)]
    assert mean == pytest.approx(_local_p(tiny_model_dir, items).mean(), abs=1e-4)
    with serve_model(tiny_model_dir, faults=Faults("no_logprobs")) as url:
        judge = HarnessJudge.from_metadata({**metadata, "judge_url": url, "judge_cache": str(tmp_path / "c.sqlite")})
        assert judge is not None
        named = r"^lm-eval sample \d \(question \"Question \d : .*\"\): judge openai:tiny: "
        with pytest.raises(JudgeResponseError, match=named):
            judge.aggregate(triples, "judge_p_equivalent")
