//! The `loadgen` binary: the load driver's command line (`loadgen --help`; docs/benchmarks.md,
//! "Load driver").

use clap::Parser as _;

fn main() -> anyhow::Result<()> {
    loadgen::run_blocking(loadgen::Args::parse())
}
