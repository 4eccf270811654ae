"""Determinantal point processes, volume sampling and optimal weighted least squares nodes.

Exact samplers, with every chain-rule draw in the Rust core (parallel over
samples, counter-based Philox randomness: the same ``rng`` gives the same
samples on any thread count):

- :func:`sample_projection`: projection DPPs, kernel ``V V^T``;
- :func:`sample`: L-ensembles, marginal kernels, feature (dual) kernels and
  given eigendecompositions, as DPPs or k-DPPs (Hough, Krishnapur, Peres,
  Virág 2006; Kulesza & Taskar 2012), the k-DPP normalizers kept in log
  space;
- :func:`volume_sample`: P(S) proportional to ``det(A_S^T A_S)``, ``|S| = k >= d``;
- :func:`wls_sample`: nodes and weights for quasi-optimal weighted least
  squares (Nouy & Michel 2023).

The projection sampler proposes rows from ``|v_j|^2 / r`` and accepts with
probability ``|P_t v_j|^2 / |v_j|^2`` (``P_t`` the projection away from
the rows already picked): an exact chain rule whose cost per sample is
``O(r^3 log r)`` after an ``O(N r)`` setup, independent of ``N``.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from . import _core
from ._rng import RNGLike, key_from_rng
from ._validation import as_dense, check_int

__all__ = ["sample", "sample_projection", "volume_sample", "wls_sample"]

_ORTHONORMAL_TOL = 1e-6
_WLS_METHODS = ("iid_christoffel", "dpp_christoffel", "volume_rescaled", "repeated_dpp")


def _sub(key: int, j: int) -> int:
    """The j-th independent sub-key of one call's key."""
    return (key + j) % 2**64


def _n_samples(n_samples: Any) -> int | None:
    if n_samples is None:
        return None
    if isinstance(n_samples, (bool, np.bool_)) or not isinstance(n_samples, numbers.Integral):
        raise TypeError(f"n_samples must be an int or None, got {type(n_samples).__name__}")
    if int(n_samples) < 1:
        raise ValueError(f"n_samples must be >= 1, got {int(n_samples)}")
    return int(n_samples)


def _check_orthonormal(V: np.ndarray) -> None:
    """Raise unless ``max |V^T V - I| <= 1e-6``, up to the resolution of 8 probes.

    Forming ``V^T V`` costs ``O(N r^2)``, more than a sample; the core applies
    ``V^T V - I`` to 8 fixed Gaussian probe vectors instead, in one pass over
    ``V`` (``O(N r)``): a deviation ``E`` escapes only if every probe ``x``
    has ``|E x|_inf <= 1e-6 |x|_inf``, which for entries above ``1e-5`` has
    probability far below 1e-9.
    """
    _core.dpp_check_orthonormal(V, _ORTHONORMAL_TOL, 8)


def _matrix(x: Any, name: str) -> np.ndarray:
    return np.ascontiguousarray(as_dense(x, name, ndim=(2,), dtype=np.dtype(np.float64)))


