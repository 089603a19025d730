//! The settlement-hardening findings, one scenario each: served work cannot be pulled away (by
//! revocation, a second payee or an armed withdrawal), no user can veto a batch (drained
//! escrow, ERC-1271 wallets that flip or burn gas, EIP-7702 delegation), signed batches expire
//! and never settle twice, authorship cannot be stolen, stakes cannot get stuck, governance
//! changes nothing retroactively, and settlement respects the model's state and serve list.

use alloy::{
    primitives::{Address, U256, keccak256},
    sol_types::{SolCall, SolConstructor, SolError},
};
use openledger_primitives::{
    bindings::{
        DatanetRegistry, ModelRegistry, OpenToken, OperatorRegistry, Settlement, TestWallet,
        contribution_status, reward_kind, skip_reason,
    },
    eip712::sign_voucher,
    split::SplitPolicy,
};

use crate::{
    backend::{Chain, Outcome},
    fixtures::{
        Charge, DATANET, MODEL, SignedBatch, add_contribution, approve, balance, build_batch,
        commit_contribution, deposit_for, escrow, fund, permit_for_settlement, register_operator,
        reveal_call, settle_world_batch, snapshot, world, world_attribution, world_batch,
    },
    invariants::assert_escrow_invariant,
    scenario,
    suite::{Receipt, Suite, open},
};

/// One charge of `amount` OPEN on model 1 with a 100 OPEN cap.
fn charge(user: &alloy::signers::local::PrivateKeySigner, amount: u64) -> Charge {
    Charge {
        user: user.clone(),
        model: U256::from(MODEL),
        amount: open(amount),
        cap: open(100),
    }
}

/// The reason of the one skipped debit of a settled batch.
fn skip_reasons(r: &crate::suite::Receipt, s: Address) -> Vec<(Address, u8)> {
    r.events::<Settlement::DebitSkipped>(s)
        .into_iter()
        .map(|e| (e.user, e.reason))
        .collect()
}

/// Given a user served against an escrow, when it asks for its money back, then the operator can
/// still settle during the withdrawal delay, `guaranteed` drops at once, and the user only gets
/// what is left after the delay.
pub async fn served_work_settles_before_a_withdrawal<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    let op = a.operator.address();
    let served = world_batch(&s, 1, open(40), U256::ZERO).await; // served, signed, not yet landed
    s.ok(
        &a.carol,
        s.settlement(),
        Settlement::requestWithdrawalCall {
            operator: op,
            amount: open(500),
        },
    )
    .await;
    let guaranteed = s
        .view(
            s.settlement(),
            Settlement::guaranteedCall {
                user: a.carol.address(),
                operator: op,
            },
        )
        .await;
    assert_eq!(
        guaranteed,
        U256::ZERO,
        "nothing is guaranteed beyond a live request"
    );
    s.ok(&a.bob, s.settlement(), served.call()).await;
    s.advance(86_400).await;
    let r = s
        .ok(
            &a.carol,
            s.settlement(),
            Settlement::withdrawCall { operator: op },
        )
        .await;
    assert_eq!(
        r.event::<Settlement::Withdrawn>(s.settlement()).amount,
        open(460)
    );
    assert_escrow_invariant(&s).await;
}
scenario!(served_work_settles_before_a_withdrawal);

