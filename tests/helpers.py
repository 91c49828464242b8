"""Data and nets that several test modules train on.

Not a test module (pytest collects only ``test_*.py``); its doctests run with the rest.
"""

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier
from torch import nn

from skticket import MLP


def breast_cancer(rows=None):
    """The breast-cancer data set, standardized, with float32 features.

    The scaler is fitted on all 569 rows before ``rows`` (when given) keeps only the first
    ones, so a subset has the scale of the whole set, not a scale of its own.

    >>> X, y = breast_cancer(rows=240)
    >>> X.shape, X.dtype, y.shape
    ((240, 30), dtype('float32'), (240,))
    """
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)[:rows]
    return X.astype(np.float32), y[:rows]


def small_net(net_class=NeuralNetClassifier, **params):
    """A skorch net of ``net_class`` that trains in a moment: ``params`` override the defaults.

    The defaults: an ``MLP`` with one hidden layer of 16 units, Adam at lr 0.01, 4 epochs
    of batches of 32, no validation split, silent. Given another ``module`` (a class or
    an instance), the default hidden units are left out, as that module need not take
    them; hidden units passed in ``params`` are always passed on.

    >>> net = small_net(module=torch.nn.Linear, max_epochs=2)
    >>> net.max_epochs, net.batch_size, "module__hidden_units" in net.get_params()
    (2, 32, False)
    """
    defaults = dict(module=MLP, module__hidden_units=(16,), optimizer=torch.optim.Adam,
                    lr=0.01, max_epochs=4, batch_size=32, train_split=None, verbose=0)
    if params.get("module", MLP) is not MLP:
        del defaults["module__hidden_units"]
    return net_class(**{**defaults, **params})


class OwnSoftmaxModule(nn.Module):
    """A module of one's own, not MLP-like (its own forward), that emits a float32 softmax:
    it predicts through skorch's forward, in float32."""

    def __init__(self, n_features=8, n_outputs=2):
        super().__init__()
        self.hidden = nn.Linear(n_features, 16)
        self.output = nn.Linear(16, n_outputs)

    def forward(self, X):
        return torch.softmax(self.output(torch.tanh(self.hidden(X.float()))), dim=-1)
