"""Test helpers for human review: annotation folders, lm-eval-shaped run folders, a served rating page."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_eval_medinj.annotate.folder import RATINGS_DIR, write_folder
from lm_eval_medinj.annotate.records import FORMAT, BlindItem, KeyEntry, Scale, Study

REPO_ROOT = Path(__file__).resolve().parents[2]
XSS_ANSWER = '<script>window.pwned = 1</script> et <img src=x onerror="window.pwned = 2"> : réponse'


def make_folder(
    out: Path,
    n: int = 6,
    scale: str = "binary",
    models: Sequence[str] = ("A", "B"),
    answers: Sequence[str] | None = None,
    seed: int = 0,
) -> Path:
    """An annotation folder of ``n`` items, item i from model ``models[i % len(models)]``."""
    study = Study(
        format=FORMAT,
        scale=Scale.of(scale),
        seed=seed,
        n=n,
        stratify=("model",),
        models=tuple(models),
        created_at="2026-01-01T00:00:00+00:00",
    )
    items, key = [], []
    for i in range(n):
        name = f"it-{i + 1:04d}"
        answer = answers[i] if answers else f"Réponse numéro {i + 1} du modèle."
        context = "Patient de 62 ans, diabétique." if i % 2 == 0 else None
        items.append(
            BlindItem(
                item=name,
                question=f"Question {i + 1} : quelle est la conduite à tenir ?",
                context=context,
                reference=f"Référence {i + 1}.",
                answer=answer,
            )
        )
        key.append(
            KeyEntry(
                item=name,
                model=models[i % len(models)],
                run=f"out/{models[i % len(models)]}",
                task="medinj_oeq_native",
                doc_id=i // len(models),
                id=f"q{i // len(models)}",
                uid=f"medinjection/native-oeq/q{i // len(models)}",
                judge=None,
            )
        )
    write_folder(out, study, items, key)
    return out


def write_ratings(folder: Path, rater: str, ratings: dict[str, int], comments: dict[str, str] | None = None) -> Path:
    """A rater's journal with one line per rating, as the server writes it."""
    path = folder / RATINGS_DIR / f"{rater}.jsonl"
    with path.open("a", encoding="utf-8") as handle:
        for item, rating in ratings.items():
            row = {
                "item": item,
                "rating": rating,
                "comment": (comments or {}).get(item, ""),
                "at": "2026-01-02T10:00:00",
            }
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def journal_lines(folder: Path, rater: str) -> list[dict[str, Any]]:
    path = folder / RATINGS_DIR / f"{rater}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def write_run(
    run: Path,
    label: str,
    n_docs: int,
    task: str = "medinj_oeq_native",
    judge_p: Sequence[float] | None = None,
    judge_slug: str = "hf-judge",
) -> Path:
    """An lm-eval-shaped output folder: ``samples_<task>_<date>.jsonl`` (and judge/score.py rows when ``judge_p``)."""
    folder = run / "model__name"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{task}_2026-01-01T00-00-00.000000"
    judge_rows = []
    with (folder / f"samples_{stem}.jsonl").open("w", encoding="utf-8") as handle:
        for doc_id in range(n_docs):
            doc = {
                "id": f"q{doc_id}",
                "messages": [
                    {"role": "system", "content": "Tu es un assistant médical."},
                    {"role": "user", "content": f"Question {doc_id} ?"},
                    {"role": "assistant", "content": f"Référence {doc_id}."},
                ],
                "context": "",
            }
            answer = f"{label} répond {doc_id}"
            handle.write(json.dumps({"doc_id": doc_id, "doc": doc, "target": "", "filtered_resps": [answer]}) + "\n")
            if judge_p is not None:
                p = judge_p[doc_id]
                judge_rows.append(
                    {"id": f"q{doc_id}", "candidate": answer, "p_equivalent": p, "verdict": int(p >= 0.5)}
                )
    if judge_p is not None:
        with (folder / f"judge_{judge_slug}_{stem}.jsonl").open("w", encoding="utf-8") as handle:
            for row in judge_rows:
                handle.write(json.dumps(row) + "\n")
    return run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Served:
    """A rating page served by ``medinj annotate serve`` in a subprocess."""

    process: subprocess.Popen[str]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


def serve_command(folder: Path, rater: str, port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "lm_eval_medinj.annotate.cli", "serve", str(folder), "--rater", rater,
            "--port", str(port), *extra]  # fmt: skip


def start_server(
    folder: Path, rater: str, *extra: str, port: int | None = None, token_env: str | None = None, timeout: float = 30
) -> Served:
    """Start the server (``token_env``: in $MEDINJ_ANNOTATE_TOKEN) and wait until it answers on 127.0.0.1."""
    port = port or free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("MEDINJ_ANNOTATE_TOKEN", None)
    if token_env is not None:
        env["MEDINJ_ANNOTATE_TOKEN"] = token_env
    process = subprocess.Popen(
        serve_command(folder, rater, port, *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {process.stdout.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return Served(process, port)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


def stop(served: Served) -> str:
    """Stop the server (SIGTERM, as Ctrl-C would) and return what it printed."""
    if served.process.poll() is None:
        served.process.terminate()
        try:
            served.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            served.process.kill()
            served.process.wait()
    assert served.process.stdout is not None
    output = served.process.stdout.read()
    served.process.stdout.close()
    return output


@contextmanager
def serving(folder: Path, rater: str, *extra: str) -> Iterator[Served]:
    served = start_server(folder, rater, *extra)
    try:
        yield served
    finally:
        stop(served)


def http(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    """One request without following redirects: status, headers, text."""
    data = json.dumps(body).encode("utf-8") if body is not None and not isinstance(body, bytes) else body
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if body is not None and "Content-Type" not in (headers or {}):
        request.add_header("Content-Type", "application/json")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode("utf-8")
