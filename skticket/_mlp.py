"""The default module: a multi-layer perceptron sized from the data at fit time."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from ._activations import ACTIVATIONS

# The words scikit-learn's MLPs use for their activations, so that users can write
# the same word here: those of the activation table's rows that have one.
_NAMED_ACTIVATIONS: dict[str, type[nn.Module]] = {
    entry.name: entry.module for entry in ACTIVATIONS if entry.name is not None}


def activation_names() -> frozenset[str]:
    """The names ``MLP``'s ``activation`` takes (``"relu"``, ``"tanh"``, ...)."""
    return frozenset(_NAMED_ACTIVATIONS)


class _Softmax(nn.Softmax):
    """Softmax over the last dimension (what a classifier's probabilities need)."""

    def __init__(self) -> None:
        super().__init__(dim=-1)


_OUTPUT_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "softmax": _Softmax,
    "logistic": _NAMED_ACTIVATIONS["logistic"],
}


def _activation_class(
    activation: str | type[nn.Module], names: dict[str, type[nn.Module]], param: str
) -> type[nn.Module]:
    if isinstance(activation, str):
        try:
            return names[activation]
        except KeyError:
            raise ValueError(
                f"MLP {param}={activation!r} is not one of {sorted(names)} "
                "(or pass a torch.nn.Module subclass)."
            ) from None
    if isinstance(activation, type) and issubclass(activation, nn.Module):
        return activation
    raise TypeError(
        f"MLP {param} must be a string in {sorted(names)} or a torch.nn.Module subclass, "
        f"got {activation!r}."
    )


class MLP(nn.Sequential):
    """Fully connected network: ``hidden_units`` hidden layers, then a linear output.

    The estimators fill in ``n_features`` and ``n_outputs`` from the data at fit
    time, so users give only the hidden layers
    (``net__module__hidden_units=(300, 100)``).

    Parameters
    ----------
    n_features : int
        Width of the input.
    n_outputs : int
        Number of outputs (classes for a classifier, targets for a regressor).
    hidden_units : sequence of int, default=(100,)
        Width of each hidden layer; ``()`` gives a linear model.
    activation : {"relu", "tanh", "logistic", "identity"} or nn.Module subclass, default="relu"
        Nonlinearity after each hidden layer.
    bias : bool, default=True
        Whether the linear layers have a bias.
    output_activation : {"softmax", "logistic"}, nn.Module subclass or None, default=None
        Applied to the output. ``LotteryTicketClassifier`` sets ``"softmax"``
        when the wrapped net's criterion is ``NLLLoss`` (skorch's default),
        which expects probabilities.

    Examples
    --------
    >>> import torch
    >>> from skticket import MLP
    >>> module = MLP(n_features=4, n_outputs=3, hidden_units=(8,))
    >>> [name for name, _ in module.named_parameters()]
    ['hidden_0.weight', 'hidden_0.bias', 'output.weight', 'output.bias']
    >>> module(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    """

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        hidden_units: Sequence[int] = (100,),
        activation: str | type[nn.Module] = "relu",
        bias: bool = True,
        output_activation: str | type[nn.Module] | None = None,
    ) -> None:
        hidden_units = tuple(int(units) for units in hidden_units)
        if any(units < 1 for units in hidden_units):
            raise ValueError(f"MLP hidden_units must all be positive, got {hidden_units}.")
        if int(n_features) < 1 or int(n_outputs) < 1:
            raise ValueError(
                f"MLP needs n_features >= 1 and n_outputs >= 1, got {n_features} and {n_outputs}."
            )
        act = _activation_class(activation, _NAMED_ACTIVATIONS, "activation")
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        width = int(n_features)
        for i, units in enumerate(hidden_units):
            layers[f"hidden_{i}"] = nn.Linear(width, units, bias=bias)
            layers[f"activation_{i}"] = act()
            width = units
        layers["output"] = nn.Linear(width, int(n_outputs), bias=bias)
        if output_activation is not None:
            out = _activation_class(output_activation, _OUTPUT_ACTIVATIONS, "output_activation")
            layers["output_activation"] = out()
        super().__init__(layers)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """The layers applied to ``X``, cast to the weights' dtype first.

        Parameters
        ----------
        X : torch.Tensor of shape (n_samples, n_features)

        Returns
        -------
        torch.Tensor of shape (n_samples, n_outputs)
        """
        # skorch hands integer or float64 inputs through unchanged; cast once here.
        return super().forward(X.to(self.output.weight.dtype))
