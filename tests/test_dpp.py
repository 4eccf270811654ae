"""rl.dpp: DPPs, k-DPPs, volume sampling and weighted least squares nodes.

Every law is checked against an independent numpy reference:

- small ground sets: the exact probability of every subset (numpy determinants,
  enumerated with itertools) against the empirical frequencies of many draws, by a
  chi-square test at a fixed seed;
- larger ground sets: inclusion frequencies against diag(K) and pairwise
  frequencies against det(K_{ij}) (or the exact k-DPP marginals), by exact
  binomial tests with a Bonferroni correction.

Each statistical check comes with a power check: the same test, fed with a sample of
the same size drawn by numpy from a wrong law (uniform sets, independent inclusions
with the right marginals, ...), must reject it. The tests have fixed seeds, so they
are deterministic; ALPHA bounds the chance that a correct sampler fails one of them
for an unlucky seed.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest
import randla as rl
import scipy.stats as stats
from conftest import dense_layouts

# Level of every goodness-of-fit test (a correct sampler fails it with probability
# ALPHA for a given seed) and the p-value below which a wrong law must fall.
ALPHA = 1e-4
POWER = 1e-8

WLS_METHODS = ["iid_christoffel", "dpp_christoffel", "volume_rescaled", "repeated_dpp"]
DISTINCT_WLS_METHODS = ["dpp_christoffel", "volume_rescaled", "repeated_dpp"]


# --- exact laws on small ground sets ---------------------------------------------------


def _det(M: np.ndarray, S: tuple[int, ...]) -> float:
    return float(np.linalg.det(M[np.ix_(S, S)])) if S else 1.0


def _subsets(N: int, size: int | None = None) -> list[tuple[int, ...]]:
    sizes = range(N + 1) if size is None else [size]
    return [S for s in sizes for S in itertools.combinations(range(N), s)]


def _dpp_law(L: np.ndarray) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """P(Y = S) = det(L_S) / det(L + I) for every subset S."""
    cells = _subsets(L.shape[0])
    probs = np.array([_det(L, S) for S in cells]) / np.linalg.det(L + np.eye(L.shape[0]))
    return cells, np.maximum(probs, 0.0)


def _kdpp_law(L: np.ndarray, k: int) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """P(Y = S) = det(L_S) / sum_{|T| = k} det(L_T) for |S| = k."""
    cells = _subsets(L.shape[0], k)
    probs = np.maximum([_det(L, S) for S in cells], 0.0)
    return cells, probs / probs.sum()


def _projection_law(V: np.ndarray) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """Projection DPP of K = V V^T: P(Y = S) = det(K_S) for |S| = r."""
    K = V @ V.T
    cells = _subsets(V.shape[0], V.shape[1])
    return cells, np.maximum([_det(K, S) for S in cells], 0.0)


def _volume_law(A: np.ndarray, k: int) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """P(S) = det(A_S^T A_S) / (C(n - d, k - d) det(A^T A)), the closed form."""
    n, d = A.shape
    cells = _subsets(n, k)
    dets = np.array([np.linalg.det(A[list(S)].T @ A[list(S)]) for S in cells])
    return cells, np.maximum(dets, 0.0) / (math.comb(n - d, k - d) * np.linalg.det(A.T @ A))


def _independent_law(p: np.ndarray, cells: list[tuple[int, ...]]) -> np.ndarray:
    """Independent inclusions with probabilities p (the right marginals, no repulsion),
    conditioned on the cells given."""
    probs = np.array([np.prod(np.where(np.isin(np.arange(len(p)), S), p, 1 - p)) for S in cells])
    return probs / probs.sum()


def _counts(samples, cells: list[tuple[int, ...]]) -> np.ndarray:
    """How many samples equal each cell; a sample that is not a cell fails."""
    position = {S: i for i, S in enumerate(cells)}
    counts = np.zeros(len(cells), dtype=np.int64)
    for s in samples:
        key = tuple(int(i) for i in s)
        assert key in position, f"sampled {key}, not a possible set"
        counts[position[key]] += 1
    return counts


def _gof_pvalue(counts: np.ndarray, probs: np.ndarray) -> float:
    """Chi-square goodness-of-fit p-value of counts against the law probs.

    Cells of probability zero must be empty (else the p-value is 0); cells with an
    expected count below 5 are pooled into one.
    """
    counts = np.asarray(counts, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    assert abs(probs.sum() - 1.0) < 1e-9, probs.sum()
    possible = probs > 1e-12
    if counts[~possible].sum() > 0:
        return 0.0
    n = counts.sum()
    observed, expected = counts[possible], n * probs[possible] / probs[possible].sum()
    small = expected < 5.0
    if small.any():
        observed = np.append(observed[~small], observed[small].sum())
        expected = np.append(expected[~small], expected[small].sum())
    if len(observed) < 2:
        return 1.0
    return float(stats.chisquare(observed, expected).pvalue)


def _assert_law(counts: np.ndarray, probs: np.ndarray, *wrong: np.ndarray) -> None:
    """counts fit probs, and samples of the same size from each wrong law do not."""
    pvalue = _gof_pvalue(counts, probs)
    assert pvalue > ALPHA, f"chi-square p-value {pvalue:.2e}: not the expected law"
    n = int(counts.sum())
    for i, law in enumerate(wrong):
        assert np.abs(law - probs).sum() > 1e-3, "the wrong law equals the right one"
        fake = np.random.default_rng(1000 + i).multinomial(n, law)
        power = _gof_pvalue(fake, probs)
        assert power < POWER, f"wrong law {i} not rejected (p = {power:.2e}): no power"


def _uniform(cells: list[tuple[int, ...]]) -> np.ndarray:
    return np.full(len(cells), 1.0 / len(cells))


# --- binomial checks of inclusion and pair frequencies ----------------------------------


def _min_binomial_pvalue(counts: np.ndarray, n: int, probs: np.ndarray) -> float:
    """Bonferroni-corrected smallest two-sided exact binomial p-value."""
    counts = np.ravel(counts)
    probs = np.clip(np.ravel(probs), 0.0, 1.0)
    lower = stats.binom.cdf(counts, n, probs)
    upper = stats.binom.sf(counts - 1, n, probs)
    pvalues = np.minimum(1.0, 2.0 * np.minimum(lower, upper))
    return float(pvalues.min() * counts.size)


def _indicators(samples, N: int) -> np.ndarray:
    X = np.zeros((len(samples), N), dtype=np.float64)
    for row, s in enumerate(samples):
        X[row, np.asarray(s)] = 1.0
    return X


def _marginal_pvalues(X: np.ndarray, p1: np.ndarray, p2: np.ndarray) -> tuple[float, float]:
    """Bonferroni p-values of the inclusion counts (against p1) and of the pair counts
    (against p2, i < j) of the indicator matrix X (one row per sample)."""
    n = X.shape[0]
    upper = np.triu_indices(X.shape[1], 1)
    pairs = (X.T @ X)[upper]
    return (
        _min_binomial_pvalue(X.sum(axis=0), n, p1),
        _min_binomial_pvalue(pairs, n, p2[upper]),
    )


def _assert_marginals(samples, N: int, p1: np.ndarray, p2: np.ndarray) -> None:
    """Inclusion and pair frequencies match p1 and p2; independent inclusions with the
    marginals p1 (a sampler without repulsion) fail the pair test."""
    X = _indicators(samples, N)
    single, pair = _marginal_pvalues(X, p1, p2)
    assert single > ALPHA, f"inclusion frequencies off (Bonferroni p = {single:.2e})"
    assert pair > ALPHA, f"pair frequencies off (Bonferroni p = {pair:.2e})"
    fake = (np.random.default_rng(7).random(X.shape) < p1).astype(np.float64)
    assert _marginal_pvalues(fake, p1, p2)[1] < POWER, "pair test has no power"


# --- test data --------------------------------------------------------------------------


def _gaussian_kernel(x: np.ndarray, scale: float, length: float) -> np.ndarray:
    return scale * np.exp(-((x[:, None] - x[None, :]) ** 2) / (2 * length**2))


def _small_L() -> np.ndarray:
    """5 x 5 PSD L-ensemble with two close pairs of points (strong repulsion)."""
    return _gaussian_kernel(np.array([0.0, 0.25, 1.1, 1.3, 2.6]), 2.0, 0.6)


def _orthonormal(rng: np.random.Generator, N: int, r: int, heavy: int = 0) -> np.ndarray:
    """N x r orthonormal columns with non-uniform leverage (the first rows scaled up)."""
    G = rng.standard_normal((N, r))
    G[:heavy] *= 4.0
    return np.linalg.qr(G)[0]


def _legendre(x: np.ndarray, m: int) -> np.ndarray:
    """Legendre polynomials of degree < m, orthonormal for the uniform law on [-1, 1]."""
    return np.polynomial.legendre.legvander(x, m - 1) * np.sqrt(2 * np.arange(m) + 1)


def _assert_index_set(S: np.ndarray, size: int, N: int) -> None:
    assert isinstance(S, np.ndarray) and S.dtype == np.int64, type(S)
    assert S.shape == (size,), S.shape
    if size:
        assert np.all(np.diff(S) > 0), f"not sorted and distinct: {S}"
        assert 0 <= S[0] and S[-1] < N


# --- sample_projection ------------------------------------------------------------------


def test_sample_projection_output() -> None:
    V = _orthonormal(np.random.default_rng(0), 50, 6)
    _assert_index_set(rl.dpp.sample_projection(V, rng=0), 6, 50)
    many = rl.dpp.sample_projection(V, n_samples=40, rng=0)
    assert isinstance(many, np.ndarray) and many.dtype == np.int64 and many.shape == (40, 6)
    for row in many:
        _assert_index_set(row, 6, 50)
    assert rl.dpp.sample_projection(V, n_samples=1, rng=0).shape == (1, 6)
    # Same seed, same samples; another seed, other samples.
    np.testing.assert_array_equal(many, rl.dpp.sample_projection(V, n_samples=40, rng=0))
    assert not np.array_equal(many, rl.dpp.sample_projection(V, n_samples=40, rng=1))
    one = rl.dpp.sample_projection(V, rng=np.random.default_rng(3))
    _assert_index_set(one, 6, 50)


def test_sample_projection_full_rank_returns_everything() -> None:
    V = np.linalg.qr(np.random.default_rng(1).standard_normal((7, 7)))[0]
    np.testing.assert_array_equal(rl.dpp.sample_projection(V, rng=0), np.arange(7))


def test_sample_projection_exact_law() -> None:
    V = _orthonormal(np.random.default_rng(2), 7, 3, heavy=2)
    cells, probs = _projection_law(V)
    assert abs(probs.sum() - 1.0) < 1e-12  # Cauchy-Binet: the reference is a law
    samples = rl.dpp.sample_projection(V, n_samples=3000, rng=11)
    leverage = (V**2).sum(axis=1)
    _assert_law(_counts(samples, cells), probs, _uniform(cells), _independent_law(leverage, cells))


def test_sample_projection_marginals_and_pairs() -> None:
    # Legendre basis on a grid: neighbours are strongly repulsive (K_ij^2 ~ K_ii K_jj).
    N, r = 120, 8
    V = np.linalg.qr(_legendre(np.linspace(-1, 1, N), r))[0]
    K = V @ V.T
    samples = rl.dpp.sample_projection(V, n_samples=2000, rng=12)
    assert samples.shape == (2000, r)
    assert all(len(np.unique(s)) == r for s in samples)
    _assert_marginals(samples, N, np.diag(K), np.outer(np.diag(K), np.diag(K)) - K**2)


def test_sample_projection_thread_count_and_layouts_do_not_matter() -> None:
    V = _orthonormal(np.random.default_rng(3), 300, 10)
    with rl.num_threads(1):
        reference = rl.dpp.sample_projection(V, n_samples=64, rng=5)
    with rl.num_threads(4):
        np.testing.assert_array_equal(rl.dpp.sample_projection(V, n_samples=64, rng=5), reference)
    for name, view in dense_layouts(V).items():
        got = rl.dpp.sample_projection(view, n_samples=64, rng=5)
        np.testing.assert_array_equal(got, reference, err_msg=name)


def test_sample_projection_rejects_non_orthonormal() -> None:
    rng = np.random.default_rng(4)
    V = _orthonormal(rng, 40, 5)
    # Within the tolerance: accepted.
    rl.dpp.sample_projection(V + 1e-10 * rng.standard_normal(V.shape), rng=0)
    for bad in (1.01 * V, rng.standard_normal((40, 5)), np.hstack([V, V[:, :1]])):
        with pytest.raises(ValueError, match="orthonormal"):
            rl.dpp.sample_projection(bad, rng=0)
    nan = V.copy()
    nan[3, 2] = np.nan
    with pytest.raises(ValueError):
        rl.dpp.sample_projection(nan, rng=0)


# --- sample: DPPs of variable size ------------------------------------------------------


def _kernel_inputs(L: np.ndarray, form: str) -> dict:
    """The keyword arguments that describe the L-ensemble L in each form."""
    N = L.shape[0]
    if form == "L":
        return {"L": L}
    if form == "K":
        return {"K": L @ np.linalg.inv(L + np.eye(N))}
    if form == "features":
        return {"features": np.linalg.cholesky(L)}
    if form == "features_wide":  # D > N: the same L from 2N features
        Q = np.linalg.qr(np.random.default_rng(5).standard_normal((2 * N, 2 * N)))[0]
        return {"features": np.linalg.cholesky(L) @ Q[:N]}
    if form == "eig":
        return {"eig": np.linalg.eigh(L)}
    raise AssertionError(form)


@pytest.mark.parametrize("form", ["L", "K", "features", "features_wide", "eig"])
def test_dpp_exact_law(form: str) -> None:
    L = _small_L()
    cells, probs = _dpp_law(L)
    assert abs(probs.sum() - 1.0) < 1e-12
    samples = rl.dpp.sample(**_kernel_inputs(L, form), n_samples=3000, rng=21)
    assert isinstance(samples, list) and len(samples) == 3000
    for S in samples[:50]:
        _assert_index_set(S, len(S), 5)
    K = L @ np.linalg.inv(L + np.eye(5))
    _assert_law(
        _counts(samples, cells), probs, _uniform(cells), _independent_law(np.diag(K), cells)
    )


@pytest.mark.parametrize("form", ["features", "eig_partial"])
def test_dpp_exact_law_low_rank(form: str) -> None:
    # L of rank 3 on 6 items: no set of more than 3 items.
    rng = np.random.default_rng(6)
    Phi = rng.standard_normal((6, 3)) * np.array([2.0, 1.0, 0.5])
    Phi[1] = Phi[0] + 0.1 * rng.standard_normal(3)  # a near duplicate
    L = Phi @ Phi.T
    if form == "features":
        inputs = {"features": Phi}
    else:
        U, s, _ = np.linalg.svd(Phi, full_matrices=False)
        inputs = {"eig": (s**2, U)}  # a partial eigendecomposition: 3 of 6 eigenpairs
    cells, probs = _dpp_law(L)
    samples = rl.dpp.sample(**inputs, n_samples=3000, rng=22)
    assert max(len(S) for S in samples) <= 3
    K = L @ np.linalg.inv(L + np.eye(6))
    _assert_law(_counts(samples, cells), probs, _independent_law(np.diag(K), cells))


def test_dpp_of_a_projection_kernel() -> None:
    # K = V V^T has eigenvalues 0 and 1 (an infinite L): the projection DPP, size r.
    V = _orthonormal(np.random.default_rng(7), 6, 3, heavy=2)
    cells, probs = _projection_law(V)
    samples = rl.dpp.sample(K=V @ V.T, n_samples=2000, rng=23)
    assert all(len(S) == 3 for S in samples)
    _assert_law(_counts(samples, cells), probs, _uniform(cells))


def test_dpp_marginals_and_pairs() -> None:
    N = 60
    x = np.sort(np.random.default_rng(8).uniform(0, 6, N))
    L = _gaussian_kernel(x, 3.0, 0.3)
    K = L @ np.linalg.inv(L + np.eye(N))
    samples = rl.dpp.sample(L=L, n_samples=2000, rng=24)
    sizes = np.array([len(S) for S in samples])
    # |Y| is a sum of independent Bernoulli(mu_i): mean tr K, variance sum mu (1 - mu).
    mu = np.linalg.eigvalsh(K)
    se = np.sqrt(np.sum(mu * (1 - mu)) / len(samples))
    assert abs(sizes.mean() - np.trace(K)) < 4.5 * se
    _assert_marginals(samples, N, np.diag(K), np.outer(np.diag(K), np.diag(K)) - K**2)


def test_dpp_output_and_determinism() -> None:
    L = _small_L()
    one = rl.dpp.sample(L=L, rng=0)
    _assert_index_set(one, len(one), 5)
    many = rl.dpp.sample(L=L, n_samples=30, rng=0)
    again = rl.dpp.sample(L=L, n_samples=30, rng=0)
    assert isinstance(many, list) and len(many) == 30
    for a, b in zip(many, again):
        _assert_index_set(a, len(a), 5)
        np.testing.assert_array_equal(a, b)
    other = rl.dpp.sample(L=L, n_samples=30, rng=1)
    assert any(len(a) != len(b) or np.any(a != b) for a, b in zip(many, other))
    # Zero kernel: always the empty set.
    empty = rl.dpp.sample(L=np.zeros((4, 4)), rng=0)
    _assert_index_set(empty, 0, 4)
    for name, view in dense_layouts(L).items():
        got = rl.dpp.sample(L=view, n_samples=30, rng=0)
        assert all(np.array_equal(a, b) for a, b in zip(got, many)), name


# --- sample: k-DPPs ---------------------------------------------------------------------


def _kdpp_inputs(L: np.ndarray, form: str) -> dict:
    w, V = np.linalg.eigh(L)
    if form == "eig_times_1e200":  # e_k(w) overflows in floating point
        return {"eig": (w * 1e200, V)}
    if form == "eig_times_1e-200":  # e_k(w) underflows
        return {"eig": (w * 1e-200, V)}
    if form == "L_times_1e150":
        return {"L": L * 1e150}
    return _kernel_inputs(L, form)


@pytest.mark.parametrize(
    "form", ["L", "K", "features", "eig", "eig_times_1e200", "eig_times_1e-200", "L_times_1e150"]
)
def test_kdpp_exact_law(form: str) -> None:
    # The k-DPP does not change when L is scaled: the scaled forms have the same law.
    L = _gaussian_kernel(np.array([0.0, 0.2, 0.9, 1.0, 1.8, 3.0]), 1.5, 0.5)
    cells, probs = _kdpp_law(L, 3)
    samples = rl.dpp.sample(**_kdpp_inputs(L, form), k=3, n_samples=2500, rng=31)
    assert isinstance(samples, np.ndarray) and samples.dtype == np.int64
    assert samples.shape == (2500, 3)
    leverage = np.diag(L) / np.trace(L)
    _assert_law(_counts(samples, cells), probs, _uniform(cells), _independent_law(leverage, cells))


def _successive_sampling_law(lam: np.ndarray, cells: list[tuple[int, ...]]) -> np.ndarray:
    """k items drawn one by one without replacement with probabilities proportional to
    lam: close to the k-DPP of diag(lam), but not it."""
    law = dict.fromkeys(cells, 0.0)
    for order in itertools.permutations(range(len(lam)), len(cells[0])):
        p, left = 1.0, lam.sum()
        for i in order:
            p *= lam[i] / left
            left -= lam[i]
        law[tuple(sorted(order))] += p
    return np.array([law[S] for S in cells])


@pytest.mark.parametrize("form", ["L", "K", "eig", "eig_times_1e250"])
def test_kdpp_diagonal_kernel(form: str) -> None:
    # L = diag(lam): P(S) = prod(lam_S) / e_k(lam), which tests the selection of
    # eigenvectors by elementary symmetric polynomials directly.
    lam = np.array([50.0, 20.0, 10.0, 5.0, 2.0, 1.0, 0.5, 0.2])
    inputs = {
        "L": {"L": np.diag(lam)},
        "K": {"K": np.diag(lam / (1 + lam))},
        "eig": {"eig": (lam, np.eye(8))},
        "eig_times_1e250": {"eig": (lam * 1e250, np.eye(8))},  # e_4 ~ 1e1000
    }[form]
    cells = _subsets(8, 4)
    probs = np.array([np.prod(lam[list(S)]) for S in cells])
    probs /= probs.sum()
    samples = rl.dpp.sample(**inputs, k=4, n_samples=3000, rng=37)
    _assert_law(_counts(samples, cells), probs, _successive_sampling_law(lam, cells))


def test_kdpp_exact_law_partial_eig() -> None:
    # eig=(w, V) with V of 4 columns on 7 items: the remaining eigenvalues are zero.
    rng = np.random.default_rng(9)
    V = _orthonormal(rng, 7, 4, heavy=2)
    w = np.array([5.0, 2.0, 0.5, 0.05])
    L = (V * w) @ V.T
    cells, probs = _kdpp_law(L, 2)
    samples = rl.dpp.sample(eig=(w, V), k=2, n_samples=2500, rng=32)
    _assert_law(_counts(samples, cells), probs, _uniform(cells))


def test_kdpp_of_full_rank_is_projection() -> None:
    # k = rank: every eigenvector is kept, the projection DPP of V.
    V = _orthonormal(np.random.default_rng(10), 7, 3, heavy=2)
    cells, probs = _projection_law(V)
    samples = rl.dpp.sample(eig=(np.array([3.0, 1e-3, 1e4]), V), k=3, n_samples=2500, rng=33)
    _assert_law(_counts(samples, cells), probs, _uniform(cells))


def _elementary_symmetric(lam: np.ndarray, k: int) -> float:
    e = np.zeros(k + 1)
    e[0] = 1.0
    for value in lam:
        e[1:] = e[1:] + value * e[:-1]
    return float(e[k])


def _kdpp_marginals(w: np.ndarray, V: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inclusion and pair probabilities of the k-DPP of L = V diag(w) V^T.

    Eigenvector n is kept with probability w_n e_{k-1}(w without n) / e_k(w), the pair
    (n, n') with w_n w_n' e_{k-2}(w without n, n') / e_k(w); given the kept set J,
    P(i in Y) = sum_{n in J} V_in^2 and P(i, j in Y) = det of the 2 x 2 submatrix of
    the projection kernel V_J V_J^T.
    """
    D = len(w)
    total = _elementary_symmetric(w, k)
    keep2 = np.zeros((D, D))
    for a, b in itertools.combinations(range(D), 2):
        rest = np.delete(w, [a, b])
        keep2[a, b] = keep2[b, a] = w[a] * w[b] * _elementary_symmetric(rest, k - 2) / total
    keep1 = keep2.sum(axis=1) / (k - 1)
    A = V**2
    p1 = A @ keep1
    C = V[:, None, :] * V[None, :, :]
    p2 = A @ keep2 @ A.T - np.einsum("ijn,nm,ijm->ij", C, keep2, C)
    return p1, p2


