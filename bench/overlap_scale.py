"""`medinj overlap` at the size of MedInjection-FR: 571,436 training pairs against every test set.

    python bench/overlap_scale.py --frenchmedmcqa ../shared/data/frenchmedmcqa --out bench/overlap_scale.json

Builds (once, cached in ``--work``) synthetic data of the real corpus's size in the Hub layout, then
times the whole command in a subprocess: wall time and peak resident memory (``ru_maxrss`` of the
child). The texts recycle the real FrenchMedMCQA questions and options, perturbed:

- **native** MCQ/MCQU: one exam question and five options as FrenchMedMCQA has them; a fifth of
  them also carry a clinical case (two to five recycled questions as sentences), as MediQAl does;
- **translated**: MedQA-like vignettes (three to seven recycled questions) and five options, with
  an instruction line in the user turn (the same in every record: boilerplate);
- **synthetic**: one or two recycled questions and five options;
- **OEQ**: one to three recycled questions, the reference an option text.

Every recycled text has each word replaced, with probability ``--perturb`` (0.3), by a word drawn
from the FrenchMedMCQA vocabulary (by frequency), and its options are drawn from other
questions, so n-grams and shingles are mostly new, as between distinct real questions. The test
side is the real FrenchMedMCQA test set plus synthetic MedInjection-FR and MediQAl test sets
made the same way; 1% of the synthetic test questions are copied into the training pools
(exact, reworded and reordered copies), so the matches are exercised too. Pool and test-set
sizes are assumptions (``POOLS``, ``TESTS``): the real split by provenance and task is not in
this repository; the total is the corpus's.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

TOTAL = 571_436
# Assumed shares of the training pairs by provenance and task type (the total is the corpus's).
POOLS = {
    "native": {"mcq": 0.11, "mcqu": 0.12, "oeq": 0.07},
    "translated": {"mcq": 0.08, "mcqu": 0.17, "oeq": 0.05},
    "synthetic": {"mcq": 0.14, "mcqu": 0.18, "oeq": 0.08},
}
# Assumed test-set sizes (FrenchMedMCQA's is the real one, 622).
TESTS = {
    ("Native", "mcq"): 1_000,
    ("Native", "mcqu"): 1_000,
    ("Native", "oeq"): 500,
    ("Translated", "mcqu"): 2_000,
    ("mediqal", "mcqu"): 2_500,
    ("mediqal", "mcqm"): 2_500,
    ("mediqal", "oeq"): 1_500,
}
TEST_TASKS = (
    "medinj_mcq_native,medinj_mcqu_native,medinj_mcqu_translated,medinj_oeq_native,medinj_frenchmedmcqa,medinj_mediqal"
)
STAGES = ("training side:", "test side:", "matched (", "test questions flagged")  # the command's log lines kept
SUBSETS = {"native": "Native", "translated": "Translated", "synthetic": "Synthetic"}
LETTERS = "ABCDE"
INSTRUCTION = "Répondez à la question à choix multiples suivante en donnant la ou les lettres des bonnes réponses."
SYSTEM = "Tu es un assistant médical."


class Recycler:
    """Perturbed FrenchMedMCQA questions and options."""

    def __init__(self, frenchmedmcqa: Path, perturb: float, seed: int):
        records = [r for f in ("train", "dev", "test") for r in json.loads((frenchmedmcqa / f"{f}.json").read_text())]
        self.questions = [r["question"].strip() for r in records]
        self.options = [text.strip() for r in records for text in r["answers"].values() if text.strip()]
        words = Counter(w for text in self.questions + self.options for w in text.split())
        self.vocabulary = list(words)
        self.cumulative = list(itertools.accumulate(words.values()))
        self.perturb = perturb
        self.rng = random.Random(seed)

    def _perturbed(self, text: str) -> str:
        words = text.split()
        draws = self.rng.choices(self.vocabulary, cum_weights=self.cumulative, k=len(words))
        return " ".join(d if self.rng.random() < self.perturb else w for w, d in zip(words, draws, strict=True))

    def question(self, sentences: int = 1) -> str:
        return " ".join(self._perturbed(self.rng.choice(self.questions)) for _ in range(sentences))

    def option_texts(self, count: int = 5) -> list[str]:
        return [self._perturbed(self.rng.choice(self.options)) for _ in range(count)]


def hub_record(record_id: str, task: str, question: str, options: list[str], instruction: bool, rng) -> dict:
    """A MedInjection-FR Hub record: options as "(A) text" lines of the user turn, letters in classes."""
    user = f"{INSTRUCTION}\n\n{question}" if instruction else question
    if task == "oeq":
        answer = options[0]
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
        return {"id": record_id, "messages": messages, "answer": answer}
    lines = "\n".join(f"({letter}) {text}" for letter, text in zip(LETTERS, options, strict=True))
    gold = sorted(rng.sample(LETTERS, rng.randint(2, 3))) if task == "mcq" else [rng.choice(LETTERS)]
    answer = ", ".join(gold)
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"{user}\n{lines}"},
        {"role": "assistant", "content": answer},
    ]
    return {"id": record_id, "messages": messages, "classes": list(LETTERS), "answer": answer}


def _text(recycler: Recycler, provenance: str, task: str) -> tuple[str, list[str]]:
    rng = recycler.rng
    if task == "oeq":
        return recycler.question(rng.randint(1, 3)), recycler.option_texts(1)
    if provenance == "translated":
        return recycler.question(rng.randint(3, 7)), recycler.option_texts()
    if provenance == "native" and rng.random() < 0.2:
        return f"{recycler.question(rng.randint(2, 5))}\n{recycler.question()}", recycler.option_texts()
    return recycler.question(rng.randint(1, 2) if provenance == "synthetic" else 1), recycler.option_texts()


def _copy(question: str, options: list[str], rng: random.Random) -> tuple[str, list[str]]:
    """A copy of a test question: verbatim, re-cased and re-punctuated, or one word replaced; options shuffled."""
    words = question.split()
    style = rng.randrange(3)
    if style == 1:
        words = [w.upper() if i % 3 == 0 else w for i, w in enumerate(words)]
        words[-1] = words[-1].rstrip("?.:") + " ?"
    elif style == 2:
        words[len(words) // 2] = "remplacé"
    return " ".join(words), rng.sample(options, len(options))


def _write(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")


def build(work: Path, frenchmedmcqa: Path, total: int, perturb: float, seed: int) -> dict[str, Any]:
    """Write ``work/train`` (Hub layout, Train split) and ``work/tests`` (every test set); returns stats."""
    stamp = work / "built.json"
    if stamp.is_file() and json.loads(stamp.read_text())["train_records"] == total:
        return json.loads(stamp.read_text())
    shutil.rmtree(work, ignore_errors=True)
    recycler = Recycler(frenchmedmcqa, perturb, seed)
    rng = recycler.rng
    tests = work / "tests"
    (tests / "frenchmedmcqa").mkdir(parents=True)
    shutil.copy(frenchmedmcqa / "test.json", tests / "frenchmedmcqa" / "test.json")
    planted: list[tuple[str, list[str]]] = []
    test_counts = {}
    for (folder, task), count in TESTS.items():
        texts = []
        for _ in range(count):
            provenance = "translated" if folder == "Translated" else "native"
            question, options = _text(recycler, provenance, "oeq" if task == "oeq" else "mcq")
            texts.append((question, options))
            if task != "oeq" and rng.random() < 0.01:
                planted.append((question, options))
        if folder == "mediqal":
            records = [_mediqal_record(f"mediqal-{task}-{i}", q, o, task, rng) for i, (q, o) in enumerate(texts)]
            _write(tests / task / "test.json", records)
        else:
            records = [
                hub_record(f"test-{folder}-{task}-{i}", task, q, o, False, rng) for i, (q, o) in enumerate(texts)
            ]
            _write(tests / folder / "Test" / task / f"{task}_test.json", records)
        test_counts[f"{folder}/{task}"] = count
    words: list[int] = []
    pool_counts = {}
    shares = [(p, t, s) for p, by_task in POOLS.items() for t, s in by_task.items()]
    sizes = [round(total * s) for _, _, s in shares]
    sizes[-1] += total - sum(sizes)
    plant = iter(planted)
    for (provenance, task, _), size in zip(shares, sizes, strict=True):
        records = []
        for index in range(size):
            copy = next(plant, None) if index % 997 == 0 and task != "oeq" else None
            question, options = _copy(*copy, rng) if copy else _text(recycler, provenance, task)
            record = hub_record(
                f"{provenance}-{task}-{index:06d}", task, question, options, provenance == "translated", rng
            )
            records.append(record)
            words.append(len(question.split()) + sum(len(o.split()) for o in options if task != "oeq"))
        _write(work / "train" / SUBSETS[provenance] / "Train" / task / f"{task}_train.json", records)
        pool_counts[f"{provenance}/{task}"] = size
    cuts = statistics.quantiles(words, n=20)
    stats = {
        "train_records": sum(pool_counts.values()),
        "pools": pool_counts,
        "test_questions": {**test_counts, "frenchmedmcqa/test": 622},
        "planted_copies": len(planted),
        "words_per_training_text": {"mean": round(statistics.fmean(words), 1), "p5": cuts[0], "p50": cuts[9]}
        | {"p95": cuts[18], "max": max(words)},
        "perturb": perturb,
        "seed": seed,
        "train_bytes": sum(f.stat().st_size for f in (work / "train").rglob("*.json")),
    }
    stamp.write_text(json.dumps(stats, indent=1))
    return stats


def _mediqal_record(record_id: str, question: str, options: list[str], task: str, rng: random.Random) -> dict:
    case, _, question = question.rpartition("\n")
    record = {"id": record_id, "clinical_case": case, "question": question or case, "medical_subject": "x"}
    record["question_type"] = "Understanding"
    if task == "oeq":
        return record | {"answer": options[0]}
    gold = sorted(rng.sample("abcde", 2)) if task == "mcqm" else [rng.choice("abcde")]
    record |= {f"answer_{letter}": text for letter, text in zip("abcde", options, strict=True)}
    return record | {"correct_answers": ",".join(gold)}


def _offline_encoder(work: Path) -> dict[str, Any]:
    """The OEQ tasks check their BERTScore encoder when lm-eval builds them: a local 2-layer BERT config."""
    from transformers import BertConfig

    folder = work / "encoder"
    if not (folder / "config.json").is_file():
        BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64).save_pretrained(
            folder
        )
    return {"bertscore_model": str(folder), "bertscore_layer": 2, "bertscore_rescale": False}


def measure(work: Path, out_dir: Path) -> dict[str, Any]:
    """Run the command once in a subprocess: wall seconds and the child's peak RSS."""
    command = [
        sys.executable,
        "-c",
        "from lm_eval_medinj.overlap.cli import main; main()",
        "--train",
        str(work / "train"),
        "--tests",
        TEST_TASKS,
        "--metadata",
        json.dumps({"data_dir": str(work / "tests"), **_offline_encoder(work)}),
        "--out",
        str(out_dir),
        "--no-progress",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    completed = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        sys.exit(f"medinj overlap failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads((out_dir / "overlap.json").read_text())
    flagged_by_kind = Counter(m["kind"] for entry in result["flagged"] for m in entry["matches"][:1])
    return {
        "wall_s": round(wall, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024),
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "flagged_questions": len(result["flagged"]),
        "flagged_by_strongest_kind": dict(flagged_by_kind),
        "log": [line for line in completed.stderr.splitlines() if any(stage in line for stage in STAGES)],
        "command": shlex.join(["python"] + command[1:]),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frenchmedmcqa", type=Path, default=Path("../shared/data/frenchmedmcqa"))
    p.add_argument("--work", type=Path, default=Path("/tmp/medinj_overlap_bench"))
    p.add_argument("--total", type=int, default=TOTAL, help="training records (default: the corpus's 571,436)")
    p.add_argument("--perturb", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("bench/overlap_scale.json"))
    args = p.parse_args()
    if not (args.frenchmedmcqa / "test.json").is_file():
        sys.exit(f"FrenchMedMCQA not found at {args.frenchmedmcqa} (train.json, dev.json, test.json)")
    started = time.perf_counter()
    stats = build(args.work, args.frenchmedmcqa, args.total, args.perturb, args.seed)
    print(f"data ready in {time.perf_counter() - started:.0f} s: {stats['train_records']:,} training records")
    run = measure(args.work, args.work / "out")
    record = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "data": stats,
        "run": run,
    }
    args.out.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(run, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
