//! Datanet, model and operator registries.

use alloy::primitives::{B256, U256, keccak256};
use openledger_primitives::bindings::{
    DatanetRegistry, ModelRegistry, OperatorRegistry, contribution_status,
};

use crate::{
    backend::Chain,
    fixtures::{
        accepted_contribution, add_contribution, approve, balance, commit_contribution, fund,
        reveal_call, snapshot,
    },
    scenario,
    suite::{Suite, open},
};

/// Given a datanet, when contributions are staked, accepted and rejected, then stakes move as
/// documented (returned on accept, slashed to the treasury or returned on reject) and every
/// change emits its event.
pub async fn datanet_contribution_lifecycle<C: Chain>(chain: C) {
    let s = Suite::deploy(chain).await;
    let a = s.actors.clone();
    let r = s
        .ok(
            &a.curator,
            s.datanets(),
            DatanetRegistry::createDatanetCall {
                metadataURI: "ipfs://d".into(),
                minAccepted: 1,
            },
        )
        .await;
    let e = r.event::<DatanetRegistry::DatanetCreated>(s.datanets());
    assert_eq!(
        (e.datanetId, e.owner, e.minAccepted),
        (U256::from(1), a.curator.address(), 1)
    );
    let d = U256::from(1);
    assert!(
        !s.view(
            s.datanets(),
            DatanetRegistry::meetsRequirementsCall { datanetId: d }
        )
        .await
    );

    fund(&s, a.alice.address(), open(30)).await;
    let c1 = add_contribution(&s, &a.alice, d, "first text", open(10)).await;
    let c2 = add_contribution(&s, &a.alice, d, "second text", open(10)).await;
    let c3 = add_contribution(&s, &a.alice, d, "third text", open(10)).await;
    assert_eq!(balance(&s, s.datanets()).await, open(30));
    let c = s
        .view(
            s.datanets(),
            DatanetRegistry::getContributionCall { contributionId: c1 },
        )
        .await;
    assert_eq!(
        (c.status, c.stake, c.contentHash, c.contributor),
        (
            contribution_status::PENDING,
            open(10),
            keccak256("first text"),
            a.alice.address()
        )
    );

    // Accept: stake back to the contributor.
    let r = s
        .ok(
            &a.curator,
            s.datanets(),
            DatanetRegistry::acceptContributionCall { contributionId: c1 },
        )
        .await;
    assert_eq!(
        r.event::<DatanetRegistry::ContributionAccepted>(s.datanets())
            .curator,
        a.curator.address()
    );
    assert_eq!(balance(&s, a.alice.address()).await, open(10));
    assert!(
        s.view(
            s.datanets(),
            DatanetRegistry::meetsRequirementsCall { datanetId: d }
        )
        .await
    );
    assert_eq!(
        s.view(
            s.datanets(),
            DatanetRegistry::getDatanetCall { datanetId: d }
        )
        .await
        .acceptedCount,
        1
    );

    // Reject with slash: stake to the treasury.
    let treasury_before = balance(&s, a.treasury.address()).await;
    let r = s
        .ok(
            &a.curator,
            s.datanets(),
            DatanetRegistry::rejectContributionCall {
                contributionId: c2,
                slash: true,
            },
        )
        .await;
    assert_eq!(
        r.event::<DatanetRegistry::ContributionRejected>(s.datanets())
            .slashed,
        open(10)
    );
    assert_eq!(
        balance(&s, a.treasury.address()).await,
        treasury_before + open(10)
    );

    // Reject without slash: stake returned.
    let r = s
        .ok(
            &a.curator,
            s.datanets(),
            DatanetRegistry::rejectContributionCall {
                contributionId: c3,
                slash: false,
            },
        )
        .await;
    assert_eq!(
        r.event::<DatanetRegistry::ContributionRejected>(s.datanets())
            .slashed,
        U256::ZERO
    );
    assert_eq!(balance(&s, a.alice.address()).await, open(20));
    assert_eq!(balance(&s, s.datanets()).await, U256::ZERO);
    let (_, _, status) = s
        .view(
            s.datanets(),
            DatanetRegistry::contributionOwnerCall { contributionId: c3 },
        )
        .await
        .into();
    assert_eq!(status, contribution_status::REJECTED);

    // Curated twice.
    let err = s
        .reverts::<_, DatanetRegistry::NotPending>(
            &a.curator,
            s.datanets(),
            DatanetRegistry::acceptContributionCall { contributionId: c1 },
        )
        .await;
    assert_eq!(err.status, contribution_status::ACCEPTED);
}
scenario!(datanet_contribution_lifecycle);

