//! Pictures the papers draw: `checkered` renders the sampling patterns of checkered subsampling.
pub mod checkered;
