"""Reading lm-eval samples lines by their two ends: the result equals parsing the whole line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lm_eval_medinj.lm_eval_outputs import OutputError
from lm_eval_medinj.study.samples import SampleReader

# Strings that look like the separators the reader searches for, quotes, escapes and accents.
TRICKY = ['", "target": "', '"target_hash": "', ', "target_hash": "x"', '\\"', "\\", "\n", "é à ç", '{"doc": 1}', "}"]
text = st.one_of(st.sampled_from(TRICKY), st.text(max_size=30))
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["target", "doc", "x"]) | text, inner, max_size=3)
    ),
    max_leaves=8,
)


def lm_eval_line(doc: dict[str, Any], bulky: Any, metrics: dict[str, Any]) -> bytes:
    """A samples line as lm-eval 0.4.13 writes it (evaluator.py + evaluation_tracker.py: key order, dumps)."""
    sample = {
        "doc_id": 3,
        "doc": doc,
        "target": "B",
        "arguments": {"gen_args_0": {"arg_0": bulky, "arg_1": " B"}},
        "resps": [[[-1.5, False]]],
        "filtered_resps": [[-1.5, False]],
        "filter": "none",
        "metrics": list(metrics),
        "doc_hash": "a" * 64,
        "prompt_hash": "b" * 64,
        "target_hash": "c" * 64,
    }
    sample.update(metrics)
    return (json.dumps(sample, ensure_ascii=False) + "\n").encode()


def identity(doc: dict[str, Any], where: str) -> dict[str, Any]:
    return doc


@settings(max_examples=150, deadline=None)
@given(
    doc=st.dictionaries(
        st.sampled_from(["id", "task", "target", "question", "messages", "cluster"]) | text, json_value
    ),
    bulky=json_value,
    em=st.sampled_from([0.0, 1.0, 0, 1]),
    hamming=st.none() | st.floats(0, 1),
)
def test_the_two_ends_equal_the_whole_line_parsed(doc: dict, bulky: Any, em: float, hamming: float | None) -> None:
    metrics = {"em": em} if hamming is None else {"em": em, "hamming": hamming}
    line = lm_eval_line(doc, bulky, metrics)
    parsed_doc, values = SampleReader(identity).parts(line, "f:1")
    whole = json.loads(line)
    assert parsed_doc == whole["doc"]
    assert {name: values[name] for name in metrics} == {name: whole[name] for name in metrics}


def test_the_fast_path_is_taken_for_lm_eval_lines_and_documents_are_read_once() -> None:
    calls = []

    def counting(doc: dict[str, Any], where: str) -> str:
        calls.append(where)
        return doc["id"]

    reader = SampleReader(counting)
    line = lm_eval_line({"id": "q1", "task": "mcq"}, "x" * 10_000, {"em": 1.0})
    assert reader.parts(line, "a:1") == ("q1", {"em": 1.0})  # only the metric values: the line was not parsed whole
    assert reader.parts(line, "b:1") == ("q1", {"em": 1.0})
    assert calls == ["a:1"]
    other_layout = json.dumps({"doc": {"id": "q2", "task": "mcq"}, "em": 0.0}).encode()
    assert reader.parts(other_layout, "c:1") == ("q2", {"doc": {"id": "q2", "task": "mcq"}, "em": 0.0})


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b'{"doc_id": 0, "doc": {"id": "q1"}, "target": "B", "arguments": {"gen_args_0"', "invalid JSON"),
        (b"[1, 2]\n", "a sample must be a JSON object"),
        (b"not json\n", "invalid JSON"),
    ],
)
def test_a_damaged_line_is_an_error_naming_file_and_line(tmp_path: Path, line: bytes, message: str) -> None:
    path = tmp_path / "samples_medinj_mcq_all_2026.jsonl"
    good = lm_eval_line({"id": "q0", "task": "mcq"}, "prompt", {"em": 1.0})
    path.write_bytes(good + b"\n" + line)
    reader = SampleReader(identity)
    with pytest.raises(OutputError, match=rf"^{path}:3: {message}"):
        list(reader.read(path))
