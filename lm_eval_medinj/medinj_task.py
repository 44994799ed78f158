"""The lm-eval task class of every MedInjection-FR task: multiple choice (choice scoring,
``_gen``, ``_greedy``) and, through :class:`lm_eval_medinj.oeq.task.OEQTask`, open questions.

- **Prompt.** A document whose record has a conversation is prompted with its non-assistant
  turns, verbatim: under a chat template as separate turns (a system turn stays a system
  turn), few-shot examples as user / assistant turns after it; without a template, joined by
  blank lines (``doc_to_text``), with a warning, once, since the paper always applies one.
- **Choice scoring** scores each candidate followed by its end: the end of the assistant turn
  under a chat template, a newline otherwise. The prediction is then the most probable
  complete answer, the exact optimum of constrained decoding.
- **Protocol** ``paper`` (default): free generation gets the authors' budget (1 token on
  single-answer, 2 x options on multi-answer questions) and stops at the end of sequence
  only. ``strict`` keeps the YAML's generation settings.
- **Open questions** take the YAML's settings, the authors' (512 new tokens, stop at the end of
  sequence); an answer to the canonical prompt also stops where another prompt section starts.
"""

from __future__ import annotations

import logging
from typing import Any

from lm_eval.api.instance import Instance
from lm_eval.api.task import ConfigurableTask

from lm_eval_medinj.chat import backend_turn_end
from lm_eval_medinj.constraints import answer_token_budget
from lm_eval_medinj.lm_tasks import doc_prompt_turns, fewshot_answer
from lm_eval_medinj.prompts import CANONICAL_SECTION_STARTS

logger = logging.getLogger(__name__)
# Without a chat template, a scored answer ends where the canonical format ends a line.
PLAIN_ANSWER_END = "\n"
_warned_without_template = False


class MedinjTask(ConfigurableTask):
    """A MedInjection-FR / FrenchMedMCQA task."""

    def __init__(self, config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        # lm-eval passes the YAML's own ``class`` key along, which TaskConfig does not know.
        super().__init__(config={key: value for key, value in (config or {}).items() if key != "class"}, **kwargs)
        self._answer_ends: dict[int, str] = {}

    def fewshot_context(
        self,
        doc: dict[str, Any],
        num_fewshot: int,
        system_instruction: str | None = None,
        apply_chat_template: bool = False,
        fewshot_as_multiturn: bool = False,
        chat_template: Any = None,
        gen_prefix: str | None = None,
    ) -> str:
        if doc["prompt_source"] == "conversation" and not apply_chat_template:
            _warn_without_template()
        if doc["prompt_source"] != "conversation" or not (apply_chat_template and chat_template):
            return super().fewshot_context(
                doc, num_fewshot, system_instruction, apply_chat_template, fewshot_as_multiturn, chat_template,
                gen_prefix,
            )  # fmt: skip
        if gen_prefix:
            raise ValueError(
                f"record {doc['id']!r}: gen_prefix would start the assistant turn, which the authors' "
                'prompts never do; drop it, or use --metadata \'{"prompt": "canonical"}\''
            )
        turns = doc_prompt_turns(doc)
        system = [turn for turn in turns[:1] if turn["role"] == "system"]
        rest = turns[len(system) :]
        if system_instruction:
            if system:
                raise ValueError(
                    f"record {doc['id']!r} has its own system turn; --system_instruction would replace the "
                    "prompt the authors evaluated. Drop --system_instruction, or use "
                    '--metadata \'{"prompt": "canonical"}\''
                )
            system = [{"role": "system", "content": system_instruction}]
        examples: list[dict[str, str]] = []
        if num_fewshot > 0:
            eval_doc = doc if self.fewshot_cfg.split == self.config.test_split else None
            for example in self.sampler.sample(n=num_fewshot, eval_doc=eval_doc):
                examples += _user_turns(example, self.doc_to_text)
                examples.append({"role": "assistant", "content": fewshot_answer(example)})
        return chat_template(system + examples + rest, add_generation_prompt=True)

    def construct_requests(self, doc: dict[str, Any], ctx: Any, **kwargs: Any) -> list[Instance] | Instance:
        chat_template = kwargs.get("chat_template") if kwargs.get("apply_chat_template") else None
        requests = super().construct_requests(doc, ctx, **kwargs)
        if self.OUTPUT_TYPE == "multiple_choice":
            end = self._answer_end(chat_template)
            for request in requests:
                request.arguments = (request.arguments[0], request.arguments[1] + end)
        elif self.OUTPUT_TYPE == "generate_until":
            gen_kwargs = requests.arguments[1]
            if doc["task"] == "oeq":
                if doc["prompt_source"] == "canonical":
                    until = list(gen_kwargs.get("until") or [])
                    gen_kwargs["until"] = until + [stop for stop in CANONICAL_SECTION_STARTS if stop not in until]
            elif doc["protocol"] == "paper":
                gen_kwargs["until"] = []
                gen_kwargs["max_gen_toks"] = answer_token_budget(len(doc["option_letters"]), doc["task"] == "mcq")
        return requests

    def _answer_end(self, chat_template: Any) -> str:
        if chat_template is None:
            return PLAIN_ANSWER_END
        key = id(getattr(chat_template, "__self__", chat_template))
        if key not in self._answer_ends:
            self._answer_ends[key] = backend_turn_end(chat_template)
        return self._answer_ends[key]


def _user_turns(doc: dict[str, Any], doc_to_text: Any) -> list[dict[str, str]]:
    """A few-shot example's question: its own user turns, or its canonical prompt."""
    if doc["prompt_source"] == "conversation":
        return [turn for turn in doc_prompt_turns(doc) if turn["role"] != "system"]
    return [{"role": "user", "content": doc_to_text(doc)}]


def _warn_without_template() -> None:
    global _warned_without_template
    if not _warned_without_template:
        _warned_without_template = True
        logger.warning(
            "MedInjection-FR prompts are each record's own conversation, and the paper always renders it "
            "through the model's chat template. Without --apply_chat_template its turns are joined as plain "
            "text, a setting the paper never evaluated: pass --apply_chat_template to compare with Table 1."
        )
