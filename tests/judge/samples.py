"""Write OEQ samples in the exact shape lm-eval 0.4.13 writes with ``--log_samples``.

The shape follows ``EvaluationTracker.save_results_samples`` (checked against a real
``medinj_frenchmedmcqa_mcqu_greedy`` run): ``doc`` (our canonical document), ``target``,
``arguments`` as ``gen_args_i``/``arg_j``, ``resps`` ``[[text]]``, ``filtered_resps`` ``[text]``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from lm_eval_medinj.prompts import render_prompt
from lm_eval_medinj.records import MedRecord


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_oeq_samples(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    """``rows``: (question, reference, generated answer). Returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for doc_id, (question, reference, answer) in enumerate(rows):
            record = MedRecord(f"oeq-{doc_id}", "native", "test", "oeq", question, reference=reference)
            prompt = render_prompt(record)
            sample = {
                "doc_id": doc_id,
                "doc": record.to_doc(),
                "target": reference,
                "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": {"until": ["\n\n"], "do_sample": False}}},
                "resps": [[answer]],
                "filtered_resps": [answer],
                "filter": "none",
                "metrics": ["exact_match"],
                "doc_hash": _hash(json.dumps(record.to_doc(), ensure_ascii=False)),
                "prompt_hash": _hash(prompt),
                "target_hash": _hash(reference),
                "exact_match": float(answer.strip() == reference.strip()),
            }
            handle.write(json.dumps(sample, ensure_ascii=False) + "\n")
    return path
