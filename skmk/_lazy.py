"""Lazy public names for a package: imported from their module on first access."""

from __future__ import annotations

from importlib import import_module


def lazy_exports(namespace: dict, public: dict[str, str]):
    """``(__getattr__, __dir__)`` for a package whose ``public`` names (name -> defining
    module) are imported only when first used, then cached in the package's ``namespace``
    (its ``globals()``), so importing the package stays cheap."""
    package = namespace["__name__"]

    def __getattr__(name):
        if name in public:
            value = getattr(import_module(public[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(namespace["__all__"])

    return __getattr__, __dir__
