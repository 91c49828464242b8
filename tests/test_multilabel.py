"""Multilabel targets: one sigmoid output per label, the indicator matrix from predict,
subset accuracy as the score, through every path that takes a classifier."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_multilabel_classification
from sklearn.metrics import accuracy_score
from sklearn.neural_network import MLPClassifier
from skorch import NeuralNetClassifier
from torch import nn

from skticket import MLP, LotteryTicketClassifier, ticket_curve, ticket_path


@pytest.fixture(scope="module")
def labels():
    X, Y = make_multilabel_classification(n_samples=500, n_features=20, n_classes=5,
                                          random_state=0)
    X = ((X - X.mean(axis=0)) / X.std(axis=0)).astype(np.float32)
    return X[:400], Y[:400], X[400:], Y[400:]


@pytest.fixture(scope="module")
def fitted(labels):
    X, Y, _, _ = labels
    return LotteryTicketClassifier(target_sparsity=0.8, random_state=0).fit(X, Y)


def test_shapes_probabilities_and_subset_accuracy(labels, fitted):
    _, _, X_test, Y_test = labels
    predicted = fitted.predict(X_test)
    proba = fitted.predict_proba(X_test)
    assert predicted.shape == Y_test.shape and predicted.dtype == Y_test.dtype
    assert set(np.unique(predicted)) <= {0, 1}
    assert proba.shape == Y_test.shape and np.all((proba >= 0) & (proba <= 1))
    # Each label's own probability: rows do not sum to 1.
    assert not np.allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(predicted, (proba > 0.5).astype(Y_test.dtype))
    assert fitted.score(X_test, Y_test) == accuracy_score(Y_test, predicted)
    np.testing.assert_array_equal(fitted.classes_, np.arange(5))


def test_the_default_net_trains_one_logit_per_label(fitted, labels):
    X, Y, X_test, Y_test = labels
    assert isinstance(fitted.net_.criterion_, nn.BCEWithLogitsLoss)
    assert fitted.net_.module_.output.out_features == 5
    assert not any(isinstance(m, nn.Softmax) for m in fitted.net_.module_.modules())
    mlp = MLPClassifier(max_iter=500, random_state=0).fit(X, Y)
    assert fitted.score(X_test, Y_test) >= mlp.score(X_test, Y_test) - 0.1


def test_rows_are_predicted_alike_whatever_the_call(labels, fitted):
    _, _, X_test, _ = labels
    whole, labels = fitted.predict_proba(X_test), fitted.predict(X_test)
    for rows in (slice(0, 1), slice(3, 40), slice(90, 100)):
        # Computed in float64: equal to float64 rounding, the labels identical.
        np.testing.assert_allclose(fitted.predict_proba(X_test[rows]), whole[rows], rtol=1e-12)
        np.testing.assert_array_equal(fitted.predict(X_test[rows]), labels[rows])


def test_compact_predicts_the_same(labels, fitted):
    _, _, X_test, _ = labels
    small = fitted.compact()
    np.testing.assert_array_equal(small.predict(X_test), fitted.predict(X_test))
    np.testing.assert_allclose(small.predict_proba(X_test), fitted.predict_proba(X_test),
                               atol=1e-5)


@pytest.mark.parametrize("search", ["early_bird", "snip", "gradual", "rigl"])
def test_every_search_takes_multilabel_targets(labels, search):
    X, Y, X_test, Y_test = labels
    est = LotteryTicketClassifier(target_sparsity=0.8, random_state=0, search=search).fit(X, Y)
    assert est.predict(X_test).shape == Y_test.shape
    assert est.score(X_test, Y_test) > 0.1


def test_the_held_out_score_is_subset_accuracy(labels):
    X, Y, _, _ = labels
    run = ticket_path(LotteryTicketClassifier(score_tolerance=1.0, random_state=0), X, Y).run
    data = run.session.data
    dense = next(iter(run.rounds()))
    proba = dense.result.net.predict_proba(data.X_valid)
    expected = np.mean(np.all((proba > 0.5) == data.y_valid, axis=1))
    assert dense.record["valid_score"] == pytest.approx(expected)


def test_ticket_curve_scores_subset_accuracy(labels):
    X, Y, X_test, Y_test = labels
    est = LotteryTicketClassifier(target_sparsity=0.5, prune_fraction=0.5, random_state=0)
    est.set_params(net__max_epochs=20)
    curve = ticket_curve(est, X, Y, X_test, Y_test, n_repeats=1, as_frame=False,
                         return_tickets=False)
    dense = next(row for row in curve if row["ticket"] == "dense")
    fitted = LotteryTicketClassifier(max_rounds=0, random_state=curve[0]["random_state"])
    fitted.set_params(net__max_epochs=20).fit(X, Y)
    assert dense["score"] == fitted.score(X_test, Y_test)


def test_weights_and_prune_with_multilabel_targets(labels):
    X, Y, _, _ = labels
    weight = np.where(Y[:, 0] == 1, 0.0, 1.0)
    est = LotteryTicketClassifier(target_sparsity=0.5, random_state=0).fit(
        X, Y, sample_weight=weight)
    est.prune(X, Y, sample_weight=weight)
    assert est.rounds_[-1]["sparsity"] > 0.5
    with pytest.raises(ValueError, match="indicator matrix of 5 columns"):
        est.prune(X, Y[:, :3])


def test_a_users_net_trains_on_its_own_criterion(labels):
    X, Y, X_test, Y_test = labels
    net = NeuralNetClassifier(MLP, module__hidden_units=(32,), criterion=nn.BCEWithLogitsLoss,
                              optimizer=torch.optim.Adam, lr=0.01, max_epochs=30,
                              train_split=None, verbose=0)
    est = LotteryTicketClassifier(net, target_sparsity=0.5, random_state=0).fit(X, Y)
    assert est.predict_proba(X_test).shape == Y_test.shape
    assert est.net_.predict_nonlinearity is torch.sigmoid  # skorch's "auto" is binary-only
    nll = NeuralNetClassifier(MLP, max_epochs=2, train_split=None, verbose=0)
    with pytest.raises(ValueError, match="BCEWithLogitsLoss; the net's criterion is NLLLoss"):
        LotteryTicketClassifier(nll, random_state=0).fit(X, Y)


def test_targets_that_are_neither_are_refused(labels):
    X = labels[0]
    multiclass_multioutput = np.stack([np.arange(len(X)) % 3, np.arange(len(X)) % 4], axis=1)
    with pytest.raises(ValueError, match="label indicator matrix"):
        LotteryTicketClassifier().fit(X, multiclass_multioutput)


def test_onnx_export_refuses_multilabel_by_name(fitted, labels):
    skl2onnx = pytest.importorskip("skl2onnx", reason="the onnx extra is not installed")
    import skticket.onnx  # noqa: F401  (registers the converters)

    X = labels[0]
    with pytest.raises(TypeError, match="multilabel targets"):
        skl2onnx.to_onnx(fitted, X[:1], options={"zipmap": False})
    with pytest.raises(TypeError, match="multilabel targets"):
        skl2onnx.to_onnx(fitted.compact(), X[:1], options={"zipmap": False})
