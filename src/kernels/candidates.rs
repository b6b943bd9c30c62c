//! A cube's candidate buffer: the entries that may still belong to the top-k of everything
//! offered so far, kept in shared memory, with a running threshold that rejects most new entries
//! with one compare. Shared by the streaming kernel and both stages of the two-stage kernel.
//!
//! An entry is an order key (see [`order_key`](fn@super::primitives::order_key)) and an index; entry
//! `a` beats entry `b` when `a.key > b.key`, or the keys are equal and `a.index < b.index`. This
//! order is total (indices are distinct), so the top-k is unique and a row gives the same answer
//! whichever cube or batch computes it.
//!
//! Offering a batch appends the entries that beat the threshold, with one cube barrier per batch.
//! When the buffer overflows, it is compacted: a radix select over the buffer (256 bins per pass
//! over the range of keys still in question, starting from the buffer's own smallest and largest
//! key; a shared-memory histogram per pass, two barriers per pass) narrows the k-th entry only
//! until at most 2k entries (or half the buffer, if fewer) survive, and the survivors' lower
//! bound becomes the new threshold. At the end the buffer is cut to what can be ranked whole, or,
//! when that is fewer than k entries, to exactly the k best (ties cut by index). Entries that
//! overflowed wait in their unit's registers and are offered again after the compaction, so
//! nothing is lost and the capacity is independent of the batch size.
//!
//! A fresh buffer accepts everything, so the first batch of a row would overflow it many times.
//! [`Candidates::prime`] avoids that: each unit's best few entries of a sample of the row go
//! through one histogram pass over their range, whose answer (a lower bound of their k-th best, so
//! of the row's) becomes the threshold before any entry is offered.

use crate::kernels::primitives::{converge_planes, cube_exclusive_sum, key_value, linear_unit};
use cubecl::prelude::*;

const BIN_BITS: u32 = 8;
const BINS: usize = 1 << BIN_BITS;
/// Copies of the histogram, one per `unit % COPIES`: the keys of a buffer crowd into a few bins,
/// and atomics on one shared-memory word serialise, so spreading a bin over 8 words (adjacent, in
/// different banks) cuts the collisions eightfold.
const COPIES: usize = 8;
const LO_KEY: usize = 0;
const LO_INDEX: usize = 1;
const DIGIT: usize = 2;
const ABOVE: usize = 3;
const IN_BIN: usize = 4;
/// The last offer round in which some entry found the buffer full (rounds count from 1).
const OVERFLOW_ROUND: usize = 5;
/// The entries a compaction starts from, read once from the atomic counter.
const ENTRIES: usize = 6;
/// The last meeting (rounds count from 1) before which some unit still had entries to offer.
const BUSY_ROUND: usize = 7;
const STATE_WORDS: usize = 8;
/// Words after the digit search's 256 counts for the totals of their planes (planes of 4 lanes
/// or more).
const PLANE_TOTALS: usize = BINS / 4;
/// Rank sort (each entry counts the entries that beat it) instead of the bitonic network when
/// `len² ≤ units × RANK_SORT_WORK`: one barrier instead of log² len.
const RANK_SORT_WORK: usize = 256;
/// A row's buffer of `n` entries is ranked whole, with no final compaction, when
/// `n² ≤ units × RANK_SELECT_WORK` (at most 64 compares per unit).
const RANK_SELECT_WORK: usize = 64;

/// The buckets of [`Candidates::take_bucketed`]: one per histogram word.
const BUCKET_BITS: u32 = 11;
/// The words of [`Candidates::histogram`].
pub const BUCKETS: usize = 1 << BUCKET_BITS;
const _: () = assert!(BUCKETS == BINS * COPIES);
/// The longest list [`Candidates::take_bucketed`] takes, in buffers: a radix select's list may
/// hold several times k (the pivot digit's bin of a uniform row of 128k holds 8k entries).
pub const BUCKET_LIST_MAX: usize = 4;
/// [`Candidates::take_bucketed`]'s answer for a list it leaves to [`offer_entries()`].
pub const NOT_BUCKETED: u32 = u32::MAX;
/// The compares per unit, on average, that ranking the kept entries within their buckets may
/// cost before [`Candidates::take_bucketed`] leaves a list to the buffer (the sum over the kept
/// buckets of their entries squared, each bucket's entries counted up to 4095).
pub const BUCKET_RANK_WORK: usize = 256;

/// The index of a padding entry: it loses to every real entry (indices stay below `u32::MAX`).
pub const PADDING_INDEX: u32 = u32::MAX;
/// The key of a padding entry: the smallest key.
pub const PADDING_KEY: u32 = 0;
/// [`Candidates::final_target`] when the buffer needs no cut.
pub const NO_CUT: u32 = u32::MAX;
/// [`Candidates::rank_batch`]'s count when too many entries passed its bound to rank them.
pub const NOT_RANKED: u32 = u32::MAX;
/// The most entries ranked by counting ([`count_beating()`]: each counts all the others), in
/// [`Candidates::rank_batch`] and the two-stage merge.
pub const RANK_COUNT_MAX: usize = 256;

/// Shared-memory bytes a [`Candidates`] buffer of `capacity` entries needs in a cube of `units`.
pub fn shared_bytes(capacity: usize, units: usize) -> usize {
    4 * (2 * capacity + 1 + BINS * COPIES + STATE_WORDS + units + 1 + PLANE_TOTALS)
}

