"""Benchmark data: Fashion-MNIST from its IDX gz files, and seeded synthetic blobs."""

from __future__ import annotations

import gzip
import struct
from functools import lru_cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FASHION_MNIST_DIRS = (
    ROOT.parent / "shared" / "data" / "fashion-mnist",
    Path("/usr/share/datasets/fashion-mnist"),
)
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# IDX type codes → numpy dtypes (big-endian on disk).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed) into an array of its stored shape."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as stream:
        raw = stream.read()
    zero, type_code, n_dims = struct.unpack(">HBB", raw[:4])
    if zero != 0 or type_code not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (header {raw[:4].hex()})")
    shape = struct.unpack(f">{n_dims}I", raw[4:4 + 4 * n_dims])
    data = np.frombuffer(raw, dtype=_IDX_DTYPES[type_code], offset=4 + 4 * n_dims)
    return data.reshape(shape)


def find_fashion_mnist(data_dir: str | None = None) -> Path:
    candidates = [Path(data_dir)] if data_dir else list(FASHION_MNIST_DIRS)
    for directory in candidates:
        if all((directory / name).exists() for name in _FILES["train"]):
            return directory
    raise FileNotFoundError(
        "Fashion-MNIST not found in " + ", ".join(str(c) for c in candidates)
        + "; pass --data DIR with the IDX .gz files (Debian: dataset-fashion-mnist)"
    )


@lru_cache(maxsize=4)
def load_fashion_mnist(data_dir: str | None = None, dtype=np.float32):
    """Fashion-MNIST as ``(X_train, y_train, X_test, y_test)``, pixels scaled to [0, 1].

    X arrays are (n, 784) C-contiguous in ``dtype``; y arrays are int64 class labels.
    """
    directory = find_fashion_mnist(data_dir)
    arrays = []
    for split in ("train", "test"):
        images, labels = (read_idx(directory / name) for name in _FILES[split])
        X = images.reshape(images.shape[0], -1).astype(dtype) / dtype(255)
        arrays += [np.ascontiguousarray(X, dtype=dtype), labels.astype(np.int64)]
    return tuple(arrays)


def make_blobs(n_samples: int, n_features: int, n_clusters: int, *, seed: int = 0,
               dtype=np.float32, cluster_std: float = 1.0):
    """Seeded Gaussian blobs, generated in chunks so 10^6+ rows need no float64 copy.

    Returns ``(X, labels, centers)`` with X of shape (n_samples, n_features) in ``dtype``.
    """
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10, 10, size=(n_clusters, n_features)).astype(dtype)
    labels = rng.integers(0, n_clusters, size=n_samples)
    X = np.empty((n_samples, n_features), dtype=dtype)
    step = 1 << 16
    for start in range(0, n_samples, step):
        stop = min(start + step, n_samples)
        noise = rng.standard_normal((stop - start, n_features), dtype=np.float32)
        X[start:stop] = centers[labels[start:stop]] + cluster_std * noise
    return X, labels, centers
