"""Recovery error of rl.complete against the sampling rate, and the cost of a sweep.

Regenerate the figure shown in the user guide (docs/user_guide/completion.rst)
from the repository root, with randla built into .venv (``make build``):

    .venv/bin/python docs/plots/completion_phase.py

It writes docs/_static/completion_phase.png (committed, so the docs build does
not recompute it) and prints the numbers it plots. It takes about 45 seconds
on two cores.

Left and middle: the phase transition. M = A B^T is a random 400 x 400 matrix
of rank 5 (standard normal factors); each entry is observed independently with
probability p, for 16 rates p from 1% to 30%, and rl.complete(X, 5, solver=s,
rng=t) runs on 5 draws (t = 0..4) of M and of the pattern, for s = "exact" and
s = "sketch" (default tol and maxiter=100). Left: the median relative error
||U V^T - M||_F / ||M||_F on all entries, with the range over the draws as a
band (values above 1e2 are drawn at 1e2); the top axis gives the same rates as
C = |Omega| / ((m + n) k log(m + n)). Middle: the fraction of the draws with
relative error <= 1e-6 (exact recovery). The dotted line marks p n = k: below
it the average row holds fewer observations than the rank, and its factor is
underdetermined.

Right: seconds per sweep (one update of all columns and all rows) against the
rank k = 5, 10, 20, 40, 80 on a 3000 x 3000 rank-k matrix with 5% observed
(|Omega| = 450,000): the median of the 7 differences between the elapsed times
that the callback sees after sweeps 1 to 8. The exact solver forms k x k normal
equations per line and factors them, O(|Omega| k^2 + (m + n) k^3) per sweep;
the sketch solver runs 3 preconditioned CG steps per line, O(|Omega| k +
(m + n) k^2) (the k^2 term: triangular solves with the preconditioner). Both
gather the rows of the fixed factor that each line needs, O(|Omega| k) memory
traffic, which dominates at small k. Timings depend on the machine and on its
load: run it on an idle one.
"""

from __future__ import annotations

import pathlib
import time
import warnings

import numpy as np
import randla as rl
import scipy.sparse as sp
from matplotlib.figure import Figure  # no pyplot: renders with Agg, needs no display

N = 400
RANK = 5
RATES = np.geomspace(0.01, 0.3, 16)
TRIALS = 5
SOLVERS = ["exact", "sketch"]
COLORS = {"exact": "tab:blue", "sketch": "tab:orange"}
CLIP = 1e2
TIMING_N = 3000
TIMING_RATE = 0.05
TIMING_RANKS = [5, 10, 20, 40, 80]
OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "_static" / "completion_phase.png"


def problem(n: int, k: int, rate: float, seed: int) -> tuple[np.ndarray, sp.csr_matrix]:
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n, k)) @ rng.standard_normal((k, n))
    rows, cols = np.nonzero(rng.random((n, n)) < rate)
    return M, sp.csr_matrix((M[rows, cols], (rows, cols)), shape=(n, n))


def phase_transition() -> dict[str, np.ndarray]:
    errors = {s: np.zeros((RATES.size, TRIALS)) for s in SOLVERS}
    for i, rate in enumerate(RATES):
        for t in range(TRIALS):
            M, X = problem(N, RANK, rate, seed=t)
            for solver in SOLVERS:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", rl.ConvergenceWarning)
                    res = rl.complete(X, RANK, solver=solver, rng=t)
                P = res.U @ res.V.T
                errors[solver][i, t] = np.linalg.norm(P - M) / np.linalg.norm(M)
        line = "  ".join(
            f"{s}: median {np.median(errors[s][i]):.1e}, "
            f"recovered {np.mean(errors[s][i] <= 1e-6):.0%}"
            for s in SOLVERS
        )
        print(f"p = {rate:6.3f} (C = {constant(rate):.2f})  {line}")
    return errors


def constant(rate: float) -> float:
    """C = |Omega| / ((m + n) k log(m + n)) of an N x N matrix sampled at ``rate``."""
    return rate * N * N / (2 * N * RANK * np.log(2 * N))


def sweep_seconds() -> dict[str, list[float]]:
    seconds: dict[str, list[float]] = {s: [] for s in SOLVERS}
    for k in TIMING_RANKS:
        _, X = problem(TIMING_N, k, TIMING_RATE, seed=100)
        for solver in SOLVERS:
            stamps: list[float] = []

            def record(info: rl.CompletionInfo, stamps: list[float] = stamps) -> None:
                stamps.append(info.elapsed)

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rl.ConvergenceWarning)
                rl.complete(X, k, solver=solver, maxiter=8, callback=record, rng=0)
            per_sweep = float(np.median(np.diff(stamps)))
            seconds[solver].append(per_sweep)
            print(f"k = {k:3d}, solver={solver:>6}: {per_sweep * 1e3:7.1f} ms per sweep")
    return seconds


