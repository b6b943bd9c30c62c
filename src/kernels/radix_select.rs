//! Radix select: by one digit and a list, tiled over the device ([`digit_histogram_kernel()`],
//! [`digit_filter_kernel()`], [`filtered_top_k_kernel()`]) or in one launch for few short rows
//! ([`one_launch_kernel()`]); and pass by pass in one cube per row, for any k.
//!
//! One cube per row, pass by pass ([`radix_select_kernel()`]):
//! 1. Find the k-th largest key one digit at a time from the top (8 bits by default: 4 passes over
//!    the row, a 256-bin shared-memory histogram each), and how many of the elements equal to it
//!    belong to the top-k.
//! 2. Gather, in index order, every element above that key and the first ties, into a scratch row.
//! 3. Sort the k candidates by key, descending, with a stable LSD radix sort (one bit per pass, only
//!    over the bits in which some candidate differs from the threshold): stability keeps ties in
//!    index order.
//! 4. Write the values (read back from the input, bit for bit) and the indices.

use crate::kernels::candidates::{
    BUCKETS, Candidates, beats, write_result, write_top_k_of_entries,
};
use crate::kernels::primitives::{
    cube_exclusive_sum, cube_or, cube_tile, linear_unit, load_vectors, mapped_row_offset,
    order_key, output_row,
};
use cubecl::prelude::*;
use cubecl::unexpanded;

/// Bits per digit of the pass-by-pass select by default: 4 passes of 256 bins.
pub const PER_ROW_DIGIT_BITS: u32 = 8;

/// Bits of the tiled radix select's one digit by default: the top 12 bits of the f32 key (sign,
/// exponent and three mantissa bits, so a binade is cut in eight), whose 4096 bins a cube counts
/// in 16 KiB of shared memory. For N(0, σ) rows of 128k the pivot bin of k = 1024 holds about
/// 500 keys.
pub const TILED_DIGIT_BITS: u32 = 12;

