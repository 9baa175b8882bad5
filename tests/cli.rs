//! The `strata` binary end to end: demo, inspect, verify.

use std::process::Command;

fn strata(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .expect("run strata");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn demo_then_inspect_and_verify_then_detect_damage() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("db");
    let data = data_dir.to_str().unwrap();
    let (code, out) = strata(&["demo", "--dir", data, "--hours", "0.1", "--instances", "2"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("gateway requests/s"), "{out}");
    assert!(out.contains("bytes/sample"), "{out}");

    let (code, out) = strata(&["inspect", data, "--series"]);
    assert_eq!(code, 0, "{out}");
    // 2 instances x 58 series, 360 s each, one partition
    assert!(out.contains("segments total  41760 samples"), "{out}");
    assert!(
        out.contains(r#"heartbeat_up{instance="host-001",service="billing"}"#),
        "{out}"
    );

    let (code, out) = strata(&["verify", data]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact"), "{out}");

    let segment = data_dir.join("segments").join(format!("{:020}.seg", 1));
    let (code, out) = strata(&["inspect", segment.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("series         116"), "{out}");
    assert!(out.contains("samples 41760"), "{out}");

    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[100] ^= 0x04;
    std::fs::write(&segment, &bytes).unwrap();
    let (code, out) = strata(&["verify", segment.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("DAMAGED") && out.contains(".seg at offset 16 (series "),
        "{out}"
    );
    let (code, out) = strata(&["verify", data]);
    assert_eq!(code, 1, "damage inside a database is found too: {out}");

    // The demo replaces its own previous data, but nothing else.
    let (code, out) = strata(&["demo", "--dir", data, "--hours", "0.01", "--instances", "1"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = strata(&[
        "demo",
        "--dir",
        dir.path().to_str().unwrap(),
        "--hours",
        "0.01",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not a strata database"), "{out}");
}

#[test]
fn errors_are_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.seg");
    let (code, out) = strata(&["inspect", missing.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("cannot open") && out.contains("nope.seg"),
        "{out}"
    );

    let junk = dir.path().join("junk.seg");
    std::fs::write(&junk, b"definitely not a segment file, but long enough to have a footer..............................................................").unwrap();
    let (code, out) = strata(&["verify", junk.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("bad magic"), "{out}");
}