def sample_projection(V: Any, *, n_samples: int | None = None, rng: RNGLike = None) -> np.ndarray:
    """Sample the projection DPP with kernel ``K = V V^T``.

    Parameters
    ----------
    V : array_like, shape (N, r)
        Orthonormal columns (checked to ``1e-6`` on two fixed random probes of
        ``V^T V - I``, in ``O(N r)``).
    n_samples : int, optional
        Number of independent samples; they share the setup and run in parallel.
    rng : None, int, numpy.random.Generator or numpy.random.SeedSequence

    Returns
    -------
    ndarray of int64
        ``r`` distinct indices, sorted, or shape ``(n_samples, r)``.
        ``P(S ⊆ Y) = det(K_S)`` for every set ``S``.

    Raises
    ------
    ValueError
        ``V`` not 2-D, ``r > N``, columns not orthonormal, NaN or infinity.

    Notes
    -----
    Chain rule (Hough et al. 2006): at step ``t`` row ``j`` is picked with
    probability ``|P_t v_j|^2 / (r - t)``. Rows are proposed from
    ``|v_j|^2 / r`` and accepted with probability ``|P_t v_j|^2 / |v_j|^2``,
    which is exact; about ``r ln r`` proposals per sample, each ``O(r t)``.

    Examples
    --------
    >>> import numpy as np
    >>> import randla as rl
    >>> V = np.linalg.qr(np.random.default_rng(0).standard_normal((1000, 5)))[0]
    >>> rl.dpp.sample_projection(V, rng=0).shape
    (5,)
    >>> rl.dpp.sample_projection(V, n_samples=3, rng=0).shape
    (3, 5)
    """
    v = _matrix(V, "V")
    N, r = v.shape
    if r > N:
        raise ValueError(f"V of shape {v.shape} has more columns than rows")
    count = _n_samples(n_samples)
    # The orthonormality check runs in the core, on the library's threads
    # (a numpy product here would wake BLAS threads that then compete with them).
    out = _core.dpp_projection(v, count or 1, key_from_rng(rng), _ORTHONORMAL_TOL)
    return out[0] if count is None else out


def _symmetric(x: Any, name: str) -> np.ndarray:
    a = _matrix(x, name)
    if a.shape[0] != a.shape[1]:
        raise ValueError(f"{name} must be square, got shape {a.shape}")
    scale = max(float(np.max(np.abs(a))), np.finfo(float).tiny)
    asym = float(np.max(np.abs(a - a.T)))
    if asym > 1e-8 * scale:
        raise ValueError(f"{name} must be symmetric: max |{name} - {name}^T| = {asym:.2e}")
    return a


def _psd_eigenvalues(w: np.ndarray, name: str, computed: bool = True) -> np.ndarray:
    """Eigenvalues checked to be >= 0 (to a tolerance), negative rounding set to 0.

    ``computed``: the eigenvalues come from an eigendecomposition here, so
    those below ``N eps max|w|`` are rounding noise of zero and become 0 (they
    must not count towards the rank). Eigenvalues the user passed are kept
    as given, however small.
    """
    scale = max(float(np.max(np.abs(w))) if w.size else 0.0, np.finfo(float).tiny)
    tol = 1e-8 * scale
    if w.size and float(w.min()) < (-tol if computed else 0.0):
        raise ValueError(
            f"{name} must be positive semidefinite: smallest eigenvalue {w.min():.3e} "
            f"(largest {w.max():.3e})"
        )
    w = np.maximum(w, 0.0)
    if computed:
        w[w <= max(w.size, 1) * np.finfo(float).eps * scale] = 0.0
    return w


def _uniforms(key: int, count: int) -> np.ndarray:
    """``count`` Philox uniforms in (0, 1) of the stream ``key`` (API.md §1)."""
    return np.asarray(_core.random_draws("uniform", key, 3, 0, count))


