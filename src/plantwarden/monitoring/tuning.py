"""Process tuning for a sensor: keep freed memory for the next batch instead of returning it.

Every batch allocates and frees tens of megabytes of numpy columns. glibc's malloc hands large
blocks straight back to the kernel (mmap for blocks over its threshold, trimming the heap top),
and the next batch faults the same pages in again: measured 20 to 50 ns a packet of system time.
Raising both thresholds keeps the pages in the process; the sensor's peak memory does not grow.
"""

from __future__ import annotations

import ctypes
import platform

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's upper limit on 64-bit systems
TRIM_THRESHOLD = 512 << 20


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed blocks for reuse; whether it applied (only glibc can)."""
    if platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
