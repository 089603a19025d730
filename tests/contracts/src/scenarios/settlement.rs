//! Settlement: escrow deposits, batches and exact splits, claims, withdrawals, voucher
//! revocation, governance of the split.

use alloy::primitives::U256;
use openledger_primitives::{
    bindings::{Settlement, reward_kind},
    split::SplitPolicy,
};

use openledger_billing::merkle::{MerkleTree, leaf_hash, verify};

use crate::{
    backend::Chain,
    fixtures::{
        DATANET, MODEL, balance, escrow, permit_for_settlement, settle_world_batch, snapshot,
        world, world_batch,
    },
    invariants::assert_escrow_invariant,
    scenario,
    suite::open,
};

/// Given users with deposits, when the operator settles a signed batch, then every user is
/// debited exactly what it was charged, every share is credited to the wei as the split policy
/// says, credits sum to debits, and the events describe it all.
pub async fn settle_batch_splits_fees_exactly<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    let (carol_fee, dave_fee) = (
        U256::from(1_234_567_891_234_567u64),
        U256::from(987_654_321u64),
    );
    let b = world_batch(&s, 1, carol_fee, dave_fee).await;
    let r = s.ok(&a.bob, s.settlement(), b.call()).await; // anyone may relay a signed batch
    let total = carol_fee + dave_fee;

    let settled = r.event::<Settlement::BatchSettled>(s.settlement());
    assert_eq!(
        (settled.operator, settled.sequence, settled.totalCharged),
        (a.operator.address(), 1, total)
    );
    // The settled root commits to the batch's receipts: each proves against it, as the
    // indexer checks what the oracle serves.
    assert_eq!(b.receipts.len(), 2);
    let tree = MerkleTree::of_receipts(&b.receipts).unwrap();
    assert_eq!(tree.root(), settled.receiptsRoot);
    for (i, r) in b.receipts.iter().enumerate() {
        assert!(verify(
            settled.receiptsRoot,
            leaf_hash(r),
            &tree.proof(i).unwrap()
        ));
    }
    assert_eq!(
        s.view(
            s.settlement(),
            Settlement::lastSequenceCall {
                operator: a.operator.address()
            }
        )
        .await,
        1
    );
    for (user, fee) in [(&a.carol, carol_fee), (&a.dave, dave_fee)] {
        assert_eq!(
            escrow(&s, user.address(), a.operator.address()).await,
            open(500) - fee
        );
        let spent = s
            .view(
                s.settlement(),
                Settlement::spentCall {
                    user: user.address(),
                    operator: a.operator.address(),
                    modelId: U256::from(MODEL),
                },
            )
            .await;
        assert_eq!(spent, fee);
    }
    assert_eq!(r.events::<Settlement::Charged>(s.settlement()).len(), 2);

    let split = SplitPolicy::default().split(total);
    let claimable = |who: alloy::primitives::Address| {
        s.view(s.settlement(), Settlement::claimableCall { account: who })
    };
    // Credit weights are fee × ppm, so each share is floor(data × ppm / 10⁶); the dust of
    // the data share goes to the treasury with the protocol share.
    let alice = split.data * U256::from(600_000) / U256::from(1_000_000);
    let bob = split.data * U256::from(250_000) / U256::from(1_000_000);
    let datanet = split.data * U256::from(150_000) / U256::from(1_000_000);
    let dust = split.data - alice - bob - datanet;
    assert_eq!(claimable(a.treasury.address()).await, split.protocol + dust);
    assert_eq!(claimable(a.developer.address()).await, split.developer);
    assert_eq!(claimable(a.alice.address()).await, alice);
    assert_eq!(claimable(a.bob.address()).await, bob);
    assert_eq!(
        claimable(a.curator.address()).await,
        datanet,
        "datanet owner gets the unattributed share"
    );
    // The operator's share vests over the unstake cooldown before it can be claimed.
    assert_eq!(claimable(a.operator.address()).await, U256::ZERO);
    let vesting = s
        .view(
            s.settlement(),
            Settlement::vestingCall {
                operator: a.operator.address(),
            },
        )
        .await;
    assert_eq!(vesting.amount, split.operator);

    let credits = r.events::<Settlement::RewardCredited>(s.settlement());
    let credited: U256 = credits.iter().map(|c| c.amount).sum();
    assert_eq!(credited, total, "sum of credits == sum of debits");
    assert!(credits.iter().any(|c| c.kind == reward_kind::CONTRIBUTION
        && c.sourceId == U256::from(1)
        && c.account == a.alice.address()));
    assert!(
        credits
            .iter()
            .any(|c| c.kind == reward_kind::DATANET && c.sourceId == U256::from(DATANET))
    );
    assert_escrow_invariant(&s).await;
}
scenario!(settle_batch_splits_fees_exactly);

