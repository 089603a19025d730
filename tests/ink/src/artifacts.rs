//! The ink! suite's PolkaVM code, `contracts/ink/out/*.polkavm` (built and checked against the
//! sources by `scripts/build-ink.sh`).

use openledger_primitives::bindings::{
    DatanetRegistry, ModelRegistry, OpenToken, OperatorRegistry, Settlement,
};

/// One contract of the suite.
pub struct Artifact {
    /// The contract's name in the deployment plan, e.g. `Settlement`.
    pub name: &'static str,
    /// Its PolkaVM program.
    pub code: &'static [u8],
    /// Length of the Solidity implementation's creation bytecode: the plan's init code is that
    /// bytecode followed by the constructor arguments, which both implementations share.
    pub evm_bytecode_len: usize,
}

/// The suite's contracts, in deployment order.
pub fn all() -> [Artifact; 5] {
    [
        Artifact {
            name: "OpenToken",
            code: include_bytes!("../../../contracts/ink/out/open_token.polkavm"),
            evm_bytecode_len: OpenToken::BYTECODE.len(),
        },
        Artifact {
            name: "DatanetRegistry",
            code: include_bytes!("../../../contracts/ink/out/datanet_registry.polkavm"),
            evm_bytecode_len: DatanetRegistry::BYTECODE.len(),
        },
        Artifact {
            name: "ModelRegistry",
            code: include_bytes!("../../../contracts/ink/out/model_registry.polkavm"),
            evm_bytecode_len: ModelRegistry::BYTECODE.len(),
        },
        Artifact {
            name: "OperatorRegistry",
            code: include_bytes!("../../../contracts/ink/out/operator_registry.polkavm"),
            evm_bytecode_len: OperatorRegistry::BYTECODE.len(),
        },
        Artifact {
            name: "Settlement",
            code: include_bytes!("../../../contracts/ink/out/settlement.polkavm"),
            evm_bytecode_len: Settlement::BYTECODE.len(),
        },
    ]
}

/// The suite contract called `name` in the deployment plan.
pub fn by_name(name: &str) -> Option<Artifact> {
    all().into_iter().find(|a| a.name == name)
}

/// The PolkaVM code of contract `name`: a suite contract, or one of the test contracts the
/// scenarios deploy themselves (`TestWallet`, `ReentrantToken`, from `contracts/ink/test`).
pub fn code(name: &str) -> Option<&'static [u8]> {
    match name {
        "TestWallet" => Some(include_bytes!(
            "../../../contracts/ink/out/test_wallet.polkavm"
        )),
        "ReentrantToken" => Some(include_bytes!(
            "../../../contracts/ink/out/reentrant_token.polkavm"
        )),
        _ => by_name(name).map(|a| a.code),
    }
}
