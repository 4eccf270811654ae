#!/usr/bin/env python
"""Side-by-side benchmark of randla against what a user would pick instead.

Runs the workloads of ``shared/BENCHMARKS.md`` (W1-W4 so far) in one process,
on the same data, and prints one table::

    workload | anchor | anchor s | randla s | ratio | target | floor ratio | accuracy

``ratio`` is anchor time / randla time (> 1: randla is faster); ``floor ratio``
is randla time / the physical floor of the workload (the GEMM alone for W1,
one read pass ``A.sum(axis=0)`` for W3), with the floor's own time beside it.
Each time is the best (default) or the median of ``--repeat`` runs; anchor,
randla and floor calls alternate within each round so that drift on a shared
machine hits them alike.

Usage::

    python benches/compare.py              # full sizes (a few minutes on 2 cores)
    python benches/compare.py --quick      # scaled-down sizes, well under 3 minutes
    python benches/compare.py --only W1,W3 --repeat 5 --stat median
    python benches/compare.py --markdown   # a Markdown table for the README

OpenBLAS: ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` (set on some machines
of this project to work around old OpenBLAS bugs) slow a current numpy down.
To compare with numpy as a user would get it, this script re-executes itself
with both removed from its own environment before numpy is imported (pass
``--keep-openblas-env`` to keep them) and prints the BLAS kernel numpy then
uses (via threadpoolctl, when installed).

Adding a workload: write a function ``f(ctx) -> list[Row]`` and decorate it
with ``@workload("W5", "short title")``; ``ctx.timeit`` does the interleaved
timing and ``ctx`` caches data shared between workloads.
"""

from __future__ import annotations

import os
import sys

_OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_REMOVED_ENV = "RANDLA_BENCH_REMOVED_OPENBLAS_ENV"

if (
    __name__ == "__main__"
    and "--keep-openblas-env" not in sys.argv
    and any(name in os.environ for name in _OPENBLAS_VARS)
):
    # Must happen before numpy (and so OpenBLAS) is loaded: re-exec without them.
    _removed = {name: os.environ.pop(name) for name in _OPENBLAS_VARS if name in os.environ}
    os.environ[_REMOVED_ENV] = " ".join(f"{k}={v}" for k, v in _removed.items())
    os.execv(sys.executable, [sys.executable, *sys.argv])

import argparse  # noqa: E402
import gc  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any, Callable, Optional  # noqa: E402

import numpy as np  # noqa: E402
import randla as rl  # noqa: E402
import scipy  # noqa: E402
import scipy.linalg  # noqa: E402
import scipy.sparse as sp  # noqa: E402

SEED = 20240601

# --------------------------------------------------------------------------
# rows and the registry
# --------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table. Times in seconds; ``None`` where not measured."""

    workload: str
    anchor: str
    anchor_s: Optional[float]
    randla_s: Optional[float]
    target: str
    min_ratio: Optional[float] = None  # the target on anchor_s / randla_s, if any
    floor_s: Optional[float] = None
    floor_name: str = ""
    max_floor_ratio: Optional[float] = None  # the target on randla_s / floor_s, if any
    accuracy: str = ""
    error: Optional[str] = None  # randla failed: shown in place of its time

    @property
    def ratio(self) -> Optional[float]:
        if self.anchor_s is None or self.randla_s is None or self.randla_s <= 0:
            return None
        return self.anchor_s / self.randla_s

    @property
    def floor_ratio(self) -> Optional[float]:
        if self.floor_s is None or self.randla_s is None or self.floor_s <= 0:
            return None
        return self.randla_s / self.floor_s

    def misses(self) -> list[str]:
        out = []
        if self.error:
            out.append(f"randla failed: {self.error}")
        r = self.ratio
        if r is not None and self.min_ratio is not None and r < self.min_ratio:
            out.append(f"ratio {r:.2f}x < target {self.min_ratio:g}x")
        f = self.floor_ratio
        if f is not None and self.max_floor_ratio is not None and f > self.max_floor_ratio:
            out.append(f"floor ratio {f:.2f}x > target {self.max_floor_ratio:g}x")
        return out


WorkloadFn = Callable[["Context"], "list[Row]"]
WORKLOADS: dict[str, tuple[str, WorkloadFn]] = {}


def workload(wid: str, title: str) -> Callable[[WorkloadFn], WorkloadFn]:
    """Register ``fn(ctx) -> list[Row]`` under the id ``wid`` (``--only`` uses it)."""

    def deco(fn: WorkloadFn) -> WorkloadFn:
        WORKLOADS[wid.upper()] = (title, fn)
        return fn

    return deco


# --------------------------------------------------------------------------
# timing, memory, accuracy helpers
# --------------------------------------------------------------------------