/// Given credited rewards, when beneficiaries claim, then they receive exactly their balance
/// once; a second claim is refused and changes nothing.
pub async fn claim_pays_once<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    settle_world_batch(&s, 1, open(10), open(0)).await;
    let owed = s
        .view(
            s.settlement(),
            Settlement::claimableCall {
                account: a.alice.address(),
            },
        )
        .await;
    let before = balance(&s, a.alice.address()).await;
    let r = s
        .ok(&a.alice, s.settlement(), Settlement::claimCall {})
        .await;
    assert_eq!(r.event::<Settlement::Claimed>(s.settlement()).amount, owed);
    assert_eq!(balance(&s, a.alice.address()).await, before + owed);
    let snap = snapshot(&s).await;
    s.reverts::<_, Settlement::NothingToClaim>(&a.alice, s.settlement(), Settlement::claimCall {})
        .await;
    assert_eq!(snapshot(&s).await, snap);
    assert_escrow_invariant(&s).await;
}
scenario!(claim_pays_once);

/// Given a deposit, when the user asks to withdraw, then nothing is paid before the delay; work
/// signed meanwhile still settles; afterwards the user gets min(requested, balance).
pub async fn withdrawal_waits_for_the_delay<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    let r = s
        .ok(
            &a.carol,
            s.settlement(),
            Settlement::requestWithdrawalCall {
                operator: a.operator.address(),
                amount: open(500),
            },
        )
        .await;
    let req = r.event::<Settlement::WithdrawalRequested>(s.settlement());
    let snap = snapshot(&s).await;
    let err = s
        .reverts::<_, Settlement::WithdrawalNotReady>(
            &a.carol,
            s.settlement(),
            Settlement::withdrawCall {
                operator: a.operator.address(),
            },
        )
        .await;
    assert_eq!(err.readyAt, req.readyAt);
    assert_eq!(snapshot(&s).await, snap);

    settle_world_batch(&s, 1, open(7), U256::ZERO).await;
    s.advance(
        s.view(s.settlement(), Settlement::withdrawalDelayCall {})
            .await,
    )
    .await;
    let before = balance(&s, a.carol.address()).await;
    let r = s
        .ok(
            &a.carol,
            s.settlement(),
            Settlement::withdrawCall {
                operator: a.operator.address(),
            },
        )
        .await;
    let w = r.event::<Settlement::Withdrawn>(s.settlement());
    assert_eq!((w.amount, w.balance), (open(493), U256::ZERO));
    assert_eq!(balance(&s, a.carol.address()).await, before + open(493));
    s.reverts::<_, Settlement::NoWithdrawalRequested>(
        &a.carol,
        s.settlement(),
        Settlement::withdrawCall {
            operator: a.operator.address(),
        },
    )
    .await;
    s.reverts::<_, Settlement::InsufficientBalance>(
        &a.dave,
        s.settlement(),
        Settlement::requestWithdrawalCall {
            operator: a.operator.address(),
            amount: open(501),
        },
    )
    .await;
    assert_escrow_invariant(&s).await;
}
scenario!(withdrawal_waits_for_the_delay);

