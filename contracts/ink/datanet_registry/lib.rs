//! Datanets and their contributions (`IDatanetRegistry`): anyone creates a datanet (and curates
//! it); contributors commit, then reveal, a contribution with an optional OPEN stake; curators
//! accept (stake returned) or reject it (stake returned or slashed to the treasury); a
//! contribution pending past the curation timeout may be withdrawn with its stake. A rejected
//! or withdrawn content hash stays reserved for its author.
#![cfg_attr(not(feature = "std"), no_std, no_main)]

#[ink::contract]
mod datanet_registry {
    use ink::{H256, U256, prelude::string::String, sol::FixedBytes, storage::Mapping};
    use openledger_ink_support::{
        abi, erc20,
        governed::{Governance, Refusal},
        types::{Contribution, ContributionStatus, Datanet},
    };

    /// How long curators have before a contributor may withdraw a pending contribution.
    const CURATION_TIMEOUT: u64 = 14 * 24 * 3600;

    #[ink::event]
    pub struct DatanetCreated {
        #[ink(topic)]
        datanet_id: U256,
        #[ink(topic)]
        owner: Address,
        min_accepted: u32,
        metadata_uri: String,
    }

    #[ink::event]
    pub struct DatanetTransferStarted {
        #[ink(topic)]
        datanet_id: U256,
        #[ink(topic)]
        owner: Address,
        #[ink(topic)]
        pending_owner: Address,
    }

    #[ink::event]
    pub struct DatanetTransferred {
        #[ink(topic)]
        datanet_id: U256,
        #[ink(topic)]
        previous_owner: Address,
        #[ink(topic)]
        owner: Address,
    }

    #[ink::event]
    pub struct ContributionCommitted {
        #[ink(topic)]
        commitment: FixedBytes<32>,
        #[ink(topic)]
        committer: Address,
    }

    #[ink::event]
    pub struct CuratorSet {
        #[ink(topic)]
        datanet_id: U256,
        #[ink(topic)]
        curator: Address,
        enabled: bool,
    }

    #[ink::event]
    pub struct ContributionAdded {
        #[ink(topic)]
        contribution_id: U256,
        #[ink(topic)]
        datanet_id: U256,
        #[ink(topic)]
        contributor: Address,
        content_hash: FixedBytes<32>,
        tokens: u64,
        stake: U256,
        uri: String,
    }

    #[ink::event]
    pub struct ContributionAccepted {
        #[ink(topic)]
        contribution_id: U256,
        #[ink(topic)]
        datanet_id: U256,
        #[ink(topic)]
        curator: Address,
    }

    #[ink::event]
    pub struct ContributionRejected {
        #[ink(topic)]
        contribution_id: U256,
        #[ink(topic)]
        datanet_id: U256,
        #[ink(topic)]
        curator: Address,
        slashed: U256,
    }

    #[ink::event]
    pub struct ContributionWithdrawn {
        #[ink(topic)]
        contribution_id: U256,
        #[ink(topic)]
        datanet_id: U256,
        #[ink(topic)]
        contributor: Address,
        stake: U256,
    }

    #[ink::error]
    #[derive(Debug, PartialEq, Eq)]
    pub enum Error {
        NotGovernance {
            caller: Address,
        },
        NotPendingGovernance {
            caller: Address,
        },
        ZeroAddress,
        UnknownDatanet {
            datanet_id: U256,
        },
        NotDatanetOwner {
            datanet_id: U256,
            caller: Address,
        },
        NotPendingOwner {
            datanet_id: U256,
            caller: Address,
        },
        ZeroAmount,
        NotCommitted {
            commitment: FixedBytes<32>,
        },
        ContentReserved {
            datanet_id: U256,
            content_hash: FixedBytes<32>,
            author: Address,
        },
        NotContributor {
            contribution_id: U256,
            caller: Address,
        },
        CurationNotTimedOut {
            contribution_id: U256,
            times_out_at: u64,
        },
        UnknownContribution {
            contribution_id: U256,
        },
        NotCurator {
            datanet_id: U256,
            caller: Address,
        },
        NotPending {
            contribution_id: U256,
            status: ContributionStatus,
        },
        EmptyContribution,
        DuplicateContent {
            datanet_id: U256,
            content_hash: FixedBytes<32>,
        },
    }

