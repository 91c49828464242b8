"""partial_fit: one more epoch of the ticket on the rows given, as MLPClassifier.partial_fit.

The equivalence these tests rest on: for a net that does not shuffle and holds no rows
out (``train_split=None``; skorch's DataLoader does not shuffle unless told), ``n`` calls
of ``partial_fit`` on the same rows run the optimizer steps of one training of ``n``
epochs, with the optimizer's state carried from call to call, so they train the weights
``fit`` trains with ``net__max_epochs=n``; and calls on consecutive chunks of
``batch_size`` rows run the steps of one epoch of ``fit`` over their concatenation.
"""

import pickle

import numpy as np
import pytest
import torch
from helpers import breast_cancer, small_net
from sklearn.base import clone
from sklearn.datasets import make_multilabel_classification, make_regression
from sklearn.utils.class_weight import compute_sample_weight

import skticket._estimators as estimators_module
import skticket._partial as partial_module
from skticket import (
    LotteryTicketClassifier,
    LotteryTicketClassifierCV,
    LotteryTicketRegressor,
    LotteryTicketRegressorCV,
)
from skticket.exceptions import InputScaleWarning


@pytest.fixture(scope="module")
def cancer():
    return breast_cancer(rows=200)


def weights(est) -> dict[str, np.ndarray]:
    return {name: value.detach().numpy().copy()
            for name, value in est.net_.module_.state_dict().items()}


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        # Float32 rounding at most: the two run the same steps in the same order.
        np.testing.assert_allclose(wa[name], wb[name], rtol=1e-6, atol=1e-7, err_msg=name)


def default_classifier(**params):
    """The default net, every row training, for the fit equivalence."""
    return LotteryTicketClassifier(random_state=0, **params).set_params(
        net__train_split=None, net__module__hidden_units=(16,), net__max_epochs=4)


def own_classifier(**params):
    return LotteryTicketClassifier(small_net(batch_size=40, max_epochs=1),
                                   **{"random_state": 0, **params})


def test_calls_on_the_same_rows_train_as_fit_with_as_many_epochs(cancer):
    X, y = cancer
    fitted = default_classifier(max_rounds=0).fit(X, y)
    streamed = default_classifier(max_rounds=0)
    for _ in range(4):
        streamed.partial_fit(X, y, classes=[0, 1])
    assert_same_weights(streamed, fitted)
    assert streamed.rounds_[0]["epochs"] == fitted.rounds_[0]["epochs"] == 4
    assert streamed.rounds_[0]["train_loss"] == pytest.approx(fitted.rounds_[0]["train_loss"])
    assert len(streamed.net_.history) == 4
    assert list(streamed.net_.history[:, "epoch"]) == [1, 2, 3, 4]
    assert all(streamed.net_.history[:, "partial_fit"])


def test_a_fresh_optimizer_in_every_call_would_train_otherwise(cancer, monkeypatch):
    # What the equivalence above owes to the carried optimizer state: without it the
    # same calls train other weights.
    X, y = cancer
    fitted = default_classifier(max_rounds=0).fit(X, y)
    real = estimators_module.train_epoch
    monkeypatch.setattr(estimators_module, "train_epoch",
                        lambda *args, optimizer_state, **kwargs: real(
                            *args, optimizer_state=None, **kwargs))
    fresh = default_classifier(max_rounds=0)
    for _ in range(4):
        fresh.partial_fit(X, y, classes=[0, 1])
    assert not np.allclose(weights(fresh)["hidden_0.weight"], weights(fitted)["hidden_0.weight"])


def test_streamed_batches_train_as_one_epoch_of_fit(cancer):
    X, y = cancer
    fitted = own_classifier(max_rounds=0).fit(X, y)
    streamed = own_classifier(max_rounds=0)
    for start in range(0, len(y), 40):
        streamed.partial_fit(X[start:start + 40], y[start:start + 40], classes=[0, 1])
    assert_same_weights(streamed, fitted)
    assert streamed.rounds_[0]["epochs"] == 5


def test_weighted_streamed_batches_train_as_weighted_fit(cancer):
    X, y = cancer
    weight = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    fitted = own_classifier(max_rounds=0).fit(X, y, sample_weight=weight)
    streamed = own_classifier(max_rounds=0)
    for start in range(0, len(y), 40):
        rows = slice(start, start + 40)
        streamed.partial_fit(X[rows], y[rows], classes=[0, 1], sample_weight=weight[rows])
    assert_same_weights(streamed, fitted)
    unweighted = own_classifier(max_rounds=0).fit(X, y)
    assert not np.allclose(weights(streamed)["output.weight"], weights(unweighted)["output.weight"])


