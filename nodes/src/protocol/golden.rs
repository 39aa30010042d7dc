//! Golden lines: requests and replies pinned as the exact bytes on the
//! wire, so that the format cannot drift silently. Each line is checked
//! both ways: the typed value encodes to exactly the line, and the line
//! decodes to exactly the typed value. A change that breaks one of these
//! breaks every client and node of an older build: change docs/protocol.md
//! with it, on purpose.

use serde_json::json;

use super::{ErrorCode, Op, Reply, Request};
use crate::state::txn::{MicroOp, MicroOpKind};

fn request(id: u64, op: Op) -> Request {
    Request { id: Some(id), op }
}

/// Every data and transaction request a workload sends.
fn client_requests() -> Vec<(Request, &'static str)> {
    vec![
        (
            request(1, Op::Read { key: "x".into() }),
            r#"{"id":1,"op":"read","key":"x"}"#,
        ),
        (
            request(
                2,
                Op::Write {
                    key: "x".into(),
                    value: json!(5),
                },
            ),
            r#"{"id":2,"op":"write","key":"x","value":5}"#,
        ),
        (
            request(
                3,
                Op::Cas {
                    key: "x".into(),
                    from: json!(4),
                    to: json!(6),
                },
            ),
            r#"{"id":3,"op":"cas","key":"x","from":4,"to":6}"#,
        ),
        (
            request(
                4,
                Op::Append {
                    key: "s".into(),
                    value: json!(9),
                },
            ),
            r#"{"id":4,"op":"append","key":"s","value":9}"#,
        ),
        (
            request(
                5,
                Op::Add {
                    key: "c".into(),
                    delta: -2,
                },
            ),
            r#"{"id":5,"op":"add","key":"c","delta":-2}"#,
        ),
        (
            request(
                6,
                Op::Txn {
                    mops: vec![
                        MicroOp {
                            kind: MicroOpKind::Read,
                            key: "1".into(),
                            value: json!(null),
                        },
                        MicroOp {
                            kind: MicroOpKind::Append,
                            key: "2".into(),
                            value: json!(3),
                        },
                        MicroOp {
                            kind: MicroOpKind::Write,
                            key: "3".into(),
                            value: json!(4),
                        },
                    ],
                },
            ),
            r#"{"id":6,"op":"txn","mops":[["r","1",null],["append","2",3],["w","3",4]]}"#,
        ),
    ]
}

/// Every lock request, and `auth`.
fn lock_and_auth_requests() -> Vec<(Request, &'static str)> {
    vec![
        (
            request(
                7,
                Op::Acquire {
                    lock: "L".into(),
                    owner: "w3".into(),
                    ttl_ms: 500,
                },
            ),
            r#"{"id":7,"op":"acquire","lock":"L","owner":"w3","ttl_ms":500}"#,
        ),
        (
            request(
                8,
                Op::Renew {
                    lock: "L".into(),
                    owner: "w3".into(),
                    token: 12,
                    ttl_ms: 500,
                },
            ),
            r#"{"id":8,"op":"renew","lock":"L","owner":"w3","token":12,"ttl_ms":500}"#,
        ),
        (
            request(
                9,
                Op::Release {
                    lock: "L".into(),
                    owner: "w3".into(),
                    token: 12,
                },
            ),
            r#"{"id":9,"op":"release","lock":"L","owner":"w3","token":12}"#,
        ),
        (
            request(
                10,
                Op::FencedWrite {
                    key: "r".into(),
                    value: json!([1, 2]),
                    token: 12,
                },
            ),
            r#"{"id":10,"op":"fenced_write","key":"r","value":[1,2],"token":12}"#,
        ),
        (
            Request {
                id: None,
                op: Op::Auth {
                    token: "s3cret".into(),
                },
            },
            r#"{"op":"auth","token":"s3cret"}"#,
        ),
        (
            request(
                0,
                Op::Auth {
                    token: "s3cret".into(),
                },
            ),
            r#"{"id":0,"op":"auth","token":"s3cret"}"#,
        ),
    ]
}

