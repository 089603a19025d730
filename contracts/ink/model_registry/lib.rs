//! Models, versions and their datanet lineage (`IModelRegistry`). Registration, and datanets
//! added by a later version, need every datanet to meet its requirements; a model's lineage is
//! the union over its versions. The developer role moves in two steps; a deactivated model
//! stays deactivated. No admin role.
#![cfg_attr(not(feature = "std"), no_std, no_main)]

#[ink::contract]
mod model_registry {
    use ink::{
        H256, U256,
        env::call::{ExecutionInput, Selector},
        prelude::{string::String, vec::Vec},
        sol::FixedBytes,
        storage::Mapping,
    };
    use openledger_ink_support::{
        abi::selector,
        call,
        types::{Model, ModelVersion},
    };

    const MEETS_REQUIREMENTS: [u8; 4] = selector(ink::keccak_256!("meetsRequirements(uint256)"));

    #[ink::event]
    pub struct ModelRegistered {
        #[ink(topic)]
        model_id: U256,
        #[ink(topic)]
        developer: Address,
        base_model_hash: FixedBytes<32>,
        price_per_1k_tokens: U256,
    }

    #[ink::event]
    pub struct ModelVersionAdded {
        #[ink(topic)]
        model_id: U256,
        #[ink(topic)]
        version: u32,
        parent_version: u32,
        adapter_hash: FixedBytes<32>,
        adapter_uri: String,
        added_datanet_ids: Vec<U256>,
    }

    #[ink::event]
    pub struct ModelPriceChanged {
        #[ink(topic)]
        model_id: U256,
        price_per_1k_tokens: U256,
    }

    #[ink::event]
    pub struct ModelDeactivated {
        #[ink(topic)]
        model_id: U256,
    }

    #[ink::event]
    pub struct ModelTransferStarted {
        #[ink(topic)]
        model_id: U256,
        #[ink(topic)]
        developer: Address,
        #[ink(topic)]
        pending_developer: Address,
    }

    #[ink::event]
    pub struct ModelTransferred {
        #[ink(topic)]
        model_id: U256,
        #[ink(topic)]
        previous_developer: Address,
        #[ink(topic)]
        developer: Address,
    }

    #[ink::error]
    #[derive(Debug, PartialEq, Eq)]
    pub enum Error {
        UnknownModel { model_id: U256 },
        UnknownVersion { model_id: U256, version: u32 },
        NotDeveloper { model_id: U256, caller: Address },
        ModelInactive { model_id: U256 },
        NotPendingDeveloper { model_id: U256, caller: Address },
        ZeroAddress,
        NoDatanets,
        DatanetListInvalid { datanet_id: U256 },
        DatanetRequirementsNotMet { datanet_id: U256 },
    }

    #[ink(storage)]
    pub struct ModelRegistry {
        datanets: Address,
        model_count: U256,
        models: Mapping<U256, Model>,
        versions: Mapping<(U256, u32), ModelVersion>,
        lineage: Mapping<U256, Vec<U256>>,
        uses_datanet: Mapping<(U256, U256), bool>,
        pending_developers: Mapping<U256, Address>,
    }

    impl ModelRegistry {
        #[ink(constructor)]
        pub fn new(datanets: Address) -> Result<Self, Error> {
            if datanets == Address::zero() {
                return Err(Error::ZeroAddress);
            }
            Ok(Self {
                datanets,
                model_count: U256::zero(),
                models: Mapping::new(),
                versions: Mapping::new(),
                lineage: Mapping::new(),
                uses_datanet: Mapping::new(),
                pending_developers: Mapping::new(),
            })
        }

