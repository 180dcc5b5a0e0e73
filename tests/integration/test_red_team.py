"""Red team: honest workers and liars of every kind in one pool, with audits on; the real model.

In-process (the coordinator app in a TestClient, as in tests/backend/coordinator/test_verification.py),
but every output comes from the real ONNX encoder, so "the embedding of a slightly altered text" is
the real near-miss (cosine ~0.98-0.99) the 0.9999 threshold exists for. Client requests arrive in
waves larger than the honest workers' capacity, so liars get work, get paired with honest workers
and with each other, and are caught by disputes and audits.

Asserts: every client answer is the honest one (cosine >= 0.9999 to the model's own embedding,
rank scores within 1e-4), every liar ends banned, no honest worker is ever rejected. Prints the
figures; with RED_TEAM_RESULTS=<file> it appends them as one JSON line (docs/red-team.md).
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from backend.coordinator.jobs import sweep
from backend.core.config import get_settings
from tests.backend.coordinator.jobhelpers import BackgroundRequest, submit
from tests.factories import admin_login, credit, make_api_key, make_user, make_worker

pytestmark = pytest.mark.e2e

TEXTS = [
    "The cat sat on the warm windowsill all afternoon.",
    "Distributed systems need careful failure handling.",
    "She ordered a large coffee and a croissant.",
    "The committee approved the new budget on Tuesday.",
    "Rainfall this spring was twice the seasonal average.",
    "He repaired the old bicycle with spare parts.",
    "Vector databases index embeddings for fast search.",
    "The museum opens a new exhibition of modern art.",
    "Our team won the regional football championship.",
    "Fresh bread smells wonderful early in the morning.",
    "The train to the airport leaves every twenty minutes.",
    "Quantum computers use qubits instead of classical bits.",
    "The recipe calls for two cups of flour and an egg.",
    "Mountain hikers should always carry enough water.",
    "The library extended its opening hours for exams.",
    "Electric cars are becoming cheaper every year.",
]
QUERIES = ["what to eat for breakfast", "computer hardware and software", "outdoor sports and travel",
           "news about the city council", "weather and climate"]
FILLER = ["padding text that changes the batch shape", "x",
          "another filler sentence, a little longer than that"]
CACHED_TEXT = "A completely unrelated sentence the cheater embedded once."


def alter_one_word(text: str) -> str:
    words = text.split()
    i = len(words) // 2
    words[i] = "banana" if words[i].lower() != "banana" else "apple"
    return " ".join(words)


class Model:
    """The real encoder, with a cache of the true answers (what the client must receive)."""

    def __init__(self, encoder) -> None:
        self.encoder = encoder
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts)[0]

    def true_vec(self, text: str) -> np.ndarray:
        if text not in self._cache:
            self._cache[text] = self.embed([text])[0]
        return self._cache[text]

    def rank_from(self, qv: np.ndarray, tv: np.ndarray) -> dict[str, Any]:
        scores = (tv.astype(np.float32) @ qv.astype(np.float32)).astype(np.float32).tolist()
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return {"indices": order, "scores": [scores[i] for i in order]}

    def true_rank(self, payload) -> dict[str, Any]:
        qv = self.true_vec(payload["query"])
        return self.rank_from(qv, np.stack([self.true_vec(t) for t in payload["texts"]]))


@dataclass
class Player:
    name: str
    kind: str  # "honest" or the liar's trick
    tw: Any = None
    batch_extra: int = 0
    last: dict[str, dict] = field(default_factory=dict)
    assignments: int = 0
    lies: int = 0
    refused_422: int = 0
    banned_after_jobs: int | None = None
    statuses: list[str] = field(default_factory=list)

    @property
    def honest(self) -> bool:
        return self.kind == "honest"

    def compute_honest(self, model: Model, job) -> dict[str, Any]:
        """The real computation, batched with fillers (the shape varies by worker: harmless float noise)."""
        p = job["payload"]
        texts = [p["text"]] if job["job_type"] == "embed" else [p["query"], *p["texts"]]
        vecs = model.embed(texts + FILLER[: self.batch_extra])[: len(texts)]
        if job["job_type"] == "embed":
            return {"embedding": vecs[0].tolist()}
        return model.rank_from(vecs[0], vecs[1:])

    def answer(self, model: Model, job, rng: random.Random) -> dict[str, Any]:
        jt, p = job["job_type"], job["payload"]
        honest = self.compute_honest(model, job)
        k = self.kind
        if k == "honest":
            out = honest
        elif k == "random":
            if jt == "embed":
                v = np.array([rng.gauss(0, 1) for _ in range(384)])
                out = {"embedding": (v / np.linalg.norm(v)).tolist()}
            else:
                out = model.rank_from(np.array([rng.gauss(0, 1) for _ in range(384)], dtype=np.float32),
                                      np.stack([model.true_vec(t) for t in p["texts"]]))
        elif k == "cached":
            if jt == "embed":
                out = {"embedding": model.true_vec(CACHED_TEXT).tolist()}
            else:
                out = model.rank_from(model.true_vec(CACHED_TEXT),
                                      np.stack([model.true_vec(t) for t in p["texts"]]))
        elif k == "zeros":
            out = ({"embedding": [0.0] * 384} if jt == "embed"
                   else {"indices": list(range(len(p["texts"]))), "scores": [0.0] * len(p["texts"])})
        elif k == "copy":
            out = self.last.get(jt) or honest  # replays its first (honest) answer forever after
        elif k == "altered":
            if jt == "embed":
                out = {"embedding": model.true_vec(alter_one_word(p["text"])).tolist()}
            else:
                out = model.rank_from(model.true_vec(alter_one_word(p["query"])),
                                      np.stack([model.true_vec(t) for t in p["texts"]]))
        elif k == "rank_rotate":  # honest on embeds; on rank jobs the right scores on the wrong texts
            if jt == "embed":
                out = honest
            else:
                n = len(p["texts"])
                by_text = dict(zip(honest["indices"], honest["scores"], strict=True))
                rotated = {(i + 1) % n: s for i, s in by_text.items()}
                order = sorted(rotated, key=lambda i: (-rotated[i], i))
                out = {"indices": order, "scores": [rotated[i] for i in order]}
        elif k == "rank_reverse":  # honest on embeds; on rank jobs the least relevant text first
            if jt == "embed":
                out = honest
            else:
                idx = honest["indices"][::-1]
                out = {"indices": idx, "scores": honest["scores"]}
        else:
            raise AssertionError(k)
        self.last.setdefault(jt, out)
        return out


LIAR_KINDS = ["random", "cached", "zeros", "copy", "altered", "rank_rotate", "rank_reverse"]
N_HONEST = 5
MIN_WAVES = 8
MAX_WAVES = 16
"""At least MIN_WAVES waves; then more (up to MAX_WAVES) while a liar is still unbanned: the rank-only
liars answer embeds honestly and are caught only when they draw rank jobs."""
WAVE_SIZE = 8


def _is_honest_output(model: Model, job_type: str, payload, out) -> bool:
    if job_type == "embed":
        v = np.asarray(out["embedding"], dtype=np.float64)
        t = model.true_vec(payload["text"]).astype(np.float64)
        norms = np.linalg.norm(v) * np.linalg.norm(t)
        return bool(norms > 0) and float(v @ t / norms) >= 0.9999
    true = model.true_rank(payload)
    want = dict(zip(true["indices"], true["scores"], strict=True))
    got = dict(zip(out["indices"], out["scores"], strict=True))
    return want.keys() == got.keys() and max(abs(want[i] - got[i]) for i in want) <= 1e-4


@pytest.fixture
def fresh_database():
    """e2e-marked tests skip the suite's per-test reset; this one wants a clean database."""
    from tests.conftest import _reset_database

    get_settings.cache_clear()
    _reset_database()


