//! Shared helpers: the seed for random tests, keys, receipts and vouchers.

use alloy::{
    primitives::{Address, B256, Bytes, U256, address},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::Eip712Domain,
};
use openledger_billing::{AttributionWeight, Receipt};
use openledger_primitives::eip712::{SignedVoucher, Voucher, settlement_domain, voucher_digest};
use proptest::test_runner::{Config, RngSeed};

/// The seed random tests use unless `OPENLEDGER_TEST_SEED` says otherwise.
pub const DEFAULT_SEED: u64 = 20_261_201;

/// The seed of this run: `OPENLEDGER_TEST_SEED` or [`DEFAULT_SEED`], printed (shown with a
/// failing test's output) so any failure can be replayed.
pub fn seed() -> u64 {
    let seed = match std::env::var("OPENLEDGER_TEST_SEED") {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("OPENLEDGER_TEST_SEED={s:?} is not a u64")),
        Err(_) => DEFAULT_SEED,
    };
    println!("OPENLEDGER_TEST_SEED={seed} (set it to replay or vary the random cases)");
    seed
}

/// A proptest configuration running `cases` cases from [`seed`].
pub fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed()),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Chain id of the tests' domain.
pub const CHAIN_ID: u64 = 31_337;
/// The tests' settlement contract.
pub const SETTLEMENT: Address = address!("0x5e771e0000000000000000000000000000000001");

/// The tests' settlement domain.
pub fn domain() -> Eip712Domain {
    settlement_domain(CHAIN_ID, SETTLEMENT)
}

/// A fixed key, `n` ≥ 1.
pub fn key(n: u8) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&B256::with_last_byte(n)).expect("valid key")
}

/// The operator account of the tests.
pub fn operator() -> Address {
    key(200).address()
}

/// A voucher of `user` for the tests' operator.
pub fn voucher(user: &PrivateKeySigner, model: u64, cap: U256) -> Voucher {
    Voucher {
        user: user.address(),
        operator: operator(),
        modelId: U256::from(model),
        cumulativeCap: cap,
        expiry: 2_000_000_000,
        nonce: 3,
    }
}

/// Signs `voucher` with `signer` under `domain`, as a wallet would.
pub fn sign(signer: &PrivateKeySigner, domain: &Eip712Domain, voucher: Voucher) -> SignedVoucher {
    let signature = signer
        .sign_hash_sync(&voucher_digest(domain, &voucher))
        .expect("signs");
    SignedVoucher {
        voucher,
        signature: Bytes::from(signature.as_bytes().to_vec()),
    }
}

/// A receipt of `user` on `model` with `fee` and attribution `(datanet, contribution, ppm)`;
/// unattributed share to datanet 1.
pub fn receipt(
    id: u64,
    user: Address,
    model: u64,
    fee: U256,
    attribution: &[(u64, u64, u32)],
) -> Receipt {
    Receipt {
        requestId: B256::from(U256::from(id)),
        user,
        operator: operator(),
        modelId: U256::from(model),
        modelVersion: 1,
        tokensIn: 0,
        tokensOut: 0,
        fee,
        promptHash: B256::repeat_byte(0x11),
        outputHash: B256::repeat_byte(0x22),
        datanetId: U256::from(1),
        attribution: attribution
            .iter()
            .map(|&(d, c, ppm)| AttributionWeight {
                datanetId: U256::from(d),
                contributionId: U256::from(c),
                ppm,
            })
            .collect(),
        timestamp: 1_700_000_000,
    }
}
