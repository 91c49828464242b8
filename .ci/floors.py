"""Print the lowest declared version of every dependency in pyproject.toml as a pin.

The floors are written once, in pyproject.toml; this turns them into a pip
constraints file (``name==floor`` per line) for the minimum-versions run in
.ci/run. Every requirement must have a ``>=`` floor: one without would be an
untested range, so the script stops with an error instead of skipping it.

Left out, each for the reason in UNPINNED: the resolver then takes the newest
release that installs beside the other floors.

Usage: python3 .ci/floors.py [EXTRA ...] > constraints.txt
"""

from __future__ import annotations

import pathlib
import re
import sys

import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
UNPINNED = {
    # The only CPU build these machines install is 2.13.0, which .ci/run installs
    # first; any other version pulls a CUDA build (see pyproject.toml on torch).
    "torch": "2.13.0 is installed instead",
    # onnxruntime 1.17.0 requires numpy>=1.24.2, above the numpy floor (1.24.0).
    "onnxruntime": "its floor needs numpy>=1.24.2",
}
FLOOR = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*>=\s*([0-9][0-9A-Za-z.+-]*)\s*$")


def floors(extras: list[str]) -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project.get("optional-dependencies", {})
    unknown = sorted(set(extras) - set(optional))
    if unknown:
        sys.exit(f"floors.py: no extra named {unknown} in pyproject.toml")
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += optional[extra]
    pins: dict[str, str] = {}
    for requirement in requirements:
        match = FLOOR.match(requirement)
        if match is None:
            sys.exit(f"floors.py: {requirement!r} has no plain '>=' floor to test")
        name, version = match[1].lower().replace("_", "-"), match[2]
        if pins.get(name, version) != version:
            sys.exit(f"floors.py: {name} is declared with two floors, {pins[name]} and {version}")
        pins[name] = version
    return {name: v for name, v in pins.items() if name not in UNPINNED}


if __name__ == "__main__":
    for name, version in sorted(floors(sys.argv[1:]).items()):
        print(f"{name}=={version}")
