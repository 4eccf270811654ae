//! Borrowed views of compressed sparse matrices (scipy's CSR and CSC arrays,
//! used as they are: int32 or int64 indices, unsorted or duplicate entries
//! allowed, explicit zeros kept).

use crate::ensure;
use crate::error::Result;

/// Index types scipy uses for `indptr` and `indices`.
pub trait Index: Copy + Send + Sync + 'static {
    fn to_usize(self) -> usize;
    /// `None` for negative values.
    fn checked(self) -> Option<usize>;
}

impl Index for i32 {
    #[inline(always)]
    fn to_usize(self) -> usize {
        self as usize
    }
    fn checked(self) -> Option<usize> {
        usize::try_from(self).ok()
    }
}

impl Index for i64 {
    #[inline(always)]
    fn to_usize(self) -> usize {
        self as usize
    }
    fn checked(self) -> Option<usize> {
        usize::try_from(self).ok()
    }
}

impl Index for usize {
    #[inline(always)]
    fn to_usize(self) -> usize {
        self
    }
    fn checked(self) -> Option<usize> {
        Some(self)
    }
}

/// A compressed matrix stored along its major axis: row `i` of a CSR matrix,
/// or column `j` of a CSC matrix, is `indices[indptr[i]..indptr[i + 1]]`.
#[derive(Clone, Copy, Debug)]
pub struct Compressed<'a, T, I> {
    major: usize,
    minor: usize,
    indptr: &'a [I],
    indices: &'a [I],
    data: &'a [T],
}

impl<'a, T, I: Index> Compressed<'a, T, I> {
    /// Checks the structure once (O(nnz)) so the kernels can index without checks.
    pub fn new(
        major: usize,
        minor: usize,
        indptr: &'a [I],
        indices: &'a [I],
        data: &'a [T],
    ) -> Result<Self> {
        ensure!(
            indptr.len() == major + 1,
            "sparse indptr has length {}, expected {}",
            indptr.len(),
            major + 1
        );
        ensure!(
            indices.len() == data.len(),
            "sparse indices and data have different lengths ({} and {})",
            indices.len(),
            data.len()
        );
        let mut prev = 0usize;
        for (i, p) in indptr.iter().enumerate() {
            let p = p.checked();
            ensure!(
                matches!(p, Some(v) if v >= prev && v <= indices.len()) && (i > 0 || p == Some(0)),
                "sparse indptr is not a valid nondecreasing pointer array"
            );
            prev = p.unwrap_or(0);
        }
        ensure!(
            prev == indices.len(),
            "sparse indptr ends at {prev} but there are {} stored entries",
            indices.len()
        );
        ensure!(
            indices
                .iter()
                .all(|&j| matches!(j.checked(), Some(v) if v < minor)),
            "sparse indices out of range for a dimension of size {minor}"
        );
        Ok(Self {
            major,
            minor,
            indptr,
            indices,
            data,
        })
    }

    pub fn major(&self) -> usize {
        self.major
    }

    pub fn minor(&self) -> usize {
        self.minor
    }

    pub fn nnz(&self) -> usize {
        self.data.len()
    }

    /// Hints the CPU to fetch the bounds of line `i` (`indptr[i..=i + 1]`).
    #[inline(always)]
    pub fn prefetch_bounds(&self, i: usize) {
        crate::simd::prefetch(self.indptr.as_ptr().wrapping_add(i));
    }

    /// Hints the CPU to fetch the first entries of line `i`; reads `indptr[i]`,
    /// so call [`Self::prefetch_bounds`] for it a little earlier.
    #[inline(always)]
    pub fn prefetch_line(&self, i: usize) {
        let start = self.indptr[i].to_usize();
        crate::simd::prefetch(self.indices.as_ptr().wrapping_add(start));
        crate::simd::prefetch(self.data.as_ptr().wrapping_add(start));
    }

    /// The raw arrays `(indptr, indices, data)`, checked at construction:
    /// `indptr` nondecreasing from 0 to `nnz`, every index `< minor`.
    #[inline(always)]
    pub fn arrays(&self) -> (&'a [I], &'a [I], &'a [T]) {
        (self.indptr, self.indices, self.data)
    }

