"""Give freed buffer memory back to the OS after each flush, so RSS follows what is buffered.

The sink's buffers are freed in bulk when a unit is written, but two allocators keep the pages:

* Arrow's memory pool (mimalloc in the pyarrow wheels) caches freed segments for reuse;
  ``release_unused()`` returns them.
* glibc malloc holds the raw frames (``bytes`` objects above pymalloc's 512-byte limit, and
  librdkafka's buffers) in per-thread arenas; a freed hole below a live allocation is never
  returned by ``free`` alone. ``malloc_trim(0)`` hands every free page of every arena back.

Both calls cost well under a millisecond per flush at the sink's rate, which is a few flushes a
second at most. On a libc without ``malloc_trim`` (musl, macOS) only Arrow's pool is released.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

import pyarrow as pa  # type: ignore[import-untyped]

__all__ = ["release_memory"]


def _find_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_MALLOC_TRIM = _find_malloc_trim()


def release_memory() -> None:
    """Return the unused pages of Arrow's pool and of glibc's arenas to the OS."""
    pa.default_memory_pool().release_unused()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
