//! Command-line interface: subcommands over the option groups of `openledger-config`.
//!
//! Every subcommand reads its settings with the one layered loader: library defaults <
//! `openledger.toml` (`--config`) < `OPENLEDGER_<COMPONENT>_<FIELD>` env < flags. `--help`
//! shows each option's env var and default; `openledger config` prints the effective result.

use std::path::PathBuf;

use alloy::{
    network::EthereumWallet, providers::ProviderBuilder, signers::local::PrivateKeySigner,
};
use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use openledger_chain::deploy::{deploy_suite, write_manifest};
use openledger_config::{
    ChainOptions, ConfigFile, DeployOptions, DeploySettings, DevnetOptions, GraphqlOptions,
    IndexerOptions, IndexerSettings, OracleOptions, Overrides, Paths, Settings, SuiteOptions,
    env_layer,
};
use openledger_primitives::deployment::Deployment;
use tracing_subscriber::EnvFilter;

/// OpenLedger: a decentralized AI economy — datanets, models, paid inference, attribution.
#[derive(Debug, Parser)]
#[command(name = "openledger", version, about, propagate_version = true)]
struct Cli {
    /// Configuration file, one table per component: `[oracle]`, `[oracle.engine]`,
    /// `[oracle.tch]`, `[deploy]`, `[devnet]`, `[indexer]`, `[graphql]`
    /// [default: ./openledger.toml when it exists]
    #[arg(long, global = true, env = "OPENLEDGER_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a local chain (anvil), deploy the suite on it, start the oracle node and keep them
    /// running until Ctrl-C.
    Devnet(DevnetArgs),
    /// Deploy and wire the contract suite on a chain and write the deployment manifest.
    Deploy(DeployArgs),
    /// Run an oracle (inference) node.
    #[command(subcommand)]
    Oracle(OracleCommand),
    /// Print the effective configuration of every component (defaults < file < env < flags)
    /// as an `openledger.toml`; secrets are left out.
    Config(ConfigArgs),
    /// Vouchers: the API keys of paid inference.
    #[command(subcommand)]
    Voucher(VoucherCommand),
    /// Follow the suite's events into the index database (SQLite file or PostgreSQL URL),
    /// reorg-safe and resumable, verifying settled batches' receipts with their operators.
    Indexer(IndexerArgs),
    /// Serve the GraphQL API (GraphiQL at /, queries at /graphql) over the index database.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
struct IndexerArgs {
    #[command(flatten, next_help_heading = "Indexer ([indexer])")]
    indexer: IndexerOptions,
    /// Empty the database and re-index from the deployment block (an action, not a setting:
    /// flag only)
    #[arg(long)]
    resync: bool,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten, next_help_heading = "GraphQL ([graphql])")]
    graphql: GraphqlOptions,
}

#[derive(Debug, Subcommand)]
enum VoucherCommand {
    /// Sign a voucher with the user's key and print it as an API key (`0x…`): use it as the
    /// bearer token of any OpenAI client against an oracle in paid mode.
    Sign(VoucherSignArgs),
}

#[derive(Debug, Args)]
struct VoucherSignArgs {
    /// Deployment manifest (the chain id and settlement contract the voucher is bound to)
    #[arg(
        long,
        env = "OPENLEDGER_VOUCHER_MANIFEST",
        default_value = ".openledger/deployment.json",
        value_name = "FILE"
    )]
    manifest: PathBuf,
    /// The operator that may charge it
    #[arg(long, value_name = "ADDRESS")]
    operator: alloy::primitives::Address,
    /// The model it pays for (its on-chain id; requests name it model-ID)
    #[arg(long, value_name = "ID")]
    model: alloy::primitives::U256,
    /// Cumulative cap in wei over every request on this (user, operator, model)
    #[arg(long, value_name = "WEI")]
    cap: alloy::primitives::U256,
    /// Seconds from now until it expires
    #[arg(long, default_value_t = 30 * 86_400, value_name = "SECONDS")]
    valid_for: u64,
    /// Nonce (revocation handle: `revokeVouchers(n)` voids nonces below n)
    #[arg(long, default_value_t = 0)]
    nonce: u64,
    /// Hex private key of the user; prefer the env var
    #[arg(
        long,
        env = "OPENLEDGER_USER_PRIVATE_KEY",
        hide_env_values = true,
        conflicts_with = "keystore",
        value_name = "HEX"
    )]
    private_key: Option<String>,
    /// Encrypted JSON keystore of the user
    #[arg(long, env = "OPENLEDGER_USER_KEYSTORE", value_name = "FILE")]
    keystore: Option<PathBuf>,
    /// Password of the keystore
    #[arg(
        long,
        env = "OPENLEDGER_USER_KEYSTORE_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    keystore_password: Option<String>,
}

