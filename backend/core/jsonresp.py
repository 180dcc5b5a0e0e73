"""JSON responses for the hot routes, encoded once with orjson.

A plain dict returned from a FastAPI route is walked by jsonable_encoder and then encoded again by
json.dumps; for a 384-float embedding that walk costs more than the rest of the route. Types orjson
does not know (Decimal, enums in odd places) fall back to jsonable_encoder, so the bytes mean the same.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse


def dumps(content: Any) -> bytes:
    return orjson.dumps(content, default=jsonable_encoder)


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps(content)
