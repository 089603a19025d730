//! The `sol!` Receipt is the one documented in `contracts/interfaces/IReceipts.sol`, and its
//! validation uses the metering rule.

use alloy::{primitives::U256, sol_types::SolStruct};
use openledger_billing::{AttributionWeight, Error, Receipt, meter};

use crate::common::{key, receipt};

/// `struct Name { type field; ... }` from Solidity source as `Name(type field,...)`.
fn solidity_struct(source: &str, name: &str) -> String {
    let start = source
        .find(&format!("struct {name} {{"))
        .unwrap_or_else(|| panic!("IReceipts.sol declares struct {name}"));
    let body = &source[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find('}').unwrap()];
    let fields: Vec<String> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .map(|l| {
            l.trim_end_matches(';')
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    format!("{name}({})", fields.join(","))
}

#[test]
fn receipt_struct_matches_the_interface_declaration() {
    let source = include_str!("../../../../contracts/interfaces/IReceipts.sol");
    assert_eq!(
        solidity_struct(source, "Receipt"),
        Receipt::eip712_root_type()
    );
    assert_eq!(
        solidity_struct(source, "AttributionWeight"),
        AttributionWeight::eip712_root_type()
    );
}

#[test]
fn receipts_validate_against_the_price() {
    let price = U256::from(2_000_000_000_000_000_000u128);
    let mut r = receipt(1, key(1).address(), 1, U256::ZERO, &[(1, 1, 500_000)]);
    r.tokensIn = 37;
    r.tokensOut = 120;
    r.fee = meter::request_fee(37, 120, price).unwrap();
    r.validate(price).unwrap();
    r.fee -= U256::from(1);
    assert_eq!(
        r.validate(price),
        Err(Error::FeeMismatch {
            request_id: r.requestId,
            tokens: 157,
            fee: r.fee,
            expected: r.fee + U256::from(1),
        })
    );
    assert_eq!(r.attributed_ppm(), 500_000);
    assert_eq!(r.unattributed_ppm(), 500_000);
}

#[test]
fn receipts_serialize_with_their_abi_field_names() {
    let r = receipt(7, key(1).address(), 1, U256::from(5), &[(1, 2, 3)]);
    let json = serde_json::to_value(&r).unwrap();
    for field in [
        "requestId",
        "tokensIn",
        "promptHash",
        "datanetId",
        "attribution",
    ] {
        assert!(json.get(field).is_some(), "{field} in {json}");
    }
    assert_eq!(serde_json::from_value::<Receipt>(json).unwrap(), r);
}
