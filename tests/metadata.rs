//! Metric metadata (`# TYPE`/`# HELP`/`# UNIT`): stored durably in the
//! data directory's `METADATA` file, read back by writable and read-only
//! opens, never lost to a failed store, and never able to block the
//! samples: a damaged file is quarantined and reported.

use std::fs;
use std::path::Path;

use strata::{
    Db, Error, Matcher, Metadata, MetricMetadata, MetricType, Options, SeriesKey, TimeRange,
};

fn counter() -> MetricMetadata {
    MetricMetadata::new(MetricType::Counter)
        .with_help("Requests served.\nBy code, \"quoted\" \\ escaped.")
        .with_unit("requests")
}

fn histogram() -> MetricMetadata {
    MetricMetadata::new(MetricType::Histogram).with_unit("seconds")
}

fn expected() -> Metadata {
    Metadata::from_families([
        ("http_requests".to_owned(), counter()),
        ("rpc_duration_seconds".to_owned(), histogram()),
    ])
}

fn store(dir: &Path) {
    let db = Db::open(dir, Options::default()).unwrap();
    let key = SeriesKey::new("http_requests_total", &[("code", "200")]).unwrap();
    db.append(&key, 1_000, 1.0).unwrap();
    assert!(db
        .set_metadata([
            ("http_requests", counter()),
            ("rpc_duration_seconds", histogram()),
        ])
        .unwrap());
    db.close().unwrap();
}

#[test]
fn metadata_survives_reopen_and_is_seen_read_only() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path());
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.metadata(), expected());
    drop(db);
    let reader = Db::open_read_only(dir.path()).unwrap();
    assert_eq!(reader.metadata(), expected());
    let (family, found) = reader
        .metadata()
        .of_metric("http_requests_created")
        .map(|(f, m)| (f.to_owned(), m.clone()))
        .unwrap();
    assert_eq!((family.as_str(), found), ("http_requests", counter()));
    assert!(matches!(
        reader.set_metadata([("up", MetricMetadata::default())]),
        Err(Error::ReadOnly)
    ));
}

#[test]
fn a_later_entry_replaces_the_whole_family_entry_and_others_stay() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path());
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let gauge = MetricMetadata::new(MetricType::Gauge);
    assert!(db.set_metadata([("http_requests", gauge.clone())]).unwrap());
    assert!(!db.set_metadata([("http_requests", gauge.clone())]).unwrap());
    db.close().unwrap();
    let db = Db::open_read_only(dir.path()).unwrap();
    assert_eq!(db.metadata().get("http_requests"), Some(&gauge));
    assert_eq!(
        db.metadata().get("rpc_duration_seconds"),
        Some(&histogram())
    );
}

#[test]
fn invalid_metadata_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let too_long = MetricMetadata::new(MetricType::Gauge)
        .with_help("x".repeat(strata::metadata::MAX_HELP_BYTES + 1));
    for bad in [
        vec![
            ("ok", MetricMetadata::default()),
            ("bad-name", MetricMetadata::default()),
        ],
        vec![("ok", MetricMetadata::default()), ("long_help", too_long)],
    ] {
        let error = db.set_metadata(bad).unwrap_err();
        assert!(matches!(error, Error::Input(_)), "{error}");
    }
    assert!(db.metadata().is_empty(), "nothing of a refused call is set");
    assert!(!dir.path().join("METADATA").exists());
}

#[test]
fn a_damaged_metadata_file_is_quarantined_and_the_samples_stay() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path());
    let path = dir.path().join("METADATA");
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    fs::write(&path, &bytes).unwrap();

    // Read-only: reported as what would be done, nothing moved.
    let reader = Db::open_read_only(dir.path()).unwrap();
    assert!(reader.metadata().is_empty());
    let report = reader.recovery_report();
    assert_eq!(report.quarantined.len(), 1, "{report:?}");
    assert!(report.quarantined[0].reason.contains("checksum mismatch"));
    assert!(path.exists());
    drop(reader);

    let db = Db::open(dir.path(), Options::default()).unwrap();
    let quarantined = &db.recovery_report().quarantined;
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].from, path);
    assert!(quarantined[0].reason.contains(&path.display().to_string()));
    assert_eq!(
        fs::read(&quarantined[0].to).unwrap(),
        bytes,
        "evidence kept"
    );
    assert!(!path.exists());
    assert!(db.metadata().is_empty());
    let all = [Matcher::equal("__name__", "http_requests_total")];
    let series = db.select(&all, TimeRange::new(i64::MIN, i64::MAX)).unwrap();
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].samples.len(), 1);
    // Metadata can be stored again.
    assert!(db
        .set_metadata([("up", MetricMetadata::default())])
        .unwrap());
    db.close().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert!(db.recovery_report().is_clean());
    assert_eq!(db.metadata().len(), 1);
}

#[test]
fn a_leftover_temporary_file_is_removed_and_the_old_file_read() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path());
    fs::write(dir.path().join("METADATA.tmp"), b"half written").unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.metadata(), expected());
    assert!(!dir.path().join("METADATA.tmp").exists());
}
