//! DSP shared by several nodes (not node code itself): the nodes' files import from here,
//! never from one another.

pub mod biquad;
pub mod resample;
pub(crate) mod rng;
pub(crate) mod samples;
