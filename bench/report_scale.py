"""``medinj report`` at the study's scale: wall time and peak memory, before and after, in one run.

    python bench/report_scale.py --out bench/report_scale.json             # 8 models x 30,000 questions per task
    python bench/report_scale.py --models 2 --questions 2000 --out /tmp/small.json   # a quick look

Builds synthetic, well-formed lm-eval runs: one ``--output_path`` folder per model holding a
``results_*.json`` and a ``samples_*.jsonl`` for each leaf of the ``medinj_mcq`` suite (MCQU and
MCQ, choice scoring). Every samples line is a real one (``bench/report_scale_template/``, copied
from a tiny-model ``medinj eval --tasks medinj_mcq --apply_chat_template --log_samples`` run) with
the question lengthened so that an MCQ line weighs about 24 KB, as on the real data: its 31
candidate prompts (``arguments``, ``resps``) are most of it. Per question: a new id, provenance
(3 values) and origin (6 values); per model: EM and Hamming drawn around the model's accuracy, on
questions of shared difficulty.

Then times ``python -m lm_eval_medinj.cli report`` as a whole process (wall time; peak resident
memory from ``os.wait4``) with the package of ``--before`` (a git commit, extracted with
``git archive``) and with this checkout, on the same runs, one after the other, and checks that
the two ``report.json`` hold the same figures. Writes every figure to ``--out``. The machine
these figures come from is shared: each run records the load average when it started, and the
CPU seconds (user + system) it used, which depend less on the other work than the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = Path(__file__).with_name("report_scale_template")
BEFORE = "52b197e"  # the last commit before the report was made to scale (streamed samples, shared draws)
SUITE = "medinj_mcq"
LEAVES = {"mcqu": "medinj_mcqu_all", "mcq": "medinj_mcq_all"}
DATE = "2026-01-01T00-00-00.000000"
PROVENANCES = ("native", "translated", "synthetic")
ORIGINS = ("FrenchMedMCQA", "MediQAl", "MedQA", "MedMCQA", "HeadQA", "Synthetic")
MCQ_LINE_BYTES = 24_000


def _template(fmt: str) -> dict[str, Any]:
    return json.loads((TEMPLATE / f"samples_{LEAVES[fmt]}.jsonl").read_text(encoding="utf-8"))


PADDING = " Le patient présente une douleur thoracique depuis deux heures, irradiant au bras gauche."


def _extra_chars(sample: dict[str, Any], target_bytes: int) -> int:
    """How many characters added to the question (it recurs in every prompt) bring the line to ``target_bytes``."""
    text = json.dumps(sample, ensure_ascii=False)
    return max(0, (target_bytes - len(text.encode())) // text.count(sample["doc"]["question"]))


def _lengthened(sample: dict[str, Any], extra_chars: int) -> dict[str, Any]:
    """The sample with its question, in the document and in every prompt, ``extra_chars`` characters longer."""
    question = sample["doc"]["question"]
    longer = question.rstrip("?").rstrip() + (PADDING * (1 + extra_chars // len(PADDING)))[:extra_chars] + " ?"
    return json.loads(json.dumps(sample, ensure_ascii=False).replace(question, longer))


def _line_parts(sample: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The document, and the serialised fields between the document and the metrics (the bulky part)."""
    bulky = {key: value for key, value in sample.items() if key not in ("doc_id", "doc", "em", "hamming")}
    middle = json.dumps(bulky, ensure_ascii=False)
    return sample["doc"], ", " + middle[1:-1]


def build_runs(root: Path, n_models: int, n_questions: int, seed: int = 0) -> list[Path]:
    """``n_models`` lm-eval output folders below ``root`` with ``n_questions`` questions per leaf."""
    rng = np.random.default_rng(seed)
    results = json.loads((TEMPLATE / "results.json").read_text(encoding="utf-8"))
    results["group_subtasks"] = {SUITE: [LEAVES["mcqu"], LEAVES["mcq"]]}
    difficulty = {fmt: rng.random(n_questions) for fmt in LEAVES}
    provenance = {fmt: rng.integers(0, len(PROVENANCES), n_questions) for fmt in LEAVES}
    origin = {fmt: rng.integers(0, len(ORIGINS), n_questions) for fmt in LEAVES}
    extra = _extra_chars(_template("mcq"), MCQ_LINE_BYTES)  # the same question length in both formats
    parts = {fmt: _line_parts(_lengthened(_template(fmt), extra)) for fmt in LEAVES}
    folders = []
    for m in range(n_models):
        folder = root / f"M{m}" / "model"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"results_{DATE}.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
        accuracy = 0.35 + 0.05 * m / max(1, n_models - 1)
        for fmt, leaf in LEAVES.items():
            doc, middle = parts[fmt]
            correct = difficulty[fmt] < accuracy + 0.1 * rng.standard_normal(n_questions)
            partial = rng.integers(0, 5, n_questions) / 5
            with (folder / f"samples_{leaf}_{DATE}.jsonl").open("w", encoding="utf-8") as out:
                for i in range(n_questions):
                    doc["id"] = f"bench-{fmt}-{i:06d}"
                    doc["provenance"] = PROVENANCES[provenance[fmt][i]]
                    doc["origin"] = ORIGINS[origin[fmt][i]]
                    metrics = f', "em": {float(correct[i])}'
                    if fmt == "mcq":
                        metrics += f', "hamming": {1.0 if correct[i] else float(partial[i])}'
                    head = f'{{"doc_id": {i}, "doc": {json.dumps(doc, ensure_ascii=False)}'
                    out.write(head + middle + metrics + "}\n")
        folders.append(root / f"M{m}")
    return folders


