"""skmk's benchmarks: each suite measures skmk beside its peers in one process run.

Run ``python -m benchmarks list`` for the suites and ``python -m benchmarks run SUITE`` to measure
one; results go to ``benchmarks/results/SUITE.json`` and to that suite's section of
``docs/benchmarks.md``.
"""
