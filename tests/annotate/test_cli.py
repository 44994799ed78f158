"""``medinj annotate``: the three commands, and bad input as one line with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lm_eval_medinj.annotate.cli import main
from tests.annotate.helpers import REPO_ROOT, make_folder, write_ratings, write_run


def _error(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_sample_then_agreement(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nat, base = write_run(tmp_path / "nat", "NAT", 5), write_run(tmp_path / "base", "base", 5)
    main(["sample", "--model", f"NAT={nat}", "--model", f"base={base}", "--n", "6", "--scale", "likert5",
          "--out", str(tmp_path / "ann")])  # fmt: skip
    assert "wrote" in capsys.readouterr().out
    write_ratings(tmp_path / "ann", "alice", {f"it-{i:04d}": 1 + i % 5 for i in range(1, 7)})
    write_ratings(tmp_path / "ann", "bob", {f"it-{i:04d}": 1 + (i + 1) % 5 for i in range(1, 7)})
    main(["agreement", str(tmp_path / "ann"), "--json", str(tmp_path / "agreement.json"), "--n-boot", "50"])
    out = capsys.readouterr().out
    assert "alice / bob: Cohen's kappa (quadratic weights)" in out and "Krippendorff's alpha (ordinal)" in out
    report = json.loads((tmp_path / "agreement.json").read_text(encoding="utf-8"))
    assert set(report["models"]) == {"NAT", "base"} and report["raters"]["alice"]["rated"] == 6


def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_run(tmp_path / "good", "A", 3)
    (tmp_path / "empty").mkdir()
    err = _error(
        capsys, "sample", "--model", f"A={good}", "--model", f"B={tmp_path / 'empty'}", "--out", tmp_path / "x"
    )
    assert err.startswith("medinj annotate: error: model B: no OEQ samples (samples_*oeq*.jsonl) below")
    err = _error(capsys, "sample", "--model", f"A={good}", "--n", "10", "--out", tmp_path / "x")
    assert err == "medinj annotate: error: --n 10 is larger than the pool: 3 answers (A 3)"

    ann = make_folder(tmp_path / "ann")
    err = _error(capsys, "sample", "--model", f"A={good}", "--n", "2", "--out", ann)
    assert "exists and is not empty" in err
    write_ratings(ann, "alice", {"it-0001": 1, "it-0002": 7})
    assert "ratings/alice.jsonl:2: field 'rating': 7 is not on the binary scale [0, 1]" in _error(
        capsys, "agreement", ann
    )
    (ann / "ratings" / "alice.jsonl").write_text('{"item": "it-0001", "rating": 1, "at": "2026-01-01"}\n')
    assert "ratings/alice.jsonl:1: field 'comment': Field required" in _error(capsys, "agreement", ann)
    (ann / "ratings" / "alice.jsonl").unlink()
    (ann / "ratings" / "bob.jsonl").mkdir()
    assert "ratings/bob.jsonl: a folder, not a rater's journal" in _error(capsys, "agreement", ann)
    (ann / "ratings" / "bob.jsonl").rmdir()
    assert _error(capsys, "agreement", ann, "--min-spread", "0").endswith("--min-spread must be at least 1, got 0")
    assert _error(capsys, "agreement", ann, "--json", tmp_path).endswith(
        f"{tmp_path}: is a folder; give a file name to write"
    )
    (ann / "key.jsonl").unlink()
    assert _error(capsys, "agreement", ann).endswith("key.jsonl: missing (an annotation folder is written by "
                                                     "'medinj annotate sample')")  # fmt: skip
    (ann / "study.json").unlink()
    assert "study.json: missing" in _error(capsys, "agreement", ann)
    assert "study.json: missing" in _error(capsys, "serve", ann, "--rater", "alice")


def test_serving_off_loopback_needs_a_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ann = make_folder(tmp_path / "ann")
    err = _error(capsys, "serve", ann, "--rater", "alice", "--host", "0.0.0.0")
    assert err == (
        "medinj annotate: error: --host 0.0.0.0 is not loopback: give an access token (--token or "
        "$MEDINJ_ANNOTATE_TOKEN)"
    )
    assert "at least 16 characters" in _error(capsys, "serve", ann, "--rater", "alice", "--token", "short")
    assert "rater name '../x'" in _error(capsys, "serve", ann, "--rater", "../x")
    assert not (ann / "ratings" / "alice.jsonl").exists()


def test_the_module_runs_as_a_command(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lm_eval_medinj.annotate.cli", "agreement", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert done.returncode == 2 and done.stderr.strip().endswith("nothing: not an annotation folder (written by "
                                                                 "'medinj annotate sample')")  # fmt: skip
