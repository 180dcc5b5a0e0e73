"""Text checks shared by every gateway route (field cases C01, C04, C07).

A text is refused (422) when it is empty or whitespace-only, contains a NUL character, contains a lone
UTF-16 surrogate (it cannot be encoded as UTF-8, so no worker could hash, sign or embed it the same way),
or is longer than the route's character limit. Texts are never altered: what passes is exactly what the
workers embed. Special-token look-alikes such as "[SEP]" or "<|endoftext|>" are ordinary text.
"""

from __future__ import annotations

from pydantic_core import PydanticCustomError

from backend.core.config import get_settings
from backend.core.text import is_blank


class TextProblem(ValueError):
    """Why a text was refused; `code` is a short machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def text_problem(value: str, max_chars: int) -> TextProblem | None:
    if is_blank(value):
        return TextProblem("empty_text", "must not be empty or whitespace-only")
    if "\x00" in value:
        return TextProblem("nul_character", "must not contain NUL (U+0000) characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return TextProblem("invalid_unicode",
                           "contains a lone surrogate (invalid Unicode); send valid UTF-8 text")
    if len(value) > max_chars:
        return TextProblem("text_too_long", f"is longer than the limit of {max_chars} characters "
                                            f"({len(value)} given)")
    return None


def _raise(problem: TextProblem) -> None:
    raise PydanticCustomError(problem.code, "Text " + problem.message)


def check_embed_text(value: str) -> str:
    """pydantic AfterValidator for an embed text or a rank query (≤ MAX_TEXT_CHARS)."""
    if (p := text_problem(value, get_settings().max_text_chars)) is not None:
        _raise(p)
    return value


def check_rank_text(value: str) -> str:
    """pydantic AfterValidator for one text to rank (≤ MAX_RANK_TEXT_CHARS)."""
    if (p := text_problem(value, get_settings().max_rank_text_chars)) is not None:
        _raise(p)
    return value


def check_rank_count(values: list[str], field: str = "texts") -> list[str]:
    limit = get_settings().max_rank_texts
    if not values:
        raise PydanticCustomError("empty_list", f"{field} must contain at least one text")
    if len(values) > limit:
        raise PydanticCustomError(
            "too_many_items", f"{field} has {len(values)} items; at most {limit} per request are allowed")
    return values