/// The candidate buffer of one cube. Every unit of the cube must call every method (they
/// synchronise the cube), with the same arguments where they are shared. Needs at least 256 units.
#[derive(CubeType)]
pub struct Candidates {
    keys: SharedMemory<u32>,
    indices: SharedMemory<u32>,
    /// Entries appended since the last compaction, overflowed ones included.
    count: SharedMemory<Atomic<u32>>,
    /// [`BUCKETS`] counters, zero between method calls: a kernel may count in them between
    /// calls if it clears them again.
    pub histogram: SharedMemory<Atomic<u32>>,
    /// The threshold `(LO_KEY, LO_INDEX)`: an entry is kept if it beats or equals it. Then the
    /// digit search's answer.
    state: SharedMemory<u32>,
    /// The cube scans' words, at least one per unit: free between method calls, for a kernel's
    /// own exchanges (the cube's shared memory holds nothing else).
    pub scan: SharedMemory<u32>,
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
        let histogram = SharedMemory::<Atomic<u32>>::new(BINS * COPIES);
        if UNIT_POS == 0 {
            // Accept everything until the first compaction.
            state[LO_KEY] = PADDING_KEY;
            state[LO_INDEX] = PADDING_INDEX;
            state[OVERFLOW_ROUND] = 0u32;
            state[BUSY_ROUND] = 0u32;
            count[0usize].store(0u32);
        }
        // The histogram is zero between digit passes: the digit search clears what it read.
        let mut word = linear_unit();
        while word < BINS * COPIES {
            histogram[word].store(0u32);
            word += units;
        }
        sync_cube();
        Candidates {
            keys: SharedMemory::new(capacity),
            indices: SharedMemory::new(capacity),
            count,
            histogram,
            state,
            scan: SharedMemory::new(units + 1usize + PLANE_TOTALS),
            capacity,
            units,
        }
    }

    /// The running threshold `(key, index)`: an entry is kept if it beats or equals it.
    pub fn threshold(&self) -> (u32, u32) {
        (self.state[LO_KEY], self.state[LO_INDEX])
    }

    /// Appends one entry (that beats the threshold); `false` when the buffer is full, in which
    /// case the caller keeps the entry and reports the overflow to [`Candidates::meet`].
    pub fn push(&mut self, key: u32, index: u32) -> bool {
        let slot = self.count[0usize].fetch_add(1u32) as usize;
        let stored = slot < self.capacity;
        if stored {
            self.keys[slot] = key;
            self.indices[slot] = index;
        }
        stored
    }

    /// Meeting `round` of a cube whose units offer on their own between meetings (`round` above
    /// every earlier meeting's, the same in every unit): one cube barrier, then whether some unit
    /// found the buffer full (`stalled`), and whether some unit has entries left (`busy`; callers
    /// that loop until nothing overflows pass `false`). The words hold rounds, so they never need
    /// clearing. A unit may run ahead past a meeting, and write a later round, only when nobody
    /// stalled (after a "yes" the compaction's barriers hold everyone): the overflow word is read
    /// as "this round exactly", so a later round reads "no", the right answer. The busy word is
    /// read as "this round or later": a unit that ran ahead saw "busy", so "yes" is right.
    pub fn meet(&mut self, stalled: bool, busy: bool, round: u32) -> (bool, bool) {
        if stalled {
            self.state[OVERFLOW_ROUND] = round;
        }
        if busy {
            self.state[BUSY_ROUND] = round;
        }
        sync_cube();
        (
            self.state[OVERFLOW_ROUND] == round,
            self.state[BUSY_ROUND] >= round,
        )
    }

    /// Seeds the threshold of an empty buffer from a sample of the row: `batch` keys per unit, of
    /// which those with a bit in `valid` are real, each the key of a distinct element. Each unit
    /// contributes its best `per_unit` keys (all of them when `per_unit ≥ batch`), and a
    /// histogram pass over their range finds the 1/256 slice of it that holds the k-th best
    /// of them (a second pass narrows a wide slice). The slice's lower end becomes the threshold:
    /// at least k entries of the row reach it. Nothing is written to the buffer, and the
    /// threshold stays as it is when fewer than k keys are contributed.
    pub fn prime(
        &mut self,
        keys: &Array<u32>,
        valid: u32,
        k: u32,
        #[comptime] per_unit: usize,
        #[comptime] batch: usize,
    ) {
        let mut chosen = valid;
        if comptime!(per_unit < batch) {
            chosen = 0u32;
            for _ in 0..per_unit {
                let mut best_bit = 0u32;
                let mut best_key = 0u32;
                #[unroll]
                for j in 0..batch {
                    let bit = 1u32 << (j as u32);
                    if (valid & !chosen & bit) != 0u32 && (best_bit == 0u32 || keys[j] > best_key) {
                        best_bit = bit;
                        best_key = keys[j];
                    }
                }
                chosen |= best_bit;
            }
        }
        let mut hi = 0u32;
        let mut lo_inverted = 0u32;
        #[unroll]
        for j in 0..batch {
            if (chosen & (1u32 << (j as u32))) != 0u32 {
                hi = max(hi, keys[j]);
                lo_inverted = max(lo_inverted, !keys[j]);
            }
        }
        let (lo, hi, total) = self.cube_range(hi, lo_inverted, chosen.count_ones());
        if total >= k {
            // Two passes at most: the first one's slices are wide when the units' bests span
            // many binades, and a coarse threshold lets many entries through.
            let mut base = lo;
            let mut span = hi - lo;
            let mut remaining = k;
            let mut above_total = 0u32;
            let mut retained = total;
            let mut passes: u32 = 0u32;
            while span > 0u32 && retained > 2u32 * k && passes < 2u32 {
                let shift = slice_shift(span, BIN_BITS);
                #[unroll]
                for j in 0..batch {
                    if (chosen & (1u32 << (j as u32))) != 0u32 {
                        self.count_in_slice(keys[j], base, span, shift);
                    }
                }
                sync_cube();
                let (next_base, next_span, above, in_bin) =
                    self.narrow(base, span, shift, remaining);
                base = next_base;
                span = next_span;
                remaining -= above;
                above_total += above;
                retained = above_total + in_bin;
                passes += 1u32;
            }
            if UNIT_POS == 0 {
                self.state[LO_KEY] = base;
                self.state[LO_INDEX] = PADDING_INDEX;
            }
        }
        sync_cube();
    }

    /// Offers this unit's `batch` entries, of which those whose bit is set in `valid` are real,
    /// as offer round `round` (see [`Candidates::meet`]). Returns when every entry that beats
    /// the threshold is in the buffer, with the next round's number; after the `last` offer, the
    /// buffer is cut for [`order_top_k()`] ([`Candidates::after_meeting`]).
    #[allow(clippy::too_many_arguments)]
    pub fn offer(
        &mut self,
        keys: &Array<u32>,
        indices: &Array<u32>,
        valid: u32,
        k: u32,
        round: u32,
        last: bool,
        #[comptime] batch: usize,
        #[comptime] exact_cut: bool,
    ) -> u32 {
        let mut pending = valid;
        let mut round = round;
        loop {
            let (lo_key, lo_index) = self.threshold();
            let mut overflowed = false;
            #[unroll]
            for j in 0..batch {
                let bit = 1u32 << (j as u32);
                if (pending & bit) != 0u32 {
                    let key = keys[j];
                    let index = indices[j];
                    if key > lo_key || (key == lo_key && index < lo_index) {
                        if self.push(key, index) {
                            pending &= !bit;
                        } else {
                            overflowed = true;
                        }
                    } else {
                        pending &= !bit;
                    }
                }
            }
            let (full, _) = self.meet(overflowed, false, round);
            round += 1u32;
            // Full: make room, then offer again what did not fit.
            self.after_meeting(full, last, k, exact_cut);
            if !full {
                break;
            }
        }
        round
    }

    /// What an offer loop does after a meeting: when the buffer is `full`, cut it to make room
    /// ([`Candidates::room`]); after the `last` offer, the final cut ([`Candidates::final_target`]).
    /// Both through one call of [`Candidates::compact`]: every call is inlined, and its copies
    /// were most of a kernel's compilation time (lavapipe: the streaming kernel 1.5 → 0.8 s with
    /// this and one loop for its key and index passes).
    pub fn after_meeting(&mut self, full: bool, last: bool, k: u32, #[comptime] exact_cut: bool) {
        if full || last {
            let mut target = self.room(k);
            if !full {
                target = self.final_target(k, exact_cut);
            }
            if target != u32::cast_from(NO_CUT) {
                self.compact(k, target);
            }
        }
    }

    /// The final cut's target for [`order_top_k()`] ([`NO_CUT`] when none is needed): with
    /// `exact_cut`, exactly k. Otherwise, when there are too many entries to rank whole, what
    /// ranks whole if that is at least k (a histogram pass or two), else exactly k; except where
    /// that cut would be close to k (the whole-rank limit under 2k: several histogram passes) and
    /// the buffer fits one entry per unit: then it is sorted whole, uncut (H100, b=1 V=128k k=256
    /// in tiles of 16k: 33.2 → 30.2 µs; at k = 50 the cut and rank stay cheaper).
    pub fn final_target(&mut self, k: u32, #[comptime] exact_cut: bool) -> u32 {
        let entries = self.entries();
        let mut target = u32::cast_from(NO_CUT);
        if comptime!(exact_cut) {
            if entries > k {
                target = k;
            }
        } else {
            let limit = self.whole_limit();
            let sort_whole = limit < 2u32 * k && self.sorts_in_planes(entries);
            if entries >= k && entries > limit && !sort_whole {
                target = select(limit >= k, limit, k);
            }
        }
        target
    }

    /// Shrinks the buffer to at most `target` (≥ k) entries, keeping the best k, and raises the
    /// threshold to the survivors' lower bound (left as it was when nothing needs cutting). With
    /// `target == k` it keeps exactly the best `min(k, entries)`, and returns how many.
    pub fn compact(&mut self, k: u32, target: u32) -> u32 {
        let unit = linear_unit();
        let units = self.units;
        // One unit reads the counter: an atomic load is an atomic add on CUDA, and a thousand
        // of them on one word serialise.
        if UNIT_POS == 0 {
            self.state[ENTRIES] = min(self.count[0usize].load(), self.capacity as u32);
        }
        sync_cube();
        let n = self.state[ENTRIES];
        let len = n as usize;

        // The k-th key, 1/256 of the range `[base, base + span]` that holds it at a time, only
        // until few enough entries survive. The first range is the buffer's own: its keys share
        // their top bits, so digits of the key itself would put every entry in one bin for the
        // first passes, and those bins' atomics would all hit one word.
        let mut base = 0u32;
        let mut span = 0u32;
        let mut remaining = k;
        let mut above_total = 0u32;
        let mut retained = n;
        if n > target {
            let (lo, hi) = self.key_range(len);
            base = lo;
            span = hi - lo;
        }
        // Once the range is the exact k-th key (`span` = 0) but more entries equal it than may
        // stay, the same passes narrow the complements of those entries' indices (the smallest
        // indices stay), from the whole `u32` range: 8-bit digits, top down. One loop for both,
        // so the pass is compiled once (every `compact` is inlined).
        let mut prefix = 0u32;
        let mut by_index = false;
        loop {
            if span == 0u32 && retained > target && !by_index {
                prefix = base;
                by_index = true;
                base = 0u32;
                span = u32::cast_from(PADDING_INDEX);
            }
            if span == 0u32 || retained <= target {
                break;
            }
            let shift = slice_shift(span, BIN_BITS);
            let mut j = unit;
            while j < len {
                let key = self.keys[j];
                let mut value = key;
                if by_index {
                    value = !self.indices[j];
                }
                if !by_index || key == prefix {
                    self.count_in_slice(value, base, span, shift);
                }
                j += units;
            }
            sync_cube();
            let (next_base, next_span, above, in_bin) = self.narrow(base, span, shift, remaining);
            base = next_base;
            span = next_span;
            remaining -= above;
            above_total += above;
            retained = above_total + in_bin;
        }
        let mut lo_index = u32::cast_from(PADDING_INDEX);
        if by_index {
            lo_index = !base;
        } else {
            prefix = base;
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
            // Never lower the threshold (it only bounds the k-th best of everything offered).
            let old_key = self.state[LO_KEY];
            let old_index = self.state[LO_INDEX];
            if n > target && (prefix > old_key || (prefix == old_key && lo_index < old_index)) {
                self.state[LO_KEY] = prefix;
                self.state[LO_INDEX] = lo_index;
            }
        }
        sync_cube();
        total
    }

    /// The entries in the buffer, read once from the counter (one barrier). No entry may be
    /// offered between this and a compaction, which reads the same value again.
    pub fn entries(&mut self) -> u32 {
        if UNIT_POS == 0 {
            self.state[ENTRIES] = min(self.count[0usize].load(), self.capacity as u32);
        }
        sync_cube();
        self.state[ENTRIES]
    }

    /// Whether ranking all `n` entries of the buffer is cheaper than compacting it first.
    pub fn ranks_fit_whole(&self, n: u32) -> bool {
        n <= self.whole_limit()
    }

    /// The most entries [`Candidates::ranks_fit_whole`] accepts.
    pub fn whole_limit(&self) -> u32 {
        let limit = comptime!(whole_limit(self.units) as u32);
        limit.runtime()
    }

    /// Whether [`Candidates::rank`] (rather than [`Candidates::sort`]) should order `len` entries.
    pub fn ranks_fit(&self, len: u32) -> bool {
        let len = len as usize;
        len * len <= self.units * RANK_SORT_WORK && len <= BINS * COPIES
    }

    /// The rank of each of the first `len` entries (`len` ≤ `BINS × COPIES`), best first, for
    /// [`Candidates::rank_of`]: each entry counts the entries that beat it, split over the units.
    /// The order is total, so the ranks are a permutation. Uses the histogram's words: call it
    /// last.
    pub fn rank(&mut self, len: u32) {
        let unit = linear_unit();
        let units = self.units;
        let len = max(len as usize, 1usize);
        let parts = max(units / len, 1usize);
        let chunk = (len - 1usize) / parts + 1usize;
        let mut t = unit;
        while t < len * parts {
            let i = t % len;
            let part = t / len;
            let key = self.keys[i];
            let index = self.indices[i];
            let lo = part * chunk;
            let hi = min(lo + chunk, len);
            let mut above = 0u32;
            for j in lo..hi {
                let other_key = self.keys[j];
                let other_index = self.indices[j];
                if beats(other_key, other_index, key, index) {
                    above += 1u32;
                }
            }
            if above > 0u32 {
                self.histogram[i].fetch_add(above);
            }
            t += units;
        }
        sync_cube();
    }

    /// Entry `j`'s rank after [`Candidates::rank`].
    pub fn rank_of(&self, j: usize) -> u32 {
        self.histogram[j].load()
    }

    /// Moves the best `k` of the `len` entries that [`order_top_k()`] ordered (`by_rank` as it
    /// returned) to positions `0..k`, best first, for [`Candidates::key`] and
    /// [`Candidates::index`]. A ranked buffer holds at most one entry per unit (`len² ≤ units ×
    /// RANK_SORT_WORK` with at least 256 units), so each unit moves at most one entry; a sorted one
    /// is in place already.
    pub fn arrange(&mut self, len: usize, by_rank: bool, k: u32) {
        if by_rank {
            let j = linear_unit();
            let mut key = 0u32;
            let mut index = 0u32;
            let mut place = k;
            if j < len {
                key = self.keys[j];
                index = self.indices[j];
                place = self.rank_of(j);
            }
            sync_cube();
            if place < k {
                self.keys[place as usize] = key;
                self.indices[place as usize] = index;
            }
            sync_cube();
        }
    }

    /// Whether [`Candidates::sort`] orders `len` entries with one per unit (in registers and
    /// plane shuffles) rather than in shared memory.
    pub fn sorts_in_planes(&self, len: u32) -> bool {
        padded_len(len) as usize <= self.units
    }

    /// Sorts the first `len` entries, best first: a bitonic network over the next power of two
    /// (padding entries fill the rest; the capacity, at least 2k and at least the units, has
    /// room). When that fits one entry per unit, each unit holds its entry in registers and
    /// exchanges it with a partner in its own plane through plane shuffles, so only the steps
    /// whose partner lies in another plane (stride ≥ the plane size) go through shared memory:
    /// at 1024 units and planes of 32, 15 of 55 steps. Otherwise one compare-exchange per unit
    /// and pair in shared memory, a barrier per step: O(n log² n / units) work.
    pub fn sort(&mut self, len: u32) {
        if self.sorts_in_planes(len) {
            sort_in_planes(&mut self.keys, &mut self.indices, 0usize, len);
        } else {
            self.sort_in_shared(len);
        }
    }

    /// [`Candidates::sort`] in shared memory (more entries than units).
    fn sort_in_shared(&mut self, len: u32) {
        let unit = linear_unit();
        let units = self.units;
        let padded = padded_len(len) as usize;
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
                    let i_beats_p = beats(key_i, index_i, key_p, index_p);
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

    /// The exact order of the best entries of one batch held in registers (`keys` / `indices`,
    /// the entries whose bit is set in `valid`, a unit's entries in index order), when a cheap
    /// bound leaves at most one entry per unit: the fast path for a short tile at small k,
    /// where the buffer's priming, offer and cut are a chain of barrier phases (H100, 4096-element
    /// tiles in 256-unit cubes at k = 50: 9.3 µs, 1800 instructions per warp).
    ///
    /// Each unit takes its best entry; each plane's `⌈k / planes⌉`-th best of those is a bound
    /// with that many entries at or above it, so the worst of the planes' bounds has at least k.
    /// The entries at or above it (for random rows a few times k) go to the buffer's storage and
    /// each is ranked by counting the entries that beat it: the order is total, so the ranks are
    /// the sorted places. Returns `(count, rank, key, index)`: unit `u < count` holds the entry
    /// of rank `rank`; `count` is [`NOT_RANKED`] when more entries than units, the capacity or
    /// 256 pass, e.g. rows sorted along the tile or with many ties, and then the buffer is as it
    /// was (empty, still to be used). Every unit of the cube must call it.
    pub fn rank_batch(
        &mut self,
        keys: &Array<u32>,
        indices: &Array<u32>,
        valid: u32,
        k: u32,
        #[comptime] batch: usize,
    ) -> (u32, u32, u32, u32) {
        let units = self.units;
        let unit = linear_unit();
        let planes = (CUBE_DIM / PLANE_DIM) as usize;
        let mut best_key = u32::cast_from(PADDING_KEY);
        let mut best_index = u32::cast_from(PADDING_INDEX);
        #[unroll]
        for j in 0..batch {
            if (valid >> (j as u32)) & 1u32 != 0u32
                && beats(keys[j], indices[j], best_key, best_index)
            {
                best_key = keys[j];
                best_index = indices[j];
            }
        }
        // The lane's rank among its plane's bests (padding lanes are told apart by lane, so the
        // ranks are distinct and exactly one lane holds each).
        let lane = UNIT_POS_PLANE;
        let mut above = 0u32;
        converge_planes();
        for other in 0..PLANE_DIM {
            let other_key = plane_shuffle(best_key, other);
            let other_index = plane_shuffle(best_index, other);
            above += select(
                goes_before::<u32>(other_key, other_index, other, best_key, best_index, lane),
                1u32,
                0u32,
            );
        }
        let per_plane = (k - 1u32) / (planes as u32) + 1u32;
        // A plane with fewer lanes than that gives the padding entry, which bounds nothing.
        let chosen = above + 1u32 == per_plane;
        let bound_key = plane_sum(select(chosen, best_key, 0u32));
        let bound_index = !plane_sum(select(chosen, !best_index, 0u32));
        // Past the cube scan's words (at most a quarter of the units, plus one).
        let bounds = comptime!(units / 2);
        if lane == 0u32 {
            self.scan[bounds + 2usize * PLANE_POS as usize] = bound_key;
            self.scan[bounds + 2usize * PLANE_POS as usize + 1usize] = bound_index;
        }
        sync_cube();
        let mut lo_key = self.scan[bounds];
        let mut lo_index = self.scan[bounds + 1usize];
        for plane in 1..planes {
            let key = self.scan[bounds + 2usize * plane];
            let index = self.scan[bounds + 2usize * plane + 1usize];
            if beats(lo_key, lo_index, key, index) {
                lo_key = key;
                lo_index = index;
            }
        }
        // The entries at or above the bound, one bit each, so the gather below tests none again.
        let mut passing = 0u32;
        #[unroll]
        for j in 0..batch {
            if (valid >> (j as u32)) & 1u32 != 0u32 && !beats(lo_key, lo_index, keys[j], indices[j])
            {
                passing |= 1u32 << (j as u32);
            }
        }
        let (first, total) = cube_exclusive_sum(passing.count_ones(), &mut self.scan);
        let capacity = self.capacity;
        // (A multiple of four, for the ranking's padding.)
        let limit = comptime!((units.min(capacity).min(RANK_COUNT_MAX) & !3) as u32);
        let mut rank = 0u32;
        let mut key = u32::cast_from(PADDING_KEY);
        let mut index = u32::cast_from(PADDING_INDEX);
        if total <= limit {
            let mut slot = first as usize;
            #[unroll]
            for j in 0..batch {
                if (passing >> (j as u32)) & 1u32 != 0u32 {
                    self.keys[slot] = keys[j];
                    self.indices[slot] = indices[j];
                    slot += 1usize;
                }
            }
            let padded = pad_for_counting(&mut self.keys, &mut self.indices, 0usize, total);
            sync_cube();
            if (unit as u32) < total {
                key = self.keys[unit];
                index = self.indices[unit];
                rank = count_beating(&self.keys, &self.indices, 0usize, padded, key, index);
            }
        }
        (select(total <= limit, total, NOT_RANKED), rank, key, index)
    }

    /// Whether `n` entries fit the buffer at once: then priming would only cost a compaction.
    pub fn holds(&self, n: usize) -> bool {
        n <= self.capacity
    }

    /// The target of a compaction that makes room: 2k, or half the capacity if smaller. The
    /// survivors' lower bound becomes the threshold, so a target near k keeps the threshold near
    /// the k-th best seen so far (half the capacity left it near the capacity/2-th, which let
    /// about 1 % of a random row through the float compare at k = 50), and with the range
    /// binning of [`Candidates::compact`] it costs about one histogram pass either way.
    pub fn room(&self, k: u32) -> u32 {
        min((self.capacity / 2usize) as u32, 2u32 * k)
    }

    /// Entry `j`'s key.
    pub fn key(&self, j: usize) -> u32 {
        self.keys[j]
    }

    /// Entry `j`'s index.
    pub fn index(&self, j: usize) -> u32 {
        self.indices[j]
    }

    /// The smallest and the largest of the first `len` keys (one barrier).
    fn key_range(&mut self, len: usize) -> (u32, u32) {
        let mut hi = 0u32;
        let mut lo_inverted = 0u32;
        let mut j = linear_unit();
        while j < len {
            let key = self.keys[j];
            hi = max(hi, key);
            lo_inverted = max(lo_inverted, !key);
            j += self.units;
        }
        let (lo, hi, _) = self.cube_range(hi, lo_inverted, 0u32);
        (lo, hi)
    }

    /// The cube's smallest key, largest key and total count, from each unit's largest key `hi`,
    /// the complement of its smallest `lo_inverted` (0 and 0 for a unit without keys) and its
    /// `count` (one barrier).
    fn cube_range(&mut self, hi: u32, lo_inverted: u32, count: u32) -> (u32, u32, u32) {
        let (lo, hi, count, _) = self.cube_reduce(hi, lo_inverted, count, 0u32, false);
        (lo, hi, count)
    }

    /// [`Candidates::cube_range`], and with `wide` the maxima of `third` (then not summed) and
    /// `fourth` over the cube: four words per plane, which the scan's words hold for planes of 4
    /// lanes or more. Each plane reduces its units' values, the planes' results go to `scan`, and
    /// every plane reduces those again, so no unit waits on another's serial work. `plane_max`
    /// runs on `i32` with the top bit flipped, which orders like `u32` (lavapipe's `plane_max` on
    /// `u32` compares as signed).
    fn cube_reduce(
        &mut self,
        hi: u32,
        lo_inverted: u32,
        third: u32,
        fourth: u32,
        #[comptime] wide: bool,
    ) -> (u32, u32, u32, u32) {
        let planes = (CUBE_DIM / PLANE_DIM) as usize;
        let lanes = PLANE_DIM as usize;
        converge_planes();
        let plane_hi = plane_max(i32::reinterpret(hi ^ 0x8000_0000u32));
        let plane_lo = plane_max(i32::reinterpret(lo_inverted ^ 0x8000_0000u32));
        let plane_third = if comptime!(wide) {
            u32::reinterpret(plane_max(i32::reinterpret(third ^ 0x8000_0000u32)))
        } else {
            plane_sum(third)
        };
        let mut plane_fourth = 0u32;
        if comptime!(wide) {
            plane_fourth = u32::reinterpret(plane_max(i32::reinterpret(fourth ^ 0x8000_0000u32)));
        }
        if UNIT_POS_PLANE == 0 {
            self.scan[PLANE_POS as usize] = u32::reinterpret(plane_hi);
            self.scan[planes + PLANE_POS as usize] = u32::reinterpret(plane_lo);
            self.scan[2usize * planes + PLANE_POS as usize] = plane_third;
            if comptime!(wide) {
                self.scan[3usize * planes + PLANE_POS as usize] = plane_fourth;
            }
        }
        sync_cube();
        // (Plane 0's words to start with: cubecl-cpp cannot reinterpret a constant.)
        let mut cube_hi = i32::reinterpret(self.scan[0usize]);
        let mut cube_lo = i32::reinterpret(self.scan[planes]);
        let mut cube_third = 0u32;
        let mut cube_fourth = 0i32;
        if comptime!(wide) {
            cube_third = self.scan[2usize * planes];
            cube_fourth = i32::reinterpret(self.scan[3usize * planes]);
        }
        // The same steps in every lane (a plane op follows): a lane past the planes reads the
        // last one again, which leaves the maxima as they are and adds nothing to the sum.
        for step in 0..planes.div_ceil(lanes) {
            let at = step * lanes + UNIT_POS_PLANE as usize;
            let own = at < planes;
            let plane = min(at, planes - 1usize);
            cube_hi = max(cube_hi, i32::reinterpret(self.scan[plane]));
            cube_lo = max(cube_lo, i32::reinterpret(self.scan[planes + plane]));
            if comptime!(wide) {
                cube_third = u32::reinterpret(max(
                    i32::reinterpret(cube_third),
                    i32::reinterpret(self.scan[2usize * planes + plane]),
                ));
                cube_fourth = max(
                    cube_fourth,
                    i32::reinterpret(self.scan[3usize * planes + plane]),
                );
            } else {
                cube_third += select(own, self.scan[2usize * planes + plane], 0u32);
            }
        }
        let hi = u32::reinterpret(plane_max(cube_hi)) ^ 0x8000_0000u32;
        let lo = !(u32::reinterpret(plane_max(cube_lo)) ^ 0x8000_0000u32);
        let third = if comptime!(wide) {
            u32::reinterpret(plane_max(i32::reinterpret(cube_third))) ^ 0x8000_0000u32
        } else {
            plane_sum(cube_third)
        };
        let fourth = if comptime!(wide) {
            u32::reinterpret(plane_max(cube_fourth)) ^ 0x8000_0000u32
        } else {
            u32::cast_from(cube_fourth)
        };
        (lo, hi, third, fourth)
    }

    /// Counts `key` in a histogram pass over `[base, base + span]` in slices of `1 << shift`
    /// (keys outside the range are not counted).
    fn count_in_slice(&mut self, key: u32, base: u32, span: u32, shift: u32) {
        if key >= base {
            let offset = key - base;
            if offset <= span {
                let bin = (offset >> shift) as usize;
                self.histogram[bin * COPIES + linear_unit() % COPIES].fetch_add(1u32);
            }
        }
    }

    /// After a histogram pass over the range `[base, base + span]` in slices of `1 << shift`: the
    /// range of the slice holding the `remaining`-th entry, the entries above that slice, and the
    /// entries in it.
    fn narrow(&mut self, base: u32, span: u32, shift: u32, remaining: u32) -> (u32, u32, u32, u32) {
        let (digit, above, in_bin) = self.find_digit(remaining);
        (
            base + (digit << shift),
            min(span - (digit << shift), (1u32 << shift) - 1u32),
            above,
            in_bin,
        )
    }

    /// After a histogram pass: the digit of the bin, counted from the top, that holds the
    /// `remaining`-th entry, the entries in the bins above it, and the entries in it. A unit per
    /// bin sums (and clears, for the next pass) its copies and scans them within its plane; after
    /// a barrier each adds the totals of the planes before its own and the one whose bin holds
    /// the entry publishes it. Two barriers, no serial walk over the bins, and no unit issues more
    /// than 16 atomics (each is a read-modify-write on CUDA).
    fn find_digit(&mut self, remaining: u32) -> (u32, u32, u32) {
        let unit = linear_unit();
        let lanes = PLANE_DIM as usize;
        let mut count = 0u32;
        let mut above = 0u32;
        if unit < BINS {
            // Rank `unit` from the top is bin `BINS - 1 - unit`.
            let bin = BINS - 1usize - unit;
            #[unroll]
            for copy in 0..COPIES {
                count += self.histogram[bin * COPIES + copy].load();
                self.histogram[bin * COPIES + copy].store(0u32);
            }
            let inclusive = plane_inclusive_sum(count);
            above = inclusive - count;
            if UNIT_POS_PLANE == PLANE_DIM - 1 {
                self.scan[BINS + unit / lanes] = inclusive;
            }
        }
        sync_cube();
        if unit < BINS {
            for plane in 0..unit / lanes {
                above += self.scan[BINS + plane];
            }
            if above < remaining && remaining <= above + count {
                self.state[DIGIT] = (BINS - 1usize - unit) as u32;
                self.state[ABOVE] = above;
                self.state[IN_BIN] = count;
            }
        }
        sync_cube();
        (self.state[DIGIT], self.state[ABOVE], self.state[IN_BIN])
    }

    /// Moves the best k of a list of `count` entries in global memory (`entry_keys` and
    /// `entry_indices` from `first`; padding entries are skipped) into the empty buffer, grouped
    /// by bucket for [`Candidates::bucket_place`]. One histogram of the entries over [`BUCKETS`]
    /// buckets ([`Slicing`]) finds the bucket that holds the k-th entry; that bucket's entries and
    /// everything above are kept, each bucket's entries together, best bucket first. Returns
    /// `(kept, slicing)`: the entries kept (`kept` ≥ k unless the list is shorter) and the
    /// slicing, or [`NOT_BUCKETED`] as `kept`, with the buffer as it was, when the list is longer
    /// than [`BUCKET_LIST_MAX`] buffers, or the kept entries do not fit or crowd into so few
    /// buckets (ties) that ranking within them would cost more than [`BUCKET_RANK_WORK`] compares
    /// per unit: then the list may be offered instead. Three passes over the list (one read of
    /// its first [`HELD_ENTRIES`] per unit, held in registers; the rest read in each pass) and
    /// five barriers, against a sort of the kept entries (H200, 8 rows of 128k, k = 4096: the
    /// tiled radix select's last launch 59 µs sorting; the whole call 79.3 → 38.3 µs by bucket).
    /// After a take the histogram's words hold the buckets' ends, so nothing but
    /// [`Candidates::bucket_place`] may follow.
    pub fn take_bucketed<E: List<u32>>(
        &mut self,
        entry_keys: &E,
        entry_indices: &E,
        first: usize,
        count: usize,
        k: u32,
    ) -> (u32, Slicing) {
        let units = self.units;
        let unit = linear_unit();
        let mut taken = 0u32;
        // The list's range, for the slicing: largest key, smallest key, the key bits above the
        // low bits every key shares, the largest index.
        let mut lo_key = 0u32;
        let mut hi_key = 0u32;
        let mut key_bits = 0u32;
        let mut max_index = 0u32;
        if count > BUCKET_LIST_MAX * self.capacity {
            // A long list (a merge of many tiles' candidates) is cheaper offered: the primed
            // threshold rejects most of it in one pass, where buckets take three (H200, one row
            // of 1M at k = 256, two-stage: 57 µs offered, 85 by bucket).
            taken = NOT_BUCKETED;
        } else if count > 0usize {
            // The list's first `HELD_BATCHES` batches per unit stay in registers from the first
            // pass to the third: a list of up to `units × HELD_ENTRIES` entries is read once.
            let step = units * LIST_BATCH;
            let mut held_keys = Array::<u32>::new(HELD_ENTRIES);
            let mut held_indices = Array::<u32>::new(HELD_ENTRIES);
            let mut keys = Array::<u32>::new(LIST_BATCH);
            let mut indices = Array::<u32>::new(LIST_BATCH);
            let mut hi = 0u32;
            let mut lo_inverted = 0u32;
            let mut bits = 0u32;
            let mut index = 0u32;
            #[unroll]
            for b in 0..HELD_BATCHES {
                load_list_batch::<E>(
                    entry_keys,
                    entry_indices,
                    first,
                    unit + b * step,
                    count,
                    &mut held_keys,
                    &mut held_indices,
                    b * LIST_BATCH,
                    units,
                );
                let (h, l, kb, mi) = batch_range(
                    &held_keys,
                    &held_indices,
                    b * LIST_BATCH,
                    hi,
                    lo_inverted,
                    bits,
                    index,
                );
                hi = h;
                lo_inverted = l;
                bits = kb;
                index = mi;
            }
            let rest = unit + HELD_BATCHES * step;
            let mut j = rest;
            while j < count {
                load_list_batch::<E>(
                    entry_keys,
                    entry_indices,
                    first,
                    j,
                    count,
                    &mut keys,
                    &mut indices,
                    0usize,
                    units,
                );
                let (h, l, kb, mi) =
                    batch_range(&keys, &indices, 0usize, hi, lo_inverted, bits, index);
                hi = h;
                lo_inverted = l;
                bits = kb;
                index = mi;
                j += step;
            }
            let (lo, hi, bits, index) = self.cube_reduce(hi, lo_inverted, bits, index, true);
            lo_key = lo;
            hi_key = hi;
            key_bits = bits;
            max_index = index;
            let slicing = Slicing::new(lo, hi, bits, index);
            #[unroll]
            for b in 0..HELD_BATCHES {
                self.count_buckets(&held_keys, &held_indices, b * LIST_BATCH, &slicing);
            }
            j = rest;
            while j < count {
                load_list_batch::<E>(
                    entry_keys,
                    entry_indices,
                    first,
                    j,
                    count,
                    &mut keys,
                    &mut indices,
                    0usize,
                    units,
                );
                self.count_buckets(&keys, &indices, 0usize, &slicing);
                j += step;
            }
            // (Also ends `cube_range`'s reads of the scan words.)
            sync_cube();
            // Each unit takes a run of buckets from the top (the best first) and turns their
            // counts into the places where they start; the buckets that start before k are kept.
            let per_unit = comptime!(BUCKETS.div_ceil(units));
            let mut sum = 0u32;
            #[unroll]
            for t in 0..per_unit {
                let from_top = unit * per_unit + t;
                if from_top < BUCKETS {
                    sum += self.histogram[BUCKETS - 1usize - from_top].load();
                }
            }
            let (above, _) = cube_exclusive_sum(sum, &mut self.scan);
            let mut running = above;
            let mut kept = 0u32;
            let mut lowest_kept = 0u32;
            let mut work = 0u32;
            #[unroll]
            for t in 0..per_unit {
                let from_top = unit * per_unit + t;
                if from_top < BUCKETS {
                    let bucket = BUCKETS - 1usize - from_top;
                    let in_bucket = self.histogram[bucket].load();
                    if running < k {
                        let capped = min(in_bucket, 0xFFFu32);
                        work += capped * capped;
                        kept = running + in_bucket;
                        lowest_kept = !(bucket as u32);
                    }
                    // From here on the bucket's word is its next free place.
                    self.histogram[bucket].store(running);
                    running += in_bucket;
                }
            }
            // The places are visible after this barrier.
            let (cut, kept, work) = self.cube_range(kept, lowest_kept, min(work, 1u32 << 20u32));
            if kept as usize <= self.capacity && work as usize <= units * BUCKET_RANK_WORK {
                #[unroll]
                for b in 0..HELD_BATCHES {
                    self.move_kept(&held_keys, &held_indices, b * LIST_BATCH, &slicing, cut);
                }
                j = rest;
                while j < count {
                    load_list_batch::<E>(
                        entry_keys,
                        entry_indices,
                        first,
                        j,
                        count,
                        &mut keys,
                        &mut indices,
                        0usize,
                        units,
                    );
                    self.move_kept(&keys, &indices, 0usize, &slicing, cut);
                    j += step;
                }
                taken = kept;
            } else {
                taken = NOT_BUCKETED;
                // The histogram is zero between uses: each unit clears its own run.
                #[unroll]
                for t in 0..per_unit {
                    let from_top = unit * per_unit + t;
                    if from_top < BUCKETS {
                        self.histogram[BUCKETS - 1usize - from_top].store(0u32);
                    }
                }
            }
            sync_cube();
        }
        (taken, Slicing::new(lo_key, hi_key, key_bits, max_index))
    }

    /// [`Candidates::take_bucketed`]'s second pass over one batch (`keys` / `indices` from
    /// `slot`): each real entry counted in its bucket.
    fn count_buckets(
        &mut self,
        keys: &Array<u32>,
        indices: &Array<u32>,
        #[comptime] slot: usize,
        slicing: &Slicing,
    ) {
        #[unroll]
        for t in 0..LIST_BATCH {
            if indices[slot + t] != PADDING_INDEX {
                let bucket = slicing.bucket(keys[slot + t], indices[slot + t]) as usize;
                self.histogram[bucket].fetch_add(1u32);
            }
        }
    }

    /// [`Candidates::take_bucketed`]'s third pass over one batch: each real entry of a kept
    /// bucket (`cut` and above) moved to its bucket's next free place in the buffer.
    fn move_kept(
        &mut self,
        keys: &Array<u32>,
        indices: &Array<u32>,
        #[comptime] slot: usize,
        slicing: &Slicing,
        cut: u32,
    ) {
        #[unroll]
        for t in 0..LIST_BATCH {
            if indices[slot + t] != PADDING_INDEX {
                let bucket = slicing.bucket(keys[slot + t], indices[slot + t]);
                if bucket >= cut {
                    let place = self.histogram[bucket as usize].fetch_add(1u32) as usize;
                    self.keys[place] = keys[slot + t];
                    self.indices[place] = indices[slot + t];
                }
            }
        }
    }

    /// The place (0 for the best) of entry `j` of the buffer after [`Candidates::take_bucketed`]
    /// returned `(kept, slicing)` (`j < kept`): the entries of the buckets above its own, plus
    /// those of its bucket that beat it. A bucket's entries lie between the end of the bucket
    /// above it and its own end, which the bucket's word holds after the moves.
    pub fn bucket_place(&self, j: usize, slicing: &Slicing) -> u32 {
        let key = self.keys[j];
        let index = self.indices[j];
        let bucket = slicing.bucket(key, index) as usize;
        let end = self.histogram[bucket].load() as usize;
        let mut start = 0usize;
        if bucket + 1usize < BUCKETS {
            start = self.histogram[bucket + 1usize].load() as usize;
        }
        let mut place = start as u32;
        for other in start..end {
            if beats(self.keys[other], self.indices[other], key, index) {
                place += 1u32;
            }
        }
        place
    }
}

