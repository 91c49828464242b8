"""The whole search on a CUDA GPU: ``NeuralNetClassifier(..., device="cuda")``.

Skipped where torch sees no CUDA device. (Loading a CUDA-trained pickle on a
machine without a GPU is tested in test_pickle.py.)
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier

from skticket import MLP, LotteryTicketClassifier
from skticket._rng import preserved_torch_rng, seeded
from skticket._training import ApplyMasks

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA GPU (torch.cuda.is_available() is False)")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32)[:600], y[:600]


def cuda_net(**kwargs) -> NeuralNetClassifier:
    return NeuralNetClassifier(MLP, module__hidden_units=(48, 48), max_epochs=3, lr=0.01,
                               batch_size=128, optimizer=torch.optim.Adam,
                               iterator_train__shuffle=True, train_split=None, verbose=0,
                               device="cuda", **kwargs)


def cuda_classifier(**kwargs) -> LotteryTicketClassifier:
    params = dict(prune_fraction=0.6, target_sparsity=0.9, random_state=0) | kwargs
    return LotteryTicketClassifier(cuda_net(), **params)


@pytest.fixture(scope="module")
def fitted(digits):
    return cuda_classifier().fit(*digits)


def test_the_trained_ticket_lives_on_the_gpu_and_its_masks_hold(fitted):
    ticket = fitted.winning_ticket_
    assert ticket.sparsity == pytest.approx(0.9, abs=0.01)
    params = dict(fitted.net_.module_.named_parameters())
    for name, mask in ticket.masks.items():
        assert params[name].is_cuda
        pruned = params[name].detach()[torch.as_tensor(~mask, device=params[name].device)]
        assert torch.count_nonzero(pruned) == 0, name


def test_apply_masks_keeps_the_masks_beside_their_parameters(digits):
    X, y = digits
    sizes = dict(n_features=X.shape[1], n_outputs=10, hidden_units=(48, 48))
    rng = np.random.default_rng(0)
    masks = {name: rng.random(tuple(param.shape)) > 0.5
             for name, param in MLP(**sizes).named_parameters() if name.endswith("weight")}
    net = cuda_net(module__n_features=sizes["n_features"], module__n_outputs=10,
                   callbacks=[("masks", ApplyMasks(masks))]).fit(X, y)
    callback = dict(net.callbacks_)["masks"]
    # Each step's multiply is then one GPU op, with no transfer.
    assert len(callback.pairs_) == len(masks)
    assert all(param.is_cuda and mask.device == param.device and mask.dtype == param.dtype
               for param, mask in callback.pairs_)
    params = dict(net.module_.named_parameters())
    for name, mask in masks.items():
        weight = params[name].detach().cpu().numpy()
        assert np.all(weight[~mask] == 0), name


def test_identical_seeds_find_identical_masks(digits, fitted):
    again = cuda_classifier().fit(*digits)
    first, second = fitted.winning_ticket_.masks, again.winning_ticket_.masks
    assert first.keys() == second.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
    np.testing.assert_array_equal(again.predict(digits[0]), fitted.predict(digits[0]))


def test_fit_and_predict_leave_the_global_cuda_random_state_as_found(digits):
    X, y = digits
    torch.cuda.manual_seed_all(123)
    cuda_states, cpu_state = torch.cuda.get_rng_state_all(), torch.get_rng_state()
    clf = cuda_classifier(max_rounds=1).fit(X, y)
    clf.predict_proba(X)
    assert all(torch.equal(a, b) for a, b in
               zip(torch.cuda.get_rng_state_all(), cuda_states, strict=True))
    assert torch.equal(torch.get_rng_state(), cpu_state)


def test_seeded_sections_on_cuda_repeat_their_draws_and_restore_the_state():
    before = torch.cuda.get_rng_state()
    with seeded(7, "cuda"):
        first = torch.rand(5, device="cuda")
    with seeded(7, "cuda"):
        second = torch.rand(5, device="cuda")
    with preserved_torch_rng("cuda"):
        torch.rand(5, device="cuda")
    assert torch.equal(first, second)
    assert torch.equal(torch.cuda.get_rng_state(), before)


def test_compact_of_a_cuda_trained_estimator_predicts_as_it_does(fitted, digits):
    X, _ = digits
    small = fitted.compact()
    np.testing.assert_allclose(small.predict_proba(X), fitted.predict_proba(X),
                               rtol=0, atol=1e-5)
    np.testing.assert_array_equal(small.predict(X), fitted.predict(X))


def test_a_cuda_trained_estimator_pickles(fitted, digits):
    X, _ = digits
    restored = pickle.loads(pickle.dumps(fitted))
    assert next(restored.net_.module_.parameters()).is_cuda
    assert restored.winning_ticket_ == fitted.winning_ticket_
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    small = pickle.loads(pickle.dumps(fitted.compact()))
    np.testing.assert_allclose(small.predict_proba(X), fitted.predict_proba(X),
                               rtol=0, atol=1e-5)


@pytest.mark.parametrize("search", ["gradual", "sparse_momentum", "rigl"])
def test_one_training_searches_run_on_the_gpu_with_exact_masks(digits, search):
    X, y = digits
    est = cuda_classifier(search=search, net=cuda_net(max_epochs=6)).fit(X, y)
    ticket = est.winning_ticket_
    assert ticket.n_active == ticket.n_prunable - round(0.9 * ticket.n_prunable)
    params = dict(est.net_.module_.named_parameters())
    for name, mask in ticket.masks.items():
        assert params[name].device.type == "cuda"
        assert torch.all(params[name].detach().cpu()[~torch.as_tensor(mask)] == 0)
    assert all(u["n_active"] == ticket.n_active for u in est.rounds_[0]["mask_updates"]
               if search != "gradual")