    /// The stored minor indices and values of major line `i`, as slices.
    #[inline(always)]
    pub fn line_slices(&self, i: usize) -> (&'a [I], &'a [T]) {
        let (a, b) = (self.indptr[i].to_usize(), self.indptr[i + 1].to_usize());
        (&self.indices[a..b], &self.data[a..b])
    }

    /// The stored (minor index, value) pairs of major line `i`.
    #[inline(always)]
    pub fn line(&self, i: usize) -> impl Iterator<Item = (usize, T)> + 'a
    where
        T: Copy,
    {
        let (a, b) = (self.indptr[i].to_usize(), self.indptr[i + 1].to_usize());
        self.indices[a..b]
            .iter()
            .zip(&self.data[a..b])
            .map(|(&j, &v)| (j.to_usize(), v))
    }
}

impl<'a, T: Copy, I: Index> Compressed<'a, T, I> {
    /// The same matrix compressed along the other axis (CSR <-> CSC), in
    /// O(nnz + major + minor); entries of each line stay in increasing order
    /// of their original major index.
    pub fn to_other_major(&self) -> CompressedOwned<T> {
        let mut indptr = vec![0usize; self.minor + 1];
        for &j in self.indices {
            indptr[j.to_usize() + 1] += 1;
        }
        for j in 0..self.minor {
            indptr[j + 1] += indptr[j];
        }
        let mut next = indptr.clone();
        let nnz = self.nnz();
        let mut indices = vec![0usize; nnz];
        // Every slot is overwritten below; the first entry is only a filler.
        let mut data: Vec<T> = match self.data.first() {
            Some(&v) => vec![v; nnz],
            None => Vec::new(),
        };
        for i in 0..self.major {
            for (j, v) in self.line(i) {
                let slot = next[j];
                indices[slot] = i;
                data[slot] = v;
                next[j] += 1;
            }
        }
        CompressedOwned {
            major: self.minor,
            minor: self.major,
            indptr,
            indices,
            data,
        }
    }
}

/// An owned compressed matrix (see [`Compressed`]).
#[derive(Clone, Debug)]
pub struct CompressedOwned<T> {
    pub major: usize,
    pub minor: usize,
    pub indptr: Vec<usize>,
    pub indices: Vec<usize>,
    pub data: Vec<T>,
}

impl<T> CompressedOwned<T> {
    pub fn view(&self) -> Compressed<'_, T, usize> {
        Compressed {
            major: self.major,
            minor: self.minor,
            indptr: &self.indptr,
            indices: &self.indices,
            data: &self.data,
        }
    }
}

/// A matrix stored by diagonals (scipy's DIA layout, row-aligned): entry
/// `(i, i + offsets[d])` is `values[d * nrows + i]`, zero where the matrix has
/// no entry. Banded matrices with few diagonals (finite-difference stencils)
/// multiply far faster this way than from CSR: each diagonal is a contiguous
/// stream that vectorizes, with no index to read per entry. Double precision
/// values that are all exact in single precision (the small integers and
/// binary fractions of most stencils) are kept as f32, which halves the bytes
/// a product reads and changes no result.
#[derive(Clone, Debug)]
pub struct Diagonals<T> {
    nrows: usize,
    ncols: usize,
    offsets: Vec<isize>,
    /// The values, unless `narrow` holds them.
    values: Vec<T>,
    narrow: Option<Vec<f32>>,
}

/// The most diagonals [`Diagonals::from_rows`] accepts.
pub const MAX_DIAGONALS: usize = 32;

