"""The winning ticket as plain data: masks and the weights it trains from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._pruning import n_active as _n_active

# A layer with at most this many survivors is printed weight by weight.
_LIST_AT_MOST = 10


@dataclass(eq=False)
class Ticket:
    """A sparse subnetwork: which weights survive and the values it trains from.

    Plain data (numpy arrays, no torch hooks), so it pickles, compares and
    travels without the network it came from.

    Attributes
    ----------
    masks : dict of str to bool ndarray
        Per pruned parameter (by its name in the module), ``True`` where the
        weight survives.
    weights : dict of str to ndarray
        The values the ticket trains from (the rewound weights, or fresh ones
        for the ``"reinit"`` and ``"permute"`` baselines), zero where pruned.
    round : int
        The pruning round that produced the mask (0 = dense).
    init : str, default="rewind"
        What the weights are: ``"rewind"``, ``"reinit"`` or ``"permute"``.

    Examples
    --------
    >>> import numpy as np
    >>> from skticket import Ticket
    >>> t = Ticket(masks={"w": np.array([[True, False], [False, False]])},
    ...            weights={"w": np.array([[0.5, 0.0], [0.0, 0.0]])}, round=3)
    >>> t.n_active, t.n_prunable, t.sparsity
    (1, 4, 0.75)
    >>> print(t)
    Ticket from round 3 (rewind): 1 of 4 weights active (sparsity 75.00%)
      w (2, 2): 1 of 4 active
        [0,0]: 0.5
    """

    masks: dict[str, np.ndarray]
    weights: dict[str, np.ndarray]
    round: int
    init: str = "rewind"

    def __post_init__(self) -> None:
        if set(self.masks) != set(self.weights):
            raise ValueError("Ticket masks and weights must name the same parameters.")
        for name, mask in self.masks.items():
            if mask.shape != self.weights[name].shape:
                raise ValueError(
                    f"Ticket mask and weights of {name!r} differ in shape: "
                    f"{mask.shape} vs {self.weights[name].shape}."
                )

    @property
    def n_active(self) -> int:
        """Number of surviving (unmasked) weights."""
        return _n_active(self.masks)

    @property
    def n_prunable(self) -> int:
        """Number of weights the masks cover."""
        return int(sum(m.size for m in self.masks.values()))

    @property
    def sparsity(self) -> float:
        """Share of the prunable weights that are masked out."""
        return 0.0 if self.n_prunable == 0 else 1.0 - self.n_active / self.n_prunable

    def layer_sparsity(self) -> dict[str, float]:
        """Sparsity of each pruned parameter, by name."""
        return {name: 1.0 - np.count_nonzero(m) / m.size for name, m in self.masks.items()}

    def __repr__(self) -> str:
        return (
            f"Ticket(round={self.round}, init={self.init!r}, n_active={self.n_active}, "
            f"n_prunable={self.n_prunable}, sparsity={self.sparsity:.4f})"
        )

    def __str__(self) -> str:
        lines = [
            f"Ticket from round {self.round} ({self.init}): {self.n_active} of "
            f"{self.n_prunable} weights active (sparsity {100 * self.sparsity:.2f}%)"
        ]
        for name, mask in self.masks.items():
            kept = int(np.count_nonzero(mask))
            lines.append(f"  {name} {tuple(mask.shape)}: {kept} of {mask.size} active")
            if kept <= _LIST_AT_MOST:
                for index in zip(*np.nonzero(mask), strict=True):
                    where = ",".join(str(int(i)) for i in index)
                    lines.append(f"    [{where}]: {float(self.weights[name][index]):.6g}")
        return "\n".join(lines)
