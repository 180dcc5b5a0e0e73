"""The worker run loop: heartbeat thread, long-poll a batch, compute in one model call, sign, submit.

Stopping (rq/arq style): the first SIGINT/SIGTERM sets the stop flag; a long-poll in flight (nothing
in hand) is abandoned at once, a batch in hand is finished and submitted. A second signal stops now.
Connection failures back off exponentially (capped, with jitter) and the loop keeps going.
"""

from __future__ import annotations

import enum
import logging
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from nacl.signing import SigningKey

from worker.client import (
    Assignment,
    AuthError,
    ConflictError,
    CoordinatorClient,
    CoordinatorError,
    CoordinatorUnavailable,
    NotFoundError,
)
from worker.compute import JobResult, compute_batch
from worker.config import DEFAULT_BATCH_SIZE, DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_WAIT_SECONDS
from worker.model import Encoder
from worker.signing import sign_submission

log = logging.getLogger("openmesh.worker.runner")

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 60.0
SUBMIT_ATTEMPTS = 4
"""A computed result stays valid until the assignment's lease expires, so a submit is retried."""
SUBMIT_CONCURRENCY = 4
"""Results of one batch are submitted over this many connections at once (each still its own signed
request): one at a time, a batch of 32 spent most of its wall time waiting on 32 round trips."""


class WorkerStatus(enum.StrEnum):
    starting = "starting"
    polling = "polling"
    busy = "busy"
    backoff = "backoff"
    stopping = "stopping"
    stopped = "stopped"


class StopNow(BaseException):
    """Raised from a signal handler to leave a blocking call (a poll, or anything on the second signal)."""


@dataclass
class RunnerConfig:
    worker_id: Any
    batch_size: int = DEFAULT_BATCH_SIZE
    wait_seconds: float = DEFAULT_WAIT_SECONDS
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL
    backoff_base: float = BACKOFF_BASE_SECONDS
    backoff_cap: float = BACKOFF_CAP_SECONDS
    burst: bool = False
    """Stop when a poll comes back empty (finite mode for tests and scripts)."""
    max_jobs: int | None = None
    """Stop after this many jobs were processed."""
    heartbeat: bool = True
    submit_concurrency: int = SUBMIT_CONCURRENCY


@dataclass
class Counters:
    batches: int = 0
    jobs: int = 0
    submitted: int = 0
    conflicts: int = 0
    refused: int = 0
    job_errors: int = 0
    connection_errors: int = 0
    heartbeats: int = 0
    heartbeat_errors: int = 0


def backoff_delay(
    failures: int, *, base: float = BACKOFF_BASE_SECONDS, cap: float = BACKOFF_CAP_SECONDS
) -> float:
    """Capped exponential backoff with equal jitter: in [d/2, d] where d = min(cap, base·2^(failures-1))."""
    delay = min(cap, base * (2 ** max(0, failures - 1)))
    return delay / 2 + random.uniform(0, delay / 2)


