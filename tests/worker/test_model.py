"""Encoders: ONNX and PyTorch agree at the pool threshold, truncate at 256, batch-size invariant."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from worker.config import MAX_SEQ_LENGTH
from worker.model import Tokenizer, model_dir, onnx_cache_path

POOL_THRESHOLD = 0.9999
LONG_TEXT = "word " * 2000
TEXTS = [
    "hello world",
    "The quick brown fox jumps over the lazy dog.",
    LONG_TEXT,
    " ".join(f"token{i}" for i in range(150)),  # ~300+ word pieces: between 256 and 512
    "\U0001f600",
    "I love pizza \U0001f355\U0001f525 and ça va très bien, naïve café",
    "hello [SEP] [MASK] <|endoftext|> world",
    "日本語のテキストも埋め込みます。",
    "",
    "   padded with spaces   ",
    "a\u0000b",
    "Mixed CASE Text WITH Numbers 12345 and symbols #@!",
]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return (a64 * b64).sum(1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))


class TestBackendsAgree:
    def test_cosine_at_least_pool_threshold(self, onnx_encoder, torch_encoder):
        a, counts_a, trunc_a = onnx_encoder.encode(TEXTS)
        b, counts_b, trunc_b = torch_encoder.encode(TEXTS)
        cos = _cosines(a, b)
        assert cos.min() >= POOL_THRESHOLD, dict(zip(TEXTS, cos, strict=True))
        assert cos.min() >= 0.99999  # honest fp32 workers are far above the threshold
        assert counts_a == counts_b
        assert trunc_a == trunc_b

    def test_matches_sentence_transformers_encode(self, onnx_encoder, torch_encoder):
        reference = torch_encoder.model.encode(TEXTS, convert_to_numpy=True, normalize_embeddings=True)
        got, _, _ = onnx_encoder.encode(TEXTS)
        assert _cosines(got, reference).min() >= 0.99999

    def test_altered_text_falls_below_threshold(self, onnx_encoder):
        v, _, _ = onnx_encoder.encode(["The cat sat on the mat", "The cat sat on the rug"])
        assert _cosines(v[:1], v[1:])[0] < POOL_THRESHOLD


class TestOnnxEncoder:
    def test_shape_dtype_and_unit_norm(self, onnx_encoder):
        v, counts, truncated = onnx_encoder.encode(TEXTS)
        assert v.shape == (len(TEXTS), 384)
        assert v.dtype == np.float32
        assert np.all(np.isfinite(v))
        np.testing.assert_allclose(np.linalg.norm(v.astype(np.float64), axis=1), 1.0, atol=1e-5)
        assert len(counts) == len(truncated) == len(TEXTS)

    def test_batch_size_one_vs_sixteen_within_1e6(self, onnx_encoder):
        batch = (TEXTS * 2)[:16]
        together, _, _ = onnx_encoder.encode(batch)
        alone = np.stack([onnx_encoder.encode([t])[0][0] for t in batch])
        assert np.abs(together - alone).max() <= 1e-6

    def test_empty_input_list(self, onnx_encoder):
        v, counts, truncated = onnx_encoder.encode([])
        assert v.shape == (0, 384) and counts == [] and truncated == []

    def test_cached_file_is_keyed_by_weights(self, onnx_encoder):
        assert onnx_encoder.path == onnx_cache_path(model_dir())
        assert onnx_encoder.path.is_file()
        leftovers = [p for p in onnx_encoder.path.parent.iterdir() if p.name.startswith(".export-")]
        assert leftovers == []

    def test_loading_cached_model_does_not_import_torch(self, onnx_encoder):
        code = (
            "import sys; from worker.model import OnnxEncoder; e = OnnxEncoder(threads=1); "
            "e.encode(['hi']); print('torch' in sys.modules, 'transformers' in sys.modules)"
        )
        env = {**os.environ, "OPENMESH_CACHE_DIR": str(onnx_encoder.path.parent), "HF_HUB_OFFLINE": "1"}
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["False", "False"]


class TestTokenCounts:
    @pytest.mark.parametrize(
        ("text", "count", "truncated"),
        [
            ("hello world", 4, False),
            (LONG_TEXT, MAX_SEQ_LENGTH, True),
            ("", 2, False),
            ("\U0001f600", 3, False),  # [CLS] [UNK] [SEP]
            ("hello [SEP] [MASK] <|endoftext|> world", 14, False),
            ("word " * 254, 256, False),  # exactly fits: 254 + [CLS] + [SEP]
            ("word " * 255, 256, True),
        ],
    )
    def test_count_and_truncation(self, onnx_encoder, text, count, truncated):
        _, counts, flags = onnx_encoder.encode([text])
        assert counts == [count]
        assert flags == [truncated]

    def test_same_ids_as_sentence_transformers(self, torch_encoder):
        tok = Tokenizer(model_dir())
        ids, _ = tok.tokenize(TEXTS)
        features = torch_encoder.model.tokenize(TEXTS)
        for i, text in enumerate(TEXTS):
            n = int(features["attention_mask"][i].sum())
            assert features["input_ids"][i][:n].tolist() == ids[i], text
