"""``python -m benchmarks {list,run}``: the one entry point for every suite."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import shlex
import sys

from . import report, suites
from .harness import SUITES, Context, machine_info, measure


def _load_suites() -> None:
    for module in pkgutil.iter_modules(suites.__path__):
        importlib.import_module(f"{suites.__name__}.{module.name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the suites")
    run = commands.add_parser("run", help="run suites and write docs/benchmarks.md")
    run.add_argument("suites", nargs="+", help="suite names (see `list`)")
    run.add_argument("--data", dest="data_dir", default=None,
                     help="Fashion-MNIST directory (IDX .gz files); default: ../shared/data/"
                          "fashion-mnist, then /usr/share/datasets/fashion-mnist")
    run.add_argument("--repeat", type=int, default=3, help="repeats per case (median reported)")
    run.add_argument("--quick", action="store_true",
                     help="small sizes, to check that a suite runs; results are not written")
    args = parser.parse_args(argv)

    _load_suites()
    if args.command == "list":
        for name, spec in sorted(SUITES.items()):
            print(f"{name:<16} {spec.title}")
        return 0

    unknown = [name for name in args.suites if name not in SUITES]
    if unknown:
        parser.error(f"unknown suite(s) {', '.join(unknown)}; known: {', '.join(sorted(SUITES))}")
    command = "python -m benchmarks " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    context = Context(data_dir=args.data_dir, repeat=args.repeat, quick=args.quick)
    machine = machine_info()
    for name in args.suites:
        spec = SUITES[name]
        print(f"== {name}: {spec.title}", flush=True)
        results = [measure(case, args.repeat) for case in spec.make_cases(context)]
        summary = spec.summarize(results) if spec.summarize else []
        for line in summary:
            print("  " + line)
        if args.quick:
            continue
        plot_name = None
        if spec.plot is not None:
            plot_name = f"{name}.png"
            image_dir = report.REPORT.parent / "img"
            image_dir.mkdir(parents=True, exist_ok=True)
            spec.plot(results, str(image_dir / plot_name))
        path = report.write(spec, results, machine, command, summary, plot_name)
        print(f"  wrote {path} and {report.REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