def package_at(ref: str, into: Path) -> Path:
    """The ``lm_eval_medinj`` package of git commit ``ref``, extracted below ``into`` (put it on PYTHONPATH)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", ref, "lm_eval_medinj"], capture_output=True, check=True
    ).stdout
    into.mkdir(parents=True, exist_ok=True)
    archive_path = into / "package.tar"
    archive_path.write_bytes(archive)
    with tarfile.open(archive_path) as tar:
        tar.extractall(into, filter="data")
    archive_path.unlink()
    return into


def time_report(pythonpath: Path, runs: list[Path], out: Path, resamples: int) -> dict[str, Any]:
    """Run ``medinj report`` over ``runs`` with the package found on ``pythonpath``: wall seconds, peak RSS."""
    command = [sys.executable, "-m", "lm_eval_medinj.cli", "report", *(f"--model={p.name}={p}" for p in runs)]
    command += ["--baseline", runs[0].name, "--bootstrap", str(resamples), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "HF_HUB_OFFLINE": "1"}
    load = os.getloadavg()[0]  # the machine is shared: how busy it was when this run started
    start = time.perf_counter()
    # cwd: ``python -m`` puts the working directory ahead of PYTHONPATH
    process = subprocess.Popen(command, cwd=pythonpath, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    stderr = process.stderr.read().decode() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"medinj report failed ({pythonpath}):\n{stderr[-3000:]}")
    return {
        "wall_s": round(wall, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "load_average_before": round(load, 1),
    }


def figures(report: dict[str, Any]) -> dict[str, float]:
    """Every number of a report's suites and comparisons, by its path in the JSON."""
    flat: dict[str, float] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{path}/{index}")
        elif isinstance(node, int | float) and not isinstance(node, bool):
            flat[path] = float(node)

    walk({"suites": report["suites"], "comparisons": report["comparisons"]}, "")
    return flat


def compare(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """How the figures of two reports differ: those missing, the exactly equal, the largest relative gap."""
    old, new = figures(before), figures(after)
    shared = sorted(set(old) & set(new))
    gaps = [abs(old[k] - new[k]) / max(abs(old[k]), 1e-300) for k in shared if old[k] != new[k]]
    return {
        "figures": len(shared),
        "only_before": sorted(set(old) - set(new))[:10],
        "exactly_equal": len(shared) - len(gaps),
        "max_relative_difference": max(gaps, default=0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--questions", type=int, default=30_000, help="questions per task (MCQU, MCQ)")
    parser.add_argument("--bootstrap", type=int, default=10_000, help="resamples (medinj report's default)")
    parser.add_argument("--before", default=BEFORE, help=f"git commit to compare with (default {BEFORE})")
    parser.add_argument("--no-before", action="store_true", help="time this checkout only")
    parser.add_argument("--work", type=Path, help="folder for the runs and reports (default: a temporary one)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="report_scale_"))
    try:
        start = time.perf_counter()
        runs = build_runs(work / "runs", args.models, args.questions)
        build_s = time.perf_counter() - start
        sizes = [p.stat().st_size for run in runs for p in run.rglob("samples_*.jsonl")]
        lines = {fmt: (runs[0] / "model" / f"samples_{leaf}_{DATE}.jsonl") for fmt, leaf in LEAVES.items()}
        line_bytes = {fmt: path.open("rb").readline().__len__() for fmt, path in lines.items()}
        result: dict[str, Any] = {
            "command": " ".join(sys.argv),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__},
            "models": args.models,
            "questions_per_task": args.questions,
            "resamples": args.bootstrap,
            "samples_bytes": sum(sizes),
            "line_bytes": line_bytes,
            "build_s": round(build_s, 1),
        }
        timings = {}
        if not args.no_before:
            tree = package_at(args.before, work / "before")
            timings["before"] = time_report(tree, runs, work / "report_before", args.bootstrap)
            print("before", timings["before"], flush=True)
        timings["after"] = time_report(REPO, runs, work / "report_after", args.bootstrap)
        print("after", timings["after"], flush=True)
        result["timings"] = timings
        if "before" in timings:
            result["before_commit"] = args.before
            result["speedup"] = round(timings["before"]["wall_s"] / timings["after"]["wall_s"], 1)
            result["memory_ratio"] = round(timings["before"]["peak_rss_mb"] / timings["after"]["peak_rss_mb"], 1)
            before, after = (json.loads((work / f"report_{name}" / "report.json").read_text()) for name in timings)
            result["figures"] = compare(before, after)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(json.dumps(result, indent=2))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