/// Entries of a list in global memory a unit reads at once in [`Candidates::take_bucketed`]'s
/// passes, so their loads are in flight together rather than one round trip per entry.
const LIST_BATCH: usize = 4;
/// Batches per unit that [`Candidates::take_bucketed`] keeps in registers across its three
/// passes (the rest of a longer list is read again in each): 8 entries per unit, so a radix
/// select's list at k = 4096 (~4.5k entries on N(0, σ) rows) in a 1024-unit cube is read once.
const HELD_BATCHES: usize = 2;
/// Entries per unit that [`Candidates::take_bucketed`] keeps in registers.
pub const HELD_ENTRIES: usize = HELD_BATCHES * LIST_BATCH;

/// Loads entries `j`, `j + units`, … (`LIST_BATCH` of them) of the list at `first` into `keys`
/// and `indices` from `slot`; those at or past `count` get [`PADDING_INDEX`] (and no key).
#[cube]
#[allow(clippy::too_many_arguments)]
fn load_list_batch<E: List<u32>>(
    entry_keys: &E,
    entry_indices: &E,
    first: usize,
    j: usize,
    count: usize,
    keys: &mut Array<u32>,
    indices: &mut Array<u32>,
    #[comptime] slot: usize,
    #[comptime] units: usize,
) {
    #[unroll]
    for t in 0..LIST_BATCH {
        let entry = j + t * units;
        indices[slot + t] = PADDING_INDEX;
        if entry < count {
            indices[slot + t] = entry_indices.read(first + entry);
            keys[slot + t] = entry_keys.read(first + entry);
        }
    }
}

