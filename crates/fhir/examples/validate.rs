//! Validates FHIR JSON files from the command line, or times the validator.
//!
//! `cargo run --release -p fhir --example validate -- FILE...` prints every issue of every file.
//! `cargo run --release -p fhir --example validate -- --repeat 10000 FILE` validates the file that many
//! times and prints the mean time of a validation, and of parsing the file.

use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let mut arguments: Vec<String> = std::env::args().skip(1).collect();
    let repeat = match arguments.iter().position(|argument| argument == "--repeat") {
        Some(index) => {
            let count = arguments
                .get(index + 1)
                .and_then(|count| count.parse::<u32>().ok());
            arguments.drain(index..(index + 2).min(arguments.len()));
            match count {
                Some(count) => Some(count),
                None => {
                    eprintln!("--repeat needs a number");
                    return ExitCode::FAILURE;
                }
            }
        }
        None => None,
    };
    let mut failed = false;
    for path in &arguments {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) => {
                eprintln!("{path}: {error}");
                failed = true;
                continue;
            }
        };
        let resource = match fhir::parse_json(&bytes) {
            Ok(resource) => resource,
            Err(issue) => {
                println!("{path}: {}", issue.diagnostics);
                failed = true;
                continue;
            }
        };
        if let Some(count) = repeat {
            // Warm up: the first call compiles the schema.
            let issues = fhir::validate_resource(&resource);
            let start = Instant::now();
            for _ in 0..count {
                std::hint::black_box(fhir::validate_resource(std::hint::black_box(&resource)));
            }
            let validating = start.elapsed() / count.max(1);
            let start = Instant::now();
            for _ in 0..count {
                let parsed = fhir::parse_json(std::hint::black_box(&bytes));
                std::hint::black_box(parsed.is_ok());
            }
            let parsing = start.elapsed() / count.max(1);
            println!(
                "{path}: {} issues; mean of {count} runs: validate {validating:.2?}, parse {parsing:.2?}",
                issues.len()
            );
            continue;
        }
        let issues = fhir::validate_resource(&resource);
        if issues.is_empty() {
            println!("{path}: valid");
        }
        for issue in &issues {
            failed = true;
            let expression = issue.expression.as_deref().unwrap_or("-");
            println!(
                "{path}: {} {expression}: {}",
                issue.code.as_str(),
                issue.diagnostics
            );
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
