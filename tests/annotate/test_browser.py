"""The rating page in a real headless browser (Debian's chromium via Selenium), against a real server."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from lm_eval_medinj.annotate.server import rater_order
from tests.annotate.helpers import XSS_ANSWER, Served, journal_lines, make_folder, serving, start_server, stop
from tests.annotate.page import Page

pytestmark = pytest.mark.slow
TOKEN = "browser-test-token-0123456789"


def _keys() -> Any:
    from selenium.webdriver.common.keys import Keys

    return Keys


def _items(n: int) -> list[str]:
    return [f"it-{i:04d}" for i in range(1, n + 1)]


def test_rating_by_mouse_and_keyboard_back_skip_progress_and_reload(
    browser: Any, tmp_path: Path, screenshots: Path
) -> None:
    folder = make_folder(tmp_path / "ann", n=5, scale="likert5")
    order = rater_order(_items(5), 0, "alice")
    with serving(folder, "alice") as served:
        page = Page(browser).open(served.url)
        assert (page.text("rater"), page.text("progress"), page.text("position")) == (
            "alice",
            "0 / 5",
            "Réponse 1 sur 5",
        )
        assert page.item == order[0] and page.text("question").startswith(f"Question {int(order[0][3:])} :")
        page.check_context()
        page.screenshot(screenshots, "01-first-item")

        page.rate_and_wait(lambda: page.click(4), "1 / 5")  # mouse
        assert page.item == order[1] and page.pressed() == []
        page.check_context()
        comment = browser.find_element(page.by.ID, "comment")
        comment.send_keys("Incomplète 2")  # a digit typed in the comment does not rate
        assert page.text("progress") == "1 / 5"
        browser.find_element(page.by.TAG_NAME, "h1").click()  # leave the comment box
        page.rate_and_wait(lambda: page.key("2"), "2 / 5")  # keyboard
        assert page.item == order[2] and page.text("position") == "Réponse 3 sur 5"

        page.key(_keys().ARROW_RIGHT)  # skip
        page.wait(lambda: page.item == order[3])
        page.check_context()
        assert page.shown("context-section")  # this one has a context
        page.screenshot(screenshots, "02-item-with-context")
        page.key(_keys().ARROW_LEFT)
        page.key(_keys().ARROW_LEFT)  # back to a rated item: its rating and comment are shown
        page.wait(lambda: page.item == order[1])
        assert page.pressed() == ["2"] and comment.get_attribute("value") == "Incomplète 2"
        browser.find_element(page.by.ID, "back").click()
        page.wait(lambda: page.item == order[0])
        assert page.pressed() == ["4"]
        page.screenshot(screenshots, "03-back-to-a-rated-item")
        page.rate_and_wait(lambda: page.key("5"), "2 / 5")  # changed: still two rated, on to the first unrated
        assert page.item == order[2]

        browser.refresh()  # reopening resumes at the first unrated item
        page.wait(lambda: page.item == order[2])
        assert page.text("progress") == "2 / 5"

    lines = journal_lines(folder, "alice")
    assert [(x["item"], x["rating"], x["comment"]) for x in lines] == [
        (order[0], 4, ""),
        (order[1], 2, "Incomplète 2"),
        (order[0], 5, ""),
    ]


def test_nothing_is_lost_or_rated_twice_when_the_server_is_killed(
    browser: Any, tmp_path: Path, screenshots: Path
) -> None:
    folder = make_folder(tmp_path / "ann", n=4, scale="binary")
    order = rater_order(_items(4), 0, "bob")
    served = start_server(folder, "bob")
    page = Page(browser).open(served.url)
    page.rate_and_wait(lambda: page.key("1"), "1 / 4")
    page.rate_and_wait(lambda: page.click(0), "2 / 4")
    served.process.send_signal(signal.SIGKILL)
    served.process.wait()
    page.key("1")  # the server is gone: the page says the rating is not saved
    page.wait(lambda: "Non enregistrée : serveur injoignable" in page.text("status"))
    assert page.text("progress") == "2 / 4" and page.item == order[2]
    page.screenshot(screenshots, "04-server-killed")
    stop(served)

    restarted = start_server(folder, "bob", port=served.port)
    try:
        browser.refresh()
        page.wait(lambda: page.item == order[2])
        assert page.text("progress") == "2 / 4"
        page.rate_and_wait(lambda: page.key("1"), "3 / 4")
        page.rate_and_wait(lambda: page.key("0"), "4 / 4")
        page.wait(lambda: page.shown("done"))
        assert "Toutes les réponses sont évaluées" in page.text("done")
        page.screenshot(screenshots, "05-done")
    finally:
        stop(restarted)
    lines = journal_lines(folder, "bob")
    assert [(x["item"], x["rating"]) for x in lines] == list(zip(order, [1, 0, 1, 0], strict=True))
    assert Counter(x["item"] for x in lines).most_common(1)[0][1] == 1  # each item once


def test_two_raters_rate_the_same_folder_at_once(browser: Any, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "ann", n=4, scale="binary")
    with serving(folder, "alice") as alice, serving(folder, "bob") as bob:
        first = browser.current_window_handle
        page = Page(browser).open(alice.url)
        browser.switch_to.new_window("tab")
        second = browser.current_window_handle
        Page(browser).open(bob.url)
        for step in range(4):  # interleaved: alice, bob, alice, bob...
            for handle, value, progress in ((first, 1, f"{step + 1} / 4"), (second, 0, f"{step + 1} / 4")):
                browser.switch_to.window(handle)
                page.rate_and_wait(lambda v=value: page.key(str(v)), progress)
        browser.close()
        browser.switch_to.window(first)
    assert sorted(x["item"] for x in journal_lines(folder, "alice")) == _items(4)
    assert {x["rating"] for x in journal_lines(folder, "alice")} == {1}
    assert [x["item"] for x in journal_lines(folder, "bob")] == rater_order(_items(4), 0, "bob")
    assert {x["rating"] for x in journal_lines(folder, "bob")} == {0}


def test_a_model_answer_is_shown_as_text_never_run(browser: Any, tmp_path: Path, screenshots: Path) -> None:
    folder = make_folder(tmp_path / "ann", n=2, answers=[XSS_ANSWER, XSS_ANSWER])
    with serving(folder, "alice") as served:
        page = Page(browser).open(served.url)
        assert page.text("answer") == XSS_ANSWER  # visible, verbatim
        assert browser.find_elements(page.by.CSS_SELECTOR, "#answer *") == []  # no element was created from it
        assert browser.find_elements(page.by.CSS_SELECTOR, "img") == []
        assert browser.execute_script("return window.pwned") is None
        page.screenshot(screenshots, "06-untrusted-answer")
        page.rate_and_wait(lambda: page.key("1"), "1 / 2")
        assert browser.execute_script("return window.pwned") is None


def test_off_loopback_the_page_needs_the_token(browser: Any, tmp_path: Path, screenshots: Path) -> None:
    folder = make_folder(tmp_path / "ann", n=2)
    served: Served = start_server(folder, "carol", "--host", "0.0.0.0", "--token", TOKEN)
    try:
        browser.delete_all_cookies()
        browser.get(served.url)
        assert "Accès refusé" in browser.find_element("tag name", "body").text
        browser.get(served.url + "?token=not-the-token-000000")
        assert "Accès refusé" in browser.find_element("tag name", "body").text
        page = Page(browser).open(served.url + "?token=" + TOKEN)
        assert browser.current_url == served.url  # the token left the address bar (a cookie holds it)
        assert page.text("progress") == "0 / 2"
        page.rate_and_wait(lambda: page.key("0"), "1 / 2")
        page.screenshot(screenshots, "07-token-accepted")
    finally:
        browser.delete_all_cookies()
        stop(served)
    assert [x["rating"] for x in journal_lines(folder, "carol")] == [0]
