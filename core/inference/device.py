"""Where the network runs: the device choice, and the process's heap setting on CPU."""

from __future__ import annotations

import torch


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then CPU; an unavailable device is an error."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was asked for, but torch sees no CUDA device")
    if dev.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise RuntimeError("Apple MPS was asked for, but it is not available")
    return dev


_HEAP_KEPT: bool | None = None


def keep_freed_memory() -> bool:
    """Keep freed heap memory in the process instead of handing it back to the OS (glibc).

    By default glibc serves large blocks (the activations here are 0.2-13 MB) with fresh
    mmaps and trims the heap top on free, so each pass page-faults its activations back in:
    ~2,300 minor faults per XS pass (plain network and engine together), none with this.
    Measured on the benchmark machine: plain eager XS 18.4 -> 15.2 ms, engine 11.5 ->
    10.6 ms. The torch CPU tuning guide's advice is a caching allocator (jemalloc,
    tcmalloc); this gets the effect from the C library already loaded. Process-wide (the
    benchmark's eager baseline runs under it too); a no-op where the C library is not glibc.
    Returns whether it took effect.
    """
    global _HEAP_KEPT
    if _HEAP_KEPT is None:
        _HEAP_KEPT = False
        try:
            import ctypes

            libc = ctypes.CDLL(None)
            mallopt = libc.mallopt
            m_trim_threshold, m_mmap_threshold = -1, -3
            _HEAP_KEPT = bool(
                mallopt(m_mmap_threshold, 1 << 30) and mallopt(m_trim_threshold, 1 << 30)
            )
        except (OSError, AttributeError, TypeError):  # not glibc (macOS, Windows, musl)
            pass
    return _HEAP_KEPT
