"""``medinj overlap`` end to end: train/sft.py --dry-run mixtures against lm-eval tasks resolved with
--metadata, and bad input refused in one line (exit status 2, no traceback)."""

from __future__ import annotations

import json
import random
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from lm_eval_medinj.cli.train import run as sft_run
from lm_eval_medinj.errors import ErrorExit
from lm_eval_medinj.overlap.cli import main
from lm_eval_medinj.training.mixtures import CONFIGURATIONS, MixtureSettings, build_mixture, load_pools, write_mixture
from tests.training.fixtures import LETTERS, write_pools

UNRELATED = [
    "Quel est le mécanisme d'action principal des inhibiteurs de l'enzyme de conversion ?",
    "Quel effet indésirable des IEC est lié à l'accumulation de bradykinine ?",
    "Parmi les médicaments suivants, lesquels sont des inducteurs enzymatiques du cytochrome P450 3A4 ?",
]


def _hub(record_id: str, question: str, options: list[str], answer: str) -> dict[str, Any]:
    lines = "\n".join(f"({letter}) {text}" for letter, text in zip(LETTERS, options, strict=True))
    return {
        "id": record_id,
        "messages": [{"role": "user", "content": f"{question}\n{lines}"}, {"role": "assistant", "content": answer}],
        "classes": list(LETTERS[: len(options)]),
        "answer": answer,
    }


def _copy(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A training record as a test question: upper-cased, options reordered, a new id."""
    user = next(turn["content"] for turn in record["messages"] if turn["role"] == "user")
    question, *option_lines = user.split("\n")
    options = [line.split(") ", 1)[1] for line in option_lines]
    rng.shuffle(options)
    return _hub(f"copy-of-{record['id']}", question.upper(), options, "A")


def _write_tests(data: Path) -> dict[str, dict[str, str]]:
    """Native test sets: copies of some native training records and unrelated questions.
    Returns, per task, test id -> the training id it copies."""
    rng = random.Random(0)
    copied: dict[str, dict[str, str]] = {}
    for task in ("mcqu", "mcq"):
        train = json.loads((data / "Native" / "Train" / task / f"{task}_train.json").read_text(encoding="utf-8"))
        copies = [_copy(record, rng) for record in train[:15:2]]
        unrelated = [
            _hub(f"new-{task}-{i}", q, ["Oui", "Non", "Peut-être", "Jamais", "Toujours"], "A")
            for i, q in enumerate(UNRELATED)
        ]
        folder = data / "Native" / "Test" / task
        folder.mkdir(parents=True)
        (folder / f"{task}_test.json").write_text(json.dumps(copies + unrelated, ensure_ascii=False), encoding="utf-8")
        copied[f"medinj_{task}_native"] = {c["id"]: c["id"].removeprefix("copy-of-") for c in copies}
    return copied


def _normalised(text: str) -> str:
    """The specification: NFKC, case-folded, punctuation to spaces, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join("".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in folded).split())