impl<T: crate::Real> Diagonals<T> {
    /// The diagonal form of `rows` (a CSR matrix) when it pays: at most
    /// [`MAX_DIAGONALS`] distinct diagonals holding stored entries, at most
    /// half again as many slots as stored entries, and every row's indices
    /// strictly increasing (sorted, no duplicates), so a row's products are
    /// added in the same order as from `rows`. `None` otherwise; the scan
    /// stops at the first row that rules it out.
    pub fn from_rows<I: Index>(rows: &Compressed<'_, T, I>) -> Option<Self> {
        let (nrows, ncols) = (rows.major(), rows.minor());
        let nnz = rows.nnz();
        if nnz == 0 || nrows == 0 {
            return None;
        }
        let mut offsets: Vec<isize> = Vec::new();
        for i in 0..nrows {
            let (idx, _) = rows.line_slices(i);
            let mut prev: Option<usize> = None;
            for &j in idx {
                let j = j.to_usize();
                if prev.is_some_and(|p| j <= p) {
                    return None;
                }
                prev = Some(j);
                let off = j as isize - i as isize;
                if let Err(pos) = offsets.binary_search(&off) {
                    if offsets.len() == MAX_DIAGONALS {
                        return None;
                    }
                    offsets.insert(pos, off);
                }
            }
        }
        // Slots of each diagonal that lie inside the matrix.
        let slots: usize = offsets
            .iter()
            .map(|&o| Self::row_range(nrows, ncols, o).len())
            .sum();
        if 2 * slots > 3 * nnz {
            return None;
        }
        let mut values = vec![T::default(); offsets.len() * nrows];
        for i in 0..nrows {
            let (idx, vals) = rows.line_slices(i);
            let mut d = 0;
            for (&j, &v) in idx.iter().zip(vals) {
                let off = j.to_usize() as isize - i as isize;
                while offsets[d] != off {
                    d += 1; // a row's offsets increase with its indices
                }
                values[d * nrows + i] = v;
            }
        }
        let exact_in_f32 = |v: &T| (v.to_f64() as f32) as f64 == v.to_f64();
        let narrow = (std::mem::size_of::<T>() > 4 && values.iter().all(exact_in_f32)).then(|| {
            values
                .iter()
                .map(|v| v.to_f64() as f32)
                .collect::<Vec<f32>>()
        });
        if narrow.is_some() {
            values = Vec::new();
        }
        Some(Self {
            nrows,
            ncols,
            offsets,
            values,
            narrow,
        })
    }
}

impl<T> Diagonals<T> {
    /// The rows `i` for which `i + offset` is a column.
    pub fn row_range(nrows: usize, ncols: usize, offset: isize) -> std::ops::Range<usize> {
        let lo = (-offset).max(0) as usize;
        let hi = (ncols as isize - offset).clamp(0, nrows as isize) as usize;
        lo.min(hi)..hi
    }

    pub fn nrows(&self) -> usize {
        self.nrows
    }

    pub fn ncols(&self) -> usize {
        self.ncols
    }

    /// The diagonal offsets (column minus row), increasing.
    pub fn offsets(&self) -> &[isize] {
        &self.offsets
    }

    /// Diagonal `d` over all rows (zero outside [`Self::row_range`]), when
    /// the values are kept at full width.
    #[inline(always)]
    pub fn diagonal(&self, d: usize) -> &[T] {
        &self.values[d * self.nrows..(d + 1) * self.nrows]
    }

    /// Diagonal `d` as f32, when the values are kept narrow (see the type).
    #[inline(always)]
    pub fn narrow_diagonal(&self, d: usize) -> Option<&[f32]> {
        let n = self.nrows;
        self.narrow.as_ref().map(|v| &v[d * n..(d + 1) * n])
    }

    /// Whether the values are kept as f32.
    pub fn is_narrow(&self) -> bool {
        self.narrow.is_some()
    }

    /// The rows for which every diagonal stays inside the matrix: there a
    /// row's products need no bounds test.
    pub fn interior(&self) -> std::ops::Range<usize> {
        let (first, last) = (self.offsets[0], self.offsets[self.offsets.len() - 1]);
        let lo = Self::row_range(self.nrows, self.ncols, first).start;
        let hi = Self::row_range(self.nrows, self.ncols, last).end;
        lo.min(hi)..hi
    }
}

/// Lanes of a [`Sliced`] chunk: rows multiplied side by side.
pub const SLICE_LANES: usize = 8;

/// A matrix in sliced ELLPACK form (SELL-C-σ, C = [`SLICE_LANES`], σ the
/// window): the rows of each window of `window` rows are sorted by decreasing
/// length, and each run of eight nonempty rows is a chunk stored slot by slot
/// (slot `s` of all eight rows, then slot `s + 1`). A chunk has as many slots
/// as its longest row; a shorter row's extra slots hold zero at the row's
/// last column. Rows of varying short lengths then run with no branch per
/// row: from CSR, the exit of each row's loop is mispredicted about once per
/// row, which costs more than the arithmetic of a short row.
#[derive(Clone, Debug)]
pub struct Sliced<T> {
    nrows: usize,
    ncols: usize,
    window: usize,
    /// The row of each lane, chunk after chunk; `u32::MAX` for a lane past
    /// the last nonempty row of its window.
    lanes: Vec<u32>,
    /// Where chunk `c`'s slots start in `indices` / `values` (in entries;
    /// one more than the chunks).
    starts: Vec<usize>,
    /// The first chunk of each window (one more than the windows).
    window_chunks: Vec<usize>,
    /// The empty rows (their products are zero), window after window.
    empty: Vec<u32>,
    /// Where each window's empty rows start in `empty` (one more than the windows).
    window_empty: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<T>,
}

impl<T: Copy + Default + Send + Sync> Sliced<T> {
    /// The sliced form of `rows` (a CSR matrix), or `None` when it would not
    /// pay (rows longer than 32 entries on average, where the row loop is
    /// cheap anyway) or does not fit (`u32` indices). Rows keep the order of
    /// their entries, so each row's products are added as from `rows`.
    pub fn from_rows<I: Index>(rows: &Compressed<'_, T, I>, window: usize) -> Option<Self> {
        use rayon::prelude::*;
        let (nrows, ncols, nnz) = (rows.major(), rows.minor(), rows.nnz());
        if nrows == 0
            || nnz > 32 * nrows
            || nrows >= u32::MAX as usize
            || ncols >= u32::MAX as usize
        {
            return None;
        }
        let window = window.max(SLICE_LANES).next_multiple_of(SLICE_LANES);
        let (indptr, indices, values) = rows.arrays();
        let len = |r: usize| indptr[r + 1].to_usize() - indptr[r].to_usize();
        // Per window: its rows by decreasing length (ties by row), the
        // nonempty ones in chunks, and each chunk's slot count.
        let windows: Vec<(Vec<u32>, Vec<u32>, Vec<usize>)> = (0..nrows.div_ceil(window))
            .into_par_iter()
            .map(|w| {
                let range = w * window..((w + 1) * window).min(nrows);
                let mut order = by_decreasing_length(range, &len);
                let nonempty = order.iter().take_while(|&&r| len(r as usize) > 0).count();
                let empty = order.split_off(nonempty);
                let slots: Vec<usize> = order
                    .chunks(SLICE_LANES)
                    .map(|c| len(c[0] as usize))
                    .collect();
                order.resize(slots.len() * SLICE_LANES, u32::MAX);
                (order, empty, slots)
            })
            .collect();
        let mut starts = vec![0usize];
        let mut window_chunks = vec![0usize];
        let mut window_empty = vec![0usize];
        let (mut lanes, mut empty) = (Vec::new(), Vec::new());
        for (order, e, slots) in &windows {
            for &sl in slots {
                starts.push(starts.last().expect("starts at 0") + sl * SLICE_LANES);
            }
            window_chunks.push(starts.len() - 1);
            lanes.extend_from_slice(order);
            empty.extend_from_slice(e);
            window_empty.push(empty.len());
        }
        let total = *starts.last().expect("starts at 0");
        let mut out_idx = vec![0u32; total];
        let mut out_val = vec![T::default(); total];
        // Fill window by window (each owns a contiguous range of the output),
        // visiting its rows in row order: the input streams in sequence and
        // the scattered writes stay within the window's slots. Lanes past the
        // last nonempty row keep their zeros (at column 0).
        let mut pieces = Vec::with_capacity(windows.len());
        let (mut ri, mut rv) = (&mut out_idx[..], &mut out_val[..]);
        for w in 0..windows.len() {
            let size = starts[window_chunks[w + 1]] - starts[window_chunks[w]];
            let (pi, ti) = ri.split_at_mut(size);
            let (pv, tv) = rv.split_at_mut(size);
            pieces.push((w, pi, pv));
            ri = ti;
            rv = tv;
        }
        pieces.into_par_iter().for_each(|(w, pi, pv)| {
            let first_row = w * window;
            let (c0, c1) = (window_chunks[w], window_chunks[w + 1]);
            let base = starts[c0];
            // Where each row of the window sits: its chunk and lane.
            let mut place = vec![(0usize, 0usize); window.min(nrows - first_row)];
            for (p, &row) in lanes[c0 * SLICE_LANES..c1 * SLICE_LANES].iter().enumerate() {
                if row != u32::MAX {
                    place[row as usize - first_row] = (c0 + p / SLICE_LANES, p % SLICE_LANES);
                }
            }
            for (t, &(c, l)) in place.iter().enumerate() {
                let row = first_row + t;
                let (lo, hi) = (indptr[row].to_usize(), indptr[row + 1].to_usize());
                if lo == hi {
                    continue; // an empty row has no lane
                }
                let at = starts[c] - base;
                let slots = (starts[c + 1] - starts[c]) / SLICE_LANES;
                let last = indices[hi - 1].to_usize() as u32;
                for s in 0..slots {
                    let (j, v) = if lo + s < hi {
                        (indices[lo + s].to_usize() as u32, values[lo + s])
                    } else {
                        (last, T::default())
                    };
                    pi[at + s * SLICE_LANES + l] = j;
                    pv[at + s * SLICE_LANES + l] = v;
                }
            }
        });
        Some(Self {
            nrows,
            ncols,
            window,
            lanes,
            starts,
            window_chunks,
            empty,
            window_empty,
            indices: out_idx,
            values: out_val,
        })
    }
}

/// The rows of `range` by decreasing length, ties in row order: a counting
/// sort (the lengths of short rows span a small range), or a comparison sort
/// when some row is much longer than the range.
fn by_decreasing_length(range: std::ops::Range<usize>, len: &impl Fn(usize) -> usize) -> Vec<u32> {
    let longest = range.clone().map(len).max().unwrap_or(0);
    if longest > 4 * range.len() {
        let mut order: Vec<u32> = range.map(|r| r as u32).collect();
        order.sort_unstable_by_key(|&r| (std::cmp::Reverse(len(r as usize)), r));
        return order;
    }
    // next[l]: where the next row of length l goes (longest first).
    let mut next = vec![0usize; longest + 1];
    for r in range.clone() {
        next[len(r)] += 1;
    }
    let mut at = 0;
    for l in (0..=longest).rev() {
        let count = next[l];
        next[l] = at;
        at += count;
    }
    let mut order = vec![0u32; range.len()];
    for r in range {
        let l = len(r);
        order[next[l]] = r as u32;
        next[l] += 1;
    }
    order
}

impl<T> Sliced<T> {
    pub fn nrows(&self) -> usize {
        self.nrows
    }

    pub fn ncols(&self) -> usize {
        self.ncols
    }

    /// The rows of a window, as set when built.
    pub fn window(&self) -> usize {
        self.window
    }

    /// The chunks of windows `w0..w1`.
    pub fn chunks_of(&self, w0: usize, w1: usize) -> std::ops::Range<usize> {
        self.window_chunks[w0]..self.window_chunks[w1]
    }

    /// Chunk `c`: the rows of its lanes (`u32::MAX` for none) and its slots
    /// (indices and values, [`SLICE_LANES`] per slot).
    #[inline(always)]
    pub fn chunk(&self, c: usize) -> (&[u32], &[u32], &[T]) {
        let (a, b) = (self.starts[c], self.starts[c + 1]);
        (
            &self.lanes[c * SLICE_LANES..(c + 1) * SLICE_LANES],
            &self.indices[a..b],
            &self.values[a..b],
        )
    }

    /// The number of windows.
    pub fn windows(&self) -> usize {
        self.window_chunks.len() - 1
    }

    /// The empty rows of window `w`.
    pub fn empty_rows(&self, w: usize) -> &[u32] {
        &self.empty[self.window_empty[w]..self.window_empty[w + 1]]
    }
}

/// A sparse matrix of shape `(nrows, ncols)` in either compressed format.
#[derive(Clone, Copy, Debug)]
pub enum SparseRef<'a, T, I> {
    Csr(Compressed<'a, T, I>),
    Csc(Compressed<'a, T, I>),
}

impl<'a, T, I: Index> SparseRef<'a, T, I> {
    pub fn nrows(&self) -> usize {
        match self {
            SparseRef::Csr(c) => c.major(),
            SparseRef::Csc(c) => c.minor(),
        }
    }

    pub fn ncols(&self) -> usize {
        match self {
            SparseRef::Csr(c) => c.minor(),
            SparseRef::Csc(c) => c.major(),
        }
    }

    /// The transpose, without moving data (CSR of `A` is CSC of `A^T`).
    pub fn transpose(self) -> Self {
        match self {
            SparseRef::Csr(c) => SparseRef::Csc(c),
            SparseRef::Csc(c) => SparseRef::Csr(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_malformed_structure() {
        let data = [1.0, 2.0];
        assert!(Compressed::new(2, 3, &[0i64, 1, 2], &[0, 2], &data).is_ok());
        assert!(Compressed::new(2, 3, &[0i64, 2, 1], &[0, 2], &data).is_err());
        assert!(Compressed::new(2, 3, &[0i64, 1, 2], &[0, 3], &data).is_err());
        assert!(Compressed::new(2, 3, &[0i32, 1, 2], &[0, -1], &data).is_err());
        assert!(Compressed::new(2, 3, &[1i64, 1, 2], &[0, 1], &data).is_err());
        assert!(Compressed::new(3, 3, &[0i64, 1, 2], &[0, 1], &data).is_err());
    }

    #[test]
    fn diagonal_form_of_a_banded_matrix() {
        // 4 x 5, offsets -1, 0, 2; row 3 lacks its offset-2 entry (column 5
        // is outside), row 0 lacks offset -1.
        let indptr = [0usize, 2, 5, 8, 10];
        let indices = [0usize, 2, 0, 1, 3, 1, 2, 4, 2, 3];
        let data = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        let c = Compressed::new(4, 5, &indptr, &indices, &data).unwrap();
        let d = Diagonals::from_rows(&c).unwrap();
        assert_eq!(d.offsets(), &[-1, 0, 2]);
        // Integers are exact in f32: kept narrow.
        assert!(d.is_narrow());
        assert_eq!(d.narrow_diagonal(0).unwrap(), &[0.0, 3.0, 6.0, 9.0]);
        assert_eq!(d.narrow_diagonal(1).unwrap(), &[1.0, 4.0, 7.0, 10.0]);
        assert_eq!(d.narrow_diagonal(2).unwrap(), &[2.0, 5.0, 8.0, 0.0]);
        assert_eq!(d.interior(), 1..3);
        // A value that f32 would round keeps every value at full width.
        let data_wide = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 0.1];
        let c = Compressed::new(4, 5, &indptr, &indices, &data_wide).unwrap();
        let d = Diagonals::from_rows(&c).unwrap();
        assert!(!d.is_narrow());
        assert_eq!(d.diagonal(1), &[1.0, 4.0, 7.0, 0.1]);
        // Unsorted or duplicate indices, and scattered entries, are refused.
        let unsorted = Compressed::new(1, 3, &[0usize, 2], &[2usize, 0], &[1.0, 2.0]).unwrap();
        assert!(Diagonals::from_rows(&unsorted).is_none());
        let dup = Compressed::new(1, 3, &[0usize, 2], &[1usize, 1], &[1.0, 2.0]).unwrap();
        assert!(Diagonals::from_rows(&dup).is_none());
        let n = 100;
        let ptr: Vec<usize> = (0..=n).collect();
        let scattered: Vec<usize> = (0..n).map(|i| (i * 37) % n).collect();
        let ones = vec![1.0; n];
        let c = Compressed::new(n, n, &ptr, &scattered, &ones).unwrap();
        assert!(Diagonals::from_rows(&c).is_none());
    }

    #[test]
    fn rows_by_decreasing_length() {
        for lens in [
            (0..1000).map(|r| (r * 7919) % 13).collect::<Vec<usize>>(),
            (0..50)
                .map(|r| if r == 17 { 10_000 } else { r % 3 })
                .collect(),
        ] {
            let len = |r: usize| lens[r - 100];
            let order = by_decreasing_length(100..100 + lens.len(), &len);
            let mut expect: Vec<u32> = (100..100 + lens.len() as u32).collect();
            expect.sort_by_key(|&r| (std::cmp::Reverse(len(r as usize)), r));
            assert_eq!(order, expect);
        }
    }
}
