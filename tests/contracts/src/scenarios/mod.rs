//! Given/when/then scenarios, one public async function each, generic over the [`Chain`]
//! backend so every implementation of the ABI runs the same ones.
//!
//! [`Chain`]: crate::backend::Chain

pub mod adversarial;
pub mod registries;
pub mod settlement;
pub mod token;
