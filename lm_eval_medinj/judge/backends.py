"""Judge backends: P(equivalent) from the next-token distribution restricted to the two verdicts.

- ``hf:PATH_OR_HUB_ID``: a local transformers model (batched, left-padded).
- ``vllm:PATH_OR_HUB_ID``: an in-process vLLM engine (imported only when used).
- ``openai:MODEL@BASE_URL``: any OpenAI-compatible server (vLLM, SGLang, TGI) that returns
  ``top_logprobs``; see :class:`OpenAIJudge`.

A bare spec (no prefix) is a transformers model.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import threading
from collections.abc import Generator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Protocol

from lm_eval_medinj.errors import UsageError, one_line
from lm_eval_medinj.judge.failures import ItemNotJudged, JudgeError, JudgeResponseError
from lm_eval_medinj.judge.http import JsonPoster, RetriesExhausted, RetryPolicy
from lm_eval_medinj.judge.items import JudgeItem
from lm_eval_medinj.judge.prompt import JudgePrompt

log = logging.getLogger(__name__)
DEFAULT_JUDGE = "hf:google/medgemma-27b-text-it"

# What a backend gives for one item: P(equivalent), or why there is none; and for a batch, as they come.
Judgement = float | JudgeError
Judgements = Generator[tuple[int, Judgement], None, None]


class JudgeBackend(Protocol):
    """Anything that judges a batch of items."""

    judge_id: str

    def judge_each(self, items: Sequence[JudgeItem], prompt: JudgePrompt) -> Judgements:
        """``(position in items, judgement)`` as each is made, in any order, one per item."""
        ...

    def p_equivalent(self, items: Sequence[JudgeItem], prompt: JudgePrompt) -> list[float]:
        """P(equivalent) of every item, in order; raises the first failure."""
        ...


class Judge:
    """:meth:`p_equivalent` from :meth:`judge_each`."""

    judge_id: str

    def judge_each(self, items: Sequence[JudgeItem], prompt: JudgePrompt) -> Judgements:
        raise NotImplementedError

    def p_equivalent(self, items: Sequence[JudgeItem], prompt: JudgePrompt) -> list[float]:
        p = [math.nan] * len(items)
        for index, judgement in self.judge_each(items, prompt):
            if isinstance(judgement, JudgeError):
                raise judgement
            p[index] = judgement
        return p


def two_way_probability(logit_equivalent: float, logit_not: float) -> float:
    """Softmax over the two verdict logits (or log-probabilities): P(equivalent).

    Computed without overflow (a log-probability may be ``-inf``); NaN when both are infinite alike."""
    difference = logit_not - logit_equivalent
    if difference > 0:
        small = math.exp(-difference)
        return small / (1.0 + small)
    return 1.0 / (1.0 + math.exp(difference))


def checked_probability(p: float, judge_id: str, hint: str = "") -> float:
    """``p`` when it is a probability; else the judge's answer is not a judgement."""
    if not (isinstance(p, float | int) and math.isfinite(p) and 0.0 <= p <= 1.0):
        raise JudgeResponseError(f"judge {judge_id}: the verdict probability is {p!r}, not a number in [0, 1]{hint}")
    return float(p)


def judgement(p: float, judge_id: str, hint: str = "") -> Judgement:
    """``p`` when it is a probability, else the error :func:`checked_probability` raises."""
    try:
        return checked_probability(p, judge_id, hint)
    except JudgeResponseError as error:
        return error


def is_out_of_memory(error: BaseException) -> bool:
    """A CUDA out-of-memory error, the CPU allocator's, or Python's own."""
    import torch

    return isinstance(error, torch.OutOfMemoryError | MemoryError) or (
        isinstance(error, RuntimeError) and "can't allocate memory" in str(error)
    )


