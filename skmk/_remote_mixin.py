"""The ``backend`` hyperparameter and what it gives an estimator: remote fits, jobs, ``attach``.

Ray-free on purpose: estimators import this module, and ``import skmk`` must not import Ray.
Everything that needs Ray lives in ``skmk.remote`` and is imported only when a Ray backend is
asked for (``fit`` with ``backend="ray"``, ``attach``).
"""

from __future__ import annotations

from sklearn.utils._param_validation import StrOptions

from ._hyperparams import Hyperparameter

__all__ = ["Backend", "RemoteMixin", "backend_hyperparameter"]


class Backend:
    """Base of the execution backends other than the in-process default.

    A backend runs ``fit`` elsewhere; :class:`skmk.remote.RayBackend` is the one skmk ships.
    Subclasses implement :meth:`fit`.
    """

    def fit(self, estimator, X, y=None, sample_weight=None, *, wait: bool = True,
            job_name: str | None = None):
        """Fit ``estimator`` on this backend; return it fitted (or, when ``wait`` is False,
        with ``training_job_`` set)."""
        raise NotImplementedError


def backend_hyperparameter() -> Hyperparameter:
    """The ``backend`` declaration shared by every estimator (not a SageMaker hyperparameter)."""
    return Hyperparameter(
        [None, StrOptions({"local", "ray"}), Backend], default=None, on_wire=False,
        type_doc="None, 'local', 'ray' or skmk.remote.RayBackend",
        doc="Where ``fit`` runs: None or 'local' in this process; 'ray' (or a "
            "``skmk.remote.RayBackend`` naming the cluster, the number of workers and the "
            "artifact store) as a distributed fit on a Ray cluster, or as a training job with "
            "``fit(..., wait=False)``. See docs/remote.md.")


class RemoteMixin:
    """Gives an estimator ``attach`` and ``training_job_`` (mix in before ``BaseEstimator``).

    Attributes
    ----------
    training_job_ : skmk.remote.TrainingJob
        Set by ``fit(..., wait=False)``: the submitted job (name, status, logs, metrics,
        artifact URL). The estimator itself stays unfitted; ``attach`` or
        ``training_job_.result()`` returns the fitted model.
    """

    def _execution_backend(self, wait: bool):
        """The backend object ``fit`` delegates to, or None to fit in this process.

        Called by ``fit`` after parameter validation, so ``self.backend`` is one of the allowed
        values.
        """
        if self.backend is None or self.backend == "local":
            if not wait:
                raise ValueError(
                    "fit(wait=False) submits a training job and needs a Ray backend, got "
                    f"backend={self.backend!r}; pass backend='ray' or a skmk.remote.RayBackend")
            return None
        if self.backend == "ray":
            from .remote import RayBackend

            return RayBackend()
        return self.backend

    @classmethod
    def attach(cls, job_name: str, backend=None, *, timeout: float | None = None,
               logs: bool = False):
        """The fitted estimator of a training job, waiting for the job if it still runs.

        Works from any process, at any later time: a finished job is read from its artifact
        (``<store>/<job_name>/``) without asking Ray, so it survives a restart of the Ray head.

        Parameters
        ----------
        job_name : str
            The name ``fit(..., wait=False)`` gave the job (``training_job_.name``).
        backend : 'ray' or skmk.remote.RayBackend, default=None
            Where the job ran and where its artifact store is; None means ``RayBackend()``.
        timeout : float, default=None
            Seconds to wait for a running job; None waits as long as it takes.
        logs : bool, default=False
            Print the job's log lines while waiting.

        Returns
        -------
        estimator : instance of cls
            Fitted, its hyperparameters restored from the job's SageMaker wire dict, its
            ``backend`` set to ``backend``.
        """
        from .remote import attach

        return attach(job_name, backend, estimator_class=cls, timeout=timeout, logs=logs)

    def __sklearn_is_fitted__(self) -> bool:
        # ``training_job_`` alone (a job submitted, not finished) does not make a fitted model.
        return any(name.endswith("_") and not name.startswith("__")
                   and name != "training_job_" for name in vars(self))
