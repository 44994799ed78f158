"""Answer length per sample, for the judge's verbosity study."""

from __future__ import annotations

import unicodedata


def answer_lengths(prediction: str) -> dict[str, int]:
    """Characters (NFC code points, outer whitespace stripped) and whitespace-separated words."""
    text = unicodedata.normalize("NFC", prediction).strip()
    return {"answer_chars": len(text), "answer_words": len(text.split())}
