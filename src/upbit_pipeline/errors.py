"""One exception tree for the whole project.

Retry code never guesses: anything worth retrying derives from :class:`TransientError`, anything
that retrying cannot fix derives from :class:`TerminalError`. :class:`UserError` is the terminal
error whose message is shown to a person as one line, without a stack trace.
"""

from __future__ import annotations


class UpbitPipelineError(Exception):
    """Root of every error this package raises on purpose."""


class TransientError(UpbitPipelineError):
    """A failure that may succeed when tried again later (network, 429, 5xx, broker down)."""


class TerminalError(UpbitPipelineError):
    """A failure that trying again will not fix (bad input, a ban, a bug in a request)."""


class UserError(TerminalError):
    """A mistake the user can fix; the CLI prints ``str(error)`` as one line and exits 2."""


class ConfigError(UserError):
    """A configuration key is unknown or its value is invalid; the message names the key."""
