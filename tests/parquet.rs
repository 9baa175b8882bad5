//! Parquet export and import (feature `parquet`): round trips strata →
//! Parquet → strata compared bit for bit (edge values, the committed
//! node-exporter slices, and the full capture in ../shared/data when it
//! exists), the exported file read with the `parquet` crate's generic row
//! reader independently of `strata::parquet::import`, and files that do not
//! have the schema refused with errors, never panics.
#![cfg(feature = "parquet")]

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use parquet::basic::{Compression, Encoding, LogicalType, TimeUnit, Type as PhysicalType};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::{Field, RowAccessor};
use strata::ingest::{Format, LineParser, ParsedSample};
use strata::parquet::{export, import, ExportOptions, ExportSummary, ImportSummary, ParquetError};
use strata::{
    Db, Matcher, Metadata, MetricMetadata, MetricType, Options, SeriesKey, SyncMode, TimeRange,
};

/// The staleness marker Prometheus writes: a NaN with payload 2.
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

fn bulk_options() -> Options {
    Options {
        sync: SyncMode::Never,
        flush_complete_partitions: false,
        out_of_order_window_ms: i64::MAX,
        ..Options::default()
    }
}

fn write(db: &Db, key: &SeriesKey, samples: &[(i64, f64)]) {
    let series = db.series(key).unwrap();
    let batch: Vec<_> = samples.iter().map(|&(t, v)| (&series, t, v)).collect();
    let outcome = db.append_batch(&batch).unwrap();
    assert_eq!(outcome.accepted, samples.len(), "{:?}", outcome.rejected);
}

fn export_file(db: &Db, options: &ExportOptions, path: &Path) -> ExportSummary {
    let file = File::create(path).unwrap();
    export(db, &[], TimeRange::ALL, options, file).unwrap()
}

/// Imports `path` into a fresh database under `dir` and returns it, open.
fn import_file(path: &Path, dir: &Path) -> (Db, ImportSummary) {
    let db = Db::open(dir, bulk_options()).unwrap();
    let summary = import(File::open(path).unwrap(), &db).unwrap();
    (db, summary)
}

/// Asserts both databases hold the same series with bit-identical samples.
fn assert_same_data(a: &Db, b: &Db) {
    let a = a.select(&[], TimeRange::ALL).unwrap();
    let b = b.select(&[], TimeRange::ALL).unwrap();
    assert_eq!(a.len(), b.len(), "series count");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.key, y.key);
        assert_eq!(x.samples.len(), y.samples.len(), "{}", x.key);
        for (s, t) in x.samples.iter().zip(&y.samples) {
            assert!(s.bit_eq(t), "{}: {s:?} vs {t:?}", x.key);
        }
    }
}

fn edge_db(dir: &Path) -> Db {
    let db = Db::open(dir, bulk_options()).unwrap();
    let values = [
        f64::from_bits(STALE_NAN),
        f64::from_bits(0xfff8_0000_0000_0001),
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        0.0,
        f64::MIN_POSITIVE / 4.0,
        f64::MAX,
        f64::MIN,
    ];
    let times = [
        i64::MIN,
        i64::MIN + 1,
        -1,
        0,
        1,
        7_199_999,
        7_200_000,
        i64::MAX - 1,
        i64::MAX,
    ];
    let samples: Vec<(i64, f64)> = times
        .iter()
        .zip(values.iter().cycle())
        .map(|(&t, &v)| (t, v))
        .collect();
    let odd = SeriesKey::new(
        "odd_labels",
        &[
            ("path", "/a\"b\\c\nd\te"),
            ("unicode", "Grüße, 世界 🚀"),
            ("timestamp", "label named like the column"),
            ("value", "another one"),
            ("__label_x", "looks escaped"),
        ],
    )
    .unwrap();
    write(&db, &odd, &samples);
    let rotated: Vec<(i64, f64)> = times
        .iter()
        .zip(values.iter().rev())
        .map(|(&t, &v)| (t, v))
        .collect();
    write(
        &db,
        &SeriesKey::new("up", &[("job", "a")]).unwrap(),
        &rotated,
    );
    write(
        &db,
        &SeriesKey::new("up", &[("instance", "x")]).unwrap(),
        &[(5, 1.0)],
    );
    write(&db, &SeriesKey::new("a_metric", &[]).unwrap(), &[(3, 2.5)]);
    db
}