/// Given one deposit, when the user signs full-balance vouchers to two operators, then only the
/// operator the deposit was made for collects; a user acting as its own operator takes nothing
/// from the escrow another operator counts on.
pub async fn one_deposit_backs_one_operator<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    // alice runs a second operator serving model 1.
    register_operator(&s, &a.alice, a.alice.address(), U256::from(MODEL)).await;
    let to_alice = build_batch(
        &s,
        a.alice.address(),
        &a.alice,
        1,
        &[Charge {
            cap: open(500),
            ..charge(&a.carol, 500)
        }],
        &world_attribution(),
    )
    .await;
    let r = s.ok(&a.alice, s.settlement(), to_alice.call()).await;
    assert_eq!(
        skip_reasons(&r, s.settlement()),
        [(a.carol.address(), skip_reason::INSUFFICIENT_ESCROW)]
    );
    let to_operator = build_batch(
        &s,
        a.operator.address(),
        &a.operator_key,
        1,
        &[Charge {
            cap: open(500),
            ..charge(&a.carol, 500)
        }],
        &world_attribution(),
    )
    .await;
    let r = s.ok(&a.operator, s.settlement(), to_operator.call()).await;
    assert_eq!(r.events::<Settlement::Charged>(s.settlement()).len(), 1);

    // dave becomes an operator of its own and settles against itself: its escrow for the
    // world's operator is untouched.
    register_operator(&s, &a.dave, a.dave.address(), U256::from(MODEL)).await;
    let own = build_batch(
        &s,
        a.dave.address(),
        &a.dave,
        1,
        &[charge(&a.dave, 100)],
        &world_attribution(),
    )
    .await;
    let r = s.ok(&a.dave, s.settlement(), own.call()).await;
    assert_eq!(
        skip_reasons(&r, s.settlement()),
        [(a.dave.address(), skip_reason::INSUFFICIENT_ESCROW)]
    );
    assert_eq!(
        escrow(&s, a.dave.address(), a.operator.address()).await,
        open(500)
    );
    // The same user can fund two operators separately.
    deposit_for(&s, &a.dave, a.alice.address(), open(50)).await;
    let b = build_batch(
        &s,
        a.alice.address(),
        &a.alice,
        2,
        &[charge(&a.dave, 50)],
        &world_attribution(),
    )
    .await;
    s.ok(&a.alice, s.settlement(), b.call()).await;
    assert_eq!(
        escrow(&s, a.dave.address(), a.alice.address()).await,
        U256::ZERO
    );
    assert_escrow_invariant(&s).await;
}
scenario!(one_deposit_backs_one_operator);

/// Given a withdrawal request, when its window passes unused, then it is void: it cannot be
/// used later to exit ahead of a batch, and `guaranteed` is whole again.
pub async fn withdrawal_requests_expire<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    let op = a.operator.address();
    let r = s
        .ok(
            &a.carol,
            s.settlement(),
            Settlement::requestWithdrawalCall {
                operator: op,
                amount: open(100),
            },
        )
        .await;
    let req = r.event::<Settlement::WithdrawalRequested>(s.settlement());
    assert_eq!(req.expiresAt, req.readyAt + 2 * 86_400);
    let e = s
        .view(
            s.settlement(),
            Settlement::escrowOfCall {
                user: a.carol.address(),
                operator: op,
            },
        )
        .await;
    assert_eq!((e.balance, e.pending), (open(500), open(100)));
    s.advance(3 * 86_400 + 1).await;
    let err = s
        .reverts::<_, Settlement::WithdrawalExpired>(
            &a.carol,
            s.settlement(),
            Settlement::withdrawCall { operator: op },
        )
        .await;
    assert_eq!(err.expiresAt, req.expiresAt);
    let e = s
        .view(
            s.settlement(),
            Settlement::escrowOfCall {
                user: a.carol.address(),
                operator: op,
            },
        )
        .await;
    assert_eq!(e.pending, U256::ZERO);
    assert_eq!(
        s.view(
            s.settlement(),
            Settlement::guaranteedCall {
                user: a.carol.address(),
                operator: op,
            },
        )
        .await,
        open(500)
    );
}
scenario!(withdrawal_requests_expire);

