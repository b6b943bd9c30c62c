//! A cube's candidate buffer: the entries that may still belong to the top-k of everything
//! offered so far, kept in shared memory, with a running threshold that rejects most new entries
//! with one compare. Shared by the streaming kernel and both stages of the two-stage kernel.
//!
//! An entry is an order key (see [`order_key`](super::primitives::order_key)) and an index; entry
//! `a` beats entry `b` when `a.key > b.key`, or the keys are equal and `a.index < b.index`. This
//! order is total (indices are distinct), so the top-k is unique and a row gives the same answer
//! whichever cube or batch computes it.
//!
//! Offering a batch appends the entries that beat the threshold. When the buffer overflows, it is
//! compacted: a radix select over the buffer (8-bit digits, a shared-memory histogram per pass)
//! narrows the k-th entry only until at most half the buffer survives, and the survivors' lower
//! bound becomes the new threshold. The final compaction runs to the exact k-th entry, cutting
//! ties by index. Entries that overflowed wait in their unit's registers and are offered again
//! after the compaction, so nothing is lost and the capacity is independent of the batch size.

use crate::kernels::primitives::{cube_exclusive_sum, linear_unit};
use cubecl::prelude::*;

const BINS: usize = 256;
/// Copies of the histogram, one per `unit % COPIES`: the keys of a buffer crowd into a few bins,
/// and atomics on one shared-memory word serialise, so spreading a bin over 8 words (adjacent, in
/// different banks) cuts the collisions eightfold.
const COPIES: usize = 8;
const LO_KEY: usize = 0;
const LO_INDEX: usize = 1;
const DIGIT: usize = 2;
const ABOVE: usize = 3;
const IN_BIN: usize = 4;
const STATE_WORDS: usize = 5;

/// The index of a padding entry: it loses to every real entry (indices stay below `u32::MAX`).
pub const PADDING_INDEX: u32 = u32::MAX;
/// The key of a padding entry: the smallest key.
pub const PADDING_KEY: u32 = 0;

/// Shared-memory bytes a [`Candidates`] buffer of `capacity` entries needs in a cube of `units`.
pub fn shared_bytes(capacity: usize, units: usize) -> usize {
    4 * (2 * capacity + 1 + BINS * COPIES + STATE_WORDS + units + 1)
}

/// The candidate buffer of one cube. Every unit of the cube must call every method (they
/// synchronise the cube), with the same arguments where they are shared. Needs at least 256 units.
#[derive(CubeType)]
pub struct Candidates {
    keys: SharedMemory<u32>,
    indices: SharedMemory<u32>,
    /// Entries appended since the last compaction, overflowed ones included.
    count: SharedMemory<Atomic<u32>>,
    histogram: SharedMemory<Atomic<u32>>,
    /// The threshold `(LO_KEY, LO_INDEX)`: an entry is kept if it beats or equals it. Then the
    /// digit search's answer.
    state: SharedMemory<u32>,
    scan: SharedMemory<u32>,
    #[cube(comptime)]
    capacity: usize,
    #[cube(comptime)]
    units: usize,
}

#[cube]
impl Candidates {
    /// An empty buffer of `capacity` entries (at least twice k) in a cube of `units` units.
    pub fn new(#[comptime] capacity: usize, #[comptime] units: usize) -> Candidates {
        let mut state = SharedMemory::<u32>::new(STATE_WORDS);
        let count = SharedMemory::<Atomic<u32>>::new(1usize);
        if UNIT_POS == 0 {
            // Accept everything until the first compaction.
            state[LO_KEY] = PADDING_KEY;
            state[LO_INDEX] = PADDING_INDEX;
            count[0usize].store(0u32);
        }
        sync_cube();
        Candidates {
            keys: SharedMemory::new(capacity),
            indices: SharedMemory::new(capacity),
            count,
            histogram: SharedMemory::new(BINS * COPIES),
            state,
            scan: SharedMemory::new(units + 1usize),
            capacity,
            units,
        }
    }

