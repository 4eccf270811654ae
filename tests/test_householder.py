"""API.md §7: products of (generalized) Householder transformations (``rl.householder``).

References written here, independently of randla: the explicit product of
the ``H_i = I - tau_i v_i v_i^T`` one at a time, the larft recurrence for the
compact-WY factor ``T``, scipy's LAPACK (``scipy.linalg.qr``, ``geqrf`` and
``ormqr``) for reflectors in LAPACK format, and a token-by-token numpy
recurrence for the delta rule.
"""

from __future__ import annotations

import numpy as np
import pytest
import randla as rl
import randla.householder
import scipy.linalg
from conftest import DENSE_LAYOUTS, dense_layouts
from randla.householder import apply, delta_rule, from_lapack, product, wy
from scipy.linalg import lapack

SIDES = ["left", "right"]
TRANS = [False, True]
# (n, k): vector length and number of reflectors; some cross a block of 32 or 64.
SIZES = [(1, 1), (6, 1), (37, 5), (37, 37), (64, 20), (150, 100)]
SIZE_IDS = ["n{}k{}".format(*size) for size in SIZES]


# --- independent references ---------------------------------------------------------


def explicit_q(V: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """``H_1 H_2 ... H_k`` multiplied out one reflector at a time, in float64."""
    V = np.asarray(V, dtype=np.float64)
    tau = np.asarray(tau, dtype=np.float64)
    n, k = V.shape
    Q = np.eye(n)
    for i in range(k):
        v = V[:, i]
        Q = Q - tau[i] * np.outer(Q @ v, v)  # Q H_i
    return Q


def apply_reference(V, tau, C, side: str, trans: bool) -> np.ndarray:
    Q = explicit_q(V, tau)
    if trans:
        Q = Q.T
    C = np.asarray(C, dtype=np.float64)
    return Q @ C if side == "left" else C @ Q


def larft_reference(V: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """T[i, i] = tau_i, T[:i, i] = -tau_i T[:i, :i] (V[:, :i]^T v_i) (LAPACK larft, forward)."""
    V = np.asarray(V, dtype=np.float64)
    k = V.shape[1]
    T = np.zeros((k, k))
    for i in range(k):
        T[i, i] = tau[i]
        T[:i, i] = -tau[i] * (T[:i, :i] @ (V[:, :i].T @ V[:, i]))
    return T


def reflectors(rng: np.random.Generator, n: int, k: int, kind: str):
    """``V`` (n, k) and ``tau`` (k,).

    ``"orthogonal"``: tau_i = 2 / |v_i|^2, exact reflections (Q orthogonal).
    ``"generalized"``: tau_i = c_i / |v_i|^2 with c_i in (-0.3, 2.3), so each
    H_i has the eigenvalue 1 - c_i in (-1.3, 1.3) on v_i: not orthogonal, not
    unit vectors, some tau negative.
    ``"lapack"``: unit lower trapezoidal V (1 on the diagonal, 0 above).
    """
    V = rng.standard_normal((n, k)) * rng.uniform(0.2, 3.0, size=k)
    norms = (V**2).sum(axis=0)
    if kind == "orthogonal":
        tau = 2.0 / norms
    elif kind == "generalized":
        tau = rng.uniform(-0.3, 2.3, size=k) / norms
    elif kind == "lapack":
        V = np.tril(V, -1)
        V[np.arange(min(n, k)), np.arange(min(n, k))] = 1.0
        tau = 2.0 / (V**2).sum(axis=0)
    else:
        raise AssertionError(kind)
    return V, tau


def rel_error(got, expected) -> float:
    expected = np.asarray(expected, dtype=np.float64)
    return float(
        np.linalg.norm(np.asarray(got, dtype=np.float64) - expected)
        / max(np.linalg.norm(expected), 1e-300)
    )


def c_shape(n: int, c: int, side: str) -> tuple[int, int]:
    return (n, c) if side == "left" else (c, n)


# --- apply --------------------------------------------------------------------------


def test_module_is_reachable_as_attribute() -> None:
    assert rl.householder is randla.householder
    assert rl.householder.apply is apply and rl.householder.delta_rule is delta_rule


@pytest.mark.parametrize("trans", TRANS)
@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("kind", ["orthogonal", "generalized", "lapack"])
@pytest.mark.parametrize(("n", "k"), SIZES, ids=SIZE_IDS)
def test_apply_matches_explicit_product(n, k, kind, side, trans, rng) -> None:
    V, tau = reflectors(rng, n, k, kind)
    for c in [1, 7]:
        C = rng.standard_normal(c_shape(n, c, side))
        got = apply(V, tau, C, side=side, trans=trans)
        assert type(got) is np.ndarray and got.shape == C.shape and got.dtype == np.float64
        assert rel_error(got, apply_reference(V, tau, C, side, trans)) <= 1e-12


@pytest.mark.parametrize("trans", TRANS)
@pytest.mark.parametrize("side", SIDES)
def test_apply_more_reflectors_than_rows(side, trans, rng) -> None:
    """Generalized reflectors need not be independent: k > n is a valid product."""
    n, k = 20, 75
    V, tau = reflectors(rng, n, k, "generalized")
    C = rng.standard_normal(c_shape(n, 4, side))
    got = apply(V, tau, C, side=side, trans=trans)
    assert rel_error(got, apply_reference(V, tau, C, side, trans)) <= 1e-12


def test_apply_defaults_and_orthogonality(rng) -> None:
    V, tau = reflectors(rng, 40, 12, "orthogonal")
    C = rng.standard_normal((40, 3))
    # side="left", trans=False by default.
    assert rel_error(apply(V, tau, C), explicit_q(V, tau) @ C) <= 1e-12
    # Q^T Q C = C for reflections.
    back = apply(V, tau, apply(V, tau, C), trans=True)
    assert rel_error(back, C) <= 1e-12


@pytest.mark.parametrize("trans", TRANS)
def test_apply_vector(trans, rng) -> None:
    V, tau = reflectors(rng, 30, 8, "generalized")
    c = rng.standard_normal(30)
    got = apply(V, tau, c, side="left", trans=trans)
    assert got.shape == (30,)
    assert rel_error(got, apply_reference(V, tau, c, "left", trans)) <= 1e-12


@pytest.mark.parametrize("trans", TRANS)
@pytest.mark.parametrize("side", SIDES)
def test_apply_batched(side, trans, rng) -> None:
    batch, n, k, c = 4, 33, 9, 5
    V = np.empty((batch, n, k))
    tau = np.empty((batch, k))
    for i in range(batch):
        V[i], tau[i] = reflectors(rng, n, k, "generalized")
    C = rng.standard_normal((batch, *c_shape(n, c, side)))
    got = apply(V, tau, C, side=side, trans=trans)
    assert got.shape == C.shape and got.dtype == np.float64
    for i in range(batch):
        assert rel_error(got[i], apply_reference(V[i], tau[i], C[i], side, trans)) <= 1e-12


@pytest.mark.parametrize("trans", TRANS)
@pytest.mark.parametrize("side", SIDES)
def test_apply_float32(side, trans, rng) -> None:
    V, tau = reflectors(rng, 70, 40, "orthogonal")
    V32, tau32 = V.astype(np.float32), tau.astype(np.float32)
    C32 = rng.standard_normal(c_shape(70, 6, side)).astype(np.float32)
    got = apply(V32, tau32, C32, side=side, trans=trans)
    assert got.dtype == np.float32 and got.shape == C32.shape
    assert rel_error(got, apply_reference(V32, tau32, C32, side, trans)) <= 1e-4


def test_apply_dtype_promotion(rng) -> None:
    V, tau = reflectors(rng, 25, 6, "generalized")
    C = rng.standard_normal((25, 3))
    f32 = np.float32
    for args in [
        (V.astype(f32), tau, C),
        (V, tau.astype(f32), C),
        (V, tau, C.astype(f32)),
        (V.astype(f32), tau.astype(f32), C),
    ]:
        got = apply(*args)
        assert got.dtype == np.float64
        assert rel_error(got, apply_reference(*args, "left", False)) <= 1e-12
    Ci = rng.integers(-3, 4, size=(25, 3))
    got = apply(V, tau, Ci)
    assert got.dtype == np.float64
    assert rel_error(got, apply_reference(V, tau, Ci, "left", False)) <= 1e-12


@pytest.mark.parametrize("layout", list(DENSE_LAYOUTS))
def test_apply_any_layout(layout, rng) -> None:
    V, tau = reflectors(rng, 36, 10, "generalized")
    C = rng.standard_normal((36, 5))
    V_view, C_view = dense_layouts(V)[layout], dense_layouts(C)[layout]
    V_before, C_before = V_view.copy(), C_view.copy()
    for side, operand in [("left", C_view), ("right", dense_layouts(C.T.copy())[layout])]:
        got = apply(V_view, tau, operand, side=side, trans=True)
        assert rel_error(got, apply_reference(V, tau, operand, side, True)) <= 1e-12
    # The inputs are not modified (no in-place update of C).
    assert np.array_equal(V_view, V_before) and np.array_equal(C_view, C_before)


def test_apply_bad_input(rng) -> None:
    V, tau = reflectors(rng, 10, 4, "generalized")
    C = rng.standard_normal((10, 3))
    with pytest.raises(ValueError, match="tau"):
        apply(V, tau[:3], C)
    with pytest.raises(ValueError, match="tau"):
        apply(V, np.append(tau, 1.0), C)
    with pytest.raises(ValueError):
        apply(V, tau, C[:9])  # rows != n on the left
    with pytest.raises(ValueError):
        apply(V, tau, C, side="right")  # columns (3) != n on the right
    with pytest.raises(ValueError):
        apply(V, tau, C.T, side="left")
    with pytest.raises(ValueError, match="side"):
        apply(V, tau, C, side="top")
    with pytest.raises(ValueError, match="side"):
        apply(V, tau, C, side="L")
    with pytest.raises(ValueError):
        apply(V[:, 0], tau[:1], C)  # V 1-D
    with pytest.raises(ValueError):
        apply(V[None, None], tau, C)  # V 4-D
    with pytest.raises(ValueError):
        apply(V, tau[:, None], C)  # tau 2-D with V 2-D
    with pytest.raises(ValueError):
        apply(V, tau, C[None, None])  # C 4-D
    with pytest.raises(ValueError):
        apply(np.stack([V, V]), np.stack([tau, tau, tau]), np.stack([C, C]))  # batch sizes
    with pytest.raises(ValueError):
        apply(np.stack([V, V]), np.stack([tau, tau]), np.stack([C, C, C]))
    for position in range(3):
        args = [V.copy(), tau.copy(), C.copy()]
        args[position].flat[1] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            apply(*args)
    with pytest.raises(TypeError, match="complex"):
        apply(V, tau, C.astype(complex))


# --- product and wy -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["orthogonal", "generalized", "lapack"])
@pytest.mark.parametrize(("n", "k"), SIZES, ids=SIZE_IDS)
def test_product_matches_explicit_product(n, k, kind, rng) -> None:
    V, tau = reflectors(rng, n, k, kind)
    Q_ref = explicit_q(V, tau)
    Q = product(V, tau)
    assert type(Q) is np.ndarray and Q.shape == (n, n) and Q.dtype == np.float64
    assert rel_error(Q, Q_ref) <= 1e-12
    for ncols in sorted({1, min(k, n), n}):
        Qc = product(V, tau, ncols=ncols)
        assert Qc.shape == (n, ncols)
        assert rel_error(Qc, Q_ref[:, :ncols]) <= 1e-12


def test_product_orthogonal(rng) -> None:
    V, tau = reflectors(rng, 80, 50, "orthogonal")
    Q = product(V, tau)
    assert np.abs(Q.T @ Q - np.eye(80)).max() <= 1e-13


def test_product_batched_and_float32(rng) -> None:
    batch, n, k = 3, 21, 8
    V = np.empty((batch, n, k))
    tau = np.empty((batch, k))
    for i in range(batch):
        V[i], tau[i] = reflectors(rng, n, k, "generalized")
    Q = product(V, tau)
    assert Q.shape == (batch, n, n)
    Q5 = product(V, tau, ncols=5)
    assert Q5.shape == (batch, n, 5)
    for i in range(batch):
        Q_ref = explicit_q(V[i], tau[i])
        assert rel_error(Q[i], Q_ref) <= 1e-12
        assert rel_error(Q5[i], Q_ref[:, :5]) <= 1e-12
    Q32 = product(V.astype(np.float32), tau.astype(np.float32))
    assert Q32.dtype == np.float32
    for i in range(batch):
        assert rel_error(Q32[i], explicit_q(V[i], tau[i])) <= 1e-4


@pytest.mark.parametrize("kind", ["orthogonal", "generalized", "lapack"])
@pytest.mark.parametrize(("n", "k"), SIZES, ids=SIZE_IDS)
def test_wy_is_larft(n, k, kind, rng) -> None:
    V, tau = reflectors(rng, n, k, kind)
    T = wy(V, tau)
    assert type(T) is np.ndarray and T.shape == (k, k) and T.dtype == np.float64
    assert np.array_equal(np.tril(T, -1), np.zeros((k, k)))  # exactly upper triangular
    np.testing.assert_allclose(np.diag(T), tau, rtol=1e-12)
    T_ref = larft_reference(V, tau)
    assert rel_error(T, T_ref) <= 1e-11
    # The compact WY representation Q = I - V T V^T.
    assert rel_error(np.eye(n) - V @ T @ V.T, explicit_q(V, tau)) <= 1e-12


def test_wy_more_reflectors_than_rows(rng) -> None:
    V, tau = reflectors(rng, 10, 30, "generalized")
    T = wy(V, tau)
    assert T.shape == (30, 30) and np.array_equal(np.tril(T, -1), np.zeros((30, 30)))
    assert rel_error(np.eye(10) - V @ T @ V.T, explicit_q(V, tau)) <= 1e-11


def test_wy_float32(rng) -> None:
    V, tau = reflectors(rng, 40, 16, "orthogonal")
    T = wy(V.astype(np.float32), tau.astype(np.float32))
    assert T.dtype == np.float32
    assert rel_error(T, larft_reference(V.astype(np.float32), tau.astype(np.float32))) <= 1e-4


def test_product_and_wy_bad_input(rng) -> None:
    V, tau = reflectors(rng, 10, 4, "generalized")
    with pytest.raises(ValueError, match="tau"):
        product(V, tau[:3])
    with pytest.raises(ValueError, match="tau"):
        wy(V, tau[:3])
    bad = V.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        product(bad, tau)
    with pytest.raises(ValueError, match="NaN"):
        wy(bad, tau)
    with pytest.raises(ValueError):
        product(V[:, 0], tau[:1])
    with pytest.raises(ValueError):
        product(V, tau, ncols=0)
    with pytest.raises(ValueError):
        product(V, tau, ncols=11)  # more columns than Q has


# --- LAPACK interoperability --------------------------------------------------------

LAPACK_SHAPES = [(9, 5), (6, 6), (4, 7), (70, 40), (1, 3), (5, 1)]
LAPACK_IDS = ["{}x{}".format(*shape) for shape in LAPACK_SHAPES]


def dormqr(side: str, trans: bool, qr: np.ndarray, tau: np.ndarray, C: np.ndarray) -> np.ndarray:
    """LAPACK ormqr through scipy, with a workspace query (float32: sormqr)."""
    routine = lapack.sormqr if qr.dtype == np.float32 else lapack.dormqr
    a = np.asfortranarray(qr[:, : len(tau)])
    s, t = ("L" if side == "left" else "R"), ("T" if trans else "N")
    _, work, info = routine(s, t, a, tau, C.copy(), lwork=-1)
    assert info == 0
    lwork = max(int(work[0]), 1, C.size)
    cq, _, info = routine(s, t, a, tau, C.copy(), lwork=lwork)
    assert info == 0
    return cq


@pytest.mark.parametrize(("m", "n"), LAPACK_SHAPES, ids=LAPACK_IDS)
def test_from_lapack_layout(m, n, rng) -> None:
    A = rng.standard_normal((m, n))
    (qr, tau), _ = scipy.linalg.qr(A, mode="raw")
    kk = len(tau)
    assert kk == min(m, n)
    V, tau_out = from_lapack(qr, tau)
    assert V.shape == (m, kk) and tau_out.shape == (kk,)
    np.testing.assert_array_equal(tau_out, tau)
    np.testing.assert_array_equal(np.diag(V), np.ones(kk))
    np.testing.assert_array_equal(np.triu(V, 1), np.zeros((m, kk)))
    np.testing.assert_array_equal(np.tril(V, -1), np.tril(qr[:, :kk], -1))


@pytest.mark.parametrize(("m", "n"), LAPACK_SHAPES, ids=LAPACK_IDS)
def test_product_of_lapack_reflectors_is_scipy_q(m, n, rng) -> None:
    A = rng.standard_normal((m, n))
    (qr, tau), _ = scipy.linalg.qr(A, mode="raw")
    V, tau_v = from_lapack(qr, tau)
    Q_full = scipy.linalg.qr(A, mode="full")[0]
    Q = product(V, tau_v)
    assert Q.shape == (m, m)
    assert np.abs(Q - Q_full).max() <= 1e-13 * max(m, 10)
    Q_econ = scipy.linalg.qr(A, mode="economic")[0]
    Qe = product(V, tau_v, ncols=min(m, n))
    assert Qe.shape == Q_econ.shape
    assert np.abs(Qe - Q_econ).max() <= 1e-13 * max(m, 10)
    # And Q R = A with scipy's R.
    R = scipy.linalg.qr(A, mode="economic")[1]
    assert np.abs(Qe @ R - A).max() <= 1e-12 * np.abs(A).max() * max(m, 10)


@pytest.mark.parametrize("trans", TRANS)
@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize(("m", "n"), LAPACK_SHAPES, ids=LAPACK_IDS)
def test_apply_matches_dormqr(m, n, side, trans, rng) -> None:
    A = rng.standard_normal((m, n))
    (qr, tau), _ = scipy.linalg.qr(A, mode="raw")
    for c in [1, 6]:
        C = np.asfortranarray(rng.standard_normal(c_shape(m, c, side)))
        expected = dormqr(side, trans, qr, tau, C)
        got = apply(*from_lapack(qr, tau), C, side=side, trans=trans)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= 1e-13 * max(m, 10) * np.abs(C).max()


@pytest.mark.parametrize("trans", TRANS)
@pytest.mark.parametrize("side", SIDES)
def test_apply_matches_sormqr_from_sgeqrf(side, trans, rng) -> None:
    A = rng.standard_normal((50, 30)).astype(np.float32)
    qr, tau, _, info = lapack.sgeqrf(A)
    assert info == 0
    V, tau_v = from_lapack(qr, tau)
    assert V.dtype == np.float32 and tau_v.dtype == np.float32
    C = np.asfortranarray(rng.standard_normal(c_shape(50, 4, side)).astype(np.float32))
    expected = dormqr(side, trans, qr, tau, C)
    got = apply(V, tau_v, C, side=side, trans=trans)
    assert got.dtype == np.float32
    assert rel_error(got, expected) <= 1e-5


def test_from_lapack_dgeqrf(rng) -> None:
    A = rng.standard_normal((12, 8))
    qr, tau, _, info = lapack.dgeqrf(A)
    assert info == 0
    V, tau_v = from_lapack(qr, tau)
    assert rel_error(product(V, tau_v), scipy.linalg.qr(A)[0]) <= 1e-13


def test_from_lapack_bad_input(rng) -> None:
    (qr, tau), _ = scipy.linalg.qr(rng.standard_normal((6, 4)), mode="raw")
    with pytest.raises(ValueError):
        from_lapack(qr, np.append(tau, [1.0, 1.0, 1.0]))  # more reflectors than rows
    with pytest.raises(ValueError):
        from_lapack(qr[:, 0], tau)
    bad = qr.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        from_lapack(bad, tau)


# --- delta rule ---------------------------------------------------------------------


def delta_rule_reference(q, k, v, beta, n_h=1, gate=None, initial_state=None):
    """The recurrence token by token, sub-step by sub-step, in float64.

    For each token t: S <- exp(g_t) S (if gated); then for its n_h keys
    S <- (I - beta_j k_j k_j^T) S + beta_j k_j v_j^T; then o_t = S^T q_t.
    All (batch, head) pairs advance together.
    """
    q, k, v, beta = (np.asarray(a, dtype=np.float64) for a in (q, k, v, beta))
    B, T, H, K = q.shape
    Vd = v.shape[-1]
    if initial_state is None:
        S = np.zeros((B, H, K, Vd))
    else:
        S = np.array(initial_state, dtype=np.float64)
    o = np.zeros((B, T, H, Vd))
    for t in range(T):
        if gate is not None:
            S = np.exp(np.asarray(gate, dtype=np.float64)[:, t, :])[:, :, None, None] * S
        for j in range(n_h):
            i = t * n_h + j
            kj, vj, bj = k[:, i], v[:, i], beta[:, i]  # (B, H, K), (B, H, V), (B, H)
            kS = np.einsum("bhk,bhkv->bhv", kj, S)
            S = S + bj[:, :, None, None] * np.einsum("bhk,bhv->bhkv", kj, vj - kS)
        o[:, t] = np.einsum("bhkv,bhk->bhv", S, q[:, t])
    return o, S


def delta_inputs(
    rng,
    B=2,
    T=37,
    H=3,
    K=8,
    V=5,
    n_h=1,
    gate=False,
    initial_state=False,
    gate_low=-0.3,
    dtype=np.float64,
):
    """Unit-norm keys, beta in (0, 2) (negative eigenvalues allowed), log-decay gates."""
    q = rng.standard_normal((B, T, H, K))
    k = rng.standard_normal((B, T * n_h, H, K))
    k /= np.linalg.norm(k, axis=-1, keepdims=True)
    v = rng.standard_normal((B, T * n_h, H, V))
    beta = rng.uniform(0.0, 2.0, size=(B, T * n_h, H))
    g = rng.uniform(gate_low, 0.0, size=(B, T, H)) if gate else None
    S0 = rng.standard_normal((B, H, K, V)) if initial_state else None

    def cast(a):
        return None if a is None else a.astype(dtype)

    return dict(
        q=cast(q),
        k=cast(k),
        v=cast(v),
        beta=cast(beta),
        n_h=n_h,
        gate=cast(g),
        initial_state=cast(S0),
    )


def assert_delta_close(got, expected, rtol: float) -> None:
    got = np.asarray(got, dtype=np.float64)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    atol = rtol * max(np.abs(expected).max(), 1e-300)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


def call_delta(inputs: dict, **options):
    args = dict(inputs)
    q, k, v, beta = args.pop("q"), args.pop("k"), args.pop("v"), args.pop("beta")
    return delta_rule(q, k, v, beta, **args, **options)


# Keys of length K <= 128 (float64) run the direct form, longer ones the
# chunked WY/UT form (randla.householder.delta_rule, Notes).
FORMS = {"direct": 8, "chunked": 160}


@pytest.mark.parametrize("chunk_size", [1, 5, 16, None, 1000], ids=lambda c: f"chunk{c}")
@pytest.mark.parametrize("initial_state", [False, True], ids=["S0=0", "S0"])
@pytest.mark.parametrize("gate", [False, True], ids=["nogate", "gate"])
@pytest.mark.parametrize("n_h", [1, 2, 3])
@pytest.mark.parametrize("K", list(FORMS.values()), ids=list(FORMS))
def test_delta_rule_matches_recurrence(K, n_h, gate, initial_state, chunk_size, rng) -> None:
    # T = 37 is prime: no chunk size > 1 divides T or T * n_h.
    inputs = delta_inputs(rng, K=K, n_h=n_h, gate=gate, initial_state=initial_state)
    options = {} if chunk_size is None else {"chunk_size": chunk_size}
    o, state = call_delta(inputs, **options)
    o_ref, state_ref = delta_rule_reference(**inputs)
    assert type(o) is np.ndarray and type(state) is np.ndarray
    assert o.shape == (2, 37, 3, 5) and state.shape == (2, 3, K, 5)
    assert o.dtype == state.dtype == np.float64
    assert_delta_close(o, o_ref, 1e-10)
    assert_delta_close(state, state_ref, 1e-10)


@pytest.mark.parametrize("n_h", [1, 2, 3])
@pytest.mark.parametrize("gate", [False, True], ids=["nogate", "gate"])
def test_delta_rule_several_default_chunks(n_h, gate, rng) -> None:
    """T = 150 tokens with the default chunk_size=64: states carried across chunks."""
    inputs = delta_inputs(rng, B=1, T=150, H=2, K=16, V=12, n_h=n_h, gate=gate, initial_state=True)
    o, state = call_delta(inputs)
    o_ref, state_ref = delta_rule_reference(**inputs)
    assert_delta_close(o, o_ref, 1e-10)
    assert_delta_close(state, state_ref, 1e-10)


@pytest.mark.parametrize(("K", "V"), [(4, 12), (12, 4), (1, 1), (16, 1), (5, 70), (200, 37)])
def test_delta_rule_key_and_value_sizes(K, V, rng) -> None:
    inputs = delta_inputs(rng, T=29, K=K, V=V, n_h=2, gate=True, initial_state=True)
    o, state = call_delta(inputs, chunk_size=8)
    o_ref, state_ref = delta_rule_reference(**inputs)
    assert o.shape == (2, 29, 3, V) and state.shape == (2, 3, K, V)
    assert_delta_close(o, o_ref, 1e-10)
    assert_delta_close(state, state_ref, 1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_delta_rule_model_sized_heads(dtype, rng) -> None:
    """Heads of 64 (the direct form with two 32-column panels per head, rows a
    head count apart as in a real model), gated, four heads, 300 tokens."""
    inputs = delta_inputs(
        rng, B=2, T=300, H=4, K=64, V=64, n_h=2, gate=True, initial_state=True, dtype=dtype
    )
    o, state = call_delta(inputs)
    o_ref, state_ref = delta_rule_reference(**inputs)
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    assert_delta_close(o, o_ref, rtol)
    assert_delta_close(state, state_ref, rtol)


@pytest.mark.parametrize("V", [3, 12, 40])
def test_delta_rule_one_head_panels(V, rng) -> None:
    """One (batch, head): the direct form splits the state into panels of 8,
    16 or 32 columns (narrower for few panels per thread); each column's
    arithmetic is the same in any panel, so 1 and 2 threads agree exactly."""
    inputs = delta_inputs(rng, B=1, T=90, H=1, K=16, V=V, n_h=2, gate=True, initial_state=True)
    o_ref, state_ref = delta_rule_reference(**inputs)
    results = []
    for threads in (1, 2):
        with rl.num_threads(threads):
            results.append(call_delta(inputs))
    for o, state in results:
        assert_delta_close(o, o_ref, 1e-10)
        assert_delta_close(state, state_ref, 1e-10)
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


@pytest.mark.parametrize("T", [1, 2, 64, 65])
def test_delta_rule_short_sequences(T, rng) -> None:
    inputs = delta_inputs(rng, B=1, T=T, H=1, n_h=2, gate=True, initial_state=True)
    o, state = call_delta(inputs)
    o_ref, state_ref = delta_rule_reference(**inputs)
    assert o.shape == (1, T, 1, 5)
    assert_delta_close(o, o_ref, 1e-10)
    assert_delta_close(state, state_ref, 1e-10)


@pytest.mark.parametrize("n_h", [1, 3])
@pytest.mark.parametrize("gate", [False, True], ids=["nogate", "gate"])
@pytest.mark.parametrize("K", [8, 300], ids=["direct", "chunked"])
def test_delta_rule_float32(K, n_h, gate, rng) -> None:
    inputs = delta_inputs(rng, T=70, K=K, n_h=n_h, gate=gate, initial_state=True, dtype=np.float32)
    o, state = call_delta(inputs, chunk_size=32)
    assert o.dtype == np.float32 and state.dtype == np.float32
    o_ref, state_ref = delta_rule_reference(**inputs)
    assert_delta_close(o, o_ref, 1e-4)
    assert_delta_close(state, state_ref, 1e-4)


@pytest.mark.parametrize("K", list(FORMS.values()), ids=list(FORMS))
def test_delta_rule_strong_gates(K, rng) -> None:
    """Decays down to exp(-20) per token: a chunk's cumulative decay underflows to 0.

    The chunked form must use only ratios of decays that are at most 1 (never
    exp(+cumulative)), or it overflows.
    """
    inputs = delta_inputs(rng, T=150, K=K, n_h=2, gate=True, initial_state=True, gate_low=-20.0)
    o, state = call_delta(inputs)
    assert np.isfinite(o).all() and np.isfinite(state).all()
    o_ref, state_ref = delta_rule_reference(**inputs)
    assert_delta_close(o, o_ref, 1e-10)
    assert_delta_close(state, state_ref, 1e-10)


def test_delta_rule_strong_gates_float32(rng) -> None:
    inputs = delta_inputs(
        rng, T=150, n_h=1, gate=True, initial_state=True, gate_low=-4.0, dtype=np.float32
    )
    o, state = call_delta(inputs)
    assert np.isfinite(o).all() and np.isfinite(state).all()
    o_ref, state_ref = delta_rule_reference(**inputs)
    assert_delta_close(o, o_ref, 1e-4)
    assert_delta_close(state, state_ref, 1e-4)


@pytest.mark.parametrize("n_h", [1, 2, 3])
def test_delta_rule_reflections_keep_the_state_norm(n_h, rng) -> None:
    """beta = 2, v = 0, unit keys: each step is a reflection, S_T = (orthogonal) S_0."""
    inputs = delta_inputs(rng, T=100, K=8, V=5, n_h=n_h, initial_state=True)
    inputs["beta"] = np.full_like(inputs["beta"], 2.0)
    inputs["v"] = np.zeros_like(inputs["v"])
    S0 = inputs["initial_state"]
    o, state = call_delta(inputs, chunk_size=16)
    # The Gram matrix S^T S, hence every column norm and the Frobenius norm, is kept.
    gram0 = np.einsum("bhkv,bhkw->bhvw", S0, S0)
    gram = np.einsum("bhkv,bhkw->bhvw", state, state)
    np.testing.assert_allclose(gram, gram0, rtol=1e-10, atol=1e-10 * np.abs(gram0).max())
    np.testing.assert_allclose(
        np.linalg.norm(state, axis=-2), np.linalg.norm(S0, axis=-2), rtol=1e-10
    )
    # And it is the product of the reflections, newest on the left.
    o_ref, state_ref = delta_rule_reference(**inputs)
    assert_delta_close(state, state_ref, 1e-10)
    assert_delta_close(o, o_ref, 1e-10)
    # Not a trivial identity: the state did move.
    assert np.abs(state - S0).max() > 0.1


def test_delta_rule_input_layouts(rng) -> None:
    """Heads-first arrays transposed to (B, T, H, .) views, and reversed strides."""
    inputs = delta_inputs(rng, T=40, n_h=2, gate=True, initial_state=True)
    o_ref, state_ref = delta_rule_reference(**inputs)
    views = {}
    for name in ["q", "k", "v"]:
        a = inputs[name]
        views[name] = np.ascontiguousarray(a.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
    views["beta"] = np.ascontiguousarray(inputs["beta"][:, ::-1])[:, ::-1]
    views["gate"] = np.asfortranarray(inputs["gate"])
    big = np.zeros((*inputs["initial_state"].shape[:-1], 2 * inputs["initial_state"].shape[-1]))
    big[..., ::2] = inputs["initial_state"]
    views["initial_state"] = big[..., ::2]
    before = {name: view.copy() for name, view in views.items()}
    o, state = delta_rule(
        views["q"],
        views["k"],
        views["v"],
        views["beta"],
        n_h=2,
        gate=views["gate"],
        initial_state=views["initial_state"],
        chunk_size=16,
    )
    assert_delta_close(o, o_ref, 1e-10)
    assert_delta_close(state, state_ref, 1e-10)
    for name, view in views.items():  # inputs, initial_state included, are not modified
        assert np.array_equal(view, before[name]), name


def test_delta_rule_general_keys(rng) -> None:
    """Keys need not be unit vectors: beta |k|^2 in (0, 2) keeps the recurrence stable."""
    inputs = delta_inputs(rng, T=50, n_h=2, gate=True, initial_state=True)
    scale = rng.uniform(0.5, 1.5, size=inputs["k"].shape[:-1])
    inputs["k"] = inputs["k"] * scale[..., None]
    inputs["beta"] = inputs["beta"] / scale**2
    o, state = call_delta(inputs, chunk_size=16)
    o_ref, state_ref = delta_rule_reference(**inputs)
    assert_delta_close(o, o_ref, 1e-10)
    assert_delta_close(state, state_ref, 1e-10)


def test_delta_rule_bad_input(rng) -> None:
    inputs = delta_inputs(rng, B=2, T=6, H=3, K=4, V=5, n_h=2, gate=True, initial_state=True)
    q, k, v, beta = inputs["q"], inputs["k"], inputs["v"], inputs["beta"]
    g, S0 = inputs["gate"], inputs["initial_state"]

    def call(**changes):
        args = dict(q=q, k=k, v=v, beta=beta, n_h=2, gate=g, initial_state=S0)
        args.update(changes)
        return delta_rule(args.pop("q"), args.pop("k"), args.pop("v"), args.pop("beta"), **args)

    call()  # the unchanged arguments are valid
    with pytest.raises(ValueError):
        call(n_h=1)  # k's second axis is T * 2, not T * 1
    with pytest.raises(ValueError):
        call(n_h=3)
    with pytest.raises(ValueError):
        call(k=k[:, :-1], v=v[:, :-1], beta=beta[:, :-1])  # T * n_h - 1 keys
    with pytest.raises(ValueError):
        call(v=v[:, :-1])
    with pytest.raises(ValueError):
        call(beta=beta[:, :-1])
    with pytest.raises(ValueError):
        call(q=q[0])  # 3-D q
    with pytest.raises(ValueError):
        call(q=q[None])  # 5-D q
    with pytest.raises(ValueError):
        call(k=k[..., :3])  # key size differs from q's
    with pytest.raises(ValueError):
        call(k=k[:, :, :2], v=v[:, :, :2], beta=beta[:, :, :2])  # heads differ from q's
    with pytest.raises(ValueError):
        call(k=k[:1], v=v[:1], beta=beta[:1])  # batch differs from q's
    with pytest.raises(ValueError):
        call(beta=beta[..., None])
    with pytest.raises(ValueError):
        call(gate=g[:, :-1])
    with pytest.raises(ValueError):
        call(gate=np.repeat(g, 2, axis=1))  # one gate per token, not per sub-step
    with pytest.raises(ValueError):
        call(initial_state=S0[..., :-1])  # value size differs from v's
    with pytest.raises(ValueError):
        call(initial_state=S0[:, :, :-1])  # key size differs
    with pytest.raises(ValueError):
        call(initial_state=S0[0])
    with pytest.raises(ValueError):
        call(chunk_size=0)
    with pytest.raises(ValueError):
        call(chunk_size=-4)
    with pytest.raises(ValueError):
        call(n_h=0, k=k[:, :0], v=v[:, :0], beta=beta[:, :0])
    for name, value in [
        ("q", q),
        ("k", k),
        ("v", v),
        ("beta", beta),
        ("gate", g),
        ("initial_state", S0),
    ]:
        bad = value.copy()
        bad.flat[2] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            call(**{name: bad})
    with pytest.raises(TypeError, match="complex"):
        call(q=q.astype(complex))


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("K", list(FORMS.values()), ids=list(FORMS))
def test_delta_rule_non_finite_input_is_named(K, bad_value, rng) -> None:
    """q, k, v and beta are checked through the result: a single non-finite
    entry anywhere (first, middle or last sub-step, with beta = 0 there so
    that it meets 0 * inf) must still raise, naming the argument."""
    B, T, H, n_h = 1, 9, 2, 2
    inputs = delta_inputs(rng, B=B, T=T, H=H, K=K, V=5, n_h=n_h, gate=True, initial_state=True)
    for name in ["q", "k", "v", "beta"]:
        for position in [0, 5, T * n_h - 1]:
            bad = dict(inputs)
            bad[name] = inputs[name].copy()
            bad["beta"] = inputs["beta"].copy()
            if name != "beta":
                bad["beta"][0, position, 1] = 0.0  # the update multiplies by 0
            index = (0, min(position, T - 1) if name == "q" else position, 1)
            if name in ("q", "k", "v"):
                index += (2,)
            bad[name][index] = bad_value
            with pytest.raises(ValueError, match=f"^{name} contains NaN or infinity"):
                call_delta(bad)


def test_delta_rule_overflow_from_finite_input_is_returned(rng) -> None:
    """Finite inputs whose recurrence overflows: the result holds infinity, as
    numpy's arithmetic would, and no input is blamed."""
    inputs = delta_inputs(rng, B=1, T=8, H=1, K=4, V=3, n_h=1)
    inputs["v"] = inputs["v"] * 1e200  # the state stays finite,
    inputs["q"] = inputs["q"] * 1e200  # the outputs S^T q overflow
    with np.errstate(over="ignore", invalid="ignore"):
        o, _ = call_delta(inputs)
    assert not np.isfinite(o).all()


@pytest.mark.parametrize("threads", [1, 2])
def test_thread_count_does_not_change_results(threads, rng) -> None:
    batch, n, k = 5, 90, 70
    V = np.empty((batch, n, k))
    tau = np.empty((batch, k))
    for i in range(batch):
        V[i], tau[i] = reflectors(rng, n, k, "generalized")
    C = rng.standard_normal((batch, n, 40))
    inputs = delta_inputs(rng, B=2, T=90, H=3, K=16, V=8, n_h=2, gate=True, initial_state=True)
    o_ref, state_ref = delta_rule_reference(**inputs)
    with rl.num_threads(threads):
        got = apply(V, tau, C, trans=True)
        for i in range(batch):
            assert rel_error(got[i], apply_reference(V[i], tau[i], C[i], "left", True)) <= 1e-12
        o, state = call_delta(inputs, chunk_size=32)
        assert_delta_close(o, o_ref, 1e-10)
        assert_delta_close(state, state_ref, 1e-10)


# --- heavier cases ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("trans", TRANS)
@pytest.mark.parametrize("side", SIDES)
def test_apply_large(side, trans, rng) -> None:
    n, k = 600, 400
    V, tau = reflectors(rng, n, k, "generalized")
    C = rng.standard_normal(c_shape(n, 300, side))
    got = apply(V, tau, C, side=side, trans=trans)
    assert rel_error(got, apply_reference(V, tau, C, side, trans)) <= 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("n_h", [1, 2])
def test_delta_rule_long_sequence(n_h, rng) -> None:
    inputs = delta_inputs(rng, B=2, T=1500, H=4, K=64, V=64, n_h=n_h, gate=True, initial_state=True)
    o, state = call_delta(inputs)
    o_ref, state_ref = delta_rule_reference(**inputs)
    assert_delta_close(o, o_ref, 1e-10)
    assert_delta_close(state, state_ref, 1e-10)
