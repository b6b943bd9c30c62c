//! Two-stage top-k, for long rows at small batch: a single row uses the whole GPU.
//!
//! Stage 1 ([`tile_candidates_kernel()`]) splits each row into tiles of `tile_width` elements, one
//! cube per tile, and writes each tile's exact top-k sorted best first (padded when the tile is
//! shorter than k) as keys and indices. Stage 2, a second launch with one cube per row, merges a
//! row's tile lists into the sorted top-k ([`merge_candidates_kernel()`]): in shared memory when
//! they all fit there (the entries above a bound read off the sorted lists, each placed by
//! counting those that beat it or sorted in planes, or a pairwise merge with one barrier per
//! halving of the list count), else streamed through a candidate buffer. The union of the tiles'
//! top-k holds the row's top-k, and the candidate order is total, so the result is exact.

use crate::kernels::candidates::{
    Candidates, NOT_RANKED, PADDING_INDEX, PADDING_KEY, RANK_COUNT_MAX, beats, count_beating,
    goes_before, order_top_k, pad_for_counting, place_of, sort_in_planes, write_result,
    write_top_k_of_entries,
};
use crate::kernels::primitives::{
    cube_exclusive_sum, cube_tile, linear_unit, load_vectors, mapped_row_offset, output_row,
};
use crate::kernels::streaming::{batch_entries, offer_range, take_batch};
use cubecl::prelude::*;

/// Words of the scan that gathers the entries at or above the merge's bound in a cube of
/// `units`: one per plane of at least 4 lanes, and the total.
pub fn merge_scan_words(units: usize) -> usize {
    units / 4 + 1
}

/// The most lists whose bound [`merge_candidates_kernel()`] computes by ranking (each of `lists - 1`
/// units compares its entry with the others').
const BOUND_LISTS: usize = 64;

/// The largest k whose tiles are first ranked from registers ([`Candidates::rank_batch`]), in
/// cubes of at least 4k units: a random tile of 16 elements per unit passes about 2k entries to
/// the ranking, each of which counts them all.
const RANKED_MAX_K: usize = 64;

/// The largest cube that ranks its tile from registers. Larger cubes lost with it (H100, k = 50,
/// two-stage with tiles of one batch: 512 units 0.86–1.17 and 1024 units 1.07–1.39 of the time
/// without it, 256 units 0.77–1.02); the batch held in registers (32 words a unit) against their
/// 128- and 64-register caps is the likely cost (not profiled).
const RANKED_MAX_UNITS: usize = 256;

