import platform

import numpy as np
import pytest

from engine import allocator

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the knobs are glibc's")


@glibc
def test_glibc_takes_the_settings_and_they_can_be_repeated():
    assert allocator.keep_freed_memory() is True
    assert allocator.keep_freed_memory(64 * 2**20) is True
    assert allocator.keep_freed_memory() is True


@glibc
def test_large_buffers_still_work_and_memory_can_be_released():
    allocator.keep_freed_memory()
    for _ in range(3):  # freed and reallocated: what a detector does layer after layer
        block = np.ones(40 * 2**20 // 8)
        assert block.sum() == block.size
        del block
    assert isinstance(allocator.release_freed_memory(), bool)


def test_without_glibc_it_does_nothing(monkeypatch):
    allocator._glibc.cache_clear()
    monkeypatch.setattr(allocator.ctypes.util, "find_library", lambda name: None)
    try:
        assert allocator.keep_freed_memory() is False
        assert allocator.release_freed_memory() is False
    finally:
        allocator._glibc.cache_clear()