def test_kdpp_marginals_and_pairs() -> None:
    N, D, k = 80, 25, 8
    rng = np.random.default_rng(11)
    x = np.sort(rng.uniform(-1, 1, N))
    V = np.linalg.qr(_legendre(x, D))[0]
    w = np.geomspace(1e3, 1e-3, D)  # a spread spectrum; the top 8 eigenvectors dominate
    p1, p2 = _kdpp_marginals(w, V, k)
    assert abs(p1.sum() - k) < 1e-9 and abs(p2.sum() - k * (k - 1)) < 1e-6
    samples = rl.dpp.sample(eig=(w, V), k=k, n_samples=2000, rng=34)
    for S in samples[:20]:
        _assert_index_set(S, k, N)
    _assert_marginals(samples, N, p1, p2)


def test_kdpp_output_and_determinism() -> None:
    L = _small_L()
    one = rl.dpp.sample(L=L, k=2, rng=0)
    _assert_index_set(one, 2, 5)
    many = rl.dpp.sample(L=L, k=2, n_samples=30, rng=0)
    assert many.dtype == np.int64 and many.shape == (30, 2)
    np.testing.assert_array_equal(many, rl.dpp.sample(L=L, k=2, n_samples=30, rng=0))
    assert not np.array_equal(many, rl.dpp.sample(L=L, k=2, n_samples=30, rng=1))
    _assert_index_set(rl.dpp.sample(L=L, k=0, rng=0), 0, 5)
    np.testing.assert_array_equal(rl.dpp.sample(L=L, k=5, rng=0), np.arange(5))


