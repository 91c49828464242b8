"""What tickets are made of: signs, mask criteria and supermasks (Zhou et al., 2019), on digits.

Zhou, Lan, Liu and Yosinski ("Deconstructing Lottery Tickets: Zeros, Signs, and
the Supermask", NeurIPS 2019) report, for LeNet-300-100 on MNIST:

* a ticket whose survivors keep only the *signs* of their initial values, at a
  constant magnitude per layer, trains about as well as the rewound ticket,
  while the same mask with fresh (random-sign) weights does not;
* keeping the weights whose magnitude grew most (``magnitude_increase``,
  ``|w_f| - |w_i|``) or moved most (``movement``, ``|w_f - w_i|``), or the
  largest final magnitudes among the weights that kept their initial sign
  (``large_final_same_sign``), does as well as IMP's rule, the largest final
  magnitudes (``large_final``);
* the mask alone, applied to the untrained initial weights (a "supermask"),
  scores far above chance (86% on MNIST with their best criterion,
  ``large_final_same_sign``, whose supermasks beat ``large_final``'s).

This script runs each comparison on ``sklearn.datasets.load_digits`` (1,797
8x8 images scaled to [0, 1], a stratified 30% test split), with the paper's
LeNet-300-100 and IMP rates (20% of each hidden layer and 10% of the output
layer per round, survivors rewound to theta_0, Adam at 1.2e-3, batches of 60),
``n_repeats`` seeds, and fewer epochs than the paper (``epochs`` a training, no
validation split: every training runs them all). For each of the four
criteria, :func:`skticket.ticket_curve` runs the search to 80% and to 95%
sparsity with ``score_untrained=True``; for IMP's rule it also trains each
round's sign ticket (``"sign"``) and random reinit (``"reinit"``). It prints
the test accuracies, the untrained (supermask) accuracies against chance, and,
for each published claim, whether it holds here.

Run:  python examples/signs_and_criteria.py      (1-2.5 min on a 2-core CPU)
"""

from __future__ import annotations

import tempfile

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from skorch import NeuralNetClassifier

from skticket import MLP, LotteryTicketClassifier, ticket_curve

SPARSITIES = (0.8, 0.95)
CRITERIA = ("large_final", "magnitude_increase", "movement", "large_final_same_sign")
#: The tickets trained on IMP's masks: rewound, sign, random reinit.
KINDS = ("rewind", "sign", "reinit")
#: "About as well": within this many points of accuracy (mean over the seeds).
TOLERANCE = 0.01
#: "Far above chance" for a supermask: half the test images right (chance is about 10%).
SUPERMASK_FAR = 0.5


