"""The run loop against a fake coordinator: batches, signed submissions, 409s, backoff, stopping."""

from __future__ import annotations

import os
import signal
import threading

import numpy as np
import pytest

from tests.worker.fakes import FakeCoordinator, assignment
from worker.client import CoordinatorClient
from worker.runner import Runner, RunnerConfig, WorkerStatus, backoff_delay


@pytest.fixture
def fake(signing_key) -> FakeCoordinator:
    return FakeCoordinator(signing_key.verify_key)


def make_runner(fake, encoder, signing_key, **overrides) -> Runner:
    config = RunnerConfig(
        worker_id=7,
        batch_size=16,
        wait_seconds=0,
        heartbeat_interval=0.05,
        backoff_base=0.01,
        backoff_cap=0.05,
        burst=True,
    )
    for k, v in overrides.items():
        setattr(config, k, v)
    client = CoordinatorClient("http://coord", email="w@x.io", password="pw", transport=fake.transport)
    return Runner(client, encoder, signing_key, config)


class TestRunLoop:
    def test_batch_is_computed_in_one_call_and_submitted_signed(self, fake, fake_encoder, signing_key):
        fake.batches = [
            [assignment(1), assignment(2, "rank", {"query": "q", "texts": ["a", "b"]}), assignment(3)]
        ]
        runner = make_runner(fake, fake_encoder, signing_key)
        counters = runner.run()
        assert counters.submitted == 3 and counters.batches == 1
        assert len(fake_encoder.calls) == 1
        assert {s["assignment_id"] for s in fake.submissions} == {1, 2, 3}
        by_id = {s["assignment_id"]: s for s in fake.submissions}
        assert len(by_id[1]["output"]["embedding"]) == 384
        assert by_id[2]["output"]["indices"] in ([0, 1], [1, 0])
        metrics = by_id[2]["metrics_json"]
        assert set(metrics) == {
            "request_id",
            "num_tokens",
            "truncated",
            "compute_ms",
            "backend",
            "batch_size",
        }
        assert (
            metrics["request_id"] == "req-2" and metrics["batch_size"] == 3 and metrics["backend"] == "fake"
        )
        assert runner.status is WorkerStatus.stopped

    def test_max_items_is_the_batch_size(self, fake, fake_encoder, signing_key):
        fake.batches = [[assignment(i) for i in range(1, 11)]]
        make_runner(fake, fake_encoder, signing_key, batch_size=4).run()
        polls = [b for p, b in fake.requests if p == "/jobs/poll-batch"]
        assert polls[0]["max_items"] == 4
        assert [len(c) for c in fake_encoder.calls] == [4, 4, 2]
        assert len(fake.submissions) == 10

    def test_conflict_is_logged_and_skipped(self, fake, fake_encoder, signing_key):
        fake.batches = [[assignment(1), assignment(2), assignment(3)]]
        fake.conflict_ids = {2}
        counters = make_runner(fake, fake_encoder, signing_key).run()
        assert counters.conflicts == 1 and counters.submitted == 2
        assert {s["assignment_id"] for s in fake.submissions} == {1, 3}

    def test_invalid_payload_is_submitted_as_error(self, fake, fake_encoder, signing_key):
        fake.batches = [[assignment(1, "embed", {"nope": 1}), assignment(2)]]
        counters = make_runner(fake, fake_encoder, signing_key).run()
        assert counters.job_errors == 1
        bad = next(s for s in fake.submissions if s["assignment_id"] == 1)
        assert bad["error_message"] and bad["output"] is None

    def test_max_jobs_stops_the_loop(self, fake, fake_encoder, signing_key):
        fake.batches = [[assignment(i) for i in range(1, 6)]]
        counters = make_runner(fake, fake_encoder, signing_key, burst=False, max_jobs=3).run()
        assert counters.jobs == 3 and len(fake.submissions) == 3

    def test_connection_errors_back_off_and_recover(self, fake, fake_encoder, signing_key):
        fake.fail_next_polls = 3
        fake.batches = [[assignment(1)]]
        counters = make_runner(fake, fake_encoder, signing_key).run()
        assert counters.connection_errors == 3 and counters.submitted == 1

    def test_heartbeats_are_sent(self, fake, fake_encoder, signing_key):
        stop_after = threading.Event()
        runner = make_runner(fake, fake_encoder, signing_key, burst=False)
        fake.on_poll = lambda f: f.heartbeats >= 2 and (runner.request_stop(), stop_after.set())
        runner.run()
        assert stop_after.is_set() and fake.heartbeats >= 2

    def test_stop_event_stops_a_running_loop(self, fake, fake_encoder, signing_key):
        runner = make_runner(fake, fake_encoder, signing_key, burst=False, heartbeat=False)
        thread = threading.Thread(target=runner.run)
        thread.start()
        threading.Timer(0.2, runner.stop_event.set).start()
        thread.join(timeout=5)
        assert not thread.is_alive()
        assert runner.status is WorkerStatus.stopped

    def test_unknown_worker_ends_with_exit_code_2(self, fake, fake_encoder, signing_key):
        runner = make_runner(fake, fake_encoder, signing_key, worker_id=99, heartbeat=False)
        runner.run()
        assert runner.exit_code == 2

    def test_sigterm_during_poll_stops_quickly(self, fake, fake_encoder, signing_key):
        runner = make_runner(fake, fake_encoder, signing_key, burst=False, heartbeat=False)
        fake.on_poll = lambda f: f.polls == 2 and os.kill(os.getpid(), signal.SIGTERM)
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            runner.install_signal_handlers()
            runner.run()
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
        assert runner.stop_event.is_set() and fake.polls == 2

    def test_sigterm_while_busy_finishes_the_batch(self, fake, fake_encoder, signing_key):
        fake.batches = [[assignment(1), assignment(2)]]
        runner = make_runner(fake, fake_encoder, signing_key, burst=False, heartbeat=False)
        original = fake._submit

        def submit_then_signal(body):
            if body["assignment_id"] == 1:
                os.kill(os.getpid(), signal.SIGTERM)
            return original(body)

        fake._submit = submit_then_signal
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            runner.install_signal_handlers()
            runner.run()
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
        assert {s["assignment_id"] for s in fake.submissions} == {1, 2}
        assert fake.polls == 1

    def test_real_encoder_outputs_verify(self, fake, onnx_encoder, signing_key):
        fake.batches = [
            [
                assignment(1, "embed", {"text": "word " * 2000}),
                assignment(2, "rank", {"query": "bread", "texts": ["baking bread", "stocks"]}),
            ]
        ]
        counters = make_runner(fake, onnx_encoder, signing_key).run()
        assert counters.submitted == 2
        by_id = {s["assignment_id"]: s for s in fake.submissions}
        assert by_id[1]["metrics_json"]["num_tokens"] == 256 and by_id[1]["metrics_json"]["truncated"] is True
        assert np.linalg.norm(by_id[1]["output"]["embedding"]) == pytest.approx(1.0, abs=1e-5)
        assert by_id[2]["output"]["indices"] == [0, 1]


class TestBackoff:
    def test_capped_with_jitter(self):
        for failures in range(1, 20):
            d = backoff_delay(failures, base=1.0, cap=60.0)
            full = min(60.0, 2 ** (failures - 1))
            assert full / 2 <= d <= full
