"""Measure cases side by side: wall time (median of repeats), peak memory and quality.

A suite is a function decorated with :func:`suite` that yields :class:`Case` objects. Every case
of a suite runs in the same process, one after the other, so skmk and its peers see the same
machine state; each is repeated and the median is reported.

Peak memory is the growth of the process's peak resident set during the timed call: Linux's
``/proc/self/clear_refs`` resets the high-water mark before each call and ``VmHWM`` is read after
it, so allocations made by C, C++ and BLAS count, not only Python's.
"""

from __future__ import annotations

import gc
import platform
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

SUITES: dict[str, SuiteSpec] = {}


@dataclass
class Case:
    """One thing to time.

    Attributes
    ----------
    group : str
        Cases in the same group are compared with each other (e.g. ``"K=100"``).
    name : str
        Who runs it: ``"skmk"``, ``"numpy"``, ``"scikit-learn"``, ...
    run : callable
        ``run(prepared)`` is the timed call; its return value goes to ``quality``.
    setup : callable, default=None
        ``setup()`` runs untimed before every repeat; its result is passed to ``run``.
    quality : callable, default=None
        ``quality(result)`` returns a dict of quality figures (accuracy, SSD, ...).
    params : dict
        Extra columns for the table (n, d, dtype, ...).
    """

    group: str
    name: str
    run: Callable[[Any], Any]
    setup: Callable[[], Any] | None = None
    quality: Callable[[Any], dict] | None = None
    params: dict = field(default_factory=dict)


@dataclass
class Result:
    group: str
    name: str
    times_s: list[float]
    peak_mb: float
    quality: dict
    params: dict

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)

    def as_dict(self) -> dict:
        return {
            "group": self.group, "name": self.name, "median_s": self.median_s,
            "times_s": self.times_s, "peak_mb": self.peak_mb, "quality": self.quality,
            "params": self.params,
        }


@dataclass
class Context:
    """What a suite gets from the command line."""

    data_dir: str | None
    repeat: int
    quick: bool


@dataclass
class SuiteSpec:
    name: str
    title: str
    make_cases: Callable[[Context], Iterable[Case]]
    summarize: Callable[[list[Result]], list[str]] | None
    plot: Callable[[list[Result], str], None] | None


def suite(name: str, title: str, *, summarize=None, plot=None):
    """Register ``make_cases(ctx) -> Iterable[Case]`` as the suite ``name``.

    ``summarize(results)`` may return markdown lines (ratios, verdicts) printed under the table;
    ``plot(results, path)`` may draw a PNG that the report links.
    """

    def register(make_cases):
        SUITES[name] = SuiteSpec(name, title, make_cases, summarize, plot)
        return make_cases

    return register


# -- measuring -----------------------------------------------------------------------------------

def _read_vm_hwm_kb() -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _read_vm_rss_kb() -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def measure(case: Case, repeat: int, log=print) -> Result:
    """Run ``case`` ``repeat`` times; return times, the largest peak-memory growth and quality."""
    times, peaks, outcome = [], [], None
    for _ in range(repeat):
        # Free the previous repeat's result first: otherwise every repeat allocates its output
        # in fresh pages while the last one is still alive, and pays page faults a user calling
        # the function in a loop would not.
        outcome = None
        prepared = case.setup() if case.setup is not None else None
        gc.collect()
        can_reset = _reset_peak()
        base = _read_vm_rss_kb()
        start = time.perf_counter()
        outcome = case.run(prepared)
        times.append(time.perf_counter() - start)
        peak = _read_vm_hwm_kb()
        if can_reset and base is not None and peak is not None:
            peaks.append(max(peak - base, 0) / 1024)
        del prepared
    quality = case.quality(outcome) if case.quality is not None else {}
    result = Result(case.group, case.name, times, max(peaks) if peaks else float("nan"),
                    quality, dict(case.params))
    log(f"  {case.group:<28} {case.name:<34} median {result.median_s:9.4f} s  "
        f"peak +{result.peak_mb:8.1f} MB  {_format_quality(quality)}")
    return result


def _format_quality(quality: dict) -> str:
    return "  ".join(f"{key}={_fmt(value)}" for key, value in quality.items())


def _fmt(value) -> str:
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.4e}"
        return f"{value:.4f}"
    return str(value)


# -- the machine ---------------------------------------------------------------------------------

def machine_info() -> dict:
    """CPU model, core count and the versions of everything that decides the numbers."""
    import os
    from importlib.metadata import PackageNotFoundError, version

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for package in ("skmk", "numpy", "scipy", "scikit-learn", "faiss-cpu", "threadpoolctl",
                    "ray", "pyarrow", "protobuf"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    blas = []
    try:
        from threadpoolctl import threadpool_info

        blas = sorted({f"{info.get('internal_api')} {info.get('version')} "
                       f"({info.get('num_threads')} threads)" for info in threadpool_info()})
    except Exception:  # threadpoolctl is optional for the report
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "versions": versions,
        "threadpools": blas,
    }
