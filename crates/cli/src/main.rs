//! The `openledger` binary: parses arguments and hands over to [`cli::run`].

mod cli;

/// mimalloc: the indexer allocates and frees millions of small rows per backfill minute, where
/// glibc's allocator took a sixth of the time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    cli::run()
}