def sample(
    *,
    L: Any = None,
    K: Any = None,
    features: Any = None,
    eig: Any = None,
    k: int | None = None,
    n_samples: int | None = None,
    rng: RNGLike = None,
) -> Any:
    """Sample a DPP or a k-DPP, exactly, by the spectral algorithm.

    Give exactly one of:

    L : array_like, shape (N, N)
        Symmetric PSD L-ensemble: ``P(Y = S) = det(L_S) / det(L + I)``.
    K : array_like, shape (N, N)
        Symmetric marginal kernel, eigenvalues in [0, 1]: ``P(S ⊆ Y) = det(K_S)``.
        For a k-DPP, the L-ensemble ``L = K (I - K)^{-1}`` (unit eigenvalues
        of ``K`` are always selected).
    features : array_like, shape (N, D)
        ``L = Phi Phi^T`` through the dual kernel ``Phi^T Phi`` (D x D);
        the N x N kernel is never formed.
    eig : tuple (w, V)
        An eigendecomposition of ``L``: eigenvalues ``w >= 0`` and
        orthonormal eigenvectors ``V`` (N x r); a partial one means the
        remaining eigenvalues are zero.

    Parameters
    ----------
    k : int, optional
        ``None``: the DPP (random size). An int: the k-DPP,
        ``P(Y = S) ∝ det(L_S)`` over ``|S| = k``; eigenvectors are selected
        with the elementary symmetric polynomials of the eigenvalues in log
        space (stable for N >= 1e4 and any eigenvalue range).
    n_samples : int, optional
        Number of independent samples (sharing the eigendecomposition, run
        in parallel).
    rng : None, int, numpy.random.Generator or numpy.random.SeedSequence

    Returns
    -------
    ndarray or list of ndarray
        Sorted int64 indices. DPP: one array, or a list of ``n_samples``
        arrays (sizes vary). k-DPP: shape ``(k,)`` or ``(n_samples, k)``.

    Raises
    ------
    ValueError
        Not exactly one kernel; ``L``/``K`` not symmetric, not PSD, ``K``
        with eigenvalues above 1; ``V`` not orthonormal; ``k`` negative or
        larger than the rank; NaN or infinity.

    Examples
    --------
    >>> import numpy as np
    >>> import randla as rl
    >>> Phi = np.random.default_rng(0).standard_normal((500, 20))
    >>> rl.dpp.sample(features=Phi, k=5, rng=0).shape
    (5,)
    >>> len(rl.dpp.sample(L=Phi @ Phi.T, n_samples=4, rng=0))
    4
    """
    given = [
        name
        for name, x in (("L", L), ("K", K), ("features", features), ("eig", eig))
        if x is not None
    ]
    if len(given) != 1:
        raise ValueError(
            "give exactly one of L, K, features or eig"
            + (f" (got {', '.join(given)})" if given else "")
        )
    if k is not None:
        k = check_int(k, "k", 0)
    count = _n_samples(n_samples)
    left = None
    if L is not None:
        w, vectors = np.linalg.eigh(_symmetric(L, "L"))
        lambdas = _psd_eigenvalues(w, "L")
    elif K is not None:
        mu, vectors = np.linalg.eigh(_symmetric(K, "K"))
        if mu.size and (mu.min() < -1e-8 or mu.max() > 1 + 1e-8):
            raise ValueError(
                f"K must have eigenvalues in [0, 1], got [{mu.min():.3e}, {mu.max():.3e}]"
            )
        mu = np.clip(mu, 0.0, 1.0)
        mu[mu <= max(mu.size, 1) * np.finfo(float).eps * max(float(mu.max()), 1e-300)] = 0.0
        with np.errstate(divide="ignore"):
            lambdas = np.where(mu >= 1 - 1e-12, np.inf, mu / (1 - mu))
    elif features is not None:
        phi = _matrix(features, "features")
        # The dual kernel Phi^T Phi and its eigendecomposition in the core
        # (one thread pool: numpy's would keep spinning while the core samples).
        w, W = _core.dpp_dual_eigen(np.ascontiguousarray(phi, dtype=np.float64))
        w = _psd_eigenvalues(w, "features^T features")
        keep = w > 0
        lambdas = w[keep]
        # Eigenvector j of L is Phi W_j / sqrt(lambda_j): only the selected
        # ones are formed, in the core.
        left = phi
        vectors = W[:, keep] / np.sqrt(lambdas)
    else:
        try:
            w_in, v_in = eig
        except (TypeError, ValueError) as exc:
            raise ValueError("eig must be a pair (w, V)") from exc
        w_arr = np.asarray(as_dense(w_in, "eig[0]", ndim=(1,), dtype=np.dtype(np.float64)))
        vectors = _matrix(v_in, "eig[1]")
        if vectors.shape[1] != w_arr.shape[0]:
            raise ValueError(
                f"eig: {w_arr.shape[0]} eigenvalues for eigenvectors of shape {vectors.shape}"
            )
        _check_orthonormal(vectors)
        lambdas = _psd_eigenvalues(w_arr, "eig", computed=False)
    vectors = np.ascontiguousarray(vectors, dtype=np.float64)
    lambdas = np.ascontiguousarray(lambdas, dtype=np.float64)
    out = _core.dpp_spectral(vectors, lambdas, k, count or 1, key_from_rng(rng), left)
    if k is not None:
        arr = np.array(out, dtype=np.int64).reshape(len(out), k)
        return arr[0] if count is None else arr
    return out[0] if count is None else out


