"""How this process's C allocator treats the large buffers of model inference (glibc only; elsewhere a no-op).

By default glibc serves every block above a sliding threshold (at most 32 MB) with a fresh ``mmap`` and gives it
back to the system on free. A detector activation of a page is tens of MB, so every layer of every page paid
for zero-filled pages from the kernel, for no lower peak memory. ``keep_freed_memory`` raises the threshold so
freed buffers are reused; ``release_freed_memory`` hands the unused part back, for a long-lived process that goes idle.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers from glibc's malloc.h
M_MMAP_THRESHOLD = -3
LARGE_BUFFER_BYTES = 256 * 2**20


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if libc is None or not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
        return None  # musl, macOS, Windows: their allocators have no such knobs
    return libc


def keep_freed_memory(limit_bytes: int = LARGE_BUFFER_BYTES) -> bool:
    """Reuse freed blocks up to ``limit_bytes`` instead of returning them to the system at once.

    Returns whether the allocator took the setting (False off glibc). Safe to call more than once.
    """
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, limit_bytes)) and bool(libc.mallopt(M_TRIM_THRESHOLD, limit_bytes))


def release_freed_memory() -> bool:
    """Give the freed memory the process keeps back to the system (e.g. when a server goes idle)."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