/// Given a batch for two users, when one of them has emptied its escrow before the batch
/// lands, then that debit is skipped with its reason, the other settles, the data credits are
/// paid from what was collected, and the operator's next batch still settles.
pub async fn a_drained_escrow_cannot_veto_a_batch<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    let op = a.operator.address();
    s.ok(
        &a.carol,
        s.settlement(),
        Settlement::requestWithdrawalCall {
            operator: op,
            amount: open(500),
        },
    )
    .await;
    s.advance(86_400).await;
    s.ok(
        &a.carol,
        s.settlement(),
        Settlement::withdrawCall { operator: op },
    )
    .await;
    let b = world_batch(&s, 1, open(10), open(20)).await;
    let r = s.ok(&a.operator, s.settlement(), b.call()).await;
    assert_eq!(
        skip_reasons(&r, s.settlement()),
        [(a.carol.address(), skip_reason::INSUFFICIENT_ESCROW)]
    );
    let settled = r.event::<Settlement::BatchSettled>(s.settlement());
    assert_eq!(
        (settled.totalCharged, settled.collected, settled.skipped),
        (open(20), U256::from(1), U256::from(1))
    );
    let credited: U256 = r
        .events::<Settlement::RewardCredited>(s.settlement())
        .iter()
        .map(|c| c.amount)
        .sum();
    assert_eq!(
        credited,
        open(20),
        "credits are paid from what was collected"
    );
    let alice = r
        .events::<Settlement::RewardCredited>(s.settlement())
        .into_iter()
        .find(|c| c.kind == reward_kind::CONTRIBUTION && c.sourceId == U256::from(1))
        .unwrap();
    assert_eq!(
        alice.amount,
        SplitPolicy::default().split(open(20)).data * U256::from(6) / U256::from(10)
    );
    settle_world_batch(&s, 2, U256::ZERO, open(1)).await;
    assert_escrow_invariant(&s).await;
}
scenario!(a_drained_escrow_cannot_veto_a_batch);

/// Deploys a [`TestWallet`] owned by `owner`, funds it with `amount` OPEN and deposits them for
/// the world's operator from the wallet.
async fn funded_wallet<C: Chain>(
    s: &Suite<C>,
    owner: &alloy::signers::local::PrivateKeySigner,
    amount: U256,
) -> Address {
    let init = [
        s.chain
            .code("TestWallet")
            .expect("the backend has a test wallet")
            .to_vec(),
        TestWallet::constructorCall {
            owner_: owner.address(),
        }
        .abi_encode(),
    ]
    .concat();
    let wallet = s
        .chain
        .deploy_contract(owner.address(), init.into())
        .await
        .unwrap();
    fund(s, wallet, amount).await;
    let execute = |target: Address, data: Vec<u8>| TestWallet::executeCall {
        target,
        data: data.into(),
    };
    s.ok(
        owner,
        wallet,
        execute(
            s.token(),
            OpenToken::approveCall {
                spender: s.settlement(),
                value: amount,
            }
            .abi_encode(),
        ),
    )
    .await;
    s.ok(
        owner,
        wallet,
        execute(
            s.settlement(),
            Settlement::depositCall {
                operator: s.actors.operator.address(),
                amount,
            }
            .abi_encode(),
        ),
    )
    .await;
    wallet
}

/// A batch `sequence` charging `amount` OPEN to `wallet`, whose voucher `owner` signs (the
/// wallet accepts its owner's signatures).
async fn wallet_batch<C: Chain>(
    s: &Suite<C>,
    sequence: u64,
    wallet: Address,
    owner: &alloy::signers::local::PrivateKeySigner,
    amount: u64,
) -> SignedBatch {
    let a = &s.actors;
    let mut b = build_batch(
        s,
        a.operator.address(),
        &a.operator_key,
        sequence,
        &[charge(owner, amount)],
        &world_attribution(),
    )
    .await;
    b.batch.debits[0].user = wallet;
    let mut v = b.vouchers[0].voucher.clone();
    v.user = wallet;
    b.vouchers[0] = sign_voucher(owner, &s.domain, &v).await.unwrap();
    b.resign(&s.domain, &a.operator_key).await;
    b
}

/// Given a smart-contract (ERC-1271) user, then a valid answer is collected, a wallet that
/// flipped to refusing after signing is skipped, and one that burns all the gas it is given is
/// skipped after its bounded stipend, with the rest of the batch unaffected each time.
pub async fn erc1271_wallets_cannot_veto_a_batch<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    let wallet = funded_wallet(&s, &a.carol, open(100)).await;
    let b = wallet_batch(&s, 1, wallet, &a.carol, 5).await;
    let r = s.ok(&a.operator, s.settlement(), b.call()).await;
    assert_eq!(
        r.events::<Settlement::Charged>(s.settlement())[0].user,
        wallet
    );
    let paying_gas = r.gas_used;

    for (sequence, mode) in [(2u64, 1u8), (3, 2)] {
        let b = wallet_batch(&s, sequence, wallet, &a.carol, 5).await;
        s.ok(&a.carol, wallet, TestWallet::setModeCall { mode_: mode })
            .await;
        let r = s.ok(&a.operator, s.settlement(), b.call()).await;
        assert_eq!(
            skip_reasons(&r, s.settlement()),
            [(wallet, skip_reason::INVALID_SIGNATURE)]
        );
        // The stipend is far below a whole batch on either backend (50,000 EVM gas; the ink!
        // implementation's reference-time stipend), so an unbounded wallet would blow this.
        assert!(
            r.gas_used < 2 * paying_gas,
            "a gas-burning wallet costs at most its stipend ({} gas used, {paying_gas} paying)",
            r.gas_used
        );
        s.ok(&a.carol, wallet, TestWallet::setModeCall { mode_: 0 })
            .await;
    }
    assert_eq!(escrow(&s, wallet, a.operator.address()).await, open(95));
    assert_escrow_invariant(&s).await;
}
scenario!(erc1271_wallets_cannot_veto_a_batch);