    /// Offers this unit's `batch` entries, of which those whose bit is set in `valid` are real.
    /// Returns when every entry that beats the threshold is in the buffer.
    pub fn offer(
        &mut self,
        keys: &Array<u32>,
        indices: &Array<u32>,
        valid: u32,
        k: u32,
        #[comptime] batch: usize,
    ) {
        let mut pending = valid;
        loop {
            let lo_key = self.state[LO_KEY];
            let lo_index = self.state[LO_INDEX];
            #[unroll]
            for j in 0..batch {
                let bit = 1u32 << (j as u32);
                if (pending & bit) != 0u32 {
                    let key = keys[j];
                    let index = indices[j];
                    if key > lo_key || (key == lo_key && index < lo_index) {
                        let slot = self.count[0usize].fetch_add(1u32) as usize;
                        if slot < self.capacity {
                            self.keys[slot] = key;
                            self.indices[slot] = index;
                            pending &= !bit;
                        }
                    } else {
                        pending &= !bit;
                    }
                }
            }
            sync_cube();
            let appended = self.count[0usize].load() as usize;
            sync_cube();
            if appended <= self.capacity {
                break;
            }
            // Full: make room, then offer again what did not fit.
            self.compact(k, (self.capacity / 2) as u32);
        }
    }

    /// Shrinks the buffer to at most `target` (≥ k) entries, keeping the best k. With
    /// `target == k` it keeps exactly the best `min(k, entries)`, and returns how many.
    pub fn compact(&mut self, k: u32, target: u32) -> u32 {
        let unit = linear_unit();
        let units = self.units;
        let n = min(self.count[0usize].load(), self.capacity as u32);
        let len = n as usize;

        // The k-th key, 8 bits at a time from the top, only until few enough entries survive.
        let mut prefix = 0u32;
        let mut mask = 0u32;
        let mut remaining = k;
        let mut above_total = 0u32;
        let mut retained = n;
        let mut shift = 32u32;
        while shift > 0u32 && retained > target {
            shift -= 8u32;
            self.clear_histogram();
            let mut j = unit;
            while j < len {
                let key = self.keys[j];
                if (key & mask) == prefix {
                    let bin = ((key >> shift) & 0xFFu32) as usize;
                    self.histogram[bin * COPIES + unit % COPIES].fetch_add(1u32);
                }
                j += units;
            }
            sync_cube();
            let (digit, above, in_bin) = self.find_digit(remaining);
            prefix |= digit << shift;
            mask |= 0xFFu32 << shift;
            remaining -= above;
            above_total += above;
            retained = above_total + in_bin;
        }

        // `prefix` is now the exact k-th key, but more entries equal it than may stay: keep the
        // `remaining` with the smallest indices (the largest inverted index, digit by digit).
        let mut lo_index = u32::cast_from(PADDING_INDEX);
        if retained > target {
            let mut index_prefix = 0u32;
            let mut index_mask = 0u32;
            let mut index_shift = 32u32;
            while index_shift > 0u32 {
                index_shift -= 8u32;
                self.clear_histogram();
                let mut j = unit;
                while j < len {
                    let inverted = !self.indices[j];
                    if self.keys[j] == prefix && (inverted & index_mask) == index_prefix {
                        let bin = ((inverted >> index_shift) & 0xFFu32) as usize;
                        self.histogram[bin * COPIES + unit % COPIES].fetch_add(1u32);
                    }
                    j += units;
                }
                sync_cube();
                let (digit, above, _in_bin) = self.find_digit(remaining);
                index_prefix |= digit << index_shift;
                index_mask |= 0xFFu32 << index_shift;
                remaining -= above;
            }
            lo_index = !index_prefix;
        }

        // Keep the entries that beat or equal (prefix, lo_index): read this unit's share into
        // registers, then write the survivors back densely (the scan's barriers separate the two).
        let per_unit = comptime!(self.capacity.div_ceil(self.units));
        let mut kept_keys = Array::<u32>::new(per_unit);
        let mut kept_indices = Array::<u32>::new(per_unit);
        let mut kept = 0usize;
        #[unroll]
        for t in 0..per_unit {
            let j = t * units + unit;
            if j < len {
                let key = self.keys[j];
                let index = self.indices[j];
                if key > prefix || (key == prefix && index <= lo_index) {
                    kept_keys[kept] = key;
                    kept_indices[kept] = index;
                    kept += 1;
                }
            }
        }
        let (first, total) = cube_exclusive_sum(kept as u32, &mut self.scan);
        for t in 0..kept {
            self.keys[first as usize + t] = kept_keys[t];
            self.indices[first as usize + t] = kept_indices[t];
        }
        if UNIT_POS == 0 {
            self.count[0usize].store(total);
            self.state[LO_KEY] = prefix;
            self.state[LO_INDEX] = lo_index;
        }
        sync_cube();
        total
    }

