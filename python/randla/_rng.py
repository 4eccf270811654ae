"""The ``rng`` argument: from whatever the user passes to one 64-bit Philox key."""

from __future__ import annotations

import numbers
from typing import Union

import numpy as np

RNGLike = Union[None, int, np.integer, np.random.Generator, np.random.SeedSequence]

__all__ = ["RNGLike", "key_from_rng"]


def key_from_rng(rng: RNGLike) -> int:
    """Return the 64-bit key that drives every random draw of one call.

    ``None`` draws fresh OS entropy; an ``int`` seeds a ``numpy.random.SeedSequence``
    (so ``rng=5`` and ``rng=np.random.SeedSequence(5)`` give the same key); a
    ``Generator`` gives one 64-bit draw (advancing it); a ``SeedSequence`` gives its
    first 64-bit state word.
    """
    if rng is None:
        return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0])
    if isinstance(rng, np.random.SeedSequence):
        return int(rng.generate_state(1, dtype=np.uint64)[0])
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**64, dtype=np.uint64))
    if isinstance(rng, (bool, np.bool_)):
        raise TypeError("rng must be None, an int, a numpy Generator or a SeedSequence, not bool")
    if isinstance(rng, numbers.Integral):
        if int(rng) < 0:
            raise ValueError(f"rng seed must be non-negative, got {int(rng)}")
        return int(np.random.SeedSequence(int(rng)).generate_state(1, dtype=np.uint64)[0])
    raise TypeError(
        "rng must be None, an int, a numpy.random.Generator or a numpy.random.SeedSequence, "
        f"got {type(rng).__name__}"
    )
