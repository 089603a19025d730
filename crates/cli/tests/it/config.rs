//! The layered configuration as the binary applies it: `openledger config` prints what every
//! subcommand would run with.

use std::path::Path;
use std::process::{Command, Output};

use crate::openledger;

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn printed(cmd: &mut Command) -> toml::Table {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "openledger config failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    toml::from_str(&String::from_utf8_lossy(&out.stdout)).expect("prints TOML")
}

/// The value at a dotted `key` of the printed settings.
fn at<'a>(t: &'a toml::Table, key: &str) -> &'a toml::Value {
    let mut parts = key.split('.');
    let mut v = &t[parts.next().unwrap()];
    for p in parts {
        v = &v[p];
    }
    v
}

/// One field of each component, and a value for it at each layer.
const FIELDS: [(&str, &str, &str, i64, i64, i64, i64); 4] = [
    // key, env var, flag, default, file, env, flag
    (
        "oracle.max_tokens_limit",
        "OPENLEDGER_ORACLE_MAX_TOKENS_LIMIT",
        "--max-tokens-limit",
        2048,
        99,
        98,
        97,
    ),
    (
        "oracle.engine.max_batch",
        "OPENLEDGER_ORACLE_MAX_BATCH",
        "--max-batch",
        16,
        4,
        5,
        6,
    ),
    (
        "deploy.withdrawal_delay",
        "OPENLEDGER_DEPLOY_WITHDRAWAL_DELAY",
        "--withdrawal-delay",
        86_400,
        60,
        61,
        62,
    ),
    (
        "devnet.chain_id",
        "OPENLEDGER_DEVNET_CHAIN_ID",
        "--chain-id",
        31_337,
        7,
        8,
        9,
    ),
];

fn file_setting_every_field(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("node.toml");
    let mut text = String::new();
    for (key, _, _, _, file, _, _) in FIELDS {
        let (table, field) = key.rsplit_once('.').unwrap();
        text += &format!("[{table}]\n{field} = {file}\n");
    }
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn each_layer_overrides_the_one_below_for_every_component() {
    let dir = tempfile::tempdir().unwrap();
    let file = file_setting_every_field(dir.path());

    let defaults = printed(openledger().arg("config").current_dir(dir.path()));
    let from_file = printed(openledger().arg("config").arg("--config").arg(&file));
    let mut with_env = openledger();
    with_env.arg("config").arg("--config").arg(&file);
    for (_, var, _, _, _, env, _) in FIELDS {
        with_env.env(var, env.to_string());
    }
    let from_env = printed(&mut with_env);
    for (_, _, flag, _, _, _, value) in FIELDS {
        with_env.arg(flag).arg(value.to_string());
    }
    let from_flags = printed(&mut with_env);

    for (key, _, _, default, file, env, flag) in FIELDS {
        assert_eq!(
            at(&defaults, key).as_integer(),
            Some(default),
            "{key} default"
        );
        assert_eq!(
            at(&from_file, key).as_integer(),
            Some(file),
            "{key} from file"
        );
        assert_eq!(at(&from_env, key).as_integer(), Some(env), "{key} from env");
        assert_eq!(
            at(&from_flags, key).as_integer(),
            Some(flag),
            "{key} from flag"
        );
    }
    // A layer only changes what it sets.
    assert_eq!(
        at(&from_flags, "oracle.default_max_tokens").as_integer(),
        Some(256)
    );
    assert_eq!(at(&from_flags, "devnet.port").as_integer(), Some(8545));
}

#[test]
fn openledger_toml_in_the_working_directory_is_read_by_default() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("openledger.toml"),
        "[oracle.engine]\nmodel_name = \"from-cwd\"\n",
    )
    .unwrap();
    let t = printed(openledger().arg("config").current_dir(dir.path()));
    assert_eq!(
        at(&t, "oracle.engine.model_name").as_str(),
        Some("from-cwd")
    );
    // The model defaults into $OPENLEDGER_MODEL_DIR, read by the binary.
    let t = printed(
        openledger()
            .arg("config")
            .current_dir(dir.path())
            .env("OPENLEDGER_MODEL_DIR", "/srv/models"),
    );
    assert_eq!(
        at(&t, "oracle.engine.model_path").as_str(),
        Some("/srv/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    );
}

#[test]
fn an_unknown_key_is_refused_naming_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.toml");
    std::fs::write(&path, "[oracle.engine]\nmax_bach = 4\n").unwrap();
    for sub in [
        &["config"][..],
        &["oracle", "serve"],
        &["deploy"],
        &["devnet"],
    ] {
        let out = run(openledger().args(sub).arg("--config").arg(&path));
        assert!(!out.status.success(), "{sub:?} accepted an unknown key");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("max_bach") && stderr.contains("typo.toml"),
            "{stderr}"
        );
    }
    let out = run(openledger()
        .args(["config", "--config"])
        .arg(dir.path().join("absent.toml")));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("absent.toml"));
}

