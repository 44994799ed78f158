"""``medinj report`` as a command on lm-eval-shaped run folders: seeds, --exclude, templates, bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from lm_eval_medinj.study.runs import StudyError, load_run
from tests.study.test_samples import lm_eval_line

REPO = Path(__file__).resolve().parents[2]
LEAVES = {"mcqu": "medinj_mcqu_all_gen", "mcq": "medinj_mcq_all_gen"}


def write_run(folder: Path, skill: int, template: str | None = "tpl-a", revision: str | None = None) -> Path:
    """An lm-eval output folder for the ``medinj_mcq_gen`` suite: 12 MCQU and 10 MCQ questions."""
    folder.mkdir(parents=True)
    results = {
        "results": {},
        "group_subtasks": {"medinj_mcq_gen": list(LEAVES.values())},
        "n-shot": {leaf: 0 for leaf in LEAVES.values()},
        "config": {"model_args": "pretrained=tiny", "model_revision": "main", "model_sha": ""},
        "chat_template": template and f"{{{{ {template} }}}}",
        "chat_template_sha": template and f"sha-{template}",
        "system_instruction_sha": None,
        "fewshot_as_multiturn": template is not None,
    }
    (folder / "results_2026-01-01T00-00-00.0.json").write_text(json.dumps(results), encoding="utf-8")
    for fmt, leaf in LEAVES.items():
        lines = []
        for i in range(12 if fmt == "mcqu" else 10):
            doc = {"id": f"{fmt}-{i}", "task": fmt, "provenance": ("native", "translated")[i % 2], "origin": "MedQA",
                   "cluster": "", "protocol": "paper", "prompt_source": "conversation"}  # fmt: skip
            if revision is not None:
                doc["data_revision"] = revision
            em = float((i * 7 + skill) % 10 < 3 + skill)
            lines.append(lm_eval_line(doc, "prompt " * 50, {"em": em, "hamming": em} if fmt == "mcq" else {"em": em}))
        (folder / f"samples_{leaf}_2026-01-01T00-00-00.0.jsonl").write_bytes(b"".join(lines))
    return folder


def report(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "lm_eval_medinj.cli", "report", *map(str, args)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_seeds_and_clean_subset_from_the_command(tmp_path: Path) -> None:
    base = write_run(tmp_path / "base", 0)
    seeds = [write_run(tmp_path / f"nat_s{s}", s) for s in (1, 2, 3)]
    overlap = tmp_path / "overlap.json"
    flagged = [
        {"task": "medinj_mcqu_all", "id": f"mcqu-{i}", "matches": [{"id": "t1", "kind": "near"}]} for i in (0, 4)
    ]
    overlap.write_text(json.dumps({"settings": {}, "flagged": flagged}), encoding="utf-8")
    out = tmp_path / "report"
    models = [f"--model=base={base}", *(f"--model=NAT={seed}" for seed in seeds)]
    done = report(*models, "--baseline", "base", "--bootstrap", "300", "--exclude", overlap, "--out", out)
    assert done.returncode == 0, done.stderr[-2000:]
    text = (out / "report.md").read_text(encoding="utf-8")
    for heading in ("## Runs", "## Clean subset", "### medinj_mcq_gen (gen): 2 flagged, 20 clean", "3 seeds, sd"):
        assert heading in text, heading
    assert "McNemar n/a: a model with several seeds" in text
    csv = (out / "table1.csv").read_text(encoding="utf-8").splitlines()
    assert csv[0] == "model,suite,mode,metric,estimate,low,high,n,seeds,seed_sd"
    assert any(row.startswith("NAT,medinj_mcq_gen,gen,em_full_minus_clean,") for row in csv)
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [run["folder"] for run in data["models"]["NAT"]["runs"]] == [str(seed) for seed in seeds]


def test_two_model_families_are_compared_and_a_missing_template_is_refused(tmp_path: Path) -> None:
    qwen, llama = write_run(tmp_path / "qwen", 0, "qwen"), write_run(tmp_path / "llama", 1, "llama")
    done = report(f"--model=qwen={qwen}", f"--model=llama={llama}", "--baseline", "qwen", "--bootstrap", "100",
                  "--out", tmp_path / "families")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    text = (tmp_path / "families" / "report.md").read_text(encoding="utf-8")
    assert "`sha-qwen`" in text and "`sha-llama`" in text and "Compared despite" not in text
    plain = write_run(tmp_path / "plain", 1, template=None)
    refused = report(f"--model=qwen={qwen}", f"--model=plain={plain}", "--baseline", "qwen", "--out", tmp_path / "x")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "different chat_template_applied: {'qwen': True, 'plain': False}" in refused.stderr


def test_another_data_revision_is_refused_naming_both(tmp_path: Path) -> None:
    old, new = write_run(tmp_path / "old", 0, revision="3f2a91c"), write_run(tmp_path / "new", 1, revision="77be0d4")
    refused = report(f"--model=base={old}", f"--model=NAT={new}", "--baseline", "base", "--out", tmp_path / "x")
    assert refused.returncode == 2 and "base read 3f2a91c; NAT read 77be0d4" in refused.stderr
    allowed = report(f"--model=base={old}", f"--model=NAT={new}", "--baseline", "base", "--bootstrap", "100",
                     "--allow-mismatch", "--out", tmp_path / "y")  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    assert "| NAT | " in (tmp_path / "y" / "report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("overlap.json", '{"flagged": [{"task": "t"}]}', "flagged[0].id: Field required"),
        ("overlap.json", "{not json", "invalid JSON"),
        ("missing.json", None, "cannot be read"),
    ],
)
def test_a_bad_overlap_file_is_one_line(tmp_path: Path, name: str, content: str | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    run = write_run(tmp_path / "base", 0)
    done = report(f"--model=base={run}", "--baseline", "base", "--exclude", path, "--out", tmp_path / "x")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert message in lines[0] and str(path) in lines[0]


def test_a_broken_samples_line_is_one_line(tmp_path: Path) -> None:
    run = write_run(tmp_path / "base", 0)
    (path,) = run.glob("samples_medinj_mcq_all_gen_*.jsonl")
    lines = path.read_bytes().splitlines(keepends=True)
    lines[4] = lines[4][: len(lines[4]) // 2] + b"\n"  # a writer killed mid-line
    path.write_bytes(b"".join(lines))
    done = report(f"--model=base={run}", "--baseline", "base", "--out", tmp_path / "x")
    (line,) = done.stderr.strip().splitlines()
    assert done.returncode == 2 and f"{path}:5: invalid JSON" in line


def test_a_broken_results_file_or_a_question_given_twice_is_one_line(tmp_path: Path) -> None:
    run = write_run(tmp_path / "base", 0)
    (results,) = run.glob("results_*.json")
    results.write_text('{"results": ', encoding="utf-8")
    done = report(f"--model=base={run}", "--baseline", "base", "--out", tmp_path / "x")
    (line,) = done.stderr.strip().splitlines()
    assert done.returncode == 2 and f"{results}:1: invalid JSON" in line
    again = write_run(tmp_path / "again", 0)
    (samples,) = again.glob("samples_medinj_mcqu_all_gen_*.jsonl")
    first = samples.read_bytes().splitlines(keepends=True)[0]
    samples.write_bytes(samples.read_bytes() + first)
    done = report(f"--model=base={again}", "--baseline", "base", "--out", tmp_path / "y")
    (line,) = done.stderr.strip().splitlines()
    assert done.returncode == 2 and f"{samples}:13: question medinj_mcqu_all_gen/mcqu-0 already at {samples}:1" in line


def _results_field(run: Path, key: str, value: object) -> None:
    (results,) = run.glob("results_*.json")
    data = json.loads(results.read_text(encoding="utf-8"))
    data[key] = value
    results.write_text(json.dumps(data), encoding="utf-8")


def _first_doc_task(run: Path, value: object) -> None:
    (samples,) = run.glob("samples_medinj_mcqu_all_gen_*.jsonl")
    lines = samples.read_bytes().splitlines(keepends=True)
    sample = json.loads(lines[0])
    sample["doc"]["task"] = value
    lines[0] = (json.dumps(sample) + "\n").encode()
    samples.write_bytes(b"".join(lines))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda run: _results_field(run, "group_subtasks", ["medinj_mcq_gen"]), "field 'group_subtasks' is list"),
        (lambda run: _results_field(run, "config", "pretrained=tiny"), "field 'config' is str"),
        (lambda run: _first_doc_task(run, "oeq"), "sample 'mcqu-0', field 'doc.task': 'oeq' is not one of"),
        (lambda run: next(run.glob("samples_medinj_mcq_all_gen_*.jsonl")).write_bytes(b""), "empty samples file"),
    ],
)
def test_a_results_or_samples_file_of_the_wrong_shape_is_refused_naming_it(
    tmp_path: Path, damage: Callable[[Path], None], message: str
) -> None:
    run = write_run(tmp_path / "base", 0)
    damage(run)
    with pytest.raises(StudyError, match=re.escape(message)) as refused:
        load_run("base", run)
    assert str(run) in str(refused.value)


def test_a_model_spec_splits_at_its_first_equals_sign_and_a_bare_folder_keeps_its_name(tmp_path: Path) -> None:
    from lm_eval_medinj.cli.report import parser

    folder = tmp_path / "lr=1e-4"
    folder.mkdir()
    common = ["--baseline", "NAT", "--out", str(tmp_path / "out")]
    args = parser("medinj report").parse_args([f"--model=NAT={folder}", f"--model={folder}", "--model=x/y", *common])
    assert args.model == [("NAT", folder), ("lr=1e-4", folder), ("y", Path("x/y"))]
    with pytest.raises(SystemExit):
        parser("medinj report").parse_args(["--model==x", *common])
