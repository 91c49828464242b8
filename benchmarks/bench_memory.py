"""Peak memory of an IMP fit against plain skorch fits of the same net.

Each measurement runs in a fresh subprocess, so that one peak cannot hide
another: the peak resident set size (``resource.getrusage(...).ru_maxrss``)
above the process's size just before the fit, once everything is imported and
the data is loaded and a tiny warm-up fit has run; and, in a separate
subprocess (tracing costs memory of its own), the peak of Python and numpy
allocations under ``tracemalloc``, which sees skticket's numpy copies of the
weights (torch's tensor memory it does not see). One epoch per training:
what a fit holds at once does not grow with the epochs. Sides alternate,
medians over repeats.

    python benchmarks/bench_memory.py
    python benchmarks/bench_memory.py --nets lenet --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from _common import NETS, machine_line, median, print_header, rss_kib, table

SIDES = ("skticket fit", "k+1 plain skorch fits", "1 plain skorch fit")
_HERE = os.path.dirname(os.path.abspath(__file__))




def child(side: str, name: str, mode: str, threads: int | None) -> None:
    import resource
    import tracemalloc

    import torch
    from _common import make_net, net_data
    from sklearn.base import clone

    from skticket import LotteryTicketClassifier

    if threads is not None:
        torch.set_num_threads(threads)
    X, y = net_data(name)
    # One epoch per training: what a fit holds at once does not grow with epochs.
    net = make_net(name, X, y, epochs=1)
    est = LotteryTicketClassifier(net, prune_fraction=0.2, target_sparsity=0.9, random_state=0)
    trainings = 12  # 0.2 per round to 0.9: the dense round and 11 tickets
    # Lazy imports and torch's start-up belong to the baseline: both sides
    # first run the same tiny fit, on a few rows.
    clone(est).set_params(target_sparsity=0.5).fit(X[:64], y[:64])
    if mode == "tracemalloc":
        tracemalloc.start()
    before = rss_kib()
    if side == "skticket fit":
        fitted = clone(est).fit(X, y)
        assert len(fitted.rounds_) == trainings
    elif side == "k+1 plain skorch fits":
        for _ in range(trainings):
            fitted = clone(net).fit(X, y)
    else:
        fitted = clone(net).fit(X, y)
    result = {"rss_before_kib": before}
    if mode == "tracemalloc":
        result["traced_peak_kib"] = tracemalloc.get_traced_memory()[1] / 1024
    else:
        # ru_maxrss is in KiB on Linux (bytes on macOS).
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if sys.platform == "darwin":
            peak //= 1024
        result["rss_peak_kib"] = peak
    result["threads"] = torch.get_num_threads()
    del fitted
    print(json.dumps(result))


def run_child(side: str, name: str, mode: str, threads: int | None) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", side, name, mode]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=_HERE)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--child", nargs=3, metavar=("SIDE", "NET", "MODE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.threads)
        return
    print_header("Peak memory: skticket fit vs plain skorch fits (one subprocess each)")
    rows = []
    for name in args.nets:
        rss = {side: [] for side in SIDES}
        peak = {side: [] for side in SIDES}
        traced = {side: [] for side in SIDES}
        threads = None
        for r in range(args.repeats):
            order = SIDES if r % 2 == 0 else SIDES[::-1]
            for side in order:
                res = run_child(side, name, "rss", args.threads)
                threads = res["threads"]
                rss[side].append((res["rss_peak_kib"] - res["rss_before_kib"]) / 1024)
                peak[side].append(res["rss_peak_kib"] / 1024)
                if r == 0:  # traced allocations do not vary from run to run
                    traced[side].append(run_child(side, name, "tracemalloc", args.threads)
                                        ["traced_peak_kib"] / 1024)
        for side in SIDES:
            rows.append((NETS[name]["label"], side, median(peak[side]), median(rss[side]),
                         median(rss[side]) - median(rss["1 plain skorch fit"]),
                         median(traced[side])))
        print(f"{name}: peak RSS above baseline, MiB, per repeat: "
              + "; ".join(f"{side}: {[round(v, 1) for v in rss[side]]}" for side in SIDES))
    print()
    print(f"children: torch.get_num_threads()={threads}; parent: {machine_line()}\n")
    print(table(["net", "side", "peak RSS of the process, MiB", "peak RSS above baseline, MiB",
                 "more than 1 plain fit, MiB", "peak traced Python+numpy, MiB"], rows))
    print()
    print("Baseline: the process after imports, data and a tiny warm-up fit of the same "
          "net (so one net's weights, gradients and optimizer state are already counted). "
          "RSS columns are medians over repeats.\n")


if __name__ == "__main__":
    main()
