"""API.md §7: Monarch matrices (``rl.monarch``).

Every product is checked against references written here, independently of
randla: an einsum transcription of the four steps of ALGORITHMS.md
("Monarch") and the explicit matrix ``P_out blkdiag(w2) P_mid blkdiag(w1)``
built from permutation matrices (the two are first checked against each
other). The projection is checked against per-block rank-one truncations
computed with ``numpy.linalg.svd``, its exactness on Monarch matrices and its
Frobenius error; then dtypes, layouts, the ``Monarch`` class (``@``, ``.T``,
``.to_dense()``) and argument validation.
"""

from __future__ import annotations

import numpy as np
import pytest
import randla as rl
import randla.monarch
import scipy.linalg
from conftest import DENSE_LAYOUTS, dense_layouts
from randla.monarch import Monarch, multiply, project

RTOL64 = 1e-12
RTOL32 = 1e-4

# (k, q, p, l, s, r) with l * r == k * q: w1 (k, q, p), w2 (l, s, r); n = k p, m = l s.
SHAPES = [
    (4, 4, 4, 4, 4, 4),  # square, the Monarch paper's layout
    (8, 8, 16, 8, 16, 8),  # n = m = 128, b = 8
    (3, 4, 5, 6, 7, 2),  # rectangular, l > k
    (3, 4, 5, 2, 3, 6),  # rectangular, l < k
    (2, 6, 3, 12, 5, 1),  # r = 1
    (2, 6, 3, 1, 9, 12),  # l = 1: w2 is one dense block
    (1, 8, 10, 4, 3, 2),  # k = 1: w1 is one dense block
    (5, 1, 2, 5, 2, 1),  # q = r = 1
    (6, 2, 3, 4, 5, 3),  # q < l: out1's blocks straddle w2's blocks
]
SHAPE_IDS = ["k{}q{}p{}-l{}s{}r{}".format(*shape) for shape in SHAPES]
BATCHES = [(), (1,), (7,), (2, 3)]


# --- independent references ---------------------------------------------------------