def _full_rank_basis(A: np.ndarray, name: str) -> np.ndarray:
    Q, R = np.linalg.qr(A)
    s = np.linalg.svd(R, compute_uv=False)
    if s.size and not s[-1] > max(A.shape) * np.finfo(float).eps * s[0]:
        raise ValueError(
            f"{name} must have full column rank (singular values of {name} from "
            f"{s[0]:.3e} down to {s[-1]:.3e})"
        )
    return np.ascontiguousarray(Q)


def volume_sample(A: Any, k: int, *, rng: RNGLike = None) -> np.ndarray:
    """Volume sampling: a size-``k`` subset with ``P(S) ∝ det(A_S^T A_S)``.

    Parameters
    ----------
    A : array_like, shape (n, d)
        Full column rank.
    k : int
        Subset size, ``d <= k <= n``.
    rng : None, int, numpy.random.Generator or numpy.random.SeedSequence

    Returns
    -------
    ndarray of int64, shape (k,)
        Sorted distinct row indices. ``P(S) = det(A_S^T A_S) /
        (C(n - d, k - d) det(A^T A))``.

    Raises
    ------
    ValueError
        ``k < d`` or ``k > n``, ``A`` rank-deficient, NaN or infinity.

    Notes
    -----
    By the Cauchy–Binet formula ``det(A_S^T A_S) = sum_{T ⊆ S, |T| = d}
    det(A_T)^2``, so size-k volume sampling is a size-d volume sample (the
    projection DPP of an orthonormal basis of range(A)) joined with a
    uniform ``(k - d)``-subset of the other rows (Dereziński & Warmuth 2017,
    "Unbiased estimates for linear regression via volume sampling";
    Dereziński, Warmuth & Hsu 2019). Cost ``O(n d^2)``.

    Examples
    --------
    >>> import numpy as np
    >>> import randla as rl
    >>> A = np.random.default_rng(0).standard_normal((100, 3))
    >>> rl.dpp.volume_sample(A, 5, rng=0).shape
    (5,)
    """
    a = _matrix(A, "A")
    n, d = a.shape
    k = check_int(k, "k", 1)
    if not d <= k <= n:
        raise ValueError(f"k = {k} must satisfy d <= k <= n for A of shape {a.shape}")
    key = key_from_rng(rng)
    Q = _full_rank_basis(a, "A")
    core = _core.dpp_projection(Q, 1, _sub(key, 0))[0]
    rest = np.setdiff1d(np.arange(n, dtype=np.int64), core, assume_unique=True)
    extra = (
        rest[_core.sample_indices(_sub(key, 1), k - d, n - d, None, False)] if k > d else rest[:0]
    )
    return np.sort(np.concatenate([core, extra]))