#[test]
fn edge_values_round_trip_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let db = edge_db(&dir.path().join("a"));
    let path = dir.path().join("edge.parquet");
    let summary = export_file(&db, &ExportOptions::default(), &path);
    assert_eq!(summary.rows, 9 + 9 + 1 + 1);
    assert_eq!(summary.series, 4);
    // Windows of 2 h holding data: the one at i64::MIN, [-2h, 0),
    // [0, 2h), [2h, 4h) and the one at i64::MAX.
    assert_eq!(summary.row_groups, 5);
    assert_eq!(
        summary.label_columns,
        [
            "__label___label_x",
            "instance",
            "job",
            "path",
            "__label_timestamp",
            "unicode",
            "__label_value"
        ]
    );
    let (back, imported) = import_file(&path, &dir.path().join("b"));
    assert_eq!(imported.rows, 20);
    assert_eq!(imported.accepted, 20);
    assert_eq!(imported.rejected, 0);
    assert_same_data(&db, &back);

    // After a flush to segments and a reopen, still the same.
    back.close().unwrap();
    let back = Db::open_read_only(dir.path().join("b")).unwrap();
    assert_same_data(&db, &back);
}

#[test]
fn row_groups_split_at_the_row_limit_and_stay_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let db = edge_db(&dir.path().join("a"));
    let path = dir.path().join("small.parquet");
    let options = ExportOptions {
        max_row_group_rows: 2,
        ..ExportOptions::default()
    };
    let summary = export_file(&db, &options, &path);
    // Per window, whole series until at least 2 rows are buffered, in row
    // order (a_metric, odd_labels, up{job} (no instance: null first),
    // up{instance}): i64::MIN window: odd 2 | up{job} 2 = 2 groups;
    // [-2h, 0): odd 1 + up{job} 1 = 1; [0, 2h): a_metric 1 + odd 3 |
    // up{job} 3 | up{instance} 1 = 3; [2h, 4h): 1 + 1 = 1; i64::MAX
    // window: 2 | 2 = 2. Total 9.
    assert_eq!(summary.row_groups, 9);
    let rows = generic_rows(&path);
    assert_eq!(rows.len(), 20);
    let (back, _) = import_file(&path, &dir.path().join("b"));
    assert_same_data(&db, &back);
}

/// One row as the generic reader sees it: the string columns (None for
/// null), then timestamp and value bits.
type GenericRow = (Vec<Option<String>>, i64, u64);

/// Reads every row with the `parquet` crate's row API, checking the
/// column types on the way.
fn generic_rows(path: &Path) -> Vec<GenericRow> {
    let reader = SerializedFileReader::new(File::open(path).unwrap()).unwrap();
    let mut rows = Vec::new();
    for row in reader.get_row_iter(None).unwrap() {
        let row = row.unwrap();
        let n = row.len();
        let mut strings = Vec::new();
        for (name, field) in row.get_column_iter().take(n - 2) {
            strings.push(match field {
                Field::Str(s) => Some(s.clone()),
                Field::Null => None,
                other => panic!("column {name}: {other:?}"),
            });
        }
        rows.push((
            strings,
            row.get_timestamp_millis(n - 2).unwrap(),
            row.get_double(n - 1).unwrap().to_bits(),
        ));
    }
    rows
}

