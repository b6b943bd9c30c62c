//! The floor under a top-k's device time: kernels that only read the rows in a top-k strategy's
//! launch shape and keep each row's largest value (no index, no order, no threshold), so a
//! strategy's time above it is its own selection work. `floor/p=P` reads each row with one cube of
//! `P` planes, as streaming does, in one launch; `floor/w=W/p=P` reads tiles of `W` elements with
//! one cube each and reduces each row's tile maxima in a second launch, as two-stage does. Rows
//! of f32 in vectors of 4 (the row length a multiple of 4).

use crate::common::{Plain as B, Rt};
use burn::tensor::{Tensor, TensorPrimitive};
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

/// Loads each unit keeps in flight: the vectors of a step, all issued before any is used.
const IN_FLIGHT: usize = 8;

/// The largest value of each tile of `tile` vectors of rows of `len` vectors (a row's tiles are
/// consecutive cubes), into `maxima[CUBE_POS]`.
#[cube(launch_unchecked)]
fn tile_max_kernel<N: Size>(
    input: &Array<Vector<f32, N>>,
    maxima: &mut Array<f32>,
    len: usize,
    tile: usize,
    cubes: usize,
    #[comptime] units: usize,
) {
    let cube = CUBE_POS;
    if cube >= cubes {
        terminate!();
    }
    let tiles = len.div_ceil(tile);
    let row = cube / tiles;
    let start = row * len + (cube % tiles) * tile;
    let end = min(start + tile, row * len + len);
    let width = input.vector_size();
    // Every unit starts from the tile's first element (a float constant through `reinterpret`
    // does not compile in cubecl-cuda 0.10).
    let mut best = input[start][0];
    let mut j = start + UNIT_POS as usize;
    while j + (IN_FLIGHT - 1) * units < end {
        let mut loaded = Array::<Vector<f32, N>>::new(IN_FLIGHT);
        #[unroll]
        for s in 0..IN_FLIGHT {
            loaded[s] = input[j + s * units];
        }
        #[unroll]
        for s in 0..IN_FLIGHT {
            #[unroll]
            for e in 0..width {
                let x = loaded[s][e];
                best = select(x > best, x, best);
            }
        }
        j += IN_FLIGHT * units;
    }
    while j < end {
        let vector = input[j];
        #[unroll]
        for e in 0..width {
            let x = vector[e];
            best = select(x > best, x, best);
        }
        j += units;
    }
    let mut planes = SharedMemory::<f32>::new(comptime!(units));
    let plane_best = plane_max(best);
    if UNIT_POS_PLANE == 0 {
        planes[PLANE_POS as usize] = plane_best;
    }
    sync_cube();
    if UNIT_POS == 0 {
        let mut row_best = planes[0];
        for p in 1..(CUBE_DIM / PLANE_DIM) as usize {
            let x = planes[p];
            row_best = select(x > row_best, x, row_best);
        }
        maxima[cube] = row_best;
    }
}

/// The largest of each row's `tiles` maxima, into `maxima[CUBE_POS]`.
#[cube(launch_unchecked)]
fn row_max_kernel(tile_maxima: &Array<f32>, maxima: &mut Array<f32>, tiles: usize, rows: usize) {
    let row = CUBE_POS;
    if row >= rows {
        terminate!();
    }
    let mut best = tile_maxima[row * tiles];
    // One plane per cube, so the plane's max is the row's.
    let mut j = UNIT_POS as usize;
    while j < tiles {
        let x = tile_maxima[row * tiles + j];
        best = select(x > best, x, best);
        j += CUBE_DIM as usize;
    }
    let plane_best = plane_max(best);
    if UNIT_POS == 0 {
        maxima[row] = plane_best;
    }
}

/// A floor measurement's launch shape: `tile_width` elements per cube (`None`: a row per cube)
/// and `planes` planes per cube.
#[derive(Debug, Clone, Copy)]
pub struct Floor {
    pub tile_width: Option<usize>,
    pub planes: usize,
}

impl Floor {
    /// `floor/w=W/p=P` after the name (`w` optional; `p` 8 unless given).
    pub fn parse(spec: &str) -> Option<Self> {
        let mut parts = spec.split('/');
        if parts.next()? != "floor" {
            return None;
        }
        let mut floor = Floor {
            tile_width: None,
            planes: 8,
        };
        for part in parts {
            let (key, value) = part.split_once('=').expect("floor tuning as key=value");
            let value: usize = value.parse().expect("a number");
            match key {
                "w" => floor.tile_width = Some(value),
                "p" => floor.planes = value,
                other => panic!("floor takes w= and p=, got {other:?}"),
            }
        }
        Some(floor)
    }

    /// Checks once that the floor reads every element: its maxima match Burn's `max_dim`.
    pub fn check(&self, rows: Tensor<B, 2>) {
        let expected = rows.clone().max_dim(1).reshape([-1]).into_data();
        let got = self.run(rows).into_data();
        assert_eq!(got, expected, "the floor's row maxima");
    }

    /// Queues the floor's launches on `rows` (f32, contiguous, rows a multiple of 4 long) and
    /// returns each row's largest value.
    pub fn run(&self, rows: Tensor<B, 2>) -> Tensor<B, 1> {
        let [count, len] = rows.dims();
        let input: CubeTensor<_> = match rows.into_primitive() {
            TensorPrimitive::Float(tensor) => tensor,
            TensorPrimitive::QFloat(_) => unreachable!("the bench makes float rows"),
        };
        let client = input.client.clone();
        let device = input.device.clone();
        let width = 4usize;
        assert_eq!(len % width, 0, "the floor reads rows in vectors of 4");
        let hardware = &client.properties().hardware;
        let plane = hardware.plane_size_max as usize;
        let units = self.planes * plane;
        assert!(
            units <= hardware.max_units_per_cube as usize,
            "floor: {units} units exceed the device's cube"
        );
        let row_vectors = len / width;
        let tile = self
            .tile_width
            .map_or(row_vectors, |w| (w / width).clamp(1, row_vectors));
        let tiles = row_vectors.div_ceil(tile);
        let cubes = count * tiles;
        // One grid axis, within every runtime's limit.
        assert!(cubes <= u16::MAX as usize, "floor: {cubes} cubes, too many");
        let tile_maxima = Tensor::<B, 1>::empty([cubes], &device)
            .into_primitive()
            .tensor();
        let grid = cubecl::CubeCount::Static(cubes as u32, 1, 1);
        // SAFETY: every load is bounded by its tile's end inside the row, every write by the cube
        // and row counts.
        unsafe {
            tile_max_kernel::launch_unchecked::<Rt>(
                &client,
                grid,
                CubeDim::new_1d(units as u32),
                width,
                input.into_array_arg(),
                tile_maxima.clone().into_array_arg(),
                row_vectors,
                tile,
                cubes,
                units,
            );
        }
        if tiles == 1 {
            return Tensor::from_primitive(TensorPrimitive::Float(tile_maxima));
        }
        let maxima = Tensor::<B, 1>::empty([count], &device)
            .into_primitive()
            .tensor();
        // SAFETY: as above; each row reads its own `tiles` maxima.
        unsafe {
            row_max_kernel::launch_unchecked::<Rt>(
                &client,
                cubecl::CubeCount::Static(count as u32, 1, 1),
                CubeDim::new_1d(plane as u32),
                tile_maxima.into_array_arg(),
                maxima.clone().into_array_arg(),
                tiles,
                count,
            );
        }
        Tensor::from_primitive(TensorPrimitive::Float(maxima))
    }
}
