"""Householder products: compact WY, generalized reflections and the delta rule.

``Q = H_1 H_2 ... H_k`` with ``H_i = I - tau_i v_i v_i^T``. The vectors and the
``tau_i`` are used exactly as given: LAPACK's reflectors (unit lower
trapezoidal ``V``, ``tau_i = 2 / |v_i|^2`` up to rounding) are one case, and
any other vectors and coefficients give *generalized* Householder products
(``tau_i v_i^T v_i = 2`` is a reflection, other values scale the ``v_i``
direction by ``1 - tau_i |v_i|^2``). In compact WY form ``Q = I - V T V^T``
with ``T`` upper triangular (LAPACK larft), and applying ``Q`` to a matrix
in blocks of 64 reflectors is three GEMMs per block (larfb), run in the Rust
core with faer.

:func:`delta_rule` runs the DeltaNet (``n_h = 1``) and DeltaProduct
(``n_h > 1``) recurrences of linear RNNs, whose state transitions are
products of generalized reflections ``I - beta k k^T``: token by token in
fused passes for short keys, chunkwise with the same WY/UT transform for
long ones.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from . import _core
from ._validation import _all_finite, as_dense, check_positive_int

__all__ = ["apply", "delta_rule", "from_lapack", "product", "wy"]


def _reflectors(V: Any, tau: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """V as (batch, n, k) and tau as (batch, k); whether the input was batched."""
    v = as_dense(V, "V", allow_empty=True, ndim=(2, 3))
    t = as_dense(tau, "tau", allow_empty=True, ndim=(v.ndim - 1,))
    if t.shape != v.shape[:-2] + v.shape[-1:]:
        raise ValueError(
            f"tau of shape {t.shape} does not fit V of shape {v.shape}: "
            f"expected {v.shape[:-2] + v.shape[-1:]} (one tau per column of V)"
        )
    if v.shape[-2] == 0:
        raise ValueError(f"V is empty (shape {v.shape})")
    batched = v.ndim == 3
    return (v if batched else v[None]), (t if batched else t[None]), batched


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def apply(V: Any, tau: Any, C: Any, *, side: str = "left", trans: bool = False) -> np.ndarray:
    """Multiply by a product of generalized Householder reflections.

    ``Q = H_1 H_2 ... H_k`` with ``H_i = I - tau_i v_i v_i^T``.

    Parameters
    ----------
    V : array_like, shape (n, k) or (batch, n, k)
        The vectors ``v_i = V[:, i]``, used as given (any vectors).
    tau : array_like, shape (k,) or (batch, k)
        The coefficients (any real values).
    C : array_like
        ``side="left"``: shape ``(n, c)`` or ``(n,)``; ``side="right"``:
        shape ``(c, n)`` or ``(n,)`` (a row vector). With a batch axis on
        ``V``: ``(batch, n, c)`` or ``(batch, c, n)``.
    side : {"left", "right"}
        ``"left"`` computes ``Q C`` (``Q^T C`` with ``trans=True``),
        ``"right"`` computes ``C Q`` (``C Q^T``).
    trans : bool
        Multiply by ``Q^T`` instead of ``Q``.

    Returns
    -------
    ndarray
        Same shape as ``C``; float32 only when every input is float32.

    Raises
    ------
    ValueError
        Shapes that do not fit (``len(tau) != V.shape[-1]``, ``C`` not of
        length ``n`` on ``side``), ``side`` not "left"/"right", NaN or
        infinity in an input.

    Notes
    -----
    Blocked compact WY (LAPACK larft/larfb): for each block of 64 reflectors
    ``C <- C - V_b (T_b (V_b^T C))``, three GEMMs; the blocks are taken in
    the order that composes ``Q`` (last first for ``Q C``). A batch runs its
    items in parallel. LAPACK-format reflectors come from
    :func:`from_lapack`.

    Examples
    --------
    >>> import numpy as np, scipy.linalg
    >>> import randla as rl
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((6, 3))
    >>> (qr, tau), r = scipy.linalg.qr(A, mode="raw")
    >>> V, tau = rl.householder.from_lapack(qr, tau)
    >>> Q = scipy.linalg.qr(A)[0]
    >>> C = rng.standard_normal((6, 2))
    >>> bool(np.allclose(rl.householder.apply(V, tau, C, trans=True), Q.T @ C))
    True
    """
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    trans = _flag(trans, "trans")
    v, t, batched = _reflectors(V, tau)
    c = as_dense(C, "C", allow_empty=True, ndim=(2, 3) if batched else (1, 2))
    n = v.shape[1]
    vector = c.ndim == (2 if batched else 1)
    if vector:
        c = c[..., :, None] if side == "left" else c[..., None, :]
    if not batched:
        c = c[None]
    if c.shape[0] != v.shape[0]:
        raise ValueError(f"C has batch size {c.shape[0]} but V has {v.shape[0]}")
    length = c.shape[1] if side == "left" else c.shape[2]
    if length != n:
        axis = "rows" if side == "left" else "columns"
        raise ValueError(
            f"C of shape {np.shape(C)} has {length} {axis}; reflectors of V "
            f"(shape {np.shape(V)}) have length {n} (side={side!r})"
        )
    dtype = np.result_type(v, t, c)
    out = np.array(c, dtype=dtype, order="C", copy=True)
    if out.size and v.shape[2]:
        _core.householder_apply(
            np.ascontiguousarray(v, dtype), np.ascontiguousarray(t, dtype), out, side, trans
        )
    if not batched:
        out = out[0]
    return out.reshape(np.shape(C)) if vector else out


def product(V: Any, tau: Any, *, ncols: int | None = None) -> np.ndarray:
    """The explicit product of the reflections (its first ``ncols`` columns).

    Parameters
    ----------
    V, tau : array_like
        As in :func:`apply`, with an optional batch axis.
    ncols : int, optional
        Number of leading columns of ``Q`` to form; default ``n`` (square Q).

    Returns
    -------
    Q : ndarray, shape (n, ncols) (or (batch, n, ncols))

    Examples
    --------
    >>> import numpy as np, scipy.linalg
    >>> import randla as rl
    >>> A = np.random.default_rng(0).standard_normal((5, 3))
    >>> (qr, tau), r = scipy.linalg.qr(A, mode="raw")
    >>> Q = rl.householder.product(*rl.householder.from_lapack(qr, tau), ncols=3)
    >>> bool(np.allclose(Q, scipy.linalg.qr(A, mode="economic")[0]))
    True
    """
    v, t, batched = _reflectors(V, tau)
    n = v.shape[1]
    if ncols is None:
        ncols = n
    if isinstance(ncols, (bool, np.bool_)) or not isinstance(ncols, numbers.Integral):
        raise TypeError(f"ncols must be an int, got {type(ncols).__name__}")
    if not 1 <= int(ncols) <= n:
        raise ValueError(f"ncols must be between 1 and n = {n}, got {ncols}")
    dtype = np.result_type(v, t)
    eye = np.broadcast_to(np.eye(n, int(ncols), dtype=dtype), (v.shape[0], n, int(ncols)))
    q = apply(v, t, eye)
    return q if batched else q[0]


def wy(V: Any, tau: Any) -> np.ndarray:
    """The compact WY factor: upper triangular ``T`` with ``Q = I - V T V^T``.

    ``T[i, i] = tau_i`` and ``T[:i, i] = -tau_i T[:i, :i] (V[:, :i]^T v_i)``
    (LAPACK larft), computed recursively on halves with GEMMs.

    Parameters
    ----------
    V : array_like, shape (n, k) or (batch, n, k)
    tau : array_like, shape (k,) or (batch, k)

    Returns
    -------
    T : ndarray, shape (k, k) (or (batch, k, k))

    Examples
    --------
    >>> import numpy as np
    >>> import randla as rl
    >>> rng = np.random.default_rng(0)
    >>> V, tau = rng.standard_normal((5, 3)), rng.standard_normal(3)
    >>> T = rl.householder.wy(V, tau)
    >>> Q = np.eye(5)
    >>> for i in range(3):
    ...     Q = Q @ (np.eye(5) - tau[i] * np.outer(V[:, i], V[:, i]))
    >>> bool(np.allclose(np.eye(5) - V @ T @ V.T, Q))
    True
    """
    v, t, batched = _reflectors(V, tau)
    dtype = np.result_type(v, t)
    ts = np.stack(
        [
            _core.householder_wy(np.ascontiguousarray(vi, dtype), np.ascontiguousarray(ti, dtype))
            if vi.shape[1]
            else np.zeros((0, 0), dtype)
            for vi, ti in zip(v, t)
        ]
    )
    return ts if batched else ts[0]


def from_lapack(qr: Any, tau: Any) -> tuple[np.ndarray, np.ndarray]:
    """Reflectors from LAPACK's geqrf output.

    Parameters
    ----------
    qr : array_like, shape (m, n) (or (batch, m, n))
        The packed QR factorization: ``scipy.linalg.qr(A, mode="raw")[0][0]``
        or ``scipy.linalg.lapack.dgeqrf(A)[0]``. Its strict lower triangle
        holds the reflectors below their implicit unit diagonal.
    tau : array_like, shape (kk,) (or (batch, kk)), kk <= min(m, n)

    Returns
    -------
    V : ndarray, shape (m, kk)
        Unit lower trapezoidal.
    tau : ndarray, shape (kk,)
        As given (as an array of the common dtype).

    Examples
    --------
    >>> import numpy as np, scipy.linalg
    >>> import randla as rl
    >>> A = np.random.default_rng(1).standard_normal((4, 4))
    >>> (qr, tau), r = scipy.linalg.qr(A, mode="raw")
    >>> V, tau = rl.householder.from_lapack(qr, tau)
    >>> bool(np.allclose(rl.householder.product(V, tau), scipy.linalg.qr(A)[0]))
    True
    """
    a = as_dense(qr, "qr", allow_empty=True, ndim=(2, 3))
    t = as_dense(tau, "tau", allow_empty=True, ndim=(a.ndim - 1,))
    m, n = a.shape[-2:]
    kk = t.shape[-1]
    if t.shape[:-1] != a.shape[:-2] or kk > min(m, n):
        raise ValueError(
            f"tau of shape {t.shape} does not fit qr of shape {a.shape}: "
            f"expected at most min(m, n) = {min(m, n)} entries per matrix"
        )
    dtype = np.result_type(a, t)
    v = np.tril(a[..., :, :kk], -1).astype(dtype) + np.eye(m, kk, dtype=dtype)
    return np.ascontiguousarray(v), np.array(t, dtype=dtype)


def delta_rule(
    q: Any,
    k: Any,
    v: Any,
    beta: Any,
    *,
    n_h: int = 1,
    gate: Any = None,
    initial_state: Any = None,
    chunk_size: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """The DeltaNet / DeltaProduct recurrence, token by token or chunkwise.

    Per batch ``b`` and head ``h``, a state ``S`` of shape ``(K, V)`` starts
    at ``initial_state`` (zeros by default). For each token ``t``:

    - with a gate, ``S <- exp(gate[b, t, h]) S`` before the token's first
      sub-step;
    - for each of the token's ``n_h`` sub-steps ``j`` (keys
      ``k[b, t*n_h + j, h]``): ``S <- (I - beta_j k_j k_j^T) S + beta_j k_j v_j^T``;
    - after the last sub-step, ``o[b, t, h] = S^T q[b, t, h]``.

    ``n_h = 1`` is DeltaNet (Yang et al. 2024), ``n_h > 1`` DeltaProduct
    (Siems et al. 2025): each token's transition is a product of ``n_h``
    generalized Householder transformations; ``beta`` in (0, 2) allows
    negative eigenvalues, and ``beta = 2`` with unit keys is a reflection.

    Parameters
    ----------
    q : array_like, shape (B, T, H, K)
    k : array_like, shape (B, T*n_h, H, K)
    v : array_like, shape (B, T*n_h, H, V)
    beta : array_like, shape (B, T*n_h, H)
    n_h : int
        Sub-steps (keys) per token.
    gate : array_like, shape (B, T, H), optional
        Log decay per token (the state is multiplied by ``exp(gate)``).
    initial_state : array_like, shape (B, H, K, V), optional
    chunk_size : int
        Tokens per chunk of the chunked form (default 64), which runs when
        keys are long (``K * itemsize > 1024`` bytes, e.g. ``K > 128`` in
        float64); shorter keys run the direct form, which has no chunks
        (Notes). The result does not depend on it beyond rounding.

    Returns
    -------
    o : ndarray, shape (B, T, H, V)
    state : ndarray, shape (B, H, K, V)
        The state after the last token.

    Notes
    -----
    Two exact forms; each (batch, head) runs in parallel in the Rust core.

    *Direct* (``K * itemsize <= 1024`` bytes): the recurrence itself, one
    fused pass over the state per sub-step that applies the update and also
    forms ``S^T k`` for the next sub-step and, after a token's last sub-step,
    ``S^T q``. Columns of ``S`` evolve independently, so the state runs in
    panels of 32 columns (8 or 16 for narrower states, 16 when there would
    be fewer than two panels per thread) that stay in L1 for the whole
    sequence and run in parallel. This does the recurrence's own
    ``(2 + 1/n_h) K V`` multiply-adds per sub-step and is the faster form on
    a CPU while a panel fits in L1.

    *Chunked* (longer keys): within a chunk of ``L = chunk_size * n_h``
    sub-steps, the new values
    ``u_j = beta_j (v_j - gamma_j S_{j-1}^T k_j)`` solve one unit lower
    triangular system (the UT transform of the chunk's product of
    reflections, ``T = (I + tril(diag(beta) K K^T, -1))^{-1} diag(beta)``
    with the gate ratios folded in); the outputs and the next state are then
    GEMMs: ``O = Q S_0 + (Q K^T, masked causally) U`` and
    ``S = S_0 + K^T U`` (gates as decay ratios from differences of their
    logarithms). Cost per chunk ``O(L^2 (K + V) + L K V)``, in GEMMs.

    Examples
    --------
    >>> import numpy as np
    >>> import randla as rl
    >>> rng = np.random.default_rng(0)
    >>> B, T, H, K, V = 1, 10, 2, 4, 3
    >>> q, v = rng.standard_normal((B, T, H, K)), rng.standard_normal((B, T, H, V))
    >>> k = rng.standard_normal((B, T, H, K))
    >>> k /= np.linalg.norm(k, axis=-1, keepdims=True)
    >>> beta = rng.uniform(0, 2, (B, T, H))
    >>> o, S = rl.householder.delta_rule(q, k, v, beta, chunk_size=4)
    >>> S_ref = np.zeros((K, V))                  # token by token, head 0
    >>> for t in range(T):
    ...     kt = k[0, t, 0]
    ...     S_ref = S_ref - beta[0, t, 0] * np.outer(kt, kt @ S_ref - v[0, t, 0])
    >>> bool(np.allclose(S[0, 0], S_ref)), bool(np.allclose(o[0, -1, 0], S_ref.T @ q[0, -1, 0]))
    (True, True)
    """
    n_h = check_positive_int(n_h, "n_h")
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    # q, k, v and beta are checked for NaN and infinity after the recurrence,
    # through its result (see _check_delta_inputs): one pass over the
    # outputs instead of one over every input.
    aq = as_dense(q, "q", allow_empty=True, ndim=(4,), check_finite=False)
    ak, av = (
        as_dense(k, "k", allow_empty=True, ndim=(4,), check_finite=False),
        as_dense(v, "v", allow_empty=True, ndim=(4,), check_finite=False),
    )
    ab = as_dense(beta, "beta", allow_empty=True, ndim=(3,), check_finite=False)
    named = {"q": aq, "k": ak, "v": av, "beta": ab}
    B, T, H, K = aq.shape
    Vd = av.shape[3]
    steps = (B, T * n_h, H)
    if ak.shape != (*steps, K):
        raise ValueError(
            f"k has shape {ak.shape}; with q of shape {aq.shape} and n_h = {n_h} "
            f"it must be {(*steps, K)}"
        )
    if av.shape[:3] != steps:
        raise ValueError(f"v has shape {av.shape}; its first three axes must be {steps}")
    if ab.shape != steps:
        raise ValueError(f"beta has shape {ab.shape}, expected {steps}")
    arrays = [aq, ak, av, ab]
    ag = None
    if gate is not None:
        ag = as_dense(gate, "gate", allow_empty=True, ndim=(3,))
        if ag.shape != (B, T, H):
            raise ValueError(f"gate has shape {ag.shape}, expected {(B, T, H)}")
        arrays.append(ag)
    a0 = None
    if initial_state is not None:
        a0 = as_dense(initial_state, "initial_state", allow_empty=True, ndim=(4,))
        if a0.shape != (B, H, K, Vd):
            raise ValueError(f"initial_state has shape {a0.shape}, expected {(B, H, K, Vd)}")
        arrays.append(a0)
    dtype = np.result_type(*arrays)
    state = (
        np.zeros((B, H, K, Vd), dtype)
        if a0 is None
        else np.array(a0, dtype=dtype, order="C", copy=True)
    )
    if B * T * H * Vd == 0 or K == 0:
        _check_delta_inputs(named)
        return np.zeros((B, T, H, Vd), dtype), state
    out = np.empty((B, T, H, Vd), dtype)  # every entry is written

    def prep(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a, dtype)

    _core.delta_rule(
        prep(aq),
        prep(ak),
        prep(av),
        prep(ab),
        None if ag is None else prep(ag),
        state,
        out,
        n_h,
        chunk_size,
    )
    if not (_all_finite(out) and _all_finite(state)):
        _check_delta_inputs(named)
    return out, state


def _check_delta_inputs(named: dict[str, np.ndarray]) -> None:
    """Raise for the first of q, k, v, beta that holds NaN or infinity.

    Called when the recurrence's result is not finite: a non-finite entry of
    any of them reaches the outputs or the final state (IEEE arithmetic
    keeps it non-finite through every later update, ``0 * inf`` included,
    and the gate, checked up front, is finite), so a finite result proves
    them finite. A non-finite result from finite inputs is an overflow and
    is returned as is.
    """
    for name, arr in named.items():
        if not _all_finite(arr):
            raise ValueError(f"{name} contains NaN or infinity")