def _cosine_basis(N: int, r: int) -> np.ndarray:
    """The first r orthonormal DCT-II vectors of length N: orthonormal columns in O(N r),
    without a QR of a tall matrix."""
    i = np.arange(N)[:, None] + 0.5
    V = np.cos(np.pi * i * np.arange(r)[None, :] / N) * np.sqrt(2.0 / N)
    V[:, 0] /= np.sqrt(2.0)
    return V


def _block_eig(N: int, top: np.ndarray, rest: np.ndarray, rows: int, seed: int):
    """eig=(w, V): the eigenvectors of the eigenvalues `top` live on rows [0, rows), the
    others on rows [rows, N)."""
    k, r = len(top), len(top) + len(rest)
    V = np.zeros((N, r))
    V[:rows, :k] = np.linalg.qr(np.random.default_rng(seed).standard_normal((rows, k)))[0]
    V[rows:, k:] = _cosine_basis(N - rows, r - k)
    return np.concatenate([top, rest]), V


@pytest.mark.parametrize(
    "top, rest",
    [
        # prod(top) ~ 1e450: e_k overflows in floating point
        (np.geomspace(1e6, 1e3, 100), np.geomspace(1e-2, 1e-12, 100)),
        # prod(top) ~ 1e-1100: e_k underflows
        (np.geomspace(1e-10, 1e-12, 100), np.geomspace(1e-20, 1e-40, 100)),
    ],
    ids=["overflow", "underflow"],
)
def test_kdpp_stable_at_n_20000(top: np.ndarray, rest: np.ndarray) -> None:
    # The k = 100 dominant eigenvectors are kept with probability > 0.999, so every
    # sample lies in the 300 rows they live on. Linear-space e_k gives inf or 0 here.
    N, k, rows = 20_000, 100, 300
    w, V = _block_eig(N, top, rest, rows, seed=12)
    samples = rl.dpp.sample(eig=(w, V), k=k, n_samples=2, rng=35)
    assert samples.shape == (2, k)
    for S in samples:
        _assert_index_set(S, k, N)
        assert S[-1] < rows, "sampled outside the rows of the dominant eigenvectors"