#[test]
fn generic_reader_sees_the_documented_schema() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("a"), bulk_options()).unwrap();
    load_tsv(
        &db,
        BufReader::new(File::open("tests/data/node-exporter-slice.tsv").unwrap()),
    );
    let path = dir.path().join("slice.parquet");
    let summary = export_file(&db, &ExportOptions::default(), &path);

    let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
    let meta = reader.metadata();
    let file = meta.file_metadata();
    assert_eq!(file.num_rows(), 2070);
    assert_eq!(summary.rows, 2070);
    let kv: Vec<(String, Option<String>)> = file
        .key_value_metadata()
        .unwrap()
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect();
    assert!(kv.contains(&(
        "strata.parquet_schema_version".to_owned(),
        Some("1".to_owned())
    )));
    assert!(kv.contains(&(
        "strata.version".to_owned(),
        Some(env!("CARGO_PKG_VERSION").to_owned())
    )));

    let columns = file.schema_descr().columns();
    let names: Vec<&str> = columns.iter().map(|c| c.name()).collect();
    assert_eq!(
        names,
        [
            "__name__",
            "cpu",
            "device",
            "fstype",
            "handler",
            "instance",
            "job",
            "le",
            "mode",
            "mountpoint",
            "quantile",
            "timestamp",
            "value"
        ]
    );
    for (i, column) in columns.iter().enumerate() {
        let chunk = meta.row_group(0).column(i);
        assert!(
            matches!(chunk.compression(), Compression::ZSTD(_)),
            "{:?}",
            chunk.compression()
        );
        let encodings: Vec<Encoding> = chunk.encodings().collect();
        match column.name() {
            "timestamp" => {
                assert_eq!(column.physical_type(), PhysicalType::INT64);
                assert!(
                    matches!(column.logical_type_ref(), Some(LogicalType::Timestamp(t)) if t.is_adjusted_to_u_t_c && t.unit == TimeUnit::MILLIS)
                );
                assert!(
                    encodings.contains(&Encoding::DELTA_BINARY_PACKED),
                    "{encodings:?}"
                );
            }
            "value" => {
                assert_eq!(column.physical_type(), PhysicalType::DOUBLE);
                assert!(
                    encodings.contains(&Encoding::BYTE_STREAM_SPLIT),
                    "{encodings:?}"
                );
            }
            name => {
                assert_eq!(column.physical_type(), PhysicalType::BYTE_ARRAY);
                assert_eq!(column.logical_type_ref(), Some(&LogicalType::String));
                assert_eq!(
                    column.max_def_level(),
                    u8::from(name != "__name__").into(),
                    "{name}"
                );
                assert!(
                    encodings.contains(&Encoding::RLE_DICTIONARY),
                    "{name}: {encodings:?}"
                );
            }
        }
    }

    let rows = generic_rows(&path);
    assert_eq!(rows.len(), 2070);
    // Sorted by name, label columns (null first), then time.
    for pair in rows.windows(2) {
        assert!(
            (&pair[0].0, pair[0].1) < (&pair[1].0, pair[1].1),
            "{pair:?}"
        );
    }
    // The slice's first line: go_gc_duration_seconds{instance=
    // "127.0.0.1:18428",job="victoria",quantile="0"} 1796021460996 0.0.
    let first = &rows[0];
    assert_eq!(first.0[0].as_deref(), Some("go_gc_duration_seconds"));
    assert_eq!(first.0[5].as_deref(), Some("127.0.0.1:18428"));
    assert_eq!(first.0[6].as_deref(), Some("victoria"));
    assert_eq!(first.0[10].as_deref(), Some("0"));
    assert_eq!(first.0[1], None);
    assert_eq!((first.1, first.2), (1_796_021_460_996, 0.0f64.to_bits()));
    // Every row matches the sample the database holds.
    let mut expected = Vec::new();
    for s in db.select(&[], TimeRange::ALL).unwrap() {
        for sample in &s.samples {
            expected.push((
                s.key.to_string(),
                sample.timestamp_ms,
                sample.value.to_bits(),
            ));
        }
    }
    let mut got: Vec<(String, i64, u64)> = rows
        .iter()
        .map(|(strings, t, v)| (key_of(&names, strings).to_string(), *t, *v))
        .collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
}

