//! A minimal FRAME runtime hosting pallet-revive: accounts and balances, a clock, and the
//! contracts pallet. Native units are wei (`NativeToEthRatio` 1) and one unit of reference
//! time costs one wei, so pallet-revive's Ethereum gas is `ref_time / 1000`.

use frame_support::{
    derive_impl, parameter_types,
    traits::{ConstBool, ConstU32, ConstU64, ConstU128},
    weights::{Weight, constants::WEIGHT_REF_TIME_PER_SECOND},
};
use frame_system::EnsureSigned;
use sp_runtime::{
    AccountId32,
    traits::{Convert, IdentityLookup},
};

/// Balances in wei.
pub type Balance = u128;
/// Substrate account ids; an Ethereum address maps to `address ‖ 0xEE * 12`.
pub type AccountId = AccountId32;
type Block = frame_system::mocking::MockBlock<Runtime>;

frame_support::construct_runtime!(
    pub enum Runtime {
        System: frame_system,
        Balances: pallet_balances,
        Timestamp: pallet_timestamp,
        Revive: pallet_revive,
    }
);

parameter_types! {
    pub BlockWeights: frame_system::limits::BlockWeights =
        frame_system::limits::BlockWeights::simple_max(
            Weight::from_parts(2 * WEIGHT_REF_TIME_PER_SECOND, u64::MAX),
        );
    pub const DepositPerByte: Balance = 1;
    pub const DepositPerItem: Balance = 2;
}

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Runtime {
    type Block = Block;
    type BlockWeights = BlockWeights;
    type AccountId = AccountId;
    type Lookup = IdentityLookup<AccountId>;
    type AccountData = pallet_balances::AccountData<Balance>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Runtime {
    type Balance = Balance;
    type ExistentialDeposit = ConstU128<1>;
    type AccountStore = System;
}

#[derive_impl(pallet_timestamp::config_preludes::TestDefaultConfig)]
impl pallet_timestamp::Config for Runtime {}

/// One unit of reference time costs one wei.
pub struct RefTimeToFee;
impl Convert<Weight, Balance> for RefTimeToFee {
    fn convert(w: Weight) -> Balance {
        w.ref_time() as Balance
    }
}

#[derive_impl(pallet_revive::config_preludes::TestDefaultConfig)]
impl pallet_revive::Config for Runtime {
    // Milliseconds; contracts see seconds.
    type Time = Timestamp;
    type Currency = Balances;
    type AddressMapper = pallet_revive::AccountId32Mapper<Self>;
    type WeightPrice = RefTimeToFee;
    type DepositPerByte = DepositPerByte;
    type DepositPerItem = DepositPerItem;
    type UploadOrigin = EnsureSigned<AccountId>;
    type InstantiateOrigin = EnsureSigned<AccountId>;
    // 0.10's EVM interpreter is unfinished: PolkaVM code only.
    type AllowEVMBytecode = ConstBool<false>;
    type ChainId = ConstU64<{ openledger_contract_tests::evm::CHAIN_ID }>;
    type NativeToEthRatio = ConstU32<1>;
}