@functools.lru_cache(maxsize=1)
def _random_orthonormal_20000() -> np.ndarray:
    V = np.linalg.qr(np.random.default_rng(13).standard_normal((20_000, 200)))[0]
    V.flags.writeable = False
    return V


@pytest.mark.slow
@pytest.mark.parametrize("k", [1, 20, 100, 199])
def test_kdpp_spread_spectrum_at_n_20000(k: int) -> None:
    # The case: N = 20000, eigenvalues spanning 1e-12 to 1e6.
    N, r = 20_000, 200
    V = _random_orthonormal_20000()
    w = np.geomspace(1e-12, 1e6, r)
    samples = rl.dpp.sample(eig=(w, V), k=k, n_samples=2, rng=36)
    assert samples.shape == (2, k)
    for S in samples:
        _assert_index_set(S, k, N)


@pytest.mark.parametrize("k", [60, 199])
def test_kdpp_spread_spectrum_at_n_20000_quick(k: int) -> None:
    # The slow test above with a cosine basis instead of a QR of a random matrix.
    # e_60(w) ~ 1e202 (near the largest double), e_199(w) ~ 1e-587 (underflows).
    N, r = 20_000, 200
    V = _cosine_basis(N, r)
    w = np.geomspace(1e-12, 1e6, r)
    _assert_index_set(rl.dpp.sample(eig=(w, V), k=k, rng=36), k, N)