/// The top-k of each row. Launched with one cube per row (rows beyond `num_rows` exit). The input's
/// rows hold `len` elements `stride` apart and start where [`mapped_row_offset()`] puts them.
///
/// `values` and `indices` are contiguous with `dim` of length `k`; `inner` is the product of the
/// dimensions after `dim`. `scratch_keys` and `scratch_indices` hold `2 * k` words per row (the sort
/// ping-pongs between the two halves). Each pass counts a digit of `digit_bits` (the last one may
/// be narrower).
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub fn radix_select_kernel<F: Float, I: Int>(
    input: &Array<F>,
    values: &mut Array<F>,
    indices: &mut Array<I>,
    scratch_keys: &mut Array<u32>,
    scratch_indices: &mut Array<u32>,
    len: usize,
    stride: usize,
    group_rows: usize,
    group_stride: usize,
    row_stride: usize,
    k: u32,
    num_rows: usize,
    inner: usize,
    #[comptime] largest: bool,
    #[comptime] cube_dim: u32,
    #[comptime] digit_bits: u32,
    #[define(F, I)] _dtypes: [StorageType; 2],
) {
    let row = CUBE_POS;
    if row >= num_rows {
        terminate!();
    }
    let unit = linear_unit();
    let units = cube_dim as usize;
    let base = mapped_row_offset(row, group_rows, group_stride, row_stride);

    let bins = comptime!(1usize << digit_bits);
    let histogram = SharedMemory::<Atomic<u32>>::new(bins);
    let mut scratch = SharedMemory::<u32>::new(cube_dim as usize + 3usize);

    // 1. The k-th key, digit by digit.
    let mut prefix = 0u32;
    let mut mask = 0u32;
    let mut remaining = k;
    let mut shift = 32u32;
    #[unroll]
    for _pass in 0..comptime!(32u32.div_ceil(digit_bits)) {
        let width = min(shift, digit_bits);
        shift -= width;
        let digit_mask = (1u32 << width) - 1u32;
        let mut bin = unit;
        while bin < bins {
            histogram[bin].store(0u32);
            bin += units;
        }
        sync_cube();
        // Keys crowd into few bins and same-word atomics serialise: each unit counts runs of
        // one bin in a register and adds a run at a time.
        let mut run_bin = 0u32;
        let mut run = 0u32;
        let mut i = unit;
        while i < len {
            let key = order_key::<F>(input[base + i * stride], largest);
            if (key & mask) == prefix {
                let bin = (key >> shift) & digit_mask;
                if bin != run_bin {
                    if run > 0u32 {
                        histogram[run_bin as usize].fetch_add(run);
                    }
                    run_bin = bin;
                    run = 0u32;
                }
                run += 1u32;
            }
            i += units;
        }
        if run > 0u32 {
            histogram[run_bin as usize].fetch_add(run);
        }
        sync_cube();
        let (digit, rank) = digit_of_rank::<SharedMemory<Atomic<u32>>>(
            &histogram,
            0usize,
            remaining,
            &mut scratch,
            comptime!(cube_dim as usize + 1),
            bins,
            comptime!(cube_dim as usize),
        );
        prefix |= digit << shift;
        mask |= digit_mask << shift;
        remaining = rank;
    }
    let threshold = prefix;
    let ties_taken = remaining;

    // 2. Gather the k candidates in index order: keys above the threshold, and the first
    //    `ties_taken` keys equal to it. Each unit owns a contiguous block of the row: it counts
    //    its block, two cube scans give every block its first slots, then it writes in order.
    //    (One scan per row, not one per chunk: see NOTES.md on long barrier loops.)
    let k_len = k as usize;
    let scratch_row = row * 2usize * k_len;
    let row_block = len.div_ceil(units);
    let row_start = min(unit * row_block, len);
    let row_end = min(row_start + row_block, len);
    let mut above_local = 0u32;
    let mut ties_local = 0u32;
    for i in row_start..row_end {
        let key = order_key::<F>(input[base + i * stride], largest);
        above_local += select(key > threshold, 1u32, 0u32);
        ties_local += select(key == threshold, 1u32, 0u32);
    }
    let (mut above_before, _above_total) = cube_exclusive_sum(above_local, &mut scratch);
    let (mut ties_before, _ties_total) = cube_exclusive_sum(ties_local, &mut scratch);
    let mut varying_local = 0u32;
    for i in row_start..row_end {
        let key = order_key::<F>(input[base + i * stride], largest);
        let mut slot = k;
        if key > threshold {
            slot = above_before + min(ties_before, ties_taken);
            above_before += 1;
        } else if key == threshold {
            if ties_before < ties_taken {
                slot = above_before + ties_before;
            }
            ties_before += 1;
        }
        if slot < k {
            scratch_keys[scratch_row + slot as usize] = key;
            scratch_indices[scratch_row + slot as usize] = i as u32;
            varying_local |= key ^ threshold;
        }
    }
    sync_storage();
    sync_cube();

    // 3. Stable LSD sort, one bit per pass, highest key first. A bit in which no candidate
    //    differs from the threshold is the same in every candidate: no pass for it (f16 and bf16
    //    keys, widened to f32, skip their low bits this way, and close values skip the high ones).
    //    Each unit owns a contiguous block of candidates, so a pass needs one cube scan: count the
    //    block's ones, scan the counts, then scatter the block in order.
    let varying = cube_or(varying_local, &mut scratch);
    let block = k_len.div_ceil(units);
    let block_start = min(unit * block, k_len);
    let block_end = min(block_start + block, k_len);
    let mut source = 0usize;
    for bit in 0u32..32u32 {
        if ((varying >> bit) & 1u32) == 1u32 {
            let target = k_len - source;
            let mut ones_in_block = 0u32;
            for j in block_start..block_end {
                ones_in_block += (scratch_keys[scratch_row + source + j] >> bit) & 1u32;
            }
            let (ones_before, ones_total) = cube_exclusive_sum(ones_in_block, &mut scratch);
            // Ones keep their order at the front, zeros theirs after all the ones.
            let mut next_one = ones_before as usize;
            let mut next_zero = ones_total as usize + block_start - next_one;
            for j in block_start..block_end {
                let key = scratch_keys[scratch_row + source + j];
                let index = scratch_indices[scratch_row + source + j];
                let mut slot = next_zero;
                if ((key >> bit) & 1u32) == 1u32 {
                    slot = next_one;
                    next_one += 1;
                } else {
                    next_zero += 1;
                }
                scratch_keys[scratch_row + target + slot] = key;
                scratch_indices[scratch_row + target + slot] = index;
            }
            source = target;
            sync_storage();
            sync_cube();
        }
    }

    // 4. Write the results, values read from the input so they keep their exact bits.
    let out_row = output_row(row, k_len, inner);
    let mut j = unit;
    while j < k_len {
        let index = scratch_indices[scratch_row + source + j] as usize;
        values[out_row + j * inner] = input[base + index * stride];
        indices[out_row + j * inner] = I::cast_from(index);
        j += units;
    }
}

