"""Documentation written once and shared: parameter text both estimators use.

:class:`Substitution` fills ``%(name)s`` fields of a docstring when the class
or function is defined, as imbalanced-learn's and pandas' do; other ``%``
signs in a docstring are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

__all__ = ["Substitution"]

T = TypeVar("T", bound=Callable)

_FIELD = re.compile(r"%\((\w+)\)s")


class Substitution:
    """Decorator that fills ``%(name)s`` fields of the decorated object's docstring.

    Parameters
    ----------
    **params : str
        The text of each field. A field's text may itself name other fields
        (one level deep). A field the docstring names but ``params`` lacks
        raises a ``KeyError`` at definition time, so a typo cannot ship.

    Examples
    --------
    >>> @Substitution(what="the answer")
    ... def f():
    ...     '''Return %(what)s, 100% of it.'''
    >>> f.__doc__
    'Return the answer, 100% of it.'
    >>> @Substitution(what="the %(kind)s answer", kind="whole")
    ... def g():
    ...     '''Return %(what)s.'''
    >>> g.__doc__
    'Return the whole answer.'
    """

    def __init__(self, **params: str) -> None:
        self.params = {name: _FIELD.sub(lambda match: params[match.group(1)], text)
                       for name, text in params.items()}

    def __call__(self, obj: T) -> T:
        if obj.__doc__:
            obj.__doc__ = _FIELD.sub(lambda match: self.params[match.group(1)], obj.__doc__)
        return obj
