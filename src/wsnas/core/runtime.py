"""How the ``wsnas`` commands run their networks: the C allocator, channels-last, bf16 autocast.

**bf16 autocast** (``--precision bf16``, a training setting kept with the run, so not a process
setting): :func:`prepare_model` wraps every forward pass of the model in ``torch.autocast`` with
bf16 and returns the output in fp32.

**Channels-last** (``--channels-last``, :func:`set_channels_last`): the networks a command
trains and evaluates keep their weights and activations in NHWC order
(``torch.channels_last``). On this project's 2-core CPU NB201 training steps and evaluation
take 16-38% less time (oneDNN's convolutions, and pooling and batch norm, are faster on NHWC);
the results are the same up to floating-point rounding. Off by default, as PyTorch's. The setting
is kept in ``WSNAS_CHANNELS_LAST`` so that the processes a command starts inherit it, and it
travels with every Ray task (:func:`process_settings`).

**The C allocator**: training on a CPU frees and reallocates the same activation tensors (megabytes each) every
step. With glibc's default thresholds such blocks are given back to the operating system when
freed (``munmap``, heap trimming) and faulted back in, page by page and zeroed, on the next
step: on this project's 2-core machine that was 10,000-60,000 page faults per NB201 training
step, 10-25% of the step's time, and a step time that varied from process to process with the
threshold glibc happened to settle on. :func:`tune_allocator` fixes the thresholds so that freed
blocks stay in the process for reuse, as PyTorch's CUDA caching allocator keeps GPU memory: the
peak memory is about the same (1-3% higher peak RSS measured in the benchmark's training rows),
but the process keeps (up to 2 GiB of) it after the peak.

``WSNAS_MALLOC=system`` leaves glibc's defaults; so does any ``MALLOC_*`` setting of the user's
or a glibc ``malloc`` tunable. Elsewhere than glibc (macOS, musl) nothing is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

CHANNELS_LAST_ENV = "WSNAS_CHANNELS_LAST"

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # blocks up to 32 MiB come from the heap (glibc's dynamic maximum)
TRIM_THRESHOLD = 2**31 - 1   # keep up to 2 GiB of free heap (mallopt takes an int)
CHOICES = ("tuned", "system")

_applied: bool | None = None


def physical_memory() -> int | None:
    """This machine's memory in bytes (``SC_PHYS_PAGES * SC_PAGE_SIZE``), or None where unknown."""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * size if pages > 0 and size > 0 else None


def allocator_setting() -> str:
    """``tuned`` (default) or ``system``, from ``WSNAS_MALLOC``; anything else is an error."""
    value = os.environ.get("WSNAS_MALLOC", "tuned").strip().lower() or "tuned"
    if value not in CHOICES:
        from wsnas.core.errors import WsnasError  # here: the benchmark loads this file without wsnas

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


# ------------------------------------------------------------------------------ channels-last
def channels_last() -> bool:
    """Whether this process runs its networks channels-last."""
    return os.environ.get(CHANNELS_LAST_ENV, "0").strip().lower() in ("1", "true", "yes")


def set_channels_last(enabled: bool) -> None:
    """Turn channels-last on or off for this process and the processes it starts."""
    os.environ[CHANNELS_LAST_ENV] = "1" if enabled else "0"


def process_settings() -> dict:
    """The settings a worker process (a Ray task) applies with :func:`apply_settings`."""
    return {"channels_last": channels_last()}


def apply_settings(settings: dict) -> None:
    tune_allocator()
    set_channels_last(bool(settings.get("channels_last", False)))


def _to_channels_last(module, args):
    if args and getattr(args[0], "dim", None) is not None and args[0].dim() == 4:
        import torch

        return (args[0].contiguous(memory_format=torch.channels_last), *args[1:])
    return None


PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`; a one-line error otherwise."""
    if precision not in PRECISIONS:
        from wsnas.core.errors import WsnasError

        raise WsnasError(f"precision {precision!r} not understood; accepted: {', '.join(PRECISIONS)}")
    return precision


def _autocast_enter(module, args):
    import torch

    # the model's device, not the first argument's: a stacked evaluation passes x=None and a stem
    device = next(module.parameters()).device.type
    ctx = torch.autocast(device, dtype=torch.bfloat16)
    ctx.__enter__()
    module._wsnas_autocast.append(ctx)


def _autocast_exit(module, args, output):
    module._wsnas_autocast.pop().__exit__(None, None, None)
    if getattr(output, "is_floating_point", None) is not None and output.is_floating_point():
        return output.float()  # the loss and the scores in fp32
    return output


def precision_of(model) -> str:
    """The precision :func:`prepare_model` gave ``model`` (fp32 when it was not prepared)."""
    return "bf16" if hasattr(model, "_wsnas_autocast") else "fp32"


def prepare_model(model, precision: str = "fp32"):
    """``model`` ready to run in this process: channels-last when that is on (weights converted,
    4-D inputs converted as they come in), and with ``precision="bf16"`` every forward pass under
    bf16 autocast, its output returned in fp32. Returns ``model``; calling it again is harmless."""
    import torch

    check_precision(precision)
    if channels_last() and not getattr(model, "_wsnas_channels_last", False):
        model.to(memory_format=torch.channels_last)
        model.register_forward_pre_hook(_to_channels_last)
        model._wsnas_channels_last = True
    if precision == "bf16" and not hasattr(model, "_wsnas_autocast"):
        model._wsnas_autocast = []
        model.register_forward_pre_hook(_autocast_enter)
        model.register_forward_hook(_autocast_exit, always_call=True)
    return model
