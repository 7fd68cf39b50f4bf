"""skmk: SageMaker's streaming k-means and k-NN as scikit-learn estimators.

Only public names live here, imported lazily so that ``import skmk`` stays fast; Ray is never
imported by ``import skmk``.
"""

from importlib import import_module

from ._version import __version__

# public name -> module that defines it
_PUBLIC = {
    "StreamingKMeans": "skmk.cluster",
    "ApproxKNN": "skmk.neighbors",
    "ApproxKNNClassifier": "skmk.neighbors",
    "ApproxKNNRegressor": "skmk.neighbors",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skmk' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