/// Given a smart-contract wallet that accepts its voucher, when a submitter gives the batch
/// too little gas for the wallet check at any limit, then the call reverts (with
/// `NotEnoughGasForWalletCheck` where the check is reached), never settles with the wallet's
/// debit skipped: starving the stipend cannot turn a paying user into a skipped one.
pub async fn a_starved_wallet_check_reverts_instead_of_skipping<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    let wallet = funded_wallet(&s, &a.carol, open(100)).await;
    let b = wallet_batch(&s, 1, wallet, &a.carol, 5).await;
    let before = snapshot(&s).await;
    let mut guarded = 0;
    // Limits rise by 4,000 gas or 1/64, whichever is more: fine enough to land inside the
    // stipend's window on both backends (pallet-revive's gas is about 13x the EVM's).
    let mut gas: u64 = 100_000;
    let settled = loop {
        assert!(gas < 200_000_000, "the batch never settled");
        match s
            .send_with_gas(&a.operator, s.settlement(), b.call(), gas)
            .await
        {
            Outcome::Revert(data) => {
                if Settlement::NotEnoughGasForWalletCheck::abi_decode(&data).is_ok() {
                    guarded += 1;
                }
                assert_eq!(
                    snapshot(&s).await,
                    before,
                    "a reverted call changes nothing"
                );
            }
            success => break Receipt::of(success),
        }
        gas += (gas / 64).max(4_000);
    };
    assert!(guarded > 0, "some limits reach the guard");
    assert!(
        skip_reasons(&settled, s.settlement()).is_empty(),
        "the wallet's debit is never skipped"
    );
    assert_eq!(
        settled.events::<Settlement::Charged>(s.settlement())[0].user,
        wallet
    );
    assert_eq!(escrow(&s, wallet, a.operator.address()).await, open(95));
}
scenario!(a_starved_wallet_check_reverts_instead_of_skipping);

/// Given an EOA that signed a voucher, when it later delegates its code (EIP-7702) to a
/// contract that refuses every signature, then its key's signature still collects.
pub async fn eip7702_delegation_after_signing_still_pays<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    let b = world_batch(&s, 1, U256::ZERO, open(3)).await;
    let refusing = s
        .chain
        .deploy_contract(
            a.governance.address(),
            [
                s.chain
                    .code("TestWallet")
                    .expect("the backend has a test wallet")
                    .to_vec(),
                TestWallet::constructorCall {
                    owner_: Address::ZERO,
                }
                .abi_encode(),
            ]
            .concat()
            .into(),
        )
        .await
        .unwrap();
    s.chain.delegate(&a.dave, refusing).await.unwrap();
    // dave's account now runs the delegate's code (an EOA would answer nothing).
    assert_eq!(s.view(a.dave.address(), TestWallet::modeCall {}).await, 0);
    let r = s.ok(&a.operator, s.settlement(), b.call()).await;
    assert_eq!(r.events::<Settlement::Charged>(s.settlement()).len(), 1);
    assert_escrow_invariant(&s).await;
}
scenario!(eip7702_delegation_after_signing_still_pays);

