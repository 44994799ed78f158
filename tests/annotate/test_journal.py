"""The rater's journal: one durable line per rating, one writer at a time, a crash loses nothing acknowledged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lm_eval_medinj.annotate.folder import journal_path, read_folder
from lm_eval_medinj.annotate.journal import JournalBusyError, JournalWriter, read_journal
from lm_eval_medinj.annotate.records import RatingLine, Scale
from tests.annotate.helpers import REPO_ROOT, make_folder

BINARY = Scale.of("binary")
ITEMS = {f"it-{i:04d}" for i in range(1, 7)}


def _rating(item: str, rating: int, comment: str = "") -> RatingLine:
    return RatingLine(item=item, rating=rating, comment=comment, at="2026-01-02T10:00:00+00:00")


def test_each_rating_is_one_line_and_the_last_for_an_item_wins(tmp_path: Path) -> None:
    path = tmp_path / "ratings" / "alice.jsonl"
    writer = JournalWriter(path, BINARY, ITEMS)
    writer.append(_rating("it-0001", 1, "juste\nmais incomplète"))
    writer.append(_rating("it-0002", 0))
    writer.append(_rating("it-0001", 0, "relu"))
    writer.close()
    assert len(path.read_bytes().splitlines()) == 3
    journal = read_journal(path, BINARY, ITEMS)
    assert journal.lines == 3 and not journal.torn_tail
    assert {item: (r.rating, r.comment) for item, r in journal.ratings.items()} == {
        "it-0001": (0, "relu"),
        "it-0002": (0, ""),
    }


def test_a_second_writer_for_the_same_rater_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    path = tmp_path / "alice.jsonl"
    first = JournalWriter(path, BINARY, ITEMS)
    with pytest.raises(JournalBusyError, match="another process is recording"):
        JournalWriter(path, BINARY, ITEMS)
    first.close()
    JournalWriter(path, BINARY, ITEMS).close()


@pytest.mark.parametrize(
    ("tail", "kept"),
    [
        (b'{"item": "it-0002", "rating": 1, "comm', {"it-0001": 1}),  # torn: cut off
        (b'{"item":"it-0002","rating":0,"comment":"","at":"2026-01-02T10:00:00"}', {"it-0001": 1, "it-0002": 0}),
    ],
)
def test_opening_repairs_the_last_line_so_the_next_rating_starts_a_new_one(
    tmp_path: Path, tail: bytes, kept: dict[str, int]
) -> None:
    path = tmp_path / "alice.jsonl"
    path.write_bytes(_rating("it-0001", 1).model_dump_json().encode() + b"\n" + tail)
    writer = JournalWriter(path, BINARY, ITEMS)
    assert {item: r.rating for item, r in writer.journal.ratings.items()} == kept
    writer.append(_rating("it-0003", 1))
    writer.close()
    journal = read_journal(path, BINARY, ITEMS)
    assert not journal.torn_tail and {item: r.rating for item, r in journal.ratings.items()} == {**kept, "it-0003": 1}


WRITER = """
import sys
from pathlib import Path
from lm_eval_medinj.annotate.journal import JournalWriter
from lm_eval_medinj.annotate.records import RatingLine, Scale
items = {f"it-{i:04d}" for i in range(1, 10001)}
writer = JournalWriter(Path(sys.argv[1]), Scale.of("likert5"), items)
for i in range(1, 10001):
    writer.append(RatingLine(item=f"it-{i:04d}", rating=1 + i % 5, comment="x" * (i % 300), at="2026-01-02T10:00:00"))
    print(i, flush=True)  # acknowledged: on disk
"""


def test_kill_9_while_writing_loses_no_acknowledged_rating(tmp_path: Path) -> None:
    path = tmp_path / "alice.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, env=env)
    acknowledged = 0
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while acknowledged < 200 and time.monotonic() < deadline:
        acknowledged = int(process.stdout.readline())
    process.send_signal(signal.SIGKILL)
    process.wait()
    journal = read_journal(path, Scale.of("likert5"))
    assert acknowledged >= 200 and journal.lines >= acknowledged
    for i in range(1, acknowledged + 1):
        assert journal.ratings[f"it-{i:04d}"].rating == 1 + i % 5
    JournalWriter(path, Scale.of("likert5"), {f"it-{i:04d}" for i in range(1, 10001)}).close()  # the lock died with it


def test_a_folder_stays_readable_while_a_server_writes(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "ann")
    writer = JournalWriter(journal_path(folder, "alice"), BINARY, ITEMS)
    writer.append(_rating("it-0004", 1))
    assert read_folder(folder).ratings["alice"]["it-0004"].rating == 1
    writer.close()
