//! Importance sampling of rows: leverage scores (exact and sketched) and
//! l_p Lewis weights, the distributions behind row-sampling coresets.

pub mod leverage;
pub mod lewis;
