//! Solidity ABI words (`abi.encode` of static values) and keccak-256.

use ink::{
    Address, U256,
    env::hash::{HashOutput, Keccak256},
    prelude::vec::Vec,
};

/// A 32-byte word.
pub type Word = [u8; 32];

/// keccak-256 of `data`.
pub fn keccak(data: &[u8]) -> Word {
    let mut out = <Keccak256 as HashOutput>::Type::default();
    ink::env::hash_bytes::<Keccak256>(data, &mut out);
    out
}

/// `abi.encode(address)`.
pub fn address(a: Address) -> Word {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(a.as_bytes());
    w
}

/// `abi.encode(uint256)`.
pub fn uint(v: U256) -> Word {
    v.to_big_endian()
}

/// `abi.encode(uintN)` for N <= 64.
pub fn small(v: u64) -> Word {
    let mut w = [0u8; 32];
    w[24..].copy_from_slice(&v.to_be_bytes());
    w
}

/// `abi.encode(bool)`.
pub fn boolean(b: bool) -> Word {
    small(b as u64)
}

/// keccak-256 of the concatenated words: `keccak256(abi.encode(w0, w1, ...))` for static
/// values, and `keccak256(abi.encodePacked(bytes32[]))`.
pub fn hash_words(words: &[Word]) -> Word {
    let mut data = Vec::with_capacity(words.len() * 32);
    for w in words {
        data.extend_from_slice(w);
    }
    keccak(&data)
}

/// The 4-byte selector of a Solidity signature, e.g. `transfer(address,uint256)`.
pub const fn selector(hash: Word) -> [u8; 4] {
    [hash[0], hash[1], hash[2], hash[3]]
}
