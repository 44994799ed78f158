"""The rating server over real HTTP on 127.0.0.1: the API, the journal, refusals, the access token."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lm_eval_medinj.annotate.server import rater_order
from tests.annotate.helpers import (
    REPO_ROOT,
    Served,
    http,
    journal_lines,
    make_folder,
    serve_command,
    serving,
    start_server,
    stop,
)

TOKEN = "s3cret-token-for-the-test-0123"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_folder(tmp_path_factory.mktemp("served") / "ann", n=5, scale="likert5")


@pytest.fixture(scope="module")
def alice(folder: Path) -> Iterator[Served]:
    with serving(folder, "alice") as served:
        yield served


def test_the_session_gives_the_raters_own_order_and_the_items_without_their_model(alice: Served, folder: Path) -> None:
    status, headers, _ = http("GET", alice.url)
    assert status == 200 and "script-src 'self'" in headers["content-security-policy"]
    status, _, body = http("GET", alice.url + "api/session")
    session = json.loads(body)
    items = [f"it-{i:04d}" for i in range(1, 6)]
    assert session["rater"] == "alice" and session["scale"]["values"] == [1, 2, 3, 4, 5]
    assert session["order"] == rater_order(items, 0, "alice") != rater_order(items, 0, "bob")
    assert sorted(session["order"]) == items and session["order"] != items
    assert set(session["items"]["it-0001"]) == {"question", "context", "reference", "answer"}


def test_a_rating_is_on_disk_when_the_server_answers(alice: Served, folder: Path) -> None:
    status, _, body = http("POST", alice.url + "api/ratings", {"item": "it-0003", "rating": 4, "comment": "précise"})
    assert status == 200 and '"rated":1' in body.replace(" ", "")
    assert journal_lines(folder, "alice")[-1] | {"at": None} == {
        "item": "it-0003",
        "rating": 4,
        "comment": "précise",
        "at": None,
    }


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ({"item": "it-0001", "rating": 6}, "application/json", 400),
        ({"item": "it-0001", "rating": 0}, "application/json", 400),
        ({"item": "it-0001", "rating": "3"}, "application/json", 400),
        ({"item": "it-0001", "rating": 3.5}, "application/json", 400),
        ({"item": "it-0099", "rating": 3}, "application/json", 400),
        ({"item": "it-0001", "rating": 3, "model": "A"}, "application/json", 400),
        (b"not json", "application/json", 400),
        ({"item": "it-0001", "rating": 3}, "text/plain", 415),  # what a cross-site form could send
    ],
)
def test_a_bad_rating_is_refused_and_not_written(
    alice: Served, folder: Path, body: object, content_type: str, status: int
) -> None:
    before = journal_lines(folder, "alice")
    got, _, text = http("POST", alice.url + "api/ratings", body, {"Content-Type": content_type})
    assert got == status, text
    assert journal_lines(folder, "alice") == before


def test_a_foreign_host_name_is_refused_on_loopback(alice: Served) -> None:
    assert http("GET", alice.url + "api/session", headers={"Host": "attacker.example"})[0] == 400


def test_a_second_server_for_the_same_rater_refuses_to_start(alice: Served, folder: Path) -> None:
    with pytest.raises(RuntimeError, match="another process is recording this rater's ratings"):
        start_server(folder, "alice")


def test_off_loopback_every_request_needs_the_token(folder: Path) -> None:
    served = start_server(folder, "carol", "--host", "0.0.0.0", "--token", TOKEN)
    try:
        url = served.url
        for path in ("", "api/session", "static/page.js"):
            assert http("GET", url + path)[0] == 401
        assert http("GET", url + "api/session", headers={"Authorization": "Bearer wrong-token-wrong-token"})[0] == 401
        assert http("GET", url + "?token=wrong-token-wrong-token")[0] == 401
        assert http("POST", url + "api/ratings", {"item": "it-0001", "rating": 3})[0] == 401
        assert journal_lines(folder, "carol") == []

        status, headers, _ = http("GET", url + "?token=" + TOKEN)
        assert status == 303 and headers["location"] == "/"  # the token leaves the address bar
        cookie = headers["set-cookie"].split(";")[0]
        assert "httponly" in headers["set-cookie"].lower() and "samesite=strict" in headers["set-cookie"].lower()
        assert http("GET", url + "api/session", headers={"Cookie": cookie})[0] == 200
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert http("POST", url + "api/ratings", {"item": "it-0001", "rating": 3}, bearer)[0] == 200
    finally:
        output = stop(served)
    assert TOKEN not in output
    assert not [p for p in folder.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]


def test_the_token_is_read_from_the_environment_and_never_printed(folder: Path) -> None:
    served = start_server(folder, "dave", "--host", "0.0.0.0", token_env=TOKEN)
    try:
        assert http("GET", served.url + "api/session")[0] == 401
        assert http("GET", served.url + "api/session", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
        assert http("GET", served.url + "?token=" + TOKEN)[0] == 303
    finally:
        output = stop(served)
    assert "open http://0.0.0.0:" in output and "?token=<token>" in output and TOKEN not in output


def test_an_address_in_use_is_one_line_before_anything_is_served(alice: Served, folder: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = serve_command(folder, "erin", alice.port)
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"medinj annotate: error: cannot listen on 127.0.0.1:{alice.port}: Address already in use\n"