/// Given a datanet, then only its owner and governance-appointed curators curate; bad input is
/// refused with a clear error and changes nothing.
pub async fn datanet_curation_is_access_controlled<C: Chain>(chain: C) {
    let s = Suite::deploy(chain).await;
    let a = s.actors.clone();
    s.ok(
        &a.curator,
        s.datanets(),
        DatanetRegistry::createDatanetCall {
            metadataURI: "ipfs://d".into(),
            minAccepted: 0,
        },
    )
    .await;
    let d = U256::from(1);
    let c = add_contribution(&s, &a.alice, d, "some text", U256::ZERO).await;

    let before = snapshot(&s).await;
    let err = s
        .reverts::<_, DatanetRegistry::NotCurator>(
            &a.bob,
            s.datanets(),
            DatanetRegistry::acceptContributionCall { contributionId: c },
        )
        .await;
    assert_eq!(err.caller, a.bob.address());
    s.reverts::<_, DatanetRegistry::NotCurator>(
        &a.bob,
        s.datanets(),
        DatanetRegistry::rejectContributionCall {
            contributionId: c,
            slash: true,
        },
    )
    .await;
    s.reverts::<_, DatanetRegistry::NotGovernance>(
        &a.bob,
        s.datanets(),
        DatanetRegistry::setCuratorCall {
            datanetId: d,
            curator: a.bob.address(),
            enabled: true,
        },
    )
    .await;
    s.reverts::<_, DatanetRegistry::EmptyContribution>(
        &a.alice,
        s.datanets(),
        DatanetRegistry::addContributionCall {
            datanetId: d,
            contentHash: keccak256("x"),
            tokens: 0,
            uri: String::new(),
            stake: U256::ZERO,
            salt: B256::ZERO,
        },
    )
    .await;
    commit_contribution(&s, &a.bob, d, "some text").await;
    s.reverts::<_, DatanetRegistry::DuplicateContent>(
        &a.bob,
        s.datanets(),
        reveal_call(d, "some text", U256::ZERO),
    )
    .await;
    s.reverts::<_, DatanetRegistry::UnknownDatanet>(
        &a.bob,
        s.datanets(),
        DatanetRegistry::addContributionCall {
            datanetId: U256::from(9),
            contentHash: keccak256("y"),
            tokens: 1,
            uri: String::new(),
            stake: U256::ZERO,
            salt: B256::ZERO,
        },
    )
    .await;
    assert_eq!(snapshot(&s).await, before);

    // Governance appoints bob; now bob curates.
    let r = s
        .ok(
            &a.governance,
            s.datanets(),
            DatanetRegistry::setCuratorCall {
                datanetId: d,
                curator: a.bob.address(),
                enabled: true,
            },
        )
        .await;
    assert!(r.event::<DatanetRegistry::CuratorSet>(s.datanets()).enabled);
    s.ok(
        &a.bob,
        s.datanets(),
        DatanetRegistry::acceptContributionCall { contributionId: c },
    )
    .await;
}
scenario!(datanet_curation_is_access_controlled);

