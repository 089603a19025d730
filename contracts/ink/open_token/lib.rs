//! OPEN, the token every inference is paid in (`IOpenToken`): an ERC-20 with 18 decimals and
//! EIP-2612 `permit`, the whole supply minted once at deployment to a distribution address; no
//! mint, no burn, no owner. Reverts with OpenZeppelin's `IERC20Errors`, as the Solidity
//! implementation does.
#![cfg_attr(not(feature = "std"), no_std, no_main)]

#[ink::contract]
mod open_token {
    use ink::{U256, prelude::string::String, sol::FixedBytes, storage::Mapping};
    use openledger_ink_support::{
        abi,
        ecdsa::{self, RecoverError},
        eip712,
    };

    const NAME: &str = "OpenLedger";
    const VERSION: &str = "1";
    const PERMIT_TYPEHASH: abi::Word = ink::keccak_256!(
        "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
    );

    /// `event Transfer(address indexed from, address indexed to, uint256 value)`
    #[ink::event]
    pub struct Transfer {
        #[ink(topic)]
        from: Address,
        #[ink(topic)]
        to: Address,
        value: U256,
    }

    /// `event Approval(address indexed owner, address indexed spender, uint256 value)`
    #[ink::event]
    pub struct Approval {
        #[ink(topic)]
        owner: Address,
        #[ink(topic)]
        spender: Address,
        value: U256,
    }

    /// OpenZeppelin's `IERC20Errors`, `ERC20Permit` and `ECDSA` errors.
    #[ink::error]
    #[derive(Debug, PartialEq, Eq)]
    #[allow(clippy::enum_variant_names)]
    pub enum Error {
        ERC20InsufficientBalance {
            sender: Address,
            balance: U256,
            needed: U256,
        },
        ERC20InvalidSender {
            sender: Address,
        },
        ERC20InvalidReceiver {
            receiver: Address,
        },
        ERC20InsufficientAllowance {
            spender: Address,
            allowance: U256,
            needed: U256,
        },
        ERC20InvalidApprover {
            approver: Address,
        },
        ERC20InvalidSpender {
            spender: Address,
        },
        ERC2612ExpiredSignature {
            deadline: U256,
        },
        ERC2612InvalidSigner {
            signer: Address,
            owner: Address,
        },
        ECDSAInvalidSignature,
        ECDSAInvalidSignatureLength {
            length: U256,
        },
        ECDSAInvalidSignatureS {
            s: FixedBytes<32>,
        },
    }

    #[ink(storage)]
    pub struct OpenToken {
        total_supply: U256,
        balances: Mapping<Address, U256>,
        allowances: Mapping<(Address, Address), U256>,
        nonces: Mapping<Address, U256>,
    }

    impl OpenToken {
        /// Mints `supply` to `distribution`, once.
        #[ink(constructor)]
        pub fn new(distribution: Address, supply: U256) -> Result<Self, Error> {
            if distribution == Address::zero() {
                return Err(Error::ERC20InvalidReceiver {
                    receiver: distribution,
                });
            }
            let mut balances = Mapping::new();
            balances.insert(distribution, &supply);
            Self::env().emit_event(Transfer {
                from: Address::zero(),
                to: distribution,
                value: supply,
            });
            Ok(Self {
                total_supply: supply,
                balances,
                allowances: Mapping::new(),
                nonces: Mapping::new(),
            })
        }

        #[ink(message)]
        pub fn name(&self) -> String {
            String::from(NAME)
        }

        #[ink(message)]
        pub fn symbol(&self) -> String {
            String::from("OPEN")
        }

        #[ink(message)]
        pub fn decimals(&self) -> u8 {
            18
        }

        #[ink(message, name = "totalSupply")]
        pub fn total_supply(&self) -> U256 {
            self.total_supply
        }

        #[ink(message, name = "balanceOf")]
        pub fn balance_of(&self, account: Address) -> U256 {
            self.balances.get(account).unwrap_or_default()
        }

        #[ink(message)]
        pub fn allowance(&self, owner: Address, spender: Address) -> U256 {
            self.allowances.get((owner, spender)).unwrap_or_default()
        }

        #[ink(message)]
        pub fn transfer(&mut self, to: Address, value: U256) -> Result<bool, Error> {
            self.move_tokens(self.env().caller(), to, value)?;
            Ok(true)
        }

