"""Every public class, method and function documents exactly the parameters its signature
has, in order (in the spirit of scikit-learn's test_docstring_parameters.py)."""

import dataclasses
import inspect
import re

import pytest

import skticket

_SECTION = re.compile(r"^(?P<title>[A-Z][A-Za-z ]+)\n-{3,}$", re.M)
# "name : type", "a, b : type", "**kwargs : type" or a bare "name".
_ENTRY = re.compile(r"^\*{0,2}(?P<names>[A-Za-z_]\w*(?:\s*,\s*\*{0,2}[A-Za-z_]\w*)*)\s*(?::|$)")


def documented(doc: str | None, section: str = "Parameters") -> list[str] | None:
    """The names a numpydoc section lists, in order; None if there is no such section."""
    if not doc:
        return None
    text = inspect.cleandoc(doc)
    titles = list(_SECTION.finditer(text))
    for i, title in enumerate(titles):
        if title.group("title") != section:
            continue
        end = titles[i + 1].start() if i + 1 < len(titles) else len(text)
        names = []
        for line in text[title.end():end].splitlines():
            if line and not line[0].isspace():
                match = _ENTRY.match(line)
                if match:
                    names += [n.strip().lstrip("*") for n in match.group("names").split(",")]
        return names
    return None


def signature_names(function, documented_names) -> list[str]:
    parameters = inspect.signature(function).parameters.values()
    names = []
    for p in parameters:
        if p.name in ("self", "cls"):
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in (documented_names or ()):
            continue
        names.append(p.name)
    return names


def public_objects():
    modules = [skticket]
    try:
        import skticket.onnx as onnx_module
        modules.append(onnx_module)
    except ImportError:  # the onnx extra is not installed
        pass
    for module in modules:
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj):
                yield f"{module.__name__}.{name}", obj, None
                for attr, member in vars(obj).items():
                    if not attr.startswith("_") and inspect.isfunction(member):
                        yield f"{module.__name__}.{name}.{attr}", member, obj
            elif inspect.isfunction(obj):
                yield f"{module.__name__}.{name}", obj, None


def _inherited_doc(cls, attr: str) -> str | None:
    for base in cls.__mro__[1:]:
        member = vars(base).get(attr)
        if member is not None and documented(member.__doc__) is not None:
            return member.__doc__
    return None


@pytest.mark.parametrize("qualname, obj, owner", list(public_objects()),
                         ids=lambda value: value if isinstance(value, str) else "")
def test_docstring_lists_the_signatures_parameters(qualname, obj, owner):
    if inspect.isclass(obj):
        if dataclasses.is_dataclass(obj):
            fields = [f.name for f in dataclasses.fields(obj)]
            assert documented(obj.__doc__, "Attributes")[:len(fields)] == fields, qualname
            return
        doc, function = obj.__doc__, obj.__init__
        if function is object.__init__:
            return
    else:
        doc, function = obj.__doc__, obj
        if owner is not None and documented(doc) is None:
            # An override documents its parameters where its base class does.
            doc = _inherited_doc(owner, obj.__name__) or doc
    assert doc, f"{qualname} has no docstring"
    names = documented(doc)
    expected = signature_names(function, names)
    if names is None:
        assert expected == [], f"{qualname} documents no Parameters; it takes {expected}"
    else:
        assert names == expected, (f"{qualname}: the docstring lists {names}, the signature "
                                   f"has {expected}")


def test_the_parser_sees_a_mismatch():
    def f(a, b, *, c=1):
        """Do it.

        Parameters
        ----------
        a : int
        c : int
            The c.

        Returns
        -------
        int
        """

    assert documented(f.__doc__) == ["a", "c"]
    assert signature_names(f, ["a", "c"]) == ["a", "b", "c"]