# --- sample: bad input ------------------------------------------------------------------


def test_sample_needs_exactly_one_kernel() -> None:
    L = _small_L()
    with pytest.raises(ValueError):
        rl.dpp.sample()
    with pytest.raises(ValueError):
        rl.dpp.sample(L=L, K=L @ np.linalg.inv(L + np.eye(5)))
    with pytest.raises(ValueError):
        rl.dpp.sample(L=L, features=np.linalg.cholesky(L))
    with pytest.raises(ValueError):
        rl.dpp.sample(features=np.linalg.cholesky(L), eig=np.linalg.eigh(L))


def test_sample_rejects_bad_kernels() -> None:
    L = _small_L()
    nonsymmetric = L.copy()
    nonsymmetric[0, 1] += 0.5
    with pytest.raises(ValueError):
        rl.dpp.sample(L=nonsymmetric)
    w, V = np.linalg.eigh(L)
    indefinite = (V * np.append(-0.5, w[1:])) @ V.T
    with pytest.raises(ValueError):
        rl.dpp.sample(L=indefinite)
    with pytest.raises(ValueError):
        rl.dpp.sample(L=indefinite, k=2)
    for mu in (np.array([0.2, 0.5, 1.5, 0.1, 0.3]), np.array([0.2, 0.5, -0.3, 0.1, 0.3])):
        with pytest.raises(ValueError):
            rl.dpp.sample(K=(V * mu) @ V.T)
    with pytest.raises(ValueError):
        rl.dpp.sample(eig=(np.append(-1.0, w[1:]), V))
    for name, value in (("L", L), ("K", L / 10), ("features", np.linalg.cholesky(L))):
        bad = value.copy()
        bad[1, 0] = np.nan
        if name != "features":
            bad[0, 1] = np.nan
        with pytest.raises(ValueError):
            rl.dpp.sample(**{name: bad})


