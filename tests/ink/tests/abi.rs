//! The ink! implementation's generated ABI (`contracts/ink/out/<contract>.abi`, from
//! cargo-contract) against the ABI of record: every function, event and error of the interface
//! (`contracts/interfaces`, compiled to `contracts/evm/out/I<Contract>.json`) is there with the
//! same inputs, outputs, indexed fields and mutability, and nothing is there that the Solidity
//! implementation (`contracts/evm/out/<Contract>.json`) does not also have. Selectors and topics
//! follow from the signatures, so both implementations answer the same calldata and emit the
//! same logs.

use std::{collections::BTreeSet, path::Path};

use serde_json::Value;

const CONTRACTS: [(&str, &str, &str); 5] = [
    ("open_token", "IOpenToken", "OpenToken"),
    ("datanet_registry", "IDatanetRegistry", "DatanetRegistry"),
    ("model_registry", "IModelRegistry", "ModelRegistry"),
    ("operator_registry", "IOperatorRegistry", "OperatorRegistry"),
    ("settlement", "ISettlement", "Settlement"),
];

fn read(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match json {
        Value::Array(entries) => entries,
        Value::Object(ref o) => o
            .get("abi")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_else(|| panic!("{}: no abi", path.display())),
        _ => panic!("{}: not an ABI", path.display()),
    }
}

/// A parameter's canonical type: tuples spelled out, e.g. `(address,uint256)[]`.
fn canonical(param: &Value) -> String {
    let ty = param["type"].as_str().expect("a type");
    match ty.strip_prefix("tuple") {
        Some(suffix) => {
            let parts: Vec<String> = param["components"]
                .as_array()
                .expect("tuple components")
                .iter()
                .map(canonical)
                .collect();
            format!("({}){suffix}", parts.join(","))
        }
        None => ty.to_string(),
    }
}

/// Whether a canonical type is static (fixed size in the ABI encoding).
fn is_static(canonical: &str) -> bool {
    !canonical.contains("[]")
        && !canonical.contains("string")
        && !canonical
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|t| t == "bytes")
}

fn params(entry: &Value, key: &str, with_indexed: bool) -> String {
    let mut list = entry[key].as_array().cloned().unwrap_or_default();
    // ink! describes several return values as one tuple; for static members the encodings are
    // the same bytes (a static tuple is encoded in place), so compare them as the list.
    if key == "outputs" && list.len() == 1 {
        let only = &list[0];
        if only["type"] == "tuple" && is_static(&canonical(only)) {
            list = only["components"].as_array().cloned().unwrap_or_default();
        }
    }
    let parts: Vec<String> = list
        .iter()
        .map(|p| {
            let indexed = with_indexed && p["indexed"].as_bool().unwrap_or(false);
            format!("{}{}", canonical(p), if indexed { " indexed" } else { "" })
        })
        .collect();
    parts.join(",")
}

/// One line per function, event, error and constructor: everything a caller or a log reader
/// depends on.
fn surface(entries: &[Value]) -> BTreeSet<String> {
    entries
        .iter()
        .filter_map(|e| {
            let name = e["name"].as_str().unwrap_or_default();
            Some(match e["type"].as_str()? {
                "function" => {
                    let mutability = match e["stateMutability"].as_str() {
                        Some("view" | "pure") => "view",
                        _ => "nonpayable",
                    };
                    format!(
                        "function {name}({}) {mutability} returns ({})",
                        params(e, "inputs", false),
                        params(e, "outputs", false)
                    )
                }
                "event" => format!("event {name}({})", params(e, "inputs", true)),
                "error" => format!("error {name}({})", params(e, "inputs", false)),
                "constructor" => format!("constructor({})", params(e, "inputs", false)),
                _ => return None,
            })
        })
        .collect()
}

#[test]
fn the_ink_abi_is_the_interface_and_nothing_the_solidity_implementation_lacks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut failures = Vec::new();
    for (ink, interface, implementation) in CONTRACTS {
        let ink_abi = surface(&read(&root.join(format!("contracts/ink/out/{ink}.abi"))));
        let interface_abi = surface(&read(
            &root.join(format!("contracts/evm/out/{interface}.json")),
        ));
        let evm_abi = surface(&read(
            &root.join(format!("contracts/evm/out/{implementation}.json")),
        ));
        for missing in interface_abi.difference(&ink_abi) {
            failures.push(format!("{ink}: lacks {missing}"));
        }
        for extra in ink_abi.difference(&evm_abi) {
            failures.push(format!(
                "{ink}: has {extra}, which {implementation}.sol has not"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "ABI mismatches:\n{}",
        failures.join("\n")
    );
}
