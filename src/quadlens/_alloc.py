"""Keep freed multi-megabyte buffers in the process instead of returning them to the OS.

glibc serves large allocations with mmap and trims freed heap memory eagerly; a training step
that allocates and frees tensors of a few megabytes then pays page faults on every step, which
on a 2-core CPU costs as much as the arithmetic. Raising the two thresholds (mallopt) lets
freed blocks be reused. Only the allocator's policy changes, never a result.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done = False


def tune_allocator() -> None:
    global _done
    if _done or not sys.platform.startswith("linux"):
        return
    _done = True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)  # the largest value glibc accepts
        libc.mallopt(_M_TRIM_THRESHOLD, 1024 * 1024 * 1024)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass
