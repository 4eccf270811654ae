"""API.md §1: conventions that hold everywhere.

Exceptions, the ``rng`` argument, thread control, introspection, and the
counter-based generator every random value comes from: Philox4x32-10 known
answers, bit-for-bit agreement with the independent implementation in
``randomgen``, and statistical tests of the distributions built on it.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import warnings

import numpy as np
import pytest
import randla as rl
import randomgen
import scipy.stats
from conftest import OPERATOR_CASES, OPERATOR_IDS, run_python
from randla import _core

# --- errors and warnings -------------------------------------------------------


def test_exception_hierarchy():
    assert issubclass(rl.LinAlgError, np.linalg.LinAlgError)
    assert issubclass(rl.ConvergenceWarning, UserWarning)
    assert issubclass(rl.RandlaInternalError, RuntimeError)
    # Distinct classes, not aliases of the bases.
    assert rl.LinAlgError is not np.linalg.LinAlgError
    assert rl.ConvergenceWarning is not UserWarning
    assert rl.RandlaInternalError is not RuntimeError
    for name in ("LinAlgError", "ConvergenceWarning", "RandlaInternalError"):
        assert name in rl.__all__


def test_exceptions_are_caught_by_their_bases():
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        raise rl.LinAlgError("not positive definite")
    with pytest.raises(RuntimeError):
        raise rl.RandlaInternalError("bug")
    with pytest.warns(UserWarning, match="maxiter"):
        warnings.warn("stopped at maxiter", rl.ConvergenceWarning, stacklevel=1)


def test_rust_panic_surfaces_as_internal_error_and_the_library_keeps_working():
    # The panic happens inside the kernel boundary (GIL released), as a real bug would.
    with pytest.raises(rl.RandlaInternalError, match="deliberate panic"):
        _core._panic_for_tests()
    S = rl.sketch.gaussian(3, 10, rng=0)
    assert np.allclose(S @ np.eye(10), S.to_dense())


# --- the rng argument ------------------------------------------------------------


def _dense(rng, case=OPERATOR_CASES[0], k=4, n=9):
    return case.build(k, n, rng=rng).to_dense()


def test_rng_none_draws_fresh_keys():
    first = rl.sketch.gaussian(4, 9, rng=None)
    second = rl.sketch.gaussian(4, 9)  # None is the default
    assert first.key != second.key
    assert not np.array_equal(first.to_dense(), second.to_dense())


@pytest.mark.parametrize("case", OPERATOR_CASES, ids=OPERATOR_IDS)
def test_int_seed_and_seed_sequence_give_identical_operators(case):
    by_int = case.build(6, 20, rng=12345)
    by_sequence = case.build(6, 20, rng=np.random.SeedSequence(12345))
    by_numpy_int = case.build(6, 20, rng=np.int64(12345))
    assert by_int.key == by_sequence.key == by_numpy_int.key
    assert np.array_equal(by_int.to_dense(), by_sequence.to_dense())
    assert np.array_equal(by_int.to_dense(), by_numpy_int.to_dense())
    assert not np.array_equal(by_int.to_dense(), case.build(6, 20, rng=12346).to_dense())


def test_generator_gives_one_key_and_advances():
    generator = np.random.default_rng(7)
    first = _dense(generator)
    second = _dense(generator)
    # The generator advanced: the next operator differs.
    assert not np.array_equal(first, second)
    # Exactly one 64-bit draw per call.
    reference = np.random.default_rng(7)
    reference.bit_generator.random_raw(2)
    assert generator.bit_generator.state == reference.bit_generator.state
    # Reproducible from the generator's seed.
    replay = np.random.default_rng(7)
    assert np.array_equal(_dense(replay), first)
    assert np.array_equal(_dense(replay), second)


@pytest.mark.parametrize("bad", ["5", 1.5, [1, 2], np.random.RandomState(0), object()], ids=repr)
def test_rng_of_a_wrong_type_raises_type_error(bad):
    with pytest.raises(TypeError, match="rng"):
        rl.sketch.gaussian(3, 5, rng=bad)


@pytest.mark.parametrize("bad", [-1, np.int64(-5), -(2**70)], ids=repr)
def test_negative_seed_raises_value_error(bad):
    with pytest.raises(ValueError, match="seed"):
        rl.sketch.countsketch(3, 5, rng=bad)


# --- threads ---------------------------------------------------------------------


def test_set_and_get_num_threads():
    rl.set_num_threads(1)
    assert rl.get_num_threads() == 1
    rl.set_num_threads(2)
    assert rl.get_num_threads() == 2
    rl.set_num_threads(np.int64(1))
    assert rl.get_num_threads() == 1
    assert isinstance(rl.get_num_threads(), int)


def test_num_threads_context_manager_restores_on_exit():
    rl.set_num_threads(2)
    with rl.num_threads(1):
        assert rl.get_num_threads() == 1
        with rl.num_threads(3):
            assert rl.get_num_threads() == 3
        assert rl.get_num_threads() == 1
    assert rl.get_num_threads() == 2


def test_num_threads_context_manager_restores_on_exception():
    rl.set_num_threads(2)
    with pytest.raises(KeyError):
        with rl.num_threads(1):
            assert rl.get_num_threads() == 1
            raise KeyError("boom")
    assert rl.get_num_threads() == 2


@pytest.mark.parametrize(
    ("bad", "error"),
    [(0, ValueError), (-2, ValueError), (1.5, TypeError), ("2", TypeError), (None, TypeError)],
    ids=repr,
)
def test_bad_thread_counts_raise(bad, error):
    rl.set_num_threads(2)
    with pytest.raises(error):
        rl.set_num_threads(bad)
    with pytest.raises(error):
        with rl.num_threads(bad):
            pass  # pragma: no cover
    assert rl.get_num_threads() == 2


_REPORT_THREADS = """
import json, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import randla
print(json.dumps({
    "threads": randla.get_num_threads(),
    "warnings": [(w.category.__name__, str(w.message)) for w in caught],
}))
"""


def _threads_at_import(value):
    out = run_python(_REPORT_THREADS, env={"RANDLA_NUM_THREADS": value})
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_environment_variable_sets_threads_at_import():
    default = _threads_at_import(None)
    assert default["threads"] >= 1 and default["warnings"] == []
    assert _threads_at_import("1") == {"threads": 1, "warnings": []}
    assert _threads_at_import("3") == {"threads": 3, "warnings": []}


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5"])
def test_invalid_environment_variable_warns_and_keeps_the_default(value):
    default = _threads_at_import(None)["threads"]
    report = _threads_at_import(value)
    assert report["threads"] == default
    assert any(
        category == "RuntimeWarning" and "RANDLA_NUM_THREADS" in message and value in message
        for category, message in report["warnings"]
    ), report["warnings"]


# --- introspection ---------------------------------------------------------------


def test_version():
    assert isinstance(rl.__version__, str)
    assert re.fullmatch(r"\d+\.\d+\.\d+([.+-]?\w[\w.+-]*)?", rl.__version__)
    assert rl.__version__ == importlib.metadata.version("randla")


def test_show_config_prints_version_simd_and_threads(capsys):
    with rl.num_threads(1):
        rl.show_config()
    text = capsys.readouterr().out
    assert f"randla {rl.__version__}" in text
    simd = re.search(r"SIMD level:\s*(\S.*)", text)
    assert simd is not None and simd.group(1).strip()
    threads = re.search(r"threads:\s*(\d+)", text)
    assert threads is not None and int(threads.group(1)) == 1
    assert re.search(r"backends:.*\bcpu\b", text)

    with rl.num_threads(2):
        rl.show_config()
    threads = re.search(r"threads:\s*(\d+)", capsys.readouterr().out)
    assert threads is not None and int(threads.group(1)) == 2


def test_backends_lists_cpu():
    assert "cpu" in rl.backends()


# --- Philox4x32-10 ---------------------------------------------------------------

# Random123's known-answer vectors: (counter, key) -> output.
PHILOX_KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    (
        (0xFFFFFFFF,) * 4,
        (0xFFFFFFFF, 0xFFFFFFFF),
        (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD),
    ),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


def _words_to_int(words):
    """32-bit words, least significant first, as one integer."""
    return sum(int(w) << (32 * i) for i, w in enumerate(words))


def randomgen_blocks(counter: int, key: int, count: int) -> np.ndarray:
    """Philox4x32-10 blocks at counters ``counter, counter + 1, ...`` from randomgen.

    randomgen's ``counter`` is the 128-bit integer whose 32-bit word ``i`` (least
    significant first) is counter word ``i``; ``key`` likewise for the two key
    words. It increments the counter *before* producing a block, so it is set to
    ``counter - 1``. ``random_raw`` returns the four 32-bit words of each block
    in order (one per call, in uint64 containers).
    """
    generator = randomgen.Philox(number=4, width=32, key=key, counter=(counter - 1) % 2**128)
    raw = generator.random_raw(4 * count)
    assert raw.max(initial=0) < 2**32
    return raw.astype(np.uint32).reshape(count, 4)


@pytest.mark.parametrize(("counter", "key", "expected"), PHILOX_KNOWN_ANSWERS)
def test_philox_known_answers(counter, key, expected):
    assert list(_core.philox4x32_10_block(list(counter), list(key))) == list(expected)


@pytest.mark.parametrize(("counter", "key", "expected"), PHILOX_KNOWN_ANSWERS)
def test_randomgen_mapping_reproduces_the_known_answers(counter, key, expected):
    # Guards the mapping of randomgen_blocks used below.
    block = randomgen_blocks(_words_to_int(counter), _words_to_int(key), 1)[0]
    assert block.tolist() == list(expected)


def test_randomgen_increments_its_counter_before_each_block():
    generator = randomgen.Philox(number=4, width=32, key=0, counter=0)
    first = generator.random_raw(4).astype(np.uint32)
    assert first.tolist() == _core.philox4x32_10_block([1, 0, 0, 0], [0, 0])
    assert first.tolist() != _core.philox4x32_10_block([0, 0, 0, 0], [0, 0])
    assert generator.state["state"]["counter"].tolist() == [1, 0, 0, 0]


def test_philox_block_matches_randomgen_on_random_inputs():
    draws = np.random.default_rng(3).integers(0, 2**32, size=(300, 6), dtype=np.uint64)
    for row in draws.tolist():
        counter, key = row[:4], row[4:]
        ours = _core.philox4x32_10_block(counter, key)
        theirs = randomgen_blocks(_words_to_int(counter), _words_to_int(key), 1)[0]
        assert list(ours) == theirs.tolist(), (counter, key)


# (seed, tag, start): counters cross the 32-bit word boundary, the largest tag,
# a start near the end of the 64-bit position space.
STREAMS = [
    (0, 0, 0),
    (1, 0, 0),
    (0x0123456789ABCDEF, 1, 2**32 - 1000),
    (2**64 - 1, 3, 12345),
    (0xDEADBEEF00000000, 2, 2**63 + 17),
    (42, 2**32 - 1, 2**64 - 5000),
]


@pytest.mark.parametrize(("seed", "tag", "start"), STREAMS)
def test_philox_blocks_match_randomgen(seed, tag, start):
    count = 4000
    ours = _core.philox_blocks(seed, tag, start, count)
    assert ours.dtype == np.uint32 and ours.shape == (count, 4)
    # Stream (seed, tag), block i: counter (i low, i high, lane 0, tag), key (seed low, seed high).
    theirs = randomgen_blocks(start + (tag << 96), seed, count)
    assert np.array_equal(ours, theirs)


@pytest.mark.parametrize(("seed", "tag", "start"), STREAMS)
def test_philox_blocks_layout(seed, tag, start):
    blocks = _core.philox_blocks(seed, tag, start, 3)
    for i, block in enumerate(blocks.tolist()):
        index = start + i
        counter = [index % 2**32, index >> 32, 0, tag]
        key = [seed % 2**32, seed >> 32]
        assert block == list(_core.philox4x32_10_block(counter, key))


def test_philox_blocks_are_pure_functions_of_position():
    whole = _core.philox_blocks(9, 1, 0, 300)
    assert np.array_equal(_core.philox_blocks(9, 1, 123, 77), whole[123:200])
    assert not np.array_equal(_core.philox_blocks(9, 2, 0, 300), whole)
    assert not np.array_equal(_core.philox_blocks(10, 1, 0, 300), whole)


# --- distributions -----------------------------------------------------------------

N_DRAWS = 2**18


def normal_sample_defects(x: np.ndarray) -> list[str]:
    """The checks a standard normal sample of this size fails (bounds: ~5 standard errors)."""
    n = x.size
    defects = []
    if abs(x.mean()) > 5 / np.sqrt(n):
        defects.append("mean")
    if abs(x.var() - 1) > 5 * np.sqrt(2 / n):
        defects.append("variance")
    if abs(np.mean(x**4) - 3) > 5 * np.sqrt(96 / n):
        defects.append("kurtosis")
    tail = np.mean(np.abs(x) > 1.959964)
    if abs(tail - 0.05) > 5 * np.sqrt(0.05 * 0.95 / n):
        defects.append("tail")
    if np.abs(x).max() < 4:
        defects.append("no extreme values")
    # Box-Muller pairs: the two normals of a block must be uncorrelated.
    if abs(np.corrcoef(x[0::2], x[1::2])[0, 1]) > 5 / np.sqrt(n / 2):
        defects.append("pair correlation")
    if scipy.stats.kstest(x, "norm").pvalue < 1e-3:
        defects.append("Kolmogorov-Smirnov")
    return defects


def uniform_sample_defects(u: np.ndarray) -> list[str]:
    n = u.size
    defects = []
    if not (u.min() > 0.0 and u.max() < 1.0):
        defects.append("outside (0, 1)")
    if abs(u.mean() - 0.5) > 5 * np.sqrt(1 / 12 / n):
        defects.append("mean")
    if abs(u.var() - 1 / 12) > 5 * np.sqrt(1 / 180 / n):
        defects.append("variance")
    if abs(np.corrcoef(u[:-1], u[1:])[0, 1]) > 5 / np.sqrt(n):
        defects.append("serial correlation")
    if scipy.stats.kstest(u, "uniform").pvalue < 1e-3:
        defects.append("Kolmogorov-Smirnov")
    return defects


def sign_sample_defects(s: np.ndarray) -> list[str]:
    n = s.size
    defects = []
    if not np.all(np.abs(s) == 1.0):
        defects.append("values")
    if abs(s.mean()) > 5 / np.sqrt(n):
        defects.append("balance")
    if abs(np.mean(s[:-1] * s[1:])) > 5 / np.sqrt(n):
        defects.append("serial correlation")
    # Balance within each of the 128 bit positions of a block.
    per_bit = s[: n - n % 128].reshape(-1, 128).mean(axis=0)
    if np.abs(per_bit).max() > 5 / np.sqrt(n / 128):
        defects.append("bit position balance")
    return defects


@pytest.mark.parametrize("seed", [0, 2**64 - 1])
@pytest.mark.parametrize("tag", [0, 3])
def test_normal_draws_are_standard_normal(seed, tag):
    x = _core.random_draws("normal", seed, tag, 1000, N_DRAWS)
    assert x.dtype == np.float64 and x.shape == (N_DRAWS,)
    assert normal_sample_defects(x) == []


def test_normal_checks_reject_wrong_samplers():
    generator = np.random.default_rng(0)
    z = generator.standard_normal(N_DRAWS)
    assert normal_sample_defects(z) == []  # the checks pass an exact sampler
    assert "variance" in normal_sample_defects(1.03 * z)
    assert "mean" in normal_sample_defects(z + 0.015)
    uniform_like = (generator.random(N_DRAWS) - 0.5) * np.sqrt(12)
    assert "kurtosis" in normal_sample_defects(uniform_like)
    heavy = generator.standard_t(20, N_DRAWS) / np.sqrt(20 / 18)
    assert "kurtosis" in normal_sample_defects(heavy)
    # Box-Muller with a shared angle: cos and sin of the same radius, same sign pattern.
    paired = np.repeat(z[::2], 2)
    assert "pair correlation" in normal_sample_defects(paired)


def test_normal_draws_are_pure_functions_of_position():
    whole = _core.random_draws("normal", 5, 0, 0, 1000)
    for start in (1, 2, 127, 128, 129, 301):
        part = _core.random_draws("normal", 5, 0, start, 1000 - start)
        assert np.array_equal(part, whole[start:]), start
    assert not np.array_equal(_core.random_draws("normal", 5, 1, 0, 1000), whole)


def test_uniform_draws_are_uniform_and_come_from_the_blocks():
    u = _core.random_draws("uniform", 11, 2, 0, N_DRAWS)
    assert uniform_sample_defects(u) == []
    # Position p: block p // 2, words (2h, 2h + 1) with h = p % 2: the top 52 bits of
    # the 64-bit pair, centered, (m + 1/2) 2^-52: never 0 or 1.
    words = _core.philox_blocks(11, 2, 0, 50).reshape(-1, 2).astype(np.uint64)
    bits = ((words[:, 0] << np.uint64(32)) | words[:, 1]) >> np.uint64(12)
    expected = (bits.astype(np.float64) + 0.5) * 2.0**-52
    assert np.array_equal(u[:100], expected)


def test_uniform_checks_reject_wrong_samplers():
    generator = np.random.default_rng(1)
    u = generator.random(N_DRAWS)
    assert uniform_sample_defects(u) == []
    assert uniform_sample_defects(u**1.02) != []
    assert "outside (0, 1)" in uniform_sample_defects(np.floor(u * 2**8) / 2**8)
    assert "serial correlation" in uniform_sample_defects(np.repeat(u[::2], 2))


def test_sign_draws_are_balanced_and_come_from_the_bits():
    s = _core.random_draws("sign", 3, 1, 0, N_DRAWS)
    assert sign_sample_defects(s) == []
    # Position p: bit p % 32 (least significant first) of word (p % 128) // 32 of block p // 128.
    words = _core.philox_blocks(3, 1, 0, 8).ravel()
    bits = (words[:, None] >> np.arange(32, dtype=np.uint32)) & 1
    assert np.array_equal(s[: 8 * 128], np.where(bits.ravel() == 1, 1.0, -1.0))


def test_sign_checks_reject_wrong_samplers():
    generator = np.random.default_rng(2)
    s = np.where(generator.random(N_DRAWS) < 0.5, 1.0, -1.0)
    assert sign_sample_defects(s) == []
    assert "balance" in sign_sample_defects(np.where(generator.random(N_DRAWS) < 0.51, 1.0, -1.0))
    stuck = s.copy()
    stuck[5::128] = 1.0  # one stuck bit of every block
    assert "bit position balance" in sign_sample_defects(stuck)


def test_u32_draws_are_the_block_words():
    draws = _core.random_draws("u32", 77, 0, 6, 40)
    words = _core.philox_blocks(77, 0, 0, 12).ravel()
    assert np.array_equal(draws, words[6:46].astype(np.float64))


def test_unknown_distribution_raises():
    with pytest.raises(ValueError, match="distribution"):
        _core.random_draws("cauchy", 0, 0, 0, 10)


# --- finite checks ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_finite_check_catches_each_non_finite_value_and_allows_overflowing_sums(dtype):
    import scipy.sparse as sp
    from randla._validation import as_dense, as_sparse

    big = np.full((50, 4), np.finfo(dtype).max / 2, dtype=dtype)
    assert as_dense(big, "A") is not None  # the sum overflows; every entry is finite
    assert as_sparse(sp.csr_matrix(big), "A") is not None
    for value in (np.nan, np.inf, -np.inf):
        for where in ((0, 0), (49, 3), (17, 2)):
            bad = big.copy()
            bad[where] = value
            with pytest.raises(ValueError, match="NaN or infinity"):
                as_dense(bad, "A")
            with pytest.raises(ValueError, match="NaN or infinity"):
                as_sparse(sp.csr_matrix(bad), "A")
    # +inf and -inf together sum to NaN, and a lone NaN among huge values.
    mixed = np.zeros((3, 3), dtype=dtype)
    mixed[0, 0], mixed[2, 2] = np.inf, -np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        as_dense(mixed, "A")


# --- the documented entry conventions of the dense operators -------------------------


@pytest.mark.parametrize(("kind", "distribution"), [("gaussian", "normal"), ("rademacher", "sign")])
def test_dense_operator_entries_are_positions_of_the_entry_stream(kind, distribution):
    k, n = 7, 53
    S = getattr(rl.sketch, kind)(k, n, rng=2024)
    # Entry (i, j): the draw at position i * n + j of the stream (key, tag 0), times 1/sqrt(k).
    draws = _core.random_draws(distribution, S.key, 0, 0, k * n).reshape(k, n)
    assert np.array_equal(S.to_dense(), (1.0 / np.sqrt(k)) * draws)