/// A histogram's counts, wherever they live: the pass-by-pass select and the one-launch select
/// count in shared atomics, the tiled select reads its rows' histograms from global memory.
#[cube(self_type = "ref")]
pub trait BinCounts {
    /// The count of bin `bin`.
    #[allow(unused)]
    fn bin_count(&self, bin: usize) -> u32 {
        unexpanded!()
    }
}

impl BinCounts for SharedMemory<Atomic<u32>> {}
impl BinCountsExpand for NativeExpand<SharedMemory<Atomic<u32>>> {
    fn __expand_bin_count_method(
        &self,
        scope: &mut Scope,
        bin: NativeExpand<usize>,
    ) -> NativeExpand<u32> {
        shared_count::expand(scope, self.clone(), bin)
    }
}

impl BinCounts for Array<u32> {}
impl BinCountsExpand for NativeExpand<Array<u32>> {
    fn __expand_bin_count_method(
        &self,
        scope: &mut Scope,
        bin: NativeExpand<usize>,
    ) -> NativeExpand<u32> {
        array_count::expand(scope, self.clone(), bin)
    }
}

#[cube]
fn shared_count(counts: &SharedMemory<Atomic<u32>>, bin: usize) -> u32 {
    counts[bin].load()
}

#[cube]
fn array_count(counts: &Array<u32>, bin: usize) -> u32 {
    counts[bin]
}

/// The bin of the histogram at `counts[offset..offset + bins]` (the top bin first in rank) that
/// holds the `rank`-th key, and that key's rank inside its bin. Each unit reads a run of
/// consecutive bins once, so no unit walks them all (a walk of 256 shared atomics by one unit is a
/// chain the whole cube waits for): a cube scan places the runs, and the unit whose run crosses
/// `rank` walks it and leaves its answer in `scratch[answer]` and `scratch[answer + 1]`, two
/// words past the scan's. Runs of up to 16 bins are unrolled, so their loads are in flight
/// together; longer ones (a small cube over many bins) are loops, since unrolling hundreds of
/// counts slows shader compilers down. Every unit must call it (it synchronises the cube); the
/// counts may be written again after it returns.
#[cube]
#[allow(clippy::too_many_arguments)]
fn digit_of_rank<C: BinCounts>(
    counts: &C,
    offset: usize,
    rank: u32,
    scratch: &mut SharedMemory<u32>,
    #[comptime] answer: usize,
    #[comptime] bins: usize,
    #[comptime] units: usize,
) -> (u32, u32) {
    let per_unit = comptime!(bins.div_ceil(units));
    let unrolled = comptime!(per_unit <= 16);
    // Unit 0 holds the top bins; units past the bins hold none.
    let top = bins - min(linear_unit() * per_unit, bins);
    let held = min(top, per_unit);
    let mut run = Array::<u32>::new(per_unit);
    let mut sum = 0u32;
    #[unroll(unrolled)]
    for j in 0..per_unit {
        let mut count = 0u32;
        if j < held {
            count = counts.bin_count(offset + top - 1usize - j);
        }
        run[j] = count;
        sum += count;
    }
    let (above, _) = cube_exclusive_sum(sum, scratch);
    if above < rank && rank <= above + sum {
        let mut running = above;
        let mut found = false;
        #[unroll(unrolled)]
        for j in 0..per_unit {
            if !found && running + run[j] >= rank {
                scratch[answer] = (top - 1usize - j) as u32;
                scratch[answer + 1usize] = rank - running;
                found = true;
            }
            running += run[j];
        }
    }
    sync_cube();
    let digit = scratch[answer];
    let rank_in_bin = scratch[answer + 1usize];
    sync_cube();
    (digit, rank_in_bin)
}