/// Given signed batches, then one past its deadline never settles, and of two batches signed
/// with one sequence number only the first to land settles: nobody is charged twice.
pub async fn signed_batches_expire_and_never_settle_twice<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    let mut late = world_batch(&s, 1, open(1), U256::ZERO).await;
    late.batch.deadline = s.now().await + 60;
    late.resign(&s.domain, &a.operator_key).await;
    s.advance(120).await;
    let before = snapshot(&s).await;
    let err = s
        .reverts::<_, Settlement::BatchExpired>(&a.operator, s.settlement(), late.call())
        .await;
    assert_eq!(err.deadline, late.batch.deadline);
    assert_eq!(snapshot(&s).await, before);

    let first = world_batch(&s, 1, open(2), U256::ZERO).await;
    let replacement = world_batch(&s, 1, open(2), open(3)).await;
    s.ok(&a.operator, s.settlement(), replacement.call()).await;
    let err = s
        .reverts::<_, Settlement::BadSequence>(&a.operator, s.settlement(), first.call())
        .await;
    assert_eq!((err.expected, err.got), (2, 1));
    assert_eq!(
        escrow(&s, a.carol.address(), a.operator.address()).await,
        open(498)
    );
}
scenario!(signed_batches_expire_and_never_settle_twice);

/// Given batches signed by the operator's key, when the operator rotates its signer, then the
/// pending batches are refused (a leaked old key is worthless) and the same contents signed by
/// the new key settle.
pub async fn signer_rotation_refuses_pending_batches<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    let mut pending = world_batch(&s, 1, open(1), open(1)).await;
    s.ok(
        &a.operator,
        s.operators(),
        OperatorRegistry::setSignerCall {
            signer: a.bob.address(),
        },
    )
    .await;
    let before = snapshot(&s).await;
    s.reverts::<_, Settlement::InvalidOperatorSignature>(
        &a.operator,
        s.settlement(),
        pending.call(),
    )
    .await;
    assert_eq!(snapshot(&s).await, before);
    pending.resign(&s.domain, &a.bob).await;
    s.ok(&a.operator, s.settlement(), pending.call()).await;
}
scenario!(signer_rotation_refuses_pending_batches);

/// Given content committed by its author, then nobody can claim it first without an older
/// commitment, a copy revealed later is a duplicate, and after a rejection the hash stays
/// reserved for its author: the curator cannot re-add it as its own.
pub async fn authorship_cannot_be_stolen<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    let d = U256::from(DATANET);
    let text = "an original paragraph about tide pools";
    commit_contribution(&s, &a.alice, d, text).await;
    // A front-runner who saw the reveal has no commitment of its own.
    s.reverts::<_, DatanetRegistry::NotCommitted>(
        &a.bob,
        s.datanets(),
        reveal_call(d, text, U256::ZERO),
    )
    .await;
    commit_contribution(&s, &a.bob, d, text).await;
    let r = s
        .ok(&a.alice, s.datanets(), reveal_call(d, text, U256::ZERO))
        .await;
    let id = r
        .event::<DatanetRegistry::ContributionAdded>(s.datanets())
        .contributionId;
    s.reverts::<_, DatanetRegistry::DuplicateContent>(
        &a.bob,
        s.datanets(),
        reveal_call(d, text, U256::ZERO),
    )
    .await;
    assert_eq!(
        s.view(
            s.datanets(),
            DatanetRegistry::contentAuthorCall {
                datanetId: d,
                contentHash: keccak256(text),
            },
        )
        .await
        .author,
        a.alice.address()
    );
    // The curator rejects it, then tries to add the same content itself.
    s.ok(
        &a.curator,
        s.datanets(),
        DatanetRegistry::rejectContributionCall {
            contributionId: id,
            slash: false,
        },
    )
    .await;
    commit_contribution(&s, &a.curator, d, text).await;
    let err = s
        .reverts::<_, DatanetRegistry::ContentReserved>(
            &a.curator,
            s.datanets(),
            reveal_call(d, text, U256::ZERO),
        )
        .await;
    assert_eq!(err.author, a.alice.address());
    // Its author may submit it again.
    let again = add_contribution(&s, &a.alice, d, text, U256::ZERO).await;
    assert!(again > id);
    // Slashing a stake of zero is refused.
    s.reverts::<_, DatanetRegistry::ZeroAmount>(
        &a.curator,
        s.datanets(),
        DatanetRegistry::rejectContributionCall {
            contributionId: again,
            slash: true,
        },
    )
    .await;
}
scenario!(authorship_cannot_be_stolen);

