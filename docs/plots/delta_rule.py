"""The delta rule as a product of generalized reflections: state norms and speed.

Regenerate the figure shown in the user guide (docs/user_guide/structured.rst)
from the repository root, with randla built into .venv (``make build``):

    .venv/bin/python docs/plots/delta_rule.py

It writes docs/_static/delta_rule.png (committed, so the docs build does not
recompute it) and prints what it plots. It takes about 6 s on two cores.

Left: with values v = 0 the recurrence S <- (I - beta k k^T) S multiplies the
state by the generalized Householder transformations alone. With unit keys,
I - beta k k^T has the eigenvalue 1 - beta along k and 1 on the orthogonal
complement: beta = 2 is a reflection (eigenvalue -1, the state norm is kept
exactly), beta = 1 a projection (eigenvalue 0), beta = 1.5 the negative
eigenvalue -0.5 and beta = 0.5 the positive eigenvalue 0.5 (both shrink the
state). The curves show ||S_t||_F / ||S_0||_F over 300 tokens for random unit
keys in dimension K = 16 and a random S_0 of shape (16, 16), from a single
call of rl.householder.delta_rule: K copies of the sequence in the batch,
with queries e_i in copy i, so that o_t of copy i is row i of S_t. The dotted
line is DeltaProduct with n_h = 2 reflections per token.

Right: time of rl.householder.delta_rule(q, k, v, beta, n_h=n_h) (with
K = 64 in float64 it runs the direct form, one fused pass over the state per
sub-step) against the token-by-token recurrence in numpy (vectorized over the heads),
for B = 1, H = 4 heads, K = V = 64, unit keys, beta in (0, 2), against the
sequence length T; best of 5 (one run for the numpy recurrence).
"""

from __future__ import annotations

import pathlib
import time

import numpy as np
import randla as rl
from matplotlib.figure import Figure  # no pyplot: renders with Agg, needs no display

OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "_static" / "delta_rule.png"
K_NORM, TOKENS = 16, 300
LENGTHS = [128, 512, 2048, 8192]
NUMPY_LENGTHS = [128, 512, 2048]
H, DK, DV = 4, 64, 64


def state_norms(beta_value: float, n_h: int, rng: np.random.Generator) -> np.ndarray:
    """||S_t||_F / ||S_0||_F for t = 1..TOKENS, v = 0, from one delta_rule call."""
    keys = rng.standard_normal((TOKENS * n_h, K_NORM))
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    S0 = rng.standard_normal((K_NORM, K_NORM))
    B = K_NORM  # copy i of the sequence reads row i of the state
    q = np.broadcast_to(np.eye(K_NORM)[:, None, None, :], (B, TOKENS, 1, K_NORM))
    k = np.broadcast_to(keys[None, :, None, :], (B, TOKENS * n_h, 1, K_NORM))
    v = np.zeros((B, TOKENS * n_h, 1, K_NORM))
    beta = np.full((B, TOKENS * n_h, 1), beta_value)
    S0s = np.broadcast_to(S0, (B, 1, K_NORM, K_NORM))
    o, _ = rl.householder.delta_rule(q, k, v, beta, n_h=n_h, initial_state=S0s)
    # o[i, t, 0] = S_t^T e_i = row i of S_t.
    return np.sqrt((o[:, :, 0, :] ** 2).sum(axis=(0, 2))) / np.linalg.norm(S0)


def numpy_recurrence(q, k, v, beta, n_h):
    B, T, Hh, K = q.shape
    S = np.zeros((B, Hh, K, v.shape[-1]))
    o = np.empty((B, T, Hh, v.shape[-1]))
    for t in range(T):
        for j in range(n_h):
            i = t * n_h + j
            kj = k[:, i]
            kS = np.einsum("bhk,bhkv->bhv", kj, S)
            S += beta[:, i, :, None, None] * np.einsum("bhk,bhv->bhkv", kj, v[:, i] - kS)
        o[:, t] = np.einsum("bhkv,bhk->bhv", S, q[:, t])
    return o, S


