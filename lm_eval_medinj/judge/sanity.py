"""An objective sanity set from MCQ data: the correct option text(s) as reference, label known."""

from __future__ import annotations

import random
from pathlib import Path

from lm_eval_medinj.benchmarks.single_file import ReadOptions, read_records
from lm_eval_medinj.judge.items import JudgeItem, LabelledItem


def mcq_sanity_items(path: Path, n_questions: int = 50, seed: int = 0) -> list[LabelledItem]:
    """Two items per question: a correct candidate (label 1) and an incorrect one (label 0).

    The reference is the correct option text(s). The correct candidate is the correct text(s) in
    another order (the same text for one answer); the incorrect one replaces a correct option with
    a wrong one. Questions whose options are all correct are skipped.
    """
    rng = random.Random(seed)
    records = [r for r in read_records(path, ReadOptions(skip_invalid=True)).records if len(r.gold) < len(r.options)]
    rng.shuffle(records)
    items: list[LabelledItem] = []
    for record in records[:n_questions]:
        correct = [record.options[letter] for letter in record.gold]
        wrong = [text for letter, text in record.options.items() if letter not in record.gold]
        reference = " ; ".join(correct)
        shuffled = rng.sample(correct, len(correct))
        if len(correct) > 1 and shuffled == correct:
            shuffled = correct[1:] + correct[:1]
        incorrect = list(correct)
        incorrect[rng.randrange(len(correct))] = rng.choice(wrong)
        items.append(LabelledItem(JudgeItem(f"{record.id}+ok", record.question, reference, " ; ".join(shuffled)), 1.0))
        items.append(LabelledItem(JudgeItem(f"{record.id}+ko", record.question, reference, " ; ".join(incorrect)), 0.0))
    return items