def load_data(random_state: int = 0):
    """Digits scaled to [0, 1]; a stratified 70/30 train/test split."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=random_state)


def make_estimator(criterion: str, target: float, hidden_units=(300, 100), epochs: int = 20,
                   memory=None, random_state: int = 0) -> LotteryTicketClassifier:
    net = NeuralNetClassifier(MLP, module__hidden_units=hidden_units,
                              optimizer=torch.optim.Adam, lr=1.2e-3, max_epochs=epochs,
                              batch_size=60, train_split=None, verbose=0)
    return LotteryTicketClassifier(
        net, prune_fraction=0.2, layer_prune_fractions={"output.weight": 0.1},
        target_sparsity=target, prune_criterion=criterion, memory=memory,
        random_state=random_state)


def chance(y) -> float:
    """The accuracy of always predicting the most frequent class."""
    return float(np.bincount(y).max() / len(y))


def mean(rows, key: str) -> float:
    return float(np.mean([row[key] for row in rows]))


def std(rows, key: str) -> float:
    return float(np.std([row[key] for row in rows], ddof=1)) if len(rows) > 1 else 0.0


def run(hidden_units=(300, 100), epochs: int = 20, n_repeats: int = 2,
        random_state: int = 0) -> dict:
    """Every curve: ``{(criterion, target): rows}``, the dense rows, and the test labels.

    One ``memory`` for all of them: the searches to 80% and to 95% share their
    first rounds, and every criterion shares the dense round (the curves draw
    the same seeds), so each is trained once.
    """
    X_train, X_test, y_train, y_test = load_data(random_state)
    curves = {}
    with tempfile.TemporaryDirectory() as memory:
        for criterion in CRITERIA:
            for target in SPARSITIES:
                estimator = make_estimator(criterion, target, hidden_units, epochs, memory,
                                           random_state)
                curves[(criterion, target)] = ticket_curve(
                    estimator, X_train, y_train, X_test, y_test,
                    tickets=KINDS if criterion == "large_final" else ("rewind",),
                    n_repeats=n_repeats, random_state=random_state, score_untrained=True,
                    as_frame=False)
    return {"curves": curves, "y_test": y_test}


def at_target(rows, kind: str) -> list[dict]:
    """The rows of ``kind`` at the last round of each repeat (the target sparsity)."""
    last = {}
    for row in rows:
        if row["ticket"] == kind and row["round"] >= last.get(row["repeat"], {"round": -1})[
                "round"]:
            last[row["repeat"]] = row
    return list(last.values())


def main(hidden_units=(300, 100), epochs: int = 20, n_repeats: int = 2, random_state: int = 0,
         verbose: bool = True) -> dict:
    """Run the comparisons; print them when ``verbose``. Returns the tables and verdicts."""
    result = run(hidden_units, epochs, n_repeats, random_state)
    curves, y_test = result["curves"], result["y_test"]
    dense = [row for row in curves[("large_final", SPARSITIES[0])] if row["ticket"] == "dense"]
    table = {}  # (criterion or kind, target) -> accuracies at the target
    for target in SPARSITIES:
        for kind in KINDS:
            table[(kind, target)] = at_target(curves[("large_final", target)], kind)
        for criterion in CRITERIA:
            table[(criterion, target)] = at_target(curves[(criterion, target)], "rewind")
    supermask = [row for row in curves[("large_final", SPARSITIES[-1])]
                 if row["ticket"] in ("rewind", "sign")]
    verdicts = _verdicts(table, supermask, chance(y_test))
    report = {"curves": curves, "table": table, "dense": dense, "chance": chance(y_test),
              "supermask": supermask, "verdicts": verdicts}
    if verbose:
        _print(report, hidden_units, epochs, n_repeats)
    return report


def _verdicts(table, supermask, chance_accuracy) -> list[dict]:
    """Each published claim, at each sparsity: the numbers and whether it holds here."""
    verdicts = []
    for target in SPARSITIES:
        rewind = mean(table[("rewind", target)], "score")
        sign = mean(table[("sign", target)], "score")
        reinit = mean(table[("reinit", target)], "score")
        verdicts.append({
            "claim": "signs: the sign ticket trains about as well as the rewound one",
            "target": target, "holds": sign >= rewind - TOLERANCE,
            "numbers": f"sign {100 * sign:.2f}% vs rewind {100 * rewind:.2f}%"})
        verdicts.append({
            "claim": "signs: the random reinit does not",
            "target": target, "holds": reinit < rewind - TOLERANCE,
            "numbers": f"reinit {100 * reinit:.2f}% vs rewind {100 * rewind:.2f}%"})
        large_final = mean(table[("large_final", target)], "score")
        for criterion in CRITERIA[1:]:
            score = mean(table[(criterion, target)], "score")
            verdicts.append({
                "claim": f"criteria: {criterion} does as well as large_final or better",
                "target": target, "holds": score >= large_final - TOLERANCE,
                "numbers": f"{criterion} {100 * score:.2f}% vs large_final "
                           f"{100 * large_final:.2f}%"})
        same_sign = mean(table[("large_final_same_sign", target)], "untrained_score")
        untrained = mean(table[("large_final", target)], "untrained_score")
        verdicts.append({
            "claim": "supermask: large_final_same_sign's mask on theta_0 scores above "
                     "large_final's, untrained",
            "target": target, "holds": same_sign > untrained,
            "numbers": f"large_final_same_sign {100 * same_sign:.2f}% vs large_final "
                       f"{100 * untrained:.2f}%"})
    by_level = {}
    for row in supermask:
        by_level.setdefault((row["round"], row["ticket"]), []).append(row)
    (_, kind), best = max(by_level.items(), key=lambda item: mean(item[1], "untrained_score"))
    verdicts.append({
        "claim": f"supermask: IMP's mask on the untrained weights scores far above chance "
                 f"(here: {100 * SUPERMASK_FAR:.0f}% or more; 86% on MNIST)",
        "target": None, "holds": mean(best, "untrained_score") >= SUPERMASK_FAR,
        "numbers": f"best mean {100 * mean(best, 'untrained_score'):.2f}% ({kind}, "
                   f"{100 * mean(best, 'weights_remaining'):.2f}% of the weights) vs chance "
                   f"{100 * chance_accuracy:.2f}%"})
    return verdicts


def _cell(rows, key: str = "score") -> str:
    return f"{100 * mean(rows, key):6.2f} ± {100 * std(rows, key):4.2f}"


def _print(report, hidden_units, epochs, n_repeats) -> None:
    table, dense = report["table"], report["dense"]
    name = "LeNet-" + "-".join(str(units) for units in hidden_units)
    print(f"{name} on digits, {n_repeats} seeds, {epochs} epochs a training (fewer than the "
          "paper's: every training runs them all, no validation split); test accuracy (%), "
          f"mean ± std over the seeds. Chance (the most frequent class): "
          f"{100 * report['chance']:.2f}%.")
    print(f"dense net: trained {_cell(dense)}, untrained {_cell(dense, 'untrained_score')}")
    print("\n1. Signs: IMP's tickets (large_final) trained from")
    print(f"{'sparsity':>8} " + " ".join(f"{kind:>16}" for kind in KINDS))
    for target in SPARSITIES:
        print(f"{100 * target:7.0f}% " + " ".join(f"{_cell(table[(k, target)]):>16}"
                                                  for k in KINDS))
    print("\n2. Mask criteria: each search's ticket, rewound and trained; and its mask on "
          "theta_0, untrained")
    print(f"{'sparsity':>8} " + " ".join(f"{c:>21}" for c in CRITERIA))
    for target in SPARSITIES:
        print(f"{100 * target:7.0f}% " + " ".join(f"{_cell(table[(c, target)]):>21}"
                                                  for c in CRITERIA) + "  trained")
        print(f"{'':8} " + " ".join(
            f"{_cell(table[(c, target)], 'untrained_score'):>21}" for c in CRITERIA)
            + "  untrained")
    print("\n3. Supermasks: IMP's masks (large_final) on the weights each ticket starts from, "
          "untrained, at every round of the search to 95%, against the trained ticket")
    print(f"{'round':>5} {'weights %':>9} {'rewind (theta_0)':>18} {'sign (constant)':>18} "
          f"{'trained rewind':>18}")
    by_round = {}
    for row in report["supermask"]:
        by_round.setdefault((row["round"], row["ticket"]), []).append(row)
    for r in sorted({row["round"] for row in report["supermask"]}):
        rewind, sign = by_round[(r, "rewind")], by_round[(r, "sign")]
        print(f"{r:>5} {100 * mean(rewind, 'weights_remaining'):9.2f} "
              f"{_cell(rewind, 'untrained_score'):>18} {_cell(sign, 'untrained_score'):>18} "
              f"{_cell(rewind):>18}")
    print(f"\nPublished claims (\"about as well\": within {100 * TOLERANCE:.0f} point of the "
          "mean; the seeds' spread is in the tables):")
    for verdict in report["verdicts"]:
        where = "" if verdict["target"] is None else f" at {100 * verdict['target']:.0f}%"
        print(f"  {'holds' if verdict['holds'] else 'DOES NOT HOLD'}{where}: "
              f"{verdict['claim']}: {verdict['numbers']}")


if __name__ == "__main__":
    # These nets are small: one thread per process trains them faster than
    # several threads contending for the cores.
    torch.set_num_threads(1)
    main()