/// Given a permit signature, when the user deposits with it, then no separate approval is
/// needed.
pub async fn deposit_with_permit<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    let deadline = U256::from(s.now().await + 600);
    let (v, r, s_) = permit_for_settlement(&s, &a.carol, open(100), deadline).await;
    let r = s
        .ok(
            &a.carol,
            s.settlement(),
            Settlement::depositWithPermitCall {
                operator: a.operator.address(),
                amount: open(100),
                deadline,
                v,
                r,
                s: s_,
            },
        )
        .await;
    assert_eq!(
        r.event::<Settlement::Deposited>(s.settlement()).balance,
        open(600)
    );
    assert_escrow_invariant(&s).await;
}
scenario!(deposit_with_permit);

/// Given vouchers with nonce 0, when the user revokes nonces below 1, then the revocation is
/// visible at once but takes effect only a withdrawal delay later: a batch settles until then,
/// and afterwards a debit relying on such a voucher is skipped (not the batch).
pub async fn revoked_vouchers_void_only_after_the_delay<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    let delay = s
        .view(s.settlement(), Settlement::withdrawalDelayCall {})
        .await;
    let r = s
        .ok(
            &a.carol,
            s.settlement(),
            Settlement::revokeVouchersCall { newMinNonce: 1 },
        )
        .await;
    let revoked = r.event::<Settlement::VouchersRevoked>(s.settlement());
    assert_eq!(
        (revoked.minNonce, revoked.effectiveAt),
        (1, s.now().await + delay)
    );
    let seen = s
        .view(
            s.settlement(),
            Settlement::voucherRevocationCall {
                user: a.carol.address(),
            },
        )
        .await;
    assert_eq!((seen.minNonce, seen.pendingMinNonce), (0, 1));
    s.reverts::<_, Settlement::NonceNotIncreasing>(
        &a.carol,
        s.settlement(),
        Settlement::revokeVouchersCall { newMinNonce: 1 },
    )
    .await;
    // Served before the revocation takes effect: collected.
    let r = settle_world_batch(&s, 1, open(1), U256::ZERO).await;
    assert_eq!(r.events::<Settlement::Charged>(s.settlement()).len(), 1);
    s.advance(delay).await;
    let r = settle_world_batch(&s, 2, open(1), open(1)).await;
    let skipped = r.events::<Settlement::DebitSkipped>(s.settlement());
    assert_eq!(skipped.len(), 1);
    assert_eq!(
        (skipped[0].user, skipped[0].reason),
        (
            a.carol.address(),
            openledger_primitives::bindings::skip_reason::VOUCHER_REVOKED
        )
    );
    assert_eq!(r.events::<Settlement::Charged>(s.settlement()).len(), 1);
    assert_escrow_invariant(&s).await;
}
scenario!(revoked_vouchers_void_only_after_the_delay);

