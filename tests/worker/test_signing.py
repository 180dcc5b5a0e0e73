"""Ed25519 keys and submission signatures verify exactly as the coordinator checks them."""

from __future__ import annotations

import json
import stat

import pytest
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from backend.core.canonical import b64url_decode, b64url_encode, output_hash, signing_payload
from worker.signing import (
    KeyFileError,
    generate_key,
    load_key,
    public_key_b64url,
    save_key,
    sign_submission,
)

OUTPUT = {"embedding": [0.1, -0.25, 3.0e-5], "note": "ação 😀"}


class TestSignSubmission:
    def test_signature_verifies_over_canonical_payload(self, signing_key):
        out_hash, signature = sign_submission(signing_key, 42, "nonce-abc", OUTPUT)
        assert out_hash == output_hash(OUTPUT)
        verify_key = VerifyKey(b64url_decode(public_key_b64url(signing_key)))
        verify_key.verify(signing_payload(42, "nonce-abc", out_hash), b64url_decode(signature))

    def test_signature_is_64_bytes_base64url_unpadded(self, signing_key):
        _, signature = sign_submission(signing_key, 1, "n", OUTPUT)
        assert "=" not in signature and "+" not in signature and "/" not in signature
        assert len(b64url_decode(signature)) == 64

    def test_does_not_verify_for_another_assignment(self, signing_key):
        out_hash, signature = sign_submission(signing_key, 1, "n", OUTPUT)
        verify_key = signing_key.verify_key
        with pytest.raises(BadSignatureError):
            verify_key.verify(signing_payload(2, "n", out_hash), b64url_decode(signature))
        with pytest.raises(BadSignatureError):
            verify_key.verify(signing_payload(1, "other", out_hash), b64url_decode(signature))

    def test_hash_is_key_order_independent(self, signing_key):
        h1, _ = sign_submission(signing_key, 1, "n", {"indices": [1, 0], "scores": [0.9, 0.1]})
        h2, _ = sign_submission(signing_key, 1, "n", {"scores": [0.9, 0.1], "indices": [1, 0]})
        assert h1 == h2


class TestKeyFile:
    def test_roundtrip_with_private_mode(self, tmp_path):
        key = generate_key()
        path = save_key(tmp_path / "sub" / "worker.key", key)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert bytes(load_key(path)) == bytes(key)
        body = json.loads(path.read_text())
        assert body["public_key"] == public_key_b64url(key)

    def test_public_key_is_raw_32_bytes_base64url(self):
        pk = public_key_b64url(generate_key())
        assert "=" not in pk and len(b64url_decode(pk)) == 32

    def test_refuses_overwrite_without_force(self, tmp_path):
        path = save_key(tmp_path / "worker.key", generate_key())
        with pytest.raises(KeyFileError):
            save_key(path, generate_key())
        new = generate_key()
        save_key(path, new, force=True)
        assert bytes(load_key(path)) == bytes(new)

    def test_loads_raw_base64url_seed(self, tmp_path):
        key = SigningKey.generate()
        path = tmp_path / "raw.key"
        path.write_text(b64url_encode(bytes(key)) + "\n")
        assert bytes(load_key(path)) == bytes(key)

    @pytest.mark.parametrize("content", ["", "{}", "not base64!", b64url_encode(b"x" * 31), '{"seed": 5}'])
    def test_malformed_key_file(self, tmp_path, content):
        path = tmp_path / "bad.key"
        path.write_text(content)
        with pytest.raises(KeyFileError):
            load_key(path)

    def test_missing_key_file(self, tmp_path):
        with pytest.raises(KeyFileError, match="keygen"):
            load_key(tmp_path / "nope.key")
