"""The documented error answers the native routes share (their OpenAPI ``responses``)."""

from __future__ import annotations

from typing import Any

from app.schemas import ErrorDetail

Responses = dict[int | str, dict[str, Any]]

#: Every operation that reaches the launcher or writes the state dir.
SERVICE_ERRORS: Responses = {
    503: {
        "model": ErrorDetail,
        "description": "The launcher cannot be reached, or the record store stayed locked.",
    },
    507: {"model": ErrorDetail, "description": "The state dir is full."},
}
#: For operations with a JSON body: FastAPI answers 400 to one it cannot
#: decode at all (not UTF-8), 422 to one that is not valid JSON.
BAD_BODY: Responses = {
    400: {"model": ErrorDetail, "description": "The body could not be decoded."},
}
