"""A tiny keep-alive HTTP/1.1 load generator (asyncio streams, no client library in the way).

httpx spends more CPU per request than a small FastAPI route does; on a 2-core machine the client
would then measure itself. This one writes prebuilt request bytes and reads the response by
Content-Length, so nearly all the CPU goes to the server under test.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable
from urllib.parse import urlsplit


def build_request(url: str, path: str, body: dict, headers: dict[str, str]) -> bytes:
    u = urlsplit(url)
    data = json.dumps(body, separators=(",", ":")).encode()
    lines = [f"POST {path} HTTP/1.1", f"Host: {u.hostname}:{u.port}", "Content-Type: application/json",
             f"Content-Length: {len(data)}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode() + data


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> tuple[int, bytes]:
    writer.write(req)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:].strip())
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _run(url: str, requests: Callable[[], bytes | None], concurrency: int, duration: float | None,
               samples: list[tuple[float, int, bytes]] | None = None) -> tuple[Counter, int, float, list[bytes]]:
    u = urlsplit(url)
    codes: Counter = Counter()
    errors_seen: list[bytes] = []
    stop_at = None if duration is None else time.perf_counter() + duration

    async def conn() -> None:
        reader, writer = await asyncio.open_connection(u.hostname, u.port)
        try:
            while stop_at is None or time.perf_counter() < stop_at:
                req = requests()
                if req is None:
                    return
                t = time.perf_counter()
                status, body = await _one(reader, writer, req)
                if samples is not None:
                    samples.append(((time.perf_counter() - t) * 1000.0, status, body))
                codes[status] += 1
                if status >= 400 and len(errors_seen) < 3:
                    errors_seen.append(body[:300])
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(conn() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    return codes, sum(codes.values()), elapsed, errors_seen


def hammer(url: str, requests: list[bytes], *, concurrency: int, duration: float | None = None,
           cycle: bool = False, samples: list[tuple[float, int, bytes]] | None = None) -> dict:
    """Send `requests` (cycled for `duration` seconds when cycle=True, else each once) over N connections.

    `samples`, when given, receives (latency ms, status, body) per request.
    """
    it = itertools.cycle(requests) if cycle else iter(requests)

    def nxt() -> bytes | None:
        return next(it, None)

    codes, total, elapsed, errs = asyncio.run(_run(url, nxt, concurrency, duration, samples))
    ok = sum(v for k, v in codes.items() if 200 <= k < 300)
    return {"requests": total, "ok": ok, "elapsed_s": round(elapsed, 3), "per_s": round(ok / elapsed, 1),
            "status_codes": {str(k): v for k, v in sorted(codes.items())}, "concurrency": concurrency,
            "errors": [e.decode(errors="replace") for e in errs]}
