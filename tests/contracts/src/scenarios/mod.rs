//! Given/when/then scenarios, one public async function each, generic over the [`Chain`]
//! backend so every implementation of the ABI runs the same ones.
//!
//! Each scenario is registered where it is written, with [`scenario!`](crate::scenario) right after its
//! function; [`all`] lists them, and the test binary runs every one as its own trial on each
//! backend. A unit test checks that every `pub async fn` of this directory is registered, so
//! a scenario written is a scenario run.
//!
//! [`Chain`]: crate::backend::Chain

use crate::backend::{BoxChain, BoxFuture};

pub mod adversarial;
pub mod hardening;
pub mod registries;
pub mod settlement;
pub mod token;

/// A registered scenario.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// The function's name, e.g. `token_permit` (unique across modules).
    pub name: &'static str,
    /// The module it is written in, e.g. `openledger_contract_tests::scenarios::token`.
    pub module: &'static str,
    run: fn(BoxChain) -> BoxFuture<'static, ()>,
}

impl Scenario {
    /// A scenario; used by [`scenario!`](crate::scenario).
    pub const fn new(
        name: &'static str,
        module: &'static str,
        run: fn(BoxChain) -> BoxFuture<'static, ()>,
    ) -> Self {
        Self { name, module, run }
    }

    /// `module::function`, e.g. `token::token_permit`.
    pub fn path(&self) -> String {
        let module = self.module.rsplit("::").next().unwrap_or(self.module);
        format!("{module}::{}", self.name)
    }

    /// Runs the scenario on `chain`; it panics if the implementation misbehaves.
    pub fn run(&self, chain: BoxChain) -> BoxFuture<'static, ()> {
        (self.run)(chain)
    }
}

inventory::collect!(Scenario);

/// Registers the scenario function `$name` of the current module; write it right after the
/// function.
#[macro_export]
macro_rules! scenario {
    ($name:ident) => {
        ::inventory::submit! {
            $crate::scenarios::Scenario::new(
                stringify!($name),
                module_path!(),
                |chain| ::std::boxed::Box::pin($name(chain)),
            )
        }
    };
}

/// Every registered scenario, sorted by name.
pub fn all() -> Vec<Scenario> {
    let mut all: Vec<Scenario> = inventory::iter::<Scenario>.into_iter().copied().collect();
    all.sort_by_key(|s| s.name);
    all
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    #[test]
    fn the_registry_is_full_and_names_are_unique() {
        let all = super::all();
        assert!(!all.is_empty(), "no scenario registered");
        let names: BTreeSet<&str> = all.iter().map(|s| s.name).collect();
        assert_eq!(names.len(), all.len(), "duplicate scenario names");
    }

    #[test]
    fn every_scenario_function_is_registered() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/scenarios");
        let mut written = BTreeSet::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                let source = std::fs::read_to_string(&path).unwrap();
                for line in source.lines() {
                    if let Some(rest) = line.strip_prefix("pub async fn ") {
                        let name: String = rest
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        written.insert(name);
                    }
                }
            }
        }
        let registered: BTreeSet<String> =
            super::all().iter().map(|s| s.name.to_string()).collect();
        assert!(written.len() >= 24, "found only {written:?}");
        assert_eq!(written, registered, "written scenarios vs registered ones");
    }
}
