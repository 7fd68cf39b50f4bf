"""Benchmark suites; each module registers its suites with ``harness.suite``."""
