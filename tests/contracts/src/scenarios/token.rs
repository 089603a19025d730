//! OPEN token: metadata, fixed supply, transfers, allowances, EIP-2612 permit.

use alloy::{
    primitives::U256,
    signers::Signer,
    sol,
    sol_types::{SolStruct, eip712_domain},
};
use openledger_primitives::bindings::OpenToken;

use crate::{
    backend::Chain,
    fixtures::balance,
    scenario,
    suite::{Suite, open},
};

sol! {
    /// EIP-2612's signed approval.
    struct Permit { address owner; address spender; uint256 value; uint256 nonce; uint256 deadline; }
}

/// Given a fresh deployment, then the whole fixed supply sits with the distribution address.
pub async fn token_has_fixed_supply_at_distribution<C: Chain>(chain: C) {
    let s = Suite::deploy(chain).await;
    let token = s.token();
    assert_eq!(s.view(token, OpenToken::nameCall {}).await, "OpenLedger");
    assert_eq!(s.view(token, OpenToken::symbolCall {}).await, "OPEN");
    assert_eq!(s.view(token, OpenToken::decimalsCall {}).await, 18);
    let supply = s.view(token, OpenToken::totalSupplyCall {}).await;
    assert_eq!(supply, open(1_000_000_000));
    assert_eq!(balance(&s, s.actors.governance.address()).await, supply);
}
scenario!(token_has_fixed_supply_at_distribution);

/// Given a holder, when it transfers and approves, then balances, allowances and events follow.
pub async fn token_transfers_and_allowances<C: Chain>(chain: C) {
    let s = Suite::deploy(chain).await;
    let (gov, alice, bob) = (&s.actors.governance, &s.actors.alice, &s.actors.bob);
    let r = s
        .ok(
            gov,
            s.token(),
            OpenToken::transferCall {
                to: alice.address(),
                value: open(10),
            },
        )
        .await;
    let e = r.event::<OpenToken::Transfer>(s.token());
    assert_eq!(
        (e.from, e.to, e.value),
        (gov.address(), alice.address(), open(10))
    );

    let r = s
        .ok(
            alice,
            s.token(),
            OpenToken::approveCall {
                spender: bob.address(),
                value: open(4),
            },
        )
        .await;
    assert_eq!(r.event::<OpenToken::Approval>(s.token()).value, open(4));
    s.ok(
        bob,
        s.token(),
        OpenToken::transferFromCall {
            from: alice.address(),
            to: bob.address(),
            value: open(3),
        },
    )
    .await;
    assert_eq!(balance(&s, alice.address()).await, open(7));
    assert_eq!(balance(&s, bob.address()).await, open(3));
    assert_eq!(
        s.view(
            s.token(),
            OpenToken::allowanceCall {
                owner: alice.address(),
                spender: bob.address()
            }
        )
        .await,
        open(1)
    );

    let err = s
        .reverts::<_, OpenToken::ERC20InsufficientAllowance>(
            bob,
            s.token(),
            OpenToken::transferFromCall {
                from: alice.address(),
                to: bob.address(),
                value: open(2),
            },
        )
        .await;
    assert_eq!(err.needed, open(2));
    s.reverts::<_, OpenToken::ERC20InsufficientBalance>(
        alice,
        s.token(),
        OpenToken::transferCall {
            to: bob.address(),
            value: open(8),
        },
    )
    .await;
}
scenario!(token_transfers_and_allowances);

/// Given a permit signed off chain by alice, when anyone submits it, then the allowance is set
/// once; a replay, an expired permit or a permit signed by someone else is refused.
pub async fn token_permit<C: Chain>(chain: C) {
    let s = Suite::deploy(chain).await;
    let (alice, bob, carol) = (&s.actors.alice, &s.actors.bob, &s.actors.carol);
    let domain = eip712_domain! {
        name: "OpenLedger", version: "1", chain_id: s.chain.chain_id(), verifying_contract: s.token(),
    };
    assert_eq!(
        s.view(s.token(), OpenToken::DOMAIN_SEPARATORCall {}).await,
        domain.separator()
    );
    let deadline = U256::from(s.now().await + 3_600);
    let permit = Permit {
        owner: alice.address(),
        spender: bob.address(),
        value: open(5),
        nonce: U256::ZERO,
        deadline,
    };
    let sig = alice
        .sign_hash(&permit.eip712_signing_hash(&domain))
        .await
        .unwrap();
    let call = OpenToken::permitCall {
        owner: alice.address(),
        spender: bob.address(),
        value: open(5),
        deadline,
        v: 27 + sig.v() as u8,
        r: sig.r().into(),
        s: sig.s().into(),
    };
    s.ok(carol, s.token(), call.clone()).await;
    assert_eq!(
        s.view(
            s.token(),
            OpenToken::allowanceCall {
                owner: alice.address(),
                spender: bob.address()
            }
        )
        .await,
        open(5)
    );
    assert_eq!(
        s.view(
            s.token(),
            OpenToken::noncesCall {
                owner: alice.address()
            }
        )
        .await,
        U256::from(1)
    );

    // Replay: the nonce moved on, so the recovered signer is not alice.
    s.reverts::<_, OpenToken::ERC2612InvalidSigner>(carol, s.token(), call.clone())
        .await;

    // Signed by bob for alice's allowance.
    let forged = Permit {
        nonce: U256::from(1),
        ..permit.clone()
    };
    let sig = bob
        .sign_hash(&forged.eip712_signing_hash(&domain))
        .await
        .unwrap();
    let forged_call = OpenToken::permitCall {
        v: 27 + sig.v() as u8,
        r: sig.r().into(),
        s: sig.s().into(),
        ..call.clone()
    };
    s.reverts::<_, OpenToken::ERC2612InvalidSigner>(carol, s.token(), forged_call)
        .await;

    // Expired.
    s.advance(7_200).await;
    let late = Permit {
        nonce: U256::from(1),
        ..permit
    };
    let sig = alice
        .sign_hash(&late.eip712_signing_hash(&domain))
        .await
        .unwrap();
    let late_call = OpenToken::permitCall {
        v: 27 + sig.v() as u8,
        r: sig.r().into(),
        s: sig.s().into(),
        ..call
    };
    s.reverts::<_, OpenToken::ERC2612ExpiredSignature>(carol, s.token(), late_call)
        .await;
}
scenario!(token_permit);
