"""Ed25519 worker keys (PyNaCl): generate, save/load with private permissions, sign submissions.

The worker signs exactly the canonical JSON of {"assignment_id", "nonce", "output_hash"}
(`backend.core.canonical.signing_payload`), the same bytes the coordinator verifies.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from backend.core.canonical import b64url_decode, b64url_encode, output_hash, signing_payload

KEY_FILE_MODE = 0o600
KEY_DIR_MODE = 0o700


class KeyFileError(Exception):
    """The key file is missing, unreadable or malformed (or would be overwritten)."""


def generate_key() -> SigningKey:
    """A fresh random Ed25519 signing key."""
    return SigningKey.generate()


def public_key_b64url(signing_key: SigningKey) -> str:
    """The raw 32-byte public key as base64url without padding (what `/workers/register` expects)."""
    return b64url_encode(bytes(signing_key.verify_key))


def save_key(path: Path | str, signing_key: SigningKey, *, force: bool = False) -> Path:
    """Write the key as JSON {type, seed, public_key} with mode 0600, atomically.

    Refuses to overwrite an existing file unless `force`: losing a registered worker's key
    means its submissions can no longer be signed.
    """
    path = Path(path).expanduser()
    if path.exists() and not force:
        raise KeyFileError(f"{path} already exists (use --force to overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True, mode=KEY_DIR_MODE)
    body = (
        json.dumps(
            {
                "type": "ed25519",
                "seed": b64url_encode(bytes(signing_key)),
                "public_key": public_key_b64url(signing_key),
            },
            indent=2,
        )
        + "\n"
    )
    # mkstemp creates the file 0600 from the start, so the seed is never world-readable, not even briefly.
    fd, tmp = tempfile.mkstemp(prefix=".worker-key-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, KEY_FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_key(path: Path | str) -> SigningKey:
    """Read a key file: our JSON format, or a bare base64url 32-byte seed on one line."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError as exc:
        raise KeyFileError(f"key file {path} not found (run `openmesh worker keygen`)") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc}") from exc
    seed_text = text
    if text.startswith("{"):
        try:
            seed_text = json.loads(text)["seed"]
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyFileError(f"key file {path} is not a valid worker key") from exc
    try:
        seed = b64url_decode(seed_text)
    except ValueError as exc:
        raise KeyFileError(f"key file {path}: seed is not base64url") from exc
    if len(seed) != 32:
        raise KeyFileError(f"key file {path}: seed must be 32 bytes, got {len(seed)}")
    return SigningKey(seed)


def sign_submission(signing_key: SigningKey, assignment_id: int, nonce: str, output: Any) -> tuple[str, str]:
    """Hash the output and sign the submission payload.

    Returns:
        (output_hash, signature) where signature is the 64-byte Ed25519 signature in base64url.
    """
    out_hash = output_hash(output)
    signature = signing_key.sign(signing_payload(int(assignment_id), nonce, out_hash)).signature
    return out_hash, b64url_encode(signature)