        #[ink(message, name = "registerModel")]
        pub fn register_model(
            &mut self,
            datanet_ids: Vec<U256>,
            base_model_hash: FixedBytes<32>,
            adapter_hash: FixedBytes<32>,
            adapter_uri: String,
            price_per_1k_tokens: U256,
        ) -> Result<U256, Error> {
            if datanet_ids.is_empty() {
                return Err(Error::NoDatanets);
            }
            let developer = self.env().caller();
            self.model_count += U256::one();
            let model_id = self.model_count;
            self.models.insert(
                model_id,
                &Model {
                    developer,
                    active: true,
                    latest_version: 1,
                    deactivated_at: 0,
                    price_per_1k_tokens,
                    base_model_hash: H256(base_model_hash.0),
                },
            );
            self.env().emit_event(ModelRegistered {
                model_id,
                developer,
                base_model_hash,
                price_per_1k_tokens,
            });
            self.add_version_unchecked(model_id, 1, 0, adapter_hash, adapter_uri, datanet_ids)?;
            Ok(model_id)
        }

        #[ink(message, name = "addVersion")]
        pub fn add_version(
            &mut self,
            model_id: U256,
            parent_version: u32,
            adapter_hash: FixedBytes<32>,
            adapter_uri: String,
            added_datanet_ids: Vec<U256>,
        ) -> Result<u32, Error> {
            let mut m = self.developer_model(model_id)?;
            if !m.active {
                return Err(Error::ModelInactive { model_id });
            }
            if parent_version == 0 || parent_version > m.latest_version {
                return Err(Error::UnknownVersion {
                    model_id,
                    version: parent_version,
                });
            }
            m.latest_version += 1;
            let version = m.latest_version;
            self.models.insert(model_id, &m);
            self.add_version_unchecked(
                model_id,
                version,
                parent_version,
                adapter_hash,
                adapter_uri,
                added_datanet_ids,
            )?;
            Ok(version)
        }

        #[ink(message, name = "setPrice")]
        pub fn set_price(
            &mut self,
            model_id: U256,
            price_per_1k_tokens: U256,
        ) -> Result<(), Error> {
            let mut m = self.developer_model(model_id)?;
            if !m.active {
                return Err(Error::ModelInactive { model_id });
            }
            m.price_per_1k_tokens = price_per_1k_tokens;
            self.models.insert(model_id, &m);
            self.env().emit_event(ModelPriceChanged {
                model_id,
                price_per_1k_tokens,
            });
            Ok(())
        }

        #[ink(message)]
        pub fn deactivate(&mut self, model_id: U256) -> Result<(), Error> {
            let mut m = self.developer_model(model_id)?;
            if !m.active {
                return Err(Error::ModelInactive { model_id });
            }
            m.active = false;
            m.deactivated_at = self.env().block_timestamp();
            self.models.insert(model_id, &m);
            self.env().emit_event(ModelDeactivated { model_id });
            Ok(())
        }

        #[ink(message, name = "transferModel")]
        pub fn transfer_model(&mut self, model_id: U256, next: Address) -> Result<(), Error> {
            self.developer_model(model_id)?;
            if next == Address::zero() {
                return Err(Error::ZeroAddress);
            }
            self.pending_developers.insert(model_id, &next);
            self.env().emit_event(ModelTransferStarted {
                model_id,
                developer: self.env().caller(),
                pending_developer: next,
            });
            Ok(())
        }

        #[ink(message, name = "acceptModel")]
        pub fn accept_model(&mut self, model_id: U256) -> Result<(), Error> {
            let mut m = self.require_model(model_id)?;
            let caller = self.env().caller();
            if self.pending_developer(model_id) != caller {
                return Err(Error::NotPendingDeveloper { model_id, caller });
            }
            let previous_developer = m.developer;
            m.developer = caller;
            self.models.insert(model_id, &m);
            // Not `remove`: ink! 6.0.0-beta.1 clears storage through a precompile that
            // pallet-revive 0.10 lacks, so a removal is silently lost.
            self.pending_developers.insert(model_id, &Address::zero());
            self.env().emit_event(ModelTransferred {
                model_id,
                previous_developer,
                developer: caller,
            });
            Ok(())
        }

