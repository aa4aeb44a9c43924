"""Request bodies are bounded before any handler, parser or middleware sees them.

An outermost ASGI middleware:
- answers 413 at once when `Content-Length` says the body is larger than
  CALLGAUGE_GATEWAY_MAX_BODY_BYTES (1 MiB by default), without reading it;
- otherwise reads the body as it streams in (chunked bodies have no length), counting bytes, and
  answers 413 as soon as the count passes the cap: at most the cap plus one chunk is ever held;
- answers 422 when a JSON body nests deeper than CALLGAUGE_GATEWAY_MAX_JSON_DEPTH (Python's json
  parser and pydantic recurse per level; a deep body was a RecursionError and a 500);
- then hands the (bounded) body on to the application unchanged.

Every answer is in the error envelope. Form and multipart bodies (`POST /tests/run`) and the
unauthenticated `/auth/*` routes are covered like every other route: the check runs before auth.
"""

from __future__ import annotations

from callgauge_gateway.entrypoints.envelope import error

_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_OPENERS = b"[{"
_CLOSERS = b"]}"


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """True when the JSON text nests arrays/objects deeper than `limit`. Brackets inside strings do
    not count. Linear in the body's size; never recurses."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        elif byte in _CLOSERS:
            depth -= 1
    return False


class BodyLimitMiddleware:
    def __init__(self, app, max_bytes: int, max_json_depth: int) -> None:
        self.app, self.max_bytes, self.max_json_depth = app, max_bytes, max_json_depth

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await self._answer(scope, send, 400, "Content-Length is not a number")
                return
            if declared > self.max_bytes:
                await self._answer(scope, send, *self._too_large())
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away; nothing to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._answer(scope, send, *self._too_large())
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        ctype = headers.get(b"content-type", b"").lower()
        # a body without a content type is read as JSON by POST /tests/run
        if (b"json" in ctype or not ctype.strip()) and json_depth_exceeds(body, self.max_json_depth):
            await self._answer(scope, send, 422, "The request is not valid: see details", [{
                "loc": ["body"], "type": "json_too_deep",
                "msg": f"JSON nests deeper than {self.max_json_depth} levels"}])
            return
        delivered = False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        await self.app(scope, replay, send)

    def _too_large(self) -> tuple[int, str, list]:
        return 413, f"The request body is larger than {self.max_bytes} bytes", [{
            "loc": ["body"], "type": "body_too_large", "msg": f"at most {self.max_bytes} bytes",
            "limit": self.max_bytes}]

    async def _answer(self, scope, send, status: int, message: str, details: list | None = None) -> None:
        # inside the request-context middleware: the request id is set and added to the headers
        response = error(status, message, details)
        response.headers["Connection"] = "close"  # the rest of the body is not read
        await response(scope, self._no_receive, send)

    @staticmethod
    async def _no_receive():
        return {"type": "http.disconnect"}
