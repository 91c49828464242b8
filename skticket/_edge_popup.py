"""Edge-popup (Ramanujan et al., CVPR 2020): a mask learned over frozen random weights.

One score per pruned weight; each layer keeps the weights of its largest
``|score|`` (a top-k at a fixed count per layer), and the scores are trained by
gradient through that top-k as if it were the identity (straight-through):
the gradient of a score is the gradient of its masked weight times the
weight's frozen value. The weights themselves never change.

This is the training hook :class:`EdgePopup` and its callback
:class:`LearnSupermask`, which run inside the one training loop
(:func:`~skticket._training.run_training`): the net trains as usual, its
masks callback holds the current top-k masks, and the callback turns each
step's weight gradients into score gradients, steps the scores, and puts every
parameter back at its frozen value with the new masks. The search that trains
with it is :class:`skticket.Supermask`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from skorch.callbacks import Callback

from ._hooks import TrainingHook
from ._pruning import mask_distance
from ._training import MASK_CALLBACK

__all__ = ["EdgePopup", "LearnSupermask", "initial_scores", "top_k_masks"]


def initial_scores(weight: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The reference's score initialisation for a weight: uniform on ``[-b, b]``,
    ``b = 1 / sqrt(fan_in)``.

    What ``torch.nn.init.kaiming_uniform_(scores, a=sqrt(5))`` draws, as the
    reference initialises its scores (the gain ``sqrt(2 / (1 + a^2))`` times
    ``sqrt(3 / fan_in)``), computed here for any shape: ``fan_in`` is the
    product of the dimensions after the first (a linear layer's inputs, a
    convolution's input channels times its kernel), or the length of a 1-D
    weight. Drawn in float32 on the CPU from ``generator``, then moved to the
    weight's device and dtype.

    Examples
    --------
    >>> import torch
    >>> scores = initial_scores(torch.zeros(3, 16), torch.Generator().manual_seed(0))
    >>> tuple(scores.shape), bool(scores.abs().max() <= 0.25)
    ((3, 16), True)
    """
    fan_in = math.prod(weight.shape[1:]) if weight.dim() > 1 else weight.numel()
    bound = 1.0 / math.sqrt(max(fan_in, 1))
    uniform = torch.rand(tuple(weight.shape), generator=generator, dtype=torch.float32)
    return ((uniform * 2 - 1) * bound).to(device=weight.device, dtype=weight.dtype)


def top_k_masks(scores: dict[str, torch.Tensor], counts: dict[str, int]) -> dict[str, np.ndarray]:
    """Per layer, the mask that keeps the ``counts[name]`` weights of largest ``|score|``.

    Edge-popup ranks by the scores' absolute values (the reference's
    ``clamped_scores``); a tie at the boundary (which continuous scores
    almost never have) goes to the lower flat position.

    Examples
    --------
    >>> import torch
    >>> masks = top_k_masks({"w": torch.tensor([[0.1, -0.4], [0.3, -0.2]])}, {"w": 2})
    >>> masks["w"].tolist()
    [[False, True], [True, False]]
    """
    masks = {}
    for name, score in scores.items():
        magnitude = score.detach().abs().flatten().cpu()
        # A stable descending sort: equal scores keep their flat order.
        kept = torch.argsort(magnitude, descending=True, stable=True)[:counts[name]]
        mask = np.zeros(magnitude.numel(), dtype=bool)
        mask[kept.numpy()] = True
        masks[name] = mask.reshape(tuple(score.shape))
    return masks


@dataclass(frozen=True)
class EdgePopup(TrainingHook):
    """Learn a supermask by edge-popup while the training's weights stay frozen.

    The callback (:class:`LearnSupermask`) draws one score per weight of
    each layer in ``counts`` (:func:`initial_scores`, from a generator seeded
    with ``seed``), holds the top-``count`` masks of each layer
    (:func:`top_k_masks`) in the training's masks callback, and trains the
    scores with an optimizer of the net's own class and settings
    (``optimizer__*``), at learning rate ``lr`` (None: the net's ``lr``),
    cosine-annealed to 0 over the training's planned steps (``max_epochs``
    times the batches of an epoch). The net's optimizer takes no step: every
    parameter (pruned weights, biases, any other) is put back at the value it
    had when the training began after every step, and the pruned ones
    multiplied by the new masks. The round's masks are those the training
    ended with (those of the epoch whose weights a callback such as skorch's
    ``EarlyStopping(load_best=True)`` loaded at its end); the summary is the
    list, per epoch, of the share of the kept weights that the epoch changed
    (:func:`~skticket._pruning.mask_distance` to the masks at the end of the
    epoch before, or the initial top-k for the first).

    Attributes
    ----------
    counts : tuple of (str, int)
        Per pruned parameter, how many weights its mask keeps.
    lr : float or None
        The scores' learning rate; None: the net's.
    seed : int
        Seeds the scores' initial values.
    """

    counts: tuple[tuple[str, int], ...]
    lr: float | None
    seed: int

    def callback(self) -> LearnSupermask:
        return LearnSupermask(self)

    def summary(self, callback: LearnSupermask) -> list[float]:
        return list(callback.mask_changes_)


