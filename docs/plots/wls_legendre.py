"""Weighted least squares in a Legendre basis from rl.dpp.wls_sample nodes.

Regenerate the figure shown in the user guide (docs/user_guide/dpp.rst) from the
repository root, with randla built into .venv (``make build``):

    .venv/bin/python docs/plots/wls_legendre.py

It writes docs/_static/wls_legendre.png (committed) and prints the values it plots.
It takes about 25 s on two cores.

The problem: approximate Runge's function f(x) = 1 / (1 + 25 x^2) on [-1, 1] for the
uniform measure, represented by a pool of N = 20,000 uniform random points, in the
Legendre polynomials of degree < m = 20 (orthonormal for the uniform measure). The
best approximation is the least squares fit on the whole pool; its error, in the
empirical L2 norm of the pool, is the horizontal line. For each method of
rl.dpp.wls_sample and n = m to 30 m nodes (SIZES), the weighted least squares fit on
the n nodes, min_c sum_j w_j (f(x_j) - phi(x_j) c)^2, has an error measured in the
same norm; the figure shows its median over REPEATS draws (lines) and the range from
the 10% to the 90% quantile (bands, left), and the 90% quantile of the error divided
by the best error (right). The grey dashed line is the naive method: n uniform nodes
and unweighted least squares. The dotted volume_rescaled curve lies on the
dpp_christoffel one (same nodes for the same seed, see METHODS).
"""

from __future__ import annotations

import pathlib
import time

import numpy as np
import randla as rl
from matplotlib.figure import Figure  # no pyplot: renders with Agg, needs no display
from matplotlib.ticker import FormatStrFormatter, NullLocator

N, M = 20_000, 20
SIZES = [20, 40, 60, 80, 100, 140, 200, 300, 400, 600]  # multiples of M (repeated_dpp)
REPEATS = 30
# volume_rescaled is dotted: randla draws it as the nodes of dpp_christoffel in a
# random order (the same law), so for the same seed the two curves coincide.
METHODS = {
    "iid_christoffel": ("tab:blue", "-"),
    "dpp_christoffel": ("tab:red", "-"),
    "volume_rescaled": ("tab:green", ":"),
    "repeated_dpp": ("tab:purple", "-"),
}
OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "_static" / "wls_legendre.png"


def legendre(x: np.ndarray, m: int) -> np.ndarray:
    """Legendre polynomials of degree < m, orthonormal for the uniform law on [-1, 1]."""
    return np.polynomial.legendre.legvander(x, m - 1) * np.sqrt(2 * np.arange(m) + 1)


def runge(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + 25.0 * x**2)


def pool_error(Phi: np.ndarray, y: np.ndarray, idx: np.ndarray, w: np.ndarray) -> float:
    """Empirical L2 error on the pool of the weighted least squares fit on (idx, w)."""
    sw = np.sqrt(w)
    c = np.linalg.lstsq(Phi[idx] * sw[:, None], y[idx] * sw, rcond=None)[0]
    return float(np.sqrt(np.mean((Phi @ c - y) ** 2)))


def main() -> None:
    start = time.perf_counter()
    x = np.random.default_rng(0).uniform(-1.0, 1.0, N)
    Phi, y = legendre(x, M), runge(x)
    best = pool_error(Phi, y, np.arange(N), np.ones(N))
    print(f"pool of {N} points, m = {M}: best L2 error {best:.3e}")

    errors: dict[str, np.ndarray] = {}
    for method in METHODS:
        t0 = time.perf_counter()
        errors[method] = np.array(
            [
                [
                    pool_error(Phi, y, *rl.dpp.wls_sample(Phi, n, method=method, rng=seed))
                    for seed in range(REPEATS)
                ]
                for n in SIZES
            ]
        )
        print(f"{method:>16}: {time.perf_counter() - t0:.1f} s")
    uniform = np.array(
        [
            [
                pool_error(Phi, y, np.random.default_rng(seed).integers(0, N, n), np.ones(n))
                for seed in range(REPEATS)
            ]
            for n in SIZES
        ]
    )

    print("n / m:                 " + " ".join(f"{n // M:>7d}" for n in SIZES))
    for name, values in [*errors.items(), ("uniform, unweighted", uniform)]:
        ratio = np.quantile(values, 0.9, axis=1) / best
        print(f"{name:>20}: q90 / best " + " ".join(f"{r:7.2f}" for r in ratio))

    fig = Figure(figsize=(10.5, 4.4), layout="constrained")
    left, right = fig.subplots(1, 2, sharex=True)
    ratio = [n // M for n in SIZES]
    for name, values, color, style in [
        *((m, errors[m], color, style) for m, (color, style) in METHODS.items()),
        ("uniform nodes, unweighted", uniform, "grey", "--"),
    ]:
        low, median, high = np.quantile(values, [0.1, 0.5, 0.9], axis=1)
        left.plot(ratio, median, style, color=color, marker=".", lw=1.4, label=name)
        if style == "-":
            left.fill_between(ratio, low, high, color=color, alpha=0.12, lw=0)
        right.plot(ratio, high / best, style, color=color, marker=".", lw=1.4)
    left.axhline(best, color="black", lw=3, alpha=0.3, label="best approximation")
    right.axhline(1.0, color="black", lw=3, alpha=0.3)
    left.set_ylabel(r"$\|f - \hat f_n\|_{L^2}$ (median, 10%–90%)")
    right.set_ylabel(r"90% quantile of $\|f - \hat f_n\| \,/\, \|f - f_{\mathrm{best}}\|$")
    # Values off the charts: iid nodes with n = m (often singular) and uniform nodes.
    left.set_ylim(0.8 * best, 10.0 * best)
    right.set_ylim(0.9, 30.0)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(ratio, [str(r) for r in ratio])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
        ax.set_xlabel(f"oversampling n / m (m = {M}; 10 m log m = {10 * M * np.log(M) / M:.0f} m)")
        ax.grid(True, which="major", alpha=0.3)
    left.legend(fontsize=8, loc="upper right")
    fig.suptitle(
        rf"Weighted least squares of $1/(1+25x^2)$ in {M} Legendre polynomials, "
        rf"pool of {N:,} uniform points, {REPEATS} draws per n"
    )
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUTPUT, dpi=100)
    print(f"wrote {OUTPUT} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
