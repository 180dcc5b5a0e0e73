"""The texts every measurement uses: short sentences (10-16 words), deterministic."""

from __future__ import annotations

_SUBJECTS = ["The pool", "A worker", "The gateway", "Our coordinator", "This client", "The ledger",
             "A verified embedding", "The reranker", "Every request", "The scheduler", "A signed result",
             "The benchmark", "An audit job", "The dashboard", "A long poll", "The model"]
_VERBS = ["answers", "checks", "stores", "ranks", "signs", "measures", "batches", "verifies", "streams",
          "records", "computes", "returns"]
_OBJECTS = ["short sentences about distributed systems", "the cosine similarity of two vectors",
            "a queue of pending assignments", "tokens for every verified job", "the latency of each call",
            "embeddings for a search index", "the reputation of honest workers", "results from two machines",
            "a batch of thirty two texts", "the price of every request"]
_TAILS = ["before lunch.", "in a few milliseconds.", "without waiting.", "on a small machine.",
          "for the client.", "with a signature.", "every second.", "under load."]


def corpus(n: int = 1024) -> list[str]:
    """n distinct-ish short sentences, the same on every run."""
    out = []
    for i in range(n):
        out.append(" ".join((
            _SUBJECTS[i % len(_SUBJECTS)], _VERBS[(i * 7) % len(_VERBS)],
            _OBJECTS[(i * 3) % len(_OBJECTS)], _TAILS[(i * 5) % len(_TAILS)], f"#{i}")))
    return out