def wls_sample(
    Phi: Any, n: int, *, method: str = "dpp_christoffel", rng: RNGLike = None
) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for quasi-optimal weighted least squares (Nouy & Michel 2023).

    Parameters
    ----------
    Phi : array_like, shape (N, m)
        The ``m`` basis functions evaluated at a pool of ``N`` points that
        represents the measure (e.g. ``N`` draws from it, or quadrature
        nodes with equal weights). Full column rank.
    n : int
        Number of nodes, ``n >= m``.
    method : {"dpp_christoffel", "iid_christoffel", "volume_rescaled", "repeated_dpp"}
        - ``"iid_christoffel"``: ``n`` i.i.d. points from the optimal density
          ``rho = k_m / (m N)``, ``k_m(x) = sum_j q_j(x)^2`` the inverse
          Christoffel function of the pool-orthonormalized basis ``q``;
        - ``"dpp_christoffel"``: ``m`` points of the projection DPP of
          ``q`` (diverse, never repeated) followed by ``n - m`` i.i.d.
          points from ``rho``;
        - ``"volume_rescaled"``: volume-rescaled sampling, the law
          ``∝ det(sum_i w(x_i) q(x_i) q(x_i)^T) prod_i rho(x_i)`` on
          ordered ``n``-tuples; it is sampled exactly as a uniformly random
          ordering of a projection DPP of ``m`` points and ``n - m`` i.i.d.
          points from ``rho`` (Dereziński, Warmuth & Hsu 2019), so it equals
          ``"dpp_christoffel"`` up to the order of the nodes;
        - ``"repeated_dpp"``: ``ceil(n / m)`` independent projection DPPs
          (the last one subsampled uniformly to reach ``n`` points).
    rng : None, int, numpy.random.Generator or numpy.random.SeedSequence

    Returns
    -------
    idx : ndarray of int64, shape (n,)
        Pool indices (i.i.d. parts may repeat).
    w : ndarray of float64, shape (n,)
        ``w_j = m / (n k_m(x_j))``: then ``sum_j w_j q(x_j) q(x_j)^T`` is an
        unbiased estimate of the identity for the i.i.d. parts, and the fit
        ``argmin_c sum_j w_j (y_j - Phi[idx_j] c)^2`` is quasi-optimal with
        high probability for ``n = O(m log m)``.

    Raises
    ------
    ValueError
        ``n < m``, unknown ``method``, ``Phi`` rank-deficient, NaN or infinity.

    Examples
    --------
    >>> import numpy as np
    >>> import randla as rl
    >>> x = np.linspace(-1, 1, 2001)
    >>> Phi = np.polynomial.legendre.legvander(x, 9)           # m = 10
    >>> idx, w = rl.dpp.wls_sample(Phi, 30, rng=0)
    >>> y = np.exp(x)
    >>> c = np.linalg.lstsq(Phi[idx] * np.sqrt(w)[:, None], y[idx] * np.sqrt(w), rcond=None)[0]
    >>> bool(np.max(np.abs(Phi @ c - y)) < 1e-6)
    True
    """
    if method not in _WLS_METHODS:
        raise ValueError(f"method must be one of {_WLS_METHODS}, got {method!r}")
    phi = _matrix(Phi, "Phi")
    N, m = phi.shape
    if m > N:
        raise ValueError(f"Phi of shape {phi.shape} has more basis functions than points")
    n = check_int(n, "n", 1)
    if n < m:
        raise ValueError(f"n = {n} must be >= m = {m} (the number of basis functions)")
    key = key_from_rng(rng)
    Q = _full_rank_basis(phi, "Phi")
    lev = np.einsum("ij,ij->i", Q, Q)  # k_m(x_i) / N: sums to m
    if method == "iid_christoffel":
        idx = _core.sample_indices(_sub(key, 0), n, N, lev, True)
        # sample_indices returns draws in draw order; keep them.
    elif method in ("dpp_christoffel", "volume_rescaled"):
        core = _core.dpp_projection(Q, 1, _sub(key, 0))[0]
        iid = _core.sample_indices(_sub(key, 1), n - m, N, lev, True) if n > m else core[:0]
        idx = np.concatenate([core, iid])
        if method == "volume_rescaled":
            idx = idx[np.argsort(_uniforms(_sub(key, 2), n), kind="stable")]
    else:
        reps = -(-n // m)
        samples = _core.dpp_projection(Q, reps, _sub(key, 0))
        last = n - (reps - 1) * m
        if last < m:
            keep = np.sort(np.argsort(_uniforms(_sub(key, 3), m), kind="stable")[:last])
            idx = np.concatenate([samples[:-1].ravel(), samples[-1][keep]])
        else:
            idx = samples.ravel()
    idx = np.asarray(idx, dtype=np.int64)
    w = m / (n * N * lev[idx])
    return idx, w
