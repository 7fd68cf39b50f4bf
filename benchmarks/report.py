"""Write a suite's results as JSON and as its section of ``docs/benchmarks.md``."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .harness import Result, SuiteSpec, _fmt

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
REPORT = ROOT / "docs" / "benchmarks.md"

_REPORT_HEADER = """# Benchmarks

Every figure here was produced by `python -m benchmarks run SUITE` on the machine named in its
section; each section is rewritten when its suite runs again. Times are medians of repeated runs
in one process, peers measured in the same run; "peak" is the growth of the process's peak
resident memory during the timed call. Raw numbers: `benchmarks/results/SUITE.json`.
"""


def write(spec: SuiteSpec, results: list[Result], machine: dict, command: str,
          summary: list[str], plot_name: str | None) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {
        "suite": spec.name, "title": spec.title, "command": command, "machine": machine,
        "results": [result.as_dict() for result in results], "summary": summary,
    }
    json_path = RESULTS_DIR / f"{spec.name}.json"
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    _update_markdown(spec, _section(spec, results, machine, command, summary, plot_name))
    return json_path


def _section(spec, results, machine, command, summary, plot_name) -> str:
    quality_keys: list[str] = []
    param_keys: list[str] = []
    for result in results:
        quality_keys += [k for k in result.quality if k not in quality_keys]
        param_keys += [k for k in result.params if k not in param_keys]
    header = ["case", "who", *param_keys, "median s", "peak MB", *quality_keys]
    lines = [
        f"## {spec.title}",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB, "
        f"Python {machine['python']}  ",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()) + "  ",
        "Thread pools: " + ("; ".join(machine["threadpools"]) or "n/a"),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for result in results:
        row = [result.group, result.name, *(_fmt(result.params.get(k, "")) for k in param_keys),
               f"{result.median_s:.4f}", f"{result.peak_mb:.1f}",
               *(_fmt(result.quality[k]) if k in result.quality else "" for k in quality_keys)]
        lines.append("| " + " | ".join(row) + " |")
    if summary:
        lines += ["", *summary]
    if plot_name:
        lines += ["", f"![{spec.title}](img/{plot_name})"]
    return "\n".join(lines) + "\n"


def _update_markdown(spec: SuiteSpec, section: str) -> None:
    begin, end = f"<!-- BEGIN {spec.name} -->", f"<!-- END {spec.name} -->"
    text = REPORT.read_text() if REPORT.exists() else _REPORT_HEADER
    block = f"{begin}\n{section}{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else \
        text.rstrip("\n") + "\n\n" + block + "\n"
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text)
