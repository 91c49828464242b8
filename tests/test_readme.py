"""Every Python snippet in README.md runs as written, each on its own, at reduced size."""

import pathlib
import re

import pytest

from skticket import DefaultClassifierNet, DefaultRegressorNet

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


CONTINUES = "# Continues the snippet above"


def snippets() -> list[tuple[int, str]]:
    """The ```python blocks of README.md with the line each starts on.

    A block that starts with the line ``CONTINUES`` runs after the block before it.
    """
    text = README.read_text()
    blocks = [(text[:match.start()].count("\n") + 2, match.group(1))
              for match in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M)]
    return [(line, blocks[i - 1][1] + code if code.startswith(CONTINUES) else code)
            for i, (line, code) in enumerate(blocks)]


def reduced(code: str) -> str:
    """The same code with fewer epochs and repeats: what it does is unchanged."""
    code = re.sub(r"max_epochs=\d+", "max_epochs=2", code)
    return re.sub(r"n_repeats=\d+", "n_repeats=1", code)


def test_the_readme_has_snippets():
    assert len(snippets()) >= 5


@pytest.mark.parametrize("line, code", snippets(), ids=lambda value: str(value)[:30])
def test_readme_snippet_runs(line, code, tmp_path, monkeypatch):
    if "onnxruntime" in code:
        pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    if "ray.util" in code:
        pytest.importorskip("ray", reason="Ray is not installed (not a dependency)")
    if "dask" in code:
        pytest.importorskip("distributed", reason="the dask extra is not installed")
    if "plot_ticket_curve" in code:
        pytest.importorskip("matplotlib", reason="the plot extra is not installed")
        import matplotlib

        matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)  # files a snippet writes land here
    for net in (DefaultClassifierNet, DefaultRegressorNet):
        monkeypatch.setitem(net.__init__.__kwdefaults__, "max_epochs", 3)
    namespace = {"__name__": f"readme_line_{line}"}
    exec(compile(reduced(code), f"README.md:{line}", "exec"), namespace)
