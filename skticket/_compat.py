"""Every private name of a dependency that skticket still needs, and why.

No other module of skticket imports a private name of torch, skorch,
scikit-learn, numpy, scipy, joblib, safetensors or skl2onnx, nor reads a
private attribute of their objects: each is here, with what it is, why no
public API does the job, and which module uses it. ``tests/test_compat.py``
checks each one against the installed versions and fails with a message
saying what changed and where to look; it also checks that no other module
imports a private name of a dependency or reads a private attribute that
skticket does not define. (imbalanced-learn's ``utils/_sklearn_compat.py`` is
the model.) Two private names are defined for a dependency to read: the
estimators' and searches' ``_parameter_constraints`` (the contract of
scikit-learn's parameter validation, below) and the default nets'
``_default_callbacks`` (here, in :class:`ChangedDefaultCallbacks`).

What skticket uses of its dependencies otherwise is public API; in
particular scikit-learn's ``validate_data`` (public since 1.6, the floor) in
place of ``BaseEstimator._validate_data``, and skorch's
``get_default_callbacks()`` wherever the defaults are only read.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# Parameter validation as scikit-learn's own estimators do it: ``_parameter_constraints``
# (a class attribute, the estimators' and the searches' own) checked by ``_fit_context``
# (here ``fit_context``) on entering ``fit``, and by ``validate_params`` below elsewhere,
# with scikit-learn's ``InvalidParameterError`` and messages. scikit-learn >= 1.6 has no
# public home for any of these (imbalanced-learn re-exports the same names in its compat
# module). Used by skticket._estimators (all four), skticket._cv (fit_context,
# StrOptions), skticket._search (Interval, StrOptions, validate_params) and
# skticket._nets (Interval, StrOptions, InvalidParameterError,
# validate_parameter_constraints: the default nets' own settings, checked under the
# names the user set them by, ``net__lr``).
from sklearn.base import _fit_context as fit_context
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
)
from torch import nn

__all__ = ["SKORCH_IDENTITY", "ChangedDefaultCallbacks", "HasMethods", "Interval",
           "InvalidParameterError", "StrOptions", "dataloader_order", "fit_context",
           "has_forward_hooks", "resolved_predict_nonlinearity", "validate_parameter_constraints",
           "validate_params"]

# --- scikit-learn -------------------------------------------------------------------------


def validate_params(estimator) -> None:
    """Check ``estimator``'s parameters against its ``_parameter_constraints``.

    What ``_fit_context`` does on entering ``fit``, for an object that is
    validated without being fitted: a search (skticket._search.SearchRun
    validates the search it runs). Calls the private
    ``BaseEstimator._validate_params``; scikit-learn has no public function
    for it.
    """
    estimator._validate_params()


# --- skorch -------------------------------------------------------------------------------

try:
    # What skorch applies for predict_nonlinearity=None (and 'auto' with most criteria).
    # skorch exports no public identity; recognising it keeps the identity free
    # (nothing to apply, nothing to convert). Used by skticket._activations.is_identity.
    from skorch.utils import _identity as SKORCH_IDENTITY
except ImportError:  # pragma: no cover - then it is an unknown function: correct, slower
    SKORCH_IDENTITY = None


def resolved_predict_nonlinearity(net) -> Callable[[torch.Tensor], torch.Tensor]:
    """The function ``net.predict_proba`` applies to the module's output.

    skorch resolves ``predict_nonlinearity="auto"`` from the net's criteria
    in the private ``NeuralNet._get_predict_nonlinearity``, and has no public
    function for it: calling it is the one source of truth, rather than a
    copy of its rule that could drift from what ``predict_proba`` does. Used
    by skticket._activations.predict_nonlinearity.
    """
    return net._get_predict_nonlinearity()


class ChangedDefaultCallbacks:
    """Mixin for a skorch net whose default callbacks differ from its base class's.

    skorch keeps a net's default callbacks in the private property
    ``_default_callbacks``; the public ``get_default_callbacks()`` returns
    it, but ``get_params`` (hence ``clone``, ``set_params`` of an unfitted
    net and grid searches) reads the property itself, so overriding the
    public method alone would leave those seeing skorch's list. A subclass
    says what it changes in ``_changed_default_callbacks``. Used by
    skticket._nets (the default nets).
    """

    def _changed_default_callbacks(self, callbacks: list[tuple[str, object]]
                                  ) -> list[tuple[str, object]]:
        """The net's default callbacks, given its base class's ``callbacks``."""
        raise NotImplementedError

    @property
    def _default_callbacks(self):
        return self._changed_default_callbacks(super()._default_callbacks)


# --- torch --------------------------------------------------------------------------------


def has_forward_hooks(module: nn.Module) -> bool:
    """Whether ``module`` itself has forward or forward pre-hooks.

    A hooked module expects its own forward to run (the hook sees its inputs
    and outputs), so such a module predicts through skorch's forward. torch
    can register hooks but not list them: this reads the dictionaries
    ``register_forward_hook`` and ``register_forward_pre_hook`` fill
    (``Module._forward_hooks``, ``Module._forward_pre_hooks``). Used by
    skticket._predict.
    """
    return bool(module._forward_hooks or module._forward_pre_hooks)


def dataloader_order(n: int, shuffle: bool,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """The order in which a ``DataLoader(..., shuffle=shuffle)`` over ``n`` rows
    takes them in one pass, drawn from torch's global generator as it draws.

    Per pass, a DataLoader's iterator draws a base seed from torch's global
    generator, then a ``RandomSampler`` draws the seed of its permutation;
    the same two draws, in that order, give the same permutation and leave
    the global generator where the DataLoader leaves it. torch documents
    neither the draws nor their order. Used by skticket._training (its
    batch-fetching loader, which trains bit for bit as skorch's DataLoader)
    and skticket._stacking, which draws each member's order from a
    ``generator`` of its own holding the state the global one would hold in
    that member's training alone.
    """
    # The DataLoader iterator's base seed.
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    if not shuffle:
        return torch.arange(n)
    sampler = torch.Generator()
    sampler.manual_seed(int(torch.empty((), dtype=torch.int64).random_(generator=generator)
                            .item()))
    return torch.randperm(n, generator=sampler)