/// Tiled radix select, before its first launch: zeroes the rows' histograms and list lengths
/// (`len` words), one word per unit. Its argument is an array, as are every radix select kernel's
/// (rows located by [`mapped_row_offset()`]): for a tensor argument CubeCL uploads shapes and
/// strides before every launch (half of a launch's host time on the H200: 11.9 µs with one
/// tensor argument, 6.3 with an array), and Burn's fill is such a launch. With the fill,
/// histogram and filter launches on arrays the tiled select took 5–6 µs less device time per
/// call (H200, e.g. one row of 128k at k = 256: 23.7 → 17.8 µs).
#[cube(launch_unchecked)]
pub fn zero_counters_kernel(counters: &mut Array<u32>, len: usize, #[comptime] units: usize) {
    let at = CUBE_POS * units + UNIT_POS as usize;
    if at < len {
        counters[at] = 0u32;
    }
}

/// The words of [`digit_filter_kernel()`]'s scratch in a cube of `units`, which the host counts
/// in the cube's shared memory: the cube scan's (one per plane of at least 4 units, and the total),
/// then the digit search's answer (later each step's place) and rank.
pub const fn filter_scratch_words(units: usize) -> usize {
    units / 4 + 3
}

/// Tiled radix select, first launch: each tile's histogram of its keys' top digit (their top
/// `digit_bits` bits), added into its row's `histogram` (zeroed before the launch). One cube per
/// tile of `tile_width` elements (a multiple of the vector width), a row's tiles consecutive. Rows
/// hold `len` elements `stride` apart and start where [`mapped_row_offset()`] puts them.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub fn digit_histogram_kernel<F: Float, N: Size>(
    input: &Array<Vector<F, N>>,
    histogram: &mut Array<Atomic<u32>>,
    len: usize,
    stride: usize,
    group_rows: usize,
    group_stride: usize,
    row_stride: usize,
    num_rows: usize,
    tile_width: usize,
    #[comptime] largest: bool,
    #[comptime] units: usize,
    #[comptime] vectors_per_unit: usize,
    #[comptime] digit_bits: u32,
    #[define(F)] _dtype: StorageType,
) {
    let (row, start, end) = cube_tile(len, tile_width);
    if row >= num_rows {
        terminate!();
    }
    let base = mapped_row_offset(row, group_rows, group_stride, row_stride);
    let unit = linear_unit();
    let bins = comptime!(1usize << digit_bits);
    let counts = SharedMemory::<Atomic<u32>>::new(bins);
    let mut bin = unit;
    while bin < bins {
        counts[bin].store(0u32);
        bin += units;
    }
    sync_cube();
    count_digits::<F, N, Array<Vector<F, N>>>(
        input,
        base,
        stride,
        start,
        end,
        &counts,
        comptime!(32 - digit_bits),
        largest,
        units,
        vectors_per_unit,
    );
    sync_cube();
    bin = unit;
    let row_bins = row * bins;
    while bin < bins {
        let count = counts[bin].load();
        if count > 0u32 {
            histogram[row_bins + bin].fetch_add(count);
        }
        bin += units;
    }
}