/// Stage 1: the top-k of each tile, into `candidate_keys` / `candidate_indices` (k words per
/// tile, tiles of a row consecutive), sorted best first when `sorted` (for the pairwise merge of
/// [`merge_candidates_kernel()`]). Launched with one cube per tile (extra cubes exit). With
/// `single_batch` (a tile is at most one batch of the cube), a cube of at most 256 units
/// (`RANKED_MAX_UNITS`) and k at most 64 (`RANKED_MAX_K`) and a quarter of the units, the tile
/// is ranked from registers ([`Candidates::rank_batch`]); where that declines, or for a single
/// batch at larger k, the tile is loaded once, primes the threshold and is offered once;
/// otherwise it is streamed like a row (see [`offer_range()`]). The ranked path's lists are
/// always sorted.
#[cube(launch_unchecked)]
// The comptime condition stays apart from the run-time one, so the branch is compiled out.
#[allow(clippy::too_many_arguments, clippy::collapsible_if)]
pub fn tile_candidates_kernel<F: Float, N: Size>(
    input: &Array<Vector<F, N>>,
    candidate_keys: &mut Array<u32>,
    candidate_indices: &mut Array<u32>,
    len: usize,
    stride: usize,
    group_rows: usize,
    group_stride: usize,
    row_stride: usize,
    k: u32,
    num_rows: usize,
    tile_width: usize,
    #[comptime] largest: bool,
    #[comptime] units: usize,
    #[comptime] vectors_per_unit: usize,
    #[comptime] capacity: usize,
    #[comptime] prime_per_unit: usize,
    #[comptime] prime_batches: usize,
    #[comptime] single_batch: bool,
    #[comptime] sorted: bool,
    #[define(F)] _dtype: StorageType,
) {
    let (row, start, end) = cube_tile(len, tile_width);
    if row >= num_rows {
        terminate!();
    }
    let cube = CUBE_POS;
    let base = mapped_row_offset(row, group_rows, group_stride, row_stride);
    let mut candidates = Candidates::new(capacity, units);
    let k_len = k as usize;
    let out = cube * k_len;
    let unit = linear_unit();
    // A tile of one batch at small k is first ranked from registers; only where its bound passes
    // more entries than units (sorted tiles, many ties) does the buffer take it.
    let mut ranked = false;
    if comptime!(single_batch && units <= RANKED_MAX_UNITS) {
        if k_len <= RANKED_MAX_K && k_len * 4usize <= units {
            let (count, rank, key, index) = rank_tile::<F, N>(
                &mut candidates,
                input,
                base,
                stride,
                start,
                end,
                k,
                largest,
                units,
                vectors_per_unit,
            );
            if count != NOT_RANKED {
                ranked = true;
                if (unit as u32) < count && rank < k {
                    candidate_keys[out + rank as usize] = key;
                    candidate_indices[out + rank as usize] = index;
                }
                pad_list(
                    candidate_keys,
                    candidate_indices,
                    out,
                    min(count as usize, k_len),
                    k_len,
                    units,
                );
            }
        }
    }
    if !ranked {
        offer_tile::<F, N>(
            &mut candidates,
            input,
            candidate_keys,
            candidate_indices,
            base,
            stride,
            start,
            end,
            k,
            out,
            largest,
            units,
            vectors_per_unit,
            prime_per_unit,
            prime_batches,
            single_batch,
            sorted,
        );
    }
}

/// The tile's entries loaded into registers and ranked by [`Candidates::rank_batch`].
#[cube]
#[allow(clippy::too_many_arguments)]
fn rank_tile<F: Float, N: Size>(
    candidates: &mut Candidates,
    input: &Array<Vector<F, N>>,
    base: usize,
    stride: usize,
    start: usize,
    end: usize,
    k: u32,
    #[comptime] largest: bool,
    #[comptime] units: usize,
    #[comptime] vectors_per_unit: usize,
) -> (u32, u32, u32, u32) {
    let width = input.vector_size();
    let batch = comptime!(vectors_per_unit * width);
    let mut vectors = Array::<Vector<F, N>>::new(vectors_per_unit);
    load_vectors::<F, N, Array<Vector<F, N>>>(
        input,
        &mut vectors,
        base,
        stride,
        start,
        end,
        units,
        vectors_per_unit,
    );
    let mut floats = Array::<f32>::new(batch);
    let valid = take_batch::<F, N, Array<Vector<F, N>>>(
        input,
        &mut vectors,
        &mut floats,
        base,
        stride,
        start,
        end,
        units,
        vectors_per_unit,
    );
    let mut keys = Array::<u32>::new(batch);
    let mut indices = Array::<u32>::new(batch);
    batch_entries(
        &floats,
        &mut keys,
        &mut indices,
        start,
        largest,
        units,
        width,
        batch,
    );
    candidates.rank_batch(&keys, &indices, valid, k, batch)
}

/// The tile offered to the candidate buffer ([`offer_range()`]) and its top-k written from there.
#[cube]
// `kept` and `by_rank` are declared before the comptime branch that sets them.
#[allow(clippy::too_many_arguments, unused_assignments)]
fn offer_tile<F: Float, N: Size>(
    candidates: &mut Candidates,
    input: &Array<Vector<F, N>>,
    candidate_keys: &mut Array<u32>,
    candidate_indices: &mut Array<u32>,
    base: usize,
    stride: usize,
    start: usize,
    end: usize,
    k: u32,
    out: usize,
    #[comptime] largest: bool,
    #[comptime] units: usize,
    #[comptime] vectors_per_unit: usize,
    #[comptime] prime_per_unit: usize,
    #[comptime] prime_batches: usize,
    #[comptime] single_batch: bool,
    #[comptime] sorted: bool,
) {
    offer_range::<F, N, Array<Vector<F, N>>>(
        candidates,
        input,
        base,
        stride,
        start,
        end,
        k,
        largest,
        units,
        vectors_per_unit,
        prime_per_unit,
        prime_batches,
        single_batch,
        !sorted,
    );
    // Unsorted: the exact cut leaves the best k in the buffer's first places.
    let mut kept = 0usize;
    let mut by_rank = false;
    if comptime!(sorted) {
        let (ordered, ranked) = order_top_k(candidates);
        kept = ordered;
        by_rank = ranked;
    } else {
        kept = candidates.entries() as usize;
    }
    let k_len = k as usize;
    let mut j = linear_unit();
    while j < kept {
        let place = place_of(candidates, j, by_rank);
        if place < k_len {
            candidate_keys[out + place] = candidates.key(j);
            candidate_indices[out + place] = candidates.index(j);
        }
        j += units;
    }
    pad_list(
        candidate_keys,
        candidate_indices,
        out,
        min(kept, k_len),
        k_len,
        units,
    );
}

/// Fills places `from..k_len` of the tile list at `out` with padding: a tile shorter than k leaves
/// the places after its entries to it.
#[cube]
fn pad_list(
    candidate_keys: &mut Array<u32>,
    candidate_indices: &mut Array<u32>,
    out: usize,
    from: usize,
    k_len: usize,
    #[comptime] units: usize,
) {
    let mut j = from + linear_unit();
    while j < k_len {
        candidate_keys[out + j] = u32::cast_from(PADDING_KEY);
        candidate_indices[out + j] = u32::cast_from(PADDING_INDEX);
        j += units;
    }
}

/// 1 when list `list`'s entry at `pivot` goes before unit `unit`'s own list's `(key, index)`
/// there, else 0; also 0 for a list past the first `full` (the last of those is read instead, so
/// the loads of a step stay in bounds and unconditional). Equal paddings are told apart by their
/// list ([`goes_before()`]), so the ranks are distinct.
#[cube]
#[allow(clippy::too_many_arguments)]
fn pivot_above(
    keys: &SharedMemory<u32>,
    indices: &SharedMemory<u32>,
    list: usize,
    full: usize,
    k_len: usize,
    pivot: usize,
    key: u32,
    index: u32,
    unit: usize,
) -> u32 {
    let read = min(list, full - 1usize) * k_len + pivot;
    let other_key = keys[read];
    let other_index = indices[read];
    let above = goes_before::<usize>(other_key, other_index, list, key, index, unit);
    select(above && list < full, 1u32, 0u32)
}

/// Stage 2: the sorted top-k of each row from its `lists` tile lists of k entries (consecutive, a
/// row's lists `lists × k` apart). One cube per row.
///
/// With `pairwise` (the lists are sorted and fit shared memory twice: `lists × k ≤ capacity`),
/// at most `BOUND_LISTS` + 1 lists holding more than one entry per unit at k ≤
/// [`RANK_COUNT_MAX`], or more than two at any k, first give a lower bound of the row's k-th
/// best. When at most [`RANK_COUNT_MAX`] entries are at or above it, each is
/// placed by counting those that beat it ([`count_beating()`]) and written from there; when more
/// fit one per unit and the lists hold more than two entries per unit, they are sorted in planes
/// ([`sort_in_planes()`]) and the first k written. Otherwise the lists are merged pairwise,
/// keeping the best k of each pair, until one is left: each entry finds its place in the merged
/// pair from its own place plus the entries of the other list that go before it (a binary
/// search; entries of the first list go first among equals, so equal paddings merge like any
/// others), and moves to the other half of the shared buffer. One barrier per level,
/// `⌈log2 lists⌉` levels. Otherwise the candidates are offered to a candidate buffer of
/// `capacity` entries like the elements of a streamed row.
#[cube(launch_unchecked)]
// `(a..=b).contains(&x)` does not expand in CubeCL.
#[allow(
    clippy::too_many_arguments,
    clippy::collapsible_if,
    clippy::manual_range_contains
)]
pub fn merge_candidates_kernel<F: Float, I: Int, N: Size>(
    input: &Array<Vector<F, N>>,
    candidate_keys: &Array<u32>,
    candidate_indices: &Array<u32>,
    values: &mut Array<F>,
    indices: &mut Array<I>,
    stride: usize,
    group_rows: usize,
    group_stride: usize,
    row_stride: usize,
    k: u32,
    num_rows: usize,
    inner: usize,
    lists: usize,
    #[comptime] largest: bool,
    #[comptime] units: usize,
    #[comptime] entries_per_unit: usize,
    #[comptime] capacity: usize,
    #[comptime] prime_per_unit: usize,
    #[comptime] pairwise: bool,
    #[define(F, I)] _dtypes: [StorageType; 2],
) {
    let row = CUBE_POS;
    if row >= num_rows {
        terminate!();
    }
    let unit = linear_unit();
    let base = mapped_row_offset(row, group_rows, group_stride, row_stride);
    let out_row = output_row(row, k as usize, inner);
    let k_len = k as usize;
    let candidates_per_row = lists * k_len;
    let first = row * candidates_per_row;
    if comptime!(pairwise) {
        let mut keys = SharedMemory::<u32>::new(comptime!(2 * capacity));
        let mut entry_indices = SharedMemory::<u32>::new(comptime!(2 * capacity));
        let mut j = unit;
        while j < candidates_per_row {
            keys[j] = candidate_keys[first + j];
            entry_indices[j] = candidate_indices[first + j];
            j += units;
        }
        sync_cube();
        let mut source = 0usize;
        let mut target = capacity.runtime();
        let mut count = lists;
        // The result is written from registers by the ranking below, or from `source` at the end.
        let mut written = false;
        // A lower bound of the row's k-th best: each list is sorted, so with `t` = ⌈k / full⌉
        // over the `full` lists that surely hold k entries (all but the last, which may be
        // short), the ⌈k / t⌉-th best of those lists' t-th entries has ⌈k / t⌉ × t ≥ k entries at
        // or above it. Only entries at or above it can be among the top k: for random rows a
        // few per list. Where the pairwise merge would take more than one entry per unit, up to
        // `RANK_COUNT_MAX` of them are each placed by counting the others that beat it: one
        // step against ⌈log2 lists⌉ levels of binary searches and barriers (H100, two-stage,
        // k = 50: 1 × 128k, 32 lists, 14.3 → 13.6 µs, 1 × 256k 16.7 → 14.7, 8 × 256k 25.5 →
        // 24.3; with one entry per unit or fewer, the bound cost more than the levels: 1 × 32k,
        // 11.0 → 11.8). More, when they fit one per unit and the pairwise merge would take over
        // two entries per unit, are sorted in planes (H100, b=1 V=128k k=256, 32 lists: 42.3 →
        // 34.3 µs).
        let sorts = lists * k_len > 2usize * units;
        if lists >= 2usize
            && lists <= BOUND_LISTS + 1usize
            && ((lists * k_len > units && k_len <= RANK_COUNT_MAX) || sorts)
        {
            let full = lists - 1usize;
            let t = k_len.div_ceil(full);
            let r = k_len.div_ceil(t);
            let mut bound = SharedMemory::<u32>::new(2usize);
            let mut scratch = SharedMemory::<u32>::new(comptime!(merge_scan_words(units)));
            if unit < full {
                let pivot = t - 1usize;
                let key = keys[unit * k_len + pivot];
                let index = entry_indices[unit * k_len + pivot];
                // Four lists per step, their loads in flight together.
                let mut above = 0u32;
                let mut list = 0usize;
                while list < full {
                    #[unroll]
                    for step in 0..4usize {
                        above += pivot_above(
                            &keys,
                            &entry_indices,
                            list + step,
                            full,
                            k_len,
                            pivot,
                            key,
                            index,
                            unit,
                        );
                    }
                    list += 4usize;
                }
                if above as usize == r - 1usize {
                    bound[0usize] = key;
                    bound[1usize] = index;
                }
            }
            sync_cube();
            let bound_key = bound[0usize];
            let bound_index = bound[1usize];
            let mut kept = 0u32;
            let mut e = unit;
            while e < lists * k_len {
                // At or above the bound: the bound does not beat it.
                if !beats(bound_key, bound_index, keys[e], entry_indices[e]) {
                    kept += 1u32;
                }
                e += units;
            }
            let (first, total) = cube_exclusive_sum(kept, &mut scratch);
            // (Padded to a multiple of four for the counting, at most 256 entries still fit the
            // half: it holds the lists, more entries than units, and cubes have at least 256.)
            let ranks = total as usize <= min(units, RANK_COUNT_MAX);
            if ranks || (sorts && total as usize <= units) {
                let mut slot = target + first as usize;
                e = unit;
                while e < lists * k_len {
                    let key = keys[e];
                    let index = entry_indices[e];
                    if !beats(bound_key, bound_index, key, index) {
                        keys[slot] = key;
                        entry_indices[slot] = index;
                        slot += 1usize;
                    }
                    e += units;
                }
                if ranks {
                    // A padding bound (tiles shorter than k) passes all `lists × k` entries,
                    // more than the units, so only real entries get here: distinct, and so are
                    // their places.
                    let padded = pad_for_counting(&mut keys, &mut entry_indices, target, total);
                    sync_cube();
                    if unit < total as usize {
                        let key = keys[target + unit];
                        let index = entry_indices[target + unit];
                        let place =
                            count_beating(&keys, &entry_indices, target, padded, key, index);
                        if place < k {
                            write_result::<F, I, N, Array<Vector<F, N>>, Array<F>, Array<I>>(
                                key,
                                index,
                                place as usize,
                                input,
                                base,
                                stride,
                                values,
                                indices,
                                out_row,
                                inner,
                                largest,
                            );
                        }
                    }
                    written = true;
                } else {
                    sync_cube();
                    sort_in_planes(&mut keys, &mut entry_indices, target, total);
                    source = target;
                }
                count = 1usize;
            }
        }
        while count > 1usize {
            let pairs = count / 2usize;
            let mut e = unit;
            while e < count * k_len {
                let list = e / k_len;
                let own = e % k_len;
                let key = keys[source + e];
                let index = entry_indices[source + e];
                // A list without a partner (the last of an odd count) moves as it is.
                let mut place = own;
                if list < 2usize * pairs {
                    let first_side = (list & 1usize) == 0usize;
                    let other = source + (list ^ 1usize) * k_len;
                    let mut lo = 0usize;
                    let mut hi = k_len;
                    while lo < hi {
                        let mid = (lo + hi) / 2usize;
                        let other_key = keys[other + mid];
                        let other_index = entry_indices[other + mid];
                        let goes_before = other_key > key
                            || (other_key == key
                                && (other_index < index || (other_index == index && !first_side)));
                        if goes_before {
                            lo = mid + 1usize;
                        } else {
                            hi = mid;
                        }
                    }
                    place = own + lo;
                }
                if place < k_len {
                    let slot = target + (list / 2usize) * k_len + place;
                    keys[slot] = key;
                    entry_indices[slot] = index;
                }
                e += units;
            }
            sync_cube();
            // The halves trade roles: the merged lists are read next.
            target = source;
            source = capacity - target;
            count = pairs + count % 2usize;
        }
        j = unit;
        while j < k_len && !written {
            write_result::<F, I, N, Array<Vector<F, N>>, Array<F>, Array<I>>(
                keys[source + j],
                entry_indices[source + j],
                j,
                input,
                base,
                stride,
                values,
                indices,
                out_row,
                inner,
                largest,
            );
            j += units;
        }
    } else {
        let mut candidates = Candidates::new(capacity, units);
        write_top_k_of_entries::<F, I, N, Array<u32>, Array<Vector<F, N>>, Array<F>, Array<I>>(
            &mut candidates,
            candidate_keys,
            candidate_indices,
            first,
            candidates_per_row,
            k,
            input,
            base,
            stride,
            values,
            indices,
            out_row,
            inner,
            largest,
            units,
            entries_per_unit,
            prime_per_unit,
        );
    }
}