def inputs(T: int, n_h: int, rng: np.random.Generator):
    q = rng.standard_normal((1, T, H, DK))
    k = rng.standard_normal((1, T * n_h, H, DK))
    k /= np.linalg.norm(k, axis=-1, keepdims=True)
    v = rng.standard_normal((1, T * n_h, H, DV))
    beta = rng.uniform(0.0, 2.0, (1, T * n_h, H))
    return q, k, v, beta


def best_time(f, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    start = time.perf_counter()
    fig = Figure(figsize=(11.0, 4.4), layout="constrained")
    left, right = fig.subplots(1, 2)

    rng = np.random.default_rng(0)
    tokens = np.arange(1, TOKENS + 1)
    for beta_value, color in [
        (2.0, "tab:green"),
        (1.5, "tab:orange"),
        (1.0, "tab:red"),
        (0.5, "tab:blue"),
    ]:
        norms = state_norms(beta_value, 1, rng)
        eigen = 1.0 - beta_value + 0.0  # no -0
        print(f"beta = {beta_value}: ||S_T|| / ||S_0|| = {norms[-1]:.3e}")
        left.plot(
            tokens,
            norms,
            color=color,
            lw=1.6,
            label=rf"$\beta$ = {beta_value:g} (eigenvalue {eigen:g})",
        )
    norms = state_norms(2.0, 2, rng)
    print(f"beta = 2, n_h = 2: max | ||S_t|| / ||S_0|| - 1 | = {np.abs(norms - 1).max():.1e}")
    left.plot(tokens, norms, ":", color="black", lw=1.6, label=r"$\beta$ = 2, n_h = 2 (rotations)")
    left.set_yscale("log")
    left.set_ylim(1e-6, 3.0)
    left.set_xlabel("token t")
    left.set_ylabel(r"$\|S_t\|_F \,/\, \|S_0\|_F$")
    left.set_title(r"v = 0: $S_t = H_t \cdots H_1 S_0$, $H = I - \beta k k^\top$, K = 16")
    left.grid(True, which="major", alpha=0.3)
    left.legend(fontsize=9, loc="lower left")

    markers = {1: "o", 2: "s"}
    for n_h in (1, 2):
        times, reference = [], []
        for T in LENGTHS:
            q, k, v, beta = inputs(T, n_h, rng)
            t_randla = best_time(lambda: rl.householder.delta_rule(q, k, v, beta, n_h=n_h))  # noqa: B023
            times.append(t_randla)
            line = f"n_h={n_h}, T={T}: randla {t_randla * 1e3:.1f} ms"
            if T in NUMPY_LENGTHS:
                t0 = time.perf_counter()
                o_ref, _ = numpy_recurrence(q, k, v, beta, n_h)
                t_ref = time.perf_counter() - t0
                reference.append(t_ref)
                o, _ = rl.householder.delta_rule(q, k, v, beta, n_h=n_h)
                error = np.abs(o - o_ref).max() / np.abs(o_ref).max()
                line += f", numpy {t_ref * 1e3:.0f} ms ({t_ref / t_randla:.0f}x), error {error:.1e}"
            print(line)
        m = markers[n_h]
        right.plot(
            LENGTHS,
            times,
            "-",
            marker=m,
            color="tab:blue",
            label=f"randla, n_h={n_h}",
        )
        right.plot(
            NUMPY_LENGTHS,
            reference,
            ":",
            marker=m,
            color="tab:red",
            label=f"numpy recurrence, n_h={n_h}",
        )
    right.set_xscale("log", base=2)
    right.set_yscale("log")
    right.set_xticks(LENGTHS, [str(T) for T in LENGTHS])
    right.set_xlabel("sequence length T (tokens)")
    right.set_ylabel("seconds")
    right.set_title(f"rl.householder.delta_rule, B = 1, H = {H}, K = V = {DK}")
    right.grid(True, which="major", alpha=0.3)
    right.legend(fontsize=8, loc="upper left")

    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUTPUT, dpi=100)
    print(f"wrote {OUTPUT} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
