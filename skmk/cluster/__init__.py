"""Clustering: SageMaker's streaming k-means."""

from ._streaming_kmeans import StreamingKMeans

__all__ = ["StreamingKMeans"]
