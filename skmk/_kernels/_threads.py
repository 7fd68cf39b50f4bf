"""Keep BLAS single-threaded inside the kernels' own OpenMP regions.

Each OpenMP thread of a kernel calls BLAS on its own chunk; a multi-threaded BLAS there would
start threads of its own and oversubscribe the cores. One process-wide controller is built
lazily because inspecting the loaded libraries costs milliseconds, too much for every call.
"""

from __future__ import annotations

import contextlib
import threading

_controller = None
_lock = threading.Lock()


def _get_controller():
    global _controller
    if _controller is None:
        with _lock:
            if _controller is None:
                from threadpoolctl import ThreadpoolController

                _controller = ThreadpoolController()
    return _controller


def single_threaded_blas(n_threads: int):
    """Context manager limiting BLAS to one thread when a kernel runs ``n_threads > 1``."""
    if n_threads <= 1:
        return contextlib.nullcontext()
    return _get_controller().limit(limits=1, user_api="blas")
