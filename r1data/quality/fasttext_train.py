"""``fasttext.train_supervised`` with its input matrix reliably initialised.

fastText's random init of the input matrix (``DenseMatrix::uniform``) fills blocks of a tenth of the
matrix, one per training thread, and the wheel we install allocates that matrix without zeroing it.
With ``thread=1`` (what r1data uses, for reproducible models) nine tenths of the matrix is whatever
the allocator hands back: zero pages from a fresh ``mmap`` usually, but in a long-running process the
heap can hold stale bytes, which read as NaN and stop training with "Encountered NaN." -- depending on
what the process did before, not on the data.

On glibc we ask malloc to zero what it hands out while fastText builds and trains its model
(``mallopt(M_PERTURB, 0xff)``: chunks are filled with ``0xff ^ 0xff``), then turn it back off. The
result is the same model a fresh process trains. Elsewhere the call is passed through unchanged.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_M_PERTURB = -6
_lock = threading.Lock()


def _mallopt():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        fn = libc.mallopt
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


@contextmanager
def zeroed_malloc() -> Iterator[None]:
    """While inside, glibc's malloc returns zeroed memory (no-op elsewhere)."""
    mallopt = _mallopt()
    with _lock:
        on = bool(mallopt and mallopt(_M_PERTURB, 0xFF) == 1)
        try:
            yield
        finally:
            if on:
                mallopt(_M_PERTURB, 0)


def train_supervised(**kwargs: Any):
    """Same arguments as ``fasttext.train_supervised``."""
    import fasttext

    with zeroed_malloc():
        return fasttext.train_supervised(**kwargs)
