"""Embedding distortion of l_p row-sampling coresets against their size.

Regenerate the figure shown in the user guide (docs/user_guide/sampling.rst)
from the repository root, with randla built into .venv (``make build``):

    .venv/bin/python docs/plots/coreset_distortion.py

It writes docs/_static/coreset_distortion.png (committed) and prints the values
it plots.

The matrix: A of shape 20,000 x 8 with i.i.d. Gaussian entries, whose last
column is zero except on three rows (value 1): those three rows alone carry the
direction e_8 and have leverage about 1/3 each. The distortion of a coreset
(idx, w) from rl.sample_rows is max over test vectors x of
|sum_j w_j |a_idx_j x|^p / ||A x||_p^p - 1|, over 200 random x and 20 x near
e_8, as the median over SEEDS seeds, for p = 1 and p = 2 and every method.
Uniform sampling misses the three rows at small sizes (distortion 1).
"""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import randla as rl  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parents[1] / "_static" / "coreset_distortion.png"
SIZES = [25, 50, 100, 200, 400, 800, 1600]
SEEDS = 5
METHODS = ["lewis", "leverage", "root_leverage", "sensitivity", "uniform"]


def matrix() -> np.ndarray:
    A = np.random.default_rng(0).standard_normal((20_000, 8))
    A[:, 7] = 0.0
    A[:3, 7] = 1.0
    return A


def test_vectors() -> np.ndarray:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((8, 220))
    X[:, :20] = np.eye(8)[:, [7]] + 1e-6 * X[:, :20]
    return X


def distortion(A: np.ndarray, idx: np.ndarray, w: np.ndarray, p: float, X: np.ndarray) -> float:
    est = (w[:, None] * np.abs(A[idx] @ X) ** p).sum(axis=0)
    exact = (np.abs(A @ X) ** p).sum(axis=0)
    return float(np.max(np.abs(est / exact - 1)))


def main() -> None:
    A, X = matrix(), test_vectors()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, p in zip(axes, (1.0, 2.0)):
        for method in METHODS:
            values = []
            for m in SIZES:
                runs = [
                    distortion(A, *rl.sample_rows(A, m, p=p, method=method, rng=s), p, X)
                    for s in range(SEEDS)
                ]
                values.append(float(np.median(runs)))
            print(f"p={p:g} {method:>13}: " + " ".join(f"{v:.3f}" for v in values))
            ax.plot(SIZES, values, marker="o", label=method)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("coreset size m")
        ax.set_title(f"l_{p:g} embedding distortion, 20000 x 8, three heavy rows")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("max |estimate / ||Ax||_p^p - 1| (median of 5 seeds)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(OUT, dpi=120)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