/// Given datanets with and without enough accepted contributions, then registration succeeds
/// only on those that meet their requirements; versions record lineage; price changes and
/// deactivation are the developer's alone.
pub async fn model_registration_versions_and_lineage<C: Chain>(chain: C) {
    let s = Suite::deploy(chain).await;
    let a = s.actors.clone();
    for min in [1, 5] {
        s.ok(
            &a.curator,
            s.datanets(),
            DatanetRegistry::createDatanetCall {
                metadataURI: "ipfs://d".into(),
                minAccepted: min,
            },
        )
        .await;
    }
    let (d1, d2) = (U256::from(1), U256::from(2));
    accepted_contribution(&s, &a.curator, &a.alice, d1, "alpha").await;
    let register = |ids: Vec<U256>| ModelRegistry::registerModelCall {
        datanetIds: ids,
        baseModelHash: keccak256("base"),
        adapterHash: keccak256("v1"),
        adapterURI: "ipfs://v1".into(),
        pricePer1kTokens: open(1),
    };
    let err = s
        .reverts::<_, ModelRegistry::DatanetRequirementsNotMet>(
            &a.developer,
            s.models(),
            register(vec![d1, d2]),
        )
        .await;
    assert_eq!(err.datanetId, d2);
    s.reverts::<_, ModelRegistry::NoDatanets>(&a.developer, s.models(), register(vec![]))
        .await;
    s.reverts::<_, ModelRegistry::DatanetListInvalid>(
        &a.developer,
        s.models(),
        register(vec![d1, d1]),
    )
    .await;

    let r = s.ok(&a.developer, s.models(), register(vec![d1])).await;
    let e = r.event::<ModelRegistry::ModelRegistered>(s.models());
    assert_eq!(
        (e.modelId, e.developer, e.pricePer1kTokens),
        (U256::from(1), a.developer.address(), open(1))
    );
    let v = r.event::<ModelRegistry::ModelVersionAdded>(s.models());
    assert_eq!(
        (v.version, v.parentVersion, v.addedDatanetIds.clone()),
        (1, 0, vec![d1])
    );
    let m = U256::from(1);
    assert!(
        s.view(
            s.models(),
            ModelRegistry::usesDatanetCall {
                modelId: m,
                datanetId: d1
            }
        )
        .await
    );
    assert!(
        !s.view(
            s.models(),
            ModelRegistry::usesDatanetCall {
                modelId: m,
                datanetId: d2
            }
        )
        .await
    );

    // Version 2 derived from 1, adding datanet 2 once it meets its requirements.
    let add_v2 = ModelRegistry::addVersionCall {
        modelId: m,
        parentVersion: 1,
        adapterHash: keccak256("v2"),
        adapterURI: "ipfs://v2".into(),
        addedDatanetIds: vec![d2],
    };
    s.reverts::<_, ModelRegistry::DatanetRequirementsNotMet>(
        &a.developer,
        s.models(),
        add_v2.clone(),
    )
    .await;
    for text in ["b1", "b2", "b3", "b4", "b5"] {
        accepted_contribution(&s, &a.curator, &a.bob, d2, text).await;
    }
    s.reverts::<_, ModelRegistry::NotDeveloper>(&a.alice, s.models(), add_v2.clone())
        .await;
    s.reverts::<_, ModelRegistry::UnknownVersion>(
        &a.developer,
        s.models(),
        ModelRegistry::addVersionCall {
            parentVersion: 7,
            ..add_v2.clone()
        },
    )
    .await;
    let r = s.ok(&a.developer, s.models(), add_v2).await;
    assert_eq!(
        r.event::<ModelRegistry::ModelVersionAdded>(s.models())
            .version,
        2
    );
    assert_eq!(
        s.view(s.models(), ModelRegistry::modelDatanetsCall { modelId: m })
            .await,
        vec![d1, d2]
    );
    let v2 = s
        .view(
            s.models(),
            ModelRegistry::getVersionCall {
                modelId: m,
                version: 2,
            },
        )
        .await;
    assert_eq!((v2.parentVersion, v2.adapterHash), (1, keccak256("v2")));

    let r = s
        .ok(
            &a.developer,
            s.models(),
            ModelRegistry::setPriceCall {
                modelId: m,
                pricePer1kTokens: open(3),
            },
        )
        .await;
    assert_eq!(
        r.event::<ModelRegistry::ModelPriceChanged>(s.models())
            .pricePer1kTokens,
        open(3)
    );
    s.reverts::<_, ModelRegistry::NotDeveloper>(
        &a.alice,
        s.models(),
        ModelRegistry::deactivateCall { modelId: m },
    )
    .await;
    let r = s
        .ok(
            &a.developer,
            s.models(),
            ModelRegistry::deactivateCall { modelId: m },
        )
        .await;
    assert_eq!(
        r.event::<ModelRegistry::ModelDeactivated>(s.models())
            .modelId,
        m
    );
    assert!(
        !s.view(s.models(), ModelRegistry::getModelCall { modelId: m })
            .await
            .active
    );
    s.reverts::<_, ModelRegistry::ModelInactive>(
        &a.developer,
        s.models(),
        ModelRegistry::setPriceCall {
            modelId: m,
            pricePer1kTokens: open(1),
        },
    )
    .await;
    s.view_reverts::<_, ModelRegistry::UnknownModel>(
        s.models(),
        ModelRegistry::getModelCall {
            modelId: U256::from(5),
        },
    )
    .await;
}
scenario!(model_registration_versions_and_lineage);

