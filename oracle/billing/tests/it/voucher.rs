//! Voucher (API key) checks: the good case, every refused case with its typed error, and
//! malformed keys of every kind, which must be errors and never panics.

use alloy::{
    hex,
    primitives::{Bytes, U256, address},
    sol_types::SolValue,
};
use openledger_billing::{
    Error,
    error::{CapShortfall, FundsShortfall},
    voucher::{
        Authorization, ChainFacts, Node, Request, Unsettled, authorize, decode_api_key,
        encode_api_key, recover_signer,
    },
};
use openledger_primitives::eip712::{SignedVoucher, settlement_domain};
use proptest::prelude::*;

use crate::common::{self, CHAIN_ID, SETTLEMENT, domain, key, operator, sign, voucher};

const NOW: u64 = 1_900_000_000;

fn node() -> Node {
    Node {
        domain: domain(),
        operator: operator(),
        settlement_margin: 3_600,
    }
}

fn facts() -> ChainFacts {
    ChainFacts {
        min_nonce: 3,
        spent: U256::from(40),
        guaranteed: U256::from(1_000),
    }
}

fn request(worst_case: u64) -> Request {
    Request {
        model_id: U256::from(1),
        worst_case_fee: U256::from(worst_case),
        now: NOW,
    }
}

/// carol's voucher for model 1, cap 100 wei.
fn good() -> SignedVoucher {
    sign(&key(1), &domain(), voucher(&key(1), 1, U256::from(100)))
}

fn check(v: &SignedVoucher, worst_case: u64) -> Result<Authorization, Error> {
    authorize(
        &node(),
        v,
        &request(worst_case),
        &facts(),
        &Unsettled::default(),
    )
}

#[test]
fn a_good_voucher_authorizes_what_its_cap_and_deposit_leave() {
    let auth = check(&good(), 25).unwrap();
    assert_eq!(
        auth,
        Authorization {
            user: key(1).address(),
            cap_left: U256::from(100 - 40 - 25),
            funds_left: U256::from(1_000 - 25),
        }
    );
    // Exactly what the cap leaves is still fine.
    assert!(check(&good(), 60).is_ok());
    assert_eq!(
        recover_signer(&domain(), &good()).unwrap(),
        key(1).address()
    );
}

#[test]
fn the_api_key_round_trips_as_abi_encode_of_signed_voucher() {
    let v = good();
    let k = encode_api_key(&v);
    assert!(k.starts_with("0x"));
    // abi.encode of a dynamic struct starts with the offset 0x20 to it.
    assert_eq!(&k[2..66], &format!("{:064x}", 0x20));
    assert_eq!(hex::decode(&k[2..]).unwrap(), v.abi_encode());
    assert_eq!(decode_api_key(&k).unwrap(), v);
}

#[test]
fn forged_signatures_are_refused() {
    // Signed by someone else for carol.
    let forged = sign(&key(9), &domain(), voucher(&key(1), 1, U256::from(100)));
    assert_eq!(
        check(&forged, 1),
        Err(Error::WrongSigner {
            recovered: key(9).address(),
            user: key(1).address(),
            chain_id: CHAIN_ID,
        })
    );
    // carol's signature with the cap raised afterwards.
    let mut raised = good();
    raised.voucher.cumulativeCap = U256::from(1_000_000);
    assert!(matches!(check(&raised, 1), Err(Error::WrongSigner { .. })));
}

#[test]
fn signatures_for_another_chain_or_contract_are_refused() {
    let v = voucher(&key(1), 1, U256::from(100));
    for other in [
        settlement_domain(1, SETTLEMENT),
        settlement_domain(
            CHAIN_ID,
            address!("0x5e771e0000000000000000000000000000000002"),
        ),
    ] {
        let signed = sign(&key(1), &other, v.clone());
        let err = check(&signed, 1).unwrap_err();
        assert!(matches!(err, Error::WrongSigner { user, .. } if user == key(1).address()));
        assert!(err.is_payment_required());
    }
}