fn key_of(names: &[&str], strings: &[Option<String>]) -> SeriesKey {
    let labels: Vec<(&str, &str)> = names[1..]
        .iter()
        .zip(&strings[1..])
        .filter_map(|(n, v)| v.as_deref().map(|v| (*n, v)))
        .collect();
    SeriesKey::new(strings[0].as_deref().unwrap(), &labels).unwrap()
}

fn load_tsv(db: &Db, input: impl BufRead) -> usize {
    let parser = LineParser::new(Format::Tsv, 0);
    let mut parsed: Vec<ParsedSample> = Vec::new();
    let mut batch = Vec::new();
    let mut count = 0;
    for (i, line) in input.lines().enumerate() {
        parser
            .parse_line(i + 1, &line.unwrap(), &mut parsed)
            .unwrap();
        for sample in parsed.drain(..) {
            batch.push((
                db.series(&sample.key).unwrap(),
                sample.timestamp_ms,
                sample.value,
            ));
        }
        if batch.len() >= 100_000 {
            count += append(db, &mut batch);
        }
    }
    count + append(db, &mut batch)
}

fn append(db: &Db, batch: &mut Vec<(strata::SeriesRef, i64, f64)>) -> usize {
    let refs: Vec<_> = batch.iter().map(|(s, t, v)| (s, *t, *v)).collect();
    let outcome = db.append_batch(&refs).unwrap();
    assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
    batch.clear();
    outcome.accepted
}

fn round_trip_tsv_zst(path: &str) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("a"), bulk_options()).unwrap();
    let input = zstd::stream::read::Decoder::new(File::open(path).unwrap()).unwrap();
    let loaded = load_tsv(&db, BufReader::new(input));
    db.flush().unwrap();
    let out = dir.path().join("data.parquet");
    let summary = export_file(&db, &ExportOptions::default(), &out);
    assert_eq!(summary.rows, loaded as u64);
    let (back, imported) = import_file(&out, &dir.path().join("b"));
    assert_eq!(imported.accepted, loaded as u64);
    assert_same_data(&db, &back);
}

#[test]
fn node_exporter_slice_round_trips() {
    round_trip_tsv_zst("tests/data/node-exporter-10min.tsv.zst");
}

#[test]
fn full_node_exporter_capture_round_trips_when_present() {
    let full = "../shared/data/node-exporter-24min.tsv.zst";
    if !Path::new(full).exists() {
        eprintln!("{full} not present: skipped");
        return;
    }
    round_trip_tsv_zst(full);
}

#[test]
fn selection_and_range_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let db = edge_db(&dir.path().join("a"));
    let path = dir.path().join("up.parquet");
    let summary = export(
        &db,
        &[Matcher::equal("__name__", "up")],
        TimeRange::new(0, 7_200_000),
        &ExportOptions::default(),
        File::create(&path).unwrap(),
    )
    .unwrap();
    // up{job="a"} at 0, 1, 7199999, 7200000; up{instance="x"} at 5.
    assert_eq!(summary.rows, 5);
    assert_eq!(summary.label_columns, ["instance", "job"]);
    let rows = generic_rows(&path);
    let times: Vec<i64> = rows.iter().map(|r| r.1).collect();
    // Window [0, 2h): up{job="a"} (null instance first), up{instance="x"};
    // then window [2h, 4h).
    assert_eq!(times, [0, 1, 7_199_999, 5, 7_200_000]);
}

type RowGroupWriter<'a> = parquet::file::writer::SerializedRowGroupWriter<'a, File>;

/// Writes a file with the given message type through the generic writer:
/// one row group filled by `write`, or none when `write` is `None`.
fn foreign_file(path: &Path, message: &str, write: Option<&dyn Fn(&mut RowGroupWriter<'_>)>) {
    let schema = std::sync::Arc::new(parquet::schema::parser::parse_message_type(message).unwrap());
    let mut writer = parquet::file::writer::SerializedFileWriter::new(
        File::create(path).unwrap(),
        schema,
        Default::default(),
    )
    .unwrap();
    if let Some(write) = write {
        let mut group = writer.next_row_group().unwrap();
        write(&mut group);
        group.close().unwrap();
    }
    writer.close().unwrap();
}

fn import_error(path: &Path) -> ParquetError {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), bulk_options()).unwrap();
    import(File::open(path).unwrap(), &db).unwrap_err()
}

