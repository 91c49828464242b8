"""The examples, run at reduced size, with assertions on what they report."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sum_of_two_inputs(capsys):
    toy = _load("sum_of_two_inputs")
    result = toy.main(n_train=512, n_test=500, hidden_units=50, epochs=10)
    ticket = result["winning_ticket"]
    # Pruned until each layer is at its floor: exactly 2 weights per layer.
    assert {name: int(mask.sum()) for name, mask in ticket.masks.items()} == {
        "hidden_0.weight": 2, "output.weight": 2}
    assert result["winning_path"]
    assert toy.has_input_output_path(ticket)
    rmse = result["test_rmse"]
    assert rmse["winning ticket"] < 0.05
    assert set(rmse) == {"full model", "winning ticket", "reinit ticket", "permuted ticket"}
    assert all(math.isfinite(value) and value >= 0 for value in rmse.values())
    # The true RMSE over all samples (a root of summed batch MSEs would exceed 1 here).
    assert toy.rmse(np.zeros(8), np.ones(8)) == 1.0
    # A net that outputs 0 on [1, 2)^2 scores the RMS of the target, about 3.
    _, _, _, y_test = toy.make_data(512, 500, seed=0)
    assert 2.9 < toy.rmse(y_test, np.zeros_like(y_test)) < 3.1
    rounds = {row["round"] for row in result["curve"]}
    assert rounds == set(range(max(rounds) + 1))
    out = capsys.readouterr().out
    for line in ("full model", "winning ticket", "reinit ticket", "permuted ticket",
                 "connects both inputs to the output"):
        assert line in out
    assert str(ticket) in out


def test_path_check():
    toy = _load("sum_of_two_inputs")
    from skticket import Ticket

    def ticket(first, second):
        masks = {"hidden_0.weight": np.array(first, dtype=bool),
                 "output.weight": np.array([second], dtype=bool)}
        return Ticket(masks=masks, weights={k: v.astype(float) for k, v in masks.items()},
                      round=1)

    assert toy.has_input_output_path(ticket([[1, 1], [0, 0]], [1, 0]))
    assert toy.has_input_output_path(ticket([[1, 0], [0, 1]], [1, 1]))
    assert not toy.has_input_output_path(ticket([[1, 0], [0, 1]], [1, 0]))
    assert not toy.has_input_output_path(ticket([[1, 1], [0, 0]], [0, 1]))


def test_lenet_digits(tmp_path, capsys):
    lenet = _load("lenet_digits")
    png = tmp_path / "curve.png"
    result = lenet.main(hidden_units=(24, 12), epochs=3, rounds=2, n_repeats=2, png=png)
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(result["curve"]) == 2 * (1 + 2 * 3)
    summary = result["summary"]
    assert [(row["round"], row["ticket"]) for row in summary] == [
        (0, "dense"), *((r, k) for r in (1, 2) for k in ("rewind", "reinit", "permute"))]
    assert all(row["n_repeats"] == 2 for row in summary)
    # 20% of each hidden layer, 10% of the output layer per round.
    sizes = {"hidden_0.weight": 64 * 24, "hidden_1.weight": 24 * 12, "output.weight": 12 * 10}
    n = sum(sizes.values())
    def kept(n, percent):  # n less ceil(n * percent / 100), in integers
        return n - (n * percent + 99) // 100

    after_one = (kept(sizes["hidden_0.weight"], 20) + kept(sizes["hidden_1.weight"], 20)
                 + kept(sizes["output.weight"], 10))
    row = next(r for r in summary if r["round"] == 1 and r["ticket"] == "rewind")
    assert row["n_active"] == after_one
    assert row["weights_remaining"] == pytest.approx(after_one / n)
    for kind, share in result["within_1pt"].items():
        assert kind in ("rewind", "reinit", "permute")
        assert share in {1.0} | {r["weights_remaining"] for r in summary}
    assert "stays within 1 point" in capsys.readouterr().out


def test_stays_within():
    lenet = _load("lenet_digits")
    summary = [
        {"round": r, "ticket": "rewind", "weights_remaining": w, "mean": m}
        for r, w, m in [(1, 0.8, 0.95), (2, 0.64, 0.97), (3, 0.51, 0.93), (4, 0.41, 0.97)]
    ]
    # Drops below 0.96 - 0.01 at round 3: the later recovery does not count.
    assert lenet.stays_within(summary, "rewind", 0.96, 0.01) == 0.64
    assert lenet.stays_within(summary, "rewind", 0.99, 0.01) == 1.0


def test_tabular_quickstart(capsys):
    quick = _load("tabular_quickstart")
    # The default net, held to 30 epochs a training to keep the smoke test short.
    results = quick.main(prune_fractions=(0.5,), target_sparsities=(0.5,), cv=2,
                         net_params={"net__max_epochs": 30})
    assert [r["dataset"] for r in results] == ["breast_cancer", "diabetes"]
    for result in results:
        assert result["best_params"] == {"prune_fraction": 0.5, "target_sparsity": 0.5}
        assert result["ticket_sparsity"] == 0.5
        assert result["ticket_weights"] * 2 == result["dense_weights"]
        assert set(result["scores"]) == {"winning ticket", "dense net", "sklearn MLP"}
    cancer, diabetes = results
    assert all(score > 0.85 for score in cancer["scores"].values())
    # R^2: sklearn's MLP may well overfit these 331 samples (below 0); the
    # sparse ticket must at least beat predicting the mean.
    assert all(math.isfinite(score) and score <= 1 for score in diabetes["scores"].values())
    assert diabetes["scores"]["winning ticket"] > 0
    out = capsys.readouterr().out
    assert "breast_cancer" in out and "diabetes" in out


def test_cheap_tickets(capsys):
    cheap = _load("cheap_tickets")
    sparsities = (0.2, 0.36)
    # The tabular data sets' default net held to 10 epochs a training.
    result = cheap.main(sparsities=sparsities, seeds=(0,), epochs=2, hidden_units=(16, 8),
                        n_train=64, net_params={"net__max_epochs": 10})
    assert list(result["results"]) == ["digits", "breast_cancer", "diabetes"]
    for name, summary in result["results"].items():
        assert [(r["method"], r["target"]) for r in summary] == [
            ("dense", 0.0), *((m, s) for m in cheap.METHODS[1:] for s in sparsities)]
        by_method = {(r["method"], r["target"]): r for r in summary}
        for r in summary:
            # Every ticket lands on its target exactly (to the nearest weight).
            n = r["n_prunable"]
            assert r["n_active"] == n - round(r["target"] * n)
            assert r["sparsity"] == pytest.approx(r["target"], abs=1 / n)
            assert math.isfinite(r["score"]) and r["score"] <= 1
            assert r["seconds"] > 0 and r["n_seeds"] == 1
            if cheap.METRICS[name] == "accuracy":
                assert 0 <= r["score"]
        for s in sparsities:
            # What each method trains: IMP's rounds plus one for a baseline ticket.
            assert by_method[("imp + reinit", s)]["trainings"] == (
                by_method[("imp", s)]["trainings"] + 1)
            assert {m: by_method[(m, s)]["trainings"] for m in
                    ("early_bird", "snip", "snip + permute", "one-shot")} == {
                "early_bird": 2, "snip": 1, "snip + permute": 2, "one-shot": 2}
            (stop,) = by_method[("early_bird", s)]["stop_epochs"]
            assert 1 <= stop <= (2 if name == "digits" else 10)
            # One training each; "x2" may train twice the epochs.
            for method in cheap.ONE_TRAINING:
                r = by_method[(method, s)]
                longer = 2 if method.endswith("x2") else 1
                assert r["trainings"] == 1
                assert r["epochs"] <= (2 if name == "digits" else 10) * longer
        assert by_method[("dense", 0.0)]["trainings"] == 1
        if name == "digits":  # no stopping rule: each training runs its 2 epochs
            for (method, _), r in by_method.items():
                cut = 2 - r["stop_epochs"][0] if method == "early_bird" else 0
                longer = 2 if method.endswith("x2") else 1
                assert r["epochs"] == 2 * longer * r["trainings"] - cut
    transfer = {(r["method"], r["target"]): r for r in result["transfer"]}
    assert set(transfer) == {("dense on 5-9", 0.0)} | {
        (m, s) for s in sparsities for m in ("IMP on 0-4 (scored on 0-4)", "IMP on 5-9",
                                             "ticket from 0-4 (rewind)",
                                             "ticket from 0-4 (reinit)")}
    for s in sparsities:
        source = transfer[("IMP on 0-4 (scored on 0-4)", s)]
        for init in ("rewind", "reinit"):
            moved = transfer[(f"ticket from 0-4 ({init})", s)]
            assert moved["n_active"] == source["n_active"] and moved["trainings"] == 1
    assert all(math.isfinite(r["score"]) for r in result["transfer"])
    checks = result["targets"]
    # early-bird's two on digits, SNIP's on each data set; the one-training target
    # applies at 90% and 95% only.
    assert len(checks) == 2 * len(sparsities) + 3 * len(sparsities)
    assert all(isinstance(check["met"], bool) for check in checks)
    out = capsys.readouterr().out
    for line in ("digits, LeNet-16-8", "breast_cancer, default net", "diabetes, default net",
                 "Transfer on digits", "early_bird stopped the dense training", "Targets:"):
        assert line in out


def test_calibrate_early_bird(capsys):
    calibrate = _load("calibrate_early_bird")
    result = calibrate.main(sparsities=(0.5,), tolerances=(0.1, 1.0), windows=(2,), seeds=(0,),
                            epochs=4, hidden_units=(16, 8), n_train=120)
    summary = result["summary"]
    assert [(r["dataset"], r["tolerance"]) for r in summary] == [
        (name, t) for name in ("digits", "breast_cancer") for t in (0.1, 1.0)]
    for r in summary:
        assert r["stop_min"] <= r["stop_epoch"] <= r["stop_max"]
        assert 0 <= r["accuracy"] <= 1 and 0 <= r["imp_accuracy"] <= 1
    # Tolerance 1 accepts any mask: the training stops as soon as the window is full.
    assert all(r["stop_epoch"] == 3 and r["settled"] == 1
               for r in summary if r["tolerance"] == 1.0)
    assert all(row["ticket_sparsity"] == 0.5 for row in result["rows"])
    assert result["recommended"][2] in (None, 0.1, 1.0)
    assert "largest tolerance within 1 point" in capsys.readouterr().out


def test_quickstart(capsys):
    quickstart = _load("quickstart")
    rows = quickstart.main(net_params={"net__max_epochs": 5})
    assert [r["model"] for r in rows] == ["lottery ticket (90% sparse)", "same net, dense",
                                          "scikit-learn MLPClassifier"]
    # The default net on breast cancer: 30 inputs, two hidden layers of 256, 2 classes.
    n = 30 * 256 + 256 * 256 + 256 * 2
    assert rows[0]["weights"] == f"{n - round(0.9 * n):,} of {n:,} weights"
    assert all(0.5 < r["accuracy"] <= 1 and r["seconds"] > 0 for r in rows)
    out = capsys.readouterr().out
    assert out.count("test accuracy") == 3 and "fit" in out


def test_cv_path(tmp_path, capsys):
    example = _load("cv_path")
    png = tmp_path / "path.png"
    result = example.main(target_sparsity=0.75, cv=3, png=png,
                          net_params={"net__max_epochs": 3, "net__module__hidden_units": (16,)})
    results = result["cv_results"]
    assert results["sparsity"].tolist() == [0.0, 0.5, 0.75]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result["sparsity"] == results["sparsity"][result["chosen"]]
    mean = results["mean_test_score"]
    assert mean[result["best"]] == mean.max()
    assert 0 <= result["test_accuracy"] <= 1
    out = capsys.readouterr().out
    assert "<- chosen (1-SE)" in out and f"test accuracy {result['test_accuracy']:.4f}" in out


def test_signs_and_criteria(capsys):
    signs = _load("signs_and_criteria")
    report = signs.main(hidden_units=(24, 12), epochs=2, n_repeats=2)
    table = report["table"]
    n_prunable = 64 * 24 + 24 * 12 + 12 * 10
    for target in signs.SPARSITIES:
        for key in (*signs.KINDS, *signs.CRITERIA):
            rows = table[(key, target)]
            # One row per seed, each at the target to the nearest weight, scored trained
            # and untrained.
            assert len(rows) == 2 and {row["repeat"] for row in rows} == {0, 1}
            assert all(row["n_active"] == n_prunable - round(target * n_prunable)
                       for row in rows)
            assert all(0 <= row["untrained_score"] <= 1 and 0 <= row["score"] <= 1
                       for row in rows)
    # The sign ticket and the reinit train IMP's masks: at every round, as many weights.
    curve = report["curves"][("large_final", 0.95)]
    assert {row["ticket"] for row in curve} == {"dense", "rewind", "sign", "reinit"}
    active = {(row["repeat"], row["round"], row["ticket"]): row["n_active"] for row in curve}
    assert all(active[(rep, r, kind)] == active[(rep, r, "rewind")]
               for rep, r, kind in active if kind in ("sign", "reinit"))
    _, _, _, y_test = signs.load_data()
    assert report["chance"] == np.bincount(y_test).max() / len(y_test)
    assert {row["ticket"] for row in report["supermask"]} == {"rewind", "sign"}
    claims = [verdict["claim"] for verdict in report["verdicts"]]
    # Per sparsity: two of signs, one per criterion against large_final, one of the
    # same-sign supermask; and the supermask's.
    assert len(claims) == (2 + len(signs.CRITERIA)) * len(signs.SPARSITIES) + 1
    assert "large_final_same_sign" in signs.CRITERIA
    assert all(isinstance(verdict["holds"], bool) for verdict in report["verdicts"])
    # At 2 epochs on a 24-12 net the untrained masks are near chance: the supermask claim
    # cannot hold, and the report says so.
    assert report["verdicts"][-1]["holds"] is False
    out = capsys.readouterr().out
    assert "DOES NOT HOLD" in out and "Chance (the most frequent class)" in out
    for heading in ("1. Signs", "2. Mask criteria", "3. Supermasks", "Published claims"):
        assert heading in out


def test_signs_and_criteria_at_target():
    signs = _load("signs_and_criteria")
    rows = [{"repeat": rep, "round": r, "ticket": k, "score": 0.1 * r}
            for rep in (0, 1) for r in (0, 1, 2) for k in ("rewind", "sign")]
    last = signs.at_target(rows, "sign")
    assert sorted((row["repeat"], row["round"], row["ticket"]) for row in last) == [
        (0, 2, "sign"), (1, 2, "sign")]


def test_supermasks_and_targeted_dropout(capsys):
    example = _load("supermasks_and_targeted_dropout")
    result = example.main(hidden_units=(24, 12), epochs=3, seeds=(0,))
    rows = result["supermasks"]
    methods = ["IMP 50% ticket, trained", "IMP 50% mask on theta_0, untrained",
               "learned supermask, lr 1.2e-3 (the net)", "learned supermask, lr 0.01"]
    assert [(r["init"], r["method"]) for r in rows] == [
        (init, method) for init in ("default", "kaiming") for method in methods]
    assert all(0 <= r["accuracy"] <= 1 for r in rows)
    # Digits' test split holds about a tenth of each class.
    assert 0.1 <= result["chance"] < 0.11
    dropouts = result["dropouts"]
    assert [r["dropout"] for r in dropouts] == list(example.DROPOUTS)
    assert all(0 <= r[key] <= 1 for r in dropouts for key in ("dense", 0.9, 0.95))
    out = capsys.readouterr().out
    assert "learned supermask" in out and "pruned to 95%" in out


def test_one_shot_pruning_of_the_example_prunes_by_rank_and_restores_the_net():
    example = _load("supermasks_and_targeted_dropout")
    import torch
    from skorch import NeuralNetClassifier

    net = NeuralNetClassifier(torch.nn.Linear, module__in_features=4, module__out_features=2,
                              criterion=torch.nn.CrossEntropyLoss).initialize()
    with torch.no_grad():
        net.module_.weight.copy_(torch.tensor([[1.0, -4.0, 0.5, 2.0], [-3.0, 0.1, 5.0, 2.5]]))
        net.module_.bias.zero_()
    X, y = np.eye(4, dtype=np.float32), np.array([0, 1, 1, 1])
    assert example.accuracy(net, X, y) == 1.0
    # At 75% two of the eight weights are kept, 5 and -4: input 3 then reads 0 for both
    # classes (class 0 by the tie) instead of 2 against 2.5; the others keep their class.
    assert example.pruned_accuracy(net, X, y, 0.75) == 0.75
    assert example.accuracy(net, X, y) == 1.0  # the weights are put back