#[test]
fn expired_or_soon_expiring_vouchers_are_refused() {
    let mut v = voucher(&key(1), 1, U256::from(100));
    v.expiry = NOW - 1;
    let expired = sign(&key(1), &domain(), v.clone());
    assert_eq!(
        check(&expired, 1),
        Err(Error::VoucherExpired {
            expiry: NOW - 1,
            needed: NOW + 3_600
        })
    );
    // Valid now, but not long enough for the node to settle.
    v.expiry = NOW + 3_599;
    assert!(matches!(
        check(&sign(&key(1), &domain(), v.clone()), 1),
        Err(Error::VoucherExpired { .. })
    ));
    v.expiry = NOW + 3_600;
    assert!(check(&sign(&key(1), &domain(), v), 1).is_ok());
}

#[test]
fn vouchers_for_another_operator_or_model_are_refused() {
    let mut v = voucher(&key(1), 1, U256::from(100));
    v.operator = key(201).address();
    assert_eq!(
        check(&sign(&key(1), &domain(), v), 1),
        Err(Error::WrongOperator {
            voucher_operator: key(201).address(),
            operator: operator()
        })
    );
    let v = voucher(&key(1), 2, U256::from(100));
    assert_eq!(
        check(&sign(&key(1), &domain(), v), 1),
        Err(Error::WrongModel {
            voucher_model: U256::from(2),
            model: U256::from(1)
        })
    );
}

#[test]
fn cancelled_nonces_are_refused() {
    let mut v = voucher(&key(1), 1, U256::from(100));
    v.nonce = 2;
    assert_eq!(
        check(&sign(&key(1), &domain(), v), 1),
        Err(Error::VoucherCancelled {
            nonce: 2,
            min_nonce: 3
        })
    );
}

#[test]
fn over_the_cap_is_refused_counting_unsettled_work() {
    // cap 100, spent 40: 61 is over.
    assert_eq!(
        check(&good(), 61),
        Err(Error::OverCap(Box::new(CapShortfall {
            worst_case: U256::from(61),
            cap: U256::from(100),
            spent: U256::from(40),
            unsettled: U256::ZERO,
            left: U256::from(60),
        })))
    );
    // Two concurrent requests of worst case 35 each: the first is reserved (unsettled), so
    // the second is refused although each alone fits.
    let v = good();
    let first = authorize(&node(), &v, &request(35), &facts(), &Unsettled::default()).unwrap();
    assert_eq!(first.cap_left, U256::from(25));
    let reserved = Unsettled {
        channel: U256::from(35),
        user: U256::from(35),
    };
    assert_eq!(
        authorize(&node(), &v, &request(35), &facts(), &reserved),
        Err(Error::OverCap(Box::new(CapShortfall {
            worst_case: U256::from(35),
            cap: U256::from(100),
            spent: U256::from(40),
            unsettled: U256::from(35),
            left: U256::from(25),
        })))
    );
    // Spent + unsettled beyond the cap leaves nothing (no underflow).
    let over = Unsettled {
        channel: U256::from(500),
        user: U256::ZERO,
    };
    assert!(matches!(
        authorize(&node(), &v, &request(1), &facts(), &over),
        Err(Error::OverCap(s)) if s.left.is_zero()
    ));
}

#[test]
fn beyond_the_deposit_is_refused_counting_pending_withdrawals_and_other_models() {
    let v = sign(&key(1), &domain(), voucher(&key(1), 1, U256::from(10_000)));
    let facts = ChainFacts {
        // An escrow of 100 with a live withdrawal request of 30.
        guaranteed: U256::from(70),
        ..facts()
    };
    // Unsettled on other models of this node count against the deposit, not the cap.
    let unsettled = Unsettled {
        channel: U256::ZERO,
        user: U256::from(60),
    };
    assert_eq!(
        authorize(&node(), &v, &request(11), &facts, &unsettled),
        Err(Error::InsufficientFunds(Box::new(FundsShortfall {
            worst_case: U256::from(11),
            available: U256::from(70),
            unsettled: U256::from(60),
            left: U256::from(10),
        })))
    );
    assert!(authorize(&node(), &v, &request(10), &facts, &unsettled).is_ok());
}

