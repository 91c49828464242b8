"""Ticket: value semantics, and ticket files that load without running code."""

import json
import pickle

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import save_file

from skticket import LotteryTicketClassifier, Ticket
from skticket._ticket import FORMAT_VERSION


def make_ticket():
    """Every kind of entry a ticket may hold: masked float32 and float64
    weights, unmasked biases, integer and bool buffers (one 0-d, as
    BatchNorm's ``num_batches_tracked``), an empty array, a negative zero."""
    rng = np.random.default_rng(0)
    mask = rng.random((4, 3)) < 0.4
    w = np.where(mask, rng.standard_normal((4, 3)), 0).astype(np.float32)
    w[~mask] = -0.0
    mask2 = np.array([[True, False, True]])
    return Ticket(
        masks={"hidden_0.weight": mask, "output.weight": mask2},
        weights={
            "hidden_0.weight": w,
            "hidden_0.bias": rng.standard_normal(4).astype(np.float32),
            "output.weight": np.array([[0.25, 0.0, -1.5]]),
            "output.bias": np.zeros(1, dtype=np.float32),
            "norm.num_batches_tracked": np.array(7, dtype=np.int64),
            "norm.flags": np.array([True, False]),
            "empty": np.zeros((0, 3), dtype=np.float32),
        },
        round=4,
        init="reinit",
    )


def saved(ticket, tmp_path, name="t.safetensors"):
    path = tmp_path / name
    ticket.save(path)
    return path


def read_raw(path):
    """The tensors and the JSON header of a ticket file, as an editor sees them."""
    with safe_open(path, framework="np") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        header = json.loads(f.metadata()["skticket"])
    return tensors, header


def write_raw(path, tensors, header):
    save_file(tensors, path, metadata={"skticket": json.dumps(header)})
    return path


# --- value semantics ----------------------------------------------------------------


def test_equal_by_value_and_unhashable():
    a, b = make_ticket(), make_ticket()
    assert a is not b and a == b
    with pytest.raises(TypeError, match="unhashable"):
        hash(a)
    assert a != "not a ticket"


@pytest.mark.parametrize("change", ["mask", "weight", "bias", "dtype", "extra", "round", "init"])
def test_unequal_when_anything_differs(change):
    a, b = make_ticket(), make_ticket()
    if change == "mask":
        b.masks["output.weight"] = np.array([[True, True, True]])
    elif change == "weight":
        b.weights["hidden_0.weight"] = b.weights["hidden_0.weight"] * 2
    elif change == "bias":
        b.weights["hidden_0.bias"] = b.weights["hidden_0.bias"] + 1e-7
    elif change == "dtype":
        b.weights["output.weight"] = b.weights["output.weight"].astype(np.float32)
    elif change == "extra":
        b.weights["another.bias"] = np.zeros(2)
    elif change == "round":
        b.round = 5
    else:
        b.init = "rewind"
    assert a != b
    assert not a == b


def test_counts_cover_masked_parameters_only():
    t = make_ticket()
    assert t.n_prunable == 12 + 3
    assert t.n_active == int(t.masks["hidden_0.weight"].sum()) + 2
    sparsity = t.layer_sparsity()
    assert list(sparsity) == ["hidden_0.weight", "output.weight"]
    assert all(type(v) is float for v in sparsity.values())
    assert sparsity["output.weight"] == pytest.approx(1 / 3)
    assert type(t.sparsity) is float
    text = str(t)
    assert "output.weight (1, 3): 2 of 3 active" in text
    assert "bias" not in text and "num_batches_tracked" not in text


def test_constructor_checks_masks_against_weights():
    w = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"masks name parameters that weights lacks: \['v'\]"):
        Ticket(masks={"v": w == 0}, weights={"w": w}, round=1)
    with pytest.raises(ValueError, match="mask of 'w' must be a bool array, got dtype float64"):
        Ticket(masks={"w": np.ones((2, 2))}, weights={"w": w}, round=1)
    with pytest.raises(ValueError, match=r"differ in shape: \(2,\) vs \(2, 2\)"):
        Ticket(masks={"w": np.ones(2, dtype=bool)}, weights={"w": w}, round=1)


# --- save and load -------------------------------------------------------------------


