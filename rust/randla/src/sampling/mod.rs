//! Importance sampling of rows: leverage scores (exact and sketched) and
//! l_p Lewis weights, the distributions behind row-sampling coresets, and
//! l_p regression, which runs on such coresets.

pub mod leverage;
pub mod lewis;
pub mod lp_regression;
