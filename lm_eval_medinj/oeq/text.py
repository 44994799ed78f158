"""Unicode-aware French word tokenization shared by ROUGE and METEOR."""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from nltk.stem.snowball import SnowballStemmer

# Runs of letters or digits in any script: "sévère" stays whole; apostrophes, hyphens and
# punctuation separate words ("l'hépatite" -> "l", "hépatite").
_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """Lower-cased words of ``text`` after NFC normalization (composed and decomposed accents agree)."""
    return _WORD.findall(unicodedata.normalize("NFC", text).casefold())


@cache
def french_stemmer() -> SnowballStemmer:
    """NLTK's French Snowball stemmer (pure Python rules, no data download)."""
    return SnowballStemmer("french")


def stem(word: str) -> str:
    """The French Snowball stem of a lower-cased word."""
    return french_stemmer().stem(word)


class FrenchTokenizer:
    """A rouge-score tokenizer: :func:`words`, optionally reduced to French stems."""

    def __init__(self, use_stemmer: bool = False):
        self.use_stemmer = use_stemmer

    def tokenize(self, text: str) -> list[str]:
        tokens = words(text)
        return [stem(token) for token in tokens] if self.use_stemmer else tokens
