//! Building blocks shared by the top-k kernels: the order-preserving key and cube-wide scans.

use cubecl::prelude::*;

/// The order-preserving key of a value: a larger key ranks first.
///
/// The value is widened to f32 (exact for f16 and bf16), then its bits are mapped so that unsigned
/// comparison follows the float order: NaN (any payload) becomes the largest key, −0.0 and +0.0 the
/// same key. For `largest = false` the key is inverted, so the smallest value ranks first and NaN last.
/// NaN is tested on the bits, not with a float compare, so no fast-math compiler can fold it away.
#[cube]
pub fn order_key<F: Float>(value: F, #[comptime] largest: bool) -> u32 {
    let bits = u32::reinterpret(f32::cast_from(value));
    let magnitude = bits & 0x7FFF_FFFFu32;
    // Positive: set the sign bit. Negative: flip every bit. Then canonicalise NaN and zero.
    let mut key = select(bits == magnitude, bits | 0x8000_0000u32, !bits);
    if magnitude > 0x7F80_0000u32 {
        key = 0xFFFF_FFFFu32;
    }
    if magnitude == 0u32 {
        key = 0x8000_0000u32;
    }
    if !largest {
        key = !key;
    }
    key
}

/// The f32 that a threshold key stands for, for a float pre-filter: every value whose key is at
/// least `key` compares `>=` it (`<=` for `largest = false`), so a value that fails the compare
/// is rejected without computing its key. Returns `(value, usable)`: `usable` is false when the
/// value is a NaN (the NaN key, or the bottom key that accepts everything), and then no value
/// may be rejected by the compare. Flushing denormals to zero only turns strict inequalities
/// into equalities, which the pre-filter lets through, so it stays safe under fast math.
#[cube]
pub fn key_value(key: u32, #[comptime] largest: bool) -> (f32, bool) {
    let mut key = key;
    if !largest {
        key = !key;
    }
    let bits = select((key & 0x8000_0000u32) != 0u32, key & 0x7FFF_FFFFu32, !key);
    (
        f32::reinterpret(bits),
        (bits & 0x7FFF_FFFFu32) <= 0x7F80_0000u32,
    )
}

/// Offset of `row` in a buffer passed as an array (which carries no shape or strides): rows come
/// in groups of `group_rows`, groups `group_stride` apart and rows within a group `row_stride`
/// apart (the host's `RowMap`).
#[cube]
pub fn mapped_row_offset(
    row: usize,
    group_rows: usize,
    group_stride: usize,
    row_stride: usize,
) -> usize {
    (row / group_rows) * group_stride + (row % group_rows) * row_stride
}

/// The tile of a row that this cube handles, when each row of `len` elements is cut into tiles
/// of `tile_width` and a row's tiles are consecutive cubes: the row (at least the row count for
/// the grid's extra cubes, which exit), and the tile's first and past-the-end elements.
#[cube]
pub fn cube_tile(len: usize, tile_width: usize) -> (usize, usize, usize) {
    let tiles = len.div_ceil(tile_width);
    let row = CUBE_POS / tiles;
    let start = (CUBE_POS % tiles) * tile_width;
    (row, start, min(len, start + tile_width))
}

/// Loads this unit's `vectors_per_unit` vectors of a step of `units × vectors_per_unit` vectors
/// that starts at element `first` of the row at `base` (elements `stride` apart; with vectors
/// wider than one element the row is contiguous): vector `v` is the unit's `v`-th, `units`
/// vectors apart, so a plane's loads are contiguous. All loads are issued before any is used;
/// vectors at or past `end` are left as they were. `input` is a tensor or an array.
#[cube]
#[allow(clippy::too_many_arguments)]
pub fn load_vectors<F: Float, N: Size, L: List<Vector<F, N>>>(
    input: &L,
    vectors: &mut Array<Vector<F, N>>,
    base: usize,
    stride: usize,
    first: usize,
    end: usize,
    #[comptime] units: usize,
    #[comptime] vectors_per_unit: usize,
) {
    let width = input.vector_size();
    let unit = linear_unit();
    #[unroll]
    for v in 0..vectors_per_unit {
        let element = first + (v * units + unit) * width;
        if element < end {
            vectors[v] = input.read((base + element * stride) / width);
        }
    }
}

/// Where `row`'s k results start in the contiguous outputs: rows come in groups of `inner`
/// (the rows that differ only past the top-k dimension), a group's results `k × inner` words
/// long, and a row's results `inner` apart from there. Computed once per row, before any other
/// work, so each write only adds `place × inner`: with the division and remainder inside the
/// write loop, NVIDIA's Vulkan driver (580.159) wrote the two-stage merge's results through a
/// candidate buffer to wrong places, though the generated WGSL was right (NOTES, session 33).
#[cube]
pub fn output_row(row: usize, k: usize, inner: usize) -> usize {
    (row / inner) * k * inner + row % inner
}

