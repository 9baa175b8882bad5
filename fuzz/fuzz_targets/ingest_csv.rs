//! Arbitrary text as lines of CSV (what `strata export --format csv` writes) for `strata import`.
//!
//! `LineParser::parse_line` never panics, and on error leaves its output
//! as it was. Every sample of a line that parses has a valid series key (it
//! survives `SeriesKey::from_labels` and `SeriesKey::parse` of its text
//! form unchanged), and written back as TSV with `write_sample` it parses
//! to the same key, timestamp and value bits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata::ingest::Format;

#[path = "../src/ingest_check.rs"]
mod ingest_check;

fuzz_target!(|data: &[u8]| {
    ingest_check::check_lines(Format::Csv, data);
});
