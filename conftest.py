"""Collection settings for the whole repository."""

import importlib.util


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError, AttributeError):
        return False


# skticket/onnx.py needs the optional onnx extra and raises ImportError without
# it, which --doctest-modules would report as a collection error; its tests in
# tests/test_onnx.py skip with a reason instead.
collect_ignore = (
    [] if all(_installed(m) for m in ("skl2onnx", "onnx", "onnxruntime"))
    else ["skticket/onnx.py"]
)
