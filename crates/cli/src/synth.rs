//! `tsunagu synth`: writes a deterministic Japanese synthetic population as JP-CLINS submissions
//! (NDJSON of Bundles by kind, under `OUT/bundles/`), its ground truth (`OUT/truth.jsonl`) and a
//! manifest (`OUT/manifest.json`); see the `synth` crate for the layout. Needs no database. Prints
//! counts, bytes and speed, never any generated content.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

/// Arguments of `tsunagu synth`.
#[derive(Debug, Args)]
pub(crate) struct SynthArgs {
    /// Number of people to generate.
    #[arg(long, default_value_t = 1000)]
    patients: u64,
    /// The seed: the same seed (and --as-of) always writes the same files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output directory (created if missing; the files it writes are replaced).
    #[arg(long)]
    out: PathBuf,
    /// The day the population is observed, YYYY-MM-DD: all generated events are on or before it
    /// (default: a fixed day, so that the seed alone fixes the output).
    #[arg(long, value_name = "DATE")]
    as_of: Option<String>,
}

pub(crate) fn run(args: &SynthArgs) -> anyhow::Result<()> {
    let mut options = ::synth::Options::default();
    if let Some(text) = &args.as_of {
        let Some(date) = ::synth::Date::parse(text) else {
            bail!("--as-of must be a date written YYYY-MM-DD");
        };
        options.as_of = date;
    }
    let generator = ::synth::Generator::with_options(args.seed, options);
    let progress = ProgressBar::new(args.patients);
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} people")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let summary = ::synth::write_dataset(&generator, args.patients, &args.out, &mut |done| {
        progress.set_position(done)
    })
    .with_context(|| format!("cannot write the population under {}", args.out.display()))?;
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    let bytes = summary.total_bytes();
    println!(
        "synth: {} people, {} bundles, {} resources, {:.1} MB in {}",
        summary.persons,
        summary.total_bundles(),
        summary.resources.values().sum::<u64>(),
        bytes as f64 / 1e6,
        args.out.display()
    );
    for (kind, count) in &summary.bundles {
        println!("  {:<26} {count:>10} bundles", kind.file_name());
    }
    println!(
        "synth: {seconds:.1} s, {:.0} people/s, {:.1} MB/s",
        summary.persons as f64 / seconds,
        bytes as f64 / 1e6 / seconds
    );
    println!(
        "synth: load with `tsunagu import {}`",
        args.out.join("bundles").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::{Cli, Command};

    fn parse(arguments: &[&str]) -> super::SynthArgs {
        let cli = Cli::try_parse_from(arguments).expect("parses");
        match cli.command {
            Command::Synth(args) => args,
            _ => panic!("not the synth command"),
        }
    }

    #[test]
    fn synth_writes_the_population_without_a_database() {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("population");
        let out_text = out.to_str().expect("utf-8 path");
        let args = parse(&[
            "tsunagu",
            "synth",
            "--patients",
            "5",
            "--seed",
            "3",
            "--out",
            out_text,
        ]);
        super::run(&args).expect("written");
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).expect("manifest"))
                .expect("json");
        assert_eq!(manifest["persons"], 5);
        assert_eq!(manifest["seed"], 3);
        assert!(out.join("bundles/clins-observation.ndjson").exists());
        assert!(out.join("truth.jsonl").exists());
    }

    #[test]
    fn synth_rejects_a_malformed_as_of_date() {
        let dir = tempfile::tempdir().expect("temp dir");
        let out_text = dir.path().to_str().expect("utf-8 path");
        let args = parse(&[
            "tsunagu",
            "synth",
            "--out",
            out_text,
            "--as-of",
            "2026-13-01",
        ]);
        let error = super::run(&args).expect_err("rejected");
        assert!(error.to_string().contains("--as-of"));
    }
}
