//! Project chores: `cargo xtask tidy` (every .rs file opens with a `//!` doc, no `#[ignore]`, no
//! `#[should_panic]`).

fn main() -> anyhow::Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        "tidy" => tidy(),
        _ => anyhow::bail!("usage: cargo xtask tidy"),
    }
}

fn tidy() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut problems = Vec::new();
    let mut stack = vec![root.join("crates"), root.join("xtask")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                if !path.ends_with("target") {
                    stack.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|ext| ext != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path)?;
            if !text.trim_start().starts_with("//!") {
                problems.push(format!(
                    "{}: does not open with a `//!` module doc",
                    path.display()
                ));
            }
            for banned in ["#[ignore", "#[should_panic"] {
                if text.contains(banned) && !path.ends_with("xtask/src/main.rs") {
                    problems.push(format!("{}: uses {banned}]", path.display()));
                }
            }
        }
    }
    if problems.is_empty() {
        println!("tidy: ok");
        Ok(())
    } else {
        for problem in &problems {
            eprintln!("{problem}");
        }
        anyhow::bail!("tidy: {} problem(s)", problems.len())
    }
}