/// Given an operator, when it stakes, sets a signer, serves, unstakes and is slashed, then its
/// status, stake and the treasury follow the rules, and only governance slashes.
pub async fn operator_stake_unstake_and_slash<C: Chain>(chain: C) {
    let s = Suite::deploy(chain).await;
    let a = s.actors.clone();
    let op = &a.operator;
    let min = s
        .view(s.operators(), OperatorRegistry::minStakeCall {})
        .await;
    fund(&s, op.address(), min * U256::from(2)).await;
    approve(&s, op, s.operators(), min * U256::from(2)).await;

    let r = s
        .ok(
            op,
            s.operators(),
            OperatorRegistry::stakeCall {
                amount: min * U256::from(2),
            },
        )
        .await;
    assert_eq!(
        r.event::<OperatorRegistry::Staked>(s.operators()).stake,
        min * U256::from(2)
    );
    assert!(
        !s.view(
            s.operators(),
            OperatorRegistry::isActiveCall {
                operator: op.address()
            }
        )
        .await,
        "no signer yet"
    );
    let r = s
        .ok(
            op,
            s.operators(),
            OperatorRegistry::setSignerCall {
                signer: a.operator_key.address(),
            },
        )
        .await;
    assert_eq!(
        r.event::<OperatorRegistry::SignerSet>(s.operators()).signer,
        a.operator_key.address()
    );
    assert!(
        s.view(
            s.operators(),
            OperatorRegistry::isActiveCall {
                operator: op.address()
            }
        )
        .await
    );
    let r = s
        .ok(
            op,
            s.operators(),
            OperatorRegistry::setServingCall {
                modelId: U256::from(1),
                serving: true,
            },
        )
        .await;
    assert!(
        r.event::<OperatorRegistry::ServingSet>(s.operators())
            .serving
    );
    assert!(
        s.view(
            s.operators(),
            OperatorRegistry::servesCall {
                operator: op.address(),
                modelId: U256::from(1)
            }
        )
        .await
    );

    // Unstake half: still active at the minimum; the rest waits out the cooldown.
    let r = s
        .ok(
            op,
            s.operators(),
            OperatorRegistry::requestUnstakeCall { amount: min },
        )
        .await;
    let e = r.event::<OperatorRegistry::UnstakeRequested>(s.operators());
    assert_eq!(e.unstaking, min);
    s.reverts::<_, OperatorRegistry::InsufficientStake>(
        op,
        s.operators(),
        OperatorRegistry::requestUnstakeCall {
            amount: min + U256::from(1),
        },
    )
    .await;
    let err = s
        .reverts::<_, OperatorRegistry::CooldownNotOver>(
            op,
            s.operators(),
            OperatorRegistry::withdrawUnstakedCall {},
        )
        .await;
    assert_eq!(err.readyAt, e.readyAt);
    let cooldown = s
        .view(s.operators(), OperatorRegistry::unstakeCooldownCall {})
        .await;
    s.advance(cooldown).await;
    let r = s
        .ok(op, s.operators(), OperatorRegistry::withdrawUnstakedCall {})
        .await;
    assert_eq!(
        r.event::<OperatorRegistry::Unstaked>(s.operators()).amount,
        min
    );
    assert_eq!(balance(&s, op.address()).await, min);
    s.reverts::<_, OperatorRegistry::NothingUnstaking>(
        op,
        s.operators(),
        OperatorRegistry::withdrawUnstakedCall {},
    )
    .await;

    // Only governance slashes; a slash takes stake to the treasury and deactivates for good.
    s.reverts::<_, OperatorRegistry::NotGovernance>(
        &a.alice,
        s.operators(),
        OperatorRegistry::slashCall {
            operator: op.address(),
            amount: min,
            reason: "x".into(),
        },
    )
    .await;
    let treasury_before = balance(&s, a.treasury.address()).await;
    let half = min / U256::from(2);
    let r = s
        .ok(
            &a.governance,
            s.operators(),
            OperatorRegistry::slashCall {
                operator: op.address(),
                amount: half,
                reason: "double signing".into(),
            },
        )
        .await;
    let e = r.event::<OperatorRegistry::Slashed>(s.operators());
    assert_eq!(
        (e.amount, e.stake, e.unstaking, e.reason.as_str()),
        (half, min - half, U256::ZERO, "double signing")
    );
    assert_eq!(
        balance(&s, a.treasury.address()).await,
        treasury_before + half
    );
    let o = s
        .view(
            s.operators(),
            OperatorRegistry::getOperatorCall {
                operator: op.address(),
            },
        )
        .await;
    assert!(o.slashed);
    assert_eq!(o.stake, min - half);
    assert!(
        !s.view(
            s.operators(),
            OperatorRegistry::isActiveCall {
                operator: op.address()
            }
        )
        .await
    );

    // Parameters: governance only, bounded, evented.
    let r = s
        .ok(
            &a.governance,
            s.operators(),
            OperatorRegistry::setMinStakeCall { minStake_: open(5) },
        )
        .await;
    assert_eq!(
        r.event::<OperatorRegistry::MinStakeChanged>(s.operators())
            .minStake,
        open(5)
    );
    let r = s
        .ok(
            &a.governance,
            s.operators(),
            OperatorRegistry::setUnstakeCooldownCall { cooldown: 3_600 },
        )
        .await;
    assert_eq!(
        r.event::<OperatorRegistry::UnstakeCooldownChanged>(s.operators())
            .cooldown,
        3_600
    );
    s.reverts::<_, OperatorRegistry::CooldownTooLong>(
        &a.governance,
        s.operators(),
        OperatorRegistry::setUnstakeCooldownCall {
            cooldown: 91 * 86_400,
        },
    )
    .await;
    s.reverts::<_, OperatorRegistry::NotGovernance>(
        &a.operator,
        s.operators(),
        OperatorRegistry::setMinStakeCall {
            minStake_: U256::ZERO,
        },
    )
    .await;
}
scenario!(operator_stake_unstake_and_slash);