    /// Sorts the first `len` entries, best first: a bitonic network over the next power of two
    /// (padding entries fill the rest; the capacity, at least 2k, has room), one compare-exchange
    /// per unit and pair, a barrier per step: O(n log² n / units) work.
    pub fn sort(&mut self, len: u32) {
        let unit = linear_unit();
        let units = self.units;
        let mut n = 1u32;
        if len > 1u32 {
            n = 1u32 << (32u32 - (len - 1u32).leading_zeros());
        }
        let padded = n as usize;
        let mut j = len as usize + unit;
        while j < padded {
            self.keys[j] = PADDING_KEY;
            self.indices[j] = PADDING_INDEX;
            j += units;
        }
        sync_cube();
        let pairs = padded / 2usize;
        let mut size = 2usize;
        while size <= padded {
            let mut stride = size / 2usize;
            while stride > 0usize {
                let mut t = unit;
                while t < pairs {
                    let i = 2usize * t - (t & (stride - 1usize));
                    let p = i + stride;
                    let key_i = self.keys[i];
                    let key_p = self.keys[p];
                    let index_i = self.indices[i];
                    let index_p = self.indices[p];
                    let i_beats_p = key_i > key_p || (key_i == key_p && index_i < index_p);
                    // Blocks alternate direction; the last one (size = n) puts the best first.
                    let best_first = (i & size) == 0usize;
                    if i_beats_p != best_first {
                        self.keys[i] = key_p;
                        self.keys[p] = key_i;
                        self.indices[i] = index_p;
                        self.indices[p] = index_i;
                    }
                    t += units;
                }
                sync_cube();
                stride /= 2usize;
            }
            size *= 2usize;
        }
    }

    /// Entry `j`'s key.
    pub fn key(&self, j: usize) -> u32 {
        self.keys[j]
    }

    /// Entry `j`'s index.
    pub fn index(&self, j: usize) -> u32 {
        self.indices[j]
    }

    fn clear_histogram(&mut self) {
        let mut word = linear_unit();
        while word < BINS * COPIES {
            self.histogram[word].store(0u32);
            word += self.units;
        }
        sync_cube();
    }

    /// After a histogram pass: the digit of the bin, counted from the top, that holds the
    /// `remaining`-th entry, the entries in the bins above it, and the entries in it. One bin per
    /// unit and a cube scan: no unit walks the 256 bins alone.
    fn find_digit(&mut self, remaining: u32) -> (u32, u32, u32) {
        let unit = linear_unit();
        let mut count = 0u32;
        if unit < BINS {
            let bin = BINS - 1usize - unit;
            #[unroll]
            for copy in 0..COPIES {
                count += self.histogram[bin * COPIES + copy].load();
            }
        }
        let (above, _total) = cube_exclusive_sum(count, &mut self.scan);
        if above < remaining && remaining <= above + count {
            self.state[DIGIT] = (BINS - 1usize - unit) as u32;
            self.state[ABOVE] = above;
            self.state[IN_BIN] = count;
        }
        sync_cube();
        (self.state[DIGIT], self.state[ABOVE], self.state[IN_BIN])
    }
}

/// Finishes a row: cuts `candidates` to the exact k best, sorts them and writes them best first
/// into the contiguous outputs (consecutive results `inner` apart), values read again from the
/// input so they keep their exact bits.
#[cube]
#[allow(clippy::too_many_arguments)]
pub fn write_top_k<F: Float, I: Int, N: Size>(
    candidates: &mut Candidates,
    k: u32,
    input: &Tensor<Vector<F, N>>,
    base: usize,
    stride: usize,
    values: &mut Tensor<F>,
    indices: &mut Tensor<I>,
    row: usize,
    inner: usize,
    #[comptime] units: usize,
) {
    let len = candidates.compact(k, k) as usize;
    let out_row = (row / inner) * (k as usize) * inner + row % inner;
    let width = input.vector_size();
    candidates.sort(len as u32);
    let mut j = linear_unit();
    while j < len {
        let rank = j;
        let index = candidates.index(j) as usize;
        let position = base + index * stride;
        values[out_row + rank * inner] = input[position / width][position % width];
        indices[out_row + rank * inner] = I::cast_from(index);
        j += units;
    }
}
