//! Command-line interface: option groups and subcommands.

use std::path::PathBuf;

use alloy::{
    network::EthereumWallet,
    primitives::{Address, U256},
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use openledger_chain::{
    anvil::spawn_anvil,
    deploy::{DeployConfig, deploy_suite, write_manifest},
};
use openledger_primitives::deployment::Deployment;
use tracing_subscriber::EnvFilter;

/// OpenLedger: a decentralized AI economy — datanets, models, paid inference, attribution.
#[derive(Debug, Parser)]
#[command(name = "openledger", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a local chain (anvil), deploy the suite on it and keep it running until Ctrl-C.
    Devnet(DevnetArgs),
    /// Deploy and wire the contract suite on a chain and write the deployment manifest.
    Deploy(DeployArgs),
    /// Run an oracle (inference) node.
    #[command(subcommand)]
    Oracle(OracleCommand),
}

#[derive(Debug, Subcommand)]
enum OracleCommand {
    /// Serve the model and its adapters over the OpenAI-compatible HTTP API until Ctrl-C.
    Serve(OracleServeArgs),
}

/// Oracle settings: defaults < `--config` TOML file < `OPENLEDGER_*` env < these flags. See
/// `openledger_oracle::Config` for every field, its env var and its default.
#[derive(Debug, Args)]
struct OracleServeArgs {
    /// TOML file with oracle settings: `listen`, `default_max_tokens`, `max_tokens_limit`, and
    /// an `[engine]` table (model_path, model_name, device, weight_format, adapter_dir,
    /// adapter_cache, pinned_adapters, max_batch, max_queue, max_prefill_tokens, stream_buffer).
    #[arg(long, env = "OPENLEDGER_ORACLE_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [env OPENLEDGER_ORACLE_LISTEN; default 127.0.0.1:8080].
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// GGUF model file [env OPENLEDGER_MODEL_PATH; default
    /// $OPENLEDGER_MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf].
    #[arg(long)]
    model_path: Option<PathBuf>,
    /// Name the base model is served under [env OPENLEDGER_MODEL_NAME; default smollm2-135m].
    #[arg(long)]
    model_name: Option<String>,
    /// `cpu` or `cuda:N` (cuda needs a build with the `cuda` feature) [env OPENLEDGER_DEVICE].
    #[arg(long)]
    device: Option<String>,
    /// Weights in memory: q4, q8_0, gguf or f32 [env OPENLEDGER_WEIGHT_FORMAT; default q4].
    #[arg(long)]
    weight_format: Option<String>,
    /// Directory of LoRA adapters (*.safetensors) [env OPENLEDGER_ADAPTER_DIR].
    #[arg(long)]
    adapter_dir: Option<PathBuf>,
    /// Most sequences decoded together [env OPENLEDGER_MAX_BATCH; default 16].
    #[arg(long)]
    max_batch: Option<usize>,
}

impl OracleServeArgs {
    fn config(&self) -> Result<openledger_oracle::Config> {
        let base = match &self.config {
            Some(path) => openledger_oracle::Config::from_toml_file(path)?,
            None => openledger_oracle::Config::default(),
        };
        let mut c = base.apply_env()?;
        if let Some(v) = self.listen {
            c.listen = v;
        }
        if let Some(v) = &self.model_path {
            c.engine.model_path = v.clone();
        }
        if let Some(v) = &self.model_name {
            c.engine.model_name = v.clone();
        }
        if let Some(v) = &self.device {
            c.engine.device = v.clone();
        }
        if let Some(v) = &self.weight_format {
            c.engine.weight_format = v.parse()?;
        }
        if let Some(v) = &self.adapter_dir {
            c.engine.adapter_dir = Some(v.clone());
        }
        if let Some(v) = self.max_batch {
            c.engine.max_batch = v;
        }
        Ok(c)
    }
}

/// JSON-RPC endpoint of the chain.
#[derive(Debug, Args)]
struct RpcOpts {
    /// JSON-RPC URL of the chain.
    #[arg(
        long,
        env = "OPENLEDGER_RPC_URL",
        default_value = "http://127.0.0.1:8545"
    )]
    rpc_url: String,
}

/// Where the signing key comes from: a raw key (env preferred) or an encrypted keystore.
#[derive(Debug, Args)]
struct SignerOpts {
    /// Hex private key of the sending account. Prefer the env var: flags show in `ps`.
    #[arg(
        long,
        env = "OPENLEDGER_PRIVATE_KEY",
        hide_env_values = true,
        conflicts_with = "keystore"
    )]
    private_key: Option<String>,
    /// Encrypted JSON keystore (EIP-2335/Web3 secret storage) of the sending account.
    #[arg(long, env = "OPENLEDGER_KEYSTORE")]
    keystore: Option<PathBuf>,
    /// Password of the keystore.
    #[arg(
        long,
        env = "OPENLEDGER_KEYSTORE_PASSWORD",
        hide_env_values = true,
        requires = "keystore"
    )]
    keystore_password: Option<String>,
}

