//! The cost of one `counter!("x", "k" => "v").increment(1)` with strata's
//! recorder, the `metrics` no-op recorder and `metrics-exporter-prometheus`
//! (no HTTP listener) each set as the thread's recorder, in the same run;
//! and of `increment(1)` on a handle kept by the caller.
//!
//! It lives in bench-compare so the core crate does not build the
//! Prometheus exporter. `cargo bench -p bench-compare --bench recorder`

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use metrics_exporter_prometheus::PrometheusBuilder;
use strata::recorder::metrics::{counter, with_local_recorder, NoopRecorder, Recorder};
use strata::recorder::StrataRecorder;
use strata::{Db, Options};

fn macro_call(c: &mut Criterion, name: &str, recorder: &dyn Recorder) {
    with_local_recorder(recorder, || {
        c.bench_function(&format!("counter!(..).increment(1) / {name}"), |b| {
            b.iter(|| counter!("x", "k" => "v").increment(1))
        });
        let handle = counter!("x", "k" => "v");
        c.bench_function(&format!("kept handle .increment(1) / {name}"), |b| {
            b.iter(|| handle.increment(1))
        });
    });
}

fn recorders(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = Arc::new(Db::open(dir.path(), Options::default()).expect("a new database"));
    let strata = StrataRecorder::builder(db)
        .build()
        .expect("the default configuration is valid");
    macro_call(c, "noop", &NoopRecorder);
    macro_call(c, "strata", &strata);
    macro_call(c, "prometheus", &PrometheusBuilder::new().build_recorder());
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = recorders
}
criterion_main!(benches);