        #[ink(message, name = "pendingDeveloper")]
        pub fn pending_developer(&self, model_id: U256) -> Address {
            self.pending_developers.get(model_id).unwrap_or_default()
        }

        #[ink(message)]
        pub fn datanets(&self) -> Address {
            self.datanets
        }

        #[ink(message, name = "modelCount")]
        pub fn model_count(&self) -> U256 {
            self.model_count
        }

        #[ink(message, name = "getModel")]
        pub fn get_model(&self, model_id: U256) -> Result<Model, Error> {
            self.require_model(model_id)
        }

        #[ink(message, name = "getVersion")]
        pub fn get_version(&self, model_id: U256, version: u32) -> Result<ModelVersion, Error> {
            let m = self.require_model(model_id)?;
            if version == 0 || version > m.latest_version {
                return Err(Error::UnknownVersion { model_id, version });
            }
            Ok(self.versions.get((model_id, version)).unwrap_or_default())
        }

        #[ink(message, name = "modelDatanets")]
        pub fn model_datanets(&self, model_id: U256) -> Result<Vec<U256>, Error> {
            self.require_model(model_id)?;
            Ok(self.lineage.get(model_id).unwrap_or_default())
        }

        #[ink(message, name = "usesDatanet")]
        pub fn uses_datanet(&self, model_id: U256, datanet_id: U256) -> bool {
            self.uses_datanet
                .get((model_id, datanet_id))
                .unwrap_or(false)
        }

        #[ink(message, name = "developerOf")]
        pub fn developer_of(&self, model_id: U256) -> Result<Address, Error> {
            Ok(self.require_model(model_id)?.developer)
        }

        fn add_version_unchecked(
            &mut self,
            model_id: U256,
            version: u32,
            parent_version: u32,
            adapter_hash: FixedBytes<32>,
            adapter_uri: String,
            added_datanet_ids: Vec<U256>,
        ) -> Result<(), Error> {
            self.versions.insert(
                (model_id, version),
                &ModelVersion {
                    parent_version,
                    adapter_hash: H256(adapter_hash.0),
                    adapter_uri: adapter_uri.clone(),
                },
            );
            let mut lineage = self.lineage.get(model_id).unwrap_or_default();
            let mut previous = U256::zero();
            for &datanet_id in &added_datanet_ids {
                if datanet_id <= previous || self.uses_datanet(model_id, datanet_id) {
                    return Err(Error::DatanetListInvalid { datanet_id });
                }
                if !self.meets_requirements(datanet_id) {
                    return Err(Error::DatanetRequirementsNotMet { datanet_id });
                }
                previous = datanet_id;
                self.uses_datanet.insert((model_id, datanet_id), &true);
                lineage.push(datanet_id);
            }
            self.lineage.insert(model_id, &lineage);
            self.env().emit_event(ModelVersionAdded {
                model_id,
                version,
                parent_version,
                adapter_hash,
                adapter_uri,
                added_datanet_ids,
            });
            Ok(())
        }

        /// The datanet registry's `meetsRequirements`; an unknown datanet makes it revert,
        /// which reverts this call with the registry's `UnknownDatanet`, as in Solidity.
        fn meets_requirements(&self, datanet_id: U256) -> bool {
            call::call(
                self.datanets,
                ExecutionInput::new(Selector::new(MEETS_REQUIREMENTS)).push_arg(datanet_id),
            )
        }

        fn developer_model(&self, model_id: U256) -> Result<Model, Error> {
            let m = self.require_model(model_id)?;
            let caller = self.env().caller();
            if m.developer != caller {
                return Err(Error::NotDeveloper { model_id, caller });
            }
            Ok(m)
        }

        fn require_model(&self, model_id: U256) -> Result<Model, Error> {
            if model_id.is_zero() || model_id > self.model_count {
                return Err(Error::UnknownModel { model_id });
            }
            Ok(self.models.get(model_id).unwrap_or_default())
        }
    }
}