/// Given a staked contribution curators never act on, then its contributor takes the stake
/// back after the curation timeout, not before, and nobody else can.
pub async fn stuck_stakes_are_withdrawn_after_the_curation_timeout<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    fund(&s, a.bob.address(), open(10)).await;
    let id = add_contribution(&s, &a.bob, U256::from(DATANET), "unreviewed text", open(10)).await;
    let held = balance(&s, a.bob.address()).await;
    s.reverts::<_, DatanetRegistry::CurationNotTimedOut>(
        &a.bob,
        s.datanets(),
        DatanetRegistry::withdrawContributionCall { contributionId: id },
    )
    .await;
    s.advance(14 * 86_400).await;
    s.reverts::<_, DatanetRegistry::NotContributor>(
        &a.alice,
        s.datanets(),
        DatanetRegistry::withdrawContributionCall { contributionId: id },
    )
    .await;
    let r = s
        .ok(
            &a.bob,
            s.datanets(),
            DatanetRegistry::withdrawContributionCall { contributionId: id },
        )
        .await;
    assert_eq!(
        r.event::<DatanetRegistry::ContributionWithdrawn>(s.datanets())
            .stake,
        open(10)
    );
    assert_eq!(balance(&s, a.bob.address()).await, held + open(10));
    let c = s
        .view(
            s.datanets(),
            DatanetRegistry::getContributionCall { contributionId: id },
        )
        .await;
    assert_eq!(c.status, contribution_status::WITHDRAWN);
    s.reverts::<_, DatanetRegistry::NotCurator>(
        &a.alice,
        s.datanets(),
        DatanetRegistry::acceptContributionCall { contributionId: id },
    )
    .await;
}
scenario!(stuck_stakes_are_withdrawn_after_the_curation_timeout);

/// Given governance, then a new minimum stake or cooldown applies only one cooldown later (the
/// operator keeps settling until then), and a slash needs a non-zero amount.
pub async fn governance_changes_to_operators_are_delayed<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    let cooldown = s
        .view(s.operators(), OperatorRegistry::unstakeCooldownCall {})
        .await;
    let r = s
        .ok(
            &a.governance,
            s.operators(),
            OperatorRegistry::setMinStakeCall {
                minStake_: open(5_000),
            },
        )
        .await;
    assert_eq!(
        r.event::<OperatorRegistry::MinStakeChanged>(s.operators())
            .effectiveAt,
        s.now().await + cooldown
    );
    s.ok(
        &a.governance,
        s.operators(),
        OperatorRegistry::setUnstakeCooldownCall { cooldown: 3_600 },
    )
    .await;
    assert_eq!(
        s.view(s.operators(), OperatorRegistry::minStakeCall {})
            .await,
        open(1_000)
    );
    settle_world_batch(&s, 1, open(1), U256::ZERO).await;
    s.advance(cooldown).await;
    assert_eq!(
        s.view(s.operators(), OperatorRegistry::minStakeCall {})
            .await,
        open(5_000)
    );
    assert_eq!(
        s.view(s.operators(), OperatorRegistry::unstakeCooldownCall {})
            .await,
        3_600
    );
    s.reverts::<_, Settlement::OperatorNotActive>(
        &a.operator,
        s.settlement(),
        world_batch(&s, 2, open(1), U256::ZERO).await.call(),
    )
    .await;
    s.reverts::<_, OperatorRegistry::ZeroAmount>(
        &a.governance,
        s.operators(),
        OperatorRegistry::slashCall {
            operator: a.operator.address(),
            amount: U256::ZERO,
            reason: "nothing".into(),
        },
    )
    .await;
}
scenario!(governance_changes_to_operators_are_delayed);

