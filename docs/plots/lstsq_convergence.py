"""Convergence of rl.lstsq's sketch-and-precondition iteration versus oversampling.

Regenerate the figure shown in the user guide (docs/user_guide/lstsq.rst) from
the repository root, with randla built into .venv (``make build``):

    .venv/bin/python docs/plots/lstsq_convergence.py

It writes docs/_static/lstsq_convergence.png (committed, so the docs build does
not recompute it) and prints the iteration counts it plots. It takes under a
minute on two cores, most of it in scipy's LSQR.

The problem: A = U diag(s) V^T of shape 20,000 x 100 with singular values s
spaced geometrically from 1 to 1e-8 (cond(A) = 1e8), and b = U c + r with c
Gaussian and r orthogonal to range(A) (||r|| = 5), so that the solution
x* = V diag(1/s) c is known exactly and b has a component along every left
singular vector (x* is dominated by the directions of the small singular
values, the ones an unpreconditioned solver finds last).

Both panels plot, after k iterations (k = 0 is the starting point),

* left: the relative error ||x_k - x*|| / ||x*||;
* right: the relative residual of the normal equations
  ||A^T r_k|| / (||A|| ||r_k||), r_k = b - A x_k, LSQR's own stopping quantity
  (Paige and Saunders' test 2) on the original problem,

for rl.lstsq(method="sketch_precondition") with sparse_sign sketches of
oversampling * 100 rows (oversampling = 1.5, 2, 4, 8), and for scipy's LSQR on
A itself (no preconditioner). rl.lstsq has no callback: the iterate after k
iterations is the result of rl.lstsq(..., maxiter=k, rtol=0) with the same
rng (LSQR is deterministic, so it is the k-th iterate of the full solve), and
k = 0 is method="sketch_solve" with the same sketch, the point the iteration
starts from. scipy's LSQR is sampled in the same way, with iter_lim=k, every
few iterations. The dotted line is the error of a direct solve (Householder
QR, rl.lstsq(method="direct")).
"""

from __future__ import annotations

import pathlib
import time
import warnings

import numpy as np
import randla as rl
import scipy.sparse.linalg as spla
from matplotlib.figure import Figure  # no pyplot: renders with Agg, needs no display

N, D = 20_000, 100
COND = 1e8
RESIDUAL = 5.0  # ||b - A x*||
OVERSAMPLING = [1.5, 2.0, 4.0, 8.0]
MAX_ITERS = 80  # the x-axis
EXTRA = 4  # iterations plotted past the default solve's stopping point
LSQR_STEP = 5  # scipy's LSQR is sampled at iter_lim = 0, 5, 10, ...
OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "_static" / "lstsq_convergence.png"


def problem() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A (N x D, cond COND), b and the exact solution x*."""
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((N, D + 1)))
    V, _ = np.linalg.qr(rng.standard_normal((D, D)))
    s = np.geomspace(1.0, 1.0 / COND, D)
    A = (Q[:, :D] * s) @ V.T
    c = rng.standard_normal(D)
    b = Q[:, :D] @ c + RESIDUAL * Q[:, D]  # Q[:, D] is orthogonal to range(A)
    return A, b, V @ (c / s)


def measures(
    A: np.ndarray, b: np.ndarray, x_star: np.ndarray, x: np.ndarray
) -> tuple[float, float]:
    r = b - A @ x
    error = np.linalg.norm(x - x_star) / np.linalg.norm(x_star)
    normal = np.linalg.norm(A.T @ r) / np.linalg.norm(r)  # ||A||_2 = 1
    return float(error), float(normal)


def preconditioned(
    A: np.ndarray, b: np.ndarray, x_star: np.ndarray, gamma: float
) -> tuple[int, list[tuple[float, float]]]:
    full = rl.lstsq(A, b, method="sketch_precondition", oversampling=gamma, rng=0)
    start = rl.lstsq(A, b, method="sketch_solve", oversampling=gamma, rng=0)
    history = [measures(A, b, x_star, start.x)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rl.ConvergenceWarning)  # rtol=0 never converges
        for k in range(1, min(full.iterations + EXTRA, MAX_ITERS) + 1):
            res = rl.lstsq(
                A, b, method="sketch_precondition", oversampling=gamma, maxiter=k, rtol=0, rng=0
            )
            history.append(measures(A, b, x_star, res.x))
    return full.iterations, history


def unpreconditioned(
    A: np.ndarray, b: np.ndarray, x_star: np.ndarray
) -> tuple[list[int], list[tuple[float, float]]]:
    its = list(range(LSQR_STEP, MAX_ITERS + 1, LSQR_STEP))
    history = [measures(A, b, x_star, np.zeros(D))]
    for k in its:
        x = spla.lsqr(A, b, atol=0.0, btol=0.0, conlim=0.0, iter_lim=k)[0]
        history.append(measures(A, b, x_star, x))
    return [0, *its], history


def main() -> None:
    start = time.perf_counter()
    A, b, x_star = problem()
    direct_error, direct_normal = measures(A, b, x_star, rl.lstsq(A, b, method="direct").x)
    print(f"A: {N} x {D}, cond {np.linalg.cond(A):.1e}; direct QR error {direct_error:.1e}")

    fig = Figure(figsize=(10.5, 4.8), layout="constrained")
    left, right = fig.subplots(1, 2, sharex=True)
    colors = ["tab:red", "tab:orange", "tab:blue", "tab:green"]
    for gamma, color in zip(OVERSAMPLING, colors):
        iterations, history = preconditioned(A, b, x_star, gamma)
        error, normal = zip(*history)
        print(
            f"oversampling {gamma:g} (k = {int(np.ceil(gamma * D))} rows): {iterations} "
            f"iterations to rtol=1e-12, error {history[min(iterations, len(history) - 1)][0]:.1e}"
        )
        label = f"oversampling {gamma:g} ({iterations} iterations)"
        left.plot(error, color=color, lw=1.6, label=label)
        right.plot(normal, color=color, lw=1.6, label=label)

    its, history = unpreconditioned(A, b, x_star)
    error, normal = zip(*history)
    print(f"scipy LSQR, no preconditioner: error {error[-1]:.2f} after {its[-1]} iterations")
    style = {"color": "black", "lw": 1.2, "ls": "--", "marker": "o", "ms": 3}
    left.plot(its, error, label="scipy.sparse.linalg.lsqr, no preconditioner", **style)
    right.plot(its, normal, label="scipy.sparse.linalg.lsqr, no preconditioner", **style)
    left.axhline(direct_error, color="gray", lw=1.0, ls=":", label="direct QR")
    right.axhline(direct_normal, color="gray", lw=1.0, ls=":", label="direct QR")

    left.set_title(rf"error, $A$: {N:,} $\times$ {D}, cond$(A) = 10^{{{int(np.log10(COND))}}}$")
    left.set_ylabel(r"$\|x_k - x^*\|_2 \,/\, \|x^*\|_2$")
    right.set_title("residual of the normal equations")
    right.set_ylabel(r"$\|A^T r_k\|_2 \,/\, (\|A\|_2 \, \|r_k\|_2)$")
    for ax in (left, right):
        ax.set_yscale("log")
        ax.set_xlabel("iteration k (k = 0: the sketch-and-solve start)")
        ax.set_xlim(0, MAX_ITERS)
        ax.grid(True, which="major", alpha=0.3)
    fig.legend(*left.get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=9)
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUTPUT, dpi=100)
    print(f"wrote {OUTPUT} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
