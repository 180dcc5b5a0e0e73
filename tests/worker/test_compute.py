"""compute / compute_batch: output shapes, rank ordering and ties, metrics, one model call per batch."""

from __future__ import annotations

import math

import numpy as np
import pytest

from worker.compute import compute, compute_batch


class TestEmbed:
    def test_output_is_384_python_floats(self, fake_encoder):
        result = compute("embed", {"text": "hello"}, fake_encoder)
        assert result.ok
        emb = result.output["embedding"]
        assert len(emb) == 384
        assert all(type(x) is float and math.isfinite(x) for x in emb)
        assert set(result.output) == {"embedding"}

    def test_floats_come_from_float32(self, fake_encoder):
        emb = compute("embed", {"text": "hello"}, fake_encoder).output["embedding"]
        assert np.array_equal(np.asarray(emb, dtype=np.float32).astype(np.float64), np.asarray(emb))

    def test_metrics(self, fake_encoder):
        result = compute("embed", {"text": "a b c"}, fake_encoder)
        assert result.num_tokens == 5
        assert result.truncated is False
        assert result.metrics["num_tokens"] == 5
        assert result.metrics["backend"] == "fake"
        assert result.metrics["batch_size"] == 1


class TestRank:
    def test_sorted_by_score_desc_and_scores_are_cosines(self, fake_encoder):
        payload = {"query": "q", "texts": ["x", "y", "z", "w"]}
        out = compute("rank", payload, fake_encoder).output
        vectors, _, _ = fake_encoder.encode(["q", "x", "y", "z", "w"])
        expected = (vectors[1:] @ vectors[0]).astype(np.float32)
        assert sorted(out["indices"]) == [0, 1, 2, 3]
        assert out["scores"] == sorted(out["scores"], reverse=True)
        for idx, score in zip(out["indices"], out["scores"], strict=True):
            assert score == pytest.approx(float(expected[idx]), abs=1e-6)

    def test_ties_keep_lower_position_first(self, fake_encoder):
        out = compute("rank", {"query": "q", "texts": ["same", "other", "same", "same"]}, fake_encoder).output
        same_positions = [i for i in out["indices"] if i in (0, 2, 3)]
        assert same_positions == [0, 2, 3]

    def test_query_and_texts_in_one_call(self, fake_encoder):
        compute("rank", {"query": "q", "texts": ["a", "b"]}, fake_encoder)
        assert fake_encoder.calls == [["q", "a", "b"]]

    def test_tokens_sum_query_and_texts(self, fake_encoder):
        result = compute("rank", {"query": "q q", "texts": ["a", "b c"]}, fake_encoder)
        assert result.num_tokens == 4 + 3 + 4

    def test_real_model_ranks_relevant_text_first(self, onnx_encoder):
        payload = {
            "query": "How do I bake bread?",
            "texts": [
                "Stock markets fell today.",
                "A simple recipe for baking bread at home.",
                "Cats sleep a lot.",
            ],
        }
        out = compute("rank", payload, onnx_encoder).output
        assert out["indices"][0] == 1
        assert all(type(s) is float for s in out["scores"])


class TestBatch:
    def test_one_encoder_call_for_many_jobs(self, fake_encoder):
        jobs = [
            ("embed", {"text": "a"}),
            ("rank", {"query": "q", "texts": ["x", "y"]}),
            ("embed", {"text": "b"}),
        ]
        results = compute_batch(jobs, fake_encoder)
        assert len(fake_encoder.calls) == 1
        assert fake_encoder.calls[0] == ["a", "q", "x", "y", "b"]
        assert [r.ok for r in results] == [True, True, True]
        assert all(r.metrics["batch_size"] == 3 for r in results)

    def test_batch_equals_single_on_real_model(self, onnx_encoder):
        jobs = [("embed", {"text": f"sentence number {i}"}) for i in range(8)]
        jobs.append(("rank", {"query": "sentence", "texts": ["sentence number 3", "unrelated"]}))
        batch = compute_batch(jobs, onnx_encoder)
        for (job_type, payload), result in zip(jobs, batch, strict=True):
            single = compute(job_type, payload, onnx_encoder)
            if job_type == "embed":
                assert (
                    np.abs(np.array(result.output["embedding"]) - np.array(single.output["embedding"])).max()
                    <= 1e-6
                )
            else:
                assert result.output["indices"] == single.output["indices"]

    @pytest.mark.parametrize(
        ("job_type", "payload"),
        [
            ("embed", {}),
            ("embed", {"text": 3}),
            ("rank", {"query": "q", "texts": []}),
            ("rank", {"query": "q", "texts": ["a", 1]}),
            ("rank", {"texts": ["a"]}),
            ("translate", {"text": "x"}),
            ("embed", "not an object"),
        ],
    )
    def test_invalid_job_is_an_error_result_not_a_crash(self, fake_encoder, job_type, payload):
        results = compute_batch([(job_type, payload), ("embed", {"text": "ok"})], fake_encoder)
        assert results[0].ok is False and results[0].output is None and results[0].error
        assert results[1].ok

    def test_truncated_flag_and_tokens(self, onnx_encoder):
        result = compute("embed", {"text": "word " * 2000}, onnx_encoder)
        assert result.truncated is True
        assert result.num_tokens == 256


class TestEncoderFailure:
    def test_one_bad_text_does_not_fail_the_batch(self, onnx_encoder):
        jobs = [
            ("embed", {"text": "fine"}),
            ("embed", {"text": "\udcaa"}),
            ("rank", {"query": "q", "texts": ["a"]}),
        ]
        results = compute_batch(jobs, onnx_encoder)
        assert [r.ok for r in results] == [True, False, True]
        assert "encode failed" in results[1].error

    def test_special_token_strings_are_plain_text(self, onnx_encoder):
        result = compute("embed", {"text": "hello [SEP] [MASK] <|endoftext|> world"}, onnx_encoder)
        assert result.ok and result.num_tokens == 14 and result.truncated is False
