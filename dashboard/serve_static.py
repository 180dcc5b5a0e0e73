"""Serve an exported dashboard build (`reflex export --frontend-only`) with Reflex's SPA fallback."""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route


def create_app(root: Path) -> Starlette:
    root = root.resolve()

    async def serve(request: Request) -> Response:
        rel = request.url.path.lstrip("/")
        for candidate in (rel, f"{rel}.html", f"{rel}/index.html"):
            path = (root / candidate).resolve()
            if path.is_file() and root in path.parents:
                return FileResponse(path)
        # Dynamic routes (/jobs/123) are rendered client-side from the SPA fallback page.
        return FileResponse(root / "__spa-fallback.html", headers={"Cache-Control": "no-store"})

    return Starlette(routes=[Route("/{path:path}", serve)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args()
    uvicorn.run(create_app(args.root), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
