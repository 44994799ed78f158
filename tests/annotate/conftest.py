"""Fixtures of the human-review tests: a headless Debian chromium driven by Selenium, a screenshot folder."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL = "apt-get install -y chromium chromium-driver"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless chromium through chromedriver (both Debian's; Selenium Manager never runs). Skips without them."""
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)) and not shutil.which(Path(binary).name):
            pytest.skip(f"{binary} not found: the rating page's browser tests need Debian's chromium ({INSTALL})")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # belt and braces: Selenium Manager must not reach the network
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM if os.path.isfile(CHROMIUM) else shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1100,1000", "--lang=fr-FR", "--no-first-run", "--disable-extensions"):  # fmt: skip
        options.add_argument(argument)
    driver_path = CHROMEDRIVER if os.path.isfile(CHROMEDRIVER) else shutil.which("chromedriver")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser tests save screenshots: $MEDINJ_SCREENSHOTS, else a pytest temporary folder (printed)."""
    folder = Path(os.environ.get("MEDINJ_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nrating page screenshots: {folder}")
    return folder
