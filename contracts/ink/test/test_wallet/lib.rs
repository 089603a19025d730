//! TEST ONLY: a smart-contract wallet (ERC-1271) whose answer its owner can change, as
//! `contracts/evm/test/TestWallet.sol`. `Valid`: signatures by `owner` are valid. `Invalid`:
//! every signature is refused (a wallet that flips between signing and inclusion). `BurnGas`:
//! `isValidSignature` loops until it runs out of gas.
#![cfg_attr(not(feature = "std"), no_std, no_main)]

#[ink::contract]
mod test_wallet {
    use ink::{
        prelude::vec::Vec,
        sol::{DynBytes, FixedBytes},
    };
    use openledger_ink_support::{abi, call, ecdsa};

    const MAGIC: [u8; 4] = abi::selector(ink::keccak_256!("isValidSignature(bytes32,bytes)"));

    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ink::SolEncode, ink::SolDecode)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub enum Mode {
        #[default]
        Valid,
        Invalid,
        BurnGas,
    }

    #[ink::error]
    #[derive(Debug, PartialEq, Eq)]
    pub enum Error {
        NotOwner,
    }

    #[ink(storage)]
    pub struct TestWallet {
        owner: Address,
        mode: Mode,
    }

    impl TestWallet {
        #[ink(constructor)]
        pub fn new(owner: Address) -> Self {
            Self {
                owner,
                mode: Mode::Valid,
            }
        }

        #[ink(message)]
        pub fn owner(&self) -> Address {
            self.owner
        }

        #[ink(message)]
        pub fn mode(&self) -> Mode {
            self.mode
        }

        #[ink(message, name = "setMode")]
        pub fn set_mode(&mut self, mode: Mode) -> Result<(), Error> {
            if self.env().caller() != self.owner {
                return Err(Error::NotOwner);
            }
            self.mode = mode;
            Ok(())
        }

        /// Calls `target` with `data` from the wallet; a revert is bubbled up.
        #[ink(message)]
        pub fn execute(&mut self, target: Address, data: DynBytes) -> Result<DynBytes, Error> {
            if self.env().caller() != self.owner {
                return Err(Error::NotOwner);
            }
            match call::raw_call(target, &data.0) {
                Ok(result) => Ok(DynBytes(result)),
                Err(revert) => call::revert_with(&revert),
            }
        }

        #[ink(message, name = "isValidSignature")]
        pub fn is_valid_signature(
            &self,
            hash: FixedBytes<32>,
            signature: DynBytes,
        ) -> FixedBytes<4> {
            if self.mode == Mode::BurnGas {
                let mut burnt: Vec<u8> = Vec::new();
                loop {
                    burnt.push(core::hint::black_box(1));
                    burnt.clear();
                }
            }
            if self.mode == Mode::Invalid {
                return FixedBytes([0xff; 4]);
            }
            match ecdsa::try_recover(&hash.0, &signature.0) {
                Ok(signer) if signer == self.owner && self.owner != Address::zero() => {
                    FixedBytes(MAGIC)
                }
                _ => FixedBytes([0xff; 4]),
            }
        }
    }
}