/// [`Candidates::take_bucketed`]'s first pass over one batch (`keys` / `indices` from `slot`),
/// over real entries: the running largest key `hi`, complement of the smallest `lo_inverted`, key
/// bits above the low bits that every key shares (`key_bits`, see [`Slicing`]) and largest index.
#[cube]
fn batch_range(
    keys: &Array<u32>,
    indices: &Array<u32>,
    #[comptime] slot: usize,
    hi: u32,
    lo_inverted: u32,
    key_bits: u32,
    max_index: u32,
) -> (u32, u32, u32, u32) {
    let mut hi = hi;
    let mut lo_inverted = lo_inverted;
    let mut key_bits = key_bits;
    let mut max_index = max_index;
    #[unroll]
    for t in 0..LIST_BATCH {
        if indices[slot + t] != PADDING_INDEX {
            let key = keys[slot + t];
            hi = max(hi, key);
            lo_inverted = max(lo_inverted, !key);
            // A key from a narrower float ends in copies of its top bit's complement (see
            // `Slicing`): the bits above those are the ones it needs.
            let repeated = select(key >= 0x8000_0000u32, 0u32, 0xFFFF_FFFFu32);
            key_bits = max(key_bits, 32u32 - (key ^ repeated).trailing_zeros());
            max_index = max(max_index, indices[slot + t]);
        }
    }
    (hi, lo_inverted, key_bits, max_index)
}

