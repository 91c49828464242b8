"""What a search reports as it goes: a progress bar when asked, a log record always.

Every trained round is logged at INFO on the ``skticket`` logger (configure
it with :mod:`logging` as for any library); ``verbose >= 1`` also shows one
tqdm bar over the rounds, on stderr (``tqdm.auto``, so it renders in
notebooks too), whose postfix is the round just trained. Nothing here is
kept on an estimator after ``fit``.
"""

from __future__ import annotations

import logging
import sys
from types import TracebackType

logger = logging.getLogger("skticket")

__all__ = ["RoundProgress", "logger"]


def describe(record: dict) -> str:
    """One line about a trained round, from its record."""
    parts = [f"round {record['round']}: sparsity {record['sparsity']:.4f}",
             f"{record['n_active']} weights active"]
    if record["train_loss"] is not None:
        parts.append(f"train loss {record['train_loss']:.4g}")
    if record["valid_score"] is not None:
        parts.append(f"valid score {record['valid_score']:.4f}")
    parts.append(f"{record['seconds']:.2f} s" + (" (from memory)" if record["cached"] else ""))
    return ", ".join(parts)


class RoundProgress:
    """One bar over the rounds of a fit or of a curve, and a log record per round.

    Parameters
    ----------
    verbose : int
        0: log records only; 1 and more: the bar too.
    total : int or None
        Rounds expected (``None``: unknown).
    desc : str
        The bar's label, also the start of each log record.
    """

    def __init__(self, verbose: int, total: int | None, desc: str) -> None:
        self.desc = desc
        self.bar = None
        if verbose >= 1:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="round", file=sys.stderr,
                            dynamic_ncols=True)

    def __enter__(self) -> RoundProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.bar is not None:
            self.bar.close()

    def set_total(self, total: int | None) -> None:
        if self.bar is not None and total is not None:
            self.bar.total = total
            self.bar.refresh()

    def round_done(self, record: dict) -> None:
        """One more round done, described by its ``record``."""
        logger.info("%s %s", self.desc, describe(record))
        if self.bar is None:
            return
        postfix = {"sparsity": f"{record['sparsity']:.3f}"}
        if record["train_loss"] is not None:
            postfix["loss"] = f"{record['train_loss']:.4g}"
        if record["valid_score"] is not None:
            postfix["valid"] = f"{record['valid_score']:.4f}"
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update()
