"""Keep BLAS single-threaded while the kernels' own OpenMP threads run.

Each OpenMP thread of a kernel calls BLAS on its own chunk; a multi-threaded BLAS there would
start threads of its own and oversubscribe the cores. Worse, OpenBLAS threads woken by raising
the limit again keep spinning for a while and steal a core from the next OpenMP region (measured:
one epoch on 1,000,000 × 64 rows took 3.9 s with the limit toggled around every kernel call and
2.5 s with it held for the whole fit). So the limit is re-entrant: an estimator holds it around
a whole fit, and the kernels' own (nested) requests then cost nothing.

One process-wide controller is built lazily because inspecting the loaded libraries costs
milliseconds, too much for every call.
"""

from __future__ import annotations

import contextlib
import threading

_controller = None
_lock = threading.Lock()
_state = threading.local()


def _get_controller():
    global _controller
    if _controller is None:
        with _lock:
            if _controller is None:
                from threadpoolctl import ThreadpoolController

                _controller = ThreadpoolController()
    return _controller


@contextlib.contextmanager
def single_threaded_blas(n_threads: int = 2):
    """Limit BLAS to one thread while kernels run ``n_threads > 1`` OpenMP threads.

    Re-entrant: only the outermost active context changes the BLAS thread count.
    """
    depth = getattr(_state, "depth", 0)
    if n_threads <= 1 or depth > 0:
        _state.depth = depth + (1 if depth > 0 else 0)
        try:
            yield
        finally:
            if depth > 0:
                _state.depth -= 1
        return
    _state.depth = 1
    try:
        with _get_controller().limit(limits=1, user_api="blas"):
            yield
    finally:
        _state.depth = 0