def test_regressor_calls_train_as_fit():
    X, _ = make_regression(n_samples=120, n_features=6, noise=1.0, random_state=0)
    y = X @ np.arange(6.0) * 10 + 50  # raw units: the default net standardizes them
    regressor = LotteryTicketRegressor(max_rounds=0, random_state=0).set_params(
        net__train_split=None, net__module__hidden_units=(16,), net__max_epochs=3)
    fitted = clone(regressor).fit(X, y)
    for _ in range(3):
        regressor.partial_fit(X, y)
    assert_same_weights(regressor, fitted)
    np.testing.assert_allclose(regressor.target_mean_, fitted.target_mean_)
    np.testing.assert_allclose(regressor.predict(X), fitted.predict(X), rtol=1e-5)


def test_masks_held_and_the_ticket_kept(cancer):
    X, y = cancer
    est = own_classifier(target_sparsity=0.75).fit(X, y)
    ticket = est.winning_ticket_
    before = weights(est)
    for start in range(0, len(y), 40):
        est.partial_fit(X[start:start + 40], y[start:start + 40])
    after = weights(est)
    assert est.winning_ticket_ == ticket
    for name, mask in ticket.masks.items():
        assert np.all(after[name][~mask] == 0.0), name
        assert not np.array_equal(after[name][mask], before[name][mask])  # it trained
    # prune() ranks the weights partial_fit trained.
    progress = est._search_progress_
    for name in ticket.masks:
        np.testing.assert_array_equal(progress.trained_weights[name], after[name])


def test_the_tickets_record_counts_the_epochs(cancer):
    X, y = cancer
    est = own_classifier(target_sparsity=0.5, score_tolerance=0.5).fit(X, y)
    records = [dict(r) for r in est.rounds_]
    epochs_before = len(est.net_.history)
    est.partial_fit(X, y).partial_fit(X, y)
    last = est.rounds_[-1]
    assert len(est.rounds_) == len(records)
    assert last["epochs"] == records[-1]["epochs"] + 2
    assert last["valid_score"] is None and records[-1]["valid_score"] is not None
    assert last["train_loss"] == pytest.approx(est.net_.history[-1, "train_loss"])
    assert last["seconds"] > records[-1]["seconds"]
    assert est.rounds_[:-1] == records[:-1]
    assert len(est.net_.history) == epochs_before + 2
    assert [epoch.get("partial_fit", False) for epoch in est.net_.history[-3:]] == [
        False, True, True]
    # The net is configured as the user's (one epoch, every row, for the call only).
    default = LotteryTicketClassifier(random_state=0).set_params(
        net__module__hidden_units=(16,), net__max_epochs=7)
    default.partial_fit(X, y, classes=[0, 1]).partial_fit(X, y)
    assert default.net_.max_epochs == 7 and default.net_.train_split is not None


def test_classes_required_first_and_checked_after(cancer):
    X, y = cancer
    est = own_classifier()
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        est.partial_fit(X, y)
    assert not hasattr(est, "n_features_in_")
    with pytest.raises(ValueError, match="at least 2 classes"):
        est.partial_fit(X, y, classes=[1])
    # y need not hold every class; classes in another order are the same set.
    est.partial_fit(X[y == 0][:20], y[y == 0][:20], classes=[1, 0])
    np.testing.assert_array_equal(est.classes_, [0, 1])
    est.partial_fit(X, y, classes=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"`classes=\[0, 1, 2\]` is not the same"):
        est.partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match=r"not seen in fit: \[7\]"):
        est.partial_fit(X[:3], np.array([0, 1, 7]))
    # After fit, classes are known: the first call needs none.
    fitted = own_classifier(max_rounds=0).fit(X, y)
    fitted.partial_fit(X, y)
    assert fitted.rounds_[0]["epochs"] == 2


def test_string_labels_stream(cancer):
    X, y = cancer
    labels = np.array(["benign", "malignant"])[y]
    est = own_classifier()
    est.partial_fit(X[:100], labels[:100], classes=["malignant", "benign"])
    est.partial_fit(X[100:], labels[100:])
    assert set(est.predict(X)) <= {"benign", "malignant"}
    np.testing.assert_array_equal(est.classes_, ["benign", "malignant"])