/// Given a model its developer deactivates, then usage settles for one withdrawal delay after,
/// then is skipped; an operator that stops serving a model cannot charge for it.
pub async fn settlement_respects_model_state_and_serve_list<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    s.ok(
        &a.developer,
        s.models(),
        ModelRegistry::deactivateCall {
            modelId: U256::from(MODEL),
        },
    )
    .await;
    let r = settle_world_batch(&s, 1, open(1), U256::ZERO).await;
    assert_eq!(r.events::<Settlement::Charged>(s.settlement()).len(), 1);
    s.advance(86_400 + 1).await;
    let r = settle_world_batch(&s, 2, open(1), U256::ZERO).await;
    assert_eq!(
        skip_reasons(&r, s.settlement()),
        [(a.carol.address(), skip_reason::MODEL_INACTIVE)]
    );
}
scenario!(settlement_respects_model_state_and_serve_list);

/// Given an operator that no longer serves a model, then its debits for it are skipped.
pub async fn unserved_models_are_not_charged<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    let b = world_batch(&s, 1, open(1), open(1)).await;
    s.ok(
        &a.operator,
        s.operators(),
        OperatorRegistry::setServingCall {
            modelId: U256::from(MODEL),
            serving: false,
        },
    )
    .await;
    let r = s.ok(&a.operator, s.settlement(), b.call()).await;
    assert!(
        skip_reasons(&r, s.settlement())
            .iter()
            .all(|(_, reason)| *reason == skip_reason::MODEL_NOT_SERVED)
    );
    assert!(r.events::<Settlement::Charged>(s.settlement()).is_empty());
}
scenario!(unserved_models_are_not_charged);

/// Given the datanet owner and model developer roles, then each moves in two steps and later
/// rewards follow it; `claimTo` pays another account.
pub async fn roles_transfer_and_claim_to<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    let d = U256::from(DATANET);
    s.ok(
        &a.curator,
        s.datanets(),
        DatanetRegistry::transferDatanetCall {
            datanetId: d,
            next: a.bob.address(),
        },
    )
    .await;
    s.reverts::<_, DatanetRegistry::NotPendingOwner>(
        &a.alice,
        s.datanets(),
        DatanetRegistry::acceptDatanetCall { datanetId: d },
    )
    .await;
    s.ok(
        &a.bob,
        s.datanets(),
        DatanetRegistry::acceptDatanetCall { datanetId: d },
    )
    .await;
    s.ok(
        &a.developer,
        s.models(),
        ModelRegistry::transferModelCall {
            modelId: U256::from(MODEL),
            next: a.dave.address(),
        },
    )
    .await;
    s.reverts::<_, ModelRegistry::NotPendingDeveloper>(
        &a.alice,
        s.models(),
        ModelRegistry::acceptModelCall {
            modelId: U256::from(MODEL),
        },
    )
    .await;
    s.ok(
        &a.dave,
        s.models(),
        ModelRegistry::acceptModelCall {
            modelId: U256::from(MODEL),
        },
    )
    .await;
    let r = settle_world_batch(&s, 1, open(10), U256::ZERO).await;
    let credits = r.events::<Settlement::RewardCredited>(s.settlement());
    assert!(
        credits
            .iter()
            .any(|c| c.kind == reward_kind::DATANET && c.account == a.bob.address())
    );
    assert!(
        credits
            .iter()
            .any(|c| c.kind == reward_kind::DEVELOPER && c.account == a.dave.address())
    );
    let owed = s
        .view(
            s.settlement(),
            Settlement::claimableCall {
                account: a.dave.address(),
            },
        )
        .await;
    let before = balance(&s, a.treasury.address()).await;
    let r = s
        .ok(
            &a.dave,
            s.settlement(),
            Settlement::claimToCall {
                recipient: a.treasury.address(),
            },
        )
        .await;
    let claimed = r.event::<Settlement::Claimed>(s.settlement());
    assert_eq!(
        (claimed.recipient, claimed.amount),
        (a.treasury.address(), owed)
    );
    assert_eq!(balance(&s, a.treasury.address()).await, before + owed);
}
scenario!(roles_transfer_and_claim_to);

