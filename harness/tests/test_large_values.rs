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
        "30s",
        "--nemesis-interval",
        "10s",
        // 30 ops/s, about one in six a write of 900 KiB: a partition of
        // 10 s leaves a minority node some 40 MiB behind, past the old
        // 64 MiB line once encoded as numbers (3.6 bytes a byte).
        "--rate",
        "30",
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
    // Not vacuous: 900 KiB writes were acknowledged. (A cas carries two
    // values, so above about 500 KiB faultline's node refuses every cas as
    // too-large: a definite fail, as it should.)
    let ops = results["stats"]["ops"].as_array().expect("stats per op");
    let writes_ok = ops
        .iter()
        .find(|o| o["f"] == "write")
        .and_then(|o| o["ok"].as_u64())
        .unwrap_or(0);
    assert!(writes_ok >= 10, "only {writes_ok} writes ok: {results}");
}