@pytest.fixture(scope="module")
def model():
    os.environ["HF_HUB_OFFLINE"] = "1"
    from worker.model import load_encoder

    return Model(load_encoder("onnx"))


def test_red_team_no_lie_reaches_a_client(fresh_database, coordinator, model, monkeypatch):
    monkeypatch.setenv("AUDIT_RATE", "0.25")
    monkeypatch.setenv("ASSIGNMENT_LEASE_SECONDS", "1.5")
    monkeypatch.setenv("HEARTBEAT_TIMEOUT_SECONDS", "600")
    get_settings.cache_clear()
    settings = get_settings()
    seed = int(os.environ.get("RED_TEAM_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)

    admin = admin_login(coordinator, settings)
    client = make_user(coordinator, "client")
    credit(coordinator, admin, client, "1000")
    key = make_api_key(coordinator, client)
    players = [Player(f"honest-{i}", "honest", batch_extra=i % (len(FILLER) + 1)) for i in range(N_HONEST)]
    players += [Player(f"liar-{k}", k) for k in LIAR_KINDS]
    rng.shuffle(players)  # registration order (the scheduler's last tie-break) differs per run
    spec = {"reputation": 0.9, "estimated_latency_ms": 100, "max_concurrency": 2}
    for p in players:
        p.tw = make_worker(coordinator, make_user(coordinator, "worker_owner"), name=p.name, specs=spec)
    by_id = {p.tw.id: p for p in players}
    honest_first = [p for p in players if p.honest] + [p for p in players if not p.honest]

    jobs_sent = 0
    answers: list[tuple[str, dict, dict]] = []
    failures: list[str] = []

    def refresh_bans():
        rows = coordinator.get("/admin/workers", headers=admin.headers).json()["workers"]
        for w in rows:
            p = by_id.get(w["id"])
            if p and w["status"] == "banned" and p.banned_after_jobs is None:
                p.banned_after_jobs = jobs_sent

    wave = 0
    while wave < MIN_WAVES or (wave < MAX_WAVES and any(p.banned_after_jobs is None for p in players
                                                        if not p.honest)):
        wave += 1
        reqs = []
        for _ in range(WAVE_SIZE):
            if rng.random() < 0.6:
                payload, jt = {"text": rng.choice(TEXTS)}, "embed"
            else:
                payload = {"query": rng.choice(QUERIES), "texts": rng.sample(TEXTS, rng.randint(3, 6))}
                jt = "rank"
            req = BackgroundRequest(coordinator, "/internal/jobs", {"api_key": key, "job_type": jt,
                                                                     "payload": payload, "wait_seconds": 60})
            req.start()
            jobs_sent += 1
            reqs.append((jt, payload, req))
        idle_since = time.monotonic()
        deadline = time.monotonic() + 60
        while any(r.is_alive() for *_, r in reqs):
            assert time.monotonic() < deadline, "a wave did not finish"
            progressed = False
            rest = honest_first[N_HONEST:]
            rng.shuffle(rest)
            for p in honest_first[:N_HONEST] + rest:
                if p.banned_after_jobs is not None:
                    continue
                r = coordinator.post("/jobs/poll-batch", json={"worker_id": p.tw.id, "max_items": 2,
                                                               "wait_seconds": 0}, headers=p.tw.owner.headers)
                if r.status_code == 403:  # banned
                    refresh_bans()
                    continue
                assert r.status_code == 200, r.text
                for item in r.json()["assignments"]:
                    progressed = True
                    p.assignments += 1
                    out = p.answer(model, item["job"], rng)
                    lie = not _is_honest_output(model, item["job"]["job_type"], item["job"]["payload"], out)
                    assert not (p.honest and lie), "the honest worker itself computed a wrong answer"
                    p.lies += lie
                    res = submit(coordinator, p.tw, item, out)
                    if res.status_code == 422:
                        assert not p.honest, res.text
                        p.refused_422 += 1
                        continue  # a liar that is refused just walks away; its lease runs out
                    if res.status_code in (403, 409):  # banned meanwhile / job already decided
                        assert not p.honest or res.status_code == 409, res.text
                        continue
                    assert res.status_code == 200, res.text
                    p.statuses.append(res.json()["status"])
                    if p.kind == "zeros" and item["job"]["job_type"] == "embed":
                        raise AssertionError("a zero vector was accepted as a vote")
            refresh_bans()
            if progressed:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > 0.3:
                sweep.run_once()  # what APScheduler does every few seconds: expired leases, backlog
                idle_since = time.monotonic()
            else:
                time.sleep(0.02)
        for jt, payload, req in reqs:
            r = req.result()
            if r.status_code != 200:
                failures.append(f"{r.status_code} {r.text[:200]}")
                continue
            answers.append((jt, payload, r.json()["output"]))

    refresh_bans()
    delivered_lies = sum(not _is_honest_output(model, jt, p, out) for jt, p, out in answers)
    workers = {w["id"]: w for w in coordinator.get("/admin/workers", headers=admin.headers).json()["workers"]}
    audits = coordinator.get("/admin/jobs?is_audit=true&limit=500", headers=admin.headers).json()["total"]
    figures = {
        "seed": seed, "client_jobs": jobs_sent, "audit_jobs": audits, "answers": len(answers),
        "failed_jobs": len(failures), "lies_submitted": sum(p.lies for p in players),
        "lies_refused_422": sum(p.refused_422 for p in players), "lies_delivered": delivered_lies,
        "liars": {p.kind: {"assignments": p.assignments, "lies": p.lies,
                           "banned_after_client_jobs": p.banned_after_jobs}
                  for p in players if not p.honest},
        "honest_rejections": sum(workers[p.tw.id]["rejected_count"] for p in players if p.honest),
    }
    print("\nRED TEAM " + json.dumps(figures))
    if os.environ.get("RED_TEAM_RESULTS"):
        with open(os.environ["RED_TEAM_RESULTS"], "a") as fh:
            fh.write(json.dumps(figures) + "\n")

    assert delivered_lies == 0
    assert not failures, failures
    for p in players:
        w = workers[p.tw.id]
        if p.honest:
            assert w["rejected_count"] == 0 and w["status"] != "banned", (p.name, w)
            assert "rejected" not in p.statuses, p.name
        else:
            assert w["status"] == "banned", (p.kind, w)
    assert figures["lies_submitted"] > 0