/// Counts the top digits (the keys shifted right by `shift`) of elements `start..end` of the row
/// at `base` into `counts`, a step of `units × vectors_per_unit` vectors at a time.
#[cube]
#[allow(clippy::too_many_arguments)]
fn count_digits<F: Float, N: Size, L: List<Vector<F, N>>>(
    input: &L,
    base: usize,
    stride: usize,
    start: usize,
    end: usize,
    counts: &SharedMemory<Atomic<u32>>,
    #[comptime] shift: u32,
    #[comptime] largest: bool,
    #[comptime] units: usize,
    #[comptime] vectors_per_unit: usize,
) {
    let width = input.vector_size();
    let unit = linear_unit();
    let mut vectors = Array::<Vector<F, N>>::new(vectors_per_unit);
    let mut first = start;
    while first < end {
        load_vectors::<F, N, L>(
            input,
            &mut vectors,
            base,
            stride,
            first,
            end,
            units,
            vectors_per_unit,
        );
        #[unroll]
        for v in 0..vectors_per_unit {
            let element = first + (v * units + unit) * width;
            if element < end {
                #[unroll]
                for lane in 0..width {
                    let key = order_key::<F>(vectors[v][lane], largest);
                    counts[(key >> shift) as usize].fetch_add(1u32);
                }
            }
        }
        first += units * vectors_per_unit * width;
    }
}

/// Tiled radix select, second launch: each tile appends the entries whose top digit is at least
/// its row's pivot digit (the digit whose bin holds the row's k-th key, read off the row's
/// `histogram`) to the row's list (`len` words per row, unordered), taking places with one atomic
/// add on the row's word `list_lengths[lengths_offset + row]` (zeroed before) per step of the
/// tile. Those entries hold the row's top-k: every key above the pivot bin, and all of the bin.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub fn digit_filter_kernel<F: Float, N: Size>(
    input: &Array<Vector<F, N>>,
    histogram: &Array<u32>,
    list_lengths: &mut Array<Atomic<u32>>,
    list_keys: &mut Array<u32>,
    list_indices: &mut Array<u32>,
    len: usize,
    stride: usize,
    group_rows: usize,
    group_stride: usize,
    row_stride: usize,
    k: u32,
    num_rows: usize,
    tile_width: usize,
    lengths_offset: usize,
    #[comptime] largest: bool,
    #[comptime] units: usize,
    #[comptime] vectors_per_unit: usize,
    #[comptime] stage: usize,
    #[comptime] digit_bits: u32,
    #[define(F)] _dtype: StorageType,
) {
    let (row, start, end) = cube_tile(len, tile_width);
    if row >= num_rows {
        terminate!();
    }
    let base = mapped_row_offset(row, group_rows, group_stride, row_stride);
    let width = input.vector_size();
    let unit = linear_unit();
    let mut scratch = SharedMemory::<u32>::new(comptime!(filter_scratch_words(units)));
    let bins = comptime!(1usize << digit_bits);
    let answer = comptime!(units / 4 + 1);
    let (pivot, _) =
        digit_of_rank::<Array<u32>>(histogram, row * bins, k, &mut scratch, answer, bins, units);
    let mut stage_keys = SharedMemory::<u32>::new(stage);
    let mut stage_indices = SharedMemory::<u32>::new(stage);
    let list = row * len;
    let mut first = start;
    while first < end {
        let mut vectors = Array::<Vector<F, N>>::new(vectors_per_unit);
        load_vectors::<F, N, Array<Vector<F, N>>>(
            input,
            &mut vectors,
            base,
            stride,
            first,
            end,
            units,
            vectors_per_unit,
        );
        let passing = passing_bits::<F, N>(
            &vectors,
            first,
            end,
            pivot,
            comptime!(32 - digit_bits),
            largest,
            units,
            vectors_per_unit,
        );
        let (before, total) = cube_exclusive_sum(passing.count_ones(), &mut scratch);
        if total > 0u32 {
            let place_word = comptime!(units / 4 + 1);
            if unit == 0usize {
                scratch[place_word] = list_lengths[lengths_offset + row].fetch_add(total);
            }
            write_passing::<F, N, Array<u32>>(
                &vectors,
                passing,
                first,
                before,
                total,
                &scratch,
                place_word,
                list,
                list_keys,
                list_indices,
                &mut stage_keys,
                &mut stage_indices,
                largest,
                units,
                vectors_per_unit,
                stage,
            );
        }
        first += units * vectors_per_unit * width;
    }
}