/// Given governance, then it alone changes the split (within bounds) and the withdrawal delay,
/// with events, and hands over its role in two steps. A new split opens a new epoch one
/// withdrawal delay later; a batch signed under the old epoch still settles at its prices for
/// one more delay, then never; a new delay applies after the current one.
pub async fn governance_changes_parameters<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    let policy = SplitPolicy {
        protocol_bps: 1_000,
        operator_bps: 1_000,
        developer_bps: 1_000,
        data_bps: 7_000,
    };
    s.reverts::<_, Settlement::NotGovernance>(
        &a.alice,
        s.settlement(),
        Settlement::setSplitPolicyCall {
            policy: policy.into(),
        },
    )
    .await;
    let r = s
        .ok(
            &a.governance,
            s.settlement(),
            Settlement::setSplitPolicyCall {
                policy: policy.into(),
            },
        )
        .await;
    let delay = s
        .view(s.settlement(), Settlement::withdrawalDelayCall {})
        .await;
    let changed = r.event::<Settlement::SplitPolicyChanged>(s.settlement());
    assert_eq!(
        (changed.epoch, changed.dataBps, changed.effectiveAt),
        (2, 7_000, s.now().await + delay)
    );
    // Not in effect yet: epoch 1 still prices batches.
    assert_eq!(
        SplitPolicy::from(s.view(s.settlement(), Settlement::splitPolicyCall {}).await),
        SplitPolicy::default()
    );
    let old_terms = world_batch(&s, 1, open(10), U256::ZERO).await;
    assert_eq!(old_terms.batch.policyEpoch, 1);
    for bad in [
        SplitPolicy {
            protocol_bps: 3_000,
            operator_bps: 1_000,
            developer_bps: 1_000,
            data_bps: 5_000,
        },
        SplitPolicy {
            protocol_bps: 1_000,
            operator_bps: 1_000,
            developer_bps: 1_000,
            data_bps: 1_000,
        },
    ] {
        s.reverts::<_, Settlement::InvalidSplitPolicy>(
            &a.governance,
            s.settlement(),
            Settlement::setSplitPolicyCall { policy: bad.into() },
        )
        .await;
    }
    s.advance(delay).await;
    assert_eq!(
        s.view(s.settlement(), Settlement::currentEpochCall {})
            .await,
        2
    );
    // Signed under epoch 1 before the switch: settles at the old prices (developer 30 %).
    let claimable_dev = || {
        s.view(
            s.settlement(),
            Settlement::claimableCall {
                account: a.developer.address(),
            },
        )
    };
    s.ok(&a.operator, s.settlement(), old_terms.call()).await;
    assert_eq!(claimable_dev().await, open(3));
    // Signed under epoch 2: the new prices (developer 10 %).
    let b = world_batch(&s, 2, open(10), U256::ZERO).await;
    assert_eq!(b.batch.policyEpoch, 2);
    s.ok(&a.operator, s.settlement(), b.call()).await;
    assert_eq!(claimable_dev().await, open(4));
    // An epoch-1 batch after the grace period is refused.
    let mut stale = world_batch(&s, 3, open(10), U256::ZERO).await;
    stale.batch.policyEpoch = 1;
    stale.resign(&s.domain, &a.operator_key).await;
    s.advance(delay).await;
    let err = s
        .reverts::<_, Settlement::PolicyEpochNotLive>(&a.operator, s.settlement(), stale.call())
        .await;
    assert_eq!((err.epoch, err.current), (1, 2));

    let r = s
        .ok(
            &a.governance,
            s.settlement(),
            Settlement::setWithdrawalDelayCall { delay: 3_600 },
        )
        .await;
    let changed = r.event::<Settlement::WithdrawalDelayChanged>(s.settlement());
    assert_eq!(
        (changed.delay, changed.effectiveAt),
        (3_600, s.now().await + delay)
    );
    assert_eq!(
        s.view(s.settlement(), Settlement::withdrawalDelayCall {})
            .await,
        delay,
        "the old delay holds until the change takes effect"
    );
    s.advance(delay).await;
    assert_eq!(
        s.view(s.settlement(), Settlement::withdrawalDelayCall {})
            .await,
        3_600
    );
    s.reverts::<_, Settlement::DelayTooLong>(
        &a.governance,
        s.settlement(),
        Settlement::setWithdrawalDelayCall { delay: 31 * 86_400 },
    )
    .await;

    // Two-step handover.
    s.ok(
        &a.governance,
        s.settlement(),
        Settlement::transferGovernanceCall {
            next: a.bob.address(),
        },
    )
    .await;
    s.reverts::<_, Settlement::NotPendingGovernance>(
        &a.alice,
        s.settlement(),
        Settlement::acceptGovernanceCall {},
    )
    .await;
    let r = s
        .ok(&a.bob, s.settlement(), Settlement::acceptGovernanceCall {})
        .await;
    assert_eq!(
        r.event::<Settlement::GovernanceTransferred>(s.settlement())
            .current,
        a.bob.address()
    );
    s.reverts::<_, Settlement::NotGovernance>(
        &a.governance,
        s.settlement(),
        Settlement::setWithdrawalDelayCall { delay: 1 },
    )
    .await;
    assert_escrow_invariant(&s).await;
}
scenario!(governance_changes_parameters);
