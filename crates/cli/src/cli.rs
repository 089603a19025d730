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
    ConfigFile, DeployOptions, DeploySettings, DevnetOptions, OracleOptions, Overrides, Paths,
    Settings, SuiteOptions,
};
use openledger_primitives::deployment::Deployment;
use tracing_subscriber::EnvFilter;

/// OpenLedger: a decentralized AI economy — datanets, models, paid inference, attribution.
#[derive(Debug, Parser)]
#[command(name = "openledger", version, about, propagate_version = true)]
struct Cli {
    /// Configuration file, one table per component: `[oracle]`, `[oracle.engine]`,
    /// `[oracle.tch]`, `[deploy]`, `[devnet]` [default: ./openledger.toml when it exists]
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
        },
        Command::Deploy(ref a) => Overrides {
            deploy: a.deploy.clone(),
            ..Default::default()
        },
        Command::Oracle(OracleCommand::Serve(ref a)) => Overrides {
            oracle: a.oracle.clone(),
            ..Default::default()
        },
        Command::Config(ref a) => Overrides {
            oracle: a.oracle.clone(),
            deploy: a.deploy.clone(),
            devnet: a.devnet.clone(),
        },
    };
    let (file, read) = ConfigFile::load(cli.config.as_deref())?;
    let settings = Settings::resolve(file, overrides, &Paths::from_env())?;
    if let Some(path) = &read {
        tracing::info!(target: "openledger::config", file = %path.display(), "configuration file read");
    }
    if let Command::Config(_) = cli.command {
        print!("{}", settings.to_toml()?);
        return Ok(());
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
            Command::Config(_) => unreachable!("printed above"),
        }
    })
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
    println!("deployer     {} (anvil dev key #0)", devnet.accounts()[0]);
    match devnet.oracle_url() {
        Some(url) => {
            println!("oracle       {url} (OpenAI-compatible; unpaid development mode)");
            println!("devnet running; press Ctrl-C to stop");
        }
        None => println!("devnet running (chain only); press Ctrl-C to stop"),
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
