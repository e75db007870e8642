//! DiracNets v2 (Zagoruyko & Komodakis, arXiv 1706.00388; spec/diracnet.md).
mod conv;

pub use conv::{dirac_delta, dirac_kernel, normalize_filters, scaled_delta, DiracConv, DiracNames, DiracSpec};
