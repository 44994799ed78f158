"""The paper's published Table 1 (MedInjection-FR, LREC 2026), shown beside a report's own figures."""

from __future__ import annotations

# label -> (EM: mean of MCQ and MCQU under constrained decoding, in %; judge: MedGemma-27B mean verdict)
PUBLISHED_TABLE1: dict[str, tuple[float, float]] = {
    "base": (34.53, 0.36),
    "NAT": (40.59, 0.24),
    "TRAD": (36.44, 0.22),
    "SYN": (29.73, 0.31),
    "NAT-TRAD": (41.37, 0.23),
    "NAT-SYN": (39.25, 0.34),
    "TRAD-SYN": (36.18, 0.23),
    "ALL": (40.97, 0.25),
}


def published(label: str) -> tuple[float, float] | None:
    """The published (EM %, judge) of a model labelled like the paper's rows (case-insensitive)."""
    by_label = {name.lower(): figures for name, figures in PUBLISHED_TABLE1.items()}
    return by_label.get(label.lower())
