"""Subspace-embedding distortion of each sketch operator versus the sketch size k.

Regenerate the figure shown in the user guide (docs/user_guide/sketching.rst)
from the repository root, with randla built into .venv (``make build``):

    .venv/bin/python docs/plots/sketch_distortion.py

It writes docs/_static/sketch_distortion.png (committed, so the docs build does
not recompute it) and prints the medians it plots. It takes about 30 seconds on
two cores, most of it generating the Gaussian operators.

For an n x d matrix Q with orthonormal columns, an operator S of shape (k, n)
is an epsilon-subspace embedding of range(Q) when every singular value sigma of
S @ Q satisfies |sigma^2 - 1| <= epsilon, that is (1 - eps) ||x|| ^2 <= ||S x||^2
<= (1 + eps) ||x||^2 for every x in range(Q). The figure shows that distortion,
max |sigma^2 - 1|, as the median over several seeds, for two bases:

* incoherent: Q from the QR factorization of a Gaussian matrix (every row has
  leverage score about d/n);
* coherent: d rows of Q carry most of the mass (leverage scores near 1), the
  case in which uniform row sampling and very sparse projections miss
  directions, CountSketch needs k of order d^2 (until the heavy rows fall in
  distinct buckets, two of them collide), and row sampling with probabilities
  proportional to the leverage scores recovers.
"""

from __future__ import annotations

import pathlib
import time

import numpy as np
import randla as rl
from matplotlib.figure import Figure  # no pyplot: renders with Agg, needs no display

N = 20_000  # rows of the basis (the sketched dimension)
D = 16  # columns of the basis (the subspace dimension)
SEEDS = 5  # the plotted value is the median over this many operators
KS = [int(round(2 * D * 2 ** (j / 2))) for j in range(10)]  # 2d ... about 45d
OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "_static" / "sketch_distortion.png"

# (label, constructor name, options, color, line style)
OPERATORS = [
    ("gaussian", "gaussian", {}, "tab:blue", "-"),
    ("rademacher", "rademacher", {}, "tab:cyan", "--"),
    ("srht", "srht", {}, "tab:green", "-"),
    ("countsketch", "countsketch", {}, "tab:red", "-"),
    ("sparse_sign (nnz_per_col=8)", "sparse_sign", {"nnz_per_col": 8}, "tab:purple", "-"),
    ("sparse_rp (density 1/sqrt(n))", "sparse_rp", {}, "tab:brown", "-"),
    ("row_sampling (uniform p)", "row_sampling", {}, "tab:pink", "-"),
    ("row_sampling (leverage p)", "row_sampling", {"p": "leverage"}, "tab:olive", "--"),
]


def incoherent_basis(rng: np.random.Generator) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((N, D)))
    return q


def coherent_basis(rng: np.random.Generator) -> np.ndarray:
    # d heavy rows, one per direction, on top of small Gaussian noise: leverage ~0.99 there.
    a = 0.01 * rng.standard_normal((N, D)) / np.sqrt(N / D)
    heavy = rng.choice(N, size=D, replace=False)
    a[heavy, np.arange(D)] += 1.0
    q, _ = np.linalg.qr(a)
    return q


def distortion(S: rl.sketch.SketchOperator, Q: np.ndarray) -> float:
    sigma = np.linalg.svd(S @ Q, compute_uv=False)
    # k >= d here, so S @ Q has d singular values; a missed direction has sigma = 0.
    return float(np.max(np.abs(sigma**2 - 1.0)))


def curve(Q: np.ndarray, index: int, name: str, options: dict) -> list[float]:
    if options.get("p") == "leverage":
        options = {"p": np.einsum("ij,ij->i", Q, Q)}  # leverage scores of range(Q)
    constructor = getattr(rl.sketch, name)
    medians = []
    for k in KS:
        values = [
            distortion(constructor(k, N, rng=np.random.SeedSequence([index, k, s]), **options), Q)
            for s in range(SEEDS)
        ]
        medians.append(float(np.median(values)))
    return medians


def main() -> None:
    start = time.perf_counter()
    rng = np.random.default_rng(2024)
    bases = [
        ("incoherent Q (Gaussian basis)", incoherent_basis(rng)),
        ("coherent Q (d rows with leverage ~ 1)", coherent_basis(rng)),
    ]
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    ks = np.array(KS, dtype=float)
    for ax, (title, Q) in zip(axes, bases):
        print(f"{title}: max leverage {np.max(np.einsum('ij,ij->i', Q, Q)):.3f}")
        for index, (label, name, options, color, style) in enumerate(OPERATORS):
            medians = curve(Q, index, name, options)
            print(f"  {label:32s}" + " ".join(f"{m:8.3g}" for m in medians))
            ax.plot(ks, medians, style, marker="o", ms=3.5, lw=1.6, color=color, label=label)
        # Gaussian reference: edge of the Marchenko-Pastur law, (1 + sqrt(d/k))^2 - 1.
        ax.plot(
            ks,
            2 * np.sqrt(D / ks) + D / ks,
            color="0.6",
            lw=5,
            alpha=0.35,
            zorder=0,
            label=r"Gaussian edge $2\sqrt{d/k} + d/k$",
        )
        ax.axhline(1.0, color="0.3", lw=0.8, ls=":")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(KS[::2], [str(k) for k in KS[::2]])
        ax.set_xlabel(f"sketch size k  (n = {N}, d = {D})")
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.3)
    ylabel = r"distortion $\max_i\,|\sigma_i(SQ)^2 - 1|$"
    axes[0].set_ylabel(f"{ylabel}\n(median of {SEEDS} seeds)")
    axes[0].set_ylim(0.008, 8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=9, frameon=False)
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUTPUT, dpi=110)
    print(f"wrote {OUTPUT} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