/// Given the world, then the read-only views agree with what was done, and the EIP-712
/// digests the contract computes equal the ones signers compute off chain.
pub async fn views_and_digests_agree<C: Chain>(chain: C) {
    use openledger_primitives::{
        bindings::Settlement,
        eip712::{batch_digest, voucher_digest},
    };
    let s = crate::fixtures::world(chain).await;
    let a = s.actors.clone();
    assert_eq!(
        s.view(s.datanets(), DatanetRegistry::datanetCountCall {})
            .await,
        U256::from(1)
    );
    assert_eq!(
        s.view(s.datanets(), DatanetRegistry::contributionCountCall {})
            .await,
        U256::from(3)
    );
    assert!(
        s.view(
            s.datanets(),
            DatanetRegistry::isCuratorCall {
                datanetId: U256::from(1),
                account: a.curator.address()
            }
        )
        .await
    );
    assert!(
        !s.view(
            s.datanets(),
            DatanetRegistry::isCuratorCall {
                datanetId: U256::from(1),
                account: a.alice.address()
            }
        )
        .await
    );
    assert_eq!(
        s.view(
            s.datanets(),
            DatanetRegistry::datanetOwnerCall {
                datanetId: U256::from(1)
            }
        )
        .await,
        a.curator.address()
    );
    assert_eq!(
        s.view(s.datanets(), DatanetRegistry::treasuryCall {}).await,
        a.treasury.address()
    );
    assert_eq!(
        s.view(s.models(), ModelRegistry::modelCountCall {}).await,
        U256::from(1)
    );
    assert_eq!(
        s.view(
            s.models(),
            ModelRegistry::developerOfCall {
                modelId: U256::from(1)
            }
        )
        .await,
        a.developer.address()
    );
    assert_eq!(
        s.view(s.models(), ModelRegistry::datanetsCall {}).await,
        s.datanets()
    );
    assert_eq!(
        s.view(
            s.operators(),
            OperatorRegistry::signerOfCall {
                operator: a.operator.address()
            }
        )
        .await,
        a.operator_key.address()
    );
    assert_eq!(
        s.view(s.settlement(), Settlement::domainSeparatorCall {})
            .await,
        s.domain.separator()
    );
    assert_eq!(
        s.view(s.settlement(), Settlement::governanceCall {}).await,
        a.governance.address()
    );

    let b = crate::fixtures::world_batch(&s, 1, open(3), open(4)).await;
    let on_chain = s
        .view(
            s.settlement(),
            Settlement::batchDigestCall {
                batch: b.batch.clone(),
            },
        )
        .await;
    assert_eq!(on_chain, batch_digest(&s.domain, &b.batch));
    let v = b.vouchers[0].voucher.clone();
    assert_eq!(
        s.view(
            s.settlement(),
            Settlement::voucherDigestCall { v: v.clone() }
        )
        .await,
        voucher_digest(&s.domain, &v)
    );

    let r = s
        .ok(
            &a.governance,
            s.datanets(),
            DatanetRegistry::transferGovernanceCall {
                next: a.bob.address(),
            },
        )
        .await;
    let e = r.event::<DatanetRegistry::GovernanceTransferStarted>(s.datanets());
    assert_eq!(
        (e.current, e.pending),
        (a.governance.address(), a.bob.address())
    );
    assert_eq!(
        s.view(s.datanets(), DatanetRegistry::pendingGovernanceCall {})
            .await,
        a.bob.address()
    );
}
scenario!(views_and_digests_agree);