def test_sample_rejects_bad_k() -> None:
    rng = np.random.default_rng(14)
    Phi = rng.standard_normal((6, 2))
    L = Phi @ Phi.T  # rank 2
    U = np.linalg.svd(Phi, full_matrices=False)[0]
    for inputs in ({"L": L}, {"features": Phi}, {"eig": (np.array([2.0, 1.0]), U)}):
        rl.dpp.sample(**inputs, k=2, rng=0)
        with pytest.raises(ValueError):
            rl.dpp.sample(**inputs, k=3, rng=0)
        with pytest.raises(ValueError):
            rl.dpp.sample(**inputs, k=-1, rng=0)
    with pytest.raises(ValueError):
        rl.dpp.sample(L=_small_L(), k=6, rng=0)


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_sample_rejects_k_above_rank_of_K(scale: float) -> None:
    # K of rank 3 on 6 items: numpy computes its three zero eigenvalues as rounding
    # noise of order 1e-17 (positive here), which must not count in the rank.
    V = np.linalg.qr(np.random.default_rng(0).standard_normal((6, 3)))[0]
    K = scale * (V @ V.T)
    rl.dpp.sample(K=K, k=3, rng=0)
    with pytest.raises(ValueError):
        rl.dpp.sample(K=K, k=4, rng=0)


def test_eig_rejects_non_orthonormal_vectors() -> None:
    V = _orthonormal(np.random.default_rng(15), 10, 3)
    with pytest.raises(ValueError):
        rl.dpp.sample(eig=(np.ones(3), 2.0 * V), k=2)


# --- volume sampling --------------------------------------------------------------------


def _volume_matrix(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, d))
    A[0] *= 3.0  # a heavy row
    A[1] = A[2] + 0.05 * rng.standard_normal(d)  # a near duplicate
    return A


@pytest.mark.parametrize("n, d, k", [(7, 2, 3), (6, 3, 3), (8, 2, 5)])
def test_volume_sample_exact_law(n: int, d: int, k: int) -> None:
    A = _volume_matrix(n, d, seed=16)
    cells, probs = _volume_law(A, k)
    assert abs(probs.sum() - 1.0) < 1e-10  # the closed form's normalizer is right
    draws = 2000
    rng = np.random.default_rng(41)
    samples = [rl.dpp.volume_sample(A, k, rng=rng) for _ in range(draws)]
    for S in samples[:20]:
        _assert_index_set(S, k, n)
    leverage = (np.linalg.qr(A)[0] ** 2).sum(axis=1)
    _assert_law(_counts(samples, cells), probs, _uniform(cells), _independent_law(leverage, cells))


def test_volume_sample_edge_sizes_and_determinism() -> None:
    A = _volume_matrix(30, 4, seed=17)
    np.testing.assert_array_equal(rl.dpp.volume_sample(A, 30, rng=0), np.arange(30))
    for k in (4, 9):
        S = rl.dpp.volume_sample(A, k, rng=3)
        _assert_index_set(S, k, 30)
        np.testing.assert_array_equal(S, rl.dpp.volume_sample(A, k, rng=3))
    draws = [tuple(rl.dpp.volume_sample(A, 9, rng=seed)) for seed in range(10)]
    assert len(set(draws)) > 1


