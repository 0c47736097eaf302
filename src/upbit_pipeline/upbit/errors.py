"""Errors raised at the Upbit edge, placed in the project's transient/terminal tree."""

from __future__ import annotations

from upbit_pipeline.errors import TerminalError, TransientError


class MalformedFrameError(TerminalError):
    """A WebSocket frame or REST body that does not decode.

    Callers count it and route ``raw`` to the dead letter; it never stops a service.
    """

    def __init__(self, reason: str, raw: bytes) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw


class UpbitApiError(TerminalError):
    """An Upbit REST error body ``{"error":{"name":404,"message":"Code not found"}}``.

    ``name`` is an int for quotation errors (400, 404) and a string elsewhere ("not_found").
    """

    def __init__(self, status: int, name: int | str, message: str, url: str = "") -> None:
        super().__init__(f"Upbit HTTP {status} {name}: {message}" + (f" ({url})" if url else ""))
        self.status = status
        self.name = name
        self.message = message
        self.url = url


class RateLimitedError(TransientError):
    """HTTP 429 from Upbit: slow down and retry this group later."""

    def __init__(self, group: str, message: str = "") -> None:
        super().__init__(
            f"Upbit rate limit (429) in group {group!r}{': ' + message if message else ''}"
        )
        self.group = group


class BannedError(TerminalError):
    """HTTP 418: the IP is banned for a while; retrying before ``until_s`` extends the ban."""

    def __init__(self, group: str, until_s: float, message: str = "") -> None:
        super().__init__(
            f"Upbit banned this IP (418) in group {group!r} until t={until_s:.0f}"
            + (f": {message}" if message else "")
        )
        self.group = group
        self.until_s = until_s


class UpbitServerError(TransientError):
    """HTTP 5xx or a dropped connection: retry with backoff."""


class WebSocketErrorFrame(TerminalError):
    """Upbit answered the subscription with an error frame (NO_TICKET, INVALID_PARAM, ...)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"Upbit WebSocket error {name}: {message}")
        self.name = name
        self.message = message