fn with_signature(bytes: Vec<u8>) -> SignedVoucher {
    SignedVoucher {
        signature: Bytes::from(bytes),
        ..good()
    }
}

#[test]
fn malformed_signatures_are_refused() {
    let sig = good().signature.to_vec();
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("64 bytes", sig[..64].to_vec()),
        ("66 bytes", [sig.clone(), vec![0]].concat()),
    ];
    for v in [0u8, 1, 29, 255] {
        let mut s = sig.clone();
        s[64] = v;
        cases.push(("bad v", s));
    }
    let mut zero_r = sig.clone();
    zero_r[..32].fill(0);
    cases.push(("r = 0", zero_r));
    // The same signature in its high-s form (s' = n − s, parity flipped): valid ECDSA, but the
    // contract refuses it, so must we.
    let n = U256::from_str_radix(
        "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
        16,
    )
    .unwrap();
    let s = U256::from_be_slice(&sig[32..64]);
    let mut high = sig.clone();
    high[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
    high[64] = if sig[64] == 27 { 28 } else { 27 };
    cases.push(("high s", high));
    for (what, bytes) in cases {
        let err = check(&with_signature(bytes), 1).unwrap_err();
        assert!(
            matches!(err, Error::MalformedSignature { .. }),
            "{what}: {err:?}"
        );
        assert!(err.is_payment_required());
    }
}

#[test]
fn malformed_api_keys_are_refused() {
    let key = encode_api_key(&good());
    let body = &key[2..];
    let bytes = hex::decode(body).unwrap();
    let mut cases: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("no 0x", body.to_string()),
        ("only 0x", "0x".into()),
        ("not hex", format!("0x{}zz", &body[2..])),
        ("odd length", format!("{key}0")),
        ("truncated", key[..key.len() - 64].to_string()),
        ("trailing word", format!("{key}{}", "00".repeat(32))),
        ("bearer prefix", format!("Bearer {key}")),
        ("uppercase 0X", format!("0X{body}")),
    ];
    let mut edit = |what: &'static str, at: usize, value: u8| {
        let mut b = bytes.clone();
        b[at] = value;
        cases.push((what, format!("0x{}", hex::encode(b))));
    };
    // Head: offset to the struct (word 0) pointing elsewhere.
    edit("bad struct offset", 31, 0x40);
    // Address with dirty high bytes (word 1, the user).
    edit("dirty address", 32, 0x01);
    // uint64 expiry (word 5) with bits above 64 set.
    edit("dirty uint64", 5 * 32 + 3, 0x01);
    // Signature length (word 8) longer than the data.
    edit("bytes length past the end", 8 * 32 + 31, 0xff);
    for (what, k) in cases {
        let err = decode_api_key(&k).unwrap_err();
        assert!(
            matches!(err, Error::MalformedVoucher { .. }),
            "{what}: {err:?}"
        );
        assert!(err.is_payment_required(), "{what}");
    }
}

proptest! {
    #![proptest_config(common::config(256))]

    /// Arbitrary bytes never panic the decoder, and anything it accepts re-encodes to itself.
    #[test]
    fn arbitrary_keys_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let key = format!("0x{}", hex::encode(&bytes));
        if let Ok(v) = decode_api_key(&key) {
            prop_assert_eq!(encode_api_key(&v), key);
        }
    }

    /// Any single-byte change to a good key is refused: when decoding (non-canonical bytes)
    /// or when checking (the signature no longer matches the user).
    #[test]
    fn a_changed_byte_is_always_refused(at in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let mut bytes = good().abi_encode();
        let i = at.index(bytes.len());
        bytes[i] ^= xor;
        let key = format!("0x{}", hex::encode(&bytes));
        let outcome = decode_api_key(&key).and_then(|v| check(&v, 25));
        prop_assert!(outcome.is_err(), "byte {} ^ {:#x} passed: {:?}", i, xor, outcome);
        prop_assert!(outcome.unwrap_err().is_payment_required());
    }
}
