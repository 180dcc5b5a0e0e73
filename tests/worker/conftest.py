"""Worker test fixtures: encoders loaded once per session, a deterministic fake encoder, keys."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def onnx_encoder():
    """ONNX encoder; exports into the cache dir (OPENMESH_CACHE_DIR or ~/.cache/openmesh) on first use."""
    from worker.model import OnnxEncoder

    return OnnxEncoder(threads=2)


@pytest.fixture(scope="session")
def torch_encoder():
    from worker.model import TorchEncoder

    return TorchEncoder(threads=2)


class FakeEncoder:
    """Deterministic unit vectors from a text hash (same text → same vector); counts calls."""

    backend = "fake"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts):
        self.calls.append(list(texts))
        rows = []
        for text in texts:
            seed = int.from_bytes(
                hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:8], "little"
            )
            v = np.random.default_rng(seed).standard_normal(384).astype(np.float32)
            rows.append(v / np.linalg.norm(v))
        vectors = np.stack(rows).astype(np.float32) if rows else np.zeros((0, 384), np.float32)
        counts = [min(256, len(t.split()) + 2) for t in texts]
        return vectors, counts, [len(t.split()) + 2 > 256 for t in texts]


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture
def signing_key():
    from nacl.signing import SigningKey

    return SigningKey.generate()