def test_save_load_round_trips_exactly(tmp_path):
    ticket = make_ticket()
    loaded = Ticket.load(saved(ticket, tmp_path))
    assert loaded == ticket
    assert list(loaded.weights) == list(ticket.weights)
    assert list(loaded.masks) == list(ticket.masks)
    for name, value in ticket.weights.items():
        assert loaded.weights[name].dtype == value.dtype
        assert loaded.weights[name].shape == value.shape
        # Bit for bit, negative zeros included.
        assert loaded.weights[name].tobytes() == np.ascontiguousarray(value).tobytes()
    assert all(m.dtype == np.bool_ for m in loaded.masks.values())
    assert type(loaded.round) is int and loaded.init == "reinit"
    # Loaded arrays are the ticket's own: a net can train from them in place.
    loaded.weights["hidden_0.bias"][0] = 1.0


def test_header_records_what_the_file_holds(tmp_path):
    ticket = make_ticket()
    tensors, header = read_raw(saved(ticket, tmp_path))
    assert header["format_version"] == FORMAT_VERSION
    assert header["skticket_version"] == __import__("skticket").__version__
    assert header["round"] == 4 and header["init"] == "reinit"
    assert header["sparsity"] == ticket.sparsity
    entries = {e["name"]: e for e in header["parameters"]}
    assert list(entries) == list(ticket.weights)
    assert entries["hidden_0.weight"] == {"name": "hidden_0.weight", "shape": [4, 3],
                                          "dtype": "float32", "masked": True}
    assert entries["hidden_0.bias"]["masked"] is False
    assert entries["norm.num_batches_tracked"]["shape"] == []
    assert tensors["masks/output.weight"].dtype == np.bool_
    assert "masks/hidden_0.bias" not in tensors


