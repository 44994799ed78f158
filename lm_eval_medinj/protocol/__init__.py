"""The decoding protocols of the multiple-choice tasks: the one place that owns them.

A protocol is what the ``_gen`` (constrained) and ``_greedy`` (free) tasks do with a question:
the constraint a backend enforces, the token budget, the stop sequences and the parse of the
generated text. Choice scoring does not depend on it. Two exist:

- ``paper`` (the default): the authors' procedure, item for item (:mod:`.paper`): a token mask
  over the option letters, separators and end tokens; 1 new token (MCQU) or 2 x options (MCQ);
  stop at the end of sequence only; their parse.
- ``strict``: only a valid, sorted letter set then the end token (:mod:`.strict`), same budget,
  the ``_greedy`` task's own settings (32 tokens, stop at a newline), a strict parse.

Tasks, backends and benchmarks look a protocol up with :func:`protocol_named`; nothing outside
this package compares a protocol's name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lm_eval_medinj.errors import UsageError
from lm_eval_medinj.protocol import paper, strict
from lm_eval_medinj.protocol.constraints import CONSTRAINT_KEY, Constraint


def answer_token_budget(num_options: int, multi: bool) -> int:
    """The paper's max new tokens: 1 for MCQU, 2 x the number of options for MCQ."""
    return 2 * num_options if multi else 1


@dataclass(frozen=True)
class DecodingProtocol:
    """What a protocol does to an MCQ generation request, and how it reads the answer."""

    name: str
    summary: str
    _constraint: Callable[[Sequence[str], bool, str], Constraint]
    _parse: Callable[[str, Sequence[str], bool], frozenset[str] | None]
    # The free (``_greedy``) request takes the paper's budget and stops at the end of sequence;
    # otherwise it keeps the task's own generation settings.
    budgets_free_generation: bool

    def generation_kwargs(
        self, option_letters: Sequence[str], multi: bool, constrained: bool, prefix: str = ""
    ) -> dict[str, Any]:
        """Overrides of one question's generation kwargs: constraint, budget, stop sequences.

        ``prefix`` is what lm-eval puts between prompt and answer (see :func:`strict.answer_constraint`).
        """
        budget = answer_token_budget(len(option_letters), multi)
        kwargs: dict[str, Any] = {"until": [], "max_gen_toks": budget} if self.budgets_free_generation else {}
        if constrained:
            kwargs[CONSTRAINT_KEY] = self._constraint(option_letters, multi, prefix)
            kwargs["max_gen_toks"] = budget
        return kwargs

    def parse(self, text: str, option_letters: Sequence[str], multi: bool) -> frozenset[str] | None:
        """The predicted letter set of a generated answer (empty or ``None``: wrong)."""
        return self._parse(text, option_letters, multi)


PAPER = DecodingProtocol(
    name="paper",
    summary="the authors' decoding and parse",
    _constraint=lambda letters, multi, prefix: paper.token_mask_constraint(letters),
    _parse=paper.parse_authors_answer,
    budgets_free_generation=True,
)
STRICT = DecodingProtocol(
    name="strict",
    summary="sorted letter sets under a grammar, strict parse",
    _constraint=strict.answer_constraint,
    _parse=lambda text, letters, multi: strict.parse_answer(text, letters),
    budgets_free_generation=False,
)
PROTOCOLS: dict[str, DecodingProtocol] = {protocol.name: protocol for protocol in (PAPER, STRICT)}
DEFAULT_PROTOCOL = PAPER


class UnknownProtocolError(UsageError):
    """A protocol name that is none of :data:`PROTOCOLS`."""


def protocol_named(name: str | None) -> DecodingProtocol:
    """The protocol of that name; ``None`` is the default (the paper's)."""
    if name is None:
        return DEFAULT_PROTOCOL
    try:
        return PROTOCOLS[str(name)]
    except KeyError:
        raise UnknownProtocolError(
            f"--metadata 'protocol' must be one of {', '.join(PROTOCOLS)}; got {name!r}"
        ) from None
