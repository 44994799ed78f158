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
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from lm_eval_medinj.errors import UsageError
from lm_eval_medinj.judge.items import JudgeItem
from lm_eval_medinj.judge.prompt import JudgePrompt

log = logging.getLogger(__name__)
DEFAULT_JUDGE = "hf:google/medgemma-27b-text-it"


class JudgeBackend(Protocol):
    """Anything that gives P(equivalent) for a batch of items."""

    judge_id: str

    def p_equivalent(self, items: Sequence[JudgeItem], prompt: JudgePrompt) -> list[float]: ...


def two_way_probability(logit_equivalent: float, logit_not: float) -> float:
    """Softmax over the two verdict logits (or log-probabilities): P(equivalent)."""
    return 1.0 / (1.0 + math.exp(logit_not - logit_equivalent))


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


class TransformersJudge:
    """A local causal LM; one forward pass per batch, last-position logits only."""

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

    def p_equivalent(self, items: Sequence[JudgeItem], prompt: JudgePrompt) -> list[float]:
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


class VLLMJudge:
    """An in-process vLLM engine: the log-probability of each verdict token as a prompt token."""

    def __init__(self, model: str, llm: Any = None, **engine_kwargs: Any):
        """Starts an engine for ``model``, or uses ``llm``, a ``vllm.LLM`` already serving it."""
        from vllm import LLM, SamplingParams

        self.judge_id = f"vllm:{model}"
        self.llm = llm if llm is not None else LLM(model=model, **engine_kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0.0)

    def p_equivalent(self, items: Sequence[JudgeItem], prompt: JudgePrompt) -> list[float]:
        from vllm.inputs import TokensPrompt

        yes, no = verdict_token_ids(self.tokenizer, prompt)
        requests = []
        for item in items:
            text = render_chat(self.tokenizer, prompt, item)
            ids = self.tokenizer.encode(text, add_special_tokens=not self.tokenizer.chat_template)
            requests += [
                TokensPrompt(prompt_token_ids=[*ids, yes]),
                TokensPrompt(prompt_token_ids=[*ids, no]),
            ]
        outputs = self.llm.generate(requests, self.params, use_tqdm=False)
        last = [out.prompt_logprobs[-1] for out in outputs]
        return [two_way_probability(last[2 * i][yes].logprob, last[2 * i + 1][no].logprob) for i in range(len(items))]


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


class OpenAIJudge:
    """An OpenAI-compatible server; needs ``top_logprobs`` on the first generated token.

    ``api="chat"`` posts to ``/chat/completions`` (``logprobs: true, top_logprobs: k``; the
    server applies the model's chat template) the two turns, system and user, as the authors did;
    when the server answers HTTP 400 (a template without a system role), the request is sent
    again with the system text opening the user turn, and so are all later ones (a warning says
    so). ``api="completions"`` posts to ``/completions``
    (``logprobs: k``) with the prompt rendered here through ``tokenizer``'s chat template.
    vLLM serves at most ``--max-logprobs`` (default 20) per token.
    """

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
    ):
        if api not in ("chat", "completions"):
            raise ValueError(f"api must be 'chat' or 'completions', got {api!r}")
        self.judge_id = f"openai:{model}"
        self.model, self.base_url, self.api = model, base_url.rstrip("/"), api
        self.top_logprobs, self.concurrency, self.timeout = top_logprobs, concurrency, timeout
        self.api_key = os.environ.get(api_key_env)
        self.tokenizer = None
        if api == "completions" and tokenizer:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        self.incomplete = 0
        self.system_role = True  # False once the server has refused a system turn

    def _request(self, body: dict[str, Any]) -> Any:
        import requests

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        route = "chat/completions" if self.api == "chat" else "completions"
        return requests.post(f"{self.base_url}/{route}", json=body, headers=headers, timeout=self.timeout)

    def _chat(self, body: dict[str, Any], item: JudgeItem, prompt: JudgePrompt) -> Any:
        """Post the system and user turns; if the server answers HTTP 400 and accepts the system
        text opening the user turn instead, send it that way from then on."""
        args = (item.question, item.reference, item.candidate)
        response = self._request(body | {"messages": prompt.messages(*args, system_role=self.system_role)})
        if response.status_code != 400 or not self.system_role or not prompt.system:
            return response
        retry = self._request(body | {"messages": prompt.messages(*args, system_role=False)})
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

    def _post(self, item: JudgeItem, prompt: JudgePrompt) -> float:
        body: dict[str, Any] = {"model": self.model, "max_tokens": 1, "temperature": 0.0}
        if self.api == "chat":
            body |= {"logprobs": True, "top_logprobs": self.top_logprobs}
            response = self._chat(body, item, prompt)
        else:
            text = (
                render_chat(self.tokenizer, prompt, item)
                if self.tokenizer is not None
                else "\n\n".join(m["content"] for m in prompt.messages(item.question, item.reference, item.candidate))
                + "\n"
            )
            response = self._request(body | {"prompt": text, "logprobs": self.top_logprobs})
        response.raise_for_status()
        choice = response.json()["choices"][0]
        if self.api == "chat":
            entries = choice["logprobs"]["content"][0]["top_logprobs"]
            top = {entry["token"]: entry["logprob"] for entry in entries}
        else:
            top = choice["logprobs"]["top_logprobs"][0]
        p, complete = verdict_probability(top, prompt.verdicts)
        if not complete:
            self.incomplete += 1
            log.warning(
                "a verdict word was not in the server's top-%d tokens (%d so far); "
                "raise top_logprobs for an exact P(equivalent)",
                self.top_logprobs,
                self.incomplete,
            )
        return p

    def p_equivalent(self, items: Sequence[JudgeItem], prompt: JudgePrompt) -> list[float]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda item: self._post(item, prompt), items))


@dataclass(frozen=True)
class BackendOptions:
    """Options of every backend; each uses its own."""

    device: str | None = None
    dtype: str | None = None
    api: str = "chat"
    top_logprobs: int = 20
    tokenizer: str | None = None
    concurrency: int = 8
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
    )