/// A cube barrier where the device's plane ops need every lane of a plane to arrive together,
/// nothing elsewhere. Without CubeCL's `Plane::NonUniformControlFlow` (wgpu's WGSL compiler) a
/// plane op is only promised in uniform control flow: a SPIR-V subgroup op acts on the lanes that
/// run it together, and no driver is bound to bring a plane back together after a loop whose trip
/// count differs from lane to lane. CUDA's full-mask plane ops wait for the whole warp, so there
/// it costs nothing. Every unit of the cube must call it, from code that every unit reaches.
#[cube]
pub fn converge_planes() {
    let properties = cubecl::frontend::comptime::device_properties().comptime();
    if comptime!(
        !properties
            .features
            .plane
            .contains(cubecl::ir::features::Plane::NonUniformControlFlow)
    ) {
        sync_cube();
    }
}

/// The unit's rank inside the cube, counted plane by plane so that plane scans follow it.
#[cube]
pub fn linear_unit() -> usize {
    (PLANE_POS * PLANE_DIM + UNIT_POS_PLANE) as usize
}

/// Cube-wide exclusive prefix sum of one `u32` per unit, in [`linear_unit()`] order.
///
/// Returns `(prefix, total)`. Every unit of the cube must call it (it synchronises the cube).
/// `scratch` needs `CUBE_DIM / PLANE_DIM + 1` words; any plane size works.
#[cube]
pub fn cube_exclusive_sum(value: u32, scratch: &mut SharedMemory<u32>) -> (u32, u32) {
    let plane_count = (CUBE_DIM / PLANE_DIM) as usize;
    converge_planes();
    let inclusive = plane_inclusive_sum(value);
    if UNIT_POS_PLANE == PLANE_DIM - 1 {
        scratch[PLANE_POS as usize] = inclusive;
    }
    sync_cube();
    if PLANE_POS == 0 {
        scan_plane_totals(scratch, 0usize, plane_count);
    }
    sync_cube();
    let prefix = scratch[PLANE_POS as usize] + inclusive - value;
    let total = scratch[plane_count];
    sync_cube();
    (prefix, total)
}

/// Run by the first plane of a cube: turns the `count` plane totals at `scratch[first..]` into
/// exclusive prefix sums and writes their sum at `scratch[first + count]`. Each lane takes a
/// contiguous run of the totals (one per lane on NVIDIA and AMD, 16 per lane at 1024 units with
/// planes of 8), so no unit walks them all: a serial walk of 32 totals is a chain of 32 dependent
/// shared-memory round trips that the whole cube waits for. Every lane takes the same number of
/// steps, reading a clamped total and adding it only where it is its own, so the plane scan that
/// follows has the whole plane (see [`converge_planes()`]; a barrier cannot serve here, where only
/// the first plane runs).
#[cube]
pub fn scan_plane_totals(scratch: &mut SharedMemory<u32>, first: usize, count: usize) {
    let lanes = PLANE_DIM as usize;
    let per_lane = (count - 1usize) / lanes + 1usize;
    let lo = UNIT_POS_PLANE as usize * per_lane;
    let mut sum = 0u32;
    for step in 0..per_lane {
        let plane = lo + step;
        let total = scratch[first + min(plane, count - 1usize)];
        sum += select(plane < count, total, 0u32);
    }
    let lane_inclusive = plane_inclusive_sum(sum);
    let mut running = lane_inclusive - sum;
    for step in 0..per_lane {
        let plane = lo + step;
        if plane < count {
            let total = scratch[first + plane];
            scratch[first + plane] = running;
            running += total;
        }
    }
    if UNIT_POS_PLANE == PLANE_DIM - 1 {
        scratch[first + count] = lane_inclusive;
    }
}

/// Cube-wide bitwise OR of one `u32` per unit. Every unit must call it; `scratch` needs
/// `CUBE_DIM + 1` words.
///
/// Plain shared memory rather than plane ops: on lavapipe `plane_max` compares `u32` as signed, and
/// there is no plane OR; this runs once per row, so one unit folding the words is cheap enough.
#[cube]
pub fn cube_or(value: u32, scratch: &mut SharedMemory<u32>) -> u32 {
    let units = CUBE_DIM as usize;
    scratch[UNIT_POS as usize] = value;
    sync_cube();
    if UNIT_POS == 0 {
        let mut bits = 0u32;
        for unit in 0usize..units {
            bits |= scratch[unit];
        }
        scratch[units] = bits;
    }
    sync_cube();
    let bits = scratch[units];
    sync_cube();
    bits
}
