"""POST JSON to a server that may be busy or flaky: retries with exponential backoff and full jitter.

Retried (``tenacity``): HTTP 408, 425, 429 and 5xx (but 501 and 505, which no retry changes), a
refused or broken connection (also while the body is read), and a timeout. The wait before retry
``n`` is drawn uniformly from ``[0, min(backoff_max_s, backoff_s * 2 ** (n - 1))]``; a
``Retry-After`` header (seconds or an HTTP date) makes it at least that long, up to
``retry_after_max_s``. Every other answer (2xx, and a 4xx that a retry cannot change) is returned
to the caller, which decides what it means. Each retry is logged as a warning.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_when_event_set,
    wait_random_exponential,
)

from lm_eval_medinj.errors import one_line

log = logging.getLogger(__name__)


def retryable_status(status: int) -> bool:
    """Statuses a later attempt may not get: timeouts, rate limits, server errors."""
    return status in (408, 425, 429) or (500 <= status <= 599 and status not in (501, 505))


class RetryableStatus(Exception):
    """A response with a :func:`retryable_status`."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code} {response.reason}")
        self.response = response


class RetriesExhausted(Exception):
    """Every attempt failed with a transient error; the message says the last one and how many attempts."""


TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError, RetryableStatus)


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait for an answer, and how often and how patiently to try again."""

    max_retries: int = 5
    timeout_s: float = 120.0  # to connect, and of silence while the answer is awaited (per attempt)
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0
    retry_after_max_s: float = 300.0


def retry_after_s(value: str | None) -> float | None:
    """Seconds asked by a ``Retry-After`` header (delay or HTTP date); ``None`` when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def describe(error: BaseException, timeout_s: float) -> str:
    """One line for a transient failure."""
    if isinstance(error, RetryableStatus):
        return f"{error} ({one_line(error.response.text, 120) or 'empty body'})"
    if isinstance(error, requests.ConnectTimeout):
        return f"could not connect within {timeout_s:g} s (--timeout)"
    if isinstance(error, requests.Timeout):
        return f"no answer within {timeout_s:g} s (--timeout)"
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "the connection broke while the answer was read"
    return f"connection failed ({one_line(str(error), 120)})"


class JsonPoster:
    """POSTs JSON bodies under ``base_url`` with a :class:`RetryPolicy`; one HTTP session per thread."""

    def __init__(self, base_url: str, headers: Mapping[str, str], policy: RetryPolicy, name: str) -> None:
        self.base_url, self.headers, self.policy, self.name = base_url.rstrip("/"), dict(headers), policy, name
        self._local = threading.local()
        self._backoff = wait_random_exponential(multiplier=policy.backoff_s, max=policy.backoff_max_s)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers.update(self.headers)
        return session

    def post(self, route: str, body: Mapping[str, Any], cancel: threading.Event | None = None) -> requests.Response:
        """The server's answer: any status a retry cannot change. Raises :class:`RetriesExhausted` when
        every attempt failed transiently, or as soon as ``cancel`` is set."""
        cancel = cancel or threading.Event()
        retrying = Retrying(
            stop=stop_after_attempt(self.policy.max_retries + 1) | stop_when_event_set(cancel),
            wait=self._wait,
            retry=retry_if_exception_type(TRANSIENT),
            sleep=cancel.wait,  # a cancelled run does not sleep out its backoff
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(self._attempt, route, body, cancel)
        except TRANSIENT as error:
            attempts = retrying.statistics.get("attempt_number", 1)
            raise RetriesExhausted(f"{describe(error, self.policy.timeout_s)} ({attempts} attempts)") from error

    def _attempt(self, route: str, body: Mapping[str, Any], cancel: threading.Event) -> requests.Response:
        if cancel.is_set():
            raise RetriesExhausted("cancelled")
        response = self._session().post(f"{self.base_url}/{route}", json=body, timeout=self.policy.timeout_s)
        if retryable_status(response.status_code):
            raise RetryableStatus(response)
        return response

    def _wait(self, state: RetryCallState) -> float:
        backoff = self._backoff(state)
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, RetryableStatus):
            asked = retry_after_s(error.response.headers.get("Retry-After"))
            if asked is not None:
                return max(backoff, min(asked, self.policy.retry_after_max_s))
        return backoff

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "%s: %s; retry %d of %d in %.1f s",
            self.name,
            describe(error, self.policy.timeout_s) if error else "failed",
            state.attempt_number,
            self.policy.max_retries,
            wait,
        )
