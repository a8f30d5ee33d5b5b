"""HTTP helpers of the ``nas`` plugin's routes: JSON errors that name the parameter, compact JSON with floats
and steps encoded as a browser reads them, and response bodies kept with their gzip.

Every response goes through ``http_util.Respond``. Non-finite numbers are sent as JSON ``null``; floats with
7 significant digits; steps beyond +-(2**53 - 1) as decimal strings.
"""
from __future__ import annotations

import functools
import gzip
import json
import logging
import math
import re
import secrets

import numpy as np
from tensorboard import errors
from tensorboard.backend import http_util
from werkzeug import wrappers

logger = logging.getLogger("nas_tb_plugin.routes")  # the routes' log, where their failures are looked for

JSON = "application/json"

# Longest error message sent back: messages quote the offending value, which a client controls.
MAX_ERROR_CHARS = 300


class ApiError(Exception):
    """A client error: HTTP ``status`` with ``{"error": message, "parameter": parameter}``."""

    def __init__(self, status: int, message: str, parameter: str | None) -> None:
        if len(message) > MAX_ERROR_CHARS:
            message = f"{message[:MAX_ERROR_CHARS]}... ({len(message)} characters)"
        super().__init__(message)
        self.status, self.message, self.parameter = status, message, parameter


def endpoint(handler):
    """Make ``handler(self, request) -> Response`` a WSGI app that answers errors as JSON."""

    @functools.wraps(handler)
    def app(self, environ, start_response):
        request = wrappers.Request(environ)
        try:
            response = handler(self, request)
        except ApiError as e:
            response = error_response(request, e.status, e.message, e.parameter)
        except errors.PublicError as e:
            response = error_response(request, e.http_code, str(e), None)
        except Exception as e:  # a bug or a failing data provider: log it, show no traceback
            logger.exception("nas: %s failed", request.path)
            response = error_response(request, 500, f"internal error ({type(e).__name__}); see the TensorBoard log", None)
        return response(environ, start_response)

    return app


def error_response(request, status: int, message: str, parameter: str | None):
    return json_response(request, {"error": message, "parameter": parameter}, status)


def json_response(request, body: dict, status: int = 200):
    """Respond with ``body`` as compact JSON. Serialised here rather than by Respond, whose
    recursive NaN-cleansing costs more than the encoding itself; non-finite floats are already None."""
    return http_util.Respond(request, encode(body), JSON, code=status)


class JSONText:
    """A value whose JSON is made beforehand (see :func:`json_floats`), spliced into the body by :func:`encode`."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


# Stands for a JSONText in json.dumps' output until encode splices the text in: random, so that no string of
# a body (a run name) is taken for it.
SPLICE = "nas-json-" + secrets.token_hex(16)


def encode(body: dict) -> str:
    """Compact JSON of ``body``, with the text of each :class:`JSONText` in it as it stands."""
    texts: list[str] = []

    def splice(value):
        if not isinstance(value, JSONText):
            raise TypeError(f"{type(value).__name__} is not JSON serializable")
        texts.append(value.text)
        return SPLICE

    out = json.dumps(body, separators=(",", ":"), allow_nan=False, default=splice)
    if not texts:
        return out
    pieces = out.split(f'"{SPLICE}"')  # in the order json.dumps asked for them
    return "".join(piece + text for piece, text in zip(pieces, texts)) + pieces[-1]


# Accept-Encoding values that http_util.Respond answers gzipped (its own pattern: gzip, x-gzip or *, not q=0).
_ACCEPTS_GZIP = re.compile(r"(?:^|,|\s)(?:(?:x-)?gzip|\*)(?!;q=0)(?:\s|,|$)")


class Body:
    """A kept response body: its bytes, and the same gzipped once, on the first request that accepts gzip
    (as browsers do): http_util.Respond would compress them again for every such request."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._gzipped: bytes | None = None

    def respond(self, request, content_type: str, headers=None):
        if not _ACCEPTS_GZIP.search(request.headers.get("Accept-Encoding", "")):
            return http_util.Respond(request, self.data, content_type, headers=headers)
        if self._gzipped is None:  # two requests at once may both compress it: to the same bytes
            # Level 2, not Respond's 3: half the time on a group's `lines` (~10 ms of ~20 for 500 KB of JSON),
            # 4 % more bytes (benchmarks/plugin_latency.py).
            self._gzipped = gzip.compress(self.data, compresslevel=2, mtime=0)
        return http_util.Respond(request, self._gzipped, content_type, content_encoding="gzip", headers=headers)


def printed_floats(values: np.ndarray) -> str:
    """``values`` (flattened) printed by C's ``%.7g`` at once and joined by commas (7 significant digits:
    about float32's precision, in which every NAS value and scalar is stored, and half the text of float64's
    shortest repr); NaN and infinities as ``null``. Twice as fast as json.dumps of the rounded floats: a
    `heatmaps` body holds thousands, a group's `lines` 45,000."""
    v = np.asarray(values, dtype=np.float64).ravel().tolist()
    text = ("%.7g," * len(v) % tuple(v))[:-1]
    if "n" in text:  # "nan", "inf": no other %g output holds an n
        text = ",".join("%.7g" % x if math.isfinite(x) else "null" for x in v)
    return text


def json_floats(values: np.ndarray) -> JSONText:
    """The JSON array of ``values`` (flattened) as :func:`printed_floats` prints them."""
    return JSONText(f"[{printed_floats(values)}]")


def csv_floats(arrays: list[np.ndarray]) -> list[list[str]]:
    """The cells of each array (flattened) as :func:`printed_floats` prints them, empty where not finite:
    one pass over many small arrays (a response's layers), whose fixed cost exceeds that of their values."""
    if not arrays:
        return []
    cells = ["" if c == "null" else c for c in printed_floats(np.concatenate([np.ravel(a) for a in arrays])).split(",")]
    bounds = np.cumsum([0] + [np.size(a) for a in arrays]).tolist()
    return [cells[start:end] for start, end in zip(bounds, bounds[1:])]


# The largest integer a JavaScript number holds exactly (Number.MAX_SAFE_INTEGER).
MAX_SAFE_STEP = 2**53 - 1


def step_json(step: int | None) -> int | str | None:
    """A step for JSON: an int, or its decimal string beyond +-(2**53 - 1), where a browser's JSON.parse
    would round it (steps are int64 in event files)."""
    if step is None:
        return None
    step = int(step)
    return step if -MAX_SAFE_STEP <= step <= MAX_SAFE_STEP else str(step)


def steps_json(steps: np.ndarray) -> list[int | str]:
    """Steps for JSON, see :func:`step_json`."""
    steps = np.asarray(steps, dtype=np.int64)
    if steps.size == 0 or (steps.min() >= -MAX_SAFE_STEP and steps.max() <= MAX_SAFE_STEP):
        return steps.tolist()
    return [step_json(s) for s in steps.tolist()]


def image_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    return "application/octet-stream"