#[test]
fn a_bad_env_value_names_the_variable_for_every_component() {
    for (sub, var, value) in [
        (
            &["oracle", "serve"][..],
            "OPENLEDGER_ORACLE_LISTEN",
            "nowhere",
        ),
        (
            &["oracle", "serve"],
            "OPENLEDGER_ORACLE_WEIGHT_FORMAT",
            "int3",
        ),
        (&["deploy"], "OPENLEDGER_DEPLOY_SUPPLY", "lots"),
        (&["deploy"], "OPENLEDGER_DEPLOY_TREASURY", "0x12"),
        (&["devnet"], "OPENLEDGER_DEVNET_PORT", "70000"),
        (&["devnet"], "OPENLEDGER_DEVNET_NO_ORACLE", "perhaps"),
        (&["devnet"], "OPENLEDGER_DEPLOY_SPLIT", "9000,0,0,1000"),
    ] {
        let out = run(openledger().args(sub).env(var, value));
        assert!(!out.status.success(), "{var}={value} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(var) && stderr.contains(value),
            "{var}: {stderr}"
        );
    }
}

#[test]
fn help_lists_each_options_env_var_and_default() {
    let help = |sub: &[&str]| {
        let out = run(openledger().args(sub).arg("--help"));
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let serve = help(&["oracle", "serve"]);
    for shown in [
        "[env: OPENLEDGER_ORACLE_LISTEN=",
        "[env: OPENLEDGER_ORACLE_MAX_BATCH=",
        "[env: OPENLEDGER_ORACLE_MODEL_PATH=",
        "[env: OPENLEDGER_CONFIG=",
        "[default: 16]",
        "[default: 127.0.0.1:8080]",
    ] {
        assert!(
            serve.contains(shown),
            "oracle serve --help lacks {shown}:\n{serve}"
        );
    }
    let deploy = help(&["deploy"]);
    for shown in [
        "[env: OPENLEDGER_DEPLOY_RPC_URL=",
        "[env: OPENLEDGER_DEPLOY_PRIVATE_KEY]",
        "[env: OPENLEDGER_DEPLOY_MANIFEST=",
        "[env: OPENLEDGER_DEPLOY_SPLIT=",
        "[default: 500,2000,3000,4500]",
    ] {
        assert!(
            deploy.contains(shown),
            "deploy --help lacks {shown}:\n{deploy}"
        );
    }
    let devnet = help(&["devnet"]);
    for shown in [
        "[env: OPENLEDGER_DEVNET_PORT=",
        "[env: OPENLEDGER_DEPLOY_MIN_STAKE=",
        "[env: OPENLEDGER_ORACLE_MAX_BATCH=",
        "[default: 31337]",
    ] {
        assert!(
            devnet.contains(shown),
            "devnet --help lacks {shown}:\n{devnet}"
        );
    }
    // The devnet deploys with its own dev key to its own chain.
    assert!(!devnet.contains("OPENLEDGER_DEPLOY_RPC_URL"), "{devnet}");
    assert!(
        !devnet.contains("OPENLEDGER_DEPLOY_PRIVATE_KEY"),
        "{devnet}"
    );
}

#[test]
fn secrets_are_never_printed() {
    let key = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
    let out = run(openledger()
        .arg("config")
        .env("OPENLEDGER_DEPLOY_PRIVATE_KEY", key)
        .env("OPENLEDGER_DEPLOY_KEYSTORE_PASSWORD", "hunter2"));
    assert!(out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !all.contains(&key[2..]) && !all.contains("hunter2"),
        "{all}"
    );
}