def _proc_status_kb(field: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as fh:
            m = re.search(rf"^{field}:\s+(\d+)\s+kB", fh.read(), re.MULTILINE)
        return int(m.group(1)) if m else None
    except OSError:
        return None


def _reset_peak_rss() -> bool:
    """Reset VmHWM (Linux >= 4.0: write 5 to clear_refs); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class Context:
    """Options, timing and the data shared between workloads."""

    def __init__(self, quick: bool, repeat: int, stat: str) -> None:
        self.quick = quick
        self.repeat = repeat
        self.stat = stat
        self.cache: dict[str, Any] = {}

    def timeit(
        self, fns: dict[str, Callable[[], Any]], peak: tuple[str, ...] = ()
    ) -> tuple[dict[str, Optional[float]], dict[str, Any], dict[str, Optional[float]]]:
        """Time each callable ``self.repeat`` times, round-robin.

        Returns (times, last results, peak extra RSS in MB for the names in
        ``peak``, measured on their first run). A callable that raises is
        dropped from later rounds; its result is the exception and its time None.
        """
        samples: dict[str, list[float]] = {name: [] for name in fns}
        results: dict[str, Any] = {}
        peaks: dict[str, Optional[float]] = {name: None for name in peak}
        failed: set[str] = set()
        for rnd in range(self.repeat):
            for name, fn in fns.items():
                if name in failed:
                    continue
                results.pop(name, None)  # free the previous result before the next run
                gc.collect()
                time.sleep(
                    0.25
                )  # let the last call's spinning pool threads (OpenBLAS: ~0.1-0.2 s here) go idle
                measure = rnd == 0 and name in peak and _reset_peak_rss()
                rss0 = _proc_status_kb("VmRSS") if measure else None
                t0 = time.perf_counter()
                try:
                    res = fn()
                except Exception as exc:  # noqa: BLE001 - reported in the table
                    failed.add(name)
                    results[name] = exc
                    if os.environ.get("RANDLA_BENCH_TRACEBACK"):
                        traceback.print_exc()
                    continue
                samples[name].append(time.perf_counter() - t0)
                if measure and rss0 is not None:
                    hwm = _proc_status_kb("VmHWM")
                    if hwm is not None:
                        peaks[name] = max(0, hwm - rss0) / 1024
                results[name] = res
        agg = min if self.stat == "min" else statistics.median
        times = {name: (agg(s) if s else None) for name, s in samples.items()}
        return times, results, peaks

    # ---- shared data ------------------------------------------------------

    def dense_sizes(self) -> tuple[int, int, int]:
        """(n, d, k) of W1-W3: A is n x d, sketches have k rows."""
        return (50_000, 100, 400) if self.quick else (200_000, 200, 800)

    def dense_A(self) -> np.ndarray:
        if "A" not in self.cache:
            n, d, _ = self.dense_sizes()
            A = np.random.default_rng(SEED).standard_normal((n, d))
            self.cache["A"] = A
            self.cache["A_chol"] = np.linalg.cholesky(A.T @ A)
        return self.cache["A"]

    def sparse_X(self) -> sp.csr_matrix:
        """W4: CSR m x n with exactly nnz/m nonzeros in every row, at random distinct columns."""
        if "X" not in self.cache:
            m, n, nnz, _ = self.sparse_sizes()
            per_row = nnz // m
            rng = np.random.default_rng(SEED + 4)
            # sorted draws from [0, n - per_row] plus 0..per_row-1: distinct, increasing columns
            cols = np.sort(rng.integers(0, n - per_row + 1, size=(m, per_row)), axis=1)
            cols += np.arange(per_row)
            indices = cols.astype(np.int32).ravel()
            indptr = np.arange(0, m * per_row + 1, per_row, dtype=np.int32)
            data = rng.standard_normal(m * per_row)
            X = sp.csr_matrix((data, indices, indptr), shape=(m, n))
            self.cache["X"] = X
            gram = (X.T @ X).toarray()
            self.cache["X_chol"] = np.linalg.cholesky(gram)
        return self.cache["X"]

    def sparse_sizes(self) -> tuple[int, int, int, int]:
        """(m, n, nnz, k) of W4."""
        return (
            (200_000, 500, 2_000_000, 2000) if self.quick else (1_000_000, 1000, 10_000_000, 4000)
        )


def distortion(Y: Any, chol: np.ndarray, scale: float = 1.0) -> float:
    """Subspace-embedding distortion of a sketch ``Y = S A``.

    With ``A = Q R`` and ``A^T A = L L^T``, the singular values of ``S Q`` are
    those of ``Y L^{-T}``; returns ``eps = max_i |sigma_i(S Q) - 1|``, so that
    ``(1 - eps) ||A x|| <= ||S A x|| <= (1 + eps) ||A x||`` for every ``x``
    (0: an isometry on range(A)). ``scale`` multiplies ``Y`` first (1/sqrt(k)
    for an unscaled Gaussian anchor).
    """
    if sp.issparse(Y):
        Y = Y.toarray()
    Y = np.asarray(Y, dtype=np.float64) * scale
    Z = scipy.linalg.solve_triangular(chol, Y.T, lower=True)  # L^{-1} Y^T
    sigma = np.sqrt(np.maximum(np.linalg.eigvalsh(Z @ Z.T), 0.0))
    return float(np.max(np.abs(sigma - 1.0)))


def exactness(make: Callable[[int, int], Any], sparse_input: bool = False) -> str:
    """Check ``S @ A == S.to_dense() @ A`` on a small case; returns a short string."""
    try:
        n, d, k = 3000, 7, 64
        rng = np.random.default_rng(SEED + 99)
        if sparse_input:
            A: Any = sp.random(n, d, density=0.1, format="csr", random_state=rng)
            dense = A.toarray()
        else:
            A = dense = rng.standard_normal((n, d))
        S = make(k, n)
        got = np.asarray(S @ A)
        want = S.to_dense() @ dense
        err = float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300))
        mark = "ok" if err <= 1e-12 else "MISMATCH"
        return f"S@A vs to_dense {err:.0e} {mark}"
    except Exception as exc:  # noqa: BLE001
        return f"S@A vs to_dense: {type(exc).__name__}"


def _err(exc: Any) -> Optional[str]:
    if isinstance(exc, BaseException):
        msg = str(exc).splitlines()[0] if str(exc) else ""
        return f"{type(exc).__name__}: {msg}"[:120]
    return None


def _eps(res: Any, chol: np.ndarray, scale: float = 1.0) -> str:
    if res is None or isinstance(res, BaseException):
        return "n/a"
    try:
        return f"{distortion(res, chol, scale):.2f}"
    except Exception as exc:  # noqa: BLE001
        return f"({type(exc).__name__})"


def cwt(A: Any, k: int, seed: int) -> Any:
    """scipy.linalg.clarkson_woodruff_transform (``rng=`` since scipy 1.15, ``seed=`` before)."""
    try:
        return scipy.linalg.clarkson_woodruff_transform(A, k, rng=seed)
    except TypeError:
        return scipy.linalg.clarkson_woodruff_transform(A, k, seed=seed)


# --------------------------------------------------------------------------
# workloads
# --------------------------------------------------------------------------


def _gaussian_anchor(ctx: Context) -> Callable[[], np.ndarray]:
    A = ctx.dense_A()
    n, _, k = ctx.dense_sizes()
    gen = np.random.default_rng(SEED + 1)
    return lambda: gen.standard_normal((k, n)) @ A


@workload("W1", "Gaussian sketch of a dense tall matrix")
def w1_gaussian(ctx: Context) -> list[Row]:
    A = ctx.dense_A()
    n, d, k = ctx.dense_sizes()
    S0 = np.random.default_rng(SEED + 2).standard_normal((k, n))  # premade S for the floor
    times, res, peaks = ctx.timeit(
        {
            "anchor": _gaussian_anchor(ctx),
            "randla": lambda: rl.sketch.gaussian(k, n, rng=SEED) @ A,
            "floor": lambda: S0 @ A,
        },
        peak=("randla",),
    )
    ctx.cache["W1_anchor"] = (times["anchor"], res["anchor"])
    chol = ctx.cache["A_chol"]
    acc = [
        f"eps {_eps(res['randla'], chol)} (anchor {_eps(res['anchor'], chol, 1 / math.sqrt(k))})",
        exactness(lambda kk, nn: rl.sketch.gaussian(kk, nn, rng=SEED)),
    ]
    pk = peaks.get("randla")
    if pk is not None:
        kn_mb = k * n * 8 / 2**20
        acc.append(f"peak +{pk:.0f} MB ({'ok' if pk < kn_mb / 4 else 'HOLDS'} vs S {kn_mb:.0f} MB)")
    return [
        Row(
            workload=f"W1 gaussian {n}x{d} k={k}",
            anchor="numpy `rng.standard_normal((k,n)) @ A`",
            anchor_s=times["anchor"],
            randla_s=times["randla"],
            target=">=2x; <=1.3x floor; no (k,n) in memory",
            min_ratio=2.0,
            floor_s=times["floor"],
            floor_name="GEMM with premade S",
            max_floor_ratio=1.3,
            accuracy="; ".join(acc),
            error=_err(res.get("randla")),
        )
    ]


@workload("W2", "SRHT sketch of the same matrix")
def w2_srht(ctx: Context) -> list[Row]:
    A = ctx.dense_A()
    n, d, k = ctx.dense_sizes()
    fns: dict[str, Callable[[], Any]] = {"randla": lambda: rl.sketch.srht(k, n, rng=SEED) @ A}
    if "W1_anchor" not in ctx.cache:  # --only W2: measure W1's anchor here
        fns = {"anchor": _gaussian_anchor(ctx), **fns}
    times, res, _ = ctx.timeit(fns)
    if "anchor" in times:
        ctx.cache["W1_anchor"] = (times["anchor"], res["anchor"])
    anchor_s, anchor_res = ctx.cache["W1_anchor"]
    chol = ctx.cache["A_chol"]
    acc = [
        f"eps {_eps(res['randla'], chol)} (anchor {_eps(anchor_res, chol, 1 / math.sqrt(k))})",
        exactness(lambda kk, nn: rl.sketch.srht(kk, nn, rng=SEED)),
    ]
    return [
        Row(
            workload=f"W2 srht {n}x{d} k={k}",
            anchor="W1's anchor (numpy Gaussian)",
            anchor_s=anchor_s,
            randla_s=times["randla"],
            target=">=10x",
            min_ratio=10.0,
            accuracy="; ".join(acc),
            error=_err(res.get("randla")),
        )
    ]


@workload("W3", "CountSketch and sparse_sign(8) of the same matrix")
def w3_sparse_dense(ctx: Context) -> list[Row]:
    # k is W1's k (4d): the same sketch size for every operator on A, so the
    # accuracy column compares like with like. CountSketch needs k ~ d^2 for a
    # guaranteed embedding, so its distortion at k = 4d is visibly larger.
    A = ctx.dense_A()
    n, d, k = ctx.dense_sizes()
    times, res, _ = ctx.timeit(
        {
            "anchor": lambda: cwt(A, k, SEED + 3),
            "countsketch": lambda: rl.sketch.countsketch(k, n, rng=SEED) @ A,
            "sparse_sign": lambda: rl.sketch.sparse_sign(k, n, nnz_per_col=8, rng=SEED) @ A,
            "floor": lambda: A.sum(axis=0),
        }
    )
    chol = ctx.cache["A_chol"]
    anchor_eps = _eps(res["anchor"], chol)
    anchor = "scipy `clarkson_woodruff_transform(A, k)`"
    return [
        Row(
            workload=f"W3 countsketch {n}x{d} k={k}",
            anchor=anchor,
            anchor_s=times["anchor"],
            randla_s=times["countsketch"],
            target=">=1.5x; <=2x one read pass",
            min_ratio=1.5,
            floor_s=times["floor"],
            floor_name="A.sum(axis=0)",
            max_floor_ratio=2.0,
            accuracy=f"eps {_eps(res['countsketch'], chol)} (anchor {anchor_eps}); "
            + exactness(lambda kk, nn: rl.sketch.countsketch(kk, nn, rng=SEED)),
            error=_err(res.get("countsketch")),
        ),
        Row(
            workload=f"W3 sparse_sign(8) {n}x{d} k={k}",
            anchor=anchor,
            anchor_s=times["anchor"],
            randla_s=times["sparse_sign"],
            target="none (context)",
            floor_s=times["floor"],
            floor_name="A.sum(axis=0)",
            accuracy=f"eps {_eps(res['sparse_sign'], chol)} (anchor {anchor_eps}); "
            + exactness(lambda kk, nn: rl.sketch.sparse_sign(kk, nn, rng=SEED)),
            error=_err(res.get("sparse_sign")),
        ),
    ]


@workload("W4", "CountSketch of a sparse CSR matrix")
def w4_sparse_csr(ctx: Context) -> list[Row]:
    X = ctx.sparse_X()
    m, n, nnz, k = ctx.sparse_sizes()
    times, res, _ = ctx.timeit(
        {
            "anchor": lambda: cwt(X, k, SEED + 3),
            "randla": lambda: rl.sketch.countsketch(k, m, rng=SEED) @ X,
        }
    )
    chol = ctx.cache["X_chol"]
    acc = f"eps {_eps(res.get('randla'), chol)} (anchor {_eps(res['anchor'], chol)}); " + exactness(
        lambda kk, nn: rl.sketch.countsketch(kk, nn, rng=SEED), sparse_input=True
    )
    return [
        Row(
            workload=f"W4 countsketch CSR {m}x{n} nnz={nnz:.0e} k={k}",
            anchor="scipy `clarkson_woodruff_transform(X, k)`",
            anchor_s=times["anchor"],
            randla_s=times["randla"],
            target=">=5x",
            min_ratio=5.0,
            accuracy=acc,
            error=_err(res.get("randla")),
        )
    ]


def poisson2d(k: int) -> Any:
    """5-point Laplacian on a k x k grid, CSR with int32 indices."""
    t = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(k, k))
    eye = sp.identity(k)
    return (sp.kron(t, eye) + sp.kron(eye, t)).tocsr()


def read_bandwidth(ctx: Context) -> float:
    """Bytes per second of one read pass over 512 MB on two threads (numpy sums release the GIL)."""
    if "read_bw" not in ctx.cache:
        from concurrent.futures import ThreadPoolExecutor

        data = np.ones(2**26)
        halves = np.array_split(data, 2)
        best = np.inf
        with ThreadPoolExecutor(2) as pool:
            for _ in range(3):
                t0 = time.perf_counter()
                list(pool.map(np.sum, halves))
                best = min(best, time.perf_counter() - t0)
        ctx.cache["read_bw"] = data.nbytes / best
    return float(ctx.cache["read_bw"])


def _stored_matrix_bytes(A: Any) -> int:
    """The bytes of A as randla's products read it: a canonical CSR matrix with
    at most 32 diagonals (and at most 1.5x as many slots as entries) is
    multiplied by diagonals, as f32 when every value is exact in f32; any other
    one from its CSR arrays."""
    A = A.tocsr()
    csr = A.data.nbytes + A.indices.nbytes + A.indptr.nbytes
    rows = np.repeat(np.arange(A.shape[0]), np.diff(A.indptr))
    offsets = np.unique(A.indices.astype(np.int64) - rows)
    n_rows, n_cols = A.shape
    slots = sum(max(0, min(n_cols - o, n_rows) - max(-o, 0)) for o in offsets)
    if len(offsets) > 32 or 2 * slots > 3 * A.nnz or not A.has_canonical_format:
        return int(csr)
    width = 4 if np.array_equal(A.data.astype(np.float32).astype(A.data.dtype), A.data) else 8
    return int(len(offsets) * n_rows * width)


def _cg_bytes_per_iteration(A: Any, m: int) -> int:
    """What one randla CG iteration must move: A once (as stored, see
    `_stored_matrix_bytes`), and the fused vector passes (product + dot: p
    read, q written; residual: r, q read, r written; direction with the x
    update: r, p, x read, p, x written) = 10 vectors of n x m float64."""
    return int(_stored_matrix_bytes(A) + 10 * 8 * A.shape[0] * m)


def _scipy_cg_count(A: Any, b: np.ndarray, rtol: float) -> tuple[np.ndarray, int]:
    import scipy.sparse.linalg as spla

    count = [0]

    def tick(_: Any) -> None:
        count[0] += 1

    x, _ = spla.cg(A, b, rtol=rtol, atol=0.0, callback=tick, maxiter=10 * A.shape[0])
    return x, count[0]


def _once(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _cg_row(ctx: Context, wid: str, k: int, target: float, floor_target: Optional[float]) -> Row:
    A = poisson2d(k)
    n = A.shape[0]
    b = np.random.default_rng(SEED).standard_normal(n)
    rtol = 1e-8
    anchor_s, (x_ref, anchor_iters) = _once(lambda: _scipy_cg_count(A, b, rtol))
    runs = "single run"
    if anchor_s < 2.0:
        # Short solves: best of ctx.repeat round-robin runs, as the other rows.
        times, results, _ = ctx.timeit(
            {
                "anchor": lambda: _scipy_cg_count(A, b, rtol),
                "randla": lambda: rl.krylov.cg(A, b, rtol=rtol),
            }
        )
        anchor_s, randla_s, res = times["anchor"], times["randla"], results["randla"]
        runs = f"{ctx.stat} of {ctx.repeat} runs"
    else:
        randla_s, res = _once(lambda: rl.krylov.cg(A, b, rtol=rtol))
    # The bandwidth floor, shown for both sizes: at 40000 unknowns the matrix
    # (2.4 MB) and vectors already exceed this machine's per-core L2.
    per_it = _cg_bytes_per_iteration(A, 1)
    floor_s = res.iterations * per_it / read_bandwidth(ctx)
    floor_name = f"{per_it / 1e6:.1f} MB/it at {read_bandwidth(ctx) / 1e9:.1f} GB/s"
    resid = np.linalg.norm(b - A @ res.x) / np.linalg.norm(b)
    diff = np.linalg.norm(res.x - x_ref) / np.linalg.norm(x_ref)
    return Row(
        workload=f"{wid} cg 2-D Poisson {k}x{k} (n={n}) rtol 1e-8",
        anchor="scipy `cg`",
        anchor_s=anchor_s,
        randla_s=randla_s,
        target=f">={target:g}x" + (f"; <={floor_target:g}x floor" if floor_target else ""),
        min_ratio=target,
        floor_s=floor_s,
        floor_name=floor_name,
        max_floor_ratio=floor_target,
        accuracy=(
            f"iterations {res.iterations} vs scipy {anchor_iters} "
            f"({100 * (res.iterations - anchor_iters) / anchor_iters:+.1f}%); "
            f"rel. residual {resid:.1e}; |x - x_scipy|/|x| {diff:.1e}; {runs}"
        ),
    )


def _w5_problem(ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """W5: A = Q diag(logspace(0, -6)) V^T (cond 1e6), b = A x + 1e-6 noise."""
    n, d = (50_000, 100) if ctx.quick else (200_000, 200)
    rng = np.random.default_rng(SEED + 5)
    Q, _ = np.linalg.qr(rng.standard_normal((n, d)))
    V, _ = np.linalg.qr(rng.standard_normal((d, d)))
    A = (Q * np.logspace(0, -6, d)) @ V.T
    b = A @ rng.standard_normal(d) + 1e-6 * rng.standard_normal(n)
    return np.ascontiguousarray(A), b


@workload("W5", "lstsq on a tall ill-conditioned dense problem")
def w5_lstsq(ctx: Context) -> list[Row]:
    import scipy.linalg as sla

    A, b = _w5_problem(ctx)
    n, d = A.shape
    times, results, _ = ctx.timeit(
        {
            "numpy": lambda: np.linalg.lstsq(A, b, rcond=None)[0],
            "gelsy": lambda: sla.lstsq(A, b, lapack_driver="gelsy")[0],
            "randla": lambda: rl.lstsq(A, b, rng=SEED),
        }
    )
    res = results["randla"]
    # The floor of sketch-and-precondition: one read of A for the sketch and
    # one per LSQR iteration (each reads A once for A v and A^T u together),
    # plus, when the sketch's R was refined by the Cholesky factor of the
    # preconditioned Gram matrix, the n d^2 flops of A^T A at the GEMM rate.
    passes = res.iterations + 1
    floor_s = passes * A.nbytes / read_bandwidth(ctx)
    floor_name = (
        f"{passes} reads of A ({A.nbytes / 1e6:.0f} MB) at {read_bandwidth(ctx) / 1e9:.1f} GB/s"
    )
    if res.preconditioner == "qr+cholesky":
        gram_flops = n * d * d
        floor_s += gram_flops / gemm_rate(ctx)
        floor_name += (
            f" + A^T A ({gram_flops / 1e9:.0f} GFLOP) at {gemm_rate(ctx) / 1e9:.0f} GFLOP/s"
        )
    rows = []
    for name, anchor, target in (
        ("numpy", "`numpy.linalg.lstsq` (gelsd)", 4.0),
        ("gelsy", '`scipy.linalg.lstsq(lapack_driver="gelsy")`', 3.0),
    ):
        ref = results[name]
        diff = np.linalg.norm(res.x - ref) / np.linalg.norm(ref)
        rows.append(
            Row(
                workload=f"W5 lstsq {n}x{d}, cond 1e6 vs {name}",
                anchor=anchor,
                anchor_s=times[name],
                randla_s=times["randla"],
                target=f">={target:g}x; x within 1e-8",
                min_ratio=target,
                floor_s=floor_s,
                floor_name=floor_name,
                accuracy=(
                    f"{res.method} ({res.preconditioner}), {res.iterations} LSQR iterations; "
                    f"|x - x_{name}|/|x| {diff:.1e} {'ok' if diff <= 1e-8 else 'MISS'}"
                ),
            )
        )
    return rows


@workload("W6", "randomized SVD of a noisy low-rank matrix")
def w6_svd(ctx: Context) -> list[Row]:
    try:
        from sklearn.utils.extmath import randomized_svd
    except ImportError:
        return [
            Row("W6 svd", "sklearn randomized_svd", None, None, ">=2x", error="sklearn missing")
        ]
    m, n, r, k = (3000, 1500, 100, 20) if ctx.quick else (10_000, 5_000, 300, 50)
    rng = np.random.default_rng(SEED + 6)
    A = rng.standard_normal((m, r)) @ rng.standard_normal((r, n)) / np.sqrt(r)
    A += 0.1 * rng.standard_normal((m, n))
    times, results, _ = ctx.timeit(
        {
            "sklearn": lambda: randomized_svd(A, k, random_state=SEED),
            "randla": lambda: rl.svd(A, k, rng=SEED),
        }
    )

    def residual(usv: tuple[np.ndarray, np.ndarray, np.ndarray]) -> float:
        U, s_, Vt = usv
        return float(np.linalg.norm(A - (U * s_) @ Vt))

    ours, theirs = residual(results["randla"]), residual(results["sklearn"])
    return [
        Row(
            workload=f"W6 svd {m}x{n} rank {r} + noise, k={k}",
            anchor="`sklearn.utils.extmath.randomized_svd` (defaults)",
            anchor_s=times["sklearn"],
            randla_s=times["randla"],
            target=">=2x; residual <= sklearn's",
            min_ratio=2.0,
            accuracy=(
                f"||A - U S Vt||_F {ours:.6g} vs sklearn {theirs:.6g} "
                f"{'ok' if ours <= theirs * (1 + 1e-6) else 'MISS'}"
            ),
        )
    ]


@workload("W7", "leverage scores of a tall dense matrix")
def w7_leverage(ctx: Context) -> list[Row]:
    n, d = (50_000, 100) if ctx.quick else (200_000, 200)
    rng = np.random.default_rng(SEED + 7)
    A = rng.standard_normal((n, d))
    A[:20] *= 100.0  # a few heavy rows: scores far from uniform

    def anchor() -> np.ndarray:
        return (np.linalg.qr(A)[0] ** 2).sum(axis=1)

    times, results, _ = ctx.timeit(
        {
            "numpy": anchor,
            "exact": lambda: rl.leverage_scores(A),
            "approx": lambda: rl.leverage_scores(A, method="approx", eps=0.5, rng=SEED),
        }
    )
    ref = results["numpy"]
    rows = []
    for name, target, bound in (("exact", 3.0, 1e-10), ("approx", 30.0, 0.5)):
        err = float(np.max(np.abs(results[name] / ref - 1)))
        rows.append(
            Row(
                workload=f"W7 leverage_scores {name} {n}x{d}",
                anchor="numpy `(np.linalg.qr(A)[0]**2).sum(1)`",
                anchor_s=times["numpy"],
                randla_s=times[name],
                target=f">={target:g}x; max rel err <= {bound:g}",
                min_ratio=target,
                accuracy=f"max rel err {err:.1e} {'ok' if err <= bound else 'MISS'}",
            )
        )
    return rows


def _numpy_lewis(A: np.ndarray, p: float, iterations: int) -> np.ndarray:
    """Cohen-Peng fixed point w <- (a_i^T (A^T W^{1-2/p} A)^{-1} a_i)^{p/2}, exact leverage."""
    w = np.ones(A.shape[0])
    for _ in range(iterations):
        B = A * (w ** (0.5 - 1.0 / p))[:, None]
        tau = (np.linalg.qr(B)[0] ** 2).sum(axis=1)
        w = (w ** (2.0 / p - 1.0) * tau) ** (p / 2.0)
    return w


@workload("W8", "l1 Lewis weights")
def w8_lewis(ctx: Context) -> list[Row]:
    n, d = (20_000, 20) if ctx.quick else (100_000, 50)
    rng = np.random.default_rng(SEED + 8)
    A = rng.standard_normal((n, d))
    A[:20] *= 100.0
    anchor_s, ref = _once(lambda: _numpy_lewis(A, 1.0, 30))
    times, results, _ = ctx.timeit({"randla": lambda: rl.lewis_weights(A, 1.0, method="exact")})
    err = float(np.max(np.abs(results["randla"] / ref - 1)))
    return [
        Row(
            workload=f"W8 lewis_weights p=1 exact {n}x{d}",
            anchor="numpy Cohen-Peng fixed point, exact leverage, 30 iterations",
            anchor_s=anchor_s,
            randla_s=times["randla"],
            target=">=20x; same weights to 1e-6",
            min_ratio=20.0,
            accuracy=f"max rel diff {err:.1e} {'ok' if err <= 1e-6 else 'MISS'}",
        )
    ]


# --------------------------------------------------------------------------
# DPPs (issue 5)
# --------------------------------------------------------------------------


def _dppy() -> Any:
    try:
        from dppy.finite_dpps import FiniteDPP
    except ImportError:
        return None
    return FiniteDPP


@workload("W9", "projection DPP")
def w9_projection_dpp(ctx: Context) -> list[Row]:
    FiniteDPP = _dppy()
    N, r = (2000, 50) if ctx.quick else (5000, 100)
    V = np.linalg.qr(np.random.default_rng(SEED + 9).standard_normal((N, r)))[0]
    many = 100
    if FiniteDPP is None:
        return [Row("W9 projection DPP", "DPPy", None, None, ">=30x", error="dppy missing")]
    dpp = FiniteDPP("correlation", projection=True, K_eig_dec=(np.ones(r), V))
    reps = 3

    def anchor() -> None:
        for i in range(reps):
            dpp.sample_exact(mode="GS", random_state=i)

    # The anchor is timed on its own: right after DPPy's numpy calls, OpenBLAS
    # threads keep spinning on both cores and would slow a millisecond call.
    anchor_times, _, _ = ctx.timeit({"dppy": anchor})
    time.sleep(0.5)
    times, results, _ = ctx.timeit(
        {
            "single": lambda: rl.dpp.sample_projection(V, rng=SEED),
            "batch": lambda: rl.dpp.sample_projection(V, n_samples=many, rng=SEED),
        }
    )
    times["dppy"] = anchor_times["dppy"]
    per = times["dppy"] / reps if times["dppy"] else None
    batch = times["batch"] / many if times["batch"] else None
    # Inclusion frequencies of the batch against diag(K): a cheap exactness check.
    freq = np.bincount(results["batch"].ravel(), minlength=N) / many
    z = float(np.max(np.abs(freq - (V**2).sum(1)) / np.sqrt((V**2).sum(1) / many + 1e-12)))
    acc = (
        f"sizes exactly r={r}; max z-score of inclusion freq vs diag(K) over {many} samples {z:.1f}"
    )
    return [
        Row(
            workload=f"W9 dpp.sample_projection N={N} r={r}, one sample per call",
            anchor="DPPy `sample_exact(mode='GS')`, per sample",
            anchor_s=per,
            randla_s=times["single"],
            target=">=30x per sample",
            min_ratio=30.0,
            accuracy=acc,
        ),
        Row(
            workload=f"W9 same, n_samples={many} per call (time per sample)",
            anchor="DPPy, per sample",
            anchor_s=per,
            randla_s=batch,
            target=">=30x per sample",
            min_ratio=30.0,
            accuracy=acc,
        ),
    ]


@workload("W10", "k-DPP from features")
def w10_kdpp(ctx: Context) -> list[Row]:
    FiniteDPP = _dppy()
    N, D, k = (2000, 100, 20) if ctx.quick else (5000, 200, 50)
    Phi = np.random.default_rng(SEED + 10).standard_normal((N, D))
    if FiniteDPP is None:
        return [Row("W10 k-DPP", "DPPy", None, None, ">=10x", error="dppy missing")]

    def anchor() -> Any:
        dpp = FiniteDPP("likelihood", L_gram_factor=Phi.T)
        return dpp.sample_exact_k_dpp(size=k, random_state=SEED)

    def floor() -> Any:
        w, W = np.linalg.eigh(Phi.T @ Phi)
        return Phi @ W[:, -k:]

    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # DPPy prints a line per construction
        times, results, _ = ctx.timeit(
            {
                "dppy": anchor,
                "randla": lambda: rl.dpp.sample(features=Phi, k=k, rng=SEED),
                "floor": floor,
            }
        )
    ok = len(set(results["randla"].tolist())) == k
    return [
        Row(
            workload=f"W10 dpp.sample(features=Phi {N}x{D}, k={k}), end to end",
            anchor="DPPy `FiniteDPP('likelihood', L_gram_factor=Phi.T).sample_exact_k_dpp`",
            anchor_s=times["dppy"],
            randla_s=times["randla"],
            target=">=10x",
            min_ratio=10.0,
            floor_s=times["floor"],
            floor_name="numpy Phi^T Phi, its eigh and Phi W_k (the dual eigendecomposition)",
            accuracy=f"{k} distinct indices: {'ok' if ok else 'MISS'}",
        )
    ]


# --------------------------------------------------------------------------
# matrix completion (issue 6)
# --------------------------------------------------------------------------


def _fancyimpute_softimpute() -> Any:
    """fancyimpute's SoftImpute, with its check_array calls adapted to scikit-learn >= 1.8.

    fancyimpute 0.7.0 passes ``force_all_finite`` to ``sklearn.utils.check_array``,
    which scikit-learn 1.8 renamed ``ensure_all_finite``; the wrapper translates it.
    """
    try:
        import fancyimpute.iterative_svd
        import fancyimpute.soft_impute
        import fancyimpute.solver
        from sklearn.utils import check_array
    except ImportError:
        return None

    def patched(X: Any, *args: Any, **kwargs: Any) -> Any:
        if "force_all_finite" in kwargs:
            kwargs["ensure_all_finite"] = kwargs.pop("force_all_finite")
        return check_array(X, *args, **kwargs)

    for mod in (fancyimpute.solver, fancyimpute.soft_impute, fancyimpute.iterative_svd):
        mod.check_array = patched  # type: ignore[attr-defined]
    return fancyimpute.soft_impute.SoftImpute


def _low_rank_observations(
    m: int, n: int, k: int, count: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Factors U (m, k), V (n, k) and ``count`` distinct observed positions with values."""
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((m, k))
    V = rng.standard_normal((n, k))
    flat = np.unique(rng.integers(0, m * n, int(count * 1.02)))[:count]
    rng.shuffle(flat)
    rows, cols = np.divmod(flat, n)
    vals = np.einsum("ij,ij->i", U[rows], V[cols])
    return U, V, rows, cols, vals


@workload("W11", "matrix completion against SoftImpute")
def w11_completion(ctx: Context) -> list[Row]:
    m, n, k, rate = (1500, 1000, 10, 0.08) if ctx.quick else (3000, 2000, 10, 0.05)
    U, V, rows, cols, vals = _low_rank_observations(m, n, k, int(rate * m * n), SEED + 11)
    X = sp.coo_matrix((vals, (rows, cols)), shape=(m, n))
    M = U @ V.T
    SoftImpute = _fancyimpute_softimpute()
    rows_out = []
    if SoftImpute is None:
        anchor_s, anchor_err = None, float("nan")
    else:
        dense = np.full((m, n), np.nan)
        dense[rows, cols] = vals
        anchor_s, filled = _once(lambda: SoftImpute(max_rank=k, verbose=False).fit_transform(dense))
        anchor_err = float(np.linalg.norm(filled - M) / np.linalg.norm(M))
    for solver in ("sketch", "exact"):
        times, results, _ = ctx.timeit(
            {"randla": lambda solver=solver: rl.complete(X, k, solver=solver, rng=SEED)}
        )
        res = results["randla"]
        err = float(np.linalg.norm(res.to_dense() - M) / np.linalg.norm(M))
        rows_out.append(
            Row(
                workload=f"W11 complete {m}x{n} rank {k}, {rate:.0%} observed, solver={solver}",
                anchor="fancyimpute `SoftImpute(max_rank=10)` (check_array adapted to sklearn 1.8)",
                anchor_s=anchor_s,
                randla_s=times["randla"],
                target=">=30x, rel. error <= 1e-6",
                min_ratio=30.0,
                accuracy=(
                    f"rel. error {err:.1e} {'ok' if err <= 1e-6 else 'MISS'} in {res.iterations} "
                    f"sweeps (SoftImpute {anchor_err:.1e}); anchor single run"
                ),
            )
        )
    return rows_out


@workload("W11K", "completion cost per sweep against the rank")
def w11k_slope(ctx: Context) -> list[Row]:
    """Per-sweep time of both solvers at k = 5, 10, 20, 40 and the slope of log t vs log k."""
    m, n, count = (4000, 3000, 600_000) if ctx.quick else (20_000, 10_000, 4_000_000)
    ks = [5, 10, 20, 40]
    per_sweep: dict[str, list[float]] = {"exact": [], "sketch": []}
    for k in ks:
        U, V, rows, cols, vals = _low_rank_observations(m, n, k, count, SEED + 110 + k)
        X = sp.coo_matrix((vals, (rows, cols)), shape=(m, n))
        for solver in ("exact", "sketch"):
            elapsed: list[float] = []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rl.ConvergenceWarning)
                rl.complete(
                    X,
                    k,
                    solver=solver,
                    maxiter=4,
                    tol=0.0,
                    rng=SEED,
                    callback=lambda info, e=elapsed: e.append(info.elapsed),
                )
            per_sweep[solver].append((elapsed[-1] - elapsed[0]) / (len(elapsed) - 1))
    rows_out = []
    for solver in ("exact", "sketch"):
        slope = float(np.polyfit(np.log(ks), np.log(per_sweep[solver]), 1)[0])
        timings = ", ".join(f"k={k}: {s:.3f}" for k, s in zip(ks, per_sweep[solver]))
        rows_out.append(
            Row(
                workload=f"W11 s/sweep vs k, {m}x{n}, {count:.0e} observed, solver={solver}",
                anchor="-",
                anchor_s=None,
                randla_s=per_sweep[solver][-1],
                target="sketch: linear in k",
                accuracy=f"s/sweep {timings}; slope of log t vs log k {slope:.2f}",
            )
        )
    return rows_out


