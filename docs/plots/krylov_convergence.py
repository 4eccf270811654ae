"""Residual histories of randla's Krylov solvers next to scipy.sparse.linalg's.

Regenerate the figure shown in the user guide (docs/user_guide/krylov.rst)
from the repository root, with randla built into .venv (``make build``):

    .venv/bin/python docs/plots/krylov_convergence.py

It writes docs/_static/krylov_convergence.png (committed, so the docs build does
not recompute it) and prints the iteration counts it plots. It takes a few
seconds.

Both panels plot the relative residual ||b - A x_k|| / ||b|| of the iterate x_k
after k iterations (products with A), computed from x_k in a callback:

* left: conjugate gradients, rl.krylov.cg against scipy.sparse.linalg.cg, on
  the 5-point Laplacian of a 100 x 100 grid (symmetric positive definite,
  n = 10,000);
* right: restarted GMRES(30), rl.krylov.gmres against scipy.sparse.linalg.gmres
  with the same ``restart``, on an upwinded convection-diffusion operator on the
  same grid (nonsymmetric: diffusion tridiag(-1, 2, -1) plus first-order upwind
  convection tridiag(-w, w, 0), w = 0.6, in both directions).

scipy's GMRES shows the iterate only at the end of each restart cycle, so its
curve is the residual estimate it passes to ``callback_type="pr_norm"`` after
each inner iteration (without a preconditioner, the exact residual norm of
the GMRES iterate up to rounding), with markers at the true residual at the
restarts. The curves coincide: randla runs scipy's recurrences and stopping
rule, and stops at the same iteration.
"""

from __future__ import annotations

import pathlib
import time

import numpy as np
import randla as rl
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from matplotlib.figure import Figure  # no pyplot: renders with Agg, needs no display

GRID = 100  # grid points per direction: n = GRID**2 unknowns
WIND = 0.6  # upwind convection coefficient (per grid step) of the nonsymmetric problem
RTOL = 1e-10
RESTART = 30  # GMRES restart length, the same for both (scipy's default is 20, randla's 30)
OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "_static" / "krylov_convergence.png"


def two_d(t: sp.spmatrix) -> sp.csr_matrix:
    """The 2-D operator t (x) I + I (x) t of a 1-D stencil t."""
    eye = sp.identity(t.shape[0])
    return (sp.kron(t, eye) + sp.kron(eye, t)).tocsr()


def poisson() -> sp.csr_matrix:
    return two_d(sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(GRID, GRID)))


def convection_diffusion() -> sp.csr_matrix:
    stencil = [-1.0 - WIND, 2.0 + WIND, -1.0]
    return two_d(sp.diags(stencil, [-1, 0, 1], shape=(GRID, GRID)))


def right_hand_side(n: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(n)


def relative(A: sp.csr_matrix, b: np.ndarray, x: np.ndarray) -> float:
    return float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))


def cg_histories(A: sp.csr_matrix, b: np.ndarray) -> tuple[list[float], list[float]]:
    ours = [1.0]  # x0 = 0: relative residual 1 after 0 iterations
    rl.krylov.cg(A, b, rtol=RTOL, callback=lambda info: ours.append(relative(A, b, info.x)))
    theirs = [1.0]
    x, info = spla.cg(
        A, b, rtol=RTOL, atol=0.0, callback=lambda xk: theirs.append(relative(A, b, xk))
    )
    assert info == 0
    return ours, theirs


def gmres_histories(
    A: sp.csr_matrix, b: np.ndarray
) -> tuple[list[float], list[float], list[tuple[int, float]]]:
    ours = [1.0]
    rl.krylov.gmres(
        A, b, rtol=RTOL, restart=RESTART, callback=lambda info: ours.append(relative(A, b, info.x))
    )
    estimate = [1.0]
    _, info = spla.gmres(
        A,
        b,
        rtol=RTOL,
        atol=0.0,
        restart=RESTART,
        maxiter=10 * A.shape[0],  # restart cycles, in scipy
        callback=estimate.append,
        callback_type="pr_norm",
    )
    assert info == 0
    # The true residual at each restart: a second run, reporting x once per cycle.
    at_restarts: list[float] = []
    spla.gmres(
        A,
        b,
        rtol=RTOL,
        atol=0.0,
        restart=RESTART,
        maxiter=10 * A.shape[0],
        callback=lambda xk: at_restarts.append(relative(A, b, xk)),
        callback_type="x",
    )
    inner = len(estimate) - 1
    positions = [min(RESTART * (j + 1), inner) for j in range(len(at_restarts))]
    return ours, estimate, list(zip(positions, at_restarts))


def main() -> None:
    start = time.perf_counter()
    fig = Figure(figsize=(10.5, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    ours_style = {"color": "tab:blue", "lw": 4.0, "alpha": 0.45}
    theirs_style = {"color": "black", "lw": 1.2, "ls": "--"}

    A = poisson()
    b = right_hand_side(A.shape[0])
    ours, theirs = cg_histories(A, b)
    print(f"cg, Poisson {GRID}x{GRID}: randla {len(ours) - 1}, scipy {len(theirs) - 1} iterations")
    left.plot(ours, label=f"rl.krylov.cg ({len(ours) - 1} iterations)", **ours_style)
    left.plot(theirs, label=f"scipy.sparse.linalg.cg ({len(theirs) - 1})", **theirs_style)
    left.set_title(f"CG: 2-D Poisson, {GRID} x {GRID} grid (SPD)")

    A = convection_diffusion()
    b = right_hand_side(A.shape[0])
    ours, estimate, at_restarts = gmres_histories(A, b)
    print(
        f"gmres({RESTART}), convection-diffusion {GRID}x{GRID}: randla {len(ours) - 1}, "
        f"scipy {len(estimate) - 1} inner iterations"
    )
    right.plot(ours, label=f"rl.krylov.gmres ({len(ours) - 1} iterations)", **ours_style)
    right.plot(estimate, label=f"scipy.sparse.linalg.gmres ({len(estimate) - 1})", **theirs_style)
    positions, values = zip(*at_restarts)
    right.plot(
        positions, values, "o", ms=3.5, color="black", label="scipy, true residual at restarts"
    )
    right.set_title(f"GMRES({RESTART}): convection-diffusion, {GRID} x {GRID} grid")

    for ax in (left, right):
        ax.set_yscale("log")
        ax.axhline(RTOL, color="tab:red", lw=0.9, ls=":", label=f"rtol = {RTOL:g}")
        ax.set_xlabel("iteration k (products with A)")
        ax.set_ylim(RTOL / 20, 3.0)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=9, loc="lower left")
    left.set_ylabel(r"relative residual $\|b - Ax_k\|_2 \,/\, \|b\|_2$")
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUTPUT, dpi=100)
    print(f"wrote {OUTPUT} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