    impl From<Refusal> for Error {
        fn from(r: Refusal) -> Self {
            match r {
                Refusal::NotGovernance(caller) => Error::NotGovernance { caller },
                Refusal::NotPendingGovernance(caller) => Error::NotPendingGovernance { caller },
                Refusal::ZeroAddress => Error::ZeroAddress,
            }
        }
    }

    /// Who holds a content hash in a datanet, and whether its contribution is live.
    #[derive(Debug, Clone, Copy, Default)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct ContentClaim {
        author: Address,
        live: bool,
    }

    #[ink(storage)]
    pub struct DatanetRegistry {
        governance: Governance,
        token: Address,
        treasury: Address,
        datanet_count: U256,
        contribution_count: U256,
        datanets: Mapping<U256, Datanet>,
        contributions: Mapping<U256, Contribution>,
        curators: Mapping<(U256, Address), bool>,
        content: Mapping<(U256, [u8; 32]), ContentClaim>,
        pending_owners: Mapping<U256, Address>,
        /// The block each commitment was first made in.
        commitments: Mapping<[u8; 32], u32>,
    }

    impl DatanetRegistry {
        #[ink(constructor)]
        pub fn new(token: Address, governance: Address, treasury: Address) -> Result<Self, Error> {
            let governance = Governance::new(governance)?;
            if token == Address::zero() || treasury == Address::zero() {
                return Err(Error::ZeroAddress);
            }
            Ok(Self {
                governance,
                token,
                treasury,
                datanet_count: U256::zero(),
                contribution_count: U256::zero(),
                datanets: Mapping::new(),
                contributions: Mapping::new(),
                curators: Mapping::new(),
                content: Mapping::new(),
                pending_owners: Mapping::new(),
                commitments: Mapping::new(),
            })
        }

        // ------------------------------------------------------------ governance

        #[ink(message)]
        pub fn governance(&self) -> Address {
            self.governance.current()
        }

        #[ink(message, name = "pendingGovernance")]
        pub fn pending_governance(&self) -> Address {
            self.governance.pending()
        }

        #[ink(message, name = "transferGovernance")]
        pub fn transfer_governance(&mut self, next: Address) -> Result<(), Error> {
            Ok(self.governance.propose(self.env().caller(), next)?)
        }

        #[ink(message, name = "acceptGovernance")]
        pub fn accept_governance(&mut self) -> Result<(), Error> {
            Ok(self.governance.accept(self.env().caller())?)
        }

        // ------------------------------------------------------------ datanets

        #[ink(message, name = "createDatanet")]
        pub fn create_datanet(&mut self, metadata_uri: String, min_accepted: u32) -> U256 {
            let owner = self.env().caller();
            self.datanet_count += U256::one();
            let datanet_id = self.datanet_count;
            self.env().emit_event(DatanetCreated {
                datanet_id,
                owner,
                min_accepted,
                metadata_uri: metadata_uri.clone(),
            });
            self.datanets.insert(
                datanet_id,
                &Datanet {
                    owner,
                    min_accepted,
                    accepted_count: 0,
                    metadata_uri,
                },
            );
            datanet_id
        }

        #[ink(message, name = "setCurator")]
        pub fn set_curator(
            &mut self,
            datanet_id: U256,
            curator: Address,
            enabled: bool,
        ) -> Result<(), Error> {
            self.governance.check(self.env().caller())?;
            self.require_datanet(datanet_id)?;
            if curator == Address::zero() {
                return Err(Error::ZeroAddress);
            }
            self.curators.insert((datanet_id, curator), &enabled);
            self.env().emit_event(CuratorSet {
                datanet_id,
                curator,
                enabled,
            });
            Ok(())
        }

        #[ink(message, name = "transferDatanet")]
        pub fn transfer_datanet(&mut self, datanet_id: U256, next: Address) -> Result<(), Error> {
            let d = self.require_datanet(datanet_id)?;
            let caller = self.env().caller();
            if d.owner != caller {
                return Err(Error::NotDatanetOwner { datanet_id, caller });
            }
            if next == Address::zero() {
                return Err(Error::ZeroAddress);
            }
            self.pending_owners.insert(datanet_id, &next);
            self.env().emit_event(DatanetTransferStarted {
                datanet_id,
                owner: caller,
                pending_owner: next,
            });
            Ok(())
        }

        #[ink(message, name = "acceptDatanet")]
        pub fn accept_datanet(&mut self, datanet_id: U256) -> Result<(), Error> {
            let mut d = self.require_datanet(datanet_id)?;
            let caller = self.env().caller();
            if self.pending_datanet_owner(datanet_id) != caller {
                return Err(Error::NotPendingOwner { datanet_id, caller });
            }
            let previous_owner = d.owner;
            d.owner = caller;
            self.datanets.insert(datanet_id, &d);
            // Not `remove` (see `add_contribution`).
            self.pending_owners.insert(datanet_id, &Address::zero());
            self.env().emit_event(DatanetTransferred {
                datanet_id,
                previous_owner,
                owner: caller,
            });
            Ok(())
        }

        // ------------------------------------------------------------ contributions

        #[ink(message, name = "commitContribution")]
        pub fn commit_contribution(&mut self, commitment: FixedBytes<32>) {
            // The earliest block counts; a copy of someone's commitment only confirms it.
            if self.commitments.get(commitment.0).unwrap_or(0) == 0 {
                self.commitments
                    .insert(commitment.0, &self.env().block_number());
            }
            self.env().emit_event(ContributionCommitted {
                commitment,
                committer: self.env().caller(),
            });
        }

        #[ink(message, name = "addContribution")]
        pub fn add_contribution(
            &mut self,
            datanet_id: U256,
            content_hash: FixedBytes<32>,
            tokens: u64,
            uri: String,
            stake: U256,
            salt: FixedBytes<32>,
        ) -> Result<U256, Error> {
            self.require_datanet(datanet_id)?;
            if content_hash.0 == [0u8; 32] || tokens == 0 {
                return Err(Error::EmptyContribution);
            }
            let contributor = self.env().caller();
            let commitment = abi::hash_words(&[
                abi::address(contributor),
                abi::uint(datanet_id),
                content_hash.0,
                salt.0,
            ]);
            match self.commitments.get(commitment) {
                Some(at) if at != 0 && at < self.env().block_number() => {}
                _ => {
                    return Err(Error::NotCommitted {
                        commitment: FixedBytes(commitment),
                    });
                }
            }
            // Block 0 means "no commitment". Not `remove`: ink! 6.0.0-beta.1 clears storage
            // through a precompile that pallet-revive 0.10 lacks, so a removal is silently lost.
            self.commitments.insert(commitment, &0);
            let claim = self
                .content
                .get((datanet_id, content_hash.0))
                .unwrap_or_default();
            if claim.live {
                return Err(Error::DuplicateContent {
                    datanet_id,
                    content_hash,
                });
            }
            if claim.author != Address::zero() && claim.author != contributor {
                return Err(Error::ContentReserved {
                    datanet_id,
                    content_hash,
                    author: claim.author,
                });
            }
            self.content.insert(
                (datanet_id, content_hash.0),
                &ContentClaim {
                    author: contributor,
                    live: true,
                },
            );
            self.contribution_count += U256::one();
            let contribution_id = self.contribution_count;
            self.env().emit_event(ContributionAdded {
                contribution_id,
                datanet_id,
                contributor,
                content_hash,
                tokens,
                stake,
                uri: uri.clone(),
            });
            self.contributions.insert(
                contribution_id,
                &Contribution {
                    datanet_id,
                    contributor,
                    status: ContributionStatus::Pending,
                    tokens,
                    stake,
                    added_at: self.env().block_timestamp(),
                    content_hash: H256(content_hash.0),
                    uri,
                },
            );
            if !stake.is_zero() {
                erc20::safe_transfer_from(self.token, contributor, self.env().address(), stake);
            }
            Ok(contribution_id)
        }

        #[ink(message, name = "acceptContribution")]
        pub fn accept_contribution(&mut self, contribution_id: U256) -> Result<(), Error> {
            let mut c = self.pending_for_curator(contribution_id)?;
            let stake = c.stake;
            c.status = ContributionStatus::Accepted;
            c.stake = U256::zero();
            self.contributions.insert(contribution_id, &c);
            let mut d = self.datanets.get(c.datanet_id).unwrap_or_default();
            d.accepted_count += 1;
            self.datanets.insert(c.datanet_id, &d);
            self.env().emit_event(ContributionAccepted {
                contribution_id,
                datanet_id: c.datanet_id,
                curator: self.env().caller(),
            });
            if !stake.is_zero() {
                erc20::safe_transfer(self.token, c.contributor, stake);
            }
            Ok(())
        }

        #[ink(message, name = "rejectContribution")]
        pub fn reject_contribution(
            &mut self,
            contribution_id: U256,
            slash: bool,
        ) -> Result<(), Error> {
            let mut c = self.pending_for_curator(contribution_id)?;
            let stake = c.stake;
            if slash && stake.is_zero() {
                return Err(Error::ZeroAmount);
            }
            c.status = ContributionStatus::Rejected;
            c.stake = U256::zero();
            self.contributions.insert(contribution_id, &c);
            // Its author may submit it again (e.g. with a better licence); nobody else may.
            self.release_content(c.datanet_id, c.content_hash.0);
            self.env().emit_event(ContributionRejected {
                contribution_id,
                datanet_id: c.datanet_id,
                curator: self.env().caller(),
                slashed: if slash { stake } else { U256::zero() },
            });
            if !stake.is_zero() {
                let to = if slash { self.treasury } else { c.contributor };
                erc20::safe_transfer(self.token, to, stake);
            }
            Ok(())
        }

        #[ink(message, name = "withdrawContribution")]
        pub fn withdraw_contribution(&mut self, contribution_id: U256) -> Result<(), Error> {
            let mut c = self.require_contribution(contribution_id)?;
            let caller = self.env().caller();
            if c.contributor != caller {
                return Err(Error::NotContributor {
                    contribution_id,
                    caller,
                });
            }
            if c.status != ContributionStatus::Pending {
                return Err(Error::NotPending {
                    contribution_id,
                    status: c.status,
                });
            }
            let times_out_at = c.added_at.saturating_add(CURATION_TIMEOUT);
            if self.env().block_timestamp() < times_out_at {
                return Err(Error::CurationNotTimedOut {
                    contribution_id,
                    times_out_at,
                });
            }
            let stake = c.stake;
            c.status = ContributionStatus::Withdrawn;
            c.stake = U256::zero();
            self.contributions.insert(contribution_id, &c);
            self.release_content(c.datanet_id, c.content_hash.0);
            self.env().emit_event(ContributionWithdrawn {
                contribution_id,
                datanet_id: c.datanet_id,
                contributor: caller,
                stake,
            });
            if !stake.is_zero() {
                erc20::safe_transfer(self.token, caller, stake);
            }
            Ok(())
        }

        // ------------------------------------------------------------ views

        #[ink(message, name = "CURATION_TIMEOUT")]
        pub fn curation_timeout(&self) -> u64 {
            CURATION_TIMEOUT
        }

        #[ink(message)]
        pub fn token(&self) -> Address {
            self.token
        }

        #[ink(message)]
        pub fn treasury(&self) -> Address {
            self.treasury
        }

        #[ink(message, name = "datanetCount")]
        pub fn datanet_count(&self) -> U256 {
            self.datanet_count
        }

        #[ink(message, name = "contributionCount")]
        pub fn contribution_count(&self) -> U256 {
            self.contribution_count
        }

        #[ink(message, name = "getDatanet")]
        pub fn get_datanet(&self, datanet_id: U256) -> Result<Datanet, Error> {
            self.require_datanet(datanet_id)
        }

        #[ink(message, name = "getContribution")]
        pub fn get_contribution(&self, contribution_id: U256) -> Result<Contribution, Error> {
            self.require_contribution(contribution_id)
        }

        #[ink(message, name = "contributionOwner")]
        pub fn contribution_owner(
            &self,
            contribution_id: U256,
        ) -> (U256, Address, ContributionStatus) {
            let c = self.contributions.get(contribution_id).unwrap_or_default();
            (c.datanet_id, c.contributor, c.status)
        }

        #[ink(message, name = "datanetOwner")]
        pub fn datanet_owner(&self, datanet_id: U256) -> Result<Address, Error> {
            Ok(self.require_datanet(datanet_id)?.owner)
        }

        #[ink(message, name = "pendingDatanetOwner")]
        pub fn pending_datanet_owner(&self, datanet_id: U256) -> Address {
            self.pending_owners.get(datanet_id).unwrap_or_default()
        }

        #[ink(message, name = "commitmentBlock")]
        pub fn commitment_block(&self, commitment: FixedBytes<32>) -> U256 {
            U256::from(self.commitments.get(commitment.0).unwrap_or_default())
        }

        #[ink(message, name = "contentAuthor")]
        pub fn content_author(
            &self,
            datanet_id: U256,
            content_hash: FixedBytes<32>,
        ) -> (Address, bool) {
            let claim = self
                .content
                .get((datanet_id, content_hash.0))
                .unwrap_or_default();
            (claim.author, claim.live)
        }

        #[ink(message, name = "isCurator")]
        pub fn is_curator(&self, datanet_id: U256, account: Address) -> bool {
            let owner = self
                .datanets
                .get(datanet_id)
                .map(|d| d.owner)
                .unwrap_or_default();
            owner == account || self.curators.get((datanet_id, account)).unwrap_or(false)
        }

        #[ink(message, name = "meetsRequirements")]
        pub fn meets_requirements(&self, datanet_id: U256) -> Result<bool, Error> {
            let d = self.require_datanet(datanet_id)?;
            Ok(d.accepted_count >= d.min_accepted)
        }

        // ------------------------------------------------------------ internals

        fn release_content(&mut self, datanet_id: U256, content_hash: [u8; 32]) {
            let mut claim = self
                .content
                .get((datanet_id, content_hash))
                .unwrap_or_default();
            claim.live = false;
            self.content.insert((datanet_id, content_hash), &claim);
        }

        fn pending_for_curator(&self, contribution_id: U256) -> Result<Contribution, Error> {
            let c = self.require_contribution(contribution_id)?;
            let caller = self.env().caller();
            if !self.is_curator(c.datanet_id, caller) {
                return Err(Error::NotCurator {
                    datanet_id: c.datanet_id,
                    caller,
                });
            }
            if c.status != ContributionStatus::Pending {
                return Err(Error::NotPending {
                    contribution_id,
                    status: c.status,
                });
            }
            Ok(c)
        }

        fn require_datanet(&self, datanet_id: U256) -> Result<Datanet, Error> {
            if datanet_id.is_zero() || datanet_id > self.datanet_count {
                return Err(Error::UnknownDatanet { datanet_id });
            }
            Ok(self.datanets.get(datanet_id).unwrap_or_default())
        }

        fn require_contribution(&self, contribution_id: U256) -> Result<Contribution, Error> {
            if contribution_id.is_zero() || contribution_id > self.contribution_count {
                return Err(Error::UnknownContribution { contribution_id });
            }
            Ok(self.contributions.get(contribution_id).unwrap_or_default())
        }
    }
}
