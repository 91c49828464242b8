"""The documentation in docs/: its snippets run, it covers the public API, it builds.

Every ``.. code-block:: python`` of the user guide is runnable and runs here, each on its
own at reduced size (fewer epochs and repeats; what it does is unchanged). A block
whose first line is ``CONTINUES`` runs after the block before it. Output is shown in
``text`` blocks or included from ``docs/examples/``, never in ``python`` blocks.
"""

import importlib
import pathlib
import re
import subprocess
import sys
import textwrap
import time

import pytest

from skticket import DefaultClassifierNet, DefaultRegressorNet

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GUIDE = DOCS / "guide"

CONTINUES = "# Continues the snippet above"
#: An indented block of reST: lines of three or more spaces' indent, or blank.
_BLOCK = re.compile(r"^\.\. code-block:: python\n(?:   :.*\n)*\n((?:(?: {3}.*)?\n)+)", re.M)


def python_blocks(path: pathlib.Path) -> list[tuple[int, str]]:
    """The ``.. code-block:: python`` blocks of an reST file, with the line each starts on."""
    text = path.read_text()
    return [(text[:match.start()].count("\n") + 1, textwrap.dedent(match.group(1)))
            for match in _BLOCK.finditer(text)]


def snippets() -> list[tuple[str, str]]:
    found = []
    for path in sorted(GUIDE.glob("*.rst")):
        blocks = python_blocks(path)
        for i, (line, code) in enumerate(blocks):
            if code.startswith(CONTINUES):
                code = blocks[i - 1][1] + code
            found.append((f"{path.name}:{line}", code))
    return found


def reduced(code: str) -> str:
    """The same code with fewer epochs and repeats: what it does is unchanged."""
    code = re.sub(r"max_epochs=\d+", "max_epochs=2", code)
    return re.sub(r"n_repeats=\d+", "n_repeats=1", code)


def test_the_guide_has_its_snippets():
    where = [where for where, _ in snippets()]
    assert len(where) >= 13
    # Every page that explains an API by example has one.
    for page in ("quickstart", "pipelines", "inputs", "searches", "curves", "memory",
                 "features", "serving", "performance"):
        assert any(w.startswith(f"{page}.rst:") for w in where), f"{page}.rst has no snippet"


def test_blocks_are_found_whole(tmp_path):
    text = textwrap.dedent("""\
        Intro.

        .. code-block:: python
           :caption: two lines

           a = 1

           b = a + 1

        After.
        """)
    page = tmp_path / "page.rst"
    page.write_text(text)
    assert python_blocks(page) == [(3, "a = 1\n\nb = a + 1\n\n")]


@pytest.mark.parametrize("where, code", snippets(), ids=[w for w, _ in snippets()])
def test_guide_snippet_runs(where, code, tmp_path, monkeypatch):
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
    namespace = {"__name__": f"guide_{where}"}
    exec(compile(reduced(code), f"docs/guide/{where}", "exec"), namespace)


def documented_names() -> set[str]:
    """The names the API reference lists in its autosummary tables and autodata entries."""
    text = (DOCS / "api" / "index.rst").read_text()
    names, module = set(), "skticket"
    for line in text.splitlines():
        if match := re.match(r"\.\. currentmodule:: (\S+)", line):
            module = match[1]
        elif match := re.match(r"   (\w+)$", line):
            names.add(f"{module}.{match[1]}")
        elif match := re.match(r"\.\. autodata:: (\w+)", line):
            names.add(f"{module}.{match[1]}")
    return names


@pytest.mark.parametrize("module", ["skticket", "skticket.onnx", "skticket.exceptions"])
def test_the_api_reference_lists_every_public_name(module):
    if module == "skticket.onnx":
        pytest.importorskip("skl2onnx", reason="the onnx extra is not installed")
    public = {f"{module}.{name}" for name in importlib.import_module(module).__all__}
    listed = {name for name in documented_names() if name.rpartition(".")[0] == module}
    assert public - listed == set(), "public names missing from docs/api/index.rst"
    assert listed - public == set(), "docs/api/index.rst lists names that are not public"


def test_every_example_has_its_output_in_the_guide():
    included = {pathlib.Path(name).stem for page in GUIDE.glob("*.rst")
                for name in re.findall(r"literalinclude:: \.\./examples/(\S+\.txt)",
                                       page.read_text())}
    examples = {path.stem for path in (ROOT / "examples").glob("*.py")}
    assert examples == included, "each script in examples/ has docs/examples/<name>.txt"
    for name in included:
        assert (DOCS / "examples" / f"{name}.txt").read_text().strip()
    assert "lenet_digits.png" in (GUIDE / "examples.rst").read_text()
    assert (DOCS / "lenet_digits.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_default_nets_settings_are_not_restated_in_the_guide():
    """They live in skticket/_nets.py; the guide and the estimators' docstrings link to the
    API pages that render them."""
    from skticket import LotteryTicketClassifier, LotteryTicketRegressor

    texts = {page.name: page.read_text() for page in GUIDE.glob("*.rst")}
    texts.update((estimator.__name__, estimator.__doc__)
                 for estimator in (LotteryTicketClassifier, LotteryTicketRegressor))
    for name, text in texts.items():
        text = " ".join(text.split())  # reST wraps lines anywhere
        for restated in ("two hidden layers of 256", "layers of 256 units", "Adam (lr 0.001)",
                         "Adam at lr 0.001", "by 1e-4 in 10 epochs"):
            assert restated not in text, f"{name} restates the default net: {restated!r}"


#: The build's limit in the test suite: above it, the build belongs in .ci/run alone.
BUILD_SECONDS = 60


def test_the_docs_build_without_warnings(tmp_path):
    """``.ci/run``'s docs build, offline with warnings as errors, fast enough to test here."""
    pytest.importorskip("sphinx", reason="the docs extra is not installed")
    pytest.importorskip("numpydoc", reason="the docs extra is not installed")
    start = time.perf_counter()
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
        capture_output=True, text=True, cwd=ROOT, timeout=10 * BUILD_SECONDS)
    seconds = time.perf_counter() - start
    assert build.returncode == 0, build.stderr[-4000:]
    assert (tmp_path / "html" / "api" / "generated" / "skticket.LotteryTicketClassifier.html"
            ).exists()
    assert seconds < BUILD_SECONDS, f"the docs build took {seconds:.0f} s"
