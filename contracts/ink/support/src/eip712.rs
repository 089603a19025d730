//! EIP-712 domain separators and digests (OpenZeppelin `EIP712`, without the cache).

use ink::{Address, U256};

use crate::abi::{self, Word};

/// `keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")`.
pub const DOMAIN_TYPEHASH: Word = ink::keccak_256!(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
);

/// The separator of the domain (`name`, `version`, the chain this runs on, `contract`).
pub fn domain_separator(name: &str, version: &str, contract: Address) -> Word {
    abi::hash_words(&[
        DOMAIN_TYPEHASH,
        abi::keccak(name.as_bytes()),
        abi::keccak(version.as_bytes()),
        abi::uint(chain_id()),
        abi::address(contract),
    ])
}

/// `keccak256("\x19\x01" ‖ domainSeparator ‖ structHash)`.
pub fn digest(domain_separator: &Word, struct_hash: &Word) -> Word {
    let mut data = [0u8; 66];
    data[0] = 0x19;
    data[1] = 0x01;
    data[2..34].copy_from_slice(domain_separator);
    data[34..].copy_from_slice(struct_hash);
    abi::keccak(&data)
}

/// The EIP-155 chain id (ink! does not wrap this host function).
pub fn chain_id() -> U256 {
    #[cfg(not(feature = "std"))]
    {
        use pallet_revive_uapi::{HostFn, HostFnImpl as api};
        let mut buf = [0u8; 32];
        api::chain_id(&mut buf);
        U256::from_little_endian(&buf)
    }
    #[cfg(feature = "std")]
    {
        // Off-chain unit tests: anvil's default, which the in-process runtime also uses.
        U256::from(31_337u64)
    }
}
