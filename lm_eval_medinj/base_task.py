"""What every MedInjection-FR task shares: its documents, its prompt, and its lm-eval task class.

The YAML tasks name these hooks (``!function lm_eval_medinj.base_task.*``). Each task's
``dataset_kwargs`` names the benchmark, the task type and the provenances; the user's
``--metadata`` adds ``data_dir``, ``skip_invalid``, ``revision``, ``protocol`` and ``prompt``
(schema: :mod:`lm_eval_medinj.metadata`). lm-eval passes both to :func:`load_dataset`, which
writes the protocol and the prompt source into every document, so the task class, the scoring
hooks and the logged samples all read them there.

:class:`MedinjTask`:

- **Prompt.** A document whose record has a conversation is prompted with its non-assistant
  turns, verbatim: under a chat template as separate turns (a system turn stays a system
  turn), few-shot examples as user / assistant turns after it; without a template, joined by
  blank lines (:func:`doc_to_text`), with a warning, once, since the paper always applies one.
- **Choice scoring** scores each candidate followed by its end: the end of the assistant turn
  under a chat template, a newline otherwise. The prediction is then the most probable
  complete answer, the exact optimum of constrained decoding.
- **Generation** of a multiple-choice answer takes its protocol's settings
  (:meth:`lm_eval_medinj.protocol.DecodingProtocol.generation_kwargs`): the paper's budget and
  stop at the end of sequence, or the YAML's settings under ``strict``.
- **Open questions** take the YAML's settings, the authors' (512 new tokens, stop at the end of
  sequence); an answer to the canonical prompt also stops where another prompt section starts.
"""

from __future__ import annotations

import logging
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar

import datasets
from lm_eval.api.instance import Instance
from lm_eval.api.task import ConfigurableTask

from lm_eval_medinj.benchmarks import benchmark_named
from lm_eval_medinj.benchmarks.layout import resolve_data_dir, resolve_skip_invalid
from lm_eval_medinj.chat import backend_turn_end, plain_text
from lm_eval_medinj.metadata import check_metadata
from lm_eval_medinj.prompts import CANONICAL_SECTION_STARTS, prompt_source_named, render_prompt, render_target
from lm_eval_medinj.protocol import protocol_named
from lm_eval_medinj.records import MedRecord, Provenance, TaskType

logger = logging.getLogger(__name__)
SPLITS = ("test", "validation")
VERSION_KEY = "lm_eval_medinj_version"
# Without a chat template, a scored answer ends where the canonical format ends a line.
PLAIN_ANSWER_END = "\n"
_warned_without_template = False


@cache
def package_version() -> str:
    """This package's installed version (``unknown`` from a bare checkout on ``PYTHONPATH``)."""
    try:
        return version("lm-eval-medinj")
    except PackageNotFoundError:
        return "unknown"


def load_dataset(
    benchmark: str,
    task: TaskType,
    provenances: list[Provenance] | None = None,
    data_dir: str | None = None,
    skip_invalid: bool | str | None = None,
    revision: str | dict[str, str] | None = None,
    protocol: str | None = None,
    prompt: str | None = None,
    **_metadata: Any,
) -> datasets.DatasetDict:
    """The test and validation documents of one task, from the Hub or ``data_dir``.

    ``_metadata`` is the rest of the task's metadata (lm-eval passes it all): a misspelt key of
    this package stops here, naming the known ones (:mod:`lm_eval_medinj.metadata`).
    """
    check_metadata(
        {"data_dir": data_dir, "skip_invalid": skip_invalid, "revision": revision, "protocol": protocol,
         "prompt": prompt, **_metadata}
    )  # fmt: skip
    protocol_name = protocol_named(protocol).name
    source = prompt_source_named(prompt)
    root = resolve_data_dir(data_dir)
    skip = resolve_skip_invalid(skip_invalid)
    loader = benchmark_named(benchmark)
    splits = {split: loader.load(task, split, root, skip, provenances, revision) for split in SPLITS}
    return datasets.DatasetDict(
        {
            split: datasets.Dataset.from_list([_document(r, protocol_name, source) for r in records])
            for split, records in splits.items()
        }
    )


def _document(record: MedRecord, protocol: str, prompt: str) -> dict[str, Any]:
    source = "conversation" if prompt == "conversation" and record.messages else "canonical"
    if source == "canonical":
        render_prompt(record)  # fails now, naming the record, if it cannot be rendered
    return {**record.to_doc(), "protocol": protocol, "prompt_source": source}


def doc_prompt_turns(doc: dict[str, Any]) -> list[dict[str, str]]:
    """The document's non-assistant turns, verbatim."""
    return MedRecord.from_doc(doc).prompt_turns


def doc_to_text(doc: dict[str, Any]) -> str:
    """The prompt as plain text: the record's turns joined by blank lines, or the canonical prompt."""
    if doc.get("prompt_source") == "conversation":
        return plain_text(doc_prompt_turns(doc))
    return render_prompt(MedRecord.from_doc(doc))


def doc_to_target(doc: dict[str, Any]) -> str:
    """The gold answer as trained: "A", "A, C", or the reference text of an open question."""
    return render_target(MedRecord.from_doc(doc))


def fewshot_answer(doc: dict[str, Any]) -> str:
    """A few-shot example's answer: its own first assistant turn, else the canonical target."""
    if doc.get("prompt_source") == "conversation":
        answers = [turn["content"] for turn in doc["messages"] if turn["role"] == "assistant"]
        if answers:
            return answers[0]
    return doc_to_target(doc)


class MedinjTask(ConfigurableTask):
    """A MedInjection-FR / FrenchMedMCQA / MediQAl task."""

    # Whether the task's generation requests carry their protocol's constraint (the _gen tasks).
    CONSTRAINED: ClassVar[bool] = False

    def __init__(self, config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        # lm-eval passes the YAML's own ``class`` key along, which TaskConfig does not know.
        config = {key: value for key, value in (config or {}).items() if key != "class"}
        # lm-eval writes each task's metadata into its results: the package version travels with them.
        config["metadata"] = {**(config.get("metadata") or {}), VERSION_KEY: package_version()}
        super().__init__(config=config, **kwargs)
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
            else:
                prefix = "" if kwargs.get("apply_chat_template") else self.config.target_delimiter
                gen_kwargs.update(
                    protocol_named(doc["protocol"]).generation_kwargs(
                        doc["option_letters"], doc["task"] == "mcq", self.CONSTRAINED, prefix
                    )
                )
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
