"""How a judgement fails, and what a run does about it.

- :class:`ItemNotJudged`: this item could not be judged (the server kept failing through every retry,
  or the item alone does not fit in memory). The run stores everything else, lists the item at the
  end and exits non-zero; a re-run judges only what is missing.
- :class:`JudgeResponseError`: the judge answered something that is not a judgement (a body that is
  not JSON, no ``choices``, no log-probabilities, a verdict probability that is not finite, an HTTP
  error no retry can fix). Every later item would get the same, so the run stops at once.
- :class:`JudgeFailedError`: the one-line error that ends a run which left items unjudged.

Every message is one line and names the judge; the scoring adds the item (file, row, record id).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class JudgeError(Exception):
    """A judgement that failed."""


class ItemNotJudged(JudgeError):
    """This item failed (after the retries); the others go on."""


class JudgeResponseError(JudgeError):
    """The judge's answer is not a judgement: the run stops."""


@dataclass(frozen=True)
class ItemFailure:
    """An item left unjudged: where it is, and why."""

    name: str
    reason: str

    def line(self) -> str:
        return f"{self.name}: {self.reason}"


class JudgeFailedError(JudgeError):
    """Items were left unjudged; what was judged is stored."""

    def __init__(self, failures: Sequence[ItemFailure], detail: str = "") -> None:
        self.failures = tuple(failures)
        first = self.failures[0].line() if self.failures else ""
        super().__init__(
            f"{len(self.failures)} item(s) not judged{detail}; what was judged is stored in the cache, "
            f"a re-run judges only the rest (first: {first})"
        )
