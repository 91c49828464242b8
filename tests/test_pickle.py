"""Pickling fitted estimators and their compact predictors.

Pickles are for one's own models: unpickling runs code, so a pickle from a
stranger is unsafe (a ticket file, ``Ticket.save``, is the safe way to share).
"""

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, make_regression
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier, NeuralNetRegressor

from skticket import MLP, LotteryTicketClassifier, LotteryTicketRegressor

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y


def classifier_net(**kwargs):
    return NeuralNetClassifier(MLP, module__hidden_units=(48, 48), max_epochs=3, lr=0.01,
                               batch_size=128, optimizer=torch.optim.Adam, train_split=None,
                               verbose=0, **kwargs)


@pytest.fixture(scope="module")
def classifier(digits):
    X, y = digits
    return LotteryTicketClassifier(classifier_net(), prune_fraction=0.7, target_sparsity=0.95,
                                   random_state=0).fit(X[:600], y[:600])


@pytest.fixture(scope="module")
def regressor():
    X, y = make_regression(n_samples=300, n_features=6, n_targets=2, random_state=0)
    net = NeuralNetRegressor(MLP, module__hidden_units=(32,), max_epochs=5, lr=0.01,
                             optimizer=torch.optim.Adam, train_split=None, verbose=0)
    reg = LotteryTicketRegressor(net, prune_fraction=0.6, target_sparsity=0.9,
                                 random_state=0).fit(X, y / 100)
    return reg, X


def test_classifier_pickle_predicts_identically(classifier, digits):
    X, _ = digits
    restored = pickle.loads(pickle.dumps(classifier))
    np.testing.assert_array_equal(restored.predict_proba(X), classifier.predict_proba(X))
    np.testing.assert_array_equal(restored.predict(X), classifier.predict(X))
    assert restored.winning_ticket_ == classifier.winning_ticket_
    # The restored net keeps its pruned weights at zero.
    for name, mask in restored.winning_ticket_.masks.items():
        weight = dict(restored.net_.module_.named_parameters())[name].detach().numpy()
        assert not weight[~mask].any()


def test_regressor_pickle_predicts_identically(regressor):
    reg, X = regressor
    restored = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(restored.predict(X), reg.predict(X))
    assert restored.predict(X).shape == (len(X), 2)


def test_compact_predictors_pickle(classifier, regressor, digits):
    X, _ = digits
    # 0.5: every layer of the 95%-sparse ticket multiplies with a CSR matrix,
    # the layout that torch's generic pickling does not cover by default.
    compact = classifier.compact(sparse_threshold=0.5)
    assert any(layer.is_sparse for layer in compact.module_.linears)
    restored = pickle.loads(pickle.dumps(compact))
    np.testing.assert_array_equal(restored.predict_proba(X), compact.predict_proba(X))
    np.testing.assert_array_equal(restored.predict(X), classifier.predict(X))
    assert repr(restored) == repr(compact)

    reg, Xr = regressor
    compact_reg = reg.compact()
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(compact_reg)).predict(Xr),
                                  compact_reg.predict(Xr))


def test_compact_of_an_unpickled_estimator(classifier, digits):
    X, _ = digits
    restored = pickle.loads(pickle.dumps(classifier))
    np.testing.assert_array_equal(restored.compact().predict_proba(X),
                                  classifier.compact().predict_proba(X))


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="needs a CUDA GPU to train the net that is then loaded without one")
def test_cuda_trained_estimator_loads_without_a_gpu(digits, tmp_path):
    X, y = digits
    clf = LotteryTicketClassifier(classifier_net(device="cuda"), prune_fraction=0.5,
                                  max_rounds=1, random_state=0).fit(X[:600], y[:600])
    assert next(clf.net_.module_.parameters()).is_cuda
    path = tmp_path / "clf.pkl"
    path.write_bytes(pickle.dumps(clf))
    np.save(tmp_path / "X.npy", X)
    # A fresh interpreter that sees no GPU at all, as on a CPU-only machine.
    script = textwrap.dedent(f"""
        import pickle, warnings
        import numpy as np, torch
        assert not torch.cuda.is_available()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skorch warns that it maps CUDA to the CPU
            clf = pickle.loads(open({str(path)!r}, "rb").read())
        assert not next(clf.net_.module_.parameters()).is_cuda
        X = np.load({str(tmp_path / "X.npy")!r})
        np.save({str(tmp_path / "proba.npy")!r}, clf.predict_proba(X))
        np.save({str(tmp_path / "compact.npy")!r}, clf.compact().predict_proba(X))
    """)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=tmp_path)
    np.testing.assert_allclose(np.load(tmp_path / "proba.npy"), clf.predict_proba(X),
                               rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "compact.npy"), clf.predict_proba(X),
                               rtol=0, atol=1e-5)
