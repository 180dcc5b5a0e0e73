"""Text rules shared by the gateway and the coordinator."""

from __future__ import annotations

import unicodedata


def is_blank(value: str) -> bool:
    """True when nothing would be left to embed: only whitespace and invisible format characters
    (zero-width space, joiners, BOM: Unicode category Cf), which the tokenizer drops like spaces."""
    return all(ch.isspace() or unicodedata.category(ch) == "Cf" for ch in value)