def _key(raw: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """A Hub record's question and sorted options, normalised."""
    user = next(turn["content"] for turn in raw["messages"] if turn["role"] == "user")
    question, *options = user.split("\n")
    return _normalised(question), tuple(sorted(_normalised(line.split(") ", 1)[1]) for line in options))


def _run(*argv: str) -> dict[str, Any]:
    main(["--no-progress", *argv])
    out = Path(argv[argv.index("--out") + 1])
    return json.loads((out / "overlap.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_mixtures_against_lm_eval_tasks_end_to_end(tmp_path: Path) -> None:
    data = write_pools(tmp_path / "data")
    copied = _write_tests(data)
    mixtures = tmp_path / "mixtures"
    sft_run(["--mixtures", "all", "--dry-run", "--data_dir", str(data), "--total", "40", "--output_dir", str(mixtures)])
    listed = {config: set((mixtures / config / "ids.txt").read_text().split()) for config in CONFIGURATIONS}
    tasks = ",".join(copied)

    record = _run(
        "--train",
        str(mixtures),
        "--tests",
        tasks,
        "--metadata",
        json.dumps({"data_dir": str(data)}),
        "--out",
        str(tmp_path / "audit"),
    )

    # exact copies, recomputed here: every training record of a mixture whose normalised question and
    # sorted options equal the test question's (the fixture pools repeat a text across tasks by index)
    in_mixtures = {i for ids in listed.values() for i in ids}
    train_keys: dict[tuple, set[str]] = {}
    for path in data.glob("*/Train/*/*.json"):
        for raw in json.loads(path.read_text(encoding="utf-8")):
            if raw["id"] in in_mixtures:
                train_keys.setdefault(_key(raw), set()).add(raw["id"])
    found = {
        (e["task"], e["id"]): {m["id"]: (m["kind"], m["mixtures"]) for m in e["matches"]} for e in record["flagged"]
    }
    for task, pairs in copied.items():
        test_raw = json.loads(
            (data / "Native" / "Test" / task.split("_")[1] / f"{task.split('_')[1]}_test.json").read_text()
        )
        for raw in test_raw:
            matches = found.get((task, raw["id"]), {})
            exact = {train_id for train_id, (kind, _) in matches.items() if kind == "exact"}
            assert exact == train_keys.get(_key(raw), set())
            if raw["id"] in pairs and pairs[raw["id"]] in in_mixtures:  # a copy: its source, in its mixtures
                source = pairs[raw["id"]]
                assert matches[source] == ("exact", [c for c in CONFIGURATIONS if source in listed[c]])
            # any other match is a record of the same index (the fixture's template), or nothing
            index = raw["id"].rsplit("-", 1)[1]
            assert all(train_id.endswith(f"-{index}") for train_id in matches), matches
            assert raw["id"] in pairs or not matches
        row = record["tests"][task]
        assert row["questions"] == len(test_raw) == len(pairs) + len(UNRELATED)
        flagged_in = {
            c: sum(any(c in names for _, names in m.values()) for (t, _), m in found.items() if t == task)
            for c in CONFIGURATIONS
        }
        assert row["groups"] == flagged_in and row["flagged"] == sum(t == task for t, _ in found)
    assert any(0 < n < max(flagged_in.values()) for n in flagged_in.values())  # the mixtures differ
    assert record["train"]["layout"] == "mixtures" and record["settings"]["metadata"] == {"data_dir": str(data)}
    table = (tmp_path / "audit" / "overlap.md").read_text(encoding="utf-8")
    assert "| test set | questions | NAT | TRAD | SYN | NAT-TRAD | NAT-SYN | TRAD-SYN | ALL | any |" in table
    assert not list((tmp_path / "audit").glob(".*.tmp"))  # written through renamed temporary files


# --------------------------------------------------------------------------- bad input


def _one_line_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(ErrorExit) as raised:
        main(["--no-progress", *argv])
    assert raised.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("medinj overlap: error: ") and "Traceback" not in "\n".join(err)
    return err[-1]


@pytest.fixture
def mixture_folder(pools_dir: Path, tmp_path: Path) -> Path:
    """One mixture (NAT) as train/sft.py --dry-run writes it."""
    pools = load_pools(["native"], ["mcq", "mcqu"], pools_dir)
    write_mixture(
        build_mixture("NAT", pools, MixtureSettings(total=20), source=str(pools_dir)), tmp_path / "runs" / "NAT"
    )
    return tmp_path / "runs"


def _edit_manifest(folder: Path, change) -> None:
    manifest = folder / "NAT" / "manifest.json"
    manifest.write_text(json.dumps(change(json.loads(manifest.read_text()))), encoding="utf-8")


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda f: (f / "NAT" / "manifest.json").write_text("{not json"), "manifest.json:1: invalid JSON"),
        (
            lambda f: _edit_manifest(f, lambda m: {k: v for k, v in m.items() if k != "config"}),
            "field 'config' is missing",
        ),
        (lambda f: _edit_manifest(f, lambda m: m | {"config": "BOTH"}), "field 'config' is 'BOTH'"),
        (
            lambda f: _edit_manifest(f, lambda m: m | {"settings": m["settings"] | {"source": "/nowhere"}}),
            "/nowhere, which is not a folder",
        ),
        (lambda f: (f / "NAT" / "ids.txt").write_text("native-mcq-0001\n"), "do not hash to the manifest's ids_sha256"),
        (lambda f: (f / "NAT" / "ids.txt").unlink(), "no ids.txt"),
        (lambda f: (f / "NAT" / "ids.txt").write_bytes(b"native-mcq-\xe9\n"), "ids.txt: not UTF-8 text (byte 11"),
    ],
    ids=["not-json", "no-config", "unknown-config", "source-gone", "ids-edited", "no-ids", "ids-not-utf8"],
)
def test_a_manifest_that_is_not_one_is_one_line(
    mixture_folder: Path, capsys, tmp_path: Path, breakage, message: str
) -> None:
    breakage(mixture_folder)
    line = _one_line_error(
        capsys, "--train", str(mixture_folder), "--tests", "medinj_mcqu_native", "--out", str(tmp_path / "o")
    )
    assert message in line


