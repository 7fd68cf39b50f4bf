"""Elbow plot from a single pass: StreamingKMeans.elbow_curve on Fashion-MNIST.

    python docs/examples/elbow.py [--data DIR] [--out docs/img/elbow.png]

One fit with k=30 streams the data once; ``elbow_curve`` re-finalizes the kept coreset for every
k from 2 to 30 without reading the data again. For comparison the plot also shows the SSD of each
re-finalized model measured on the data (which does read it, once per k).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.datasets import load_fashion_mnist
from skmk import StreamingKMeans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=None, help="Fashion-MNIST directory")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "img"
                                             / "elbow.png"))
    args = parser.parse_args()

    X = load_fashion_mnist(args.data)[0]
    start = time.perf_counter()
    km = StreamingKMeans(k=30, random_state=0).fit(X)
    fit_seconds = time.perf_counter() - start
    ks = list(range(2, 31))
    start = time.perf_counter()
    estimate = km.elbow_curve(ks)
    curve_seconds = time.perf_counter() - start
    measured = [-km.refinalize(k).score(X) for k in ks]

    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(ks, estimate / 1e6, marker="o", label="elbow_curve: from the coreset, no data pass")
    ax.plot(ks, [m / 1e6 for m in measured], marker=".", linestyle="--",
            label="SSD of each re-finalized model on the data")
    ax.set_xlabel("k")
    ax.set_ylabel("SSD (millions)")
    ax.set_title(f"Fashion-MNIST, one pass ({fit_seconds:.1f} s fit, "
                 f"{curve_seconds:.1f} s for 29 values of k)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}: fit {fit_seconds:.2f} s, elbow curve {curve_seconds:.2f} s")


if __name__ == "__main__":
    main()