/// One bit per element of the unit's step (at most 32: the launch's batch, bit `v * width +
/// lane`) whose key's digit (the key shifted right by `shift`) is at least `pivot`.
#[cube]
#[allow(clippy::too_many_arguments)]
fn passing_bits<F: Float, N: Size>(
    vectors: &Array<Vector<F, N>>,
    first: usize,
    end: usize,
    pivot: u32,
    #[comptime] shift: u32,
    #[comptime] largest: bool,
    #[comptime] units: usize,
    #[comptime] vectors_per_unit: usize,
) -> u32 {
    let width = vectors[0].size();
    let unit = linear_unit();
    let mut passing = 0u32;
    #[unroll]
    for v in 0..vectors_per_unit {
        let element = first + (v * units + unit) * width;
        if element < end {
            #[unroll]
            for lane in 0..width {
                let key = order_key::<F>(vectors[v][lane], largest);
                if (key >> shift) >= pivot {
                    passing |= 1u32 << ((v * width + lane) as u32);
                }
            }
        }
    }
    passing
}

/// Appends a step's passing entries (`passing` from [`passing_bits()`], the unit's first at
/// `before` of the cube's `total`) to the list at `list`, from the place the cube's unit 0 put in
/// `places[place_word]` (not yet visible: this synchronises the cube). The keys are computed
/// again from the vectors rather than held in as many registers.
///
/// The entries go through a stage in shared memory when they fit, and consecutive units write
/// them to consecutive places: written where they pass, a plane's stores land a few words apart
/// each and cost a memory transaction per few entries. The next cube scan of the caller holds
/// every unit until all have read the place and the stage, so they may be written again after it.
#[cube]
#[allow(clippy::too_many_arguments)]
fn write_passing<F: Float, N: Size, L: ListMut<u32>>(
    vectors: &Array<Vector<F, N>>,
    passing: u32,
    first: usize,
    before: u32,
    total: u32,
    places: &SharedMemory<u32>,
    place_word: usize,
    list: usize,
    list_keys: &mut L,
    list_indices: &mut L,
    stage_keys: &mut SharedMemory<u32>,
    stage_indices: &mut SharedMemory<u32>,
    #[comptime] largest: bool,
    #[comptime] units: usize,
    #[comptime] vectors_per_unit: usize,
    #[comptime] stage: usize,
) {
    let width = vectors[0].size();
    let unit = linear_unit();
    let staged = total as usize <= stage;
    let mut slot = before as usize;
    if !staged {
        sync_cube();
        slot += list + places[place_word] as usize;
    }
    #[unroll]
    for v in 0..vectors_per_unit {
        #[unroll]
        for lane in 0..width {
            if (passing & (1u32 << ((v * width + lane) as u32))) != 0u32 {
                let key = order_key::<F>(vectors[v][lane], largest);
                let index = (first + (v * units + unit) * width + lane) as u32;
                if staged {
                    stage_keys[slot] = key;
                    stage_indices[slot] = index;
                } else {
                    list_keys.write(slot, key);
                    list_indices.write(slot, index);
                }
                slot += 1usize;
            }
        }
    }
    if staged {
        sync_cube();
        let at = list + places[place_word] as usize;
        let mut j = unit;
        while j < total as usize {
            list_keys.write(at + j, stage_keys[j]);
            list_indices.write(at + j, stage_indices[j]);
            j += units;
        }
    }
}

/// The one-launch select's digit: the key's top 11 bits (sign, exponent and two mantissa bits),
/// one bin per word of the candidate buffer's histogram.
const ROW_DIGIT_SHIFT: u32 = 32 - BUCKETS.trailing_zeros();