/// Every admin request the harness sends.
fn admin_requests() -> Vec<(Request, &'static str)> {
    vec![
        (request(1, Op::Status), r#"{"id":1,"op":"status"}"#),
        (
            request(
                2,
                Op::Filter {
                    drop: vec![2, 3],
                    delay_ms: 20,
                    loss: 0.25,
                },
            ),
            r#"{"id":2,"op":"filter","drop":[2,3],"delay_ms":20,"loss":0.25}"#,
        ),
        (
            request(
                3,
                Op::Clock {
                    offset_ms: -1500,
                    rate: 1.5,
                },
            ),
            r#"{"id":3,"op":"clock","offset_ms":-1500,"rate":1.5}"#,
        ),
        (request(4, Op::Groups), r#"{"id":4,"op":"groups"}"#),
        (
            request(
                5,
                Op::JoinGroup {
                    group: 7,
                    term: None,
                },
            ),
            r#"{"id":5,"op":"join-group","group":7}"#,
        ),
        (
            request(6, Op::LeaveGroup { group: 7 }),
            r#"{"id":6,"op":"leave-group","group":7}"#,
        ),
        (
            request(
                7,
                Op::ChangeMembership {
                    group: 7,
                    voters: vec![1, 2, 5],
                },
            ),
            r#"{"id":7,"op":"change-membership","group":7,"voters":[1,2,5]}"#,
        ),
        (
            request(
                8,
                Op::SetMembers {
                    members: vec![1, 4],
                },
            ),
            r#"{"id":8,"op":"set-members","members":[1,4]}"#,
        ),
        (
            request(
                9,
                Op::TransferLeader {
                    to: 2,
                    group: Some(3),
                },
            ),
            r#"{"id":9,"op":"transfer-leader","to":2,"group":3}"#,
        ),
    ]
}

fn replies() -> Vec<(Reply, &'static str)> {
    vec![
        (Reply::ok(Some(1)), r#"{"id":1,"ok":true}"#),
        (
            Reply::ok(Some(2)).with("value", json!(5)),
            r#"{"id":2,"ok":true,"value":5}"#,
        ),
        (
            Reply::ok(Some(2)).with("value", json!(null)),
            r#"{"id":2,"ok":true,"value":null}"#,
        ),
        (
            Reply::ok(Some(7)).with("token", 12),
            r#"{"id":7,"ok":true,"token":12}"#,
        ),
        (
            Reply::error(Some(3), ErrorCode::CasMismatch).with("value", json!(5)),
            r#"{"id":3,"ok":false,"error":"cas-mismatch","definite":true,"value":5}"#,
        ),
        (
            Reply::not_leader(Some(4), Some("127.0.0.2:7002".into())),
            r#"{"id":4,"ok":false,"error":"not-leader","definite":true,"leader":"127.0.0.2:7002"}"#,
        ),
        (
            Reply::not_leader(Some(4), None),
            r#"{"id":4,"ok":false,"error":"not-leader","definite":true,"leader":null}"#,
        ),
        (
            Reply::moved(Some(6), 3, Some("127.0.0.3:7003".into())),
            r#"{"id":6,"ok":false,"error":"moved","definite":true,"leader":"127.0.0.3:7003","shard":3}"#,
        ),
        (
            Reply::error(Some(5), ErrorCode::Timeout),
            r#"{"id":5,"ok":false,"error":"timeout","definite":false}"#,
        ),
        (
            Reply::error(None, ErrorCode::Unauthorized),
            r#"{"id":null,"ok":false,"error":"unauthorized","definite":true}"#,
        ),
        (
            // A request the connection's role may not make (server::access).
            Reply::error(Some(7), ErrorCode::Unauthorized).with(
                "reason",
                "`status` needs an admin credential; this connection's role is client",
            ),
            r#"{"id":7,"ok":false,"error":"unauthorized","definite":true,"reason":"`status` needs an admin credential; this connection's role is client"}"#,
        ),
        (
            Reply::bad_request(None, "malformed JSON"),
            r#"{"id":null,"ok":false,"error":"bad-request","definite":true,"reason":"malformed JSON"}"#,
        ),
    ]
}

fn text(line: Vec<u8>) -> String {
    String::from_utf8(line).expect("a line is UTF-8")
}

#[test]
fn requests_encode_to_exactly_the_golden_lines_and_decode_back() {
    let every = client_requests()
        .into_iter()
        .chain(lock_and_auth_requests())
        .chain(admin_requests());
    for (typed, line) in every {
        assert_eq!(text(typed.encode()), format!("{line}\n"), "{typed:?}");
        let decoded = Request::decode(line.as_bytes())
            .unwrap_or_else(|e| panic!("golden line {line} does not decode: {e}"));
        assert_eq!(decoded, typed, "{line}");
    }
}

#[test]
fn replies_encode_to_exactly_the_golden_lines_and_decode_back() {
    for (typed, line) in replies() {
        assert_eq!(text(typed.encode()), format!("{line}\n"), "{typed:?}");
        let decoded = Reply::decode(line.as_bytes())
            .unwrap_or_else(|e| panic!("golden line {line} does not decode: {e}"));
        assert_eq!(decoded, typed, "{line}");
    }
}

#[test]
fn every_error_code_has_its_golden_name_and_definiteness() {
    let codes = [
        (ErrorCode::NotLeader, "not-leader", true),
        (ErrorCode::BadRequest, "bad-request", true),
        (ErrorCode::Unauthorized, "unauthorized", true),
        (ErrorCode::TooLarge, "too-large", true),
        (ErrorCode::Timeout, "timeout", false),
        (ErrorCode::ShuttingDown, "shutting-down", false),
        (ErrorCode::CasMismatch, "cas-mismatch", true),
        (ErrorCode::LockHeld, "lock-held", true),
        (ErrorCode::NotHolder, "not-holder", true),
        (ErrorCode::StaleToken, "stale-token", true),
        (ErrorCode::Overloaded, "overloaded", true),
        (ErrorCode::Moved, "moved", true),
        (ErrorCode::InProgress, "in-progress", true),
        (ErrorCode::Unsupported, "unsupported", true),
        (ErrorCode::TlsRequired, "tls-required", true),
    ];
    // A new code fails to compile here: pin it above, then list it here.
    let _every_code_is_listed = |code: ErrorCode| match code {
        ErrorCode::NotLeader
        | ErrorCode::BadRequest
        | ErrorCode::Unauthorized
        | ErrorCode::TooLarge
        | ErrorCode::Timeout
        | ErrorCode::ShuttingDown
        | ErrorCode::CasMismatch
        | ErrorCode::LockHeld
        | ErrorCode::NotHolder
        | ErrorCode::StaleToken
        | ErrorCode::Overloaded
        | ErrorCode::Moved
        | ErrorCode::InProgress
        | ErrorCode::Unsupported
        | ErrorCode::TlsRequired => {}
        // What a newer node may send: not a name of ours to pin.
        ErrorCode::Unknown => {}
    };
    for (code, name, definite) in codes {
        assert_eq!(
            serde_json::to_string(&code).expect("a code serializes"),
            format!("\"{name}\"")
        );
        assert_eq!(code.as_str(), name);
        assert_eq!(code.definite(), definite, "{name}");
    }
}
