"""Versioned judge prompts: a text file with the two verdict words, a system and a user part."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from lm_eval_medinj.errors import InputError

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
DEFAULT_PROMPT = "paper"  # the authors' prompt (prompts/paper.txt); "v1" is our French one


@dataclass(frozen=True)
class JudgePrompt:
    """A judge prompt; ``prompt_id`` (name and content hash) keys the cache."""

    name: str
    system: str
    user: str
    equivalent: str
    not_equivalent: str
    digest: str

    @property
    def prompt_id(self) -> str:
        return f"{self.name}@{self.digest}"

    @property
    def verdicts(self) -> tuple[str, str]:
        """The equivalent and not-equivalent words, in that order."""
        return self.equivalent, self.not_equivalent

    def render_user(self, question: str, reference: str, candidate: str) -> str:
        return self.user.format(question=question.strip(), reference=reference.strip(), candidate=candidate.strip())

    def messages(self, question: str, reference: str, candidate: str, system_role: bool = True) -> list[dict[str, str]]:
        """Chat messages; without a system role the system text opens the user turn."""
        user = self.render_user(question, reference, candidate)
        if not self.system:
            return [{"role": "user", "content": user}]
        if system_role:
            return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]
        return [{"role": "user", "content": f"{self.system}\n\n{user}"}]


def load_prompt(name_or_path: str = DEFAULT_PROMPT) -> JudgePrompt:
    """A shipped prompt by name ("paper", "v1") or any prompt file by path."""
    path = Path(name_or_path)
    if not path.is_file():
        path = PROMPTS_DIR / f"{name_or_path}.txt"
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in PROMPTS_DIR.glob("*.txt")))
        raise FileNotFoundError(f"judge prompt {name_or_path!r} not found (shipped: {shipped})")
    return parse_prompt(path.read_text(encoding="utf-8"), path.stem)


def parse_prompt(text: str, name: str) -> JudgePrompt:
    """Parse the ``@verdicts`` / ``@system`` / ``@user`` format (``#`` lines are comments)."""
    sections: dict[str, list[str]] = {}
    verdicts: list[str] = []
    current: str | None = None
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if line.startswith("@verdicts"):
            verdicts = line.split()[1:]
        elif line.strip() in ("@system", "@user"):
            current = line.strip()[1:]
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    if len(verdicts) != 2 or verdicts[0] == verdicts[1]:
        raise InputError(f"prompt {name!r}: '@verdicts' needs two different words, got {verdicts}")
    user = "\n".join(sections.get("user", [])).strip()
    for field in ("{question}", "{reference}", "{candidate}"):
        if field not in user:
            raise InputError(f"prompt {name!r}: the @user part lacks {field}")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return JudgePrompt(name, "\n".join(sections.get("system", [])).strip(), user, verdicts[0], verdicts[1], digest)