/// How [`Candidates::take_bucketed`] cuts a list into [`BUCKETS`] buckets whose order agrees with
/// the entries' order (a better entry is never in a lower bucket), so each bucket's entries are
/// ranked among themselves alone ([`Candidates::bucket_place`]).
///
/// The key's low bits that every key of the list shares are dropped first: a bf16 value's order
/// key ends in 16 bits that are all zeros (or all ones, below the sign flip), an f16 one's in 13,
/// so a bf16 row's list takes 128 key values per binade however long the row is, each held by
/// many entries. Dropped bits keep keys apart: two keys with the same top bit have the same low
/// bits. The rest of the key is cut into equal power-of-two slices. Where its range takes fewer
/// than [`BUCKETS`] values, the bucket bits it leaves free go to the index, a smaller index in a
/// higher bucket, so the copies of one value spread over up to `BUCKETS / values` buckets rather
/// than crowd into one, whose ranking would cost the square of its entries.
#[derive(CubeType, Clone, Copy)]
pub struct Slicing {
    /// The low key bits dropped.
    low_bits: u32,
    /// The smallest key, its low bits dropped.
    lo: u32,
    /// The key bits below a slice's, its low bits dropped.
    shift: u32,
    /// The bucket bits the key leaves to the index.
    free: u32,
    /// The index bits below those that take the free bucket bits.
    index_shift: u32,
}

