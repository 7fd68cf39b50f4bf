"""Neighbours: SageMaker's k-NN over a reservoir sample, a random projection and faiss."""

from ._approx_knn import ApproxKNN, ApproxKNNClassifier, ApproxKNNRegressor

__all__ = ["ApproxKNN", "ApproxKNNClassifier", "ApproxKNNRegressor"]