        #[ink(message)]
        pub fn approve(&mut self, spender: Address, value: U256) -> Result<bool, Error> {
            self.set_allowance(self.env().caller(), spender, value, true)?;
            Ok(true)
        }

        #[ink(message, name = "transferFrom")]
        pub fn transfer_from(
            &mut self,
            from: Address,
            to: Address,
            value: U256,
        ) -> Result<bool, Error> {
            let spender = self.env().caller();
            let current = self.allowance(from, spender);
            if current != U256::MAX {
                if current < value {
                    return Err(Error::ERC20InsufficientAllowance {
                        spender,
                        allowance: current,
                        needed: value,
                    });
                }
                self.set_allowance(from, spender, current - value, false)?;
            }
            self.move_tokens(from, to, value)?;
            Ok(true)
        }

        /// EIP-2612: sets `spender`'s allowance over `owner`'s tokens from `owner`'s signature.
        #[ink(message)]
        #[allow(clippy::too_many_arguments)]
        pub fn permit(
            &mut self,
            owner: Address,
            spender: Address,
            value: U256,
            deadline: U256,
            v: u8,
            r: FixedBytes<32>,
            s: FixedBytes<32>,
        ) -> Result<(), Error> {
            if U256::from(self.env().block_timestamp()) > deadline {
                return Err(Error::ERC2612ExpiredSignature { deadline });
            }
            let nonce = self.nonces(owner);
            self.nonces.insert(owner, &(nonce + U256::one()));
            let struct_hash = abi::hash_words(&[
                PERMIT_TYPEHASH,
                abi::address(owner),
                abi::address(spender),
                abi::uint(value),
                abi::uint(nonce),
                abi::uint(deadline),
            ]);
            let digest = eip712::digest(&self.separator(), &struct_hash);
            let signer = ecdsa::try_recover_vrs(&digest, v, &r.0, &s.0).map_err(|e| match e {
                RecoverError::InvalidSignatureS(s) => {
                    Error::ECDSAInvalidSignatureS { s: FixedBytes(s) }
                }
                RecoverError::InvalidSignatureLength(n) => Error::ECDSAInvalidSignatureLength {
                    length: U256::from(n),
                },
                RecoverError::InvalidSignature => Error::ECDSAInvalidSignature,
            })?;
            if signer != owner {
                return Err(Error::ERC2612InvalidSigner { signer, owner });
            }
            self.set_allowance(owner, spender, value, true)
        }

        #[ink(message)]
        pub fn nonces(&self, owner: Address) -> U256 {
            self.nonces.get(owner).unwrap_or_default()
        }

        #[ink(message, name = "DOMAIN_SEPARATOR")]
        pub fn domain_separator(&self) -> FixedBytes<32> {
            FixedBytes(self.separator())
        }

        fn separator(&self) -> abi::Word {
            eip712::domain_separator(NAME, VERSION, self.env().address())
        }

        fn move_tokens(&mut self, from: Address, to: Address, value: U256) -> Result<(), Error> {
            if from == Address::zero() {
                return Err(Error::ERC20InvalidSender { sender: from });
            }
            if to == Address::zero() {
                return Err(Error::ERC20InvalidReceiver { receiver: to });
            }
            let balance = self.balance_of(from);
            if balance < value {
                return Err(Error::ERC20InsufficientBalance {
                    sender: from,
                    balance,
                    needed: value,
                });
            }
            self.balances.insert(from, &(balance - value));
            // Cannot overflow: the sum of all balances is the fixed supply.
            let to_balance = self.balance_of(to);
            self.balances.insert(to, &(to_balance + value));
            self.env().emit_event(Transfer { from, to, value });
            Ok(())
        }

        fn set_allowance(
            &mut self,
            owner: Address,
            spender: Address,
            value: U256,
            emit: bool,
        ) -> Result<(), Error> {
            if owner == Address::zero() {
                return Err(Error::ERC20InvalidApprover { approver: owner });
            }
            if spender == Address::zero() {
                return Err(Error::ERC20InvalidSpender { spender });
            }
            self.allowances.insert((owner, spender), &value);
            if emit {
                self.env().emit_event(Approval {
                    owner,
                    spender,
                    value,
                });
            }
            Ok(())
        }
    }
}