def monarch_reference(x: np.ndarray, w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """The four steps of ALGORITHMS.md with numpy einsum, in float64."""
    x = np.asarray(x, dtype=np.float64)
    w1 = np.asarray(w1, dtype=np.float64)
    w2 = np.asarray(w2, dtype=np.float64)
    k, q, p = w1.shape
    nl, s, r = w2.shape
    lead = x.shape[:-1]
    xb = x.reshape(-1, k, p)
    out1 = np.einsum("kqp,bkp->bkq", w1, xb)  # (b, k, q)
    out1 = out1.reshape(-1, r, nl).transpose(0, 2, 1)  # (b, k q) = (b, r, l) -> (b, l, r)
    out2 = np.einsum("lsr,blr->bls", w2, out1)  # (b, l, s)
    y = out2.transpose(0, 2, 1).reshape(-1, s * nl)  # (b, s, l) -> (b, s l)
    return y.reshape(*lead, s * nl)


def monarch_dense_reference(w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """``P_out blkdiag(w2) P_mid blkdiag(w1)`` with explicit permutation matrices."""
    w1 = np.asarray(w1, dtype=np.float64)
    w2 = np.asarray(w2, dtype=np.float64)
    k, q, p = w1.shape
    nl, s, r = w2.shape
    B1 = scipy.linalg.block_diag(*w1)  # (k q, k p)
    B2 = scipy.linalg.block_diag(*w2)  # (l s, l r)
    # P_mid: entry f = ri * l + li of out1 (read as (r, l)) moves to li * r + ri.
    P_mid = np.zeros((nl * r, k * q))
    for f in range(k * q):
        ri, li = divmod(f, nl)
        P_mid[li * r + ri, f] = 1.0
    # P_out: entry g = li * s + si of out2 moves to si * l + li.
    P_out = np.zeros((s * nl, nl * s))
    for g in range(nl * s):
        li, si = divmod(g, s)
        P_out[si * nl + li, g] = 1.0
    return P_out @ B2 @ P_mid @ B1


def random_factors(rng: np.random.Generator, shape: tuple[int, ...]):
    k, q, p, nl, s, r = shape
    assert nl * r == k * q
    return rng.standard_normal((k, q, p)), rng.standard_normal((nl, s, r))


def assert_monarch_close(got, x, w1, w2, rtol: float) -> None:
    """``got == multiply(x, w1, w2)`` entrywise within ``rtol`` times the rounding scale.

    The scale is the same product with absolute values, ``|P_out| |W2| |P_mid|
    |W1| |x|``, the standard bound for a sum of products (meaningful for
    entries that cancel too).
    """
    assert type(got) is np.ndarray
    expected = monarch_reference(x, w1, w2)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    scale = monarch_reference(np.abs(x), np.abs(w1), np.abs(w2)) + 1e-300
    ratio = np.abs(got.astype(np.float64) - expected) / scale
    assert ratio.max() <= rtol, f"error ratio {ratio.max():.3e} exceeds {rtol:.1e}"


def block_truncation_reference(M: np.ndarray, b: int) -> tuple[np.ndarray, float]:
    """Per-block top singular pairs of ``M`` with numpy.linalg.svd.

    Block ``(l, k)`` of ``M`` (shape (m, n)) over ``(s, i)`` is
    ``M[s * b + l, k * (n // b) + i]``. Returns the sum of the rank-one
    truncations (as a dense matrix) and the Frobenius norm of what they leave
    out, ``sqrt(sum of the non-top squared singular values)``.
    """
    M = np.asarray(M, dtype=np.float64)
    m, n = M.shape
    blocks = M.reshape(m // b, b, b, n // b)  # [s, l, k, i]
    approx = np.zeros_like(blocks)
    left_out = 0.0
    for li in range(b):
        for k in range(b):
            block = blocks[:, li, k, :]
            U, sv, Vt = np.linalg.svd(block, full_matrices=False)
            approx[:, li, k, :] = sv[0] * np.outer(U[:, 0], Vt[0])
            left_out += float(np.sum(sv[1:] ** 2))
    return approx.reshape(m, n), float(np.sqrt(left_out))


def relative_error(got: np.ndarray, expected: np.ndarray, scale: np.ndarray) -> float:
    return float(np.linalg.norm(got - expected) / max(np.linalg.norm(scale), 1e-300))


# --- the references themselves ------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_references_agree(shape, rng) -> None:
    """The einsum transcription and the permutation-matrix formula are the same map."""
    w1, w2 = random_factors(rng, shape)
    D = monarch_dense_reference(w1, w2)
    k, q, p, nl, s, r = shape
    assert D.shape == (nl * s, k * p)
    np.testing.assert_allclose(monarch_reference(np.eye(k * p), w1, w2), D.T, atol=1e-12)


def test_reference_block_formula(rng) -> None:
    """With w1 (b, b, n/b) and w2 (b, m/b, b): M[s b + l, k n/b + i] = w2[l, s, k] w1[k, l, i]."""
    b, p, s_count = 3, 4, 5
    w1 = rng.standard_normal((b, b, p))
    w2 = rng.standard_normal((b, s_count, b))
    D = monarch_dense_reference(w1, w2)
    for s in range(s_count):
        for li in range(b):
            for k in range(b):
                for i in range(p):
                    assert D[s * b + li, k * p + i] == pytest.approx(w2[li, s, k] * w1[k, li, i])


# --- multiply -----------------------------------------------------------------------


def test_module_is_reachable_as_attribute() -> None:
    assert rl.monarch is randla.monarch
    assert rl.monarch.multiply is multiply and rl.monarch.project is project
    assert rl.monarch.Monarch is Monarch


@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_multiply_matches_reference(shape, batch, rng) -> None:
    w1, w2 = random_factors(rng, shape)
    k, q, p, nl, s, r = shape
    x = rng.standard_normal((*batch, k * p))
    y = multiply(x, w1, w2)
    assert y.shape == (*batch, nl * s) and y.dtype == np.float64
    assert_monarch_close(y, x, w1, w2, RTOL64)
    # The same as x @ M^T with the permutation-matrix formula.
    D = monarch_dense_reference(w1, w2)
    np.testing.assert_allclose(y, x @ D.T, rtol=1e-10, atol=1e-10 * np.abs(x).max())


def test_multiply_1d_and_batched_rows_agree_with_reference(rng) -> None:
    w1, w2 = random_factors(rng, (3, 4, 5, 6, 7, 2))
    X = rng.standard_normal((6, 15))
    for row in X:
        y = multiply(row, w1, w2)
        assert y.shape == (42,)
        assert_monarch_close(y, row, w1, w2, RTOL64)


@pytest.mark.parametrize("shape", [SHAPES[0], SHAPES[2], SHAPES[8]], ids=str)
def test_multiply_float32(shape, rng) -> None:
    w1, w2 = random_factors(rng, shape)
    k, q, p, nl, s, r = shape
    x = rng.standard_normal((9, k * p))
    x32, w132, w232 = (a.astype(np.float32) for a in (x, w1, w2))
    y = multiply(x32, w132, w232)
    assert y.dtype == np.float32 and y.shape == (9, nl * s)
    assert_monarch_close(y, x32, w132, w232, RTOL32)


def test_multiply_dtype_promotion(rng) -> None:
    w1, w2 = random_factors(rng, (3, 4, 5, 6, 7, 2))
    x = rng.standard_normal((4, 15))
    f32 = np.float32
    # Any float64 input makes the result float64 (and computed from the given values).
    for args in [
        (x.astype(f32), w1, w2),
        (x, w1.astype(f32), w2),
        (x, w1, w2.astype(f32)),
        (x.astype(f32), w1.astype(f32), w2),
    ]:
        y = multiply(*args)
        assert y.dtype == np.float64
        assert_monarch_close(y, *args, RTOL64)
    # Integer and bool inputs become float64.
    xi = rng.integers(-5, 6, size=(4, 15))
    w1i = rng.integers(-3, 4, size=w1.shape)
    y = multiply(xi, w1i, w2)
    assert y.dtype == np.float64
    assert_monarch_close(y, xi, w1i, w2, RTOL64)
    xb = rng.random((4, 15)) < 0.5
    y = multiply(xb, w1, w2)
    assert y.dtype == np.float64
    assert_monarch_close(y, xb.astype(np.float64), w1, w2, RTOL64)
    # Lists are array_like.
    y = multiply(x[0].tolist(), w1.tolist(), w2.tolist())
    assert_monarch_close(y, x[0], w1, w2, RTOL64)


@pytest.mark.parametrize("layout", list(DENSE_LAYOUTS))
def test_multiply_any_layout_of_x(layout, rng) -> None:
    w1, w2 = random_factors(rng, (3, 4, 5, 2, 3, 6))
    x = rng.standard_normal((11, 15))
    view = dense_layouts(x)[layout]
    before = view.copy()
    y = multiply(view, w1, w2)
    assert_monarch_close(y, x, w1, w2, RTOL64)
    assert np.array_equal(view, before)  # the input is not modified


def test_multiply_any_layout_of_factors(rng) -> None:
    w1, w2 = random_factors(rng, (6, 2, 3, 4, 5, 3))
    x = rng.standard_normal((2, 3, 18))
    layouts = {
        "C": lambda a: np.ascontiguousarray(a),
        "F": lambda a: np.asfortranarray(a),
        "strided": lambda a: np.repeat(a, 2, axis=1)[:, ::2, :],
        "reversed": lambda a: np.ascontiguousarray(a[::-1, :, ::-1])[::-1, :, ::-1],
        "swapped": lambda a: np.ascontiguousarray(a.transpose(0, 2, 1)).transpose(0, 2, 1),
    }
    x_views = [
        x,
        np.ascontiguousarray(x.transpose(2, 0, 1)).transpose(1, 2, 0),
        np.ascontiguousarray(x[..., ::-1])[..., ::-1],
    ]
    for make1 in layouts.values():
        for make2 in layouts.values():
            v1, v2 = make1(w1), make2(w2)
            assert np.array_equal(v1, w1) and np.array_equal(v2, w2)
            for xv in x_views:
                y = multiply(xv, v1, v2)
                assert_monarch_close(y, x, w1, w2, RTOL64)


def test_multiply_output_is_c_contiguous(rng) -> None:
    w1, w2 = random_factors(rng, (3, 4, 5, 6, 7, 2))
    y = multiply(rng.standard_normal((2, 5, 15)), w1, w2)
    assert y.flags.c_contiguous and type(y) is np.ndarray


def test_multiply_bad_input(rng) -> None:
    w1, w2 = random_factors(rng, (3, 4, 5, 6, 7, 2))
    x = rng.standard_normal((4, 15))
    with pytest.raises(ValueError, match=r"\bw1\b"):
        multiply(x, w1[0], w2)
    with pytest.raises(ValueError, match=r"\bw1\b"):
        multiply(x, w1[None], w2)
    with pytest.raises(ValueError, match=r"\bw2\b"):
        multiply(x, w1, w2[0])
    with pytest.raises(ValueError, match=r"\bw2\b"):
        multiply(x, w1, w2[None])
    with pytest.raises(ValueError, match=r"\bx\b"):
        multiply(x[:, :14], w1, w2)  # last axis != k p
    with pytest.raises(ValueError, match=r"\bx\b"):
        multiply(rng.standard_normal((4, 16)), w1, w2)
    with pytest.raises(ValueError, match=r"\bw1\b|\bw2\b"):
        multiply(x, w1, rng.standard_normal((5, 7, 2)))  # l r = 10 != k q = 12
    with pytest.raises(ValueError, match=r"\bw1\b|\bw2\b"):
        multiply(x, w1, rng.standard_normal((6, 7, 3)))  # l r = 18 != 12
    for name, position in [("x", 0), ("w1", 1), ("w2", 2)]:
        for value in [np.nan, np.inf, -np.inf]:
            args = [x.copy(), w1.copy(), w2.copy()]
            args[position].flat[3] = value
            with pytest.raises(ValueError, match=rf"\b{name}\b"):
                multiply(*args)
    with pytest.raises(TypeError, match="complex"):
        multiply(x.astype(complex), w1, w2)
    with pytest.raises(TypeError, match="complex"):
        multiply(x, w1.astype(complex), w2)
    with pytest.raises(TypeError, match="complex"):
        multiply(x, w1, w2.astype(complex))


def test_multiply_scalar_x_is_a_value_error(rng) -> None:
    """A 0-D x has no last axis: a ValueError naming x (API.md §1), not an IndexError."""
    w1, w2 = random_factors(rng, (1, 1, 1, 1, 1, 1))
    with pytest.raises(ValueError, match=r"\bx\b"):
        multiply(np.float64(1.0), w1, w2)


# --- the Monarch class --------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_class_matches_dense_reference(shape, rng) -> None:
    w1, w2 = random_factors(rng, shape)
    k, q, p, nl, s, r = shape
    m, n = nl * s, k * p
    M = Monarch(w1, w2)
    D = monarch_dense_reference(w1, w2)
    assert M.shape == (m, n)
    assert np.array_equal(M.w1, w1) and np.array_equal(M.w2, w2)
    dense = M.to_dense()
    assert type(dense) is np.ndarray and dense.shape == (m, n)
    np.testing.assert_allclose(dense, D, rtol=1e-12, atol=1e-12 * np.abs(D).max())

    v = rng.standard_normal(n)
    X = rng.standard_normal((n, 6))
    got_v, got_X = M @ v, M @ X
    assert got_v.shape == (m,) and got_X.shape == (m, 6)
    np.testing.assert_allclose(got_v, D @ v, rtol=1e-10, atol=1e-10 * np.abs(D).max())
    np.testing.assert_allclose(got_X, D @ X, rtol=1e-10, atol=1e-10 * np.abs(D).max())

    MT = M.T
    assert MT.shape == (n, m)
    assert MT.T.shape == (m, n)
    np.testing.assert_allclose(MT.T.to_dense(), D, rtol=1e-12, atol=1e-12 * np.abs(D).max())
    np.testing.assert_allclose(MT.to_dense(), D.T, rtol=1e-12, atol=1e-12 * np.abs(D).max())
    u = rng.standard_normal(m)
    Y = rng.standard_normal((m, 5))
    got_u, got_Y = MT @ u, MT @ Y
    assert got_u.shape == (n,) and got_Y.shape == (n, 5)
    np.testing.assert_allclose(got_u, D.T @ u, rtol=1e-10, atol=1e-10 * np.abs(D).max())
    np.testing.assert_allclose(got_Y, D.T @ Y, rtol=1e-10, atol=1e-10 * np.abs(D).max())


def test_class_float32(rng) -> None:
    w1, w2 = random_factors(rng, (3, 4, 5, 6, 7, 2))
    M = Monarch(w1.astype(np.float32), w2.astype(np.float32))
    D = monarch_dense_reference(w1.astype(np.float32), w2.astype(np.float32))
    X = rng.standard_normal((15, 3)).astype(np.float32)
    got = M @ X
    assert got.dtype == np.float32
    assert relative_error(got, D @ X, D @ X) <= RTOL32
    assert relative_error(M.to_dense(), D, D) <= RTOL32


def test_class_bad_input(rng) -> None:
    w1, w2 = random_factors(rng, (3, 4, 5, 6, 7, 2))
    with pytest.raises(ValueError):
        Monarch(w1, rng.standard_normal((5, 7, 2)))  # l r != k q
    with pytest.raises(ValueError):
        Monarch(w1[0], w2)
    M = Monarch(w1, w2)
    with pytest.raises(ValueError):
        M @ rng.standard_normal(14)
    with pytest.raises(ValueError):
        M @ rng.standard_normal((42, 2))  # m rows, not n
    with pytest.raises(ValueError):
        M.T @ rng.standard_normal((15, 2))
    # Non-finite inputs are found by the product itself (chunk by chunk),
    # and named as the argument.
    for value in [np.nan, np.inf, -np.inf]:
        X = rng.standard_normal((15, 3))
        X[7, 2] = value
        with pytest.raises(ValueError, match=r"\bX\b.*NaN or infinity"):
            M @ X
        Y = rng.standard_normal((42, 3))
        Y[5, 0] = value
        with pytest.raises(ValueError, match=r"\bX\b.*NaN or infinity"):
            M.T @ Y
        with pytest.raises(ValueError, match=r"\bX\b.*NaN or infinity"):
            X.T @ M.T


def test_class_rmatmul_with_an_ndarray(rng) -> None:
    """``X @ M`` with X a numpy array defers to Monarch (numpy does not try to convert M)."""
    w1, w2 = random_factors(rng, (3, 4, 5, 6, 7, 2))
    M = Monarch(w1, w2)
    D = monarch_dense_reference(w1, w2)
    X = rng.standard_normal((4, 42))
    np.testing.assert_allclose(X @ M, X @ D, rtol=1e-10, atol=1e-10 * np.abs(D).max())
    v = rng.standard_normal(42)
    np.testing.assert_allclose(v @ M, v @ D, rtol=1e-10, atol=1e-10 * np.abs(D).max())


@pytest.mark.parametrize("order", ["C", "F"])
def test_multiply_finds_a_non_finite_entry_in_any_chunk(order, rng) -> None:
    """The core checks x chunk by chunk (128 rows): an entry in the last chunk counts."""
    w1, w2 = random_factors(rng, (4, 4, 4, 4, 4, 4))
    x = np.array(rng.standard_normal((1000, 16)), order=order)
    x[-1, -1] = np.inf
    with pytest.raises(ValueError, match=r"\bx\b.*NaN or infinity"):
        multiply(x, w1, w2)
    x[-1, -1] = 0.0
    np.testing.assert_allclose(
        multiply(x, w1, w2), x @ monarch_dense_reference(w1, w2).T, rtol=1e-10, atol=1e-10
    )


# --- project ------------------------------------------------------------------------

# (m, n, nblocks): w1 (b, b, n/b), w2 (b, m/b, b).
PROJECT_CASES = [
    (16, 16, 4),
    (64, 64, 8),
    (18, 12, 3),  # m > n
    (12, 18, 3),  # m < n
    (30, 20, 5),
    (20, 30, 10),
    (48, 36, 6),
    (8, 8, 1),  # one block: the best rank-one approximation of M
    (8, 8, 2),
    (24, 8, 8),  # blocks of shape (3, 1): rank one, exact
    (8, 24, 8),  # blocks of shape (1, 3): rank one, exact
]
PROJECT_IDS = ["{}x{}-b{}".format(*case) for case in PROJECT_CASES]


@pytest.mark.parametrize(("m", "n", "b"), PROJECT_CASES, ids=PROJECT_IDS)
def test_project_matches_blockwise_svd(m, n, b, rng) -> None:
    M = rng.standard_normal((m, n))
    P = project(M, nblocks=b)
    assert isinstance(P, Monarch)
    assert P.shape == (m, n)
    assert P.w1.shape == (b, b, n // b) and P.w2.shape == (b, m // b, b)
    expected, left_out = block_truncation_reference(M, b)
    dense = P.to_dense()
    assert relative_error(dense, expected, M) <= 1e-10
    # Its factors define the matrix by the multiply convention.
    assert relative_error(monarch_dense_reference(P.w1, P.w2), expected, M) <= 1e-10
    # The Frobenius error is what the per-block truncations leave out: the optimum.
    error = np.linalg.norm(M - dense)
    assert error == pytest.approx(left_out, rel=1e-10, abs=1e-12 * np.linalg.norm(M))
    # The classmethod is the same function.
    Q = Monarch.project(M, nblocks=b)
    assert isinstance(Q, Monarch)
    assert relative_error(Q.to_dense(), expected, M) <= 1e-10


@pytest.mark.parametrize(("m", "n", "b"), PROJECT_CASES, ids=PROJECT_IDS)
def test_project_is_exact_on_monarch_matrices(m, n, b, rng) -> None:
    w1 = rng.standard_normal((b, b, n // b))
    w2 = rng.standard_normal((b, m // b, b))
    D = monarch_dense_reference(w1, w2)
    P = project(D, nblocks=b)
    assert relative_error(P.to_dense(), D, D) <= 1e-12
    assert relative_error(monarch_dense_reference(P.w1, P.w2), D, D) <= 1e-12


@pytest.mark.parametrize(
    ("m", "n", "expected_b"),
    [(16, 16, 4), (18, 12, 3), (64, 32, 4), (30, 20, 5), (7, 12, 1), (25, 25, 5), (36, 36, 6)],
)
def test_project_default_nblocks(m, n, expected_b, rng) -> None:
    """Default: the divisor of n nearest sqrt(n) that also divides m."""
    divisors = [d for d in range(1, n + 1) if n % d == 0 and m % d == 0]
    nearest = min(divisors, key=lambda d: abs(d - np.sqrt(n)))
    assert nearest == expected_b  # the cases have no ties
    M = rng.standard_normal((m, n))
    P = project(M)
    b = expected_b
    assert P.w1.shape == (b, b, n // b) and P.w2.shape == (b, m // b, b)
    expected, _ = block_truncation_reference(M, b)
    assert relative_error(P.to_dense(), expected, M) <= 1e-10
    assert relative_error(Monarch.project(M).to_dense(), expected, M) <= 1e-10


def test_project_structured_plus_noise(rng) -> None:
    """Monarch + small noise: the error is at the noise level, far below a random matrix's."""
    m = n = 64
    b = 8
    w1 = rng.standard_normal((b, b, n // b))
    w2 = rng.standard_normal((b, m // b, b))
    D = monarch_dense_reference(w1, w2)
    noise = 1e-3 * np.linalg.norm(D) / np.sqrt(m * n) * rng.standard_normal((m, n))
    P = project(D + noise, nblocks=b)
    expected, left_out = block_truncation_reference(D + noise, b)
    assert relative_error(P.to_dense(), expected, D) <= 1e-10
    # Optimal: no farther from D + noise than the Monarch matrix D is, so within 2 |noise| of D.
    dense = P.to_dense()
    assert np.linalg.norm(dense - (D + noise)) <= np.linalg.norm(noise) * (1 + 1e-12)
    assert np.linalg.norm(dense - D) <= 2 * np.linalg.norm(noise)
    # A random matrix is far from every Monarch matrix (most of each block's energy is
    # off its top singular pair); the noisy Monarch matrix is 100x closer.
    R = rng.standard_normal((m, n))
    random_error = np.linalg.norm(R - project(R, nblocks=b).to_dense()) / np.linalg.norm(R)
    assert random_error > 0.5
    assert left_out / np.linalg.norm(D) < 1e-2 * random_error


def test_project_zero_blocks(rng) -> None:
    m, n, b = 12, 12, 3
    M = rng.standard_normal((m, n))
    blocks = M.reshape(m // b, b, b, n // b)
    blocks[:, 1, 2, :] = 0.0  # block (l=1, k=2) is zero
    blocks[:, 0, :, :] = 0.0  # every block of l = 0
    M = blocks.reshape(m, n)
    expected, _ = block_truncation_reference(M, b)
    dense = project(M, nblocks=b).to_dense()
    assert np.isfinite(dense).all()
    assert relative_error(dense, expected, M) <= 1e-10
    zero = project(np.zeros((m, n)), nblocks=b).to_dense()
    assert np.array_equal(zero, np.zeros((m, n)))


@pytest.mark.parametrize("layout", list(DENSE_LAYOUTS))
def test_project_any_layout(layout, rng) -> None:
    M = rng.standard_normal((18, 12))
    expected, _ = block_truncation_reference(M, 3)
    view = dense_layouts(M)[layout]
    before = view.copy()
    assert relative_error(project(view, nblocks=3).to_dense(), expected, M) <= 1e-10
    assert np.array_equal(view, before)


def test_project_float32(rng) -> None:
    M = rng.standard_normal((30, 20)).astype(np.float32)
    P = project(M, nblocks=5)
    dense = P.to_dense()
    assert dense.dtype == np.float32
    expected, _ = block_truncation_reference(M, 5)
    assert relative_error(dense, expected, M) <= RTOL32


def test_project_integer_input(rng) -> None:
    M = rng.integers(-4, 5, size=(16, 16))
    expected, _ = block_truncation_reference(M, 4)
    dense = project(M, nblocks=4).to_dense()
    assert dense.dtype == np.float64
    assert relative_error(dense, expected, M.astype(np.float64)) <= 1e-10


def test_project_bad_input(rng) -> None:
    M = rng.standard_normal((18, 12))
    with pytest.raises(ValueError):
        project(M, nblocks=4)  # divides n, not m
    with pytest.raises(ValueError):
        project(M, nblocks=9)  # divides m, not n
    with pytest.raises(ValueError):
        project(M, nblocks=5)
    with pytest.raises(ValueError):
        project(M, nblocks=0)
    with pytest.raises(ValueError):
        project(M, nblocks=-3)
    with pytest.raises(ValueError):
        project(M[0])
    with pytest.raises(ValueError):
        project(M[None])
    bad = M.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        project(bad, nblocks=3)
    bad[2, 3] = np.inf
    with pytest.raises(ValueError):
        project(bad, nblocks=3)
    with pytest.raises(TypeError, match="complex"):
        project(M.astype(complex), nblocks=3)
    with pytest.raises(ValueError):
        Monarch.project(M, nblocks=4)


@pytest.mark.parametrize("threads", [1, 2])
def test_thread_count_does_not_change_results(threads, rng) -> None:
    w1, w2 = random_factors(rng, (8, 8, 16, 8, 16, 8))
    x = rng.standard_normal((300, 128))
    M = rng.standard_normal((64, 96))
    expected, _ = block_truncation_reference(M, 8)
    with rl.num_threads(threads):
        assert_monarch_close(multiply(x, w1, w2), x, w1, w2, RTOL64)
        assert relative_error(project(M, nblocks=8).to_dense(), expected, M) <= 1e-10


# --- heavier cases ------------------------------------------------------------------


@pytest.mark.slow
def test_multiply_large_batched(rng) -> None:
    b = 32
    n = m = b * b
    w1 = rng.standard_normal((b, b, n // b))
    w2 = rng.standard_normal((b, m // b, b))
    x = rng.standard_normal((4, 1024, n))
    y = multiply(x, w1, w2)
    assert_monarch_close(y, x, w1, w2, RTOL64)
    y32 = multiply(*(a.astype(np.float32) for a in (x, w1, w2)))
    assert y32.dtype == np.float32
    assert_monarch_close(y32, *(a.astype(np.float32) for a in (x, w1, w2)), RTOL32)


@pytest.mark.slow
@pytest.mark.parametrize(("m", "n", "b"), [(1024, 1024, 32), (2048, 512, 16)])
def test_project_large(m, n, b, rng) -> None:
    M = rng.standard_normal((m, n))
    expected, left_out = block_truncation_reference(M, b)
    dense = project(M, nblocks=b).to_dense()
    assert relative_error(dense, expected, M) <= 1e-10
    assert np.linalg.norm(M - dense) == pytest.approx(left_out, rel=1e-10)
