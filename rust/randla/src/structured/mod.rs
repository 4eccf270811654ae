//! Structured products: Monarch matrices and Householder products.
//!
//! [`monarch`] multiplies by and projects onto products of two block-diagonal
//! factors with permutations (Dao et al. 2022); [`householder`] applies
//! products of generalized reflections in compact WY form; [`delta_rule`]
//! runs the DeltaNet/DeltaProduct recurrence, token by token in fused
//! passes for short keys and chunkwise with the same WY/UT transform for
//! long ones.

pub mod delta_rule;
pub mod householder;
pub mod monarch;
