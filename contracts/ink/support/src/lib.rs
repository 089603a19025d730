//! What every OpenLedger ink! contract shares, so each contract crate holds only its own rules.
//!
//! - [`abi`]: Solidity ABI words and keccak-256, for EIP-712 struct hashes and commitments;
//! - [`eip712`]: the domain separator and typed-data digest;
//! - [`ecdsa`]: OpenZeppelin `ECDSA.tryRecover` semantics over the `ecrecover` precompile;
//! - [`call`]: raw-result calls to other contracts, and reverts with given data;
//! - [`erc20`]: OpenZeppelin `SafeERC20` transfers (a callee's revert is bubbled up as is);
//! - [`math`]: checked arithmetic that reverts with Solidity's `Panic(0x11)`, and `mulDiv`;
//! - `governed` (feature `governance`, so only governed contracts carry its events in their
//!   ABI): the governance role with its two-step transfer;
//! - [`scheduled`]: a value whose changes take effect later (the Solidity `Scheduled` library);
//! - [`types`]: the ABI structs and enums several contracts read.
//!
//! Everything matches the Solidity implementation in `contracts/evm` byte for byte where the
//! ABI can see it (revert data, digests), so both pass the same scenarios.
#![cfg_attr(not(feature = "std"), no_std)]

pub mod abi;
pub mod call;
pub mod ecdsa;
pub mod eip712;
pub mod erc20;
#[cfg(feature = "governance")]
pub mod governed;
pub mod math;
pub mod scheduled;
pub mod types;
