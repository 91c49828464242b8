"""The supermask search: a mask learned over the frozen random weights theta_0 (edge-popup)."""

from __future__ import annotations

from collections.abc import Iterator
from numbers import Real
from typing import ClassVar

import numpy as np

from ._compat import Interval
from ._edge_popup import EdgePopup
from ._pruning import rewound_weights
from ._rng import round_seed
from ._search import Search, SearchRun, random_masks
from ._session import Round

__all__ = ["Supermask"]


class Supermask(Search):
    """Edge-popup (Ramanujan et al., CVPR 2020): learn a mask, never the weights.

    The net's weights stay at theta_0, the values drawn by its initializer,
    signs as drawn; what is learned is one score per pruned weight. Each
    layer keeps the weights of its largest ``|score|`` (a top-k per layer,
    as the paper does), and the scores are trained by gradient through that
    top-k as if it were the identity (straight-through): a score's gradient
    is its masked weight's gradient times the weight's value at theta_0.
    The scores start uniform on ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``, the
    reference's ``kaiming_uniform_(a=sqrt(5))``.

    The per-layer counts are those the estimator's pruning rule reaches at
    ``target_sparsity`` (its ``scope``, ``layer_prune_fractions``,
    ``prune_fraction`` and ``min_weights_per_layer``, as the random start of
    :class:`SparseMomentum` and :class:`RigL` gets them), fixed for the whole
    training; the paper's setting, every layer at the same density, is the
    default (``scope="local"``, no ``layer_prune_fractions``), to within a
    weight per layer. Under ``scope="global"``
    the counts are those of a global ranking of random scores: close to one
    density for every layer.

    Every parameter stays exactly at theta_0: the pruned weights (the kept
    ones at their values, the others at zero), and the biases and any other
    parameter too; the paper's nets have no biases, and a learned bias would
    make the net more than a mask over random weights. Buffers (a batch
    norm's running statistics) update as the forward passes go. The net's own
    training loop runs (one training, round 1): its forward and backward
    passes give the weights' gradients, the scores take the step, and the
    net's optimizer takes none.

    The scores are trained by an optimizer of the net's class and settings
    (``optimizer``, ``optimizer__*``: momentum, weight decay), at learning
    rate ``lr``, cosine-annealed to 0 over the training's planned steps
    (``max_epochs`` times the batches of an epoch), as in the paper; a
    learning-rate callback of the net does not reach them. The learning rate
    matters more than for the weights. The paper trains its scores with SGD
    at 0.1 (momentum 0.9, weight decay 5e-4): with SGD a score's step scales
    with its gradient, the weight's gradient times a value of order
    ``1/sqrt(fan_in)``, small. The default, the net's own learning rate, is
    meant for the Adam nets this package trains (the default nets,
    LeNet-300-100 at 1.2e-3): Adam steps each score by about ``lr`` whatever
    its gradient's scale, and the scores start within ``1/sqrt(fan_in)``
    (0.125 for 64 inputs), so a few hundred steps at 1e-3 can reorder them
    all; on digits (``examples/supermasks_and_targeted_dropout.py``) the
    net's 1.2e-3 and 1e-2 gave accuracies within 1.6 points of each other.
    What matters more there is theta_0's scale: over Kaiming-normal weights
    (the paper's) the learned mask scores about 96%, over torch's default
    initialisation of a linear layer, 2.4 times smaller, about 74%.

    A net that keeps the weights of its best epoch (the default nets with
    held-out rows, skorch's ``EarlyStopping(load_best=True)``) keeps that
    epoch's mask. The fitted estimator's ``net_`` predicts with the
    untrained weights under the learned mask; ``winning_ticket_`` is that
    mask on theta_0, so ``fit(ticket=...)`` trains it (and
    ``ticket_init="reinit"``/``"permute"`` train its baselines; in
    :func:`~skticket.ticket_curve` the round's own point is this untrained
    net, and its baselines train their weights). The round's record adds
    ``mask_changes``: per epoch, the share of the kept weights that the
    epoch's steps changed. Needs the estimator's ``target_sparsity``, and
    ``rewind_step=0``. ``search="supermask"`` means ``Supermask()``.

    Parameters
    ----------
    lr : float or None, default=None
        The scores' learning rate; None: the net's ``lr``.

    See Also
    --------
    SNIP : Also chooses the mask at theta_0, in one step, and then trains the weights.
    RigL, SparseMomentum : Move the mask while the weights train.

    References
    ----------
    .. [1] V. Ramanujan, M. Wortsman, A. Kembhavi, A. Farhadi and M. Rastegari,
       "What's hidden in a randomly weighted neural network?", CVPR 2020.
    .. [2] H. Zhou, J. Lan, R. Liu and J. Yosinski, "Deconstructing lottery
       tickets: zeros, signs, and the supermask", NeurIPS 2019.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skticket import LotteryTicketClassifier, Supermask
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = LotteryTicketClassifier(search=Supermask(), target_sparsity=0.5,
    ...                               random_state=0).set_params(net__max_epochs=5)
    >>> record = clf.fit(X, y).rounds_[0]
    >>> record["round"], round(clf.winning_ticket_.sparsity, 2), len(record["mask_changes"])
    (1, 0.5, 5)
    """

    _parameter_constraints: ClassVar[dict] = {
        "lr": [None, Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, *, lr: float | None = None) -> None:
        self.lr = lr

    def planned_rounds(self, run: SearchRun) -> int:
        """1: the one training of the scores."""
        return 1

    def rounds(self, run: SearchRun) -> Iterator[Round]:
        """The one training, the weights frozen, the mask learned."""
        if run.rule.rewind_step > 0:
            raise ValueError("search='supermask' never trains the weights, so there is no "
                             "training step to rewind to: rewind_step must be 0.")
        run.rule.refuse_criterion("supermask")
        counts = tuple((name, int(np.count_nonzero(mask)))
                       for name, mask in random_masks(run).items())
        hook = EdgePopup(counts=counts, lr=self.lr,
                         seed=round_seed(run.session.seeds["mask"], 1))
        trained = run.train(run.masks, index=1, hooks=(hook,))
        (trained.record["mask_changes"],) = trained.record["hook_summaries"]
        # The ticket: the learned mask on theta_0, which is what the net predicts with.
        trained.start = rewound_weights(run.progress.rewind_point, trained.masks)
        run.accept(trained)
        yield trained
