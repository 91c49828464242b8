"""The winning ticket as plain data: masks and the state it trains from."""

from __future__ import annotations

import json
import math
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from ._pruning import n_active as _n_active

# A layer with at most this many survivors is printed weight by weight.
_LIST_AT_MOST = 10

# The metadata entry of a ticket file that holds its JSON header, and the
# versions of that header this code reads. A reader meeting a newer version
# refuses the file rather than guessing what new fields mean.
_HEADER_KEY = "skticket"
_FORMAT = "skticket.Ticket"
FORMAT_VERSION = 1

#: What a ticket's weights can be (its ``init``): the winning ticket's own start weights,
#: rewound, or those of a random baseline: fresh weights on the same mask, or fresh weights
#: on each layer's mask shuffled; or the rewound start's signs, each survivor at its layer's
#: initializer standard deviation (Zhou et al., 2019). The estimators' ``ticket_init``, a
#: given ticket's ``init`` and ``ticket_curve``'s ``tickets`` take these.
TICKET_KINDS = ("rewind", "reinit", "permute", "sign")


@dataclass(eq=False)
class Ticket:
    """A sparse subnetwork: which weights survive and the state it trains from.

    Plain data (numpy arrays, no torch hooks), so it pickles, compares by
    value, and saves to a file that loads without running any code
    (:meth:`save`, :meth:`load`).

    Attributes
    ----------
    masks : dict of str to bool ndarray
        Per pruned parameter (by its name in the module), ``True`` where the
        weight survives. Every name is also a key of ``weights``, with the
        same shape.
    weights : dict of str to ndarray
        The state the ticket trains from, by name: the rewound values (or
        fresh ones for the ``"reinit"`` and ``"permute"`` baselines; for a
        ``"sign"`` ticket, the rewound values' signs times each layer's
        initializer standard deviation), zero where masked. May hold entries
        without a mask (biases, norm layers, buffers), so that it is the whole
        start state of the module.
    round : int
        The pruning round that produced the mask (0 = dense).
    init : str, default="rewind"
        What the weights are: ``"rewind"``, ``"reinit"``, ``"permute"`` or
        ``"sign"`` (saved and loaded with the ticket).

    Notes
    -----
    ``n_active``, ``n_prunable``, ``sparsity`` and ``layer_sparsity()`` count
    the masked parameters only. Two tickets are equal (``==``) when their
    round, init, and masks and weights (names, dtypes, shapes and values) are;
    tickets are mutable and so not hashable.

    Examples
    --------
    >>> import numpy as np
    >>> from skticket import Ticket
    >>> t = Ticket(masks={"w": np.array([[True, False], [False, False]])},
    ...            weights={"w": np.array([[0.5, 0.0], [0.0, 0.0]]),
    ...                     "b": np.array([0.1, -0.1])}, round=3)
    >>> t.n_active, t.n_prunable, t.sparsity
    (1, 4, 0.75)
    >>> print(t)
    Ticket from round 3 (rewind): 1 of 4 weights active (sparsity 75.00%)
      w (2, 2): 1 of 4 active
        [0,0]: 0.5
    """

    masks: dict[str, np.ndarray]
    weights: dict[str, np.ndarray]
    round: int
    init: str = "rewind"

    def __post_init__(self) -> None:
        unweighted = [name for name in self.masks if name not in self.weights]
        if unweighted:
            raise ValueError(f"Ticket masks name parameters that weights lacks: {unweighted}.")
        for name, mask in self.masks.items():
            if np.asarray(mask).dtype != np.bool_:
                raise ValueError(
                    f"Ticket mask of {name!r} must be a bool array, got dtype "
                    f"{np.asarray(mask).dtype}."
                )
            if mask.shape != self.weights[name].shape:
                raise ValueError(
                    f"Ticket mask and weights of {name!r} differ in shape: "
                    f"{mask.shape} vs {self.weights[name].shape}."
                )

    @property
    def n_active(self) -> int:
        """Number of surviving (unmasked) weights."""
        return _n_active(self.masks)

    @property
    def n_prunable(self) -> int:
        """Number of weights the masks cover."""
        return int(sum(m.size for m in self.masks.values()))

    @property
    def sparsity(self) -> float:
        """Share of the prunable weights that are masked out."""
        return 0.0 if self.n_prunable == 0 else 1.0 - self.n_active / self.n_prunable

    def layer_sparsity(self) -> dict[str, float]:
        """Sparsity of each pruned parameter, by name.

        Returns
        -------
        dict of str to float
            Plain Python floats, in the order of ``masks``.

        Examples
        --------
        >>> import numpy as np
        >>> from skticket import Ticket
        >>> mask = np.array([True, False, False, False])
        >>> Ticket(masks={"w": mask}, weights={"w": mask * 1.0}, round=1).layer_sparsity()
        {'w': 0.75}
        """
        return {name: float(1.0 - np.count_nonzero(m) / m.size) if m.size else 0.0
                for name, m in self.masks.items()}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Ticket):
            return NotImplemented
        return (self.round == other.round and self.init == other.init
                and _same_arrays(self.masks, other.masks)
                and _same_arrays(self.weights, other.weights))

    # The arrays are mutable, so a value-based hash could change under a set
    # or dict holding the ticket: tickets are unhashable, like dicts.
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Ticket(round={self.round}, init={self.init!r}, n_active={self.n_active}, "
            f"n_prunable={self.n_prunable}, sparsity={self.sparsity:.4f})"
        )

    def __str__(self) -> str:
        lines = [
            f"Ticket from round {self.round} ({self.init}): {self.n_active} of "
            f"{self.n_prunable} weights active (sparsity {100 * self.sparsity:.2f}%)"
        ]
        for name, mask in self.masks.items():
            kept = int(np.count_nonzero(mask))
            lines.append(f"  {name} {tuple(mask.shape)}: {kept} of {mask.size} active")
            if kept <= _LIST_AT_MOST:
                for index in zip(*np.nonzero(mask), strict=True):
                    where = ",".join(str(int(i)) for i in index)
                    lines.append(f"    [{where}]: {float(self.weights[name][index]):.6g}")
        return "\n".join(lines)

    # --- files ------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the ticket to a safetensors file.

        The file holds every array of ``weights`` and ``masks`` (masks as
        bool) and, in its metadata, a JSON header: format version, package
        version, round, init, sparsity, and each array's name, shape and
        dtype and whether it has a mask. Reading it back runs no code
        (:meth:`load`), so ticket files can be shared. The file is written
        to a temporary name first and then renamed, so a crash never leaves
        a half-written ticket under ``path``.

        Parameters
        ----------
        path : str or os.PathLike
            Where to write; an existing file is replaced.

        Raises
        ------
        ValueError
            If the ticket is one :meth:`load` would refuse (a non-finite
            weight, a masked weight that is not zero, a ``round`` that is not
            a non-negative integer).

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> from skticket import Ticket
        >>> t = Ticket(masks={"w": np.array([True, False])},
        ...            weights={"w": np.array([0.5, 0.0], dtype=np.float32),
        ...                     "b": np.array([0.1], dtype=np.float32)}, round=2)
        >>> path = os.path.join(tempfile.mkdtemp(), "ticket.safetensors")
        >>> t.save(path)
        >>> Ticket.load(path) == t
        True
        """
        header = _header(self)
        _check_header_values(header)
        for entry in header["parameters"]:
            name = entry["name"]
            _check_array(name, self.weights[name], self.masks.get(name))
        # safetensors stores C-contiguous data (np.ascontiguousarray would turn a
        # 0-d buffer into shape (1,)).
        tensors = {f"weights/{name}": np.require(w, requirements="C")
                   for name, w in self.weights.items()}
        tensors.update({f"masks/{name}": np.require(m, requirements="C")
                        for name, m in self.masks.items()})
        path = Path(path)
        # A fresh name beside the target (so the rename stays on one file
        # system), created by save_file itself so it gets the usual permissions.
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            save_file(tensors, tmp, metadata={_HEADER_KEY: json.dumps(header)})
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike) -> Ticket:
        """Read a ticket written by :meth:`save`, checking everything it reads.

        Nothing is unpickled and no code runs: the file is parsed as
        safetensors (raw arrays and a JSON header). It is refused unless the
        header is one this version reads and agrees with the arrays (names,
        shapes, dtypes, sparsity), each mask is bool with its weights' shape,
        float weights are finite, and masked weights are zero.

        Parameters
        ----------
        path : str or os.PathLike
            A file written by :meth:`save`.

        Returns
        -------
        Ticket
            Equal (``==``) to the ticket that was saved, its arrays in the
            same order.

        Raises
        ------
        ValueError
            If the file is truncated, is not a ticket file, or fails any of
            the checks above; the message names the first problem found.
        FileNotFoundError
            If there is no file at ``path``.

        Examples
        --------
        >>> import os, tempfile
        >>> from skticket import Ticket
        >>> path = os.path.join(tempfile.mkdtemp(), "not-a-ticket")
        >>> with open(path, "wb") as f:
        ...     _ = f.write(b"\\x80\\x04 a pickle, say")
        >>> Ticket.load(path)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: '...' is not a ticket file: not a safetensors file, or a truncated one (...).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No ticket file at {str(path)!r}.")
        where = f"{str(path)!r}"
        try:
            with safe_open(path, framework="np") as f:
                metadata = f.metadata() or {}
                keys = list(f.keys())
                if _HEADER_KEY not in metadata:
                    raise ValueError(
                        f"{where} is not a ticket file: a safetensors file without the "
                        f"{_HEADER_KEY!r} metadata entry that Ticket.save writes."
                    )
                header = _parse_header(metadata[_HEADER_KEY], where)
                _check_keys(header, keys, where)
                weights, masks = {}, {}
                for entry in header["parameters"]:
                    name = entry["name"]
                    weights[name] = f.get_tensor(f"weights/{name}")
                    if entry["masked"]:
                        masks[name] = f.get_tensor(f"masks/{name}")
                    _check_entry(entry, weights[name], masks.get(name), where)
        except SafetensorError as exc:
            raise ValueError(
                f"{where} is not a ticket file: not a safetensors file, or a truncated one "
                f"({exc})."
            ) from None
        ticket = cls(masks=masks, weights=weights, round=header["round"], init=header["init"])
        if not math.isclose(ticket.sparsity, header["sparsity"], rel_tol=0, abs_tol=1e-12):
            raise ValueError(
                f"Ticket file {where}: header sparsity {header['sparsity']!r} disagrees with "
                f"its masks ({ticket.sparsity!r})."
            )
        return ticket


