"""The Hyperparameter descriptor on a small test estimator."""

from __future__ import annotations

import inspect
import pickle
from numbers import Integral, Real

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions

from skmk._hyperparams import Hyperparameter, HyperparameterMixin, ListOf


class ToyEstimator(HyperparameterMixin, BaseEstimator):
    """A toy estimator for the descriptor tests.

    Parameters
    ----------
    %(parameters)s
    """

    k = Hyperparameter([Interval(Integral, 2, None, closed="left")], default=8,
                       doc="Number of clusters.")
    max_iterations = Hyperparameter([Interval(Integral, 1, None, closed="left")], default=300,
                                    wire_name="local_lloyd_max_iter", doc="Lloyd iterations.")
    tol = Hyperparameter([Interval(Real, 0, 1, closed="both")], default=1e-4,
                         wire_name="local_lloyd_tol", doc="Relative tolerance.")
    num_trials = Hyperparameter([Interval(Integral, 1, None, closed="left"),
                                 StrOptions({"auto"})], default="auto",
                                wire_name="local_lloyd_num_trials", doc="Independent trials.")
    init_method = Hyperparameter([StrOptions({"random", "kmeans++"})], default="random",
                                 doc="Seeding.")
    eval_metrics = Hyperparameter([ListOf({"msd", "ssd"})], default=["msd"],
                                  doc="Metrics to report.")
    label = Hyperparameter([StrOptions({"10", "a"})], default="a", doc="A string that can "
                           "look like a number.")
    target = Hyperparameter([None, Interval(Integral, 1, None, closed="left")], default=None,
                            doc="Optional target.")
    random_state = Hyperparameter(["random_state"], default=None, doc="Seed.")

    def fit(self, X, y=None):
        self._validate_params()
        self.fitted_ = True
        return self


class FixedToy(ToyEstimator):
    """A subclass that fixes ``init_method``: it drops out of the signature."""

    init_method = "kmeans++"


def test_signature_and_defaults():
    signature = inspect.signature(ToyEstimator.__init__)
    names = list(signature.parameters)[1:]
    assert names == ["k", "max_iterations", "tol", "num_trials", "init_method",
                     "eval_metrics", "label", "target", "random_state"]
    assert all(p.kind is p.KEYWORD_ONLY for p in list(signature.parameters.values())[1:])
    est = ToyEstimator()
    assert est.get_params()["k"] == 8
    assert est.eval_metrics == ["msd"]
    assert est.eval_metrics is not ToyEstimator().eval_metrics  # mutable default is copied
    assert set(ToyEstimator._parameter_constraints) == set(names)


def test_docstring_lists_every_parameter_with_wire_name():
    doc = ToyEstimator.__doc__
    assert "%(parameters)s" not in doc
    assert "    k : int, default=8" in doc
    assert "SageMaker name: ``local_lloyd_max_iter``" in doc
    assert "num_trials : int or {'auto'}, default='auto'" in doc


def test_subclass_can_fix_a_parameter():
    assert "init_method" not in inspect.signature(FixedToy.__init__).parameters
    assert FixedToy().init_method == "kmeans++"
    with pytest.raises(TypeError, match="init_method"):
        FixedToy(init_method="random")


@pytest.mark.parametrize("value", [0, "a", 2.7, None, np.float64(3.0)])
def test_init_and_set_params_store_invalid_values_as_given(value):
    est = ToyEstimator(k=value)
    assert est.k is value
    est.set_params(k=8).set_params(k=value)
    assert est.k is value


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"k": 0}, r"'k' parameter .* in the range \[2, inf\)\. Got 0"),
        ({"k": "a"}, r"'k' parameter .*Got 'a'"),
        ({"k": 2.7}, r"'k' parameter .*Got 2\.7"),
        ({"tol": 1.1}, r"'tol' parameter .*range \[0.0, 1.0\]\. Got 1\.1"),
        ({"init_method": 0}, r"'init_method' parameter .*'kmeans\+\+'.*Got 0"),
        ({"eval_metrics": "msd"}, r"'eval_metrics' parameter .*list.*Got 'msd'"),
        ({"eval_metrics": 0}, r"'eval_metrics' parameter .*Got 0"),
        ({"eval_metrics": ["msd", "msd"]}, r"'eval_metrics' parameter"),
        ({"eval_metrics": []}, r"'eval_metrics' parameter"),
        ({"num_trials": "autox"}, r"'num_trials' parameter .*'auto'.*Got 'autox'"),
    ],
)
def test_invalid_values_raise_at_fit_naming_parameter_allowed_and_given(params, match):
    est = ToyEstimator(**params)  # never raises here
    with pytest.raises(InvalidParameterError, match=match):
        est.fit(np.zeros((3, 2)))
    assert not hasattr(est, "fitted_")