#[derive(Debug, Subcommand)]
enum OracleCommand {
    /// Serve the model and its adapters over the OpenAI-compatible HTTP API until Ctrl-C.
    Serve(OracleServeArgs),
}

#[derive(Debug, Args)]
struct OracleServeArgs {
    #[command(flatten, next_help_heading = "Oracle ([oracle], [oracle.engine])")]
    oracle: OracleOptions,
    #[command(flatten, next_help_heading = "Paid mode ([oracle.chain])")]
    chain: ChainOptions,
}

#[derive(Debug, Args)]
struct DeployArgs {
    #[command(flatten, next_help_heading = "Deploy ([deploy])")]
    deploy: DeployOptions,
}

#[derive(Debug, Args)]
struct DevnetArgs {
    #[command(flatten, next_help_heading = "Devnet ([devnet])")]
    devnet: DevnetOptions,
    #[command(flatten, next_help_heading = "Deployed suite ([deploy])")]
    suite: SuiteOptions,
    #[command(flatten, next_help_heading = "Oracle ([oracle], [oracle.engine])")]
    oracle: OracleOptions,
}

#[derive(Debug, Args)]
struct ConfigArgs {
    #[command(flatten, next_help_heading = "Oracle ([oracle], [oracle.engine])")]
    oracle: OracleOptions,
    #[command(flatten, next_help_heading = "Deploy ([deploy])")]
    deploy: DeployOptions,
    #[command(flatten, next_help_heading = "Devnet ([devnet])")]
    devnet: DevnetOptions,
}