def test_fitted_winning_ticket_round_trips(tmp_path):
    X = np.random.default_rng(0).standard_normal((60, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    clf = LotteryTicketClassifier(prune_fraction=0.5, max_rounds=1, random_state=0).fit(X, y)
    path = saved(clf.winning_ticket_, tmp_path)
    assert Ticket.load(path) == clf.winning_ticket_


def test_save_replaces_and_leaves_no_temporary_file(tmp_path):
    path = saved(make_ticket(), tmp_path)
    other = make_ticket()
    other.round = 9
    other.save(path)
    assert Ticket.load(path).round == 9
    assert [p.name for p in tmp_path.iterdir()] == ["t.safetensors"]


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.weights["hidden_0.bias"].__setitem__(0, np.nan),
     "'hidden_0.bias' are not all finite"),
    (lambda t: t.weights["output.weight"].__setitem__((0, 1), 2.0),
     "'output.weight' are not zero where masked"),
    (lambda t: setattr(t, "round", -1), "round must be a non-negative int"),
])
def test_save_refuses_a_ticket_load_would_refuse(tmp_path, edit, message):
    ticket = make_ticket()
    edit(ticket)
    with pytest.raises(ValueError, match=message):
        ticket.save(tmp_path / "t.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_load_never_unpickles(tmp_path, monkeypatch):
    path = saved(make_ticket(), tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("Ticket.load must not unpickle")

    for target, name in [(pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"),
                         (torch, "load"), (np, "load")]:
        monkeypatch.setattr(target, name, refuse)
    assert Ticket.load(path) == make_ticket()


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="No ticket file"):
        Ticket.load(tmp_path / "nothing.safetensors")


@pytest.mark.parametrize("keep", [0, 7, 100, -1])
def test_truncated_file_is_refused(tmp_path, keep):
    data = saved(make_ticket(), tmp_path).read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[:keep] if keep >= 0 else data[:-1])
    with pytest.raises(ValueError, match="is not a ticket file: not a safetensors file, or a "
                                         "truncated one"):
        Ticket.load(cut)


def test_other_files_are_refused(tmp_path):
    pickled = tmp_path / "model.pkl"
    pickled.write_bytes(pickle.dumps({"weights": np.zeros(3)}))
    with pytest.raises(ValueError, match="not a safetensors file"):
        Ticket.load(pickled)
    plain = tmp_path / "plain.safetensors"
    save_file({"w": np.zeros(3, dtype=np.float32)}, plain)
    with pytest.raises(ValueError, match="not a ticket file: a safetensors file without the "
                                         "'skticket' metadata entry"):
        Ticket.load(plain)
    save_file({"w": np.zeros(3, dtype=np.float32)}, plain, metadata={"skticket": "{oops"})
    with pytest.raises(ValueError, match="header is not valid JSON"):
        Ticket.load(plain)


def _set_entry(header, name, **changes):
    for entry in header["parameters"]:
        if entry["name"] == name:
            entry.update(changes)


def _edit_mask_dtype(tensors, header):
    tensors["masks/output.weight"] = tensors["masks/output.weight"].astype(np.uint8)


def _edit_mask_shape(tensors, header):
    tensors["masks/output.weight"] = np.ones((3, 1), dtype=bool)


def _edit_unmask(tensors, header):
    tensors["masks/output.weight"][0, 0] = False
    tensors["weights/output.weight"][0, 0] = 0.0  # now the header's sparsity is wrong


def _edit_nonzero_masked(tensors, header):
    tensors["weights/output.weight"][0, 1] = 0.5


def _edit_nan(tensors, header):
    tensors["weights/hidden_0.weight"][0, 0] = np.nan


def _edit_inf_bias(tensors, header):
    tensors["weights/output.bias"][0] = np.inf


def _edit_header_shape(tensors, header):
    _set_entry(header, "hidden_0.bias", shape=[5])


def _edit_header_dtype(tensors, header):
    _set_entry(header, "output.weight", dtype="float32")


def _edit_drop_tensor(tensors, header):
    del tensors["masks/hidden_0.weight"]


def _edit_extra_tensor(tensors, header):
    tensors["weights/smuggled"] = np.zeros(2, dtype=np.float32)


def _edit_unlisted_mask(tensors, header):
    tensors["masks/hidden_0.bias"] = np.ones(4, dtype=bool)


def _edit_version(tensors, header):
    header["format_version"] = FORMAT_VERSION + 1


def _edit_format(tensors, header):
    header["format"] = "something.else"


def _edit_round(tensors, header):
    header["round"] = "4"


def _edit_init_unknown(tensors, header):
    header["init"] = "shuffled"


def _edit_init(tensors, header):
    header["init"] = None


def _edit_duplicate(tensors, header):
    header["parameters"].append(dict(header["parameters"][0]))


def _edit_entry(tensors, header):
    del header["parameters"][0]["masked"]


def _edit_sparsity(tensors, header):
    header["sparsity"] = 0.5


@pytest.mark.parametrize(("edit", "message"), [
    (_edit_mask_dtype, "mask of 'output.weight' must be bool, got dtype uint8"),
    (_edit_mask_shape, r"mask of 'output.weight' has shape \(3, 1\), its weights \(1, 3\)"),
    (_edit_unmask, "header sparsity .* disagrees with its masks"),
    (_edit_nonzero_masked, "weights of 'output.weight' are not zero where masked"),
    (_edit_nan, "weights of 'hidden_0.weight' are not all finite"),
    (_edit_inf_bias, "weights of 'output.bias' are not all finite"),
    (_edit_header_shape, r"weights of 'hidden_0.bias' have shape \(4,\), the header says \(5,\)"),
    (_edit_header_dtype, "weights of 'output.weight' are float64, the header says float32"),
    (_edit_drop_tensor, "header lists 'masks/hidden_0.weight' but the file has no such tensor"),
    (_edit_extra_tensor, "holds tensor 'weights/smuggled', which its header does not list"),
    (_edit_unlisted_mask, "holds tensor 'masks/hidden_0.bias', which its header does not list"),
    (_edit_version, f"format version {FORMAT_VERSION + 1}; this version of skticket reads "
                    f"version {FORMAT_VERSION} only"),
    (_edit_format, "not a ticket file: its header does not name the format"),
    (_edit_round, "header round must be a non-negative int, got '4'"),
    (_edit_init, "header init must be a string"),
    (_edit_init_unknown, r"header init must be one of \['rewind', 'reinit', 'permute', 'sign'\], "
                         "got 'shuffled'"),
    (_edit_duplicate, "lists parameter 'hidden_0.weight' twice"),
    (_edit_entry, "malformed parameter entry"),
    (_edit_sparsity, "header sparsity 0.5 disagrees with its masks"),
])
def test_edited_file_is_refused_naming_the_problem(tmp_path, edit, message):
    tensors, header = read_raw(saved(make_ticket(), tmp_path))
    tensors = {k: v.copy() for k, v in tensors.items()}
    edit(tensors, header)
    path = write_raw(tmp_path / "edited.safetensors", tensors, header)
    with pytest.raises(ValueError, match=message) as info:
        Ticket.load(path)
    assert "edited.safetensors" in str(info.value)


def test_unedited_rewrite_still_loads(tmp_path):
    # The editing helpers themselves change nothing: what they refuse is the edit.
    tensors, header = read_raw(saved(make_ticket(), tmp_path))
    path = write_raw(tmp_path / "same.safetensors", tensors, header)
    assert Ticket.load(path) == make_ticket()