def test_invalid_parameter_error_is_value_and_type_error():
    with pytest.raises(ValueError):
        ToyEstimator(k=0).fit(None)
    with pytest.raises(TypeError):
        ToyEstimator(k="a").fit(None)


def test_valid_values_fit():
    ToyEstimator(k=2, num_trials=3, eval_metrics=("ssd", "msd"), target=5,
                 random_state=np.random.RandomState(0)).fit(None)


def test_unknown_keyword_and_positional_arguments_are_rejected():
    with pytest.raises(TypeError, match="bogus"):
        ToyEstimator(bogus=1)
    with pytest.raises(TypeError, match="keyword"):
        ToyEstimator(3)


def test_wire_form_uses_sagemaker_names_and_strings():
    wire = ToyEstimator(k=10, num_trials=3, eval_metrics=["msd", "ssd"]).to_hyperparameters()
    assert wire == {
        "k": "10", "local_lloyd_max_iter": "300", "local_lloyd_tol": "0.0001",
        "local_lloyd_num_trials": "3", "init_method": "random",
        "eval_metrics": '["msd", "ssd"]', "label": "a",
    }
    assert all(isinstance(v, str) for v in wire.values())


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"k": 10, "num_trials": 4, "tol": 0.5, "eval_metrics": ["ssd", "msd"], "target": 3},
        {"k": np.int64(12), "tol": 1e-7, "num_trials": "auto", "random_state": 42},
        {"label": "10"},
        {"tol": 0.1 + 0.2},
    ],
)
def test_wire_round_trip_is_lossless(params):
    est = ToyEstimator(**params)
    wire = est.to_hyperparameters()
    restored = ToyEstimator.from_hyperparameters(wire)
    assert restored.get_params() == est.get_params()
    assert type(restored.label) is str


def test_wire_round_trip_keeps_invalid_values_invalid():
    restored = ToyEstimator.from_hyperparameters({"k": "2.7", "eval_metrics": "msd"})
    assert restored.k == 2.7  # not truncated to 2
    assert restored.eval_metrics == "msd"  # not ['m', 's', 'd']
    with pytest.raises(InvalidParameterError, match="'k' parameter"):
        restored.set_params(eval_metrics=["msd"]).fit(None)
    with pytest.raises(InvalidParameterError, match="'eval_metrics' parameter"):
        restored.set_params(k=3, eval_metrics="msd").fit(None)


def test_from_hyperparameters_ignores_feature_dim_and_rejects_unknown_names():
    assert ToyEstimator.from_hyperparameters({"feature_dim": "784", "k": "3"}).k == 3
    with pytest.raises(ValueError, match=r"unknown hyperparameter.*nope"):
        ToyEstimator.from_hyperparameters({"nope": "1"})
    with pytest.raises(TypeError, match="must be a str"):
        ToyEstimator.from_hyperparameters({"k": 3})


def test_random_state_instance_has_no_wire_form():
    with pytest.raises(TypeError, match="random_state"):
        ToyEstimator(random_state=np.random.RandomState(0)).to_hyperparameters()


def test_clone_pickle_set_params_and_repr():
    est = ToyEstimator(k=5, eval_metrics=["ssd"], num_trials=2)
    cloned = clone(est)
    assert cloned.get_params() == est.get_params()
    assert cloned.eval_metrics is not est.eval_metrics
    unpickled = pickle.loads(pickle.dumps(est.fit(None)))
    assert unpickled.get_params() == est.get_params() and unpickled.fitted_
    assert repr(ToyEstimator(k=5)) == "ToyEstimator(k=5)"
    wire = clone(est).set_params(tol=0.25).to_hyperparameters()
    assert ToyEstimator.from_hyperparameters(wire).get_params() == \
        clone(est).set_params(tol=0.25).get_params()
