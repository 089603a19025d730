//! Gas to settle batches of 1, 10, 100 and 1,000 receipts on anvil, per inference and against
//! settling each inference on its own (a batch of one). Prints a table; asserts nothing about
//! speed.
//!
//! Receipts are generated deterministically: each is charged to one of U users and attributed
//! to two of K contributions (both drawn with a fixed LCG), with U and K growing with the
//! batch as they would for one operator over a settlement period (see `shape`). What the chain
//! sees is aggregated by the oracle's batch builder (`openledger-billing`): one debit per
//! (model, user), one credit per contribution.
//!
//! The first row settles a single receipt on cold storage (first charge, first credits); the
//! baseline for "one-by-one" is the second single-receipt batch, on warm storage, which is
//! the cheapest an unbatched inference can be (a conservative ratio).
//!
//! Run: `cargo bench -p openledger-contract-tests --bench settlement_gas` (needs `npm ci`).

use std::collections::BTreeMap;

use alloy::primitives::{U256, keccak256};
use openledger_billing::{
    AttributionWeight, Receipt,
    batch::{self, Billed},
};
use openledger_contract_tests::{
    backend::Chain,
    evm::AnvilChain,
    fixtures::{DATANET, MODEL, accepted_contribution, batch_terms, deposit, world},
    suite::open,
};
use openledger_primitives::eip712::{SignedVoucher, Voucher, sign_voucher};

/// (receipts, distinct users, distinct contributions).
fn shape(receipts: usize) -> (usize, usize, usize) {
    match receipts {
        1 => (1, 1, 2),
        10 => (10, 8, 10),
        100 => (100, 30, 40),
        _ => (receipts, 60, 100),
    }
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes = [1usize, 1, 10, 100, 1_000];
    let max_users = sizes.iter().map(|&n| shape(n).1).max().unwrap();
    let max_contributions = sizes.iter().map(|&n| shape(n).2).max().unwrap();
    let chain = AnvilChain::with_accounts(10 + max_users).await;
    let s = world(&chain).await;
    let a = s.actors.clone();
    let users: Vec<_> = chain.accounts()[10..].to_vec();
    for u in &users {
        deposit(&s, u, open(10_000)).await;
    }
    // The world has contributions 1 and 2 accepted; add more up to the largest K.
    let mut contributions = vec![U256::from(1), U256::from(2)];
    for i in contributions.len()..max_contributions {
        let id = accepted_contribution(
            &s,
            &a.curator,
            &a.alice,
            U256::from(DATANET),
            &format!("contribution {i}"),
        )
        .await;
        contributions.push(id);
    }

    println!(
        "| receipts | users | contributions | credits | gas | gas / inference | vs one-by-one |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut rng = Lcg(0x0e7e_1ed6_e500_0001);
    let mut sequence = 0;
    let mut single = 0f64;
    for &n in &sizes {
        let (receipts, u, k) = shape(n);
        let fee = U256::from(2_000_000_000_000_000u64); // 0.002 OPEN, ~1k tokens at 2 OPEN / 1M
        let now = s.now().await;
        let mut vouchers: BTreeMap<usize, SignedVoucher> = BTreeMap::new();
        let mut items = Vec::new();
        for i in 0..receipts {
            let user = rng.next(u);
            let mut weights: BTreeMap<U256, u32> = BTreeMap::new();
            for w in [500_000u32, 300_000] {
                *weights.entry(contributions[rng.next(k)]).or_default() += w;
            }
            let voucher = match vouchers.get(&user) {
                Some(v) => v.clone(),
                None => {
                    let v = Voucher {
                        user: users[user].address(),
                        operator: a.operator.address(),
                        modelId: U256::from(MODEL),
                        cumulativeCap: open(10_000),
                        expiry: now + 86_400,
                        nonce: 0,
                    };
                    let signed = sign_voucher(&users[user], &s.domain, &v).await.unwrap();
                    vouchers.insert(user, signed.clone());
                    signed
                }
            };
            let receipt = Receipt {
                requestId: keccak256(format!("{n}/{sequence}/{i}")),
                user: users[user].address(),
                operator: a.operator.address(),
                modelId: U256::from(MODEL),
                modelVersion: 1,
                tokensIn: 200,
                tokensOut: 800,
                fee,
                promptHash: keccak256(format!("prompt {i}")),
                outputHash: keccak256(format!("output {i}")),
                datanetId: U256::from(DATANET),
                attribution: weights
                    .iter()
                    .map(|(&contribution, &ppm)| AttributionWeight {
                        datanetId: U256::from(DATANET),
                        contributionId: contribution,
                        ppm,
                    })
                    .collect(),
                timestamp: now,
            };
            items.push(Billed { receipt, voucher });
        }
        sequence += 1;
        let terms = batch_terms(&s, a.operator.address(), sequence).await;
        let plan = batch::build(&terms, items).unwrap();
        let b = plan.sign(&a.operator_key, &s.domain).await.unwrap();
        let credits = b.plan.batch.credits.len();
        let gas = s.ok(&a.operator, s.settlement(), b.call()).await.gas_used;
        let per = gas as f64 / receipts as f64;
        if receipts == 1 {
            single = per; // the second (warm) one wins
        }
        let label = if sequence == 1 {
            format!("{receipts} (cold)")
        } else {
            receipts.to_string()
        };
        let ratio = if sequence == 1 {
            "-".to_string()
        } else {
            format!("{:.1}x", single / per)
        };
        println!(
            "| {label} | {} | {} | {credits} | {gas} | {per:.0} | {ratio} |",
            vouchers.len(),
            k.min(contributions.len())
        );
    }
}
