"""``overlap.json`` (every flagged test question with its matching training records) and
``overlap.md`` (flagged counts and shares: test set x training group, and by kind).

Both are written through a temporary file renamed into place: a reader never sees half a file.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

from lm_eval_medinj.files import write_json_atomic, write_text_atomic
from lm_eval_medinj.overlap.audit import KINDS, AuditResult, Match
from lm_eval_medinj.overlap.near import MINHASH_SEED, MISS_TARGET, SHINGLE_SIZE

NORMALISATION = (
    "Unicode NFKC, case-folded, punctuation (Unicode P*) to spaces, whitespace collapsed, accents kept; "
    "clinical case and question lines, then the option texts sorted; boilerplate lines left out"
)


def _match_record(result: AuditResult, match: Match) -> dict[str, Any]:
    train = result.train
    provenance, origin, task = train.meta[match.train]
    record: dict[str, Any] = {"id": train.ids[match.train], "provenance": provenance, "origin": origin}
    record["task"] = task
    groups = train.group_names(train.membership[match.train])
    if train.layout == "mixtures":
        record["mixtures"] = groups
    elif train.layout in ("frenchmedmcqa", "mediqal"):
        record["split"] = groups[0]
    record["kind"] = match.kind
    if match.jaccard is not None:
        record["jaccard"] = round(match.jaccard, 4)
    if match.ngram is not None:
        record["ngram"] = match.ngram
        record["ngram_share"] = round(match.ngram_share or 0.0, 4)
    return record


def settings_record(result: AuditResult, command: dict[str, Any]) -> dict[str, Any]:
    s, lsh = result.settings, result.lsh
    return {
        **command,
        "normalisation": NORMALISATION,
        "exact": "identical normalised text (question and clinical case lines, sorted options)",
        "ngram": {
            "n": s.ngram,
            "share": s.ngram_share,
            "rule": f"a training record holds at least {s.ngram_share:g} of the test question's {s.ngram}-grams "
            "(and one at least); boilerplate n-grams count in neither",
        },
        "near": {
            "measure": f"Jaccard similarity of word {SHINGLE_SIZE}-shingle sets, verified exactly",
            "threshold": s.threshold,
            "minhash": {"num_perm": s.num_perm, "seed": MINHASH_SEED, "scheme": "datasketch affine32"},
            "lsh": {"bands": lsh.bands, "rows": lsh.rows, "miss_probability_at_threshold": lsh.miss_probability},
            "miss_target": MISS_TARGET,
        },
        "boilerplate": {
            "limit": s.boilerplate,
            "rule": f"a line in more than {s.boilerplate} records (training and test), or an n-gram in more than "
            f"{s.boilerplate} training records or test questions, is left out",
            "lines": result.boilerplate_lines,
            "ngrams": result.boilerplate_ngrams,
        },
        "kinds": "each pair gets its strongest kind: exact, then ngram, then near",
        "versions": {"lm-eval-medinj": version("lm-eval-medinj"), "datasketch": version("datasketch")},
    }


def summary(result: AuditResult) -> dict[str, dict[str, Any]]:
    """Per test set: questions, flagged, share, flagged per training group and per strongest kind."""
    train = result.train
    per_task: dict[str, dict[str, Any]] = {
        task: {
            "questions": n,
            "flagged": 0,
            "share": 0.0,
            "groups": dict.fromkeys(train.groups, 0),
            "kinds": dict.fromkeys(KINDS, 0),
        }
        for task, n in result.tests.tasks.items()
    }
    for doc, matches in zip(result.tests.docs, result.doc_matches(), strict=True):
        if not matches:
            continue
        row = per_task[doc.task]
        row["flagged"] += 1
        row["kinds"][min((m.kind for m in matches), key=KINDS.index)] += 1
        membership = 0
        for match in matches:
            membership |= train.membership[match.train]
        for group in train.group_names(membership):
            row["groups"][group] += 1
    for row in per_task.values():
        row["share"] = row["flagged"] / row["questions"]
    return per_task


def overlap_record(result: AuditResult, command: dict[str, Any]) -> dict[str, Any]:
    train = result.train
    flagged = []
    for doc, matches in zip(result.tests.docs, result.doc_matches(), strict=True):
        if matches:
            entry: dict[str, Any] = {"task": doc.task, "id": doc.id}
            if doc.uid:
                entry["uid"] = doc.uid
            entry["matches"] = [_match_record(result, match) for match in matches]
            flagged.append(entry)
    return {
        "settings": settings_record(result, command),
        "tests": summary(result),
        "train": {
            "layout": train.layout,
            "path": str(train.path),
            "records": len(train.ids),
            "groups": train.group_sizes(),
            **train.details,
        },
        "flagged": flagged,
    }


def _cell(count: int, total: int) -> str:
    return f"{count} ({100 * count / total:.1f}%)" if total else "0"


def markdown(record: dict[str, Any]) -> str:
    """The summary tables of an ``overlap.json`` record."""
    settings, tests, train = record["settings"], record["tests"], record["train"]
    groups = list(train["groups"])
    kind = {"mixtures": "mixture", "hub": "provenance"}.get(train["layout"], "split")
    near = settings["near"]
    lines = [
        "# Training data / test set overlap",
        "",
        f"Training side: `{train['path']}` ({train['layout']} layout, {train['records']:,} records). "
        f"Test sets: {', '.join(f'`{t}`' for t in tests)}.",
        "",
        f"Matching: exact normalised text; {settings['ngram']['n']}-grams (a training record holding at least "
        f"{settings['ngram']['share']:g} of a question's {settings['ngram']['n']}-grams); near-duplicates "
        f"(Jaccard of word {SHINGLE_SIZE}-shingles >= {near['threshold']:g}, MinHash LSH {near['lsh']['bands']} bands "
        f"x {near['lsh']['rows']} rows, each candidate verified exactly). Boilerplate limit: "
        f"{settings['boilerplate']['limit']} records. See docs/OVERLAP.md.",
        "",
        f"## Flagged test questions by training {kind}",
        "",
        "A question is counted under a column when at least one training record of that column matches it; "
        "`any` counts it once. Cells: flagged questions (share of the test set).",
        "",
        "| test set | questions | " + " | ".join(groups) + " | any |",
        "|---|---:|" + "---:|" * (len(groups) + 1),
    ]
    for task, row in tests.items():
        cells = [_cell(row["groups"][g], row["questions"]) for g in groups]
        lines.append(
            f"| {task} | {row['questions']} | " + " | ".join(cells) + f" | {_cell(row['flagged'], row['questions'])} |"
        )
    lines += [
        "",
        "## Flagged test questions by strongest kind of match",
        "",
        "| test set | " + " | ".join(KINDS) + " |",
        "|---|" + "---:|" * len(KINDS),
    ]
    for task, row in tests.items():
        lines.append(f"| {task} | " + " | ".join(_cell(row["kinds"][k], row["questions"]) for k in KINDS) + " |")
    return "\n".join(lines) + "\n"


def write_outputs(result: AuditResult, out: Path, command: dict[str, Any]) -> dict[str, Any]:
    """``out/overlap.json`` and ``out/overlap.md``; returns the JSON record."""
    record = overlap_record(result, command)
    write_json_atomic(out / "overlap.json", record)
    write_text_atomic(out / "overlap.md", markdown(record))
    return record