def state(est) -> tuple:
    """What a failed call must leave as it was: every attribute (by identity), the net's
    weights and its optimizer's state, by value."""
    optimizer = est.net_.optimizer_.state_dict()["state"]
    return (dict(est.__dict__), weights(est),
            {key: {name: value.clone() for name, value in entry.items()}
             for key, entry in optimizer.items()})


def assert_unchanged(est, saved):
    attributes, saved_weights, saved_optimizer = saved
    assert est.__dict__.keys() == attributes.keys()
    assert all(est.__dict__[name] is value for name, value in attributes.items())
    for name, value in weights(est).items():
        np.testing.assert_array_equal(value, saved_weights[name])
    optimizer = est.net_.optimizer_.state_dict()["state"]
    for key, entry in saved_optimizer.items():
        for name, value in entry.items():
            assert torch.equal(optimizer[key][name], value), (key, name)


def test_a_failed_call_leaves_the_estimator_as_it_was(cancer, monkeypatch):
    X, y = cancer
    est = own_classifier(target_sparsity=0.5).fit(X, y)
    est.partial_fit(X, y)  # net_ now carries an optimizer state to the next call
    saved = state(est)
    with pytest.raises(ValueError, match="X has 29 features"):
        est.partial_fit(X[:, 1:], y)
    assert_unchanged(est, saved)
    with pytest.raises(ValueError, match="not the same as on last call"):
        est.partial_fit(X, y, classes=[0, 1, 2])
    assert_unchanged(est, saved)

    # A Ctrl-C once the epoch has trained: nothing of it is kept, and the optimizer
    # state it went on from is untouched (it trained on a copy).
    real = partial_module.run_training

    def interrupted(spec):
        real(spec)
        raise KeyboardInterrupt

    monkeypatch.setattr(partial_module, "run_training", interrupted)
    with pytest.raises(KeyboardInterrupt):
        est.partial_fit(X, y)
    assert_unchanged(est, saved)
    monkeypatch.undo()
    # And the next call trains as if the failed ones had not been made.
    twin = own_classifier(target_sparsity=0.5).fit(X, y).partial_fit(X, y)
    assert_same_weights(est.partial_fit(X, y), twin.partial_fit(X, y))


def test_a_failed_first_call_leaves_the_estimator_unfitted(cancer):
    X, y = cancer
    est = own_classifier()
    attributes = dict(vars(est))
    with pytest.raises(ValueError, match="sample_weight holds negative values"):
        est.partial_fit(X, y, classes=[0, 1], sample_weight=-np.ones(len(y)))
    assert vars(est).keys() == attributes.keys()
    assert all(vars(est)[name] is value for name, value in attributes.items())


def test_a_changed_start_point_is_refused(cancer):
    X, y = cancer
    est = default_classifier().partial_fit(X, y, classes=[0, 1])
    est.set_params(net__lr=0.5)
    with pytest.raises(ValueError, match=r"net__lr changed since fit.*partial_fit\(\) cannot"):
        est.partial_fit(X, y)


def test_unfitted_start_then_prune_is_fit_with_one_round(cancer):
    # partial_fit from scratch starts round 0 (the dense net from theta_0); prune() cuts
    # the net it trained and rewinds to theta_0, as fit's round 1 does.
    X, y = cancer
    fitted = default_classifier(max_rounds=1).fit(X, y)
    streamed = default_classifier(max_rounds=1)
    for _ in range(4):
        streamed.partial_fit(X, y, classes=[0, 1])
    dense_ticket = streamed.winning_ticket_
    assert dense_ticket.round == 0 and dense_ticket.sparsity == 0.0
    streamed.prune(X, y)
    assert streamed.winning_ticket_ == fitted.winning_ticket_
    assert streamed.winning_ticket_.sparsity == pytest.approx(0.5, abs=0.01)
    masks = streamed.winning_ticket_.masks
    for name, value in dense_ticket.weights.items():  # the survivors rewound to theta_0
        kept = masks.get(name, np.ones(value.shape, dtype=bool))
        np.testing.assert_array_equal(streamed.winning_ticket_.weights[name][kept], value[kept])
    assert_same_weights(streamed, fitted)
    assert [r["round"] for r in streamed.rounds_] == [0, 1]


def test_rewind_step_is_taken_in_the_first_call(cancer):
    X, y = cancer
    est = own_classifier(rewind_step=2)
    with pytest.raises(ValueError, match="rewind_step=2 is beyond the 1 optimizer steps"):
        est.partial_fit(X[:40], y[:40], classes=[0, 1])
    est.partial_fit(X[:120], y[:120], classes=[0, 1])
    theta_0 = est.winning_ticket_.weights
    est.prune(X, y)
    rewound = est.winning_ticket_.weights
    assert not np.array_equal(rewound["hidden_0.weight"], theta_0["hidden_0.weight"])


def test_a_given_ticket_trains_as_fit_trains_it(cancer):
    X, y = cancer
    ticket = own_classifier(target_sparsity=0.75).fit(X, y).winning_ticket_
    fitted = default_classifier(ticket=ticket).fit(X, y)
    streamed = default_classifier(ticket=ticket)
    for _ in range(4):
        streamed.partial_fit(X, y, classes=[0, 1])
    assert streamed.winning_ticket_ == fitted.winning_ticket_
    assert streamed.winning_ticket_.round == ticket.round
    assert_same_weights(streamed, fitted)
    for name, mask in ticket.masks.items():
        assert np.all(weights(streamed)[name][~mask] == 0.0)


def test_class_weight(cancer):
    X, y = cancer
    with pytest.raises(ValueError, match="class_weight='balanced' is not supported for "
                                         "partial_fit"):
        own_classifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1])
    by_class = own_classifier(class_weight={0: 3.0, 1: 0.5})
    by_sample = own_classifier()
    for start in range(0, len(y), 40):
        rows = slice(start, start + 40)
        by_class.partial_fit(X[rows], y[rows], classes=[0, 1])
        by_sample.partial_fit(X[rows], y[rows], classes=[0, 1],
                              sample_weight=compute_sample_weight({0: 3.0, 1: 0.5}, y[rows]))
    assert_same_weights(by_class, by_sample)


def test_the_optimizer_state_survives_pickling(cancer):
    X, y = cancer
    est = own_classifier().partial_fit(X, y, classes=[0, 1])
    copy = pickle.loads(pickle.dumps(est))
    assert_same_weights(est.partial_fit(X, y), copy.partial_fit(X, y))


def test_after_a_fit_from_memory_partial_fit_trains_as_after_a_trained_fit(cancer, tmp_path):
    # A round read from memory holds no optimizer state: the first partial_fit after fit
    # starts a fresh optimizer, whether the round was trained or read.
    X, y = cancer
    trained = own_classifier(target_sparsity=0.5, memory=tmp_path).fit(X, y)
    read = own_classifier(target_sparsity=0.5, memory=tmp_path).fit(X, y)
    assert read.rounds_[-1]["cached"]
    assert_same_weights(trained.partial_fit(X, y), read.partial_fit(X, y))


def test_the_cv_estimators_have_none():
    # Their folds and refit need all the rows at once.
    assert not hasattr(LotteryTicketClassifierCV(), "partial_fit")
    assert not hasattr(LotteryTicketRegressorCV(), "partial_fit")
    assert hasattr(LotteryTicketClassifier(), "partial_fit")


def test_the_input_scale_warning_names_the_caller(cancer):
    X, y = cancer
    X = X * np.array([1000.0] + [1.0] * (X.shape[1] - 1), dtype=np.float32)
    with pytest.warns(InputScaleWarning, match="differ by orders of magnitude") as record:
        default_classifier().partial_fit(X, y, classes=[0, 1])
    assert record[0].filename == __file__


def test_a_label_indicator_matrix_streams_with_its_label_indices():
    X, Y = make_multilabel_classification(n_samples=80, n_features=6, n_classes=3,
                                          random_state=0)
    est = LotteryTicketClassifier(random_state=0).set_params(
        net__module__hidden_units=(8,), net__max_epochs=2)
    with pytest.raises(ValueError, match=r"label indices \[0, 1, 2\]; got classes=\[0, 1\]"):
        est.partial_fit(X, Y, classes=[0, 1])
    est.partial_fit(X[:40], Y[:40], classes=[0, 1, 2]).partial_fit(X[40:], Y[40:])
    assert est.predict(X).shape == Y.shape
    assert est.rounds_[0]["epochs"] == 2
