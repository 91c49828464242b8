"""Targeted dropout (Gomez et al., 2019): drop, while training, what pruning would remove.

:class:`TargetedDropout` is a skorch callback any skorch net takes
(``callbacks=[TargetedDropout(...)]``, or an estimator's ``net__callbacks``,
where it runs in every training of the search), and a
:class:`~skticket.TrainingHook` a search can hand to
:meth:`~skticket.SearchRun.train`. The dropped set of one step is
:func:`targeted_dropout_keep`, a plain function of the weights and a generator.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch
from skorch.callbacks import Callback

from ._compat import Interval, validate_parameter_constraints
from ._docstring import Substitution
from ._hooks import TrainingHook
from ._training import MASK_CALLBACK, prunable_parameters

__all__ = ["TargetedDropout", "targeted_dropout_keep"]


def targeted_dropout_keep(weight: torch.Tensor, *, rate: float, targeted_fraction: float,
                          unit: bool, generator: torch.Generator,
                          active: torch.Tensor | None = None) -> torch.Tensor:
    """Which entries of ``weight`` one training step of targeted dropout keeps.

    The targeted set is the ``floor(targeted_fraction * n)`` lowest-magnitude
    of the layer's ``n`` active weights (``unit=False``), or of its ``n``
    units with an active weight, a unit being a slice along the weight's
    first dimension (a linear layer's output, a convolution's output
    channel), ranked by the L2 norm of its weights (``unit=True``); ties go
    to the lower position. Each targeted weight (unit) is dropped with
    probability ``rate``, independently: one uniform draw per weight (per
    unit) from ``generator``, on the CPU, dropped where it is below
    ``rate``. The draws are taken for every weight (unit), targeted or not,
    so that one step consumes the same draws whatever the weights.

    Parameters
    ----------
    weight : Tensor
        The layer's weight.
    rate : float
        Probability with which each targeted weight (unit) is dropped.
    targeted_fraction : float
        Share of the active weights (units) that is targeted.
    unit : bool
        Target and drop whole units instead of single weights.
    generator : torch.Generator
        A CPU generator for the draws.
    active : bool Tensor or None, default=None
        The layer's mask (True: the weight survives pruning); pruned weights
        are never targeted. None: every weight is active.

    Returns
    -------
    bool Tensor
        The shape of ``weight``, on its device: False where the weight is dropped.

    Examples
    --------
    >>> import torch
    >>> w = torch.tensor([[0.1, -0.5], [0.3, 0.05]])
    >>> keep = targeted_dropout_keep(w, rate=1.0, targeted_fraction=0.5, unit=False,
    ...                              generator=torch.Generator().manual_seed(0))
    >>> keep.tolist()  # rate 1: the two smallest, 0.05 and 0.1, always go
    [[False, True], [True, False]]
    """
    values = weight.detach().cpu()
    alive = (torch.ones(values.shape, dtype=torch.bool) if active is None
             else active.detach().cpu().to(torch.bool).reshape(values.shape))
    if unit:
        rows = values.reshape(values.shape[0], -1)
        magnitude = torch.linalg.vector_norm(rows.to(torch.float64), dim=1)
        candidates = alive.reshape(values.shape[0], -1).any(dim=1)
    else:
        magnitude = values.abs().flatten().to(torch.float64)
        candidates = alive.flatten()
    n_targeted = math.floor(targeted_fraction * int(candidates.sum()))
    # Pruned weights (units without a weight) rank last: they are never targeted.
    ranked = torch.where(candidates, magnitude, torch.full_like(magnitude, math.inf))
    targeted = torch.zeros(magnitude.shape, dtype=torch.bool)
    targeted[torch.argsort(ranked, stable=True)[:n_targeted]] = True
    draws = torch.rand(magnitude.shape, generator=generator, dtype=torch.float64)
    dropped = targeted & (draws < rate)
    if unit:
        dropped = dropped.reshape(-1, *([1] * (values.dim() - 1))).expand(values.shape)
    return (~dropped).reshape(values.shape).to(weight.device)


_SHARE = Interval(Real, 0, 1, closed="both")


#: The parameters skorch passes a callback's hooks, documented once for each hook.
_HOOK_PARAMETERS = Substitution(
    net="""net : skorch NeuralNet
            The net in training.""",
    data="""X : array-like or None
            The training data (unused).
        y : array-like or None
            The targets (unused).""",
    batch="""batch : tuple or None
            The batch (unused).""",
    training="""training : bool or None
            Whether the batch trains; nothing happens for one that does not.""",
)


class TargetedDropout(Callback, TrainingHook):
    """Targeted dropout (Gomez et al., 2019): drop the weights pruning would remove.

    During training only, before each optimizer step's forward pass, each
    pruned layer targets its ``targeted_fraction`` lowest-magnitude weights
    (or, with ``unit=True``, its units of lowest L2 norm: a linear layer's
    outputs, a convolution's output channels) and drops each targeted one
    with probability ``rate`` (:func:`targeted_dropout_keep`): the step's
    forward and backward passes see it at zero, and its gradient is zero.
    The weight keeps its value; it is put back before the optimizer step.
    Nothing is dropped when the net predicts or scores its validation rows:
    a net trained with it predicts as any net with its weights.
    The net learns to do without the weights a magnitude pruning after
    training removes, so that pruning costs it less.

    The pruned layers are those of the training's masks (in an estimator's
    trainings, its ``prunable`` parameters), else the ``weight`` of every
    linear and convolution layer of the module; weights already pruned (at
    zero under a mask) are never targeted, and the fractions count the
    surviving ones. As in the reference, kept weights are not rescaled. The
    reference targets each output unit's incoming weights separately and, at
    evaluation, removes every targeted weight; here the targeted share is
    taken over the whole layer, as the package prunes a layer, and
    evaluation sees every weight.

    Usable as a skorch callback on any skorch net, as an estimator's
    ``net__callbacks`` (it then runs in every training of the search: the
    dense round and every ticket), and as a :class:`~skticket.TrainingHook`
    of a search of one's own (its summary is its callback's
    ``dropped_share_``).

    Parameters
    ----------
    rate : float, default=0.5
        Probability with which a targeted weight (unit) is dropped, in [0, 1]:
        the paper's alpha.
    targeted_fraction : float, default=0.5
        Share of each layer's weights (units) targeted, in [0, 1]: the paper's
        gamma; set it to the sparsity the net is to be pruned to.
    unit : bool, default=False
        Target and drop whole units, ranked by the L2 norm of their weights.
    random_state : int or None, default=None
        Seeds the draws. None: they are seeded from torch's global generator's
        seed when the training starts (``torch.initial_seed()``, read without
        drawing), which the estimators set for every training from their
        ``random_state``; with a plain skorch net, ``torch.manual_seed``
        before ``fit`` makes it reproducible. The draws come from their own
        generator, so the data order is the one the net has without the
        callback.

    Attributes
    ----------
    dropped_share_ : dict of str to float
        After a training, per pruned layer, the mean share of its weights
        dropped per training step.

    See Also
    --------
    LotteryTicketClassifier : ``net__callbacks=[TargetedDropout(...)]`` trains every round with it.

    References
    ----------
    .. [1] A. N. Gomez, I. Zhang, S. R. Kamalakara, D. Madaan, K. Swersky, Y. Gal
       and G. E. Hinton, "Learning sparse networks using targeted dropout",
       arXiv:1905.13678, 2019.

    Examples
    --------
    >>> import torch
    >>> from skorch import NeuralNetClassifier
    >>> from sklearn.datasets import load_iris
    >>> from skticket import MLP, TargetedDropout
    >>> X, y = load_iris(return_X_y=True)
    >>> _ = torch.manual_seed(0)
    >>> dropout = TargetedDropout(rate=1.0, targeted_fraction=0.5, random_state=0)
    >>> net = NeuralNetClassifier(
    ...     MLP, module__n_features=4, module__n_outputs=3, module__hidden_units=(16,),
    ...     criterion=torch.nn.CrossEntropyLoss, max_epochs=3, train_split=None,
    ...     callbacks=[dropout], verbose=0)
    >>> _ = net.fit(X.astype("float32"), y)
    >>> dropout.dropped_share_  # at rate 1, every targeted weight, every step
    {'hidden_0.weight': 0.5, 'output.weight': 0.5}
    """

    _parameter_constraints: ClassVar[dict] = {
        "rate": [_SHARE],
        "targeted_fraction": [_SHARE],
        "unit": ["boolean"],
        "random_state": [None, Interval(Integral, 0, None, closed="left")],
    }

    def __init__(self, *, rate: float = 0.5, targeted_fraction: float = 0.5,
                 unit: bool = False, random_state: int | None = None) -> None:
        self.rate = rate
        self.targeted_fraction = targeted_fraction
        self.unit = unit
        self.random_state = random_state

    def __repr__(self) -> str:
        params = ", ".join(f"{name}={value!r}" for name, value in self.get_params().items())
        return f"{type(self).__name__}({params})"

    # --- as a training hook: a value -------------------------------------------------

    def _key(self) -> tuple:
        return (type(self), self.rate, self.targeted_fraction, self.unit, self.random_state)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TargetedDropout) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def callback(self) -> TargetedDropout:
        """A fresh copy of this callback, for one training."""
        return type(self)(**self.get_params())

    def summary(self, callback: TargetedDropout) -> dict[str, float]:
        """The training's ``dropped_share_``."""
        return dict(callback.dropped_share_)

    # --- as a skorch callback ---------------------------------------------------------

    def initialize(self) -> TargetedDropout:
        """Check the parameters (before any training) and clear what a training leaves.

        Returns
        -------
        TargetedDropout
            This callback.

        Raises
        ------
        sklearn.utils._param_validation.InvalidParameterError
            A rate outside [0, 1], or another parameter out of its constraints.
        """
        # Checked when the net is initialized, before any training.
        validate_parameter_constraints(self._parameter_constraints, self.get_params(),
                                       caller_name=type(self).__name__)
        self.dropped_share_: dict[str, float] = {}
        return self

    @_HOOK_PARAMETERS
    def on_train_begin(self, net, X=None, y=None, **kwargs) -> None:
        """Seed the draws' generator and find the net's parameters.

        Parameters
        ----------
        %(net)s
        %(data)s
        """
        seed = (torch.initial_seed() if self.random_state is None else self.random_state)
        # A stream of its own, apart from the global one the data order is drawn from.
        own_seed = np.random.SeedSequence([int(seed) % 2**63, 0x7D]).generate_state(1)[0]
        self.generator_ = torch.Generator().manual_seed(int(own_seed))
        self.params_ = dict(net.module_.named_parameters())
        self.held_back_: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.dropped_total_: dict[str, float] = {}
        self.steps_ = 0

    def _pruned_layers(self, net) -> dict[str, np.ndarray | None]:
        held = dict(net.callbacks_).get(MASK_CALLBACK)
        masks = getattr(held, "held_", None)
        if masks is not None:
            return dict(masks)
        return dict.fromkeys(prunable_parameters(net.module_))

    @_HOOK_PARAMETERS
    @torch.no_grad()
    def on_batch_begin(self, net, batch=None, training=None, **kwargs) -> None:
        """Drop this step's targeted weights (units), keeping their values aside.

        Parameters
        ----------
        %(net)s
        %(batch)s
        %(training)s
        """
        if not training:
            return
        self.steps_ += 1
        for name, mask in self._pruned_layers(net).items():
            param = self.params_[name]
            keep = targeted_dropout_keep(
                param, rate=self.rate, targeted_fraction=self.targeted_fraction,
                unit=self.unit, generator=self.generator_,
                active=None if mask is None else torch.as_tensor(mask))
            self.held_back_[name] = (param.detach().clone(), keep)
            param.mul_(keep)
            dropped = 1.0 - float(keep.sum()) / keep.numel()
            self.dropped_total_[name] = self.dropped_total_.get(name, 0.0) + dropped

    @_HOOK_PARAMETERS
    @torch.no_grad()
    def on_grad_computed(self, net, named_parameters, X=None, y=None, training=None,
                         **kwargs) -> None:
        """Zero the dropped weights' gradients and put their values back, before the step.

        Parameters
        ----------
        %(net)s
        named_parameters : iterable of (str, Parameter)
            The net's learnable parameters (unused).
        %(data)s
        %(training)s
        """
        if not training:
            return
        for name, (_, keep) in self.held_back_.items():
            grad = self.params_[name].grad
            if grad is not None:
                grad.mul_(keep)  # a dropped weight has no gradient (it was multiplied by 0)
        self._put_back()

    @_HOOK_PARAMETERS
    def on_batch_end(self, net, batch=None, training=None, **kwargs) -> None:
        """Put back any value still held aside (no gradient was computed).

        Parameters
        ----------
        %(net)s
        %(batch)s
        %(training)s
        """
        self._put_back()  # in case no gradient was computed

    @_HOOK_PARAMETERS
    def on_train_end(self, net, X=None, y=None, **kwargs) -> None:
        """Put back any value still held aside and record ``dropped_share_``.

        Parameters
        ----------
        %(net)s
        %(data)s
        """
        self._put_back()  # a training ended between a batch's start and its step
        self.dropped_share_ = {name: total / max(self.steps_, 1)
                               for name, total in self.dropped_total_.items()}
        # What only the training needed goes: a fitted net pickles without it.
        del self.generator_, self.params_, self.held_back_, self.dropped_total_

    @torch.no_grad()
    def _put_back(self) -> None:
        for name, (value, _) in self.held_back_.items():
            self.params_[name].copy_(value)
        self.held_back_ = {}

