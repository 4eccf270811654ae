"""``python -m randla demo``: a short tour of randla's sketches next to numpy/scipy.

Sketches one tall matrix with every operator of :mod:`randla.sketch`, and
prints for each the wall time and the distortion of the embedding, next to
what a numpy/scipy user would write instead. About a minute at full size
(200,000 x 200); ``quick=True`` (``--quick``) runs a 50,000 x 100 matrix in a
few seconds. Imports only numpy, scipy and randla.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Optional

import numpy as np
import scipy
import scipy.linalg

from . import _core, sketch
from ._threads import get_num_threads, num_threads

__all__ = ["run"]

_SEED = 42
_HEAVY_ROWS = 10
_HEAVY_SCALE = 1000.0


def _fmt_time(t: Optional[float]) -> str:
    if t is None:
        return "-"
    if t >= 1:
        return f"{t:6.2f} s"
    if t >= 1e-3:
        return f"{t * 1e3:6.1f} ms"
    return f"{t * 1e6:6.0f} us"


def _timed(fn: Callable[[], Any]) -> tuple[Optional[float], Any, Optional[str]]:
    """(seconds, result, error message): never raises."""
    t0 = time.perf_counter()
    try:
        out = fn()
    except Exception as exc:  # noqa: BLE001 - a demo reports and goes on
        msg = str(exc).splitlines()[0] if str(exc) else ""
        return None, None, f"{type(exc).__name__}: {msg}"[:70]
    return time.perf_counter() - t0, out, None


def _distortion(Y: Any, chol: np.ndarray) -> Optional[float]:
    """``max_i |sigma_i(S Q) - 1|`` for a sketch ``Y = S A``, with ``A^T A = L L^T``.

    ``S Q = S A R^{-1}`` and ``R^T R = L L^T``, so the singular values of
    ``S Q`` are those of ``Y L^{-T}``: no QR of the big ``A`` is needed.
    """
    try:
        if hasattr(Y, "toarray"):
            Y = Y.toarray()
        Z = scipy.linalg.solve_triangular(chol, np.asarray(Y, dtype=np.float64).T, lower=True)
        sigma = np.sqrt(np.maximum(np.linalg.eigvalsh(Z @ Z.T), 0.0))
        return float(np.max(np.abs(sigma - 1.0)))
    except Exception:  # noqa: BLE001
        return None


def _cwt(A: np.ndarray, k: int, seed: int) -> Any:
    try:
        return scipy.linalg.clarkson_woodruff_transform(A, k, rng=seed)
    except TypeError:  # scipy < 1.15 names it seed
        return scipy.linalg.clarkson_woodruff_transform(A, k, seed=seed)


def run(quick: bool = False) -> None:
    """Run the tour and print it; ``quick`` uses a smaller matrix (a few seconds)."""
    n, d, k = (50_000, 100, 400) if quick else (200_000, 200, 800)
    rng = np.random.default_rng(_SEED)
    line = "=" * 78

    print(line)
    print(f"randla {_core.__version__} demo: sketching, S @ A with a random k x n operator S")
    print(line)
    print(
        f"numpy {np.__version__}, scipy {scipy.__version__}, "
        f"randla threads: {get_num_threads()}{'  (quick mode)' if quick else ''}"
    )
    print()

    # --- the matrix -------------------------------------------------------
    t0 = time.perf_counter()
    A = rng.standard_normal((n, d))
    heavy = rng.choice(n, size=_HEAVY_ROWS, replace=False)
    A[heavy] *= _HEAVY_SCALE
    gram = A.T @ A
    chol = np.linalg.cholesky(gram)
    # Leverage score of row i: ||L^{-1} a_i||^2 (they sum to d).
    lev = (scipy.linalg.solve_triangular(chol, A.T, lower=True) ** 2).sum(axis=0)
    setup_s = time.perf_counter() - t0
    print(
        f"A: {n:,} x {d} float64 ({A.nbytes / 2**20:.0f} MiB), Gaussian entries with "
        f"{_HEAVY_ROWS} rows scaled by {_HEAVY_SCALE:g}."
    )
    print(
        f"   Those rows carry {lev[heavy].sum():.1f} of the total leverage {d} (each one about "
        f"{lev[heavy].mean():.2f}):\n   a sketch that drops one of them loses a direction of A."
    )
    print(f"k = {k} sketch rows (4 d): every S @ A below is {k} x {d}.   (set-up {setup_s:.1f} s)")
    print()
    print("Score: the distortion eps of the embedding, the smallest number such that")
    print("    (1 - eps) ||A x||  <=  ||S A x||  <=  (1 + eps) ||A x||    for every x,")
    print("i.e. max |sigma - 1| over the singular values sigma of S Q (Q: orthonormal basis")
    print(
        f"of range(A)). Smaller is better. A Gaussian S gives about sqrt(d/k) = "
        f"{math.sqrt(d / k):.2f} here;"
    )
    print("eps near 1 means some direction of A was (almost) lost; above 1, over-weighted.")
    print()

    # Start randla's thread pool outside the timings.
    try:
        sketch.gaussian(8, 256, rng=0) @ np.ones((256, 8))
    except Exception:  # noqa: BLE001
        pass

    gen = np.random.default_rng(_SEED + 1)
    rows: list[tuple[str, str, Optional[float], Any, Optional[str], str]] = []

    def add(label: str, code: str, fn: Callable[[], Any], ref: str) -> None:
        secs, out, err = _timed(fn)
        rows.append((label, code, secs, out, err, ref))

    add(
        "numpy Gaussian",
        "rng.standard_normal((k, n)) @ A / sqrt(k)",
        lambda: (gen.standard_normal((k, n)) @ A) / math.sqrt(k),
        "numpy",
    )
    add(
        "scipy CountSketch",
        "scipy.linalg.clarkson_woodruff_transform(A, k)",
        lambda: _cwt(A, k, _SEED),
        "scipy",
    )
    ops: list[tuple[str, str, Callable[[], Any], str]] = [
        ("gaussian", "rl.sketch.gaussian(k, n) @ A",
         lambda: sketch.gaussian(k, n, rng=_SEED) @ A, "numpy"),
        ("rademacher", "rl.sketch.rademacher(k, n) @ A",
         lambda: sketch.rademacher(k, n, rng=_SEED) @ A, "numpy"),
        ("srht", "rl.sketch.srht(k, n) @ A",
         lambda: sketch.srht(k, n, rng=_SEED) @ A, "numpy"),
        ("countsketch", "rl.sketch.countsketch(k, n) @ A",
         lambda: sketch.countsketch(k, n, rng=_SEED) @ A, "scipy"),
        ("sparse_sign", "rl.sketch.sparse_sign(k, n, nnz_per_col=8) @ A",
         lambda: sketch.sparse_sign(k, n, nnz_per_col=8, rng=_SEED) @ A, "scipy"),
        ("sparse_rp", "rl.sketch.sparse_rp(k, n) @ A  (density 1/sqrt(n))",
         lambda: sketch.sparse_rp(k, n, rng=_SEED) @ A, "scipy"),
        ("row_sampling", "rl.sketch.row_sampling(k, n) @ A  (uniform)",
         lambda: sketch.row_sampling(k, n, rng=_SEED) @ A, "scipy"),
        ("row_sampling, p=lev", "rl.sketch.row_sampling(k, n, p=leverage) @ A",
         lambda: sketch.row_sampling(k, n, p=lev, rng=_SEED) @ A, "scipy"),
    ]  # fmt: skip
    for label, code, fn, ref in ops:
        add("randla " + label, code, fn, ref)

    ref_time = {label.split()[0]: secs for label, _, secs, _, _, _ in rows[:2]}
    name_w = max(len(r[0]) for r in rows)
    print(f"  {'sketch':<{name_w}}  {'time':>9}  {'speed-up':>19}  {'eps':>5}")
    print(f"  {'-' * name_w}  {'-' * 9}  {'-' * 19}  {'-' * 5}")
    for label, code, secs, out, err, ref in rows:
        if err is not None:
            print(f"  {label:<{name_w}}  FAILED: {err}")
            print(f"  {'':<{name_w}}    {code}")
            continue
        base = ref_time.get(ref)
        if label.startswith(ref) or base is None or secs is None or secs <= 0:
            speed = "(reference)" if label.startswith(ref) else "-"
        else:
            r = base / secs
            r_s = f"{r:.0f}" if r >= 10 else f"{r:.1f}" if r >= 1 else f"{r:.2f}"
            speed = f"{r_s}x vs {'numpy' if ref == 'numpy' else 'scipy'}"
        eps = _distortion(out, chol)
        eps_s = "n/a" if eps is None else f"{eps:5.2f}"
        print(f"  {label:<{name_w}}  {_fmt_time(secs):>9}  {speed:>19}  {eps_s:>5}")
        print(f"  {'':<{name_w}}    {code}")
    print()
    collide = 1.0 - math.prod(1.0 - i / k for i in range(_HEAVY_ROWS))
    p_heavy = lev[heavy] / lev.sum()
    lev_miss = 1.0 - float(np.prod(1.0 - (1.0 - p_heavy) ** k))
    print("Reading the table:")
    print("  * Dense operators (gaussian, rademacher, srht) are compared with numpy's Gaussian")
    print("    sketch, sparse ones with scipy's CountSketch; randla never forms S in memory.")
    print("  * Gaussian, Rademacher and SRHT spread every row of A over all k output rows:")
    print("    heavy rows or not, eps stays near sqrt(d/k).")
    print("  * CountSketch sends each row of A to one random output row. Two heavy rows that")
    print("    land in the same one merge and a direction is lost (eps near 1); with")
    print(f"    {_HEAVY_ROWS} heavy rows and k = {k} that happens with probability {collide:.0%}. "
          "In general")  # fmt: skip
    print("    CountSketch needs k ~ d^2 rows; sparse_sign spreads each row over 8 output")
    print("    rows instead.")
    print("  * Uniform row sampling and very sparse projections (sparse_rp) can miss a heavy")
    print("    row (eps near 1), or sample one and over-weight it by sqrt(n/k) (eps >> 1).")
    print("    Sampling by leverage scores (p=lev; computed from A^T A, not timed) weights")
    print(f"    every row right, but draws a heavy row only about k/d = {k / d:.0f} times: it")
    print(f"    misses one of the {_HEAVY_ROWS} with probability {lev_miss:.0%} here, and needs "
          "k ~ d log d rows")  # fmt: skip
    print("    for a small eps.")
    print()

    # --- reproducibility ---------------------------------------------------
    print("Reproducibility: every entry of S is a pure function of (seed, position), so the")
    print("same seed gives bitwise identical sketches whatever the thread count:")
    m = min(n, 20_000)
    try:
        B = A[:m]
        with num_threads(1):
            one = sketch.sparse_sign(k, m, rng=7) @ B
        many = sketch.sparse_sign(k, m, rng=7) @ B
        again = sketch.sparse_sign(k, m, rng=7) @ B
        other = sketch.sparse_sign(k, m, rng=8) @ B
        print(f"  sparse_sign(rng=7) @ A[:{m}] with 1 thread == with {get_num_threads()} threads: "
              f"{np.array_equal(one, many)}")  # fmt: skip
        differs = not np.array_equal(many, other)
        print(f"  the same call twice: {np.array_equal(many, again)};   "
              f"rng=8 instead of 7 gives a different sketch: {differs}")  # fmt: skip
    except Exception as exc:  # noqa: BLE001
        print(f"  check failed: {type(exc).__name__}: {exc}")
    print()
    print("Try it:")
    print("  import randla as rl")
    print("  S = rl.sketch.srht(800, A.shape[0], rng=0)   # lazy: stores a key, not a matrix")
    print("  SA = S @ A              # same as rl.sketch.apply(A, 800, method='srht', rng=0)")
    print("  benches/compare.py runs the benchmark workloads against numpy/scipy.")
