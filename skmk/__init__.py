"""skmk: SageMaker's streaming k-means and k-NN as scikit-learn estimators.

Only public names live here, imported lazily so that ``import skmk`` stays fast; Ray is never
imported by ``import skmk``.
"""

from ._lazy import lazy_exports
from ._version import __version__

# public name -> module that defines it
_PUBLIC = {
    "StreamingKMeans": "skmk.cluster",
    "ApproxKNN": "skmk.neighbors",
    "ApproxKNNClassifier": "skmk.neighbors",
    "ApproxKNNRegressor": "skmk.neighbors",
}

__all__ = ["__version__", *_PUBLIC]

__getattr__, __dir__ = lazy_exports(globals(), _PUBLIC)