#[cube]
impl Slicing {
    /// The slicing of a list whose keys lie in `lo_key..=hi_key` and need their top `key_bits`
    /// bits (the rest shared by every key), and whose indices are at most `max_index`. A list with
    /// no entry (`lo_key` above `hi_key`) gets a slicing all of whose buckets are empty.
    pub fn new(lo_key: u32, hi_key: u32, key_bits: u32, max_index: u32) -> Slicing {
        let low_bits = 32u32 - max(key_bits, 1u32);
        let lo = lo_key >> low_bits;
        let span = select(hi_key >= lo_key, (hi_key >> low_bits) - lo, 0u32);
        let bits = 32u32 - span.leading_zeros();
        let free = BUCKET_BITS - min(bits, BUCKET_BITS);
        let index_bits = 32u32 - max_index.leading_zeros();
        Slicing {
            low_bits,
            lo,
            shift: slice_shift(span, BUCKET_BITS),
            free,
            index_shift: select(index_bits > free, index_bits - free, 0u32),
        }
    }

    /// The bucket of the entry `(key, index)` of the list.
    pub fn bucket(&self, key: u32, index: u32) -> u32 {
        let slice = ((key >> self.low_bits) - self.lo) >> self.shift;
        let free_mask = (1u32 << self.free) - 1u32;
        (slice << self.free) | (free_mask - (index >> self.index_shift))
    }
}