def _same_arrays(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    if a.keys() != b.keys():
        return False
    for name, x in a.items():
        x, y = np.asarray(x), np.asarray(b[name])
        if x.dtype != y.dtype or x.shape != y.shape:
            return False
        # NaN equals NaN here, so that a ticket always equals itself.
        if not np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"):
            return False
    return True


def _header(ticket: Ticket) -> dict:
    from . import __version__  # here: the package imports this module first

    return {
        "format": _FORMAT,
        "format_version": FORMAT_VERSION,
        "skticket_version": __version__,
        # numpy integers (a round index from an array) are written as ints.
        "round": int(ticket.round) if isinstance(ticket.round, np.integer) else ticket.round,
        "init": ticket.init,
        "sparsity": ticket.sparsity,
        "parameters": [
            {"name": name, "shape": list(np.shape(weight)), "dtype": np.asarray(weight).dtype.name,
             "masked": name in ticket.masks}
            for name, weight in ticket.weights.items()
        ],
    }


def _parse_header(text: str, where: str) -> dict:
    try:
        header = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"Ticket file {where}: its header is not valid JSON ({exc}).") from None
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise ValueError(f"{where} is not a ticket file: its header does not name the "
                         f"format {_FORMAT!r}.")
    version = header.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise ValueError(
            f"Ticket file {where} has format version {version!r}; this version of skticket "
            f"reads version {FORMAT_VERSION} only."
        )
    _check_header_values(header, where)
    return header


