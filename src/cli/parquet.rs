//! `--format parquet` for `strata export` and `strata import`: the format
//! choices of those commands extended with `parquet`, and the two commands'
//! Parquet paths, which call [`strata::parquet`]. The choice is always
//! offered; a binary built without the `parquet` cargo feature refuses it
//! with a message saying how to get it.

use std::path::Path;
use std::process::ExitCode;
use std::sync::LazyLock;

use clap::builder::PossibleValue;
use strata::ingest::{ExportFormat, Format};
use strata::{Db, Error, Matcher, TimeRange};

/// A text format of the command, or Parquet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithParquet<F> {
    Text(F),
    Parquet,
}

const PARQUET_HELP: &str = "Apache Parquet, one row per sample, schema in docs/PARQUET.md \
                            (cargo feature `parquet`)";

/// `clap::ValueEnum` for `WithParquet<$text>`: the text format's choices,
/// then `parquet`.
macro_rules! value_enum_with_parquet {
    ($text:ty) => {
        impl clap::ValueEnum for WithParquet<$text> {
            fn value_variants<'a>() -> &'a [Self] {
                static VARIANTS: LazyLock<Vec<WithParquet<$text>>> = LazyLock::new(|| {
                    <$text as clap::ValueEnum>::value_variants()
                        .iter()
                        .map(|f| WithParquet::Text(*f))
                        .chain([WithParquet::Parquet])
                        .collect()
                });
                &VARIANTS
            }

            fn to_possible_value(&self) -> Option<PossibleValue> {
                match self {
                    WithParquet::Text(f) => clap::ValueEnum::to_possible_value(f),
                    WithParquet::Parquet => Some(PossibleValue::new("parquet").help(PARQUET_HELP)),
                }
            }
        }
    };
}
value_enum_with_parquet!(Format);
value_enum_with_parquet!(ExportFormat);

/// `strata export --format parquet`: writes `output` (standard output when
/// `None`, unless that is a terminal).
pub fn export(
    db: &Db,
    matchers: &[Matcher],
    range: TimeRange,
    output: Option<&Path>,
) -> Result<ExitCode, Error> {
    #[cfg(feature = "parquet")]
    {
        use std::io::{IsTerminal, Write};
        let options = strata::parquet::ExportOptions::default();
        let (sink, name): (Box<dyn Write + Send>, String) = match output {
            Some(path) => (
                Box::new(std::fs::File::create(path).map_err(|e| Error::io("create", path, e))?),
                path.display().to_string(),
            ),
            None if std::io::stdout().is_terminal() => {
                errln!("strata export: Parquet is binary: name a file with -o FILE, or pipe it");
                return Ok(ExitCode::from(2));
            }
            None => (Box::new(std::io::stdout()), "standard output".to_owned()),
        };
        let out = std::io::BufWriter::with_capacity(1 << 20, sink);
        match strata::parquet::export(db, matchers, range, &options, out) {
            Ok(summary) => {
                errln!(
                    "exported {} samples of {} series in {} row groups to {name}",
                    summary.rows,
                    summary.series,
                    summary.row_groups
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => {
                errln!("strata export: {name}: {error}");
                Ok(ExitCode::FAILURE)
            }
        }
    }
    #[cfg(not(feature = "parquet"))]
    {
        let _ = (db, matchers, range, output);
        Ok(not_built("export"))
    }
}

/// `strata import --format parquet FILE`: opens the database with `db`
/// and reads `input` into it.
pub fn import(
    input: Option<&Path>,
    db: impl FnOnce() -> Result<Db, Error>,
    no_flush: bool,
) -> Result<ExitCode, Error> {
    let Some(path) = input.filter(|p| p.as_os_str() != "-") else {
        errln!("strata import: --format parquet reads a file (Parquet needs to seek): name it");
        return Ok(ExitCode::from(2));
    };
    #[cfg(feature = "parquet")]
    {
        let started = std::time::Instant::now();
        let file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
        let db = db()?;
        let result = strata::parquet::import(file, &db);
        if no_flush {
            db.sync_wal()?;
        } else {
            db.close()?;
        }
        let summary = match result {
            Ok(summary) => summary,
            Err(error) => {
                errln!("strata import: {}: {error}", path.display());
                return Ok(ExitCode::FAILURE);
            }
        };
        let seconds = started.elapsed().as_secs_f64();
        outln!(
            "imported {} samples from {} rows of {} in {seconds:.2} s ({:.2} M samples/s){}",
            summary.accepted,
            summary.rows,
            path.display(),
            summary.accepted as f64 / seconds.max(1e-9) / 1e6,
            if no_flush {
                "; left in the WAL (--no-flush)"
            } else {
                "; flushed to segments"
            }
        )?;
        if summary.metadata_families > 0 {
            outln!(
                "stored the metadata (# TYPE, # HELP, # UNIT) of {} metric families",
                summary.metadata_families
            )?;
        }
        if summary.rejected > 0 {
            outln!("{} samples rejected:", summary.rejected)?;
            for message in &summary.rejections_shown {
                outln!("  {message}")?;
            }
            return Ok(ExitCode::FAILURE);
        }
        Ok(ExitCode::SUCCESS)
    }
    #[cfg(not(feature = "parquet"))]
    {
        let _ = (path, db, no_flush);
        Ok(not_built("import"))
    }
}

#[cfg(not(feature = "parquet"))]
fn not_built(command: &str) -> ExitCode {
    errln!(
        "strata {command}: this strata was built without Parquet support; rebuild with \
         `cargo install strata --features parquet` (or `cargo build --features parquet`)"
    );
    ExitCode::from(2)
}