/// The shift that cuts the offsets `0..=span` into at most `2^slice_bits` slices of equal
/// power-of-two width: the bins of one histogram pass ([`BIN_BITS`]), or the buckets of
/// [`Candidates::take_bucketed`] ([`BUCKET_BITS`]).
#[cube]
fn slice_shift(span: u32, #[comptime] slice_bits: u32) -> u32 {
    let bits = 32u32 - span.leading_zeros();
    let mut shift = 0u32;
    if bits > slice_bits {
        shift = bits - slice_bits;
    }
    shift
}

/// Whether the entry `(key, index)` beats `(other_key, other_index)`: a larger key, or an equal
/// key and a smaller index (the buffer's total order).
#[cube]
pub fn beats(key: u32, index: u32, other_key: u32, other_index: u32) -> bool {
    key > other_key || (key == other_key && index < other_index)
}

/// Whether `(key, index)` at `position` goes before `(other_key, other_index)` at
/// `other_position`: it beats it, or equals it (paddings) and comes first, so that ranks among
/// entries held at distinct positions are distinct.
#[cube]
pub fn goes_before<P: Int>(
    key: u32,
    index: u32,
    position: P,
    other_key: u32,
    other_index: u32,
    other_position: P,
) -> bool {
    beats(key, index, other_key, other_index)
        || (key == other_key && index == other_index && position < other_position)
}

/// Pads the `total` entries at `offset` of `keys` / `indices` to a multiple of four with entries
/// that beat nothing, for [`count_beating()`], and returns that length. Units `total..` write the
/// padding: the cube needs a barrier before the entries are counted.
#[cube]
pub fn pad_for_counting(
    keys: &mut SharedMemory<u32>,
    indices: &mut SharedMemory<u32>,
    offset: usize,
    total: u32,
) -> usize {
    let padded = (total + 3u32) & !3u32;
    let unit = linear_unit();
    if (unit as u32) >= total && (unit as u32) < padded {
        keys[offset + unit] = u32::cast_from(PADDING_KEY);
        indices[offset + unit] = u32::cast_from(PADDING_INDEX);
    }
    padded as usize
}

/// How many of the `padded` entries at `offset` of `keys` / `indices` (see
/// [`pad_for_counting()`]) beat `(key, index)`: its place among them, the order being total.
/// Four entries per step, their loads in flight together: one at a time, the loop was a chain of
/// shared-memory round trips.
#[cube]
pub fn count_beating(
    keys: &SharedMemory<u32>,
    indices: &SharedMemory<u32>,
    offset: usize,
    padded: usize,
    key: u32,
    index: u32,
) -> u32 {
    let mut count = 0u32;
    let mut other = offset;
    let end = offset + padded;
    while other < end {
        let first = beats(keys[other], indices[other], key, index);
        let second = beats(keys[other + 1usize], indices[other + 1usize], key, index);
        let third = beats(keys[other + 2usize], indices[other + 2usize], key, index);
        let fourth = beats(keys[other + 3usize], indices[other + 3usize], key, index);
        count += select(first, 1u32, 0u32)
            + select(second, 1u32, 0u32)
            + select(third, 1u32, 0u32)
            + select(fourth, 1u32, 0u32);
        other += 4usize;
    }
    count
}

/// Sorts the entries `offset..offset + len` of `keys` / `indices` best first, with one entry per
/// unit: `len` rounded up to a power of two must not exceed the cube's units (nor the arrays'
/// room after `offset`). A bitonic network; each unit holds its entry in registers and exchanges
/// it with a partner in its own plane through plane shuffles, so only the steps whose partner
/// lies in another plane (stride ≥ the plane size) go through shared memory, with two barriers.
/// Every unit of the cube must call it.
#[cube]
pub fn sort_in_planes(
    keys: &mut SharedMemory<u32>,
    indices: &mut SharedMemory<u32>,
    offset: usize,
    len: u32,
) {
    let n = padded_len(len);
    let unit = linear_unit();
    let position = unit as u32;
    let active = position < n;
    let mut key = u32::cast_from(PADDING_KEY);
    let mut index = u32::cast_from(PADDING_INDEX);
    if position < len {
        key = keys[offset + unit];
        index = indices[offset + unit];
    }
    // After the lanes' different loads, before the first shuffle.
    converge_planes();
    let mut size = 2u32;
    while size <= n {
        let mut stride = size / 2u32;
        while stride > 0u32 {
            let mut other_key = key;
            let mut other_index = index;
            if stride >= PLANE_DIM {
                // Each unit's slot is read by its partner only: write, meet, read, meet before
                // the next write.
                if active {
                    keys[offset + unit] = key;
                    indices[offset + unit] = index;
                }
                sync_cube();
                if active {
                    let partner = offset + (position ^ stride) as usize;
                    other_key = keys[partner];
                    other_index = indices[partner];
                }
                sync_cube();
            } else {
                other_key = plane_shuffle_xor(key, stride);
                other_index = plane_shuffle_xor(index, stride);
            }
            // The lower place of a pair keeps the better entry in blocks sorted best first (the
            // last block, size = n, is one of them), the worse one otherwise.
            // (Selects, not a branch: the next shuffle needs the whole plane.)
            let mine_beats = beats(key, index, other_key, other_index);
            let lower = (position & stride) == 0u32;
            let best_first = (position & size) == 0u32;
            let swap = mine_beats != (lower == best_first);
            key = select(swap, other_key, key);
            index = select(swap, other_index, index);
            stride /= 2u32;
        }
        size *= 2u32;
    }
    if position < len {
        keys[offset + unit] = key;
        indices[offset + unit] = index;
    }
    sync_cube();
}

/// `len` rounded up to a power of two (1 for 0): the length of the bitonic network that sorts it.
#[cube]
pub fn padded_len(len: u32) -> u32 {
    let mut n = 1u32;
    if len > 1u32 {
        n = 1u32 << (32u32 - (len - 1u32).leading_zeros());
    }
    n
}

/// The most entries that [`Candidates::rank`] orders at once when a buffer is ranked whole:
/// `n² ≤ units × RANK_SELECT_WORK` (at most that many compares per unit), within the histogram.
fn whole_limit(units: usize) -> usize {
    (((units * RANK_SELECT_WORK) as f64).sqrt() as usize).min(BINS * COPIES)
}

/// Orders the entries of a buffer that its last offer cut ([`Candidates::final_target`]).
/// Returns how many entries there are and whether their order is their rank
/// ([`Candidates::rank_of`]; entries ranked k or more are not among the best k) or their position
/// (sorted best first). A buffer small enough (the usual case once the threshold is primed, or
/// after a cut to that size) is ranked whole instead of cut to exactly k: the entries ranked below
/// k are the top-k (the buffer holds every entry at or above the threshold, so at least k). For
/// larger k, a buffer of at most one entry per unit is sorted whole ([`Candidates::sort`] in
/// planes), with no cut.
#[cube]
pub fn order_top_k(candidates: &mut Candidates) -> (usize, bool) {
    let len = candidates.entries() as usize;
    // Ranking costs len² / units compares per unit, the sort in planes about log² len steps:
    // rank what ranks cheaply, sort in planes what fits, rank what is left if it is small.
    let by_rank = candidates.ranks_fit_whole(len as u32)
        || (!candidates.sorts_in_planes(len as u32) && candidates.ranks_fit(len as u32));
    if by_rank {
        candidates.rank(len as u32);
    } else {
        candidates.sort(len as u32);
    }
    (len, by_rank)
}