def _check_header_values(header: dict, where: str = "") -> None:
    prefix = f"Ticket file {where}: header" if where else "Ticket"
    if type(header.get("round")) is not int or header["round"] < 0:
        raise ValueError(f"{prefix} round must be a non-negative int, got {header.get('round')!r}.")
    if not isinstance(header.get("init"), str):
        raise ValueError(f"{prefix} init must be a string, got {header.get('init')!r}.")
    if header["init"] not in TICKET_KINDS:
        # What the weights are decides how a ticket is trained (check_ticket, ticket_init):
        # a name nothing knows would be trained as if it were another.
        raise ValueError(f"{prefix} init must be one of {list(TICKET_KINDS)}, got "
                         f"{header['init']!r}.")
    if not where:
        return
    sparsity = header.get("sparsity")
    if not isinstance(sparsity, float | int) or isinstance(sparsity, bool):
        raise ValueError(f"{prefix} sparsity must be a number, got {sparsity!r}.")
    parameters = header.get("parameters")
    if not isinstance(parameters, list):
        raise ValueError(f"{prefix} parameters must be a list, got {parameters!r}.")
    seen = set()
    for entry in parameters:
        ok = (isinstance(entry, dict) and isinstance(entry.get("name"), str)
              and isinstance(entry.get("shape"), list)
              and all(type(n) is int and n >= 0 for n in entry["shape"])
              and isinstance(entry.get("dtype"), str) and isinstance(entry.get("masked"), bool))
        if not ok:
            raise ValueError(f"{prefix} has a malformed parameter entry: {entry!r} (needs name, "
                             "shape, dtype, masked).")
        if entry["name"] in seen:
            raise ValueError(f"{prefix} lists parameter {entry['name']!r} twice.")
        seen.add(entry["name"])


