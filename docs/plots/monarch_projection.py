"""Monarch projection error of structured and random matrices, and multiply speed vs dense.

Regenerate the figure shown in the user guide (docs/user_guide/structured.rst)
from the repository root, with randla built into .venv (``make build``):

    .venv/bin/python docs/plots/monarch_projection.py

It writes docs/_static/monarch_projection.png (committed, so the docs build
does not recompute it) and prints what it plots. It takes about 25 s on two
cores.

Left: the relative Frobenius error ||M - P||_F / ||M||_F of the projection
P = rl.monarch.project(M, nblocks=b) onto Monarch matrices with b blocks, for
four 1024 x 1024 matrices M:

* Gaussian: i.i.d. N(0, 1) entries, no structure at all;
* Walsh-Hadamard: scipy.linalg.hadamard(1024) = H_32 (x) H_32, a Kronecker
  product, exactly Monarch for b >= 32;
* kernel: exp(-(x_i - x_j)^2 / (2 * 0.1^2)) on 1024 sorted points of [0, 1],
  smooth, so every block is nearly rank one, more so as blocks shrink;
* Monarch + noise: Monarch(w1, w2) with b = 32 and Gaussian factors, plus
  Gaussian noise of relative Frobenius norm 1e-3.

A Monarch matrix with b blocks has 2 n b parameters (n = 1024), against n^2
for a dense matrix: 1/256 of them at b = 2, 1/16 at b = 32, 1 at b = 512.

Right: time of rl.monarch.multiply(x, w1, w2) for 1024 rows x of length n
(b = the divisor of n nearest sqrt(n), square M), against the dense product
x @ D.T with D = M.to_dense() (numpy's matmul, BLAS), best of 7 (of 3 for
n = 4096), in float64 and float32.
"""

from __future__ import annotations

import pathlib
import time

import numpy as np
import randla as rl
import scipy.linalg
from matplotlib.figure import Figure  # no pyplot: renders with Agg, needs no display

N = 1024
NBLOCKS = [2, 4, 8, 16, 32, 64, 128, 256, 512]
ROWS = 1024
SIZES = [256, 512, 1024, 2048, 4096]
OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "_static" / "monarch_projection.png"


def matrices() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    points = np.sort(rng.random(N))
    kernel = np.exp(-((points[:, None] - points[None, :]) ** 2) / (2 * 0.1**2))
    b = 32
    exact = rl.monarch.Monarch(
        rng.standard_normal((b, b, N // b)), rng.standard_normal((b, N // b, b))
    ).to_dense()
    noise = rng.standard_normal((N, N))
    noise *= 1e-3 * np.linalg.norm(exact) / np.linalg.norm(noise)
    return {
        "Gaussian": rng.standard_normal((N, N)),
        "Walsh-Hadamard": scipy.linalg.hadamard(N).astype(np.float64),
        "Gaussian kernel": kernel,
        "Monarch (b = 32) + noise 1e-3": exact + noise,
    }


def best_time(f, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def nearest_sqrt_divisor(n: int) -> int:
    return min((d for d in range(1, n + 1) if n % d == 0), key=lambda d: (abs(d - np.sqrt(n)), d))


def main() -> None:
    start = time.perf_counter()
    fig = Figure(figsize=(11.0, 4.4), layout="constrained")
    left, right = fig.subplots(1, 2)

    markers = ["o", "s", "^", "D"]
    for (name, M), marker in zip(matrices().items(), markers):
        norm = np.linalg.norm(M)
        errors = []
        for b in NBLOCKS:
            P = rl.monarch.project(M, nblocks=b)
            errors.append(np.linalg.norm(M - P.to_dense()) / norm)
        print(f"{name:>30}: " + " ".join(f"b={b}: {e:.1e}" for b, e in zip(NBLOCKS, errors)))
        left.plot(NBLOCKS, np.maximum(errors, 1e-16), marker=marker, lw=1.4, ms=5, label=name)
    left.set_xscale("log", base=2)
    left.set_yscale("log")
    left.set_ylim(1e-16, 2.0)
    left.set_xticks(NBLOCKS, [str(b) for b in NBLOCKS])
    left.set_xlabel("nblocks b (parameters: 2 n b of n$^2$)")
    left.set_ylabel(r"$\|M - P\|_F \,/\, \|M\|_F$")
    left.set_title(f"rl.monarch.project(M, nblocks=b), M of size {N} $\\times$ {N}")
    left.grid(True, which="major", alpha=0.3)
    left.legend(fontsize=9, loc="lower left")

    rng = np.random.default_rng(1)
    for dtype, style in [(np.float64, "-"), (np.float32, "--")]:
        monarch_times, dense_times = [], []
        for n in SIZES:
            b = nearest_sqrt_divisor(n)
            w1 = rng.standard_normal((b, b, n // b)).astype(dtype)
            w2 = rng.standard_normal((b, n // b, b)).astype(dtype)
            x = rng.standard_normal((ROWS, n)).astype(dtype)
            D = rl.monarch.Monarch(w1, w2).to_dense()
            DT = np.ascontiguousarray(D.T)
            repeats = 3 if n >= 4096 else 7
            t_monarch = best_time(lambda: rl.monarch.multiply(x, w1, w2), repeats)  # noqa: B023
            t_dense = best_time(lambda: x @ DT, repeats)  # noqa: B023
            monarch_times.append(t_monarch)
            dense_times.append(t_dense)
            print(
                f"{np.dtype(dtype).name}, n={n} (b={b}): monarch {t_monarch * 1e3:.2f} ms, "
                f"dense {t_dense * 1e3:.2f} ms, {t_dense / t_monarch:.1f}x"
            )
        label = np.dtype(dtype).name
        right.plot(
            SIZES, monarch_times, style, marker="o", color="tab:blue", label=f"Monarch, {label}"
        )
        right.plot(SIZES, dense_times, style, marker="s", color="tab:red", label=f"dense, {label}")
        for n, tm, td in zip(SIZES, monarch_times, dense_times):
            if dtype == np.float64:
                right.annotate(
                    f"{td / tm:.0f}x" if td / tm >= 2 else f"{td / tm:.1f}x",
                    (n, tm),
                    textcoords="offset points",
                    xytext=(0, -14),
                    ha="center",
                    fontsize=8,
                    color="tab:blue",
                )
    right.set_xscale("log", base=2)
    right.set_yscale("log")
    right.set_xticks(SIZES, [str(n) for n in SIZES])
    right.set_xlabel(r"n (M of size n $\times$ n, b $\approx \sqrt{n}$)")
    right.set_ylabel(f"seconds for {ROWS} rows (best of 7; 3 at n = 4096)")
    right.set_title("rl.monarch.multiply(x, w1, w2) vs x @ D.T")
    right.grid(True, which="major", alpha=0.3)
    right.legend(fontsize=9, loc="upper left")

    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUTPUT, dpi=100)
    print(f"wrote {OUTPUT} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
