//! Large values under faults, end to end (issue 21, finding 3): a follower
//! cut off while clients write 900 KiB values must catch up after the heal.
//! On the node before the fix it never did (append batches capped by entry
//! count only, entry data as an array of numbers: the catch-up batch passed
//! the 64 MiB peer line limit and was resent forever); the run's `caught-up`
//! check names such a node, and the final reads alone could not see it.

mod test_common;

use test_common::{args, run_test};

#[test]
fn a_kv_run_with_900_kib_values_under_partitions_ends_valid_with_every_node_caught_up() {
    let store = tempfile::tempdir().expect("tempdir");
    let store_arg = store.path().to_string_lossy().into_owned();
    let run = run_test(&args(&[
        "--workload",
        "kv",
        "--value-size",
        "900KiB",
        "--nemesis",
        "partition",
        "--time-limit",
        "20s",
        "--nemesis-interval",
        "5s",
        // 10 ops/s of 900 KiB (about half of them writes): a partition of
        // 5 s leaves a minority node about 20 MiB behind, past the old 64 MiB
        // line once encoded as numbers; the nodes' logs stay small enough.
        "--rate",
        "10",
        "--seed",
        "20261206",
        "--json",
        "--store",
        &store_arg,
    ]));
    assert_eq!(
        run.code,
        Some(0),
        "want valid\n  {}\n{}",
        run.command,
        run.digest
    );
    let json_start = run.digest.find('{').expect("results.json on stdout");
    let mut stream = serde_json::Deserializer::from_str(&run.digest[json_start..])
        .into_iter::<serde_json::Value>();
    let results = stream
        .next()
        .expect("one JSON value")
        .expect("results.json parses");
    let checkers = results["checkers"].as_array().expect("checkers");
    let caught_up = checkers
        .iter()
        .find(|c| c["checker"] == "caught-up")
        .unwrap_or_else(|| panic!("no caught-up check in {results}"));
    assert_eq!(caught_up["verdict"], "valid", "{caught_up}");
    let applied = caught_up["detail"]["applied"]
        .as_object()
        .expect("applied per node");
    assert_eq!(applied.len(), 5, "every node answered: {caught_up}");
    let writes = results["stats"].to_string();
    assert!(!writes.is_empty(), "the run has stats: {results}");
}
