"""The decoding protocols are one object each, owned by lm_eval_medinj.protocol; nothing else compares their names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lm_eval_medinj.errors import UsageError
from lm_eval_medinj.metadata import KEYS
from lm_eval_medinj.protocol import DEFAULT_PROTOCOL, PAPER, PROTOCOLS, STRICT, protocol_named
from lm_eval_medinj.protocol.constraints import CONSTRAINT_KEY

REPO_ROOT = Path(__file__).resolve().parents[1]
PROTOCOL_PACKAGE = REPO_ROOT / "lm_eval_medinj" / "protocol"
NAMES = "|".join(PROTOCOLS)
# A comparison with a protocol's name as a string literal: == "paper", "strict" !=, in ("paper", ...).
NAME_COMPARISON = re.compile(
    rf"""(?:==|!=)\s*["'](?:{NAMES})["']|["'](?:{NAMES})["']\s*(?:==|!=)|\bin\s*[(\[{{][^)\]}}]*["'](?:{NAMES})["']"""
)


def code_files() -> list[Path]:
    """Every Python file of the package, the scripts and the benchmarks (tests aside)."""
    return [
        path
        for folder in ("lm_eval_medinj", "bench", "judge", "train", "study")
        for path in sorted((REPO_ROOT / folder).rglob("*.py"))
    ]


def test_the_grep_finds_a_comparison_when_there_is_one() -> None:
    for line in ('if doc["protocol"] == "paper":', "'strict' != name", 'if protocol in ("paper", "x"):'):
        assert NAME_COMPARISON.search(line), line
    assert not NAME_COMPARISON.search('load_prompt("paper")')  # the judge's prompt name is no protocol


def test_no_code_outside_the_protocol_package_compares_a_protocol_name() -> None:
    files = code_files()
    assert len(files) > 50
    found = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}"
        for path in files
        if not path.is_relative_to(PROTOCOL_PACKAGE)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if NAME_COMPARISON.search(line)
    ]
    assert found == []


def test_the_default_is_set_once_and_the_schema_reads_it() -> None:
    assert DEFAULT_PROTOCOL is PAPER and protocol_named(None) is PAPER
    assert KEYS["protocol"].default == DEFAULT_PROTOCOL.name
    assert {name: protocol_named(name) for name in ("paper", "strict")} == {"paper": PAPER, "strict": STRICT}
    with pytest.raises(UsageError, match="--metadata 'protocol' must be one of paper, strict; got 'greedy'"):
        protocol_named("greedy")


# What each protocol did to a request before it was one object (MedinjTask and ConstrainedGenerationTask,
# written out here from that code): the paper's budget is 1 token (MCQU) or 2 x options (MCQ).
@pytest.mark.parametrize(
    ("protocol", "letters", "multi", "constrained", "expected"),
    [
        (PAPER, "ABCDE", True, False, {"until": [], "max_gen_toks": 10}),
        (PAPER, "ABCD", False, False, {"until": [], "max_gen_toks": 1}),
        (PAPER, "ABC", True, True, {"until": [], "max_gen_toks": 6, CONSTRAINT_KEY: {"token_mask": ["A", "B", "C"]}}),
        (STRICT, "ABCDE", True, False, {}),
        (STRICT, "ABC", False, True, {CONSTRAINT_KEY: {"choices": ["A", "B", "C"]}, "max_gen_toks": 1}),
        (
            STRICT,
            "ABC",
            True,
            True,
            {CONSTRAINT_KEY: {"regex": "(A(, B)?(, C)?|B(, C)?|C)"}, "max_gen_toks": 6},
        ),
    ],
)
def test_generation_settings(protocol, letters: str, multi: bool, constrained: bool, expected: dict) -> None:
    assert protocol.generation_kwargs(list(letters), multi, constrained) == expected


def test_strict_constraint_keeps_lm_evals_answer_prefix() -> None:
    kwargs = STRICT.generation_kwargs(["A", "B"], False, True, prefix=" ")
    assert kwargs[CONSTRAINT_KEY] == {"choices": [" A", " B"]}
    assert PAPER.generation_kwargs(["A", "B"], False, True, prefix=" ")[CONSTRAINT_KEY] == {"token_mask": ["A", "B"]}


@pytest.mark.parametrize(
    ("text", "paper", "strict"),
    [(" A, C", {"A", "C"}, {"A", "C"}), ("a;c.", {"A", "C"}, None), ("(A), (C)", {"A", "C"}, None), ("Z", set(), None)],
)
def test_each_protocol_parses_with_its_own_rule(text: str, paper: set[str], strict: set[str] | None) -> None:
    assert PAPER.parse(text, list("ABCDE"), True) == frozenset(paper)
    assert STRICT.parse(text, list("ABCDE"), True) == (None if strict is None else frozenset(strict))
