"""Child processes that cannot outlive the process that started them.

A service started by ``upbit-pipeline demo`` (or any supervisor of ours) must not keep running
when its parent is killed with SIGKILL, which no ``finally`` block sees. On Linux the kernel can
deliver a signal to the child when its parent dies (``PR_SET_PDEATHSIG``); elsewhere this is a
no-op and the parent's own clean-up is the only guard.
"""

from __future__ import annotations

import ctypes
import signal
import sys

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1
# Resolved in the parent at import: between fork and exec the child only calls this pointer (no
# dlopen, no allocation), which is what makes it safe as a ``preexec_fn`` in a threaded parent.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
_SIGTERM = int(signal.SIGTERM)


def die_with_parent() -> None:
    """``preexec_fn`` for :class:`subprocess.Popen`: SIGTERM this child when its parent dies.

    The kernel ties the signal to the *thread* that forked, so start such children from a thread
    that lives as long as they should (the main thread).
    """
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, _SIGTERM, 0, 0, 0)