def render_chat(tokenizer: Any, prompt: JudgePrompt, item: JudgeItem) -> str:
    """The judge input text through the tokenizer's chat template.

    Templates that reject a system role (Gemma) get the system text inside the user turn;
    a tokenizer without a template gets the plain system and user text.
    """
    args = (item.question, item.reference, item.candidate)
    if not getattr(tokenizer, "chat_template", None):
        return "\n\n".join(m["content"] for m in prompt.messages(*args)) + "\n"
    from jinja2.exceptions import TemplateError

    try:
        return tokenizer.apply_chat_template(prompt.messages(*args), tokenize=False, add_generation_prompt=True)
    except TemplateError:
        return tokenizer.apply_chat_template(
            prompt.messages(*args, system_role=False), tokenize=False, add_generation_prompt=True
        )


@functools.lru_cache(maxsize=32)
def verdict_token_ids(tokenizer: Any, prompt: JudgePrompt) -> tuple[int, int]:
    """The first token of each verdict word; they must differ (cached: warns once)."""
    ids = []
    for word in prompt.verdicts:
        encoded = tokenizer.encode(word, add_special_tokens=False)
        if len(encoded) > 1:
            log.warning("verdict %r is %d tokens for this tokenizer; its first token is used", word, len(encoded))
        ids.append(encoded[0])
    if ids[0] == ids[1]:
        raise ValueError(f"verdicts {prompt.verdicts} start with the same token for this tokenizer")
    return ids[0], ids[1]


class TransformersJudge(Judge):
    """A local causal LM; one forward pass per batch, last-position logits only.

    A batch that runs out of memory is split in halves (down to single items, each judged alone):
    an item that does not fit alone is not judged, and named."""

    def __init__(self, model: str, device: str | None = None, dtype: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.judge_id = f"hf:{model}"
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        torch_dtype = getattr(torch, dtype) if dtype else (torch.bfloat16 if self.device == "cuda" else torch.float32)
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype).to(self.device).eval()

    def judge_each(self, items: Sequence[JudgeItem], prompt: JudgePrompt) -> Judgements:
        yield from self._judge_part(list(range(len(items))), items, prompt)

    def _judge_part(self, indices: list[int], items: Sequence[JudgeItem], prompt: JudgePrompt) -> Judgements:
        try:
            p = self._forward([items[i] for i in indices], prompt)
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            message = one_line(str(error), 120)
        else:
            for i, value in zip(indices, p, strict=True):
                yield i, judgement(value, self.judge_id, " (the logits are not finite: try --dtype float32)")
            return
        # out of memory, outside the except block: the failed forward pass's tensors are freed
        self._free_memory()
        if len(indices) == 1:
            yield indices[0], ItemNotJudged(f"judge {self.judge_id}: out of memory on this item alone ({message})")
            return
        half = len(indices) // 2
        log.warning("%s: out of memory on a batch of %d; splitting it in two", self.judge_id, len(indices))
        yield from self._judge_part(indices[:half], items, prompt)
        yield from self._judge_part(indices[half:], items, prompt)

    def _free_memory(self) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _forward(self, items: Sequence[JudgeItem], prompt: JudgePrompt) -> list[float]:
        import torch

        yes, no = verdict_token_ids(self.tokenizer, prompt)
        texts = [render_chat(self.tokenizer, prompt, item) for item in items]
        batch = self.tokenizer(
            texts, return_tensors="pt", padding=True, add_special_tokens=not self.tokenizer.chat_template
        ).to(self.device)
        with torch.inference_mode():
            positions = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)  # left padding
            logits = self.model(**batch, position_ids=positions, logits_to_keep=1).logits[:, -1, :].float()
        pair = logits[:, [yes, no]]
        return torch.softmax(pair, dim=-1)[:, 0].tolist()


