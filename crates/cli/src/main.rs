//! The `openledger` binary: parses arguments and hands over to [`cli::run`].

mod cli;

fn main() -> anyhow::Result<()> {
    cli::run()
}
