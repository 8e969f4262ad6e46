"""A ``"module:function"`` loader: the user's own code returns the data.

The function is called with no arguments and may return splits (returned as
they are), a dict of arrays, or a tuple of arrays; arrays go through
``from_arrays`` and all its checks.
"""

from __future__ import annotations

import importlib
import inspect
import re

from kreg.lab.data import checks
from kreg.lab.data.arrays import from_arrays, split_mapping
from kreg.lab.data.splits import DatasetSplits
from kreg.lab.errors import DataError

LOADER_PATTERN = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
# Keyword arguments of from_arrays a returned dict may carry beside its arrays (e.g. "task").
_ARRAY_OPTIONS = tuple(p.name for p in inspect.signature(from_arrays).parameters.values()
                       if p.kind is p.KEYWORD_ONLY and not p.name.startswith(("x_", "y_")))
_RETURNS = ("splits (kreg.data.from_*), a dict with x_train/y_train (or x/y) and optionally x_val/y_val "
            "and x_test/y_test, or a tuple (x_train, y_train) or (x_train, y_train, x_test, y_test)")


def is_loader_spec(spec) -> bool:
    return isinstance(spec, str) and bool(LOADER_PATTERN.match(spec))


def from_loader(spec: str, **kwargs):
    """Splits from the user's function named ``"module:function"``.

    Args:
        spec: ``"package.module:function"``; the module must be importable.
        **kwargs: Passed to ``from_arrays`` when the function returns arrays.

    Returns:
        The function's splits, or ``from_arrays`` of what it returned.

    Example:
        >>> # mypackage/data.py: def load(): return {"x": x, "y": y, "x_test": xt, "y_test": yt}
        >>> splits = kreg.data.from_loader("mypackage.data:load", seed=0)
    """
    function = import_loader(spec)
    kwargs.setdefault("name", spec)
    return splits_from(function(), f"loader {spec!r}", **kwargs)


def import_loader(spec: str):
    """The function ``"module:function"`` names, imported but not called (``kreg validate`` checks this much)."""
    if not is_loader_spec(spec):
        raise checks.invalid("loader", "'module:function', e.g. 'mypackage.data:load'", spec)
    module_name, function_name = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only the named module missing is the spec's fault; a missing dependency inside it is not.
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise DataError(f"Cannot import module {module_name!r} of loader {spec!r}: no module named "
                            f"{exc.name!r} (is it installed or on sys.path?).") from None
        raise
    function = getattr(module, function_name, None)
    if function is None or not callable(function):
        raise DataError(f"Module {module_name!r} has no function {function_name!r} (loader {spec!r}).")
    return function


def splits_from(result, where: str, **kwargs):
    """Splits from a loader's return value (or any of the same shapes)."""
    from kreg.lab.data.stream import StreamSplits

    if isinstance(result, (DatasetSplits, StreamSplits)):
        return result
    if isinstance(result, dict):
        return from_arrays(**{**split_mapping(result, where, allowed=_ARRAY_OPTIONS), **kwargs})
    if isinstance(result, (tuple, list)) and len(result) in (2, 4):
        x, y, *test = result
        return from_arrays(x, y, **dict(zip(("x_test", "y_test"), test)), **kwargs)
    received = f"a {len(result)}-tuple" if isinstance(result, (tuple, list)) else type(result).__name__
    raise DataError(f"{where} returned {received}; expected {_RETURNS}.")