class VLLMJudge(Judge):
    """An in-process vLLM engine: the log-probability of each verdict token as a prompt token.

    A batch the engine refuses or cannot hold (a prompt over ``max_model_len``, out of memory) is
    split in halves down to single items: an item that fails alone is not judged, and named."""

    def __init__(self, model: str, llm: Any = None, **engine_kwargs: Any):
        """Starts an engine for ``model``, or uses ``llm``, a ``vllm.LLM`` already serving it."""
        from vllm import LLM, SamplingParams

        self.judge_id = f"vllm:{model}"
        self.llm = llm if llm is not None else LLM(model=model, **engine_kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0.0)

    def judge_each(self, items: Sequence[JudgeItem], prompt: JudgePrompt) -> Judgements:
        yes, no = verdict_token_ids(self.tokenizer, prompt)
        ids = [
            self.tokenizer.encode(
                render_chat(self.tokenizer, prompt, item), add_special_tokens=not self.tokenizer.chat_template
            )
            for item in items
        ]
        yield from self._judge_part(list(range(len(items))), ids, yes, no)

    def _judge_part(self, indices: list[int], ids: list[list[int]], yes: int, no: int) -> Judgements:
        from vllm.inputs import TokensPrompt

        requests = [TokensPrompt(prompt_token_ids=[*ids[i], verdict]) for i in indices for verdict in (yes, no)]
        try:
            outputs = self.llm.generate(requests, self.params, use_tqdm=False)
        except (ValueError, RuntimeError) as error:  # vLLM's refusal of a prompt; out of memory
            message = f"{type(error).__name__}: {one_line(str(error), 120)}"
        else:
            for k, i in enumerate(indices):
                try:
                    lp_yes = outputs[2 * k].prompt_logprobs[-1][yes].logprob
                    lp_no = outputs[2 * k + 1].prompt_logprobs[-1][no].logprob
                except (TypeError, IndexError, KeyError, AttributeError):
                    yield i, JudgeResponseError(f"judge {self.judge_id}: no prompt log-probability for a verdict token")
                    continue
                yield i, judgement(two_way_probability(lp_yes, lp_no), self.judge_id)
            return
        if len(indices) == 1:
            yield indices[0], ItemNotJudged(f"judge {self.judge_id}: failed on this item alone ({message})")
            return
        half = len(indices) // 2
        log.warning("%s: a batch of %d failed (%s); splitting it in two", self.judge_id, len(indices), message)
        yield from self._judge_part(indices[:half], ids, yes, no)
        yield from self._judge_part(indices[half:], ids, yes, no)


def verdict_probability(top_logprobs: Mapping[str, float], verdicts: tuple[str, str]) -> tuple[float, bool]:
    """P(equivalent) from a server's top-k token log-probabilities, and whether both were in the top-k.

    A token matches a verdict when its text, stripped of spaces, is a non-empty prefix of the
    verdict word (case-sensitive); the longest match wins (the whole word when it is one token).
    A verdict missing from the top-k gets the smallest listed log-probability, an upper bound on
    its own; if both are missing the result is 0.5.
    """
    found: list[float | None] = []
    for word in verdicts:
        matches = [
            (len(tok.strip()), lp) for tok, lp in top_logprobs.items() if tok.strip() and word.startswith(tok.strip())
        ]
        found.append(max(matches)[1] if matches else None)
    if found[0] is not None and found[1] is not None:
        return two_way_probability(found[0], found[1]), True
    floor = min(top_logprobs.values(), default=0.0)
    return two_way_probability(
        found[0] if found[0] is not None else floor, found[1] if found[1] is not None else floor
    ), False


