//! Where the shared test data is, for the checker's tests and bench.

/// The shared Porcupine test data: `shared/testdata/porcupine` beside the
/// nearest ancestor of this crate that has it (a checkout at /work/main
/// and a worktree at /work/wt/NAME both find /work/shared), or
/// `$FAULTLINE_TESTDATA/porcupine`.
pub fn testdata_dir() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("FAULTLINE_TESTDATA") {
        return std::path::Path::new(&dir).join("porcupine");
    }
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/testdata/porcupine"))
        .find(|d| d.join("expected.tsv").is_file())
        .expect("shared/testdata/porcupine beside an ancestor of the checker, or FAULTLINE_TESTDATA set")
}