class LearnSupermask(Callback):
    """Train edge-popup's scores inside a training; the weights stay where they began.

    Each step: the forward and backward passes are the net's own, on the
    frozen weights times the current masks; in ``on_grad_computed`` the
    gradient of each score is taken as the gradient of its weight times the
    weight's frozen value (times the score's sign: the top-k ranks
    ``|score|``), and every parameter's gradient is cleared so that the net's
    optimizer changes nothing; in ``on_batch_end`` the scores take their
    step, each layer's top-k is drawn again, every parameter is restored to
    its frozen value (so nothing drifts, whatever the optimizer) and the
    masks callback is made to hold the new masks.

    Parameters
    ----------
    rule : EdgePopup

    Attributes
    ----------
    masks_ : dict of str to bool ndarray
        The current masks (after training: the learned supermask).
    scores_ : dict of str to Tensor
        The scores.
    mask_changes_ : list of float
        Per epoch, the share of the kept weights the epoch's steps changed.
    """

    def __init__(self, rule: EdgePopup) -> None:
        self.rule = rule

    def on_train_begin(self, net, X=None, y=None, **kwargs) -> None:
        held = dict(net.callbacks_).get(MASK_CALLBACK)
        if held is None:
            raise ValueError("Edge-popup holds its masks in the training's masks callback, "
                             "and the training has none: give it masks (all True).")
        counts = dict(self.rule.counts)
        params = dict(net.module_.named_parameters())
        unknown = [name for name in counts if name not in params]
        if unknown:
            raise ValueError(f"Edge-popup scores {unknown}, which are not parameters of the "
                             f"net's module; its parameters are {list(params)}.")
        frozen = [name for name in counts if not params[name].requires_grad]
        if frozen:
            raise ValueError(
                f"Edge-popup learns its scores from the gradient of each pruned weight, and "
                f"{frozen} do not require a gradient (requires_grad=False): prune parameters "
                "that take part in the gradient.")
        self.held_ = held
        self.params_ = params
        # The values every parameter keeps: those the training starts from (theta_0).
        self.frozen_ = {name: param.detach().clone() for name, param in params.items()}
        generator = torch.Generator().manual_seed(self.rule.seed)
        self.scores_ = {name: initial_scores(params[name], generator).requires_grad_()
                        for name in counts}
        self.counts_ = counts
        settings = {name: value for name, value in net.get_params_for("optimizer").items()
                    if name != "param_groups"}
        # As skorch builds the net's optimizer: optimizer__lr, else the net's lr.
        lr = settings.get("lr", net.lr) if self.rule.lr is None else self.rule.lr
        self.optimizer_ = net.optimizer(list(self.scores_.values()), **{**settings, "lr": lr})
        self.schedule_ = None
        self.mask_changes_: list[float] = []
        self.masks_ = top_k_masks(self.scores_, counts)
        self.epoch_masks_ = self.masks_
        self.masks_by_epoch_: list[dict[str, np.ndarray]] = []
        self._hold(net)

    def on_epoch_begin(self, net, dataset_train=None, **kwargs) -> None:
        if self.schedule_ is None:
            steps = max(len(net.get_iterator(dataset_train, training=True)), 1) * net.max_epochs
            self.schedule_ = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer_,
                                                                        T_max=steps)

    def on_grad_computed(self, net, named_parameters, X=None, y=None, training=None,
                         **kwargs) -> None:
        if not training:
            return
        for name, score in self.scores_.items():
            grad = self.params_[name].grad
            # Straight-through: d loss / d mask = d loss / d (weight * mask) * weight,
            # passed to |score| unchanged, and through the absolute value to the score.
            score.grad = (torch.zeros_like(score) if grad is None
                          else grad.detach() * self.frozen_[name] * torch.sign(score.detach()))
        for param in self.params_.values():
            param.grad = None  # the net's optimizer steps nothing

    def on_batch_end(self, net, batch=None, training=None, **kwargs) -> None:
        if not training:
            return
        self.optimizer_.step()
        self.optimizer_.zero_grad()
        if self.schedule_ is not None:
            self.schedule_.step()
        self.masks_ = top_k_masks(self.scores_, self.counts_)
        self._hold(net)

    def on_epoch_end(self, net, **kwargs) -> None:
        self.mask_changes_.append(mask_distance(self.masks_, self.epoch_masks_))
        self.epoch_masks_ = self.masks_
        self.masks_by_epoch_.append(self.masks_)

    @torch.no_grad()
    def on_train_end(self, net, X=None, y=None, **kwargs) -> None:
        # A callback before this one may have loaded the weights of an earlier epoch
        # (skorch's EarlyStopping(load_best=True), the default nets' "converged" rule
        # with held-out rows): the learned mask is then that epoch's, which the
        # weights now hold.
        if self._holds(self.masks_):
            return
        for masks in reversed(self.masks_by_epoch_):
            if self._holds(masks):
                self.masks_ = masks
                self.held_.hold(net, masks)
                return
        warnings.warn(
            "A callback changed the net's weights after its training, to values that no "
            "epoch of the supermask's training ended with; they are put back to theta_0 "
            "under the last mask.", UserWarning, stacklevel=2)
        self._hold(net)

    def _holds(self, masks: dict[str, np.ndarray]) -> bool:
        """Whether every parameter is at its frozen value, the pruned ones under ``masks``."""
        for name, param in self.params_.items():
            expected = self.frozen_[name]
            if name in masks:
                expected = expected * torch.as_tensor(masks[name], dtype=expected.dtype,
                                                      device=expected.device)
            if not torch.equal(param.detach(), expected):
                return False
        return True

    @torch.no_grad()
    def _hold(self, net) -> None:
        for name, param in self.params_.items():
            param.copy_(self.frozen_[name])
        self.held_.hold(net, self.masks_)
