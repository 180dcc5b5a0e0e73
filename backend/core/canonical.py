"""Canonical JSON and output hashes: the SPEC's signing rules, shared by coordinator and worker."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    """UTF-8 JSON with sorted keys, no spaces and non-ASCII kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def output_hash(output: Any) -> str:
    """Lowercase hex SHA-256 of the canonical JSON of a worker output."""
    return hashlib.sha256(canonical_json(output)).hexdigest()


def signing_payload(assignment_id: int, nonce: str, out_hash: str) -> bytes:
    """The exact bytes a worker signs for one submission."""
    return canonical_json({"assignment_id": assignment_id, "nonce": nonce, "output_hash": out_hash})


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


_B64URL_ALPHABET = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def b64url_decode(text: str) -> bytes:
    """Strict base64url decode (padding optional); raises ValueError on any other alphabet."""
    if not isinstance(text, str):
        raise ValueError("expected a base64url string")
    body = text.rstrip("=")
    if len(text) - len(body) > 2 or not set(body) <= _B64URL_ALPHABET or len(body) % 4 == 1:
        raise ValueError("not valid base64url")
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
