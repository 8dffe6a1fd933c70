//! DSP shared by several nodes (not node code itself): the nodes' files import from here,
//! never from one another.

pub(crate) mod rng;