@workload("W12", "large matrix completion")
def w12_completion_large(ctx: Context) -> list[Row]:
    m, n, k, count = (
        (20_000, 20_000, 10, 1_200_000) if ctx.quick else (100_000, 100_000, 10, 12_000_000)
    )
    U, V, rows, cols, vals = _low_rank_observations(m, n, k, count + count // 100, SEED + 12)
    held = slice(count, None)
    X = sp.coo_matrix((vals[:count], (rows[:count], cols[:count])), shape=(m, n))
    _reset_peak_rss()
    rss0 = _proc_status_kb("VmRSS")
    t, res = _once(lambda: rl.complete(X, k, solver="sketch", rng=SEED))
    hwm = _proc_status_kb("VmHWM")
    peak = f"{(hwm - rss0) / 1024:.0f} MB" if hwm is not None and rss0 is not None else "n/a"
    pred = res.predict(rows[held], cols[held])
    err = float(np.linalg.norm(pred - vals[held]) / np.linalg.norm(vals[held]))
    return [
        Row(
            workload=f"W12 complete {m}x{n} rank {k}, {count:.1e} observed, solver=sketch",
            anchor="none at this size in Python",
            anchor_s=None,
            randla_s=t,
            target="< 60 s, held-out rel. error <= 1e-4",
            accuracy=(
                f"held-out rel. error {err:.1e} {'ok' if err <= 1e-4 else 'MISS'} "
                f"on {vals[held].size} "
                f"entries, {res.iterations} sweeps, peak extra memory {peak}; "
                f"{'ok' if t < 60 else 'MISS'} under 60 s"
            ),
        )
    ]


# --------------------------------------------------------------------------
# structured products (issue 7)
# --------------------------------------------------------------------------


def gemm_rate(ctx: Context) -> float:
    """The machine's float64 GEMM rate (FLOP/s) from numpy, best of 3 (cached)."""
    if "gemm_rate" not in ctx.cache:
        rng = np.random.default_rng(SEED)
        a, b = rng.standard_normal((2048, 2048)), rng.standard_normal((2048, 512))
        best = min(_once(lambda: a @ b)[0] for _ in range(3))
        ctx.cache["gemm_rate"] = 2 * 2048 * 2048 * 512 / best
    return ctx.cache["gemm_rate"]


def _monarch_numpy(x: np.ndarray, w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """The paper's blockdiag_butterfly_multiply with numpy's batched matmul."""
    k, q, p = w1.shape
    nl, s, r = w2.shape
    batch = x.shape[0]
    out1 = np.matmul(x.reshape(batch, k, p).transpose(1, 0, 2), w1.transpose(0, 2, 1))
    out1 = out1.transpose(1, 0, 2).reshape(batch, r, nl).transpose(2, 0, 1)  # (l, batch, r)
    out2 = np.matmul(out1, w2.transpose(0, 2, 1))  # (l, batch, s)
    return out2.transpose(1, 2, 0).reshape(batch, s * nl)


def _monarch_einsum(x: np.ndarray, w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    k, q, p = w1.shape
    nl, s, r = w2.shape
    batch = x.shape[0]
    out1 = np.einsum("kqp,bkp->bkq", w1, x.reshape(batch, k, p)).reshape(batch, r, nl)
    return np.einsum("lsr,brl->bsl", w2, out1).reshape(batch, s * nl)


@workload("W13", "Monarch multiply")
def w13_monarch(ctx: Context) -> list[Row]:
    b = 32 if ctx.quick else 64
    n = b * b
    rng = np.random.default_rng(SEED + 13)
    w1, w2 = rng.standard_normal((b, b, b)), rng.standard_normal((b, b, b))
    X = rng.standard_normal((n, n))
    times, results, _ = ctx.timeit(
        {
            "matmul": lambda: _monarch_numpy(X, w1, w2),
            "einsum": lambda: _monarch_einsum(X, w1, w2),
            "randla": lambda: rl.monarch.multiply(X, w1, w2),
        }
    )
    ref = results["einsum"]
    err = float(np.max(np.abs(results["randla"] - ref)) / np.max(np.abs(ref)))
    err_mm = float(np.max(np.abs(results["matmul"] - ref)) / np.max(np.abs(ref)))
    flops = 2 * n * (w1.size + w2.size)
    floor_s = flops / gemm_rate(ctx)
    floor_name = f"{flops / 1e9:.1f} GFLOP at {gemm_rate(ctx) / 1e9:.0f} GFLOP/s"
    W = rl.monarch.Monarch(w1, w2).to_dense().T
    dense_s = min(_once(lambda: X @ W)[0] for _ in range(1 if not ctx.quick else 2))
    acc = f"max rel diff vs einsum {err:.1e} (batched matmul {err_mm:.1e})"
    return [
        Row(
            workload=f"W13 monarch.multiply n={n} ({b} blocks of {b}), X {n}x{n}",
            anchor="numpy batched `np.matmul` over the block stack",
            anchor_s=times["matmul"],
            randla_s=times["randla"],
            target=">=2.5x; <=1.5x floor",
            min_ratio=2.5,
            floor_s=floor_s,
            floor_name=floor_name,
            max_floor_ratio=1.5,
            accuracy=acc,
        ),
        Row(
            workload="W13 monarch.multiply, same",
            anchor="numpy `np.einsum`",
            anchor_s=times["einsum"],
            randla_s=times["randla"],
            target=">=10x",
            min_ratio=10.0,
            accuracy=acc,
        ),
        Row(
            workload="W13 (context) the same product as a dense GEMM",
            anchor="numpy `X @ W`, W dense",
            anchor_s=dense_s,
            randla_s=times["randla"],
            target="context",
        ),
    ]


def _monarch_project_numpy(M: np.ndarray, b: int) -> np.ndarray:
    """Per-block top singular pairs with numpy's batched SVD; returns the dense projection."""
    m, n = M.shape
    blocks = M.reshape(m // b, b, b, n // b).transpose(1, 2, 0, 3)  # (l, k, s, i)
    U, s, Vt = np.linalg.svd(blocks, full_matrices=False)
    top = s[..., 0, None, None] * U[..., :, :1] * Vt[..., :1, :]
    return top.transpose(2, 0, 1, 3).reshape(m, n)


@workload("W14", "Monarch projection")
def w14_monarch_project(ctx: Context) -> list[Row]:
    n = 1024 if ctx.quick else 4096
    b = int(np.sqrt(n))
    M = np.random.default_rng(SEED + 14).standard_normal((n, n))
    times, results, _ = ctx.timeit(
        {
            "anchor": lambda: _monarch_project_numpy(M, b),
            "randla": lambda: rl.monarch.project(M, nblocks=b),
        }
    )
    anchor_s, ref = times["anchor"], results["anchor"]
    ours = float(np.linalg.norm(M - results["randla"].to_dense()))
    theirs = float(np.linalg.norm(M - ref))
    rel = abs(ours - theirs) / theirs
    return [
        Row(
            workload=f"W14 monarch.project dense {n}x{n}, {b} blocks",
            anchor="numpy batched `np.linalg.svd` per block",
            anchor_s=anchor_s,
            randla_s=times["randla"],
            target=">=5x, same error",
            min_ratio=5.0,
            accuracy=(
                f"||M - P||_F {ours:.10g} vs numpy {theirs:.10g} "
                f"{'ok' if rel <= 1e-10 else 'MISS'}; {ctx.stat} of {ctx.repeat} runs"
            ),
        )
    ]


@workload("W15", "Householder apply")
def w15_householder(ctx: Context) -> list[Row]:
    from scipy.linalg import lapack

    n, k, c = (2048, 128, 1024) if ctx.quick else (4096, 256, 2048)
    rng = np.random.default_rng(SEED + 15)
    qr, tau, _, info = lapack.dgeqrf(rng.standard_normal((n, k)))
    C = rng.standard_normal((n, c))
    lwork = int(lapack.dormqr("L", "N", qr, tau, C, -1)[1][0])

    def anchor() -> np.ndarray:
        return lapack.dormqr("L", "N", qr, tau, C, lwork)[0]

    def ours() -> np.ndarray:
        return rl.householder.apply(*rl.householder.from_lapack(qr, tau), C)

    times, results, _ = ctx.timeit({"dormqr": anchor, "randla": ours})
    err = float(np.max(np.abs(results["randla"] - results["dormqr"])) / np.max(np.abs(C)))
    flops = 4 * n * k * c - 2 * k * k * c
    return [
        Row(
            workload=f"W15 householder.apply {k} reflectors of length {n} to C {n}x{c}",
            anchor="`scipy.linalg.lapack.dormqr`",
            anchor_s=times["dormqr"],
            randla_s=times["randla"],
            target=">=1.5x",
            min_ratio=1.5,
            floor_s=flops / gemm_rate(ctx),
            floor_name=f"{flops / 1e9:.1f} GFLOP at {gemm_rate(ctx) / 1e9:.0f} GFLOP/s",
            accuracy=f"max diff vs dormqr {err:.1e} (relative to max|C|); includes from_lapack",
        )
    ]


def _delta_rule_numpy(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, beta: np.ndarray, n_h: int
) -> tuple[np.ndarray, np.ndarray]:
    """The token-by-token recurrence, vectorized over batch and heads."""
    B, T, H, K = q.shape
    V = v.shape[-1]
    S = np.zeros((B, H, K, V))
    o = np.empty((B, T, H, V))
    for t in range(T):
        for j in range(n_h):
            i = t * n_h + j
            kt, vt = k[:, i], v[:, i]  # (B, H, K), (B, H, V)
            kS = np.matmul(kt[:, :, None, :], S)[:, :, 0, :]  # k^T S: (B, H, V)
            S += (beta[:, i, :, None] * kt)[..., :, None] * (vt - kS)[..., None, :]
        o[:, t] = np.matmul(q[:, t, :, None, :], S)[:, :, 0, :]
    return o, S


def _delta_rule_numpy_per_head(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, beta: np.ndarray, n_h: int
) -> tuple[np.ndarray, np.ndarray]:
    """The recurrence as API.md states it: per (batch, head), token by token."""
    B, T, H, K = q.shape
    V = v.shape[-1]
    S_all = np.zeros((B, H, K, V))
    o = np.empty((B, T, H, V))
    for b in range(B):
        for h in range(H):
            S = np.zeros((K, V))
            for t in range(T):
                for j in range(n_h):
                    i = t * n_h + j
                    kt = k[b, i, h]
                    S -= beta[b, i, h] * np.outer(kt, kt @ S - v[b, i, h])
                o[b, t, h] = q[b, t, h] @ S
            S_all[b, h] = S
    return o, S_all


@workload("W16", "delta rule (DeltaProduct)")
def w16_delta_rule(ctx: Context) -> list[Row]:
    B, T, H, K, n_h = (2, 512, 4, 64, 2) if ctx.quick else (2, 2048, 4, 64, 2)
    rng = np.random.default_rng(SEED + 16)
    q = rng.standard_normal((B, T, H, K))
    k = rng.standard_normal((B, T * n_h, H, K))
    k /= np.linalg.norm(k, axis=-1, keepdims=True)
    v = rng.standard_normal((B, T * n_h, H, K))
    beta = rng.uniform(0.0, 2.0, (B, T * n_h, H))
    anchor_s, (o_ref, s_ref) = _once(lambda: _delta_rule_numpy(q, k, v, beta, n_h))
    per_head_s, (o_ph, s_ph) = _once(lambda: _delta_rule_numpy_per_head(q, k, v, beta, n_h))
    times, results, _ = ctx.timeit(
        {"randla": lambda: rl.householder.delta_rule(q, k, v, beta, n_h=n_h)}
    )
    o, s = results["randla"]
    err = max(float(np.max(np.abs(o - o_ref))), float(np.max(np.abs(s - s_ref))))
    err_ph = max(float(np.max(np.abs(o - o_ph))), float(np.max(np.abs(s - s_ph))))
    # The recurrence's own multiply-adds: per sub-step the update and the
    # next key's product (K V each), per token the output (K V).
    flops = 2 * (2 * n_h + 1) * K * K * T * B * H
    floor = {
        "floor_s": flops / gemm_rate(ctx),
        "floor_name": f"{flops / 1e9:.2f} GFLOP at {gemm_rate(ctx) / 1e9:.0f} GFLOP/s",
    }
    return [
        Row(
            workload=f"W16 delta_rule B={B} T={T} H={H} K=V={K} n_h={n_h}",
            anchor="token-by-token numpy recurrence, per (batch, head) as API.md states it",
            anchor_s=per_head_s,
            randla_s=times["randla"],
            target=">=50x, same output to 1e-10",
            min_ratio=50.0,
            **floor,
            accuracy=(
                f"max abs diff {err_ph:.1e} {'ok' if err_ph <= 1e-10 else 'MISS'}; "
                "anchor single run"
            ),
        ),
        Row(
            workload=f"W16 delta_rule B={B} T={T} H={H} K=V={K} n_h={n_h}",
            anchor="token-by-token numpy recurrence (batched over B, H)",
            anchor_s=anchor_s,
            randla_s=times["randla"],
            target=">=50x, same output to 1e-10",
            min_ratio=50.0,
            **floor,
            accuracy=(
                f"max abs diff {err:.1e} {'ok' if err <= 1e-10 else 'MISS'}; anchor single run"
            ),
        ),
    ]


@workload("W17", "CG on a memory-bound 2-D Poisson problem")
def w17_cg(ctx: Context) -> list[Row]:
    return [_cg_row(ctx, "W17", 300 if ctx.quick else 1000, 2.0, 1.3)]


@workload("W17B", "CG on a cache-resident 2-D Poisson problem")
def w17b_cg(ctx: Context) -> list[Row]:
    return [_cg_row(ctx, "W17b", 200, 5.0, None)]


@workload("W20", "CG with 32 right-hand sides")
def w20_cg_block(ctx: Context) -> list[Row]:
    k, m = (200, 8) if ctx.quick else (500, 32)
    A = poisson2d(k)
    n = A.shape[0]
    B = np.random.default_rng(SEED).standard_normal((n, m))
    rtol = 1e-8

    def anchor() -> list[tuple[np.ndarray, int]]:
        return [_scipy_cg_count(A, B[:, j], rtol) for j in range(m)]

    anchor_s, ref = _once(anchor)
    randla_s, res = _once(lambda: rl.krylov.cg(A, B, rtol=rtol))
    per_it = _cg_bytes_per_iteration(A, m)
    floor_s = int(res.iterations.max()) * per_it / read_bandwidth(ctx)
    ref_iters = np.array([it for _, it in ref])
    worst = np.max(np.abs(res.iterations - ref_iters) / ref_iters)
    return [
        Row(
            workload=f"W20 cg Poisson {k}x{k}, b with {m} columns",
            anchor=f"{m} calls of scipy `cg`",
            anchor_s=anchor_s,
            randla_s=randla_s,
            target=">=4x; <=1.3x floor",
            min_ratio=4.0,
            floor_s=floor_s,
            # The block's passes from memory; randla runs these columns one
            # after another, each in cache, so it can go below this floor.
            floor_name=(
                f"block from memory: {per_it / 1e6:.0f} MB/it at "
                f"{read_bandwidth(ctx) / 1e9:.1f} GB/s"
            ),
            max_floor_ratio=1.3,
            accuracy=f"iterations within {100 * worst:.1f}% of scipy's per column; single run",
        )
    ]


def convection_diffusion(k: int) -> Any:
    """Upwinded 2-D convection-diffusion on a k x k grid (nonsymmetric), CSR."""
    t = sp.diags([-1.6, 2.0, -0.4], [-1, 0, 1], shape=(k, k))
    eye = sp.identity(k)
    return (sp.kron(t, eye) + sp.kron(eye, t)).tocsr()


def _relative_residual(A: Any, x: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))


@workload("W18", "MINRES on Poisson; GMRES(30) on convection-diffusion")
def w18_minres_gmres(ctx: Context) -> list[Row]:
    import scipy.sparse.linalg as spla

    rows = []
    k = 300 if ctx.quick else 1000
    A = poisson2d(k)
    b = np.random.default_rng(SEED).standard_normal(A.shape[0])
    randla_s, res = _once(lambda: rl.krylov.minres(A, b, rtol=1e-8))
    # scipy's own test (relative to ||A|| ||x||) stops far earlier: run it for the
    # same number of iterations instead, so both reach the same accuracy.
    iters = int(res.iterations)
    anchor_s, x_ref = _once(lambda: spla.minres(A, b, rtol=1e-15, maxiter=iters)[0])
    rows.append(
        Row(
            workload=f"W18 minres Poisson {k}x{k}",
            anchor="scipy `minres`",
            anchor_s=anchor_s,
            randla_s=randla_s,
            target=">=2x",
            min_ratio=2.0,
            accuracy=(
                f"rel. residual {_relative_residual(A, res.x, b):.1e} "
                f"(scipy {_relative_residual(A, x_ref, b):.1e}); "
                f"both {iters} iterations; single run"
            ),
        )
    )
    k = 200 if ctx.quick else 500
    C = convection_diffusion(k)
    b = np.random.default_rng(SEED + 1).standard_normal(C.shape[0])
    anchor_s, x_ref = _once(lambda: spla.gmres(C, b, rtol=1e-8, restart=30, maxiter=10**5)[0])
    randla_s, res = _once(lambda: rl.krylov.gmres(C, b, rtol=1e-8, restart=30))
    rows.append(
        Row(
            workload=f"W18 gmres(30) convection-diffusion {k}x{k}",
            anchor="scipy `gmres(restart=30)`",
            anchor_s=anchor_s,
            randla_s=randla_s,
            target=">=2x",
            min_ratio=2.0,
            accuracy=(
                f"rel. residual {_relative_residual(C, res.x, b):.1e} "
                f"(scipy {_relative_residual(C, x_ref, b):.1e}); "
                f"{res.iterations} inner iterations; single run"
            ),
        )
    )
    return rows


@workload("W19", "LSQR and LSMR on a sparse least squares problem")
def w19_lsqr_lsmr(ctx: Context) -> list[Row]:
    import scipy.sparse.linalg as spla

    m, n, nnz = (50_000, 5_000, 250_000) if ctx.quick else (200_000, 20_000, 1_000_000)
    rng = np.random.default_rng(SEED)
    rows_idx = rng.integers(0, m, nnz)
    cols_idx = rng.integers(0, n, nnz)
    A = sp.csr_matrix((rng.standard_normal(nnz), (rows_idx, cols_idx)), shape=(m, n))
    A = (A + sp.eye(m, n)).tocsr()
    b = rng.standard_normal(m)
    out = []
    for name, ours, theirs in (
        ("lsqr", rl.krylov.lsqr, spla.lsqr),
        ("lsmr", rl.krylov.lsmr, spla.lsmr),
    ):
        times, results, _ = ctx.timeit(
            {
                "anchor": lambda f=theirs: f(A, b, atol=1e-8, btol=1e-8),
                "randla": lambda f=ours: f(A, b, atol=1e-8, btol=1e-8),
            }
        )
        anchor_s, randla_s = times["anchor"], times["randla"]
        ref, res = results["anchor"], results["randla"]
        diff = np.linalg.norm(res.x - ref[0]) / np.linalg.norm(ref[0])
        out.append(
            Row(
                workload=f"W19 {name} sparse {m}x{n}, nnz {A.nnz:.0e}",
                anchor=f"scipy `{name}`",
                anchor_s=anchor_s,
                randla_s=randla_s,
                target=">=2x",
                min_ratio=2.0,
                accuracy=(
                    f"iterations {res.iterations} vs scipy {ref[2]}; "
                    f"|x - x_scipy|/|x| {diff:.1e}; {ctx.stat} of {ctx.repeat} runs"
                ),
            )
        )
    return out


# --------------------------------------------------------------------------
# header and table
# --------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total() -> str:
    try:
        with open("/proc/meminfo") as fh:
            m = re.search(r"MemTotal:\s+(\d+) kB", fh.read())
        return f"{int(m.group(1)) / 2**20:.0f} GiB" if m else "?"
    except OSError:
        return "?"


def _blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed (pip install threadpoolctl) - BLAS kernel unknown"
    parts = []
    for info in threadpool_info():
        if info.get("user_api") != "blas":
            continue
        lib = os.path.basename(info.get("filepath", "?"))
        parts.append(
            f"{info.get('internal_api')} {info.get('version')} kernel "
            f"{info.get('architecture', '?')}, {info.get('num_threads')} threads ({lib})"
        )
    return "; ".join(parts) or "no BLAS found by threadpoolctl"


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def header_lines(ctx: Context) -> list[str]:
    removed = os.environ.get(_REMOVED_ENV)
    if removed:
        ob = f"removed for this run ({removed}); compare.py re-executed itself without them"
    elif any(v in os.environ for v in _OPENBLAS_VARS):
        kept = " ".join(f"{v}={os.environ[v]}" for v in _OPENBLAS_VARS if v in os.environ)
        ob = f"KEPT ({kept}, --keep-openblas-env): numpy may run a slower kernel"
    else:
        ob = "not set"
    try:
        simd = rl._core.simd_level()
    except Exception:  # noqa: BLE001
        simd = "?"
    stat = "best" if ctx.stat == "min" else "median"
    return [
        f"randla benchmarks ({'--quick sizes' if ctx.quick else 'full sizes'}), "
        f"{time.strftime('%Y-%m-%d %H:%M')}",
        f"machine: {_cpu_model()}, {os.cpu_count()} cores, {_mem_total()}, "
        f"{platform.system()} {platform.machine()}",
        f"versions: python {platform.python_version()}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, randla {rl.__version__} (SIMD {simd})",
        f"threads: randla {rl.get_num_threads()}; BLAS: {_blas_info()}",
        f"load average at start (1/5/15 min): {_loadavg()} (other processes share the cores)",
        f"OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE: {ob}",
        f"timing: {stat} of {ctx.repeat} runs, anchor/randla/floor interleaved; "
        "ratio = anchor s / randla s (>1: randla faster); "
        "floor ratio = randla s / floor s",
    ]


LEGEND = [
    "eps: subspace-embedding distortion max_i |sigma_i(S Q) - 1| for an orthonormal basis Q of "
    "range(A), i.e. (1 +- eps)||Ax|| bounds ||SAx|| for all x (0: isometry; about sqrt(d/k) "
    "for a Gaussian sketch; the numpy Gaussian anchor is scaled by 1/sqrt(k) first).",
    "S@A vs to_dense: max relative difference between S @ A and S.to_dense() @ A on a small "
    "3000x7 case with the same operator kind (a 3000x7 CSR input for W4).",
    "peak: extra resident memory during the randla call (a materialized S would be k*n*8 bytes).",
    "W3 uses W1's k (= 4d) for both sketches, so eps compares like with like. On this incoherent "
    "Gaussian A CountSketch embeds about as well as a Gaussian sketch; for a guarantee on every A "
    "it needs k ~ d^2. W4's X has the same number of nonzeros in every row, at random columns.",
]


def _fmt_s(t: Optional[float]) -> str:
    if t is None:
        return "-"
    if t >= 10:
        return f"{t:.1f}"
    if t >= 1:
        return f"{t:.2f}"
    return f"{t:.3g}"


def table_cells(row: Row) -> list[str]:
    ratio = row.ratio
    ratio_s = "-"
    if ratio is not None:
        ok = "" if row.min_ratio is None else (" ok" if ratio >= row.min_ratio else " MISS")
        ratio_s = f"{ratio:.2f}x{ok}"
    floor_s = "-"
    fr = row.floor_ratio
    if fr is not None:
        ok = (
            "" if row.max_floor_ratio is None else (" ok" if fr <= row.max_floor_ratio else " MISS")
        )
        floor_s = f"{fr:.2f}x{ok} ({row.floor_name} {_fmt_s(row.floor_s)} s)"
    randla_s = _fmt_s(row.randla_s) if row.error is None else "FAILED"
    acc = row.accuracy if row.error is None else f"{row.error}; {row.accuracy}"
    return [
        row.workload,
        row.anchor,
        _fmt_s(row.anchor_s),
        randla_s,
        ratio_s,
        row.target,
        floor_s,
        acc,
    ]


COLUMNS = [
    "workload",
    "anchor",
    "anchor s",
    "randla s",
    "ratio",
    "target",
    "floor ratio",
    "accuracy",
]


def render_text(rows: list[Row]) -> str:
    cells = [COLUMNS] + [[c.replace("`", "") for c in table_cells(r)] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    lines = []
    for j, r in enumerate(cells):
        lines.append(" | ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if j == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(rows: list[Row]) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append("| " + " | ".join(esc(c) for c in table_cells(r)) + " |")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="scaled-down sizes (< 3 minutes)")
    parser.add_argument("--only", default="", help="comma-separated workload ids, e.g. W1,W3")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per call (default 3)")
    parser.add_argument(
        "--stat",
        choices=("min", "median"),
        default="min",
        help="aggregate of the repeated runs: best (min, default) or median",
    )
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument(
        "--keep-openblas-env",
        action="store_true",
        help="do not remove OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE before numpy loads",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    wanted = [w.strip().upper() for w in args.only.split(",") if w.strip()] or list(WORKLOADS)
    unknown = [w for w in wanted if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; known: {', '.join(WORKLOADS)}")

    ctx = Context(quick=args.quick, repeat=args.repeat, stat=args.stat)
    head = header_lines(ctx)
    if args.markdown:
        print("\n".join(f"- {h}" for h in head))
    else:
        print("\n".join(head))
    print(flush=True)

    rows: list[Row] = []
    t_start = time.perf_counter()
    for wid in WORKLOADS:  # registry order, so W2 can reuse W1's anchor
        if wid not in wanted:
            continue
        title, fn = WORKLOADS[wid]
        t0 = time.perf_counter()
        print(f"running {wid}: {title} ...", file=sys.stderr, flush=True)
        try:
            rows.extend(fn(ctx))
        except Exception as exc:  # noqa: BLE001 - one broken workload must not hide the others
            traceback.print_exc()
            rows.append(Row(wid, "-", None, None, "-", error=_err(exc)))
        print(f"  {wid} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)

    print(render_markdown(rows) if args.markdown else render_text(rows))
    print()
    for line in LEGEND:
        print(f"- {line}" if args.markdown else f"  {line}")
    misses = [(r.workload, m) for r in rows for m in r.misses()]
    print()
    if misses:
        print("Below target:" if not args.markdown else "**Below target:**")
        for name, m in misses:
            print(f"  - {name}: {m}" if not args.markdown else f"- {name}: {m}")
    else:
        print("All targets met.")
    print(f"(total {time.perf_counter() - t_start:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
