//! The `strata` binary end to end: demo, inspect, verify, and what each
//! command does with hostile arguments, closed pipes and damaged data.

mod cli_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use cli_support::assert_usage_errors;

/// Runs `strata`: exit code and standard output then standard error.
fn strata(args: &[&str]) -> (i32, String) {
    let (code, out, err) = cli_support::strata(args);
    (code, out + &err)
}

#[test]
fn demo_then_inspect_and_verify_then_detect_damage() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("db");
    let data = data_dir.to_str().unwrap();
    let (code, out) = strata(&["demo", "--dir", data, "--hours", "0.1", "--instances", "2"]);
    assert_eq!(code, 0, "{out}");
    // KPIs are PromQL rules judged against thresholds.
    assert!(
        out.contains("BREACH IF") && out.contains("gateway error ratio"),
        "{out}"
    );
    assert!(out.contains(" OK\n") && !out.contains("ERROR"), "{out}");
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
    assert!(out.contains("pick another --dir"), "{out}");
}

#[test]
fn errors_are_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.seg");
    let (code, out) = strata(&["inspect", missing.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("cannot read") && out.contains("nope.seg") && out.contains("No such file"),
        "{out}"
    );

    let junk = dir.path().join("junk.seg");
    std::fs::write(&junk, b"definitely not a segment file, but long enough to have a footer..............................................................").unwrap();
    let (code, out) = strata(&["verify", junk.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("bad magic"), "{out}");
}

fn tiny_demo(dir: &Path) -> (i32, String) {
    strata(&[
        "demo",
        "--dir",
        dir.to_str().unwrap(),
        "--hours",
        "0.01",
        "--instances",
        "1",
    ])
}

/// A database written by `import`, its samples left in the WAL.
fn imported_db(dir: &Path, lines: usize) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let input = dir.join("input.tsv");
    let text: String = (0..lines)
        .map(|i| format!("up{{job=\"a\"}}\t{}\t{i}\n", i * 1000))
        .collect();
    std::fs::write(&input, text).unwrap();
    let db = dir.join("db");
    let (code, out) = strata(&[
        "import",
        "--db",
        db.to_str().unwrap(),
        "--no-flush",
        "--batch",
        "2",
        input.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    db
}

fn wal_file(db: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(db.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| std::fs::metadata(p).unwrap().len() > 0)
        .collect();
    files.sort();
    files.pop().expect("a non-empty WAL file")
}

/// Regression (issue 7): `demo --dir X` deleted X recursively when it held
/// a MANIFEST or a `wal/` folder: a real database, a folder with other
/// files, even one open by a writer.
#[test]
fn demo_never_deletes_what_it_did_not_create() {
    let dir = tempfile::tempdir().unwrap();

    // A folder with a MANIFEST and other files.
    let mixed = dir.path().join("mixed");
    std::fs::create_dir_all(mixed.join("wal")).unwrap();
    std::fs::write(mixed.join("MANIFEST"), b"not ours").unwrap();
    std::fs::write(mixed.join("precious.txt"), b"keep me").unwrap();
    let (code, out) = tiny_demo(&mixed);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("pick another --dir or remove it yourself"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(mixed.join("precious.txt")).unwrap(),
        b"keep me"
    );
    assert_eq!(std::fs::read(mixed.join("MANIFEST")).unwrap(), b"not ours");

    // A real database that import wrote.
    let db = imported_db(dir.path(), 3);
    let (code, out) = tiny_demo(&db);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no .strata-owned marker"), "{out}");
    let (code, exported) = strata(&["export", "--db", db.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(exported.lines().count(), 3, "{exported}");

    // The demo's own directory: replaced, unless a writer holds it or
    // something else was put in it.
    let own = dir.path().join("own");
    let (code, out) = tiny_demo(&own);
    assert_eq!(code, 0, "{out}");
    let lock = std::fs::File::open(own.join("LOCK")).unwrap();
    lock.try_lock().unwrap();
    let (code, out) = tiny_demo(&own);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("locked by another writer"), "{out}");
    assert!(own.join("MANIFEST").exists());
    drop(lock);
    let (code, out) = tiny_demo(&own);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Replacing the previous demo data"), "{out}");
    std::fs::write(own.join("notes.txt"), b"mine").unwrap();
    let (code, out) = tiny_demo(&own);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("it holds notes.txt"), "{out}");
    assert!(own.join("notes.txt").exists() && own.join("MANIFEST").exists());
}

/// Regression (issue 7): arguments that overflowed or ran unbounded.
#[test]
fn demo_refuses_impossible_spans() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("d");
    let target_text = target.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = [
        ("--hours", "-1"),
        ("--hours", "NaN"),
        ("--hours", "1e300"),
        ("--instances", "0"),
        ("--instances", "18446744073709551615"),
        ("--threads", "0"),
    ]
    .into_iter()
    .map(|(option, value)| (vec!["demo", "--dir", target_text, option, value], option))
    .collect();
    assert_usage_errors(&cases);
    assert!(!target.exists());
}

/// Regression (issue 7): every command panicked ("failed printing to
/// stdout") when its standard output was a closed pipe, as in
/// `strata inspect DIR | head`. Now a closed pipe ends it quietly, exit 0.
#[test]
fn closed_stdout_ends_quietly_with_success() {
    let dir = tempfile::tempdir().unwrap();
    let db = imported_db(dir.path(), 5);
    let db_text = db.to_str().unwrap().to_owned();
    let demo = dir.path().join("demo");
    let input = dir.path().join("input.tsv");
    for args in [
        vec!["inspect", &db_text, "--series"],
        vec!["verify", &db_text],
        vec!["export", "--db", &db_text],
        vec![
            "import",
            "--db",
            &db_text,
            "--no-flush",
            input.to_str().unwrap(),
        ],
        vec![
            "demo",
            "--dir",
            demo.to_str().unwrap(),
            "--hours",
            "0.01",
            "--instances",
            "1",
        ],
    ]
    .into_iter()
    .chain(["write", "query"].map(|kind| {
        vec![
            "bench",
            kind,
            "--series",
            "10",
            "--duration",
            "1m",
            "--sync",
            "never",
        ]
    })) {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(&args)
            .stdout(writer)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
    }
}

/// The recovery report (issue 7): verify and inspect say what a writable
/// open would do, verify exits 1 when it would change anything, import
/// says what its open did.
#[test]
fn verify_inspect_and_import_report_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let db = imported_db(dir.path(), 20);
    let db_text = db.to_str().unwrap();
    let (code, out) = strata(&["verify", db_text]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact") && !out.contains("RECOVERY"), "{out}");
    let (code, out) = strata(&["inspect", db_text]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("recovery        none needed"), "{out}");

    // A crash mid-append: the last frame is cut short.
    let wal = wal_file(&db);
    let len = std::fs::metadata(&wal).unwrap().len();
    let bytes = std::fs::read(&wal).unwrap();
    std::fs::write(&wal, &bytes[..bytes.len() - 3]).unwrap();
    let (code, out) = strata(&["verify", db_text]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("RECOVERY WAL: would truncate"), "{out}");
    assert!(out.contains("opening for writing would change"), "{out}");
    let (code, out) = strata(&["inspect", db_text]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("recovery        WAL: would truncate"), "{out}");
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), len - 3, "read-only");

    // A writable open (import) truncates and says so on stderr.
    let empty = dir.path().join("empty.tsv");
    std::fs::write(&empty, "").unwrap();
    let (code, out, err) =
        cli_support::strata(&["import", "--db", db_text, empty.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("strata import: on open, WAL: truncated"),
        "{err}"
    );
    let (code, out) = strata(&["verify", db_text]);
    assert_eq!(code, 0, "{out}");

    // Damage in the middle of a WAL file.
    let db = imported_db(&dir.path().join("second"), 20);
    let wal = wal_file(&db);
    let mut bytes = std::fs::read(&wal).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&wal, &bytes).unwrap();
    let (code, out) = strata(&["verify", db.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("RECOVERY WAL: would"), "{out}");
}