def _check_keys(header: dict, keys: list[str], where: str) -> None:
    expected = []
    for entry in header["parameters"]:
        expected.append(f"weights/{entry['name']}")
        if entry["masked"]:
            expected.append(f"masks/{entry['name']}")
    present = set(keys)
    for key in expected:
        if key not in present:
            raise ValueError(f"Ticket file {where}: the header lists {key!r} but the file has "
                             "no such tensor.")
    extra = sorted(present - set(expected))
    if extra:
        raise ValueError(f"Ticket file {where} holds tensor {extra[0]!r}, which its header "
                         "does not list.")


def _check_entry(entry: dict, weight: np.ndarray, mask: np.ndarray | None, where: str) -> None:
    name = entry["name"]
    if weight.dtype.name != entry["dtype"]:
        raise ValueError(f"Ticket file {where}: weights of {name!r} are {weight.dtype.name}, "
                         f"the header says {entry['dtype']}.")
    if list(weight.shape) != entry["shape"]:
        raise ValueError(f"Ticket file {where}: weights of {name!r} have shape "
                         f"{tuple(weight.shape)}, the header says {tuple(entry['shape'])}.")
    _check_array(name, weight, mask, f"Ticket file {where}: ")


def _check_array(name: str, weight: np.ndarray, mask: np.ndarray | None, prefix: str = "") -> None:
    """What a ticket file may hold: the checks shared by save and load."""
    weight = np.asarray(weight)
    if weight.dtype.kind not in "biuf":
        raise ValueError(f"{prefix}weights of {name!r} must be float, integer or bool, got "
                         f"dtype {weight.dtype}.")
    if weight.dtype.kind == "f" and not np.isfinite(weight).all():
        raise ValueError(f"{prefix}weights of {name!r} are not all finite.")
    if mask is None:
        return
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise ValueError(f"{prefix}mask of {name!r} must be bool, got dtype {mask.dtype}.")
    if mask.shape != weight.shape:
        raise ValueError(f"{prefix}mask of {name!r} has shape {tuple(mask.shape)}, its weights "
                         f"{tuple(weight.shape)}.")
    if np.any(weight[~mask] != 0):
        raise ValueError(f"{prefix}weights of {name!r} are not zero where masked.")