impl SignerOpts {
    fn signer(&self) -> Result<PrivateKeySigner> {
        match (&self.private_key, &self.keystore) {
            (Some(key), _) => key
                .trim()
                .parse()
                .context("--private-key is not a valid hex private key"),
            (None, Some(path)) => {
                let password = self.keystore_password.as_deref().unwrap_or_default();
                PrivateKeySigner::decrypt_keystore(path, password)
                    .with_context(|| format!("cannot decrypt keystore {}", path.display()))
            }
            (None, None) => bail!("no signer: set OPENLEDGER_PRIVATE_KEY or pass --keystore"),
        }
    }
}

/// Deployment parameters shared by `deploy` and `devnet`: defaults < `--deploy-config` TOML
/// (see `openledger_chain::deploy::DeployConfig`) < these flags.
#[derive(Debug, Args)]
struct SuiteOpts {
    /// TOML file with deployment parameters: supply, minStake, unstakeCooldown,
    /// withdrawalDelay, split, and the addresses below.
    #[arg(long, env = "OPENLEDGER_DEPLOY_CONFIG")]
    deploy_config: Option<PathBuf>,
    /// Governance (admin role) address; defaults to the deployer.
    #[arg(long, env = "OPENLEDGER_GOVERNANCE")]
    governance: Option<Address>,
    /// Treasury address; defaults to the deployer.
    #[arg(long, env = "OPENLEDGER_TREASURY")]
    treasury: Option<Address>,
    /// Receiver of the whole OPEN supply; defaults to the deployer.
    #[arg(long, env = "OPENLEDGER_DISTRIBUTION")]
    distribution: Option<Address>,
    /// Where to write the deployment manifest.
    #[arg(
        long,
        env = "OPENLEDGER_DEPLOYMENT",
        default_value = ".openledger/deployment.json"
    )]
    out: PathBuf,
}

impl SuiteOpts {
    fn config(&self) -> Result<DeployConfig> {
        let mut c = match &self.deploy_config {
            Some(path) => DeployConfig::from_toml_file(path)?,
            None => DeployConfig::default(),
        };
        c.governance = self.governance.or(c.governance);
        c.treasury = self.treasury.or(c.treasury);
        c.distribution = self.distribution.or(c.distribution);
        Ok(c)
    }
}

#[derive(Debug, Args)]
struct DeployArgs {
    #[command(flatten)]
    rpc: RpcOpts,
    #[command(flatten)]
    signer: SignerOpts,
    #[command(flatten)]
    suite: SuiteOpts,
}

#[derive(Debug, Args)]
struct DevnetArgs {
    /// Port for the local chain's JSON-RPC (HTTP and WebSocket).
    #[arg(long, env = "OPENLEDGER_DEVNET_PORT", default_value_t = 8545)]
    port: u16,
    /// Chain id of the local chain.
    #[arg(long, env = "OPENLEDGER_DEVNET_CHAIN_ID", default_value_t = 31337)]
    chain_id: u64,
    #[command(flatten)]
    suite: SuiteOpts,
    /// Do not start the oracle node (chain only).
    #[arg(long, env = "OPENLEDGER_DEVNET_NO_ORACLE")]
    no_oracle: bool,
    /// Oracle settings (the oracle serves the real model, unpaid until the payment pipeline lands).
    #[command(flatten)]
    oracle: OracleServeArgs,
}

/// Parses the command line and runs the chosen subcommand.
pub fn run() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("OPENLEDGER_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Devnet(args) => devnet(args).await,
            Command::Deploy(args) => deploy(args).await,
            Command::Oracle(OracleCommand::Serve(args)) => {
                Ok(openledger_oracle::serve(args.config()?).await?)
            }
        }
    })
}

async fn deploy(args: DeployArgs) -> Result<()> {
    let signer = args.signer.signer()?;
    let from = signer.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect(&args.rpc.rpc_url)
        .await
        .with_context(|| format!("cannot reach {}", args.rpc.rpc_url))?;
    let deployment = deploy_suite(&provider, from, &args.suite.config()?).await?;
    write_manifest(&args.suite.out, &deployment)?;
    print_deployment(&deployment, &args.suite.out);
    Ok(())
}

async fn devnet(args: DevnetArgs) -> Result<()> {
    let anvil = spawn_anvil(Some(args.port), args.chain_id, 10)?;
    let signer: PrivateKeySigner = anvil.keys()[0].clone().into();
    let from = signer.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(anvil.endpoint_url());
    let deployment = deploy_suite(&provider, from, &args.suite.config()?).await?;
    write_manifest(&args.suite.out, &deployment)?;
    print_deployment(&deployment, &args.suite.out);
    let balance = provider.get_balance(from).await?;
    println!("rpc          {}", anvil.endpoint());
    println!(
        "deployer     {from} ({} ETH, anvil dev key #0)",
        balance / U256::from(10u64.pow(18))
    );
    if args.no_oracle {
        println!("devnet running (chain only); press Ctrl-C to stop");
        tokio::signal::ctrl_c().await?;
        return Ok(());
    }
    let server = openledger_oracle::Server::bind(args.oracle.config()?).await?;
    println!(
        "oracle       http://{} (OpenAI-compatible; unpaid development mode)",
        server.local_addr()
    );
    println!("devnet running; press Ctrl-C to stop");
    server
        .run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    drop(anvil);
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