def test_volume_sample_bad_input() -> None:
    A = _volume_matrix(10, 3, seed=18)
    with pytest.raises(ValueError):
        rl.dpp.volume_sample(A, 2)
    with pytest.raises(ValueError):
        rl.dpp.volume_sample(A, 11)
    deficient = A.copy()
    deficient[:, 2] = deficient[:, 0] - deficient[:, 1]
    with pytest.raises((ValueError, np.linalg.LinAlgError)):
        rl.dpp.volume_sample(deficient, 5)
    bad = A.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError):
        rl.dpp.volume_sample(bad, 5)


# --- weighted least squares nodes -------------------------------------------------------


def _pool_orthonormal(Phi: np.ndarray) -> np.ndarray:
    """Rows q(x_i) of a basis orthonormal for the pool's empirical measure: Q^T Q / N = I."""
    return np.linalg.qr(Phi)[0] * np.sqrt(Phi.shape[0])


def _legendre_pool(N: int, m: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(seed).uniform(-1, 1, N)
    return x, _legendre(x, m)


def _runge(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + 16.0 * x**2) + 0.3 * np.sin(3.0 * x)


def _wls_error(Phi: np.ndarray, y: np.ndarray, idx: np.ndarray, w: np.ndarray) -> float:
    """Empirical L2 error on the pool of the weighted least squares fit on (idx, w)."""
    sw = np.sqrt(w)
    c = np.linalg.lstsq(Phi[idx] * sw[:, None], y[idx] * sw, rcond=None)[0]
    return float(np.sqrt(np.mean((Phi @ c - y) ** 2)))


def _best_error(Phi: np.ndarray, y: np.ndarray) -> float:
    c = np.linalg.lstsq(Phi, y, rcond=None)[0]
    return float(np.sqrt(np.mean((Phi @ c - y) ** 2)))


@pytest.mark.parametrize("method", WLS_METHODS)
def test_wls_output_and_weights(method: str) -> None:
    N, m, n = 2000, 6, 20
    _, Phi = _legendre_pool(N, m)
    idx, w = rl.dpp.wls_sample(Phi, n, method=method, rng=0)
    assert isinstance(idx, np.ndarray) and idx.dtype == np.int64 and idx.shape == (n,)
    assert isinstance(w, np.ndarray) and w.dtype == np.float64 and w.shape == (n,)
    assert idx.min() >= 0 and idx.max() < N
    assert np.all(np.isfinite(w)) and np.all(w > 0)
    if method in DISTINCT_WLS_METHODS:
        assert len(np.unique(idx)) >= m
    # Weights are proportional to the inverse Christoffel function 1 / ||q(x)||^2.
    christoffel = (_pool_orthonormal(Phi)[idx] ** 2).sum(axis=1)
    ratio = w * christoffel
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-8)
    idx2, w2 = rl.dpp.wls_sample(Phi, n, method=method, rng=0)
    np.testing.assert_array_equal(idx, idx2)
    np.testing.assert_array_equal(w, w2)
    idx3, _ = rl.dpp.wls_sample(Phi, n, method=method, rng=1)
    assert not np.array_equal(np.sort(idx), np.sort(idx3))


@pytest.mark.parametrize("method", WLS_METHODS)
def test_wls_weight_normalization(method: str) -> None:
    # w_j = m / (n ||q(x_j)||^2): then E[sum_j w_j q_j q_j^T] = I for the iid density.
    N, m, n = 2000, 6, 24
    _, Phi = _legendre_pool(N, m, seed=1)
    idx, w = rl.dpp.wls_sample(Phi, n, method=method, rng=2)
    christoffel = (_pool_orthonormal(Phi)[idx] ** 2).sum(axis=1)
    np.testing.assert_allclose(w, m / (n * christoffel), rtol=1e-8)


@pytest.mark.parametrize("method", WLS_METHODS)
def test_wls_gram_matrix_near_identity(method: str) -> None:
    # n = 10 m log m (rounded up to a multiple of m): the weighted Gram matrix of the
    # pool-orthonormal basis concentrates near I. For iid and DPP + iid nodes,
    # ||G - I|| exceeds 0.5 in about 4% of the draws and 0.7 in none of 400.
    N, m = 5000, 10
    n = m * math.ceil(10 * math.log(m))
    _, Phi = _legendre_pool(N, m, seed=2)
    Q = _pool_orthonormal(Phi)
    deviations = []
    for seed in range(5):
        idx, w = rl.dpp.wls_sample(Phi, n, method=method, rng=seed)
        G = (Q[idx] * w[:, None]).T @ Q[idx]
        deviations.append(np.linalg.norm(G - np.eye(m), 2))
    assert np.median(deviations) <= 0.5 and max(deviations) <= 0.8, deviations
    # Power: the same nodes with equal weights (the Christoffel density not undone).
    G = Q[idx].T @ Q[idx] / n
    assert np.linalg.norm(G - np.eye(m), 2) > 0.8


@pytest.mark.parametrize("method", WLS_METHODS)
def test_wls_quasi_optimal(method: str) -> None:
    # n = 50 ~ 2.2 m log m: the weighted least squares fit is within a small factor of
    # the best approximation in the span (the empirical L2 norm of the pool).
    N, m, n = 5000, 10, 50
    x, Phi = _legendre_pool(N, m, seed=3)
    y = _runge(x)
    best = _best_error(Phi, y)
    assert best > 1e-3  # far from rounding: the ratio measures the sampling
    ratios = []
    for seed in range(7):
        idx, w = rl.dpp.wls_sample(Phi, n, method=method, rng=seed)
        ratios.append(_wls_error(Phi, y, idx, w) / best)
    # Over 300 seeds: median ratio about 1.1, largest 2.4.
    assert np.median(ratios) <= 1.5, ratios
    assert max(ratios) <= 4.0, ratios
    # Power: nodes that miss half the interval fail the same bound.
    left = np.flatnonzero(x < 0)[:n]
    assert _wls_error(Phi, y, left, np.full(n, 1.0 / n)) / best > 4.0


def _wls_law(Phi: np.ndarray, n: int, method: str) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """Exact law of the sorted node multiset of wls_sample on a small pool."""
    N, m = Phi.shape
    Q = _pool_orthonormal(Phi)
    christoffel = (Q**2).sum(axis=1)
    rho = christoffel / (N * m)  # optimal sampling density on the pool (sums to 1)
    law: dict[tuple[int, ...], float] = {}

    def add(nodes, p: float) -> None:
        key = tuple(sorted(nodes))
        law[key] = law.get(key, 0.0) + p

    dpp_cells, dpp_probs = _projection_law(Q / np.sqrt(N))
    if method == "iid_christoffel":
        for t in itertools.product(range(N), repeat=n):
            add(t, float(np.prod(rho[list(t)])))
    elif method == "dpp_christoffel":
        for S, p in zip(dpp_cells, dpp_probs):
            for t in itertools.product(range(N), repeat=n - m):
                add(S + t, p * float(np.prod(rho[list(t)])))
    elif method == "volume_rescaled":
        # density det(sum_j w(x_j) q_j q_j^T) prod_j rho(x_j) over ordered n-tuples
        w = m / (n * christoffel)
        for t in itertools.product(range(N), repeat=n):
            rows = list(t)
            G = (Q[rows] * w[rows, None]).T @ Q[rows]
            add(t, max(np.linalg.det(G), 0.0) * float(np.prod(rho[rows])))
    elif method == "repeated_dpp":
        assert n % m == 0
        for Ss in itertools.product(range(len(dpp_cells)), repeat=n // m):
            nodes = sum((dpp_cells[s] for s in Ss), ())
            add(nodes, float(np.prod(dpp_probs[list(Ss)])))
    cells = list(itertools.combinations_with_replacement(range(N), n))
    probs = np.array([law.get(c, 0.0) for c in cells])
    return cells, probs / probs.sum()


def _iid_uniform_law(cells: list[tuple[int, ...]], N: int) -> np.ndarray:
    """Law of the sorted multiset of n iid uniform points of the pool."""
    n = len(cells[0])
    ways = [
        math.factorial(n) / math.prod(math.factorial(c.count(i)) for i in set(c)) for c in cells
    ]
    return np.array(ways) / N**n


def test_volume_rescaled_law_is_dpp_plus_iid() -> None:
    # Reference check (Derezinski, Warmuth and Hsu; Nouy and Michel): volume-rescaled
    # sampling of n points is a projection DPP of m points plus n - m iid Christoffel
    # points. Both enumerations agree, so each checks the other.
    Phi = _legendre(np.array([-1.0, -0.9, -0.2, 0.3, 1.0]), 2)
    a_cells, a = _wls_law(Phi, 3, "volume_rescaled")
    b_cells, b = _wls_law(Phi, 3, "dpp_christoffel")
    assert a_cells == b_cells
    np.testing.assert_allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("method", WLS_METHODS)
def test_wls_exact_law_small_pool(method: str) -> None:
    N, m = 5, 2
    n = 4 if method == "repeated_dpp" else 3
    Phi = _legendre(np.array([-1.0, -0.9, -0.2, 0.3, 1.0]), m)  # uneven Christoffel function
    cells, probs = _wls_law(Phi, n, method)
    draws = 2000
    rng = np.random.default_rng(51)
    Q = _pool_orthonormal(Phi)
    samples = []
    for _ in range(draws):
        idx, w = rl.dpp.wls_sample(Phi, n, method=method, rng=rng)
        np.testing.assert_allclose(w, m / (n * (Q[idx] ** 2).sum(axis=1)), rtol=1e-8)
        samples.append(np.sort(idx))
    # Wrong laws: iid uniform nodes; iid Christoffel nodes (no DPP); for repeated_dpp
    # also a DPP plus iid Christoffel nodes.
    wrong = [_iid_uniform_law(cells, N)]
    if method != "iid_christoffel":
        wrong.append(_wls_law(Phi, n, "iid_christoffel")[1])
    if method == "repeated_dpp":
        wrong.append(_wls_law(Phi, n, "dpp_christoffel")[1])
    _assert_law(_counts(samples, cells), probs, *wrong)


def test_wls_bad_input() -> None:
    _, Phi = _legendre_pool(500, 8)
    with pytest.raises(ValueError):
        rl.dpp.wls_sample(Phi, 7)
    with pytest.raises(ValueError):
        rl.dpp.wls_sample(Phi, 20, method="magic")
    bad = Phi.copy()
    bad[10, 3] = np.nan
    with pytest.raises(ValueError):
        rl.dpp.wls_sample(bad, 20)


def test_dual_eigendecomposition_matches_numpy():
    # The core's Phi^T Phi eigendecomposition (used by features=) against numpy.
    from randla import _core

    Phi = np.random.default_rng(5).standard_normal((700, 30)) * np.logspace(0, -3, 30)
    w, W = _core.dpp_dual_eigen(Phi)
    ref = np.linalg.eigvalsh(Phi.T @ Phi)
    np.testing.assert_allclose(w, ref, rtol=1e-10, atol=1e-12 * ref.max())
    G = Phi.T @ Phi
    np.testing.assert_allclose(G @ W, W * w, atol=1e-10 * ref.max())
    np.testing.assert_allclose(W.T @ W, np.eye(30), atol=1e-12)