#[test]
fn files_without_the_schema_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.parquet");
    foreign_file(&path, "message m { required binary __name__ (UTF8); required int64 timestamp (TIMESTAMP(MILLIS,true)); }", None);
    assert!(matches!(
        import_error(&path),
        ParquetError::MissingColumn("value")
    ));

    foreign_file(&path, "message m { required binary __name__ (UTF8); required int64 timestamp; required double value; }", None);
    let error = import_error(&path);
    assert!(
        matches!(&error, ParquetError::Schema { column, .. } if column == "timestamp"),
        "{error}"
    );

    foreign_file(&path, "message m { required binary __name__ (UTF8); optional int32 job; required int64 timestamp (TIMESTAMP(MILLIS,true)); required double value; }", None);
    let error = import_error(&path);
    assert!(
        matches!(&error, ParquetError::Schema { column, .. } if column == "job"),
        "{error}"
    );
}

#[test]
fn a_row_with_an_invalid_series_names_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.parquet");
    foreign_file(&path, "message m { required binary __name__ (UTF8); required int64 timestamp (TIMESTAMP(MILLIS,true)); required double value; }", Some(&|group| {
        use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
        let mut c = group.next_column().unwrap().unwrap();
        c.typed::<ByteArrayType>().write_batch(&[ByteArray::from("ok"), ByteArray::from("not-a-name")], None, None).unwrap();
        c.close().unwrap();
        let mut c = group.next_column().unwrap().unwrap();
        c.typed::<Int64Type>().write_batch(&[1, 2], None, None).unwrap();
        c.close().unwrap();
        let mut c = group.next_column().unwrap().unwrap();
        c.typed::<DoubleType>().write_batch(&[1.0, 2.0], None, None).unwrap();
        c.close().unwrap();
    }));
    let error = import_error(&path);
    assert!(
        matches!(
            &error,
            ParquetError::BadRow {
                row_group: 0,
                row: 1,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("not-a-name"), "{error}");
}

#[test]
fn truncated_files_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let db = edge_db(&dir.path().join("a"));
    let path = dir.path().join("edge.parquet");
    export_file(&db, &ExportOptions::default(), &path);
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.parquet");
    for len in [0, 4, 8, bytes.len() / 2, bytes.len() - 9, bytes.len() - 1] {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        let target = tempfile::tempdir().unwrap();
        let db = Db::open(target.path(), bulk_options()).unwrap();
        assert!(
            import(File::open(&cut).unwrap(), &db).is_err(),
            "prefix of {len} bytes"
        );
    }
}

#[test]
fn bad_export_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = edge_db(&dir.path().join("a"));
    for options in [
        ExportOptions {
            row_group_duration_ms: 0,
            ..ExportOptions::default()
        },
        ExportOptions {
            max_row_group_rows: 0,
            ..ExportOptions::default()
        },
        ExportOptions {
            zstd_level: 99,
            ..ExportOptions::default()
        },
    ] {
        let error = export(&db, &[], TimeRange::ALL, &options, Vec::new()).unwrap_err();
        assert!(matches!(error, ParquetError::Options(_)), "{error}");
    }
}

