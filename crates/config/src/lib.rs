//! One layered configuration for every component of an OpenLedger node: the oracle
//! (`[oracle]`, `[oracle.engine]`), the deployer (`[deploy]`), the local devnet (`[devnet]`),
//! the indexer (`[indexer]`) and the GraphQL server (`[graphql]`).
//!
//! **What it is for:** the `openledger` binary's loader. Each setting is read from four
//! layers, the later winning: the component library's default < `openledger.toml`
//! ([`ConfigFile`]) < its `OPENLEDGER_<COMPONENT>_<FIELD>` environment variable < its flag.
//! Each setting is declared once, as a field of an options struct ([`OracleOptions`],
//! [`EngineOptions`], [`DeployOptions`], [`SuiteOptions`], [`DevnetOptions`],
//! [`IndexerOptions`], [`GraphqlOptions`]): the field's name
//! is its TOML key and (kebab-cased) its flag, its `env` attribute names its variable, and its
//! doc, which `--help` shows next to the variable, states its default. The same struct is the
//! file's table (serde; unknown keys are refused, naming the key) and the env-and-flag overlay
//! (clap derive, every field an `Option`): [`Settings::resolve`] merges the overlay over the
//! file and the result over the library defaults. Tests check that the documented defaults are
//! the libraries' and that every env var carries its component's prefix.
//!
//! **What it is not for:** what the settings mean (each component documents its own config
//! type: `openledger_oracle::Config`, `openledger_chain::deploy::DeployConfig`,
//! `openledger_devnet::DevnetConfig`; their `Default`s read no environment), or secrets in
//! files: the deployer's private key and keystore password come from env or flags only.
//! Process-wide paths (`OPENLEDGER_MODEL_DIR`, `OPENLEDGER_HOME`) are read once, by
//! [`Paths::from_env`], and passed in.

mod args;
mod deploy;
mod devnet;
mod error;
mod file;
mod index;
mod oracle;
mod paths;
mod settings;

pub use args::{name_env_source, parse_args};
pub use deploy::{
    DEFAULT_MANIFEST, DEFAULT_RPC_URL, DeployOptions, DeploySettings, SuiteOptions, parse_split,
};
pub use devnet::{DevnetOptions, DevnetSettings};
pub use error::{Error, Result};
pub use file::{ConfigFile, DEFAULT_FILE};
pub use index::{
    DEFAULT_DATABASE, DEFAULT_GRAPHQL_LISTEN, DEFAULT_METRICS_LISTEN, GraphqlOptions,
    GraphqlSettings, IndexerOptions, IndexerSettings, OperatorUrl,
};
pub use oracle::{ChainOptions, EngineOptions, OracleOptions, TchOptions};
pub use paths::Paths;
pub use settings::{Overrides, Settings, env_layer};

