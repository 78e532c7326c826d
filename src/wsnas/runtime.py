"""Process-wide settings the ``wsnas`` commands apply before they work: the C allocator's.

Training on a CPU frees and reallocates the same activation tensors (megabytes each) every
step. With glibc's default thresholds such blocks are given back to the operating system when
freed (``munmap``, heap trimming) and faulted back in, page by page and zeroed, on the next
step: on this project's 2-core machine that was 10,000-60,000 page faults per NB201 training
step, 10-25% of the step's time, and a step time that varied from process to process with the
threshold glibc happened to settle on. :func:`tune_allocator` fixes the thresholds so that freed
blocks stay in the process for reuse, as PyTorch's CUDA caching allocator keeps GPU memory: the
peak memory is the same, but the process keeps (up to 2 GiB of) it after the peak.

``WSNAS_MALLOC=system`` leaves glibc's defaults; so does any ``MALLOC_*`` setting of the user's
or a glibc ``malloc`` tunable. Elsewhere than glibc (macOS, musl) nothing is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # blocks up to 32 MiB come from the heap (glibc's dynamic maximum)
TRIM_THRESHOLD = 2**31 - 1   # keep up to 2 GiB of free heap (mallopt takes an int)
CHOICES = ("tuned", "system")

_applied: bool | None = None


def allocator_setting() -> str:
    """``tuned`` (default) or ``system``, from ``WSNAS_MALLOC``; anything else is an error."""
    value = os.environ.get("WSNAS_MALLOC", "tuned").strip().lower() or "tuned"
    if value not in CHOICES:
        from wsnas.errors import WsnasError  # here: the benchmark loads this file without wsnas

        raise WsnasError(f"WSNAS_MALLOC={value!r} not understood; accepted: {', '.join(CHOICES)}")
    return value


def _user_configured() -> bool:
    if any(key.startswith("MALLOC_") for key in os.environ):
        return True
    return "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "")


def tune_allocator() -> bool:
    """Apply the thresholds once per process; True when glibc's allocator was tuned."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if allocator_setting() == "system" or _user_configured() or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # setting the mmap threshold also turns off glibc's dynamic adjustment of both thresholds
    _applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied
