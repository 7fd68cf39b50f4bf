"""Hyperparameters declared once: constraint, default, SageMaker wire name and doc.

An estimator lists its hyperparameters as class attributes::

    class StreamingKMeans(HyperparameterMixin, BaseEstimator):
        k = Hyperparameter([Interval(Integral, 2, None, closed="left")], default=8,
                           doc="Number of clusters.")
        max_iterations = Hyperparameter(..., wire_name="local_lloyd_max_iter", ...)

and from that single declaration gets

* an ``__init__`` with a real keyword-only signature, so ``get_params``, ``clone``, ``repr`` and
  ``GridSearchCV`` see ordinary scikit-learn parameters;
* ``_parameter_constraints``, checked by ``BaseEstimator._validate_params`` inside ``fit``;
* the "Parameters" section of the class docstring (where the docstring says ``%(parameters)s``);
* ``to_hyperparameters()`` / ``from_hyperparameters()``: SageMaker's ``dict[str, str]`` form.

scikit-learn's rules hold: ``__init__`` and ``set_params`` store values exactly as given and never
raise or coerce; validation happens in ``fit``.

The wire form avoids three known faults of the SageMaker SDK's descriptors: a float given for an
integer (``k=2.7``) stays a float and fails validation instead of being truncated; a bare string
for a list parameter (``eval_metrics="msd"``) stays a string and fails validation instead of
turning into ``['m', 's', 'd']``; and options such as ``"auto"`` sit beside numeric ranges.
"""

from __future__ import annotations

import inspect
import json
import numbers
import textwrap
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from sklearn.utils._param_validation import (
    Interval,
    Options,
    StrOptions,
    make_constraint,
)

__all__ = ["Hyperparameter", "HyperparameterMixin", "ListOf"]

_NO_DEFAULT = object()


class ListOf(Options):
    """Constraint: a non-empty list (or tuple) of distinct values taken from ``options``.

    A bare string is *not* a list of one: ``"msd"`` fails, so that it can never be split into
    characters the way the SageMaker SDK once did.

    Subclassing ``Options`` keeps the constraint usable by scikit-learn's validator.
    """

    def __init__(self, options: Iterable[str]):
        super().__init__(type=list, options=set(options))

    def is_satisfied_by(self, val) -> bool:
        if not isinstance(val, (list, tuple)) or not val:
            return False
        if len(set(val)) != len(val):
            return False
        return all(isinstance(item, str) and item in self.options for item in val)

    def __str__(self) -> str:
        choices = ", ".join(repr(option) for option in sorted(self.options))
        return f"a non-empty list of distinct values among {{{choices}}}"


class Hyperparameter:
    """Declaration of one estimator hyperparameter.

    Parameters
    ----------
    constraints : list
        scikit-learn parameter constraints (``Interval``, ``StrOptions``, ``None``, ``ListOf``,
        "random_state", ...). A value is valid when it satisfies any one of them.
    default : object
        The default value. Mutable defaults (lists) are copied into each new estimator.
    doc : str
        One or a few sentences for the docstring.
    wire_name : str, default=None
        The SageMaker hyperparameter name when it differs from the attribute name.
    type_doc : str, default=None
        The numpydoc type, e.g. ``"int or 'auto'"``. Derived from the constraints when omitted.
    on_wire : bool, default=True
        Whether the parameter travels in the SageMaker dict (``False`` for local-only knobs such
        as an execution backend).
    """

    def __init__(
        self,
        constraints: list,
        *,
        default: Any = _NO_DEFAULT,
        doc: str,
        wire_name: str | None = None,
        type_doc: str | None = None,
        on_wire: bool = True,
    ):
        if default is _NO_DEFAULT:
            raise TypeError("every hyperparameter needs a default (scikit-learn requires one)")
        self.constraints = list(constraints)
        self.default = default
        self.doc = doc
        self.wire_name = wire_name
        self.type_doc = type_doc
        self.on_wire = on_wire
        self.name: str | None = None  # set by __set_name__

    def __set_name__(self, owner, name: str) -> None:
        self.name = name
        if self.wire_name is None:
            self.wire_name = name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        # Only reached when the instance has no value of its own (e.g. an object unpickled from
        # a version that predates this parameter): the default is the honest answer.
        return self.fresh_default()

    def fresh_default(self):
        """The default, copied when it is a mutable container."""
        return list(self.default) if isinstance(self.default, list) else self.default

    def is_valid(self, value) -> bool:
        return any(make_constraint(c).is_satisfied_by(value) for c in self.constraints)

    # -- documentation ---------------------------------------------------------------------------

    def describe_type(self) -> str:
        if self.type_doc is not None:
            return self.type_doc
        return " or ".join(_describe_constraint(c) for c in self.constraints)

    def docstring_entry(self) -> str:
        default = self.default
        shown = f"{default!r}" if isinstance(default, (str, list, tuple)) else f"{default}"
        header = f"{self.name} : {self.describe_type()}, default={shown}"
        body = self.doc.strip()
        if self.on_wire and self.wire_name != self.name:
            body += f" SageMaker name: ``{self.wire_name}``."
        return header + "\n" + textwrap.indent(textwrap.fill(body, 92), "    ")

    # -- SageMaker wire form ---------------------------------------------------------------------

    def encode(self, value) -> str:
        """The wire string of ``value``; lists go as JSON, as SageMaker expects."""
        if isinstance(value, (bool, np.bool_)):
            return "true" if value else "false"
        if isinstance(value, numbers.Integral):
            return str(int(value))
        if isinstance(value, numbers.Real):
            return repr(float(value))
        if isinstance(value, str):
            return value
        if isinstance(value, (list, tuple)):
            return json.dumps(list(value))
        if value is None:
            return "null"
        raise TypeError(
            f"hyperparameter {self.name!r} = {value!r} ({type(value).__name__}) has no "
            "SageMaker wire form; use a number, a string, a list or None"
        )

    def decode(self, text: str):
        """The Python value of a wire string.

        JSON literals (numbers, lists, true/false/null) are read as such, but when that reading
        is not a valid value and the raw string is (a string option that looks like a number),
        the string wins. Invalid values come back as read, to fail validation at ``fit``.
        """
        if not isinstance(text, str):
            raise TypeError(
                f"wire value of {self.wire_name!r} must be a str, got {type(text).__name__}"
            )
        try:
            value = json.loads(text)
        except ValueError:
            return text
        if isinstance(value, dict):
            return text
        if isinstance(value, list) and isinstance(self.default, tuple):
            # Defaults must be immutable, so list parameters default to tuples; a wire list
            # comes back in the default's type.
            value = tuple(value)
        if not self.is_valid(value) and self.is_valid(text):
            return text
        return value


def _describe_constraint(constraint) -> str:
    if constraint is None:
        return "None"
    if isinstance(constraint, str):
        return {"random_state": "int, RandomState instance or None", "boolean": "bool"}.get(
            constraint, constraint
        )
    if isinstance(constraint, ListOf):
        return "list of {" + ", ".join(repr(o) for o in sorted(constraint.options)) + "}"
    if isinstance(constraint, StrOptions):
        return "{" + ", ".join(repr(o) for o in sorted(constraint.options)) + "}"
    if isinstance(constraint, Interval):
        kind = "int" if constraint.type is numbers.Integral else "float"
        return kind
    if isinstance(constraint, type):
        return constraint.__name__
    return str(constraint)


class HyperparameterMixin:
    """Builds ``__init__``, ``_parameter_constraints`` and the docstring from declarations.

    Mix in before ``BaseEstimator``. Subclasses inherit their parents' hyperparameters and may
    redeclare one to change its default or constraint.
    """

    #: Wire keys that are accepted and dropped by ``from_hyperparameters`` because skmk infers
    #: them from the data (SageMaker requires ``feature_dim``).
    _wire_keys_inferred: tuple[str, ...] = ("feature_dim",)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        declared: dict[str, Hyperparameter] = {}
        for klass in reversed(cls.__mro__):
            for name, attribute in vars(klass).items():
                if isinstance(attribute, Hyperparameter):
                    declared[name] = attribute
                elif name in declared:
                    # A subclass that fixes a parameter (e.g. ``predictor_type``) shadows the
                    # declaration with a plain value and so removes it from its signature.
                    del declared[name]
        if not declared:
            return
        cls._hyperparameters = declared
        cls._parameter_constraints = {
            name: list(hp.constraints) for name, hp in declared.items()
        }
        if "__init__" not in vars(cls):
            cls.__init__ = _make_init(declared)
        if cls.__doc__ and "%(parameters)s" in cls.__doc__:
            cls.__doc__ = _fill_parameters(cls.__doc__, declared.values())

    # -- SageMaker wire form ---------------------------------------------------------------------

    def to_hyperparameters(self) -> dict[str, str]:
        """The estimator's hyperparameters as SageMaker's ``dict[str, str]``.

        Keys are SageMaker names, values are strings (lists as JSON). Parameters set to None are
        left out, as SageMaker leaves out unset optional hyperparameters.

        Returns
        -------
        hyperparameters : dict of str to str
        """
        wire = {}
        for name, hp in self._hyperparameters.items():
            if not hp.on_wire:
                continue
            value = getattr(self, name)
            if value is None and hp.default is None:
                continue
            wire[hp.wire_name] = hp.encode(value)
        return wire

    @classmethod
    def from_hyperparameters(cls, hyperparameters: Mapping[str, str], **params):
        """A new, unfitted estimator from SageMaker's ``dict[str, str]``.

        Parameters
        ----------
        hyperparameters : mapping of str to str
            SageMaker names to wire strings. ``feature_dim`` is accepted and ignored (skmk reads
            it from the data); any other unknown name raises ``ValueError``.
        **params
            Further parameters by attribute name (e.g. ``backend``), applied last.

        Returns
        -------
        estimator : instance of cls
            Values are decoded but not validated; ``fit`` validates them.
        """
        by_wire = {hp.wire_name: (name, hp) for name, hp in cls._hyperparameters.items()
                   if hp.on_wire}
        unknown = sorted(
            key for key in hyperparameters
            if key not in by_wire and key not in cls._wire_keys_inferred
        )
        if unknown:
            raise ValueError(
                f"unknown hyperparameter(s) for {cls.__name__}: {', '.join(unknown)}; "
                f"known: {', '.join(sorted(by_wire))}"
            )
        decoded = {}
        for key, text in hyperparameters.items():
            if key in by_wire:
                name, hp = by_wire[key]
                decoded[name] = hp.decode(text)
        decoded.update(params)
        return cls(**decoded)


def _make_init(declared: dict[str, Hyperparameter]):
    parameters = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=hp.default)
        for name, hp in declared.items()
    ]
    signature = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *parameters]
    )
    names = tuple(declared)

    def __init__(self, *args, **kwargs):
        if args:
            raise TypeError(
                f"{type(self).__name__}() takes keyword arguments only, got {len(args)} "
                "positional"
            )
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise TypeError(
                f"{type(self).__name__}() got unexpected keyword argument(s): "
                f"{', '.join(unknown)}"
            )
        for name in names:
            # Stored exactly as given (scikit-learn's rule); defaults copied if mutable.
            value = kwargs[name] if name in kwargs else declared[name].fresh_default()
            setattr(self, name, value)

    __init__.__signature__ = signature
    __init__.__doc__ = "Store the hyperparameters as given; ``fit`` validates them."
    return __init__


def _fill_parameters(doc: str, declared: Iterable[Hyperparameter]) -> str:
    """Replace the ``%(parameters)s`` line of a class docstring, keeping its indentation."""
    lines = doc.splitlines()
    for index, line in enumerate(lines):
        if "%(parameters)s" in line:
            indent = line[: len(line) - len(line.lstrip())]
            entries = "\n".join(hp.docstring_entry() for hp in declared)
            lines[index] = textwrap.indent(entries, indent)
            break
    return "\n".join(lines)