/// Overwrites `target` with `value` when it is set.
fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *target = v;
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use alloy::primitives::{Address, B256, U256};
    use clap::{Args, Parser};
    use openledger_engine::WeightFormat;
    use openledger_primitives::split::SplitPolicy;

    use super::*;

    /// Every option group, as a subcommand taking all of them would parse them.
    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        oracle: OracleOptions,
        #[command(flatten)]
        deploy: DeployOptions,
        #[command(flatten)]
        devnet: DevnetOptions,
    }

    fn overrides(argv: &[&str]) -> Overrides {
        let f = Flags::try_parse_from(std::iter::once("openledger").chain(argv.iter().copied()))
            .unwrap();
        Overrides {
            oracle: f.oracle,
            deploy: f.deploy,
            devnet: f.devnet,
            ..Default::default()
        }
    }

    fn paths() -> Paths {
        Paths {
            model_dir: PathBuf::from("/models"),
        }
    }

    fn resolve(file: &str, argv: &[&str]) -> Settings {
        Settings::resolve(
            ConfigFile::from_toml(file).unwrap(),
            overrides(argv),
            &paths(),
        )
        .unwrap()
    }

    #[test]
    fn nothing_set_gives_the_library_defaults_with_the_model_in_the_model_dir() {
        let s = resolve("", &[]);
        let mut oracle = openledger_oracle::Config::default();
        oracle.engine.model_path = PathBuf::from("/models/SmolLM2-135M-Instruct.Q4_1.gguf");
        assert_eq!(s.oracle, oracle);
        assert_eq!(
            s.deploy.suite,
            openledger_chain::deploy::DeployConfig::default()
        );
        assert_eq!(s.deploy.rpc_url, "http://127.0.0.1:8545");
        assert_eq!(
            s.deploy.manifest,
            PathBuf::from(".openledger/deployment.json")
        );
        assert_eq!(
            s.devnet_config(),
            openledger_devnet::DevnetConfig {
                oracle: Some(oracle),
                graphql_port: Some(devnet::DEFAULT_GRAPHQL_PORT),
                ..Default::default()
            }
        );
    }

    #[test]
    fn flags_override_the_file_which_overrides_the_defaults() {
        let file = r#"
            [oracle]
            listen = "0.0.0.0:9000"
            max_tokens_limit = 99
            [oracle.engine]
            max_batch = 4
            model_name = "from-file"
            weight_format = "f32"
            [deploy]
            min_stake = "5000"
            withdrawal_delay = 60
            split = { protocol_bps = 500, operator_bps = 1500, developer_bps = 3000, data_bps = 5000 }
            [devnet]
            chain_id = 7
            port = 1
        "#;
        let governance = Address::repeat_byte(0x11);
        let s = resolve(
            file,
            &[
                "--listen",
                "127.0.0.1:1234",
                "--model-name",
                "from-flag",
                "--weight-format",
                "gguf",
                "--pinned-adapters",
                "a, b",
                "--max-prefill-tokens",
                "32",
                "--withdrawal-delay",
                "61",
                "--governance",
                &governance.to_string(),
                "--port",
                "2",
            ],
        );
        let (o, e) = (&s.oracle, &s.oracle.engine);
        // oracle: flag > file > default
        assert_eq!(o.listen, "127.0.0.1:1234".parse().unwrap());
        assert_eq!(o.max_tokens_limit, 99);
        assert_eq!(o.default_max_tokens, 256);
        assert_eq!(e.model_name, "from-flag");
        assert_eq!(e.weight_format, WeightFormat::Gguf);
        assert_eq!(e.max_batch, 4);
        assert_eq!(e.pinned_adapters, vec!["a", "b"]);
        assert_eq!(e.max_prefill_tokens, 32);
        assert_eq!(e.max_queue, 256);
        // deploy
        let d = &s.deploy.suite;
        assert_eq!(d.withdrawal_delay, 61);
        assert_eq!(d.min_stake, U256::from(5000));
        assert_eq!(d.split.data_bps, 5000);
        assert_eq!(d.governance, Some(governance));
        assert_eq!(d.treasury, None);
        assert_eq!(
            d.supply,
            openledger_chain::deploy::DeployConfig::default().supply
        );
        // devnet
        assert_eq!(
            (s.devnet.port, s.devnet.chain_id, s.devnet.accounts),
            (2, 7, 10)
        );
        assert!(!s.devnet.no_oracle);
    }

    #[test]
    fn no_oracle_is_a_flag_a_boolean_key_and_an_explicit_value() {
        assert!(resolve("", &["--no-oracle"]).devnet.no_oracle);
        assert!(
            resolve("[devnet]\nno_oracle = true\n", &[])
                .devnet
                .no_oracle
        );
        assert!(
            !resolve("[devnet]\nno_oracle = true\n", &["--no-oracle=false"])
                .devnet
                .no_oracle
        );
        assert_eq!(
            resolve("[devnet]\nno_oracle = true\n", &[])
                .devnet_config()
                .oracle,
            None
        );
    }

    #[test]
    fn an_invalid_split_is_refused_naming_the_setting() {
        let file = ConfigFile::from_toml(
            "[deploy]\nsplit = { protocol_bps = 9000, operator_bps = 0, developer_bps = 0, data_bps = 1000 }\n",
        )
        .unwrap();
        let err = Settings::resolve(file, Overrides::default(), &paths())
            .unwrap_err()
            .to_string();
        assert!(err.contains("deploy.split"), "{err}");
        assert!(err.contains("invalid split policy"), "{err}");
        let err = Flags::try_parse_from(["openledger", "--split", "9000,0,0,1000"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid split policy"), "{err}");
    }

    #[test]
    fn unknown_tables_and_keys_are_refused_naming_the_key() {
        for (text, key) in [
            ("[oracle]\nmax_bach = 4\n", "max_bach"),
            ("[oracle.engine]\nmax_bach = 4\n", "max_bach"),
            // An engine key belongs in [oracle.engine], not [oracle].
            ("[oracle]\nmax_batch = 4\n", "max_batch"),
            ("[deploy]\nminStak = 1\n", "minStak"),
            // One key style: snake_case, not the old camelCase.
            ("[deploy]\nminStake = \"7\"\n", "minStake"),
            (
                "[deploy]\nsplit = { protocolBps = 500, operator_bps = 2000, developer_bps = 3000, data_bps = 4500 }\n",
                "protocolBps",
            ),
            // Secrets are never read from the file.
            ("[deploy]\nprivate_key = \"0x01\"\n", "private_key"),
            (
                "[deploy]\nkeystore_password = \"pw\"\n",
                "keystore_password",
            ),
            ("[devnet]\nportt = 1\n", "portt"),
            ("[indexr]\n", "indexr"),
            ("listen = \"127.0.0.1:1\"\n", "listen"),
            ("[indexer]\ndatabse = \"x.db\"\n", "databse"),
            ("[graphql]\nlisen = \"127.0.0.1:1\"\n", "lisen"),
        ] {
            let err = ConfigFile::from_toml(text)
                .expect_err(&format!("{text:?} must be refused"))
                .to_string();
            assert!(err.contains(&format!("`{key}`")), "{text:?}: {err}");
        }
        let empty = ConfigFile::from_toml("[indexer]\n[graphql]\n").unwrap();
        assert_eq!(empty, ConfigFile::default());
        let err = ConfigFile::from_toml("[indexer]\noperator_urls = [\"0x01\"]\n").unwrap_err();
        assert!(err.to_string().contains("ADDRESS=URL"), "{err}");
    }

    /// The indexer's and the GraphQL server's tables layer like every other: flag > env >
    /// file > default, a flag's list replacing the file's.
    #[test]
    fn the_indexer_and_graphql_tables_layer_like_the_others() {
        #[derive(Debug, Parser)]
        struct IndexerFlags {
            #[command(flatten)]
            indexer: IndexerOptions,
        }
        #[derive(Debug, Parser)]
        struct GraphqlFlags {
            #[command(flatten)]
            graphql: GraphqlOptions,
        }
        let (a, b) = (Address::repeat_byte(0xa), Address::repeat_byte(0xb));
        let file = format!(
            "[indexer]\ndatabase = \"postgres://ix@db/openledger\"\nreorg_window = 64\n\
             operator_urls = [\"{a}=http://a\"]\n[graphql]\nlisten = \"0.0.0.0:9000\"\n"
        );
        let flags = IndexerFlags::try_parse_from([
            "x",
            "--reorg-window",
            "32",
            "--operator-url",
            &format!("{b}=http://b"),
            "--operator-url",
            &format!("{a}=http://a2"),
        ])
        .unwrap();
        let graphql = GraphqlFlags::try_parse_from(["x"]).unwrap();
        let s = Settings::resolve(
            ConfigFile::from_toml(&file).unwrap(),
            Overrides {
                indexer: flags.indexer,
                graphql: graphql.graphql,
                ..Default::default()
            },
            &paths(),
        )
        .unwrap();
        assert_eq!(s.indexer.database, "postgres://ix@db/openledger");
        assert_eq!(s.indexer.reorg_window, 32);
        assert_eq!(s.indexer.poll_interval_ms, 500);
        assert_eq!(
            s.indexer.operator_urls,
            vec![
                OperatorUrl {
                    operator: b,
                    url: "http://b".into()
                },
                OperatorUrl {
                    operator: a,
                    url: "http://a2".into()
                },
            ]
        );
        assert_eq!(s.graphql.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(s.graphql.database, DEFAULT_DATABASE);
        use openledger_primitives::deployment::{AbiHashes, Contracts, Deployment};
        let deployment = Deployment {
            chain_id: 31337,
            deploy_block: 3,
            deployer: a,
            governance: a,
            treasury: a,
            contracts: Contracts {
                token: a,
                datanets: a,
                models: a,
                operators: a,
                settlement: a,
            },
            abi_hashes: AbiHashes {
                token: B256::ZERO,
                datanets: B256::ZERO,
                models: B256::ZERO,
                operators: B256::ZERO,
                settlement: B256::ZERO,
            },
        };
        let config = s.indexer.indexer_config(deployment, true);
        assert_eq!(config.follow.window, 32);
        assert_eq!(config.receipts.operators[&b], "http://b");
        assert!(config.resync);
        let text = s.to_toml().unwrap();
        let again = Settings::resolve(
            ConfigFile::from_toml(&text).unwrap(),
            Overrides::default(),
            &paths(),
        )
        .unwrap();
        assert_eq!(again, s, "{text}");
        let err = IndexerFlags::try_parse_from(["x", "--operator-url", "http://nope"]).unwrap_err();
        assert!(err.to_string().contains("ADDRESS=URL"), "{err}");
    }

    #[test]
    fn a_missing_or_malformed_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let err = ConfigFile::load(Some(&missing)).unwrap_err().to_string();
        assert!(err.contains("nope.toml"), "{err}");
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[oracle.engine]\nmax_batch = \"many\"\n").unwrap();
        let err = ConfigFile::load(Some(&bad)).unwrap_err().to_string();
        assert!(
            err.contains("bad.toml") && err.contains("max_batch"),
            "{err}"
        );
        let good = dir.path().join("good.toml");
        std::fs::write(&good, "[devnet]\nport = 9\n").unwrap();
        let (file, read) = ConfigFile::load(Some(&good)).unwrap();
        assert_eq!((file.devnet.port, read), (Some(9), Some(good)));
    }

    #[test]
    fn the_printed_settings_read_back_as_the_same_settings() {
        // Every field the libraries serialize has an option with the same key (the file refuses
        // unknown keys), and every option lands back in its field.
        for s in [
            resolve("", &[]),
            resolve(
                "[oracle.engine]\nadapter_dir = \"/adapters\"\npinned_adapters = [\"x\"]\n",
                &[
                    "--device",
                    "cuda:1",
                    "--treasury",
                    &Address::repeat_byte(2).to_string(),
                    "--split",
                    "100,2900,3000,4000",
                    "--supply",
                    "0x10",
                    "--keystore",
                    "/k.json",
                    "--no-oracle",
                    "--accounts",
                    "3",
                ],
            ),
        ] {
            let text = s.to_toml().unwrap();
            let again = Settings::resolve(
                ConfigFile::from_toml(&text).unwrap(),
                Overrides::default(),
                &Paths {
                    model_dir: PathBuf::from("/elsewhere"),
                },
            )
            .unwrap();
            assert_eq!(again, s, "{text}");
        }
    }

    #[test]
    fn the_oracle_chain_table_turns_paid_mode_on_and_prints_back_the_same() {
        let file = "[oracle.chain]\nmanifest = \"/m.json\"\nrpc_url = \"http://rpc:8545\"\nsettlement_margin_secs = 1200\n\n[oracle.chain.batch]\nmax_receipts = 7\n";
        let s = resolve(file, &[]);
        let chain = s
            .oracle
            .chain
            .clone()
            .expect("a manifest turns paid mode on");
        assert_eq!(chain.paid.manifest, PathBuf::from("/m.json"));
        assert_eq!(chain.paid.rpc_url, "http://rpc:8545");
        assert_eq!(chain.paid.settlement_margin_secs, 1200);
        assert_eq!(chain.paid.batch.max_receipts, 7);
        assert_eq!(chain.paid.batch.max_age_secs, 60, "the library default");
        assert!(
            resolve("", &[]).oracle.chain.is_none(),
            "no manifest: unpaid"
        );
        let again = Settings::resolve(
            ConfigFile::from_toml(&s.to_toml().unwrap()).unwrap(),
            Overrides::default(),
            &Paths {
                model_dir: PathBuf::from("/models"),
            },
        )
        .unwrap();
        assert_eq!(again.oracle.chain, s.oracle.chain);
    }

    #[test]
    fn secrets_are_not_printed() {
        let s = resolve(
            "",
            &[
                "--private-key",
                "0xdeadbeefcafe",
                "--keystore-password",
                "hunter2",
            ],
        );
        assert_eq!(s.deploy.private_key.as_deref(), Some("0xdeadbeefcafe"));
        let text = s.to_toml().unwrap();
        assert!(
            !text.contains("deadbeefcafe") && !text.contains("hunter2"),
            "{text}"
        );
    }

    /// Each option group's command, with the table its fields live in.
    fn groups() -> Vec<(&'static str, &'static str, clap::Command)> {
        let cmd = || clap::Command::new("t");
        vec![
            ("ORACLE", "oracle", OracleOptions::augment_args(cmd())),
            ("DEPLOY", "deploy", DeployOptions::augment_args(cmd())),
            ("DEVNET", "devnet", DevnetOptions::augment_args(cmd())),
            ("INDEXER", "indexer", IndexerOptions::augment_args(cmd())),
            ("GRAPHQL", "graphql", GraphqlOptions::augment_args(cmd())),
        ]
    }

    #[test]
    fn every_option_has_its_components_env_var_shown_by_help() {
        let mut count = 0;
        for (component, _, cmd) in groups() {
            let help = cmd.clone().render_long_help().to_string();
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                let var = arg
                    .get_env()
                    .unwrap_or_else(|| panic!("{id} has no env var"))
                    .to_str()
                    .unwrap();
                assert_eq!(
                    var,
                    format!("OPENLEDGER_{component}_{}", id.to_uppercase()),
                    "env var of {id}"
                );
                assert!(help.contains(&format!("[env: {var}")), "{var} not in help");
                count += 1;
            }
        }
        assert_eq!(count, 3 + 1 + 11 + 5 + 5 + 9 + 4 + 9 + 2, "options counted");
    }

    /// The `[default: ...]` an option's doc states.
    fn documented_default(arg: &clap::Arg) -> String {
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        let start = help
            .find("[default: ")
            .unwrap_or_else(|| panic!("{} does not state its default: {help}", arg.get_id()))
            + "[default: ".len();
        let end = start + help[start..].find(']').unwrap();
        help[start..end].to_string()
    }

    #[test]
    fn documented_defaults_are_the_library_defaults() {
        let defaults = Settings::resolve(
            ConfigFile::default(),
            Overrides::default(),
            &Paths {
                model_dir: PathBuf::from("$OPENLEDGER_MODEL_DIR"),
            },
        )
        .unwrap();
        let tables: toml::Table = toml::from_str(&defaults.to_toml().unwrap()).unwrap();
        for (_, table, cmd) in groups() {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                let doc = documented_default(arg);
                // The documented figure, before any gloss ("1000, 1,000 OPEN").
                let figure = doc.split(", ").next().unwrap();
                let t = &tables[table];
                let value = t
                    .get(id)
                    .or_else(|| t.get("engine").and_then(|e| e.get(id)))
                    .or_else(|| {
                        let key = id.strip_prefix("tch_")?;
                        t.get("tch").and_then(|e| e.get(key))
                    });
                match value {
                    // Unset by default: an optional path or address, or a secret.
                    None => assert!(
                        ["none", "the deployer", "empty"].contains(&figure),
                        "{id}: documented {doc:?}, but the default is unset"
                    ),
                    Some(toml::Value::String(v)) if v.starts_with("0x") => assert_eq!(
                        figure.parse::<U256>().unwrap(),
                        v.parse::<U256>().unwrap(),
                        "{id}"
                    ),
                    Some(toml::Value::String(v)) => assert_eq!(figure, v, "{id}"),
                    Some(toml::Value::Array(v)) if v.is_empty() => {
                        assert_eq!(figure, "none", "{id}")
                    }
                    Some(toml::Value::Table(_)) => {
                        assert_eq!(id, "split");
                        assert_eq!(parse_split(&doc).unwrap(), SplitPolicy::default());
                    }
                    Some(v) => assert_eq!(figure, v.to_string(), "{id}"),
                }
            }
        }
    }
}