/// Parses the command line and runs the chosen subcommand.
pub fn run() -> Result<()> {
    let cli: Cli = openledger_config::parse_args();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("OPENLEDGER_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let overrides = match cli.command {
        Command::Devnet(ref a) => Overrides {
            oracle: a.oracle.clone(),
            deploy: DeployOptions {
                suite: a.suite.clone(),
                ..Default::default()
            },
            devnet: a.devnet.clone(),
            ..Default::default()
        },
        Command::Deploy(ref a) => Overrides {
            deploy: a.deploy.clone(),
            ..Default::default()
        },
        Command::Oracle(OracleCommand::Serve(ref a)) => Overrides {
            oracle: OracleOptions {
                chain: a.chain.clone(),
                ..a.oracle.clone()
            },
            ..Default::default()
        },
        Command::Voucher(VoucherCommand::Sign(ref a)) => return sign_voucher(a),
        Command::Indexer(ref a) => Overrides {
            indexer: a.indexer.clone(),
            ..Default::default()
        },
        Command::Serve(ref a) => Overrides {
            graphql: a.graphql.clone(),
            ..Default::default()
        },
        // The indexer's and GraphQL server's flags collide with the others' (`--database`,
        // `--listen`, `--rpc-url`): `config` takes their environment, not their flags.
        Command::Config(ref a) => Overrides {
            oracle: a.oracle.clone(),
            deploy: a.deploy.clone(),
            devnet: a.devnet.clone(),
            indexer: env_layer()?,
            graphql: env_layer()?,
        },
    };
    let (file, read) = ConfigFile::load(cli.config.as_deref())?;
    let settings = Settings::resolve(file, overrides, &Paths::from_env())?;
    if let Some(path) = &read {
        tracing::info!(target: "openledger::config", file = %path.display(), "configuration file read");
    }
    match cli.command {
        Command::Config(_) => {
            print!("{}", settings.to_toml()?);
            return Ok(());
        }
        Command::Indexer(ref a) => return run_indexer(&settings.indexer, a.resync),
        Command::Serve(_) => return run_serve(&settings.graphql),
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Devnet(_) => devnet(&settings).await,
            Command::Deploy(_) => deploy(&settings.deploy).await,
            Command::Oracle(OracleCommand::Serve(_)) => {
                Ok(openledger_oracle::serve(settings.oracle).await?)
            }
            Command::Config(_) | Command::Voucher(_) | Command::Indexer(_) | Command::Serve(_) => {
                unreachable!("handled above")
            }
        }
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

async fn ctrl_c() {
    let _ = tokio::signal::ctrl_c().await;
}

/// `openledger indexer`: follows until Ctrl-C (or a reorg below the window).
fn run_indexer(s: &IndexerSettings, resync: bool) -> Result<()> {
    let deployment = openledger_chain::deploy::read_manifest(&s.manifest)
        .with_context(|| format!("reading the manifest {}", s.manifest.display()))?;
    let config = s.indexer_config(deployment, resync);
    runtime()?.block_on(async {
        let metrics = openledger_indexer::metrics::serve(s.metrics_listen)
            .await
            .with_context(|| format!("serving metrics on {}", s.metrics_listen))?;
        tracing::info!(target: "openledger::indexer", %metrics, "metrics at /metrics");
        let indexer = openledger_indexer::Indexer::open(config).await?;
        tracing::info!(target: "openledger::indexer", database = %openledger_indexer::db::redact(&s.database), "indexing");
        Ok(indexer.run(ctrl_c()).await?)
    })
}

/// `openledger serve`: the GraphQL API until Ctrl-C.
fn run_serve(s: &openledger_config::GraphqlSettings) -> Result<()> {
    runtime()?.block_on(async {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let addr = openledger_graphql::serve(&s.database, s.listen, async {
            let _ = rx.await;
        })
        .await
        .with_context(|| {
            format!(
                "serving the index {}",
                openledger_indexer::db::redact(&s.database)
            )
        })?;
        println!("GraphQL: http://{addr}/graphql (GraphiQL at http://{addr}/)");
        ctrl_c().await;
        let _ = tx.send(());
        Ok(())
    })
}

/// `openledger voucher sign`: prints the API key.
fn sign_voucher(a: &VoucherSignArgs) -> Result<()> {
    let user: PrivateKeySigner = match (&a.private_key, &a.keystore) {
        (Some(key), _) => key
            .trim()
            .parse()
            .context("the user private key is not a valid hex private key")?,
        (None, Some(path)) => PrivateKeySigner::decrypt_keystore(
            path,
            a.keystore_password.as_deref().unwrap_or_default(),
        )
        .with_context(|| format!("cannot decrypt keystore {}", path.display()))?,
        (None, None) => bail!("no user key: set OPENLEDGER_USER_PRIVATE_KEY or pass --keystore"),
    };
    let deployment = openledger_chain::deploy::read_manifest(&a.manifest)?;
    let domain = openledger_primitives::eip712::settlement_domain(
        deployment.chain_id,
        deployment.contracts.settlement,
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let voucher = openledger_primitives::eip712::Voucher {
        user: user.address(),
        operator: a.operator,
        modelId: a.model,
        cumulativeCap: a.cap,
        expiry: now + a.valid_for,
        nonce: a.nonce,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let signed = runtime.block_on(openledger_primitives::eip712::sign_voucher(
        &user, &domain, &voucher,
    ))?;
    println!("{}", openledger_billing::voucher::encode_api_key(&signed));
    Ok(())
}

/// The signer of `openledger deploy`: a raw key, or an encrypted keystore.
fn signer(d: &DeploySettings) -> Result<PrivateKeySigner> {
    match (&d.private_key, &d.keystore) {
        (Some(key), _) => key
            .trim()
            .parse()
            .context("--private-key is not a valid hex private key"),
        (None, Some(path)) => {
            let password = d.keystore_password.as_deref().unwrap_or_default();
            PrivateKeySigner::decrypt_keystore(path, password)
                .with_context(|| format!("cannot decrypt keystore {}", path.display()))
        }
        (None, None) => {
            bail!("no signer: set OPENLEDGER_DEPLOY_PRIVATE_KEY or pass --keystore")
        }
    }
}

async fn deploy(d: &DeploySettings) -> Result<()> {
    let signer = signer(d)?;
    let from = signer.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect(&d.rpc_url)
        .await
        .with_context(|| format!("cannot reach {}", d.rpc_url))?;
    let deployment = deploy_suite(&provider, from, &d.suite).await?;
    write_manifest(&d.manifest, &deployment)?;
    print_deployment(&deployment, &d.manifest);
    Ok(())
}

async fn devnet(settings: &Settings) -> Result<()> {
    let mut devnet = openledger_devnet::spawn(settings.devnet_config()).await?;
    print_deployment(devnet.deployment(), devnet.manifest());
    println!("rpc          {}", devnet.rpc_url());
    if let Some(url) = devnet.graphql_url() {
        println!(
            "graphql      {url} (GraphiQL at {})",
            url.trim_end_matches("graphql")
        );
    }
    println!("deployer     {} (anvil dev key #0)", devnet.accounts()[0]);
    match (devnet.oracle_url(), devnet.demo()) {
        (Some(url), Some(demo)) => {
            let model = format!("model-{}", demo.model_id);
            println!("oracle       {url} (OpenAI-compatible; PAID: vouchers as API keys)");
            println!(
                "operator     {} (dev key #1, staked, serves {model})",
                demo.operator.address()
            );
            println!(
                "datanet      {} ({} accepted contributions of public-domain text)",
                demo.datanet_id,
                demo.contribution_ids.len()
            );
            println!("model        {model} (the oracle's GGUF, 2 OPEN per 1k tokens)");
            println!(
                "user         {} (dev key #5, 100 OPEN deposited for the operator)",
                demo.user.address()
            );
            println!("api key      {}", demo.api_key);
            println!();
            println!("try it (receipts settle on chain within ~10 s; see {url}/v1/receipts/<id>):");
            println!(
                "  curl -s {url}/v1/chat/completions -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' \\\n    -d '{{\"model\":\"{model}\",\"messages\":[{{\"role\":\"user\",\"content\":\"Call me Ishmael.\"}}],\"max_tokens\":32}}'",
                demo.api_key
            );
            println!("devnet running; press Ctrl-C to stop");
        }
        (Some(url), None) => {
            println!("oracle       {url} (OpenAI-compatible; unpaid development mode)");
            println!("devnet running; press Ctrl-C to stop");
        }
        (None, _) => println!("devnet running (chain only); press Ctrl-C to stop"),
    }
    tokio::select! {
        stopped = tokio::signal::ctrl_c() => {
            stopped?;
            devnet.shutdown().await?;
        }
        failed = devnet.oracle_stopped() => failed?,
    }
    Ok(())
}

fn print_deployment(d: &Deployment, manifest: &std::path::Path) {
    println!("chain id     {}", d.chain_id);
    println!("deploy block {}", d.deploy_block);
    println!("token        {}", d.contracts.token);
    println!("datanets     {}", d.contracts.datanets);
    println!("models       {}", d.contracts.models);
    println!("operators    {}", d.contracts.operators);
    println!("settlement   {}", d.contracts.settlement);
    println!("governance   {}", d.governance);
    println!("treasury     {}", d.treasury);
    println!("manifest     {}", manifest.display());
}
