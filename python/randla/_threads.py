"""Thread control: every kernel runs on one Rust thread pool."""

from __future__ import annotations

import contextlib
import numbers
import os
import warnings
from collections.abc import Iterator

from . import _core

__all__ = ["get_num_threads", "num_threads", "set_num_threads"]


def _check(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if int(n) < 1:
        raise ValueError(f"n must be >= 1, got {int(n)}")
    return int(n)


def set_num_threads(n: int) -> None:
    """Set the number of threads randla's kernels use.

    Parameters
    ----------
    n : int
        Number of threads, >= 1.

    Examples
    --------
    >>> import randla as rl
    >>> rl.set_num_threads(1)
    >>> rl.get_num_threads()
    1
    """
    _core.set_num_threads(_check(n))


def get_num_threads() -> int:
    """Return the number of threads randla's kernels use.

    Examples
    --------
    >>> import randla as rl
    >>> rl.get_num_threads() >= 1
    True
    """
    return int(_core.get_num_threads())


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[None]:
    """Context manager that runs its body with ``n`` threads, then restores the previous count.

    Examples
    --------
    >>> import randla as rl
    >>> with rl.num_threads(1):
    ...     rl.get_num_threads()
    1
    """
    previous = get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(previous)


def _init_from_environment() -> None:
    value = os.environ.get("RANDLA_NUM_THREADS")
    if not value:
        return
    try:
        set_num_threads(int(value))
    except (TypeError, ValueError):
        warnings.warn(
            f"ignoring RANDLA_NUM_THREADS={value!r}: expected an integer >= 1",
            RuntimeWarning,
            stacklevel=3,
        )