/// Radix select in one launch, one cube per row: the tiled select's three steps with no exchange
/// between cubes. The cube counts its row's top digit in its candidate buffer's histogram, finds
/// the pivot digit (the one whose bin holds the k-th key), appends the entries at or above it to
/// the row's list (`len` words per row), and takes the list's top-k by bucket
/// ([`write_top_k_of_entries()`], which reads the list back after a storage barrier). For rows too
/// few to fill the device and short enough for one processor to read twice: no fill of counters,
/// no launch waiting on another, one launch's host time.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub fn one_launch_kernel<F: Float, I: Int, N: Size>(
    input: &Array<Vector<F, N>>,
    list_keys: &mut Array<u32>,
    list_indices: &mut Array<u32>,
    values: &mut Array<F>,
    indices: &mut Array<I>,
    len: usize,
    stride: usize,
    group_rows: usize,
    group_stride: usize,
    row_stride: usize,
    k: u32,
    num_rows: usize,
    inner: usize,
    #[comptime] largest: bool,
    #[comptime] units: usize,
    #[comptime] vectors_per_unit: usize,
    #[comptime] stage: usize,
    #[comptime] capacity: usize,
    #[comptime] entries_per_unit: usize,
    #[comptime] prime_per_unit: usize,
    #[define(F, I)] _dtypes: [StorageType; 2],
) {
    let row = CUBE_POS;
    if row >= num_rows {
        terminate!();
    }
    let base = mapped_row_offset(row, group_rows, group_stride, row_stride);
    let out_row = output_row(row, k as usize, inner);
    let width = input.vector_size();
    let unit = linear_unit();
    let step = units * vectors_per_unit * width;
    let mut candidates = Candidates::new(capacity, units);

    // 1. The row's top digits, counted in the buffer's histogram.
    count_digits::<F, N, Array<Vector<F, N>>>(
        input,
        base,
        stride,
        0usize,
        len,
        &candidates.histogram,
        ROW_DIGIT_SHIFT,
        largest,
        units,
        vectors_per_unit,
    );
    sync_cube();

    // 2. The pivot digit (from the scan's words past the cube scan's: the answer, then each
    //    step's place); the histogram is cleared for the bucket select.
    let (pivot, _) = digit_of_rank::<SharedMemory<Atomic<u32>>>(
        &candidates.histogram,
        0usize,
        k,
        &mut candidates.scan,
        units,
        BUCKETS,
        units,
    );
    let mut bin = unit;
    while bin < BUCKETS {
        candidates.histogram[bin].store(0u32);
        bin += units;
    }

    // 3. The entries at or above the pivot digit, appended to the row's list.
    let list = row * len;
    let mut stage_keys = SharedMemory::<u32>::new(stage);
    let mut stage_indices = SharedMemory::<u32>::new(stage);
    let mut count = 0u32;
    let mut first = 0usize;
    while first < len {
        let mut vectors = Array::<Vector<F, N>>::new(vectors_per_unit);
        load_vectors::<F, N, Array<Vector<F, N>>>(
            input,
            &mut vectors,
            base,
            stride,
            first,
            len,
            units,
            vectors_per_unit,
        );
        let passing = passing_bits::<F, N>(
            &vectors,
            first,
            len,
            pivot,
            ROW_DIGIT_SHIFT,
            largest,
            units,
            vectors_per_unit,
        );
        let (before, total) = cube_exclusive_sum(passing.count_ones(), &mut candidates.scan);
        if total > 0u32 {
            if unit == 0usize {
                candidates.scan[units] = count;
            }
            write_passing::<F, N, Array<u32>>(
                &vectors,
                passing,
                first,
                before,
                total,
                &candidates.scan,
                units,
                list,
                list_keys,
                list_indices,
                &mut stage_keys,
                &mut stage_indices,
                largest,
                units,
                vectors_per_unit,
                stage,
            );
            count += total;
        }
        first += step;
    }
    // The list's length is read back from shared memory rather than taken from the loop's
    // running sum: NVIDIA's Vulkan driver (580.159) gave wrong results from the running sum,
    // though every unit held the right value; the same value read from memory is right there
    // (NOTES, session 34).
    if unit == 0usize {
        candidates.scan[units] = count;
    }
    sync_storage();
    sync_cube();
    let count = candidates.scan[units];
    sync_cube();

    // 4. The list's top-k, by bucket (or offered, for a list of many ties).
    write_top_k_of_entries::<F, I, N, Array<u32>, Array<Vector<F, N>>, Array<F>, Array<I>>(
        &mut candidates,
        list_keys,
        list_indices,
        list,
        count as usize,
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

/// Queries a ranking cube takes at a time: one per unit of a group of consecutive units, so the
/// group's units read the same list entry at once (a broadcast load). 16 rather than a whole
/// 32-unit plane: twice the cubes per row share the queries (H200, one row of 128k at k = 4096:
/// 44.9 → 40.3 µs; 8 gave 40.7, and lost at k = 1024).
pub const RANK_QUERIES: usize = 16;

/// Tiled radix select, last launch: each row's top-k from its list of
/// `list_lengths[lengths_offset + row]` entries (`len` words per row, unordered), written sorted.
/// `cubes_per_row` cubes per row, part-major: cube `part × num_rows + row`.
///
/// A list of at most `rank_max` entries is ranked: each entry's place is the number of entries
/// that beat it (a larger key, or an equal key at a smaller index: a total order, so the places
/// are distinct and the result does not depend on the list's order), and the entries placed
/// under k are written there. The cubes of a row take [`RANK_QUERIES`] entries at a time, the
/// cube's units split the list between them. That spreads a short list's sort over the whole
/// device. A longer list would cost its square: the row's first cube takes it with its
/// candidate buffer of `capacity` entries ([`write_top_k_of_entries()`]: by bucket, or for a
/// list of many ties, offered and sorted).
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub fn filtered_top_k_kernel<F: Float, I: Int, N: Size>(
    input: &Array<Vector<F, N>>,
    list_lengths: &Array<u32>,
    list_keys: &Array<u32>,
    list_indices: &Array<u32>,
    values: &mut Array<F>,
    indices: &mut Array<I>,
    len: usize,
    stride: usize,
    group_rows: usize,
    group_stride: usize,
    row_stride: usize,
    k: u32,
    num_rows: usize,
    inner: usize,
    lengths_offset: usize,
    cubes_per_row: usize,
    rank_max: usize,
    #[comptime] largest: bool,
    #[comptime] units: usize,
    #[comptime] entries_per_unit: usize,
    #[comptime] capacity: usize,
    #[comptime] prime_per_unit: usize,
    #[define(F, I)] _dtypes: [StorageType; 2],
) {
    // Part-major: the rows' first cubes come first, so a list taken by its row's first cube
    // alone is never queued behind other rows' idle cubes.
    let part = CUBE_POS / num_rows;
    let row = CUBE_POS % num_rows;
    if part >= cubes_per_row {
        terminate!();
    }
    let base = mapped_row_offset(row, group_rows, group_stride, row_stride);
    let out_row = output_row(row, k as usize, inner);
    let list = row * len;
    let count = list_lengths[lengths_offset + row] as usize;
    // Declared whichever branch runs: the ranking exchanges its counts through the buffer's
    // scan words, so the cube needs no shared memory beyond the buffer's (sized to fit).
    let mut candidates = Candidates::new(capacity, units);
    if count > rank_max {
        if part == 0usize {
            write_top_k_of_entries::<F, I, N, Array<u32>, Array<Vector<F, N>>, Array<F>, Array<I>>(
                &mut candidates,
                list_keys,
                list_indices,
                list,
                count,
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
    } else {
        let groups = comptime!(units / RANK_QUERIES);
        let unit = linear_unit();
        let query_unit = unit % RANK_QUERIES;
        let group = unit / RANK_QUERIES;
        let slice = count.div_ceil(groups);
        let from = group * slice;
        let to = min(count, from + slice);
        let mut first = part * RANK_QUERIES;
        while first < count {
            let query = first + query_unit;
            let mut beaten = 0u32;
            if query < count {
                let key = list_keys[list + query];
                let index = list_indices[list + query];
                for j in from..to {
                    let other_key = list_keys[list + j];
                    let other_index = list_indices[list + j];
                    if beats(other_key, other_index, key, index) {
                        beaten += 1u32;
                    }
                }
            }
            candidates.scan[unit] = beaten;
            sync_cube();
            if group == 0usize && query < count {
                let mut place = 0u32;
                #[unroll]
                for g in 0..groups {
                    place += candidates.scan[g * RANK_QUERIES + query_unit];
                }
                if place < k {
                    write_result::<F, I, N, Array<Vector<F, N>>, Array<F>, Array<I>>(
                        list_keys[list + query],
                        list_indices[list + query],
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
            sync_cube();
            first += cubes_per_row * RANK_QUERIES;
        }
    }
}
