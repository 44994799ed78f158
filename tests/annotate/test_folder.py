"""The annotation folder: written whole, read validated, ratings per item and per model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lm_eval_medinj.annotate.folder import item_ratings, model_ratings, read_folder, write_folder
from lm_eval_medinj.annotate.records import Scale
from lm_eval_medinj.errors import InputError, UsageError
from lm_eval_medinj.judge.items import read_labelled
from tests.annotate.helpers import make_folder, write_ratings


def test_a_folder_reads_back_as_written(tmp_path: Path) -> None:
    folder = read_folder(make_folder(tmp_path / "ann", n=4, scale="likert5"))
    assert folder.study.scale.values == (1, 2, 3, 4, 5) and folder.study.models == ("A", "B")
    assert list(folder.items) == ["it-0001", "it-0002", "it-0003", "it-0004"]
    assert folder.items["it-0001"].context and folder.items["it-0002"].context is None
    assert folder.key["it-0003"].model == "A" and folder.key["it-0004"].doc_id == 1
    assert folder.ratings == {}
    study = json.loads((tmp_path / "ann" / "study.json").read_text(encoding="utf-8"))
    assert study["format"] == "medinj-annotation/1" and study["scale"]["labels"]["5"] == "Tout à fait équivalente"


def test_writing_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "ann")
    before = read_folder(folder)
    with pytest.raises(InputError, match="exists and is not empty"):
        write_folder(folder, before.study, list(before.items.values()), list(before.key.values()))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ann.")]  # no staging folder left


def test_mean_over_raters_by_default_and_one_rater_when_named(tmp_path: Path) -> None:
    path = make_folder(tmp_path / "ann", n=4, scale="likert5")
    write_ratings(path, "alice", {"it-0001": 2, "it-0002": 5})
    write_ratings(path, "alice", {"it-0001": 4})  # went back and changed it: the last line wins
    write_ratings(path, "bob", {"it-0001": 1, "it-0003": 3})
    folder = read_folder(path)
    assert item_ratings(folder) == {"it-0001": 2.5, "it-0002": 5.0, "it-0003": 3.0}
    assert item_ratings(folder, "alice") == {"it-0001": 4.0, "it-0002": 5.0}
    with pytest.raises(InputError, match="no ratings by 'carol'"):
        item_ratings(folder, "carol")
    by_model = model_ratings(folder)
    assert [(r.item, r.rating, r.n_raters, r.uid) for r in by_model["A"]] == [
        ("it-0001", 2.5, 2, "medinjection/native-oeq/q0"),
        ("it-0003", 3.0, 1, "medinjection/native-oeq/q1"),
    ]
    assert [(r.item, r.task, r.doc_id, r.id) for r in by_model["B"]] == [("it-0002", "medinj_oeq_native", 0, "q0")]


def test_meta_eval_reads_the_folder_as_labelled_items(tmp_path: Path) -> None:
    path = make_folder(tmp_path / "ann", n=3, scale="likert5")
    write_ratings(path, "alice", {"it-0001": 2, "it-0003": 5})
    write_ratings(path, "bob", {"it-0001": 3})
    labelled = read_labelled(path)
    item = read_folder(path).items["it-0001"]
    assert [(x.item.id, x.rating) for x in labelled] == [("it-0001", 2.5), ("it-0003", 5.0)]
    assert (labelled[0].item.question, labelled[0].item.reference, labelled[0].item.candidate) == (
        item.question,
        item.reference,
        item.answer,
    )
    assert [(x.item.id, x.rating) for x in read_labelled(path, "bob")] == [("it-0001", 3.0)]


def test_a_torn_last_line_is_ignored_and_a_complete_one_kept(tmp_path: Path) -> None:
    path = make_folder(tmp_path / "ann")
    journal = write_ratings(path, "alice", {"it-0001": 1})
    with journal.open("a", encoding="utf-8") as handle:
        handle.write('{"item": "it-0002", "rating": 0, "comm')  # a crash in the middle of a write
    assert item_ratings(read_folder(path)) == {"it-0001": 1.0}
    journal.write_text(journal.read_text(encoding="utf-8").rsplit("\n", 1)[0] + "\n", encoding="utf-8")
    with journal.open("a", encoding="utf-8") as handle:
        handle.write('{"item": "it-0002", "rating": 0, "comment": "", "at": "2026-01-02T10:00:00"}')  # no newline
    assert item_ratings(read_folder(path)) == {"it-0001": 1.0, "it-0002": 0.0}


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / "study.json").unlink(), r"study\.json: missing"),
        (lambda p: (p / "key.jsonl").unlink(), r"key\.jsonl: missing"),
        (
            lambda p: _edit_json(p / "study.json", lambda s: s.pop("scale")),
            r"study\.json: field 'scale': Field required",
        ),
        (
            lambda p: _edit_json(p / "study.json", lambda s: s["scale"].update(values=[1, 2, 3])),
            r"study\.json: field 'scale': .*binary scale has values \[0, 1\]",
        ),
        (lambda p: _drop_line(p / "key.jsonl", 2), r"key\.jsonl: no entry for item 'it-0002'"),
        (
            lambda p: _append(p / "key.jsonl", _key_row(item="it-0099")),
            r"key\.jsonl:7: field 'item': unknown item 'it-0099'",
        ),
        (
            lambda p: _replace(p / "key.jsonl", '"model":"A"', '"model":"C"'),
            r"key\.jsonl:1: field 'model': 'C' is not one of the study's models",
        ),
        (lambda p: _drop_line(p / "items.jsonl", 6), r"items\.jsonl: 5 items, but study\.json says n = 6"),
        (
            lambda p: write_ratings(p, "alice", {"it-0001": 2}),
            r"ratings/alice\.jsonl:1: field 'rating': 2 is not on the binary scale \[0, 1\]",
        ),
        (
            lambda p: write_ratings(p, "alice", {"it-0001": 1, "it-0077": 1}),
            r"ratings/alice\.jsonl:2: field 'item': unknown item 'it-0077'",
        ),
        (
            lambda p: _append(p / "ratings" / "alice.jsonl", '{"item": "it-0001", "rating": 1}\n{}'),
            r"ratings/alice\.jsonl:1: field 'comment': Field required",
        ),
        (
            lambda p: _append(p / "ratings" / "alice.jsonl", "not json\n"),
            r"ratings/alice\.jsonl:1: Invalid JSON",
        ),
        (
            lambda p: _append(
                p / "ratings" / "alice.jsonl", '{"item": "it-0001", "rating": "1", "comment": "", "at": "x"}\n'
            ),
            r"ratings/alice\.jsonl:1: field 'rating': Input should be a valid integer",
        ),
    ],
)
def test_a_malformed_folder_is_one_line_naming_file_line_and_field(tmp_path: Path, damage, message: str) -> None:
    path = make_folder(tmp_path / "ann")
    damage(path)
    with pytest.raises(InputError, match=message) as error:
        read_folder(path)
    assert "\n" not in str(error.value)


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def _drop_line(path: Path, line_no: int) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    del lines[line_no - 1]
    path.write_text("".join(lines), encoding="utf-8")


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


def _replace(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")


def _key_row(item: str) -> str:
    row = {"item": item, "model": "A", "run": "r", "task": "t", "doc_id": 0, "id": "0", "uid": "t/0", "judge": None}
    return json.dumps(row) + "\n"


def test_a_rater_is_chosen_in_an_annotation_folder_only(tmp_path: Path) -> None:
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("question,reference,candidate,rating\nQ ?,R,C,1\n", encoding="utf-8")
    assert [x.rating for x in read_labelled(ratings)] == [1.0]
    with pytest.raises(UsageError, match="a rater can be chosen in an annotation folder only"):
        read_labelled(ratings, "alice")
    with pytest.raises(InputError, match="no item is rated yet"):
        read_labelled(make_folder(tmp_path / "ann"))


def test_the_threshold_of_a_folder_is_its_scales_midpoint() -> None:
    assert (Scale.of("binary").midpoint, Scale.of("likert5").midpoint) == (0.5, 3.0)
