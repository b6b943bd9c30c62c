//! `#[cube]` code only: one file per algorithm, plus the pieces they share. Runtime-agnostic,
//! and written for any plane size (8 on lavapipe, 32 on NVIDIA, 64 on AMD).

pub mod candidates;
pub mod greedy;
pub mod philox;
pub mod primitives;
pub mod radix_select;
pub mod sampling;
pub mod sampling_candidates;
pub mod streaming;
pub mod two_stage;
pub mod wide;
