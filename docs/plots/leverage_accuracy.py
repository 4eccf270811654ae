"""Accuracy of approximate leverage scores, and Lewis weights for several p.

Regenerate the figure shown in the user guide (docs/user_guide/sampling.rst)
from the repository root, with randla built into .venv (``make build``):

    .venv/bin/python docs/plots/leverage_accuracy.py

It writes docs/_static/leverage_accuracy.png (committed, so the docs build does
not recompute it) and prints the values it plots. It takes about 10 seconds on
two cores, most of it the exact Lewis weights for p = 1 and p = 4.

The matrix: A of shape 50,000 x 50 with i.i.d. Gaussian rows, of which
HEAVY = 10 rows are scaled by 100: those rows have leverage scores near 0.9,
the other rows about (50 - 9) / 50,000, so A is far from incoherent.

* left: the relative error |tau~_i - tau_i| / tau_i of
  rl.leverage_scores(A, method="approx", eps=eps, rng=s) against the exact
  scores (rl.leverage_scores(A), Householder QR), for eps from 0.1 to 1: the
  largest over the 50,000 rows and the 90th percentile, as the median over
  SEEDS seeds s (the band spans the smallest to the largest over the seeds),
  with the line y = eps for reference;
* right: the l_p Lewis weights rl.lewis_weights(A, p, method="exact") for
  p = 1, 2, 4, sorted in decreasing order (log scales), with the uniform value
  d / n; p = 2 gives the leverage scores.
"""

from __future__ import annotations

import pathlib
import time

import numpy as np
import randla as rl
from matplotlib.figure import Figure  # no pyplot: renders with Agg, needs no display

N, D = 50_000, 50
HEAVY = 10  # rows scaled by HEAVY_SCALE
HEAVY_SCALE = 100.0
EPSILONS = [0.1, 0.2, 0.3, 0.5, 0.75, 1.0]
SEEDS = 10  # the plotted errors are the median over this many seeds
PS = [(1.0, "tab:blue"), (2.0, "tab:green"), (4.0, "tab:red")]
OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "_static" / "leverage_accuracy.png"


def matrix() -> np.ndarray:
    rng = np.random.default_rng(0)
    A = rng.standard_normal((N, D))
    A[rng.choice(N, size=HEAVY, replace=False)] *= HEAVY_SCALE
    return A


def main() -> None:
    start = time.perf_counter()
    A = matrix()
    exact = rl.leverage_scores(A)
    heavy_scores = np.sort(exact)[::-1][:HEAVY]
    print(
        f"A: {N} x {D}; exact scores sum to {exact.sum():.6f}; heavy rows "
        f"{heavy_scores.min():.3f} .. {heavy_scores.max():.3f}, median {np.median(exact):.2e}"
    )

    fig = Figure(figsize=(11, 4.4), layout="constrained")
    left, right = fig.subplots(1, 2)

    # Left: relative error of the approximate scores against eps.
    largest = np.empty((len(EPSILONS), SEEDS))
    p90 = np.empty((len(EPSILONS), SEEDS))
    for i, eps in enumerate(EPSILONS):
        for s in range(SEEDS):
            approx = rl.leverage_scores(A, method="approx", eps=eps, rng=s)
            error = np.abs(approx - exact) / exact
            largest[i, s] = error.max()
            p90[i, s] = np.quantile(error, 0.9)
        print(
            f"eps = {eps:4.2f}: max error median {np.median(largest[i]):.3f} "
            f"(seeds: {largest[i].min():.3f} .. {largest[i].max():.3f}), "
            f"90th percentile median {np.median(p90[i]):.3f}"
        )
    eps_axis = np.array(EPSILONS)
    for values, label, color, marker in [
        (largest, "largest over the rows", "tab:red", "o"),
        (p90, "90th percentile over the rows", "tab:blue", "s"),
    ]:
        left.fill_between(
            eps_axis, values.min(axis=1), values.max(axis=1), color=color, alpha=0.2, lw=0
        )
        left.plot(
            eps_axis, np.median(values, axis=1), color=color, marker=marker, ms=5, label=label
        )
    left.plot(eps_axis, eps_axis, color="0.3", ls="--", lw=1.2, label=r"$y = \varepsilon$")
    left.set_xlabel(r"eps ($\varepsilon$)")
    left.set_ylabel(r"relative error $|\tilde\tau_i - \tau_i| \,/\, \tau_i$")
    left.set_title(f'rl.leverage_scores(A, method="approx", eps=eps)\nmedian of {SEEDS} seeds')
    left.set_xlim(0, 1.05)
    left.set_ylim(0, None)
    left.legend(fontsize=9, loc="upper left")
    left.grid(True, alpha=0.3)

    # Right: sorted exact Lewis weights for several p.
    rank = np.arange(1, N + 1)
    for p, color in PS:
        t0 = time.perf_counter()
        w = rl.lewis_weights(A, p, method="exact")
        seconds = time.perf_counter() - t0
        print(
            f"p = {p:g}: weights sum to {w.sum():.6f}, largest {w.max():.3f}, "
            f"smallest {w.min():.2e}, {seconds:.2f} s"
        )
        right.plot(rank, np.sort(w)[::-1], color=color, lw=1.6, label=f"p = {p:g}")
    right.axhline(D / N, color="0.3", ls=":", lw=1.2, label=f"uniform d / n = {D / N:g}")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("row, by decreasing weight")
    right.set_ylabel(r"Lewis weight $w_i$")
    right.set_title('rl.lewis_weights(A, p, method="exact"), sorted')
    right.legend(fontsize=9, loc="lower left")
    right.grid(True, which="major", alpha=0.3)

    fig.suptitle(rf"A: {N:,} $\times$ {D} Gaussian rows, {HEAVY} of them scaled by {HEAVY_SCALE:g}")
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUTPUT, dpi=100)
    print(f"wrote {OUTPUT} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
