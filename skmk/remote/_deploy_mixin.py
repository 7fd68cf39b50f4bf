"""``deploy()`` and ``transformer()`` for the estimators, without importing Ray.

The estimators inherit this mixin; Ray (and Ray Serve, Ray Data) is imported inside the methods,
when a user asks for an endpoint or a Ray batch transform, so ``import skmk`` stays Ray-free.
"""

from __future__ import annotations


class DeployMixin:
    """Serve a fitted estimator over HTTP, or run it over files."""

    def deploy(self, name: str = "skmk", *, num_replicas: int = 1,
               autoscaling: dict | None = None, **options):
        """Serve this fitted model as a Ray Serve endpoint with SageMaker's inference API.

        ``GET /ping`` and ``POST /invocations`` (CSV, JSON, JSON Lines, RecordIO-protobuf in;
        the same out, by ``Accept``), bound to 127.0.0.1 unless ``host=`` says otherwise.

        Parameters
        ----------
        name : str, default="skmk"
            Serve application name; the URL is ``http://host:port/<name>`` unless
            ``route_prefix`` is given.
        num_replicas : int, default=1
        autoscaling : dict, default=None
            Serve's ``autoscaling_config``, instead of a fixed ``num_replicas``.
        **options
            ``address``, ``host``, ``port``, ``route_prefix``, ``token``, ``num_cpus``,
            ``max_body_bytes``, ``max_batch_rows``, ``batch_wait_timeout_s``,
            ``max_ongoing_requests``: see :func:`skmk.remote._endpoint.deploy`.

        Returns
        -------
        endpoint : Endpoint
            ``.url``, ``.predict(X)``, ``.update(model)``, ``.delete()``.
        """
        from ._endpoint import deploy

        return deploy(self, name=name, num_replicas=num_replicas, autoscaling=autoscaling,
                      **options)

    def transformer(self, output_path, *, strategy: str = "MultiRecord",
                    assemble_with: str = "Line", accept: str = "application/jsonlines",
                    max_payload_mb: float = 6.0, backend: str = "ray", **options):
        """A SageMaker-style batch transformer of this fitted model.

        Parameters
        ----------
        output_path : str or path-like
            Output prefix; each input file ``name`` gives ``name.out`` below it.
        strategy : {"MultiRecord", "SingleRecord"}, default="MultiRecord"
        assemble_with : {"Line", "None"}, default="Line"
        accept : str, default="application/jsonlines"
        max_payload_mb : float, default=6.0
        backend : {"ray", "local"}, default="ray"
            Ray Data on a cluster, or this process.
        **options
            ``address``, ``max_concurrent_transforms``, ``num_cpus``: see
            :func:`skmk.remote._batch_transform.transform_files`.

        Returns
        -------
        transformer : Transformer
            ``.transform(data, content_type=None, split_type="Line")`` runs the job.
        """
        from ._batch_transform import Transformer

        return Transformer(self, output_path, strategy=strategy, assemble_with=assemble_with,
                           accept=accept, max_payload_mb=max_payload_mb, backend=backend,
                           **options)
