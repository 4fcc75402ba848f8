"""The sensor's malloc tuning: applied on glibc, harmless to ask for twice."""

from __future__ import annotations

import platform

import pytest

from plantwarden.monitoring.tuning import keep_freed_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_keeps_freed_memory_when_asked() -> None:
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True
