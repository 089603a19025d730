//! Signature recovery with OpenZeppelin `ECDSA.tryRecover` semantics: 65-byte `r ‖ s ‖ v`
//! signatures, low `s` only (no malleable twin), through the `ecrecover` precompile.

use ink::{
    Address,
    env::call::{ExecutionInput, build_call_sol},
    sol::FixedBytes,
};

use crate::{abi::Word, call::RawReturn};

/// secp256k1n / 2: a larger `s` is the malleable twin of a valid signature.
const HALF_ORDER: Word = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

/// Why a signature recovers no signer (OpenZeppelin's `ECDSA.RecoverError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoverError {
    /// Not a 65-byte signature.
    InvalidSignatureLength(usize),
    /// `s` above half the curve order.
    InvalidSignatureS(Word),
    /// No key recovers (bad `v`, `r` or `s`).
    InvalidSignature,
}

/// The signer of `digest` from a 65-byte `r ‖ s ‖ v` signature.
pub fn try_recover(digest: &Word, signature: &[u8]) -> Result<Address, RecoverError> {
    if signature.len() != 65 {
        return Err(RecoverError::InvalidSignatureLength(signature.len()));
    }
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&signature[..32]);
    s.copy_from_slice(&signature[32..64]);
    try_recover_vrs(digest, signature[64], &r, &s)
}

/// The signer of `digest` from `(v, r, s)`.
pub fn try_recover_vrs(digest: &Word, v: u8, r: &Word, s: &Word) -> Result<Address, RecoverError> {
    if *s > HALF_ORDER {
        return Err(RecoverError::InvalidSignatureS(*s));
    }
    match ecrecover(digest, v, r, s) {
        Some(signer) if signer != Address::zero() => Ok(signer),
        _ => Err(RecoverError::InvalidSignature),
    }
}

/// Where the `ecrecover` precompile lives.
const ECRECOVER: Address = ink::H160([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

/// The `ecrecover` precompile (address 1): `hash ‖ v ‖ r ‖ s` in, the signer as a word out, or
/// nothing when no key recovers.
fn ecrecover(digest: &Word, v: u8, r: &Word, s: &Word) -> Option<Address> {
    let result = build_call_sol::<ink::env::DefaultEnvironment>()
        .call(ECRECOVER)
        .exec_input(
            ExecutionInput::no_selector()
                .push_arg(FixedBytes(*digest))
                .push_arg(v)
                .push_arg(FixedBytes(*r))
                .push_arg(FixedBytes(*s)),
        )
        .returns::<RawReturn>()
        .try_invoke();
    match result {
        Ok(Ok(RawReturn {
            reverted: false,
            data,
        })) if data.len() == 32 => Some(Address::from_slice(&data[12..])),
        _ => None,
    }
}