def main() -> None:
    start = time.perf_counter()
    errors = phase_transition()
    seconds = sweep_seconds()

    fig = Figure(figsize=(13.5, 4.4), layout="constrained")
    ax_err, ax_ok, ax_time = fig.subplots(1, 3, width_ratios=[1.15, 1.0, 1.0])
    for solver in SOLVERS:
        e = np.minimum(errors[solver], CLIP)
        color = COLORS[solver]
        ax_err.fill_between(RATES, e.min(axis=1), e.max(axis=1), color=color, alpha=0.2)
        ax_err.plot(
            RATES, np.median(e, axis=1), color=color, marker="o", ms=4, label=f'solver="{solver}"'
        )
        ax_ok.plot(
            RATES,
            np.mean(errors[solver] <= 1e-6, axis=1),
            color=color,
            marker="o",
            ms=4,
            ls="-" if solver == "exact" else "--",
            label=f'solver="{solver}"',
        )
    worst = max(errors[s].max() for s in SOLVERS)
    if worst > CLIP:
        ax_err.text(
            RATES[0], 0.12 * CLIP, f"drawn at {CLIP:.0e}: errors up to {worst:.0e}", fontsize=8
        )
    ax_err.axhline(1e-6, color="gray", lw=1, ls=":")
    ax_err.text(RATES[0], 2e-6, "1e-6", color="gray", fontsize=8)
    ax_err.set_xscale("log")
    ax_err.set_yscale("log")
    ax_err.set_ylim(1e-11, 3 * CLIP)
    ax_err.set_xlabel(r"sampling rate $p = |\Omega| / n^2$")
    ax_err.set_ylabel(r"relative error $\|UV^\top - M\|_F / \|M\|_F$")
    ax_err.set_title(f"median and range over {TRIALS} draws")
    top = ax_err.secondary_xaxis(
        "top",
        functions=(lambda p: constant(np.asarray(p)), lambda c: np.asarray(c) / constant(1.0)),
    )
    top.set_xlabel(r"$C = |\Omega| \,/\, ((m+n)\,k \log(m+n))$")
    ax_ok.set_xscale("log")
    ax_ok.set_ylim(-0.03, 1.03)
    ax_ok.set_xlabel(r"sampling rate $p$")
    ax_ok.set_ylabel("fraction of draws recovered (error <= 1e-6)")
    ax_ok.set_title("exact recovery")
    for ax in (ax_err, ax_ok):
        ax.axvline(RANK / N, color="black", lw=1, ls=":")
        ax.grid(True, which="major", alpha=0.3)
    ax_ok.text(RANK / N * 1.05, 0.5, r"$pn = k$", fontsize=9)
    ax_err.legend(fontsize=9, loc="center right")
    ax_ok.legend(fontsize=9, loc="lower right")

    ks = np.array(TIMING_RANKS, dtype=float)
    for solver in SOLVERS:
        ax_time.plot(
            ks, seconds[solver], color=COLORS[solver], marker="o", label=f'solver="{solver}"'
        )
    # Reference slopes through the first point of each curve.
    ax_time.plot(ks, seconds["exact"][0] * (ks / ks[0]) ** 2, color="gray", ls=":", label="~ k^2")
    ax_time.plot(ks, seconds["sketch"][0] * (ks / ks[0]), color="gray", ls="--", label="~ k")
    ax_time.set_xscale("log")
    ax_time.set_yscale("log")
    ax_time.minorticks_off()
    ax_time.set_xticks(ks, [str(k) for k in TIMING_RANKS])
    ax_time.set_xlabel("rank k")
    ax_time.set_ylabel("seconds per sweep")
    threads = rl.get_num_threads()
    ax_time.set_title(
        rf"{TIMING_N} $\times$ {TIMING_N}, {TIMING_RATE:.0%} observed, {threads} threads"
    )
    ax_time.grid(True, which="major", alpha=0.3)
    ax_time.legend(fontsize=9, loc="upper left")
    fig.suptitle(
        rf"rl.complete: {N} $\times$ {N} matrices of rank {RANK}, entries observed with "
        r"probability $p$"
    )
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUTPUT, dpi=100)
    print(f"wrote {OUTPUT} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
