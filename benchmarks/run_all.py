"""Run every benchmark in turn, each in its own process, and print their tables.

    python benchmarks/run_all.py                   # all of them, default settings
    python benchmarks/run_all.py --threads 1       # passed on to every script
    python benchmarks/run_all.py --only training reference
    python benchmarks/run_all.py --out /tmp/benchmarks.md   # also write the output there

Scripts that are missing are skipped with a note. Each script's own command
line is printed at the top of its section, for RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# In the order of the parts.
SCRIPTS = {
    "training": "bench_training.py",      # 1: masked training vs plain skorch
    "reference": "bench_reference.py",    # 2: vs torch.nn.utils.prune
    "cache": "bench_cache.py",            # 3: grid over target_sparsity with memory
    "compact": "bench_compact.py",        # 4: compact sparse inference
    "memory": "bench_memory.py",          # 5: peak memory vs plain skorch
    "sklearn": "bench_sklearn.py",        # 5: vs scikit-learn's MLPs
    "predict": "bench_predict.py",        # serving 1: predict time vs MLPClassifier
    "onnx": "bench_onnx.py",              # serving 3: ONNX graph size and onnxruntime
    "defaults": "bench_defaults.py",      # defaults: zero configuration vs scikit-learn
    "parallel": "bench_parallel.py",      # scaling 2: GridSearchCV on processes, threads, Dask
    "step": "bench_step.py",              # cost 1: a round's epoch against a bare torch loop
    "cost": "bench_cost.py",              # cost 3: zero-config ticket fit vs one MLP fit
    "cv": "bench_cv.py",                  # issue 27: the cross-validated path vs one fit, a grid
    "stacking": "bench_stacking.py",      # issue 28: k stacked members vs k trainings alone
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(SCRIPTS), default=list(SCRIPTS))
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads(N) in every script")
    parser.add_argument("--out", default=None, help="also write the combined output here")
    args = parser.parse_args()

    chunks = []
    for key in args.only:
        path = os.path.join(HERE, SCRIPTS[key])
        if not os.path.exists(path):
            chunks.append(f"## {SCRIPTS[key]}: not present, skipped\n")
            print(chunks[-1], flush=True)
            continue
        # Relative to the repository root, so that each script prints the
        # command as it is typed there.
        cmd = [sys.executable, os.path.join("benchmarks", SCRIPTS[key])]
        if args.threads is not None:
            cmd += ["--threads", str(args.threads)]
        tic = time.perf_counter()
        proc = subprocess.run(cmd, cwd=os.path.dirname(HERE), capture_output=True, text=True)
        took = time.perf_counter() - tic
        text = proc.stdout + (f"\n(stderr)\n{proc.stderr}" if proc.returncode else "")
        text += f"\n({SCRIPTS[key]} took {took:.0f} s, exit status {proc.returncode})\n"
        chunks.append(text)
        print(text, flush=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(chunks))


if __name__ == "__main__":
    main()
