"""The rating page as a physician sees it, through Selenium (imported lazily: browser tests skip without it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class Page:
    """The rating page as the physician sees it."""

    def __init__(self, driver: Any) -> None:
        from selenium.webdriver.common.by import By

        self.driver, self.by = driver, By

    def open(self, url: str) -> Page:
        self.driver.get(url)
        self.wait(lambda: self.text("progress") != "… / …" or self.text("status"))
        return self

    def wait(self, condition: Any, timeout: float = 15) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.driver, timeout).until(lambda _: condition())

    def text(self, element_id: str) -> str:
        return self.driver.find_element(self.by.ID, element_id).text

    def shown(self, element_id: str) -> bool:
        return self.driver.find_element(self.by.ID, element_id).is_displayed()

    @property
    def item(self) -> str:
        return self.text("item-id")

    def click(self, value: int) -> None:
        self.driver.find_element(self.by.CSS_SELECTOR, f'#scale button[data-value="{value}"]').click()

    def key(self, key: str) -> None:
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(self.driver).send_keys(key).perform()

    def rate_and_wait(self, rate: Any, progress: str) -> None:
        before = self.item
        rate()
        self.wait(lambda: self.text("progress") == progress and (self.item != before or self.shown("done")))

    def check_context(self) -> None:
        """The clinical context is shown exactly when the item has one (make_folder: odd-numbered items)."""
        has_context = int(self.item[3:]) % 2 == 1
        assert self.shown("context-section") == has_context
        if has_context:
            assert self.text("context") == "Patient de 62 ans, diabétique."

    def pressed(self) -> list[str]:
        buttons = self.driver.find_elements(self.by.CSS_SELECTOR, '#scale button[aria-pressed="true"]')
        return [b.get_attribute("data-value") for b in buttons]

    def screenshot(self, folder: Path, name: str) -> None:
        self.driver.save_screenshot(str(folder / f"{name}.png"))
