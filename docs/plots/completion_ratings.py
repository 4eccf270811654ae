"""Held-out RMSE of rl.complete on a synthetic MovieLens-style ratings matrix.

Regenerate the figure shown in the user guide (docs/user_guide/completion.rst)
from the repository root, with randla built into .venv (``make build``):

    .venv/bin/python docs/plots/completion_ratings.py

It writes docs/_static/completion_ratings.png (committed, so the docs build does
not recompute it) and prints the numbers it plots. It takes about 40 seconds
on two cores.

The data: 2000 users and 1000 items with ratings

    R = clip(3 + A B^T / sqrt(8) + 0.5 E, 1, 5)

for standard normal A (2000 x 8), B (1000 x 8) and E (noise): rank 8 before the
noise and the clipping, a standard deviation of about 1 around 3. 5% of the
entries are observed (about 100,000 ratings); 20% of those are held out, the
other 80% are the training set X. As a recommender would, the fit centers the
training ratings by their mean mu, completes X - mu with rl.complete(X - mu, k,
reg=reg, rng=0) and predicts mu + res.predict(rows, cols) clipped to [1, 5].

Left: held-out RMSE against the rank k for reg = 0, 1, 3, with two reference
lines: predicting the training mean everywhere, and the oracle clip(3 + A B^T /
sqrt(8), 1, 5) (the noise floor). Right: the RMSE on the training ratings for
the same fits, with the same two references computed on the training ratings:
without regularization it keeps falling past the true rank while the held-out
RMSE rises (overfitting); reg > 0 limits it.
"""

from __future__ import annotations

import pathlib
import time
import warnings

import numpy as np
import randla as rl
import scipy.sparse as sp
from matplotlib.figure import Figure  # no pyplot: renders with Agg, needs no display

USERS, ITEMS, TRUE_RANK = 2000, 1000, 8
NOISE = 0.5
OBSERVED = 0.05
HOLD_OUT = 0.2
RANKS = [1, 2, 4, 6, 8, 10, 12, 16, 20]
REGS = [0.0, 1.0, 3.0]
COLORS = ["tab:red", "tab:blue", "tab:green"]
OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "_static" / "completion_ratings.png"


def ratings(seed: int = 0):
    """Training matrix (centered), its mean, held-out triples and oracle predictions."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((USERS, TRUE_RANK))
    B = rng.standard_normal((ITEMS, TRUE_RANK))
    rows, cols = np.nonzero(rng.random((USERS, ITEMS)) < OBSERVED)
    signal = 3.0 + np.einsum("ij,ij->i", A[rows], B[cols]) / np.sqrt(TRUE_RANK)
    values = np.clip(signal + NOISE * rng.standard_normal(rows.size), 1.0, 5.0)
    test = rng.random(rows.size) < HOLD_OUT
    train = ~test
    mu = values[train].mean()
    X = sp.csr_matrix((values[train] - mu, (rows[train], cols[train])), shape=(USERS, ITEMS))
    held = (rows[test], cols[test], values[test], np.clip(signal[test], 1.0, 5.0))
    fit = (rows[train], cols[train], values[train], np.clip(signal[train], 1.0, 5.0))
    return X, mu, fit, held


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def main() -> None:
    start = time.perf_counter()
    X, mu, (tr, tc, tv, oracle_train), (hr, hc, hv, oracle) = ratings()
    baseline, floor = rmse(hv, mu), rmse(hv, oracle)
    print(
        f"{USERS} x {ITEMS}: {X.nnz} training and {hv.size} held-out ratings; "
        f"held-out RMSE of the mean {baseline:.3f}, of the oracle {floor:.3f}"
    )
    held_out = np.zeros((len(REGS), len(RANKS)))
    training = np.zeros_like(held_out)
    for a, reg in enumerate(REGS):
        for b, k in enumerate(RANKS):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rl.ConvergenceWarning)
                res = rl.complete(X, k, reg=reg, rng=0)
            held_out[a, b] = rmse(np.clip(mu + res.predict(hr, hc), 1, 5), hv)
            training[a, b] = rmse(np.clip(mu + res.predict(tr, tc), 1, 5), tv)
            print(
                f"reg={reg:4.1f}, rank {k:2d}: held-out RMSE {held_out[a, b]:.3f}, "
                f"training RMSE {training[a, b]:.3f} ({res.iterations} sweeps, "
                f"converged={res.converged}, {time.perf_counter() - t0:.2f} s)"
            )

    fig = Figure(figsize=(10.5, 4.2), layout="constrained")
    ax_test, ax_train = fig.subplots(1, 2, sharey=True)
    for a, (reg, color) in enumerate(zip(REGS, COLORS)):
        label = f"reg = {reg:g}"
        ax_test.plot(RANKS, held_out[a], color=color, marker="o", ms=4, label=label)
        ax_train.plot(RANKS, training[a], color=color, marker="o", ms=4, label=label)
    references = ((ax_test, baseline, floor), (ax_train, rmse(tv, mu), rmse(tv, oracle_train)))
    for ax, mean_rmse, oracle_rmse in references:
        ax.axhline(mean_rmse, color="gray", ls="--", lw=1, label="training mean")
        ax.axhline(oracle_rmse, color="black", ls=":", lw=1, label="oracle (noise floor)")
        ax.axvline(TRUE_RANK, color="gray", lw=0.8, alpha=0.5)
        ax.set_xlabel("rank k")
        ax.set_xticks(RANKS)
        ax.grid(True, alpha=0.3)
    ax_test.set_ylabel("RMSE (ratings 1 to 5)")
    ax_test.set_title("held-out ratings (20% of the observed)")
    ax_train.set_title("training ratings")
    ax_test.legend(fontsize=9, loc="lower left")
    fig.suptitle(
        rf"rl.complete on {USERS} users $\times$ {ITEMS} items, rank {TRUE_RANK} plus noise, "
        rf"{OBSERVED:.0%} observed"
    )
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUTPUT, dpi=100)
    print(f"wrote {OUTPUT} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
