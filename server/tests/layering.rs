//! The arrows of the house point one way (docs/ARCHITECTURE.md, issue 19): the core
//! (`server/src/chat/`) imports none of what is built around it (the reactor, the cluster, the
//! store, the web shell, `mio`), and `main.rs` only turns flags into a `Config` and calls the
//! library. Read from the source files, so a new import fails here before review.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    out
}

/// The lines of `path` that are code (not comments) and contain any of `needles`.
fn code_lines_with(path: &Path, needles: &[&str]) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .filter(|l| needles.iter().any(|n| l.contains(n)))
        .map(|l| format!("{}: {}", path.display(), l.trim()))
        .collect()
}

#[test]
fn the_core_imports_nothing_built_around_it() {
    let chat = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/chat");
    let files = rust_files(&chat);
    assert!(files.len() > 10, "chat/ has {} files", files.len());
    let forbidden = [
        "crate::cluster",
        "crate::reactor",
        "crate::store",
        "crate::web",
        "crate::listen",
        "mio::",
    ];
    let found: Vec<String> = files
        .iter()
        .flat_map(|f| code_lines_with(f, &forbidden))
        .collect();
    assert!(found.is_empty(), "the core imports its shell: {found:#?}");
}

#[test]
fn main_only_turns_flags_into_a_config_and_serves() {
    let main = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/main.rs");
    let found = code_lines_with(
        &main,
        &[
            "Reactor",
            "store::open",
            "bind_all",
            "attach_store",
            ".run()",
        ],
    );
    assert!(
        found.is_empty(),
        "main.rs does the library's work: {found:#?}"
    );
}