#[test]
fn cli_round_trip_and_stdin_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let strata = env!("CARGO_BIN_EXE_strata");
    let run = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new(strata)
            .args(args)
            .output()
            .unwrap()
    };
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let file = dir.path().join("slice.parquet");
    let slice = Path::new("tests/data/node-exporter-slice.tsv");
    let out = run(&[
        "import".as_ref(),
        "--db".as_ref(),
        a.as_os_str(),
        slice.as_os_str(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let out = run(&[
        "export".as_ref(),
        "--db".as_ref(),
        a.as_os_str(),
        "--format".as_ref(),
        "parquet".as_ref(),
        "-o".as_ref(),
        file.as_os_str(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "exported 2070 samples of 23 series in 1 row groups to {}",
            file.display()
        )
    );
    let out = run(&[
        "import".as_ref(),
        "--db".as_ref(),
        b.as_os_str(),
        "--format".as_ref(),
        "parquet".as_ref(),
        file.as_os_str(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with(&format!(
            "imported 2070 samples from 2070 rows of {}",
            file.display()
        )),
        "{out:?}"
    );
    let text = |db: &Path| run(&["export".as_ref(), "--db".as_ref(), db.as_os_str()]).stdout;
    assert_eq!(text(&a), std::fs::read(slice).unwrap());
    assert_eq!(text(&b), std::fs::read(slice).unwrap());

    let out = run(&[
        "import".as_ref(),
        "--db".as_ref(),
        b.as_os_str(),
        "--format".as_ref(),
        "parquet".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("reads a file"),
        "{out:?}"
    );
}

/// The `parquet` crate panics on some damaged files (18 of 3471 flips of
/// bits 0, 3 and 7 when this test was written); `import` must turn those
/// into errors. A flip may also leave a readable file (a value's bits).
#[test]
fn flipped_bits_are_errors_or_imports_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("a"), bulk_options()).unwrap();
    let key = SeriesKey::new("up", &[("job", "a"), ("x", "y")]).unwrap();
    let samples: Vec<(i64, f64)> = (0..3000).map(|i| (i * 1000, (i % 7) as f64)).collect();
    write(&db, &key, &samples);
    let mut bytes = Vec::new();
    export(
        &db,
        &[],
        TimeRange::ALL,
        &ExportOptions::default(),
        &mut bytes,
    )
    .unwrap();
    let target = Db::open(dir.path().join("b"), bulk_options()).unwrap();
    let path = dir.path().join("flipped.parquet");
    let mut contained = 0;
    for position in 0..bytes.len() {
        for bit in [0, 3, 7] {
            let mut flipped = bytes.clone();
            flipped[position] ^= 1 << bit;
            std::fs::write(&path, &flipped).unwrap();
            if let Err(ParquetError::DecoderPanic(_)) = import(File::open(&path).unwrap(), &target)
            {
                contained += 1;
            }
        }
    }
    eprintln!("{contained} decoder panics contained");
}

/// The metric metadata of the exported series' families travels in the
/// file's key-value metadata and is stored again by the import; families
/// of series left out of the export are not written.
#[test]
fn metric_metadata_round_trips_through_key_value_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("a"), bulk_options()).unwrap();
    write(
        &db,
        &SeriesKey::new("jobs_total", &[]).unwrap(),
        &[(1, 1.0)],
    );
    write(
        &db,
        &SeriesKey::new("lat_bucket", &[("le", "1")]).unwrap(),
        &[(1, 2.0)],
    );
    let jobs = MetricMetadata::new(MetricType::Counter).with_help("Jobs run.\nAll \\ of them.");
    let lat = MetricMetadata::new(MetricType::Histogram).with_unit("seconds");
    let unused = MetricMetadata::new(MetricType::Gauge);
    db.set_metadata([
        ("jobs", jobs.clone()),
        ("lat", lat.clone()),
        ("unused", unused),
    ])
    .unwrap();
    let path = dir.path().join("out.parquet");
    export_file(&db, &ExportOptions::default(), &path);

    let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
    let key_values = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap();
    let text = key_values
        .iter()
        .find(|kv| kv.key == strata::parquet::METADATA_METRIC_METADATA)
        .and_then(|kv| kv.value.clone())
        .unwrap();
    assert_eq!(
        text,
        "# HELP jobs Jobs run.\\nAll \\\\ of them.\n# TYPE jobs counter\n\
         # TYPE lat histogram\n# UNIT lat seconds\n"
    );

    let (imported, summary) = import_file(&path, &dir.path().join("b"));
    assert_eq!(summary.metadata_families, 2);
    assert_same_data(&db, &imported);
    let expected = Metadata::from_families([("jobs".to_owned(), jobs), ("lat".to_owned(), lat)]);
    assert_eq!(imported.metadata(), expected);
}