/// Offers the `count` entries `first..first + count` of `entry_keys` / `entry_indices`, in
/// batches of `entries_per_unit` per unit; padding entries (index [`PADDING_INDEX`]) are skipped.
/// The first batch primes the threshold with each unit's best `prime_per_unit` entries (none when
/// 0), unless all the entries fit the buffer.
#[cube]
// A comptime condition does not merge with a run-time one.
#[allow(clippy::too_many_arguments, clippy::collapsible_if)]
pub fn offer_entries<E: List<u32>>(
    candidates: &mut Candidates,
    entry_keys: &E,
    entry_indices: &E,
    first: usize,
    count: usize,
    k: u32,
    #[comptime] entries_per_unit: usize,
    #[comptime] prime_per_unit: usize,
) {
    let unit = linear_unit();
    let units = candidates.units;
    let mut round = 1u32;
    let mut batch_start = 0usize;
    while batch_start < count {
        let mut keys = Array::<u32>::new(entries_per_unit);
        let mut indices = Array::<u32>::new(entries_per_unit);
        let mut valid = 0u32;
        #[unroll]
        for e in 0..entries_per_unit {
            let j = batch_start + e * units + unit;
            if j < count {
                keys[e] = entry_keys.read(first + j);
                indices[e] = entry_indices.read(first + j);
                // A short tile's padding is no entry (and equal paddings would break the total
                // order that compactions rely on).
                if indices[e] != PADDING_INDEX {
                    valid |= 1u32 << (e as u32);
                }
            }
        }
        if comptime!(prime_per_unit > 0) {
            if batch_start == 0usize && !candidates.holds(count) {
                candidates.prime(&keys, valid, k, prime_per_unit, entries_per_unit);
            }
        }
        batch_start += units * entries_per_unit;
        round = candidates.offer(
            &keys,
            &indices,
            valid,
            k,
            round,
            batch_start >= count,
            entries_per_unit,
            false,
        );
    }
}

/// The place of entry `j` in the order that [`order_top_k()`] computed.
#[cube]
pub fn place_of(candidates: &Candidates, j: usize, by_rank: bool) -> usize {
    let mut place = j;
    if by_rank {
        place = candidates.rank_of(j) as usize;
    }
    place
}

/// The value of the entry `(key, index)` of the row at `base` (elements `stride` apart): taken
/// from its key, which gives the value back exactly except a NaN's payload and a zero's sign
/// (the key canonicalises them); only those are read again from the input.
#[cube]
pub fn entry_value<F: Float, N: Size, L: List<Vector<F, N>>>(
    key: u32,
    index: u32,
    input: &L,
    base: usize,
    stride: usize,
    #[comptime] largest: bool,
) -> F {
    let width = input.vector_size();
    let (value, not_nan) = key_value(key, largest);
    let mut zero_key = 0x8000_0000u32;
    if !largest {
        zero_key = !zero_key;
    }
    let mut result = F::cast_from(value);
    if !not_nan || key == zero_key {
        let position = base + index as usize * stride;
        result = input.read(position / width)[position % width];
    }
    result
}

/// Finishes a row: orders the entries of `candidates`, cut by its last offer ([`order_top_k()`]),
/// and writes the best k first into the contiguous outputs (from `out_row`, `inner` apart).
#[cube]
#[allow(clippy::too_many_arguments)]
pub fn write_top_k<
    F: Float,
    I: Int,
    N: Size,
    L: List<Vector<F, N>>,
    V: ListMut<F>,
    X: ListMut<I>,
>(
    candidates: &mut Candidates,
    k: u32,
    input: &L,
    base: usize,
    stride: usize,
    values: &mut V,
    indices: &mut X,
    out_row: usize,
    inner: usize,
    #[comptime] largest: bool,
    #[comptime] units: usize,
) {
    let (len, by_rank) = order_top_k(candidates);
    // (No slicing: the places come from the order.)
    let slicing = Slicing::new(1u32, 0u32, 0u32, 0u32);
    write_placed::<F, I, N, L, V, X>(
        candidates, len, by_rank, false, &slicing, k, input, base, stride, values, indices,
        out_row, inner, largest, units,
    );
}

/// Writes each of the first `len` entries of `candidates` whose place is below k at that place
/// in the contiguous outputs: with `bucketed`, the place [`Candidates::bucket_place`] gives under
/// `slicing`; else the one [`order_top_k()`] gave ([`place_of()`], `by_rank`).
#[cube]
#[allow(clippy::too_many_arguments)]
fn write_placed<F: Float, I: Int, N: Size, L: List<Vector<F, N>>, V: ListMut<F>, X: ListMut<I>>(
    candidates: &Candidates,
    len: usize,
    by_rank: bool,
    #[comptime] bucketed: bool,
    slicing: &Slicing,
    k: u32,
    input: &L,
    base: usize,
    stride: usize,
    values: &mut V,
    indices: &mut X,
    out_row: usize,
    inner: usize,
    #[comptime] largest: bool,
    #[comptime] units: usize,
) {
    let k_len = k as usize;
    let mut j = linear_unit();
    while j < len {
        let place = if comptime!(bucketed) {
            candidates.bucket_place(j, slicing) as usize
        } else {
            place_of(candidates, j, by_rank)
        };
        if place < k_len {
            write_result::<F, I, N, L, V, X>(
                candidates.key(j),
                candidates.index(j),
                place,
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
        j += units;
    }
}

/// Writes the entry `(key, index)` of the row at `base` as result `place` of its row in the
/// contiguous outputs, whose results start at `out_row`
/// ([`output_row()`](fn@crate::kernels::primitives::output_row)) and lie `inner` apart.
#[cube]
#[allow(clippy::too_many_arguments)]
pub fn write_result<
    F: Float,
    I: Int,
    N: Size,
    L: List<Vector<F, N>>,
    V: ListMut<F>,
    X: ListMut<I>,
>(
    key: u32,
    index: u32,
    place: usize,
    input: &L,
    base: usize,
    stride: usize,
    values: &mut V,
    indices: &mut X,
    out_row: usize,
    inner: usize,
    #[comptime] largest: bool,
) {
    let at = out_row + place * inner;
    values.write(
        at,
        entry_value::<F, N, L>(key, index, input, base, stride, largest),
    );
    indices.write(at, I::cast_from(index));
}

/// A list's top-k, written sorted: the best k of its `count` entries from `first` taken by
/// bucket and each placed by the entries that beat it ([`Candidates::take_bucketed`]), or, for a
/// list longer than a few buffers or whose kept entries would not fit the buffer or crowd into a
/// few buckets, offered to the buffer ([`offer_entries()`]) and sorted ([`write_top_k()`]).
#[cube]
#[allow(clippy::too_many_arguments)]
pub fn write_top_k_of_entries<
    F: Float,
    I: Int,
    N: Size,
    E: List<u32>,
    L: List<Vector<F, N>>,
    V: ListMut<F>,
    X: ListMut<I>,
>(
    candidates: &mut Candidates,
    entry_keys: &E,
    entry_indices: &E,
    first: usize,
    count: usize,
    k: u32,
    input: &L,
    base: usize,
    stride: usize,
    values: &mut V,
    indices: &mut X,
    out_row: usize,
    inner: usize,
    #[comptime] largest: bool,
    #[comptime] units: usize,
    #[comptime] entries_per_unit: usize,
    #[comptime] prime_per_unit: usize,
) {
    let (kept, slicing) = candidates.take_bucketed::<E>(entry_keys, entry_indices, first, count, k);
    if kept == NOT_BUCKETED {
        offer_entries::<E>(
            candidates,
            entry_keys,
            entry_indices,
            first,
            count,
            k,
            entries_per_unit,
            prime_per_unit,
        );
        write_top_k::<F, I, N, L, V, X>(
            candidates, k, input, base, stride, values, indices, out_row, inner, largest, units,
        );
    } else {
        let len = kept as usize;
        write_placed::<F, I, N, L, V, X>(
            candidates, len, false, true, &slicing, k, input, base, stride, values, indices,
            out_row, inner, largest, units,
        );
    }
}
