"""The pruning mathematics, as plain functions on numpy arrays.

Nothing here knows about estimators, skorch or training: a mask is a boolean
array (``True`` = the weight survives), weights are float arrays of the same
shape, and a layer is a key of a dict. Every search strategy (iterative
magnitude pruning, its one-shot special case, the random baselines) is built
from these functions, so they are tested on their own.

Conventions that other implementations got wrong (see the tests):

* counts are exact: a round removes ``ceil(fraction * remaining)`` weights of a
  layer, never fewer than one while the layer is above its floor;
* weights are chosen by rank, lowest magnitude first, ties broken by the lower
  flat index (by layer order, then flat index, under global scope), so the
  result never depends on how many weights share a magnitude;
* no layer is pruned below its floor, whatever the scope;
* a permutation shuffles a layer's mask over its whole flattened matrix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Real

import numpy as np

__all__ = [
    "PRUNE_CRITERIA",
    "MagnitudeRule",
    "allocate_growth",
    "allocate_removals",
    "checked_layer_fractions",
    "cosine_decay",
    "count_to_remove",
    "criterion_scores",
    "cubic_sparsity",
    "drop_and_grow",
    "kaiming_uniform_std",
    "magnitude_prune",
    "n_active",
    "permute_masks",
    "rewound_weights",
    "signed_weights",
    "sparsity",
    "target_active_count",
    "uniform_std",
]

#: What a trained ticket's surviving weights are ranked by, lowest pruned first (Zhou et
#: al., 2019): ``"large_final"`` keeps the largest final magnitudes ``|w_f|`` (Frankle &
#: Carbin's rule), ``"magnitude_increase"`` the largest growth ``|w_f| - |w_i|``,
#: ``"movement"`` the largest change ``|w_f - w_i|``, ``"large_final_same_sign"`` the
#: largest ``|w_f|`` among the weights whose sign at the end is the one they started with
#: (the others go first), ``w_i`` being where the training started (the ticket's rewind
#: point). The estimators' ``prune_criterion`` takes these.
PRUNE_CRITERIA = ("large_final", "magnitude_increase", "movement", "large_final_same_sign")


def checked_layer_fractions(fractions: Mapping[str, float] | None, names: list[str], *,
                            param: str = "layer_fractions") -> dict[str, float]:
    """Per-layer pruning rates checked against the pruned parameters' ``names``.

    Parameters
    ----------
    fractions : dict of str to float or None
        A rate in (0, 1) per pruned parameter named; None: none.
    names : list of str
        The pruned parameters.
    param : str, default="layer_fractions"
        What the caller calls ``fractions``, for the messages
        (the estimators' ``layer_prune_fractions``).

    Returns
    -------
    dict of str to float

    Raises
    ------
    ValueError
        A name is not a pruned parameter, or a rate is not in (0, 1).
    """
    fractions = dict(fractions or {})
    unknown = sorted(set(fractions) - set(names))
    if unknown:
        raise ValueError(f"{param} names {unknown}, which are not pruned parameters; "
                         f"the pruned parameters are {list(names)}.")
    for name, value in fractions.items():
        if not isinstance(value, Real) or not 0 < value < 1:
            raise ValueError(f"{param}[{name!r}] must be a float in (0, 1), got {value!r}.")
    return fractions


def count_to_remove(n_active: int, fraction: float, floor: int) -> int:
    """Weights a layer (or a pool of layers) loses in one round at rate ``fraction``.

    ``ceil(fraction * n_active)``, so a layer keeps shrinking while it is above
    its ``floor`` (``round`` would stall once ``fraction * n_active < 0.5``),
    capped so that at least ``floor`` weights survive. :func:`magnitude_prune`
    counts every layer and every pool with it.

    Examples
    --------
    >>> count_to_remove(10, 0.2, floor=1)
    2
    >>> count_to_remove(2, 0.25, floor=1)  # round(0.5) would be 0
    1
    >>> count_to_remove(2, 0.25, floor=2)
    0
    """
    capacity = max(int(n_active) - int(floor), 0)
    return min(math.ceil(fraction * n_active), capacity)


def target_active_count(n_prunable: int, target_sparsity: float) -> int:
    """Weights left at ``target_sparsity``, to the nearest weight.

    Examples
    --------
    >>> target_active_count(600, 0.9)
    60
    """
    return int(n_prunable) - round(target_sparsity * n_prunable)


def n_active(masks: Mapping[str, np.ndarray]) -> int:
    """Number of surviving weights over all masks."""
    return int(sum(int(np.count_nonzero(m)) for m in masks.values()))


def sparsity(masks: Mapping[str, np.ndarray]) -> float:
    """Share of masked-out weights over all masks (0 = dense)."""
    total = sum(m.size for m in masks.values())
    return 0.0 if total == 0 else 1.0 - n_active(masks) / total


def allocate_removals(needed: int, full_counts: list[int]) -> list[int]:
    """Split ``needed`` removals over groups in proportion to ``full_counts``.

    Used for the last round, which removes exactly what brings the sparsity to
    its target: each group (a layer, or the global pool) gives up a share
    proportional to what it would lose at the full rate. Shares are rounded by
    the largest-remainder method (ties to the earlier group), so they sum to
    ``needed`` and no group gives more than its full count.

    Examples
    --------
    >>> allocate_removals(5, [8, 2])
    [4, 1]
    >>> allocate_removals(3, [1, 1, 1, 1])
    [1, 1, 1, 0]
    """
    total = sum(full_counts)
    if needed >= total:
        return list(full_counts)
    if needed <= 0:
        return [0] * len(full_counts)
    quotas = [needed * count / total for count in full_counts]
    shares = [math.floor(q) for q in quotas]
    leftover = needed - sum(shares)
    by_remainder = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - shares[i]), i))
    for i in by_remainder[:leftover]:
        shares[i] += 1
    return shares


def _smallest(values: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` smallest of ``values``, ties to the lower position.

    In no particular order (sort them where order matters). A partition finds
    the n-th smallest value in linear time; a full sort of every surviving
    weight each round cost as much as a few optimizer steps on a large layer.

    Examples
    --------
    >>> np.sort(_smallest(np.array([0.3, 0.1, 0.2, 0.1, 0.1]), 2))
    array([1, 3])
    """
    if n <= 0:
        return np.arange(0, dtype=np.intp)
    if n >= len(values):
        return np.arange(len(values), dtype=np.intp)
    kth = np.partition(values, n - 1)[n - 1]
    below = np.flatnonzero(values < kth)
    # Of the entries equal to the n-th value, the lowest positions fill up to n.
    at = np.flatnonzero(values == kth)[: n - len(below)]
    return np.concatenate([below, at])


def criterion_scores(criterion: str, final: np.ndarray,
                     initial: np.ndarray | None = None) -> np.ndarray:
    """Each weight's score under ``criterion`` (:data:`PRUNE_CRITERIA`), elementwise.

    ``"large_final"``: ``|final|``; ``"magnitude_increase"``:
    ``|final| - |initial|`` (negative for a weight that shrank);
    ``"movement"``: ``|final - initial|``; ``"large_final_same_sign"``:
    ``|final|`` for a weight that kept its sign, ``-1 / (1 + |final|)`` for
    one that did not. Pruning removes the lowest scores.

    ``"large_final_same_sign"`` is Zhou et al.'s (2019) "large final, same
    sign" mask criterion: the largest final magnitudes among the weights
    whose final sign is the sign they started with. A weight keeps its sign
    when ``sign(final) == sign(initial) != 0``: one that started or ended at
    exactly 0 has no sign to keep (as in their reference code, where
    ``np.sign(0) = 0`` differs from the other's sign, except that there a
    weight at 0 at both ends also counts as same-sign, with score 0). Their
    code scores every other weight 0 and breaks the ties at random; here
    those weights score in ``[-1, 0)``, below every weight that kept its sign
    (``|final| > 0``), and among themselves by ``|final|`` (computed in
    float64: magnitudes closer than about 1e-16 tie), so they are pruned
    first, the smallest first, and the order stays deterministic (ties to
    the lower flat index, as for every criterion). The scores are float64.

    Parameters
    ----------
    criterion : {"large_final", "magnitude_increase", "movement", \
            "large_final_same_sign"}
    final : ndarray
        Trained values.
    initial : ndarray or None, default=None
        The values the training started from, same shape; needed by every
        criterion but ``"large_final"``.

    Returns
    -------
    ndarray of the shape of ``final``

    References
    ----------
    H. Zhou, J. Lan, R. Liu and J. Yosinski, "Deconstructing Lottery Tickets:
    Zeros, Signs, and the Supermask", NeurIPS 2019: ``large_final_same_sign``
    is the criterion of their supermasks; its reference code is
    ``get_weight_init.py`` of github.com/uber-research/deconstructing-lottery-tickets.

    Examples
    --------
    >>> final, initial = np.array([0.5, -0.1, -0.4]), np.array([0.2, -0.3, 0.1])
    >>> [criterion_scores(c, final, initial).round(2).tolist() for c in PRUNE_CRITERIA]
    [[0.5, 0.1, 0.4], [0.3, -0.2, 0.3], [0.3, 0.2, 0.5], [0.5, 0.1, -0.71]]
    """
    if criterion not in PRUNE_CRITERIA:
        raise ValueError(f"criterion must be one of {list(PRUNE_CRITERIA)}, got {criterion!r}.")
    final = np.asarray(final)
    if criterion == "large_final":
        return np.abs(final)
    if initial is None:
        raise ValueError(f"criterion={criterion!r} compares the trained weights with where "
                         "they started: initial weights are needed.")
    initial = np.asarray(initial)
    if criterion == "magnitude_increase":
        return np.abs(final) - np.abs(initial)
    if criterion == "large_final_same_sign":
        magnitude = np.abs(final).astype(np.float64)
        kept_sign = (np.sign(final) == np.sign(initial)) & (final != 0)
        # A weight that kept its sign has |final| > 0; the others map increasingly into
        # [-1, 0), so all of them rank below it, by their own magnitude (a constant score,
        # as in the reference code, would leave their order to the tie-break alone).
        return np.where(kept_sign, magnitude, -1.0 / (1.0 + magnitude))
    return np.abs(final - initial)


def _surviving_scores(
    weights: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray],
    criterion: str = "large_final", initial: Mapping[str, np.ndarray] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per layer: flat indices of the surviving weights and their scores.

    Gathered once per round and shared by the finiteness check and the
    ranking; a boolean-mask gather of the same values costs ten times more.
    The scores are computed on the gathered survivors only.
    """
    flat, scores = {}, {}
    for name, mask in masks.items():
        flat[name] = np.flatnonzero(mask)
        final = np.asarray(weights[name]).ravel()[flat[name]]
        start = None if initial is None else np.asarray(initial[name]).ravel()[flat[name]]
        scores[name] = criterion_scores(criterion, final, start)
        if not np.all(np.isfinite(scores[name])):
            raise ValueError(
                f"Cannot prune {name!r}: training left non-finite weights in it "
                "(NaN or inf). The training diverged; lower the learning rate."
            )
    return flat, scores


def _global_removal(
    flat: Mapping[str, np.ndarray],
    scores: Mapping[str, np.ndarray],
    names: list[str],
    floors: Mapping[str, int],
    n: int,
) -> dict[str, np.ndarray]:
    """The ``n`` lowest-scored weights pooled over ``names``, floors respected.

    ``flat`` and ``scores`` are each layer's surviving flat indices and their
    scores (magnitudes, or another criterion's). Returns the flat indices to
    remove, per layer. Walking the pooled weights from the smallest and
    skipping those of a layer already at its floor is the same as keeping, of
    each layer, only its ``capacity`` smallest candidates and then taking the
    ``n`` smallest that are left.
    """
    # Partitions instead of one sort of the whole pool: linear time. The pool
    # is in layer order, then flat index order, which is how ties are broken.
    flat_of, pooled, layer_of = [], [], []
    for i, name in enumerate(names):
        active, layer_scores = flat[name], scores[name]
        capacity = max(len(active) - floors[name], 0)
        # A floor can bind only if the layer could otherwise lose more than
        # its capacity, i.e. capacity < n.
        if capacity < min(len(active), n):
            # Sorted: the pool's order must stay the flat index order.
            keep = np.sort(_smallest(layer_scores, capacity))
            active, layer_scores = active[keep], layer_scores[keep]
        flat_of.append(active)
        pooled.append(layer_scores)
        layer_of.append(np.full(len(active), i, dtype=np.intp))
    flat_of = np.concatenate(flat_of)
    layer_of = np.concatenate(layer_of)
    chosen = _smallest(np.concatenate(pooled), n)
    return {
        name: flat_of[chosen[layer_of[chosen] == i]] for i, name in enumerate(names)
    }


def magnitude_prune(
    weights: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
    *,
    fraction: float,
    scope: str = "local",
    layer_fractions: Mapping[str, float] | None = None,
    min_weights: int = 1,
    target_n_active: int | None = None,
    criterion: str = "large_final",
    initial: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """One round of magnitude pruning: the new masks (the inputs are not changed).

    The surviving weights are ranked by ``criterion``'s score
    (:func:`criterion_scores`: by default their magnitude) and the lowest
    go; rates, scope, floors and counts do not depend on the criterion.

    Parameters
    ----------
    weights : dict of str to ndarray
        Trained values; only their scores at surviving positions matter.
    masks : dict of str to bool ndarray
        Current masks, same keys and shapes as ``weights``.
    fraction : float
        Share of each layer's surviving weights removed (``"local"``), or of
        the pooled surviving weights (``"global"``).
    scope : {"local", "global"}, default="local"
        One rate per layer, or one magnitude ranking over all pooled layers.
    layer_fractions : dict of str to float, default=None
        Per-layer rates overriding ``fraction``. Under global scope these
        layers are pruned at their own rate and left out of the pool.
    min_weights : int, default=1
        Floor: no layer keeps fewer surviving weights than this (or than its
        size, if smaller).
    target_n_active : int, default=None
        If the full-rate round would leave fewer surviving weights than this,
        remove exactly enough to reach it instead, spread over the layers (and
        the pool) in proportion to what each would lose at the full rate.
    criterion : {"large_final", "magnitude_increase", "movement", \
            "large_final_same_sign"}, default="large_final"
        What the survivors are ranked by (:data:`PRUNE_CRITERIA`).
    initial : dict of str to ndarray, default=None
        Where the training of ``weights`` started, same keys and shapes:
        needed by every criterion but ``"large_final"``.

    Returns
    -------
    dict of str to bool ndarray

    Examples
    --------
    >>> w = {"a": np.array([[0.3, -0.1], [0.2, 0.4]]), "b": np.array([1.0, -2.0])}
    >>> m = {k: np.ones(v.shape, dtype=bool) for k, v in w.items()}
    >>> new = magnitude_prune(w, m, fraction=0.5)
    >>> new["a"].astype(int).tolist(), new["b"].astype(int).tolist()
    ([[1, 0], [0, 1]], [0, 1])

    Ranked by how far each weight moved from where it started instead:

    >>> w0 = {"a": np.array([[0.3, 0.1], [-0.1, 0.4]]), "b": np.array([0.0, -2.0])}
    >>> new = magnitude_prune(w, m, fraction=0.5, criterion="movement", initial=w0)
    >>> new["a"].astype(int).tolist(), new["b"].astype(int).tolist()
    ([[0, 1], [1, 0]], [1, 0])
    """
    if scope not in ("local", "global"):
        raise ValueError(f"scope must be 'local' or 'global', got {scope!r}.")
    if set(weights) != set(masks):
        raise ValueError("weights and masks must have the same keys.")
    if criterion not in PRUNE_CRITERIA:
        raise ValueError(f"criterion must be one of {list(PRUNE_CRITERIA)}, got {criterion!r}.")
    if criterion != "large_final" and (initial is None or not set(masks) <= set(initial)):
        raise ValueError(f"criterion={criterion!r} compares the trained weights with where "
                         "they started: initial must hold every masked parameter.")
    layer_fractions = checked_layer_fractions(layer_fractions, list(masks))
    flat, scores = _surviving_scores(weights, masks, criterion, initial)

    names = list(masks)
    active = {name: len(flat[name]) for name in names}
    floors = {name: min(int(min_weights), masks[name].size) for name in names}

    # Groups prune independently: each named layer alone, and (global scope)
    # one pool of all the other layers.
    if scope == "local":
        groups = [[name] for name in names]
    else:
        groups = [[name] for name in names if name in layer_fractions]
        pool = [name for name in names if name not in layer_fractions]
        if pool:
            groups.append(pool)

    full_counts = []
    for group in groups:
        # Only a layer named in layer_fractions forms a group of its own under
        # global scope, so the group's first name decides its rate.
        rate = layer_fractions.get(group[0], fraction)
        pooled = sum(active[name] for name in group)
        # What the floors keep of the group: a layer already at or below its
        # floor keeps all it has, and lends no capacity to the others.
        kept = sum(min(active[name], floors[name]) for name in group)
        full_counts.append(count_to_remove(pooled, rate, floor=kept))

    counts = full_counts
    if target_n_active is not None:
        needed = max(sum(active.values()) - int(target_n_active), 0)
        counts = allocate_removals(needed, full_counts)

    new_masks = {name: masks[name].copy() for name in names}
    for group, count in zip(groups, counts, strict=True):
        if count == 0:
            continue
        if len(group) == 1:
            # Which weights, not their order, matters here: no sort.
            removed = {group[0]: flat[group[0]][_smallest(scores[group[0]], count)]}
        else:
            removed = _global_removal(flat, scores, group, floors, count)
        for name, indices in removed.items():
            new_masks[name].ravel()[indices] = False
    return new_masks


def prune_to_target(
    weights: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
    *,
    fraction: float,
    target_n_active: int,
    scope: str = "local",
    layer_fractions: Mapping[str, float] | None = None,
    min_weights: int = 1,
    criterion: str = "large_final",
    initial: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The masks IMP would reach at ``target_n_active`` if ``weights`` never changed.

    Rounds of :func:`magnitude_prune` on the same values, until the target or
    every floor is reached: the per-layer sparsities are those of an IMP
    search with these rates, scope and floors, the weights chosen in one step
    by rank. With magnitudes (early-bird) it draws the mask a search would
    converge to; with any non-negative scores (SNIP's ``|w * dL/dw|``) it
    ranks by those instead. ``criterion`` and ``initial`` rank as in
    :func:`magnitude_prune`.

    Examples
    --------
    >>> import numpy as np
    >>> w = {"a": np.arange(1.0, 11.0), "b": np.arange(1.0, 5.0)}
    >>> ones = {name: np.ones(v.shape, dtype=bool) for name, v in w.items()}
    >>> masks = prune_to_target(w, ones, fraction=0.5, target_n_active=4)
    >>> {name: np.flatnonzero(m).tolist() for name, m in masks.items()}
    {'a': [7, 8, 9], 'b': [3]}
    """
    masks = dict(masks)
    while n_active(masks) > target_n_active:
        pruned = magnitude_prune(weights, masks, fraction=fraction, scope=scope,
                                 layer_fractions=layer_fractions, min_weights=min_weights,
                                 target_n_active=target_n_active, criterion=criterion,
                                 initial=initial)
        if n_active(pruned) == n_active(masks):
            break  # every layer at its floor
        masks = pruned
    return masks


def mask_distance(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> float:
    """Share of ``a``'s surviving weights that ``b`` does not keep.

    For two masks with the same number of survivors (two draws at the same
    sparsity) it is symmetric: the share of the ticket that changed. 0 for
    equal masks, 1 for disjoint ones.

    Examples
    --------
    >>> import numpy as np
    >>> a = {"w": np.array([True, True, False, False])}
    >>> b = {"w": np.array([True, False, True, False])}
    >>> mask_distance(a, b)
    0.5
    """
    kept = n_active(a)
    if kept == 0:
        return 0.0
    lost = sum(int(np.count_nonzero(mask & ~b[name])) for name, mask in a.items())
    return lost / kept


def permute_masks(
    masks: Mapping[str, np.ndarray], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Each layer's mask shuffled over its whole flattened matrix.

    The random-structure baseline: the same number of survivors per layer, at
    random positions. Shuffling the flattened matrix (not its rows, which is
    what ``rng.permutation`` does to a 2-D array) moves every entry, also in an
    output layer with a single row.

    Examples
    --------
    >>> m = {"out": np.array([[True, True, False, False, False, False]])}
    >>> p = permute_masks(m, np.random.default_rng(1))
    >>> int(p["out"].sum()), p["out"].shape
    (2, (1, 6))
    """
    return {
        name: rng.permutation(mask.ravel()).reshape(mask.shape) for name, mask in masks.items()
    }


def rewound_weights(
    snapshot: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The state a ticket trains from: ``snapshot`` with pruned entries set to 0.

    Entries of ``snapshot`` without a mask (biases, norm layers, buffers) are
    rewound unchanged. Always copies, so training can never write through to
    the stored snapshot.

    Examples
    --------
    >>> state = rewound_weights({"w": np.array([0.5, -0.2]), "b": np.array([0.1])},
    ...                         {"w": np.array([False, True])})
    >>> state["w"].tolist(), state["b"].tolist()
    ([0.0, -0.2], [0.1])
    """
    return {
        name: np.where(masks[name], value, 0).astype(value.dtype) if name in masks
        else value.copy()
        for name, value in snapshot.items()
    }


def uniform_std(bound: float) -> float:
    """Standard deviation of the uniform distribution on ``[-bound, bound]``: ``bound / sqrt(3)``.

    Examples
    --------
    >>> round(uniform_std(math.sqrt(3)), 12)
    1.0
    """
    return float(bound) / math.sqrt(3.0)


def kaiming_uniform_std(shape: tuple[int, ...], a: float = math.sqrt(5.0)) -> float:
    """Standard deviation of torch's ``kaiming_uniform_(weight, a)`` for a weight of ``shape``.

    torch draws from U(-b, b) with ``b = gain * sqrt(3 / fan_in)``, ``gain =
    sqrt(2 / (1 + a^2))`` and ``fan_in = shape[1] * prod(shape[2:])`` (inputs
    times the kernel's size). ``a = sqrt(5)`` is what ``nn.Linear`` and the
    convolutions draw their weights with by default: ``b = 1 / sqrt(fan_in)``,
    so the standard deviation is ``b / sqrt(3) = 1 / sqrt(3 fan_in)``.

    Examples
    --------
    >>> round(kaiming_uniform_std((100, 64)), 6)  # nn.Linear(64, 100): 1 / sqrt(192)
    0.072169
    """
    if len(shape) < 2:
        raise ValueError(f"kaiming_uniform_std needs a weight of at least 2 dimensions, got "
                         f"shape {tuple(shape)}.")
    fan_in = int(shape[1]) * math.prod(int(n) for n in shape[2:])
    gain = math.sqrt(2.0 / (1.0 + a * a))
    return uniform_std(gain * math.sqrt(3.0 / fan_in))


def signed_weights(start: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray],
                   scales: Mapping[str, float]) -> dict[str, np.ndarray]:
    """The sign ticket's start (Zhou et al., 2019): each survivor at the sign of its start
    value times its layer's constant, pruned entries at 0.

    Survivors become ``sign(start) * scales[name]``; a survivor whose start
    value is exactly 0 has no sign to keep and stays 0. Entries without a
    mask (biases, norm layers, buffers) are copied unchanged. The dtypes are
    those of ``start``.

    Parameters
    ----------
    start : dict of str to ndarray
        The values the ticket would rewind to.
    masks : dict of str to bool ndarray
        The ticket's masks.
    scales : dict of str to float
        Per masked parameter, the magnitude every survivor gets.

    Returns
    -------
    dict of str to ndarray

    Examples
    --------
    >>> start = {"w": np.array([0.5, -0.2, 0.3, 0.0]), "b": np.array([0.1])}
    >>> masks = {"w": np.array([True, True, False, True])}
    >>> signed = signed_weights(start, masks, {"w": 0.25})
    >>> signed["w"].tolist(), signed["b"].tolist()
    ([0.25, -0.25, 0.0, 0.0], [0.1])
    """
    return {
        name: np.where(masks[name], np.sign(value) * scales[name], 0).astype(value.dtype)
        if name in masks else value.copy()
        for name, value in start.items()
    }


# --- sparse training: masks that move during one training --------------------


def cubic_sparsity(progress: float, final: float, initial: float = 0.0) -> float:
    """Gradual pruning's sparsity at ``progress`` (0 to 1) through its schedule.

    Zhu & Gupta (2017): ``final + (initial - final) * (1 - progress) ** 3``,
    so pruning is fast while there are many redundant weights and slows as
    the target nears; ``progress`` outside [0, 1] is clipped.

    Examples
    --------
    >>> cubic_sparsity(0.0, 0.9), cubic_sparsity(0.5, 0.9), cubic_sparsity(1.0, 0.9)
    (0.0, 0.7875, 0.9)
    """
    progress = min(max(float(progress), 0.0), 1.0)
    return final + (initial - final) * (1.0 - progress) ** 3


def cosine_decay(initial: float, progress: float) -> float:
    """``initial`` decayed on a half cosine to 0 at ``progress`` 1 (clipped to [0, 1]).

    The drop fraction of RigL and of sparse momentum at a point of training.

    Examples
    --------
    >>> cosine_decay(0.3, 0.0), cosine_decay(0.3, 0.5), cosine_decay(0.3, 1.0)
    (0.3, 0.15, 0.0)
    """
    progress = min(max(float(progress), 0.0), 1.0)
    return round(initial * 0.5 * (1.0 + math.cos(math.pi * progress)), 15)


def _largest(values: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` largest of ``values``, ties to the lower position."""
    return _smallest(-values, n)


def drop_and_grow(
    weights: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
    grow_scores: Mapping[str, np.ndarray],
    drop: Mapping[str, int],
    grow: Mapping[str, int] | None = None,
) -> dict[str, np.ndarray]:
    """One update of a sparse training's masks: drop by magnitude, grow by score.

    Of each layer, the ``drop[name]`` surviving weights of lowest magnitude
    are dropped; then ``grow[name]`` (default: as many as dropped) positions
    are grown where ``grow_scores`` is largest among those not active after
    the drop (a weight just dropped may be grown again, as in RigL's
    reference, and then simply stays). Ties go to the lower flat index. The
    counts are exact: every grown position is one that was inactive, so a
    layer ends with exactly ``active - drop + grow`` weights (the density
    drift of implementations that grow without that check cannot happen). The
    inputs are not changed.

    Raises
    ------
    ValueError
        A count is negative, drops more than the layer has, or grows more than
        it has room for.

    Examples
    --------
    >>> w = {"a": np.array([0.5, -0.1, 0.0, 0.0, 0.3])}
    >>> m = {"a": np.array([True, True, False, False, True])}
    >>> g = {"a": np.array([0.0, 0.0, 2.0, 1.0, 0.0])}
    >>> drop_and_grow(w, m, g, {"a": 1})["a"].astype(int).tolist()
    [1, 0, 1, 0, 1]
    """
    grow = dict(drop) if grow is None else dict(grow)
    new_masks = {}
    for name, mask in masks.items():
        n_drop, n_grow = int(drop.get(name, 0)), int(grow.get(name, 0))
        flat = np.flatnonzero(mask)
        if n_drop < 0 or n_grow < 0 or n_drop > len(flat):
            raise ValueError(f"Cannot drop {n_drop} and grow {n_grow} of {name!r}, which has "
                             f"{len(flat)} active weights.")
        new = mask.copy()
        magnitudes = np.abs(np.asarray(weights[name]).ravel()[flat])
        new.ravel()[flat[_smallest(magnitudes, n_drop)]] = False
        candidates = np.flatnonzero(~new)
        if n_grow > len(candidates):
            raise ValueError(f"Cannot grow {n_grow} weights in {name!r}: only "
                             f"{len(candidates)} positions are inactive.")
        scores = np.asarray(grow_scores[name], dtype=np.float64).ravel()[candidates]
        new.ravel()[candidates[_largest(scores, n_grow)]] = True
        new_masks[name] = new
    return new_masks


def allocate_growth(total: int, scores: Mapping[str, float],
                    capacities: Mapping[str, int]) -> dict[str, int]:
    """Split ``total`` new weights over layers in proportion to ``scores``, within capacity.

    Sparse momentum's redistribution (Dettmers & Zettlemoyer, 2019): each
    layer's share follows its score (the mean momentum magnitude of its
    active weights); a layer never gets more than its ``capacities`` (its
    inactive positions), and what it cannot take goes to the others, again
    in proportion, so that the shares sum to ``total`` exactly whenever the
    capacities allow. Shares are rounded by the largest remainder (ties to
    the earlier layer). Layers of score 0 get something only when the others
    are full.

    Examples
    --------
    >>> allocate_growth(10, {"a": 3.0, "b": 1.0}, {"a": 100, "b": 100})
    {'a': 8, 'b': 2}
    >>> allocate_growth(10, {"a": 3.0, "b": 1.0}, {"a": 4, "b": 100})
    {'a': 4, 'b': 6}
    """
    shares = {name: 0 for name in scores}
    open_layers = [name for name in scores if capacities[name] > 0]
    left = min(int(total), sum(int(capacities[name]) for name in open_layers))
    while left > 0:
        weights = {name: max(float(scores[name]), 0.0) for name in open_layers}
        if sum(weights.values()) == 0:
            weights = dict.fromkeys(open_layers, 1.0)
        norm = sum(weights.values())
        quotas = {name: left * weights[name] / norm for name in open_layers}
        full = [name for name in open_layers if quotas[name] >= capacities[name]]
        if full:
            # Those layers fill up; the rest is split again over the others.
            for name in full:
                shares[name] = int(capacities[name])
                left -= shares[name]
            open_layers = [name for name in open_layers if name not in full]
            continue
        # No quota reaches its capacity, so rounding one up still fits.
        floors = {name: math.floor(quotas[name]) for name in open_layers}
        leftover = left - sum(floors.values())
        by_remainder = sorted(open_layers, key=lambda name: (-(quotas[name] - floors[name]),
                                                              open_layers.index(name)))
        for name in open_layers:
            shares[name] = floors[name]
        for name in by_remainder[:leftover]:
            shares[name] += 1
        left = 0
    return shares


@dataclass(frozen=True)
class MagnitudeRule:
    """How magnitude pruning splits its removals: the rate, the scope, per-layer rates and
    the floor, and what the survivors are ranked by. The one place these travel together,
    for every caller of :func:`magnitude_prune` and :func:`prune_to_target` (IMP's rounds,
    early-bird's masks, SNIP, a random start, gradual pruning). A ``criterion`` other than
    ``"large_final"`` needs ``initial`` weights at every call; callers that rank scores of
    their own (SNIP's, random ones) use ``"large_final"``, which ranks ``|value|``.

    Examples
    --------
    >>> w = {"a": np.arange(1.0, 11.0)}
    >>> rule = MagnitudeRule(fraction=0.5)
    >>> int(rule.prune(w, {"a": np.ones(10, dtype=bool)})["a"].sum())
    5
    >>> int(rule.prune_to(w, {"a": np.ones(10, dtype=bool)}, 2)["a"].sum())
    2
    """

    fraction: float
    scope: str = "local"
    layer_fractions: Mapping[str, float] = field(default_factory=dict)
    min_weights: int = 1
    criterion: str = "large_final"

    def __hash__(self) -> int:
        # By value, the per-layer rates included (a dict has no hash of its own): a
        # rule is part of training hooks, which are hashable values.
        return hash((self.fraction, self.scope, frozenset(self.layer_fractions.items()),
                     self.min_weights, self.criterion))

    def prune(self, weights: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray],
              target_n_active: int | None = None,
              initial: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """One round of :func:`magnitude_prune` under this rule (``initial``: where the
        training of ``weights`` started)."""
        return magnitude_prune(weights, masks, fraction=self.fraction, scope=self.scope,
                               layer_fractions=self.layer_fractions,
                               min_weights=self.min_weights, target_n_active=target_n_active,
                               criterion=self.criterion, initial=initial)

    def prune_to(self, weights: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray],
                 target_n_active: int,
                 initial: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """:func:`prune_to_target` under this rule."""
        return prune_to_target(weights, masks, fraction=self.fraction,
                               target_n_active=target_n_active, scope=self.scope,
                               layer_fractions=self.layer_fractions,
                               min_weights=self.min_weights, criterion=self.criterion,
                               initial=initial)
