//! The shipped code reads no test hook: the `DRFLOW_TEST_*` variables that made the binary
//! stop dead at an event or add a non-idempotent step are gone; tests use the runner's
//! in-process hooks and their own steps instead (tests/common/).

use std::path::Path;

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_binary_and_the_library_crates_read_no_test_variable() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "engine/src", "steps/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 20, "found only {} source files", files.len());
    // Spelled in two halves, so that this file is no match of its own.
    let needle = format!("{}_{}", "DRFLOW", "TEST_");
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| std::fs::read_to_string(f).unwrap().contains(&needle))
        .map(|f| f.strip_prefix(root).unwrap().display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "{needle}* read in shipped code: {offenders:?}"
    );
}
