"""``show_config``: what this build of randla is and runs on."""

from __future__ import annotations

import platform

import numpy as np

from . import _core
from ._threads import get_num_threads

__all__ = ["backends", "show_config"]


def backends() -> list[str]:
    """Return the compute backends available in this build (``["cpu"]`` for now)."""
    return ["cpu"]


def show_config() -> None:
    """Print the version, the SIMD level in use, the thread count and the backends.

    Examples
    --------
    >>> import randla as rl
    >>> rl.show_config()  # doctest: +ELLIPSIS
    randla ...
    """
    import scipy

    lines = [
        f"randla {_core.__version__}",
        f"  SIMD level:   {_core.simd_level()}",
        f"  threads:      {get_num_threads()} (RANDLA_NUM_THREADS, rl.set_num_threads)",
        f"  backends:     {', '.join(backends())}",
        f"  python:       {platform.python_version()} ({platform.machine()})",
        f"  numpy, scipy: {np.__version__}, {scipy.__version__}",
    ]
    print("\n".join(lines))
