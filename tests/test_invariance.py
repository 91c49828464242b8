"""A row's prediction does not depend on its batch, under other CPUs' kernels too.

The kernels a machine runs depend on its instruction sets (MKL's CSR product
computes columns in vectorized blocks on AVX2 and AVX-512 Intel CPUs; torch's
own kernels are compiled for several). Predictions compute in float64, so the
promise (labels identical, values equal to 1e-12 relative) holds by numerics
whatever the kernels; it is checked here under limits that change them:
``MKL_ENABLE_INSTRUCTIONS`` (MKL only lowers what it uses) and
``ATEN_CPU_CAPABILITY`` (torch's vectorized kernels), each set in a fresh
process before torch is imported. Each process fits small tickets
once and checks many calls (see ``invariance_worker.py``).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("invariance_worker.py")
LIMITS = ("MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY")

CONFIGS = {
    "as installed": {},
    "MKL SSE4_2": {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
    "MKL AVX2": {"MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "ATen default": {"ATEN_CPU_CAPABILITY": "default"},
    "ATen avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_rows_apart_under_instruction_set_limits(config):
    env = {key: value for key, value in os.environ.items() if key not in LIMITS}
    env.update(CONFIGS[config])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, str(WORKER)], capture_output=True, text=True,
                            env=env, cwd=ROOT, timeout=600)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, f"the worker printed no report:\n{result.stdout}\n{result.stderr[-3000:]}"
    report = json.loads(lines[-1])
    assert result.returncode == 0 and report["n_failures"] == 0, (
        f"{report['n_failures']} calls gave rows other than the whole call under {config} "
        f"(capability {report['capability']}); first (estimator, threads, rows, relative "
        f"difference, same labels): {report['failures']}\n{result.stderr[-3000:]}")
    # The limit took effect where it can be read back (torch's own capability).
    if CONFIGS[config].get("ATEN_CPU_CAPABILITY") == "default":
        assert report["capability"] == "DEFAULT"
    assert report["compared"] > 500, report