/// Given a settlement contract whose registries do not point at each other (an operator
/// registry naming another settlement), then its deployment is refused.
pub async fn unwired_deployments_are_refused<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    let init = [
        s.chain
            .code("Settlement")
            .expect("the backend has the contract")
            .to_vec(),
        Settlement::constructorCall {
            token_: s.token(),
            governance_: a.governance.address(),
            treasury_: a.treasury.address(),
            datanets_: s.datanets(),
            models_: s.models(),
            operators_: s.operators(),
            policy: SplitPolicy::default().into(),
            withdrawalDelay_: 0,
        }
        .abi_encode(),
    ]
    .concat();
    assert!(
        s.chain
            .deploy_contract(a.governance.address(), init.into())
            .await
            .is_err(),
        "a second settlement on the same operator registry deployed"
    );
}
scenario!(unwired_deployments_are_refused);

/// Given an operator with rewards vesting and stake in cooldown, then its rewards are not
/// claimable at once, and a slash takes from its stake, then its unstaking funds, then its
/// unvested rewards, all to the treasury.
pub async fn slashes_reach_unstaking_funds_and_unvested_rewards<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    let op = a.operator.address();
    settle_world_batch(&s, 1, open(100), U256::ZERO).await;
    let operator_share = SplitPolicy::default().split(open(100)).operator;
    s.reverts::<_, Settlement::NothingToClaim>(
        &a.operator,
        s.settlement(),
        Settlement::claimCall {},
    )
    .await;
    let stake = s
        .view(s.operators(), OperatorRegistry::minStakeCall {})
        .await;
    s.ok(
        &a.operator,
        s.operators(),
        OperatorRegistry::requestUnstakeCall {
            amount: stake / U256::from(2),
        },
    )
    .await;
    let treasury_before = s
        .view(
            s.settlement(),
            Settlement::claimableCall {
                account: a.treasury.address(),
            },
        )
        .await;
    let wanted = stake + open(5);
    let r = s
        .ok(
            &a.governance,
            s.operators(),
            OperatorRegistry::slashCall {
                operator: op,
                amount: wanted,
                reason: "fraud".into(),
            },
        )
        .await;
    let slashed = r.event::<OperatorRegistry::Slashed>(s.operators());
    assert_eq!(
        (slashed.amount, slashed.stake, slashed.unstaking),
        (wanted, U256::ZERO, U256::ZERO)
    );
    assert_eq!(
        r.event::<Settlement::RewardsSlashed>(s.settlement()).amount,
        open(5)
    );
    let vesting = s
        .view(s.settlement(), Settlement::vestingCall { operator: op })
        .await;
    assert_eq!(vesting.amount, operator_share - open(5));
    assert_eq!(
        s.view(
            s.settlement(),
            Settlement::claimableCall {
                account: a.treasury.address(),
            },
        )
        .await,
        treasury_before + open(5)
    );
    // The rest vests within two cooldowns and is then claimable.
    s.advance(14 * 86_400).await;
    let r = s
        .ok(&a.operator, s.settlement(), Settlement::claimCall {})
        .await;
    assert_eq!(
        r.event::<Settlement::Claimed>(s.settlement()).amount,
        operator_share - open(5)
    );
    assert_escrow_invariant(&s).await;
}
scenario!(slashes_reach_unstaking_funds_and_unvested_rewards);

/// Given a permit signature that someone else submits first, then `depositWithPermit` still
/// deposits (the allowance is in place) and the front-runner gains nothing.
pub async fn permit_front_run_does_not_block_the_deposit<C: Chain>(chain: C) {
    let s = world(chain).await;
    let a = s.actors.clone();
    fund(&s, a.carol.address(), open(100)).await;
    let deadline = U256::from(s.now().await + 600);
    let (v, r, s_) = permit_for_settlement(&s, &a.carol, open(100), deadline).await;
    // bob front-runs the permit itself.
    s.ok(
        &a.bob,
        s.token(),
        OpenToken::permitCall {
            owner: a.carol.address(),
            spender: s.settlement(),
            value: open(100),
            deadline,
            v,
            r,
            s: s_,
        },
    )
    .await;
    let bob_before = balance(&s, a.bob.address()).await;
    let rec = s
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
        rec.event::<Settlement::Deposited>(s.settlement()).balance,
        open(600)
    );
    assert_eq!(balance(&s, a.bob.address()).await, bob_before);
    approve(&s, &a.carol, s.settlement(), U256::ZERO).await;
    assert_escrow_invariant(&s).await;
}
scenario!(permit_front_run_does_not_block_the_deposit);