#[test]
fn help_explains_the_safety_options() {
    for (command, needles) in [
        ("demo", &[".strata-owned", "refused", "100 years"][..]),
        ("import", &["--max-line-bytes", "1048576", "skipped"][..]),
        ("export", &["292 million years"][..]),
    ] {
        let (code, out) = strata(&[command, "--help"]);
        assert_eq!(code, 0);
        for needle in needles {
            assert!(
                out.contains(needle),
                "{command} --help lacks {needle}: {out}"
            );
        }
    }
}

/// Finding 1: with its MANIFEST gone, `verify` said "all intact" and
/// `export` returned nothing, both with exit 0. Now both fail and name the
/// way out; `repair` rebuilds the manifest and every sample comes back.
#[test]
fn missing_manifest_fails_loudly_until_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    let db = strata::Db::open(&db_dir, strata::Options::default()).unwrap();
    let key = strata::SeriesKey::new("up", &[("job", "a")]).unwrap();
    for t in 0..100 {
        db.append(&key, t * 1000, t as f64).unwrap();
    }
    db.close().unwrap();
    let data = db_dir.to_str().unwrap();
    let (code, before) = strata(&["export", "--db", data]);
    assert_eq!(code, 0, "{before}");
    assert_eq!(before.lines().count(), 100, "{before}");
    std::fs::remove_file(db_dir.join("MANIFEST")).unwrap();

    let (code, out) = strata(&["verify", data]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("no MANIFEST") && out.contains("strata repair"),
        "{out}"
    );
    let (code, out) = strata(&["export", "--db", data]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no MANIFEST"), "{out}");

    let (code, out) = strata(&["repair", data]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("repaired: MANIFEST is missing"), "{out}");
    let (code, out) = strata(&["verify", data]);
    assert_eq!(code, 0, "{out}");
    let (code, after) = strata(&["export", "--db", data]);
    assert_eq!(code, 0, "{after}");
    assert_eq!(after, before);
    let (code, out) = strata(&["repair", data]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing to repair"), "{out}");
}