class Runner:
    """Runs one worker: use `run()`; `request_stop()` (or a signal) ends it."""

    def __init__(
        self,
        client: CoordinatorClient,
        encoder: Encoder,
        signing_key: SigningKey,
        config: RunnerConfig,
        *,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.client = client
        self.encoder = encoder
        self.signing_key = signing_key
        self.config = config
        self.stop_event = stop_event or threading.Event()
        self.status = WorkerStatus.starting
        self.counters = Counters()
        self.exit_code = 0
        self._force = False
        self._failures = 0
        self._heartbeat_thread: threading.Thread | None = None
        self._count_lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self._count_lock:
            setattr(self.counters, name, getattr(self.counters, name) + 1)

    # -- stopping --------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Warm stop: finish the batch in hand, poll no more."""
        if not self.stop_event.is_set():
            log.info("stop requested; finishing the current batch")
        self.stop_event.set()
        if self.status not in (WorkerStatus.stopped,):
            self.status = WorkerStatus.stopping

    def request_force_stop(self) -> None:
        """Cold stop: abandon the batch in hand (its leases expire on the coordinator)."""
        self._force = True
        self.request_stop()

    def install_signal_handlers(self) -> None:
        """SIGINT/SIGTERM: first → warm stop (a pending long-poll is abandoned); second → stop now."""

        def handler(signum: int, _frame: Any) -> None:
            if self.stop_event.is_set():
                log.warning("second signal %s: stopping now", signal.Signals(signum).name)
                self.request_force_stop()
                raise StopNow()
            polling = self.status in (WorkerStatus.polling, WorkerStatus.backoff)
            self.request_stop()
            if polling:
                raise StopNow()

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    # -- main loop -------------------------------------------------------------------------
    def run(self) -> Counters:
        """Loop until stopped (or burst/max_jobs is reached); returns the counters."""
        log.info(
            "worker starting",
            extra={
                "worker_id": self.config.worker_id,
                "backend": getattr(self.encoder, "backend", "unknown"),
                "batch_size": self.config.batch_size,
                "coordinator": self.client.base_url,
            },
        )
        if self.config.heartbeat:
            self._heartbeat_thread = threading.Thread(
                target=self._heartbeat_loop, name="heartbeat", daemon=True
            )
            self._heartbeat_thread.start()
        try:
            while not self.stop_event.is_set():
                if not self._turn():
                    break
        except StopNow:
            log.info("stopped while waiting" if not self._force else "forced stop")
        finally:
            self.stop_event.set()
            self.status = WorkerStatus.stopped
            if self._heartbeat_thread is not None:
                self._heartbeat_thread.join(timeout=5)
            log.info("worker stopped", extra={"counters": asdict(self.counters)})
        return self.counters

    def _turn(self) -> bool:
        """One poll → compute → submit round; False ends the loop."""
        self.status = WorkerStatus.polling
        max_items = self.config.batch_size
        if self.config.max_jobs is not None:
            max_items = min(max_items, self.config.max_jobs - self.counters.jobs)
        try:
            batch = self.client.poll_batch(
                self.config.worker_id, max_items=max_items, wait_seconds=self.config.wait_seconds
            )
        except CoordinatorUnavailable as exc:
            self._backoff(exc)
            return True
        except (AuthError, NotFoundError) as exc:
            log.error("coordinator refused this worker: %s", exc)
            self.exit_code = 2
            return False
        except CoordinatorError as exc:
            self._backoff(exc)
            return True
        self._failures = 0
        if not batch:
            return not self.config.burst
        self.status = WorkerStatus.busy
        self.process_batch(batch)
        return self.config.max_jobs is None or self.counters.jobs < self.config.max_jobs

    def _backoff(self, exc: BaseException) -> None:
        self._failures += 1
        self.counters.connection_errors += 1
        delay = backoff_delay(self._failures, base=self.config.backoff_base, cap=self.config.backoff_cap)
        log.warning("coordinator unavailable (%s); retrying in %.1fs", exc, delay)
        self.status = WorkerStatus.backoff
        self.stop_event.wait(delay)

    # -- one batch -------------------------------------------------------------------------
    def process_batch(self, batch: list[Assignment]) -> None:
        """Compute every assignment in one model call, then sign and submit each."""
        self.counters.batches += 1
        received = time.perf_counter()
        jobs = [(a.job.job_type, a.job.payload) for a in batch]
        try:
            results = compute_batch(jobs, self.encoder)
        except Exception as exc:  # a model failure must not kill the loop: report it per job
            log.exception("batch computation failed")
            results = [
                JobResult(output=None, error=f"worker compute error: {type(exc).__name__}") for _ in batch
            ]
        pairs = list(zip(batch, results, strict=True))
        computed = time.perf_counter()
        if len(pairs) > 1 and not self._force and self._submit_batch(pairs):
            pass
        else:
            workers = max(1, min(self.config.submit_concurrency, len(pairs)))
            if workers == 1:
                for assignment, result in pairs:
                    if not self._submit_one(assignment, result, len(batch)):
                        return
            else:
                with ThreadPoolExecutor(workers, thread_name_prefix="submit") as pool:
                    list(pool.map(lambda ar: self._submit_one(ar[0], ar[1], len(batch)), pairs))
        if log.isEnabledFor(logging.DEBUG):
            done = time.perf_counter()
            log.debug("batch timings", extra={"size": len(batch), "compute_ms": round((computed - received) * 1e3, 3),
                                              "submit_ms": round((done - computed) * 1e3, 3)})

    def _submit_batch(self, pairs: list[tuple[Assignment, JobResult]]) -> bool:
        """The whole batch in one request (and one transaction on the coordinator); False: not
        supported there, or the coordinator stayed unreachable, so the caller submits one by one
        (results already accepted then answer 409, which is counted and skipped)."""
        items = [self._signed(a, r, len(pairs)) for a, r in pairs]
        for attempt in range(1, SUBMIT_ATTEMPTS + 1):
            try:
                answers = self.client.submit_batch(worker_id=self.config.worker_id, results=items)
            except CoordinatorUnavailable as exc:
                self._count("connection_errors")
                if attempt == SUBMIT_ATTEMPTS or self._force:
                    log.warning("batch submission failed %d times (%s); submitting one by one", attempt, exc)
                    return False
                self.stop_event.wait(backoff_delay(attempt, base=self.config.backoff_base, cap=5.0))
                continue
            except CoordinatorError as exc:
                log.warning("batch submission refused (%s %s); submitting one by one", exc.status_code, exc.detail)
                return False
            if answers is None or len(answers) != len(items):
                return False
            for (assignment, result), answer in zip(pairs, answers, strict=True):
                self._count("jobs")
                if not result.ok:
                    self._count("job_errors")
                context = _log_context(assignment)
                code = answer.get("status_code", 200)
                if code == 200:
                    self._count("submitted")
                elif code == 409:
                    self._count("conflicts")
                    log.info("submission skipped (409 %s)", answer.get("detail"), extra=context)
                else:
                    self._count("refused")
                    log.warning("submission refused (%s %s)", code, answer.get("detail"), extra=context)
            log.info("submitted a batch", extra={"size": len(items)})
            return True
        return False  # pragma: no cover

    def _signed(self, assignment: Assignment, result: JobResult, batch_size: int) -> dict[str, Any]:
        """The signed submission body of one result (a failed job hands its assignment back: output null)."""
        output = result.output if result.ok else None
        metrics = {
            "request_id": assignment.job.request_id,
            "num_tokens": result.num_tokens,
            "truncated": result.truncated,
            "compute_ms": result.metrics.get("compute_ms", 0.0),
            "backend": getattr(self.encoder, "backend", "unknown"),
            "batch_size": batch_size,
        }
        out_hash, signature = sign_submission(self.signing_key, assignment.assignment_id, assignment.nonce, output)
        item: dict[str, Any] = {"assignment_id": assignment.assignment_id, "nonce": assignment.nonce,
                                "signature": signature, "output": output, "output_hash": out_hash,
                                "metrics_json": metrics}
        if result.error is not None:
            item["error_message"] = result.error
        return item

    def _submit_one(self, assignment: Assignment, result: JobResult, batch_size: int) -> bool:
        if self._force:
            log.warning("abandoning the rest of the batch")
            return False
        self._count("jobs")
        self._submit(assignment, result, batch_size)
        return True

    def _submit(self, assignment: Assignment, result: JobResult, batch_size: int) -> None:
        if not result.ok:
            self._count("job_errors")
        item = self._signed(assignment, result, batch_size)
        context = _log_context(assignment)
        for attempt in range(1, SUBMIT_ATTEMPTS + 1):
            try:
                self.client.submit(
                    worker_id=self.config.worker_id,
                    assignment_id=item["assignment_id"],
                    nonce=item["nonce"],
                    signature=item["signature"],
                    output=item["output"],
                    output_hash=item["output_hash"],
                    metrics_json=item["metrics_json"],
                    error_message=item.get("error_message"),
                )
            except ConflictError as exc:
                self._count("conflicts")
                log.info("submission skipped (409 %s)", exc.detail, extra=context)
                return
            except CoordinatorError as exc:
                self._count("refused")
                log.warning("submission refused (%s %s)", exc.status_code, exc.detail, extra=context)
                return
            except CoordinatorUnavailable as exc:
                self._count("connection_errors")
                if attempt == SUBMIT_ATTEMPTS or self._force:
                    log.error("submission lost after %d attempts: %s", attempt, exc, extra=context)
                    return
                self.stop_event.wait(backoff_delay(attempt, base=self.config.backoff_base, cap=5.0))
                continue
            self._count("submitted")
            log.info(
                "submitted",
                extra={**context, "num_tokens": result.num_tokens, "compute_ms": item["metrics_json"]["compute_ms"]},
            )
            return

    # -- heartbeat -------------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        failures = 0
        while True:
            try:
                self.client.heartbeat(self.config.worker_id)
                self.counters.heartbeats += 1
                if failures:
                    log.info("heartbeat restored")
                failures = 0
            except (CoordinatorUnavailable, CoordinatorError) as exc:
                failures += 1
                self.counters.heartbeat_errors += 1
                if failures == 1 or failures % 12 == 0:  # don't flood the log during an outage
                    log.warning("heartbeat failed (%s)", exc)
            except Exception:  # the heartbeat thread must outlive any surprise
                log.exception("heartbeat error")
            if self.stop_event.wait(self.config.heartbeat_interval):
                return


def _log_context(assignment: Assignment) -> dict[str, Any]:
    return {"assignment_id": assignment.assignment_id, "job_id": assignment.job.job_id,
            "request_id": assignment.job.request_id}


def run_worker(
    client: CoordinatorClient,
    encoder: Encoder,
    signing_key: SigningKey,
    config: RunnerConfig,
    *,
    handle_signals: bool = True,
) -> Runner:
    """Build a Runner, install signal handlers (main thread only) and run it to the end."""
    runner = Runner(client, encoder, signing_key, config)
    if handle_signals and threading.current_thread() is threading.main_thread():
        runner.install_signal_handlers()
    started = time.monotonic()
    runner.run()
    log.info("ran for %.1fs", time.monotonic() - started)
    return runner