def test_ids_missing_from_the_pools_are_one_line(mixture_folder: Path, capsys, tmp_path: Path) -> None:
    _edit_manifest(
        mixture_folder,
        lambda m: (
            m
            | {
                "settings": m["settings"]
                | {"source": str(write_pools(tmp_path / "other", {"native": {"mcq": 2, "mcqu": 2}}))}
            }
        ),
    )
    line = _one_line_error(capsys, "--train", str(mixture_folder), "--tests", "x", "--out", str(tmp_path / "o"))
    assert "not in the train pools of" in line and "built from other data" in line


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: (p / "notes.txt").write_text("x"), "is no known layout"),
        (
            lambda p: [(p / "Native").mkdir(), (p / "train.json").write_text("[]"), (p / "test.json").write_text("[]")],
            "holds several layouts (hub, frenchmedmcqa)",
        ),
    ],
    ids=["none", "two"],
)
def test_a_train_path_of_no_known_layout_is_one_line(tmp_path: Path, capsys, make, message: str) -> None:
    folder = tmp_path / "train"
    folder.mkdir()
    make(folder)
    assert message in _one_line_error(capsys, "--train", str(folder), "--tests", "x", "--out", str(tmp_path / "o"))


def test_bad_flags_are_one_line(pools_dir: Path, capsys, tmp_path: Path) -> None:
    common = ("--train", str(pools_dir), "--tests", "medinj_mcqu_native", "--out", str(tmp_path / "o"))
    assert "--metadata is not JSON" in _one_line_error(capsys, *common, "--metadata", "{data_dir: x}")
    assert "--threshold must be above 0" in _one_line_error(capsys, *common, "--threshold", "0")
    assert "--ngram-share must be between 0 and 1" in _one_line_error(capsys, *common, "--ngram-share", "2")


@pytest.mark.slow
def test_an_unknown_task_and_an_empty_test_set_are_one_line(pools_dir: Path, capsys, tmp_path: Path) -> None:
    line = _one_line_error(
        capsys, "--train", str(pools_dir), "--tests", "medinj_mcqu_natve", "--out", str(tmp_path / "o")
    )
    assert "unknown task 'medinj_mcqu_natve' (did you mean medinj_mcqu_native" in line
    data = write_pools(tmp_path / "data", test_sizes={"native": {"mcqu": 2}})
    test_file = data / "Native" / "Test" / "mcqu" / "mcqu_test.json"
    test_file.write_text("[]", encoding="utf-8")  # the readers refuse an empty file, naming it
    args = ["--train", str(pools_dir), "--tests", "medinj_mcqu_native", "--out", str(tmp_path / "o")]
    line = _one_line_error(capsys, *args, "--metadata", json.dumps({"data_dir": str(data)}))
    assert line == f"medinj overlap: error: {test_file}: record '<file>', field '<records>': empty array: no records"
    test_file.write_text('[{"id": "bad", "messages": "not a conversation"}]', encoding="utf-8")
    metadata = json.dumps({"data_dir": str(data), "skip_invalid": True})  # every record dropped: no question left
    line = _one_line_error(capsys, *args, "--metadata", metadata)
    assert line == "medinj overlap: error: task medinj_mcqu_native: its test set has no questions"