class OpenAIJudge(Judge):
    """An OpenAI-compatible server; needs ``top_logprobs`` on the first generated token.

    ``api="chat"`` posts to ``/chat/completions`` (``logprobs: true, top_logprobs: k``; the
    server applies the model's chat template) the two turns, system and user, as the authors did;
    when the server answers HTTP 400 (a template without a system role), the request is sent
    again with the system text opening the user turn, and so are all later ones (a warning says
    so). ``api="completions"`` posts to ``/completions``
    (``logprobs: k``) with the prompt rendered here through ``tokenizer``'s chat template.
    vLLM serves at most ``--max-logprobs`` (default 20) per token.

    Requests are retried as :mod:`lm_eval_medinj.judge.http` says (``timeout`` seconds per attempt,
    ``max_retries`` retries). What is left failing:

    - transient errors after the last retry, and HTTP 400, 413 and 422 (this item's request is
      refused, e.g. too long for the model): the item is not judged (:class:`ItemNotJudged`);
    - any other HTTP error (401, 403, 404...) and an answer that is not a judgement (a body that is
      not JSON, no ``choices``, no ``logprobs``/``top_logprobs``, a log-probability that is not a
      number, a verdict probability that is not finite): :class:`JudgeResponseError`.
    """

    ITEM_REFUSED = (400, 413, 422)

    def __init__(
        self,
        model: str,
        base_url: str,
        api: str = "chat",
        top_logprobs: int = 20,
        tokenizer: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
    ):
        if api not in ("chat", "completions"):
            raise ValueError(f"api must be 'chat' or 'completions', got {api!r}")
        self.judge_id = f"openai:{model}"
        self.model, self.base_url, self.api = model, base_url.rstrip("/"), api
        self.top_logprobs, self.concurrency = top_logprobs, concurrency
        api_key = os.environ.get(api_key_env)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.poster = JsonPoster(self.base_url, headers, RetryPolicy(max_retries, timeout, backoff_s), self.judge_id)
        self.tokenizer = None
        if api == "completions" and tokenizer:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        self.incomplete = 0
        self.system_role = True  # False once the server has refused a system turn

    @property
    def route(self) -> str:
        return "chat/completions" if self.api == "chat" else "completions"

    def _chat(self, body: dict[str, Any], item: JudgeItem, prompt: JudgePrompt, cancel: threading.Event) -> Any:
        """Post the system and user turns; if the server answers HTTP 400 and accepts the system
        text opening the user turn instead, send it that way from then on."""
        args = (item.question, item.reference, item.candidate)
        messages = prompt.messages(*args, system_role=self.system_role)
        response = self.poster.post(self.route, body | {"messages": messages}, cancel)
        if response.status_code != 400 or not self.system_role or not prompt.system:
            return response
        retry = self.poster.post(self.route, body | {"messages": prompt.messages(*args, system_role=False)}, cancel)
        if not retry.ok:
            return response
        if self.system_role:
            self.system_role = False
            log.warning(
                "%s refused a system turn (HTTP 400: %s); from now on the system text opens the user turn",
                self.judge_id,
                response.text[:200],
            )
        return retry

    def _send(self, item: JudgeItem, prompt: JudgePrompt, cancel: threading.Event) -> Any:
        body: dict[str, Any] = {"model": self.model, "max_tokens": 1, "temperature": 0.0}
        if self.api == "chat":
            return self._chat(body | {"logprobs": True, "top_logprobs": self.top_logprobs}, item, prompt, cancel)
        text = (
            render_chat(self.tokenizer, prompt, item)
            if self.tokenizer is not None
            else "\n\n".join(m["content"] for m in prompt.messages(item.question, item.reference, item.candidate))
            + "\n"
        )
        return self.poster.post(self.route, body | {"prompt": text, "logprobs": self.top_logprobs}, cancel)

    def _judge(self, item: JudgeItem, prompt: JudgePrompt, cancel: threading.Event) -> float:
        """P(equivalent) of one item; raises :class:`ItemNotJudged` or :class:`JudgeResponseError`."""
        try:
            response = self._send(item, prompt, cancel)
        except RetriesExhausted as error:
            raise ItemNotJudged(f"judge {self.judge_id}: {error}") from None
        if not response.ok:
            refused = response.status_code in self.ITEM_REFUSED
            status = f"judge {self.judge_id}: HTTP {response.status_code} {response.reason}"
            detail = one_line(response.text, 160) or "empty body"
            raise (ItemNotJudged if refused else JudgeResponseError)(f"{status} ({detail})")
        top = self._top_logprobs(response)
        p, complete = verdict_probability(top, prompt.verdicts)
        if not complete:
            self.incomplete += 1
            log.warning(
                "a verdict word was not in the server's top-%d tokens (%d so far); "
                "raise top_logprobs for an exact P(equivalent)",
                self.top_logprobs,
                self.incomplete,
            )
        return checked_probability(p, self.judge_id, f" (top log-probabilities: {one_line(repr(top), 120)})")

    def _top_logprobs(self, response: Any) -> dict[str, float]:
        """The first generated token's top-k log-probabilities, checked."""
        where = f"judge {self.judge_id}"
        try:
            payload = response.json()
        except ValueError:
            kind = response.headers.get("Content-Type") or "no Content-Type"
            raise JudgeResponseError(
                f"{where}: the response is not JSON ({kind}: {one_line(response.text, 80)!r})"
            ) from None
        choices = payload.get("choices") if isinstance(payload, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise JudgeResponseError(f"{where}: the response has no 'choices' ({one_line(response.text, 120)})")
        logprobs = choices[0].get("logprobs")
        if not isinstance(logprobs, dict):
            raise JudgeResponseError(
                f"{where}: the response has no 'logprobs' (the server must return log-probabilities; "
                f"{one_line(response.text, 120)})"
            )
        try:
            if self.api == "chat":
                top: Any = {entry["token"]: entry["logprob"] for entry in logprobs["content"][0]["top_logprobs"]}
            else:
                top = logprobs["top_logprobs"][0]
        except (KeyError, IndexError, TypeError):
            top = None
        if not isinstance(top, dict) or not top:
            raise JudgeResponseError(
                f"{where}: the response has no 'top_logprobs' for the first token ({one_line(response.text, 120)})"
            )
        if not all(
            isinstance(token, str)
            and isinstance(lp, float | int)
            and not isinstance(lp, bool)
            and lp == lp
            and lp < math.inf
            for token, lp in top.items()
        ):
            raise JudgeResponseError(f"{where}: a top log-probability is not a number ({one_line(repr(top), 120)})")
        return top

    def judge_each(self, items: Sequence[JudgeItem], prompt: JudgePrompt) -> Judgements:
        """``concurrency`` requests in flight; each judgement as its answer arrives. When the caller
        stops early, the requests not sent are dropped and those retrying give up."""
        cancel = threading.Event()
        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        try:
            futures = {pool.submit(self._judge, item, prompt, cancel): i for i, item in enumerate(items)}
            for future in as_completed(futures):
                try:
                    result: Judgement = future.result()
                except JudgeError as error:
                    result = error
                yield futures[future], result
        finally:
            cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class BackendOptions:
    """Options of every backend; each uses its own."""

    device: str | None = None
    dtype: str | None = None
    api: str = "chat"
    top_logprobs: int = 20
    tokenizer: str | None = None
    concurrency: int = 8
    timeout: float = 120.0
    max_retries: int = 5
    vllm_kwargs: dict[str, Any] = field(default_factory=dict)


def make_backend(spec: str, options: BackendOptions = BackendOptions()) -> JudgeBackend:
    """A backend from ``hf:``, ``vllm:`` or ``openai:MODEL@URL`` (a bare spec is ``hf:``)."""
    kind, _, rest = spec.partition(":")
    if kind not in ("hf", "vllm", "openai"):
        kind, rest = "hf", spec
    if kind == "hf":
        return TransformersJudge(rest, device=options.device, dtype=options.dtype)
    if kind == "vllm":
        return VLLMJudge(rest, **options.vllm_kwargs)
    model, at, url = rest.rpartition("@")
    if not at or not model:
        raise UsageError(f"judge spec {spec!r}: expected openai:MODEL@BASE_URL (e.g. .../v1)")
    return OpenAIJudge(
        model,
        url,
        api=options.api,
        top_logprobs=options.top_logprobs,
        tokenizer=options.tokenizer,
        concurrency=options.concurrency,
        timeout=options.timeout,
        max_retries=options.max_retries,
    )
