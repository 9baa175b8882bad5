//! The second data set of tests/prometheus_diff.rs: one hour of the
//! telemetry `strata demo` simulates (`strata::workload::CollectionPoint`:
//! gateway, scheduler, agent sessions, spawn queue, inbox, heartbeats),
//! "scraped" the way a Prometheus server would store it, plus hand-made
//! hard cases. Deterministic: a fixed seed and fixed times.
//!
//! The simulation ticks every second; a target's samples are the values at
//! its scrape times (a scrape at `t` sees the tick of `t`'s second). The
//! four targets differ on purpose:
//!
//! | instance | scrapes | what is hard about it |
//! |---|---|---|
//! | `host-000` | every 15 s on the minute | steps of the 15 s runs land on its samples; heartbeat `search` goes stale at 35:00 |
//! | `host-001` | every 10 s ± up to 2.5 s | irregular intervals, millisecond offsets |
//! | `host-002` | every 15 s at +7.5 s | restarts at 25:40: no scrapes for 40 s, then every counter starts again from 0 and `instance_info`'s version changes (the old series ends with a staleness marker) |
//! | `host-003` | every 30 s at +1.234 s | no samples from 20:00 to 28:00 (longer than the 5 m lookback, no markers); gone at 50:00 with a staleness marker on every series; back at 55:00 |
//!
//! `instance="edge"` holds hand-written series, scraped every 15 s on the
//! minute unless said otherwise: `edge_value{case}` (negative, huge, tiny,
//! ±Inf, NaN, staleness markers, a single sample, wildly irregular
//! intervals), `edge_labels{path, script}` (a quote, a backslash, a newline
//! and non-ASCII letters in label values), `edge_requests_total{case}` (counters with resets, negative,
//! fractional, late start, NaN) and `edge_latency_seconds_bucket{case, le}`
//! (histograms with non-monotonic buckets, no `+Inf`, only `+Inf`, no
//! observations, a duplicate bound written two ways, negative bounds).
//!
//! Invariants: every series' samples are in strictly increasing time order
//! (Prometheus rejects anything else); all times are in
//! [`START_MS`, [`END_MS`]), far in the past, so that Prometheus' remote-write
//! receiver, which refuses samples more than 10 minutes in the future,
//! accepts them.

use std::collections::BTreeMap;

use strata::workload::{CollectionPoint, Rng};
use strata::SeriesKey;

/// 2024-03-01T00:00:00Z.
pub const START_MS: i64 = 1_709_251_200_000;
pub const MINUTE_MS: i64 = 60_000;
/// One hour after [`START_MS`]; no sample is at or after it.
pub const END_MS: i64 = START_MS + 60 * MINUTE_MS;
/// Prometheus' staleness marker.
pub const STALE: f64 = f64::from_bits(0x7ff0_0000_0000_0002);

const SEED: u64 = 20_240_301;
const INSTANCES: usize = 4;

/// Minutes and seconds after [`START_MS`], as a time.
pub const fn at(minutes: i64, seconds: f64) -> i64 {
    START_MS + minutes * MINUTE_MS + (seconds * 1000.0) as i64
}

/// Every series with its samples in time order (staleness markers
/// included), sorted by key.
pub fn generate() -> BTreeMap<SeriesKey, Vec<(i64, f64)>> {
    let mut data = Data::default();
    for instance in 0..INSTANCES {
        workload_target(&mut data, instance);
    }
    edge_values(&mut data);
    edge_labels(&mut data);
    edge_counters(&mut data);
    edge_histograms(&mut data);
    data.series
}

#[derive(Default)]
struct Data {
    series: BTreeMap<SeriesKey, Vec<(i64, f64)>>,
}

impl Data {
    fn push(&mut self, key: &SeriesKey, t: i64, v: f64) {
        let samples = self.series.entry(key.clone()).or_default();
        assert!(
            samples.last().is_none_or(|&(last, _)| last < t),
            "{key}: {t} is not after the previous sample"
        );
        assert!((START_MS..END_MS).contains(&t), "{key}: {t} out of range");
        samples.push((t, v));
    }
}

fn key(metric: &str, labels: &[(&str, &str)]) -> SeriesKey {
    SeriesKey::new(metric, labels).unwrap()
}

/// The scrape times of workload target `instance`.
fn scrapes(instance: usize) -> Vec<i64> {
    match instance {
        0 => (0..240).map(|k| START_MS + k * 15_000).collect(),
        1 => {
            let mut rng = Rng::new(SEED);
            (0..360)
                .map(|k| START_MS + 5_000 + k * 10_000 + (rng.next_u64() % 5_001) as i64 - 2_500)
                .collect()
        }
        2 => (0..240)
            .map(|k| START_MS + 7_500 + k * 15_000)
            .filter(|t| !(at(25, 0.0)..at(25, 40.0)).contains(t))
            .collect(),
        _ => (0..120)
            .map(|k| START_MS + 1_234 + k * 30_000)
            .filter(|t| !(at(20, 0.0)..at(28, 0.0)).contains(t))
            .filter(|t| !(at(50, 2.0)..at(55, 0.0)).contains(t))
            .collect(),
    }
}

/// Counters (everything a restart sets back to 0) by metric name.
fn is_counter(metric: &str) -> bool {
    ["_total", "_bucket", "_sum", "_count"]
        .iter()
        .any(|suffix| metric.ends_with(suffix))
}

/// One workload target: its collection points ticked every second, sampled
/// at its scrape times, with its hard case applied; and its
/// `instance_info{region, version}` series.
fn workload_target(data: &mut Data, instance: usize) {
    let name = format!("host-{instance:03}");
    let mut points = CollectionPoint::instance(instance, SEED);
    let keys: Vec<SeriesKey> = points.iter().flat_map(|p| p.keys().to_vec()).collect();
    let mut values = vec![0.0; keys.len()];
    // host-002's process restarts at 25:40: counters start again from 0.
    let restart = (instance == 2).then_some(at(25, 40.0));
    let mut at_restart = vec![0.0; keys.len()];
    // host-000's `search` heartbeat stops at 35:00: down, last seen frozen.
    let frozen = |key: &SeriesKey| instance == 0 && key.get("service") == Some("search");
    let mut last_seen_at_freeze = 0.0;
    let region = ["us", "eu", "eu", "us"][instance];
    let info = |version: &str| {
        key(
            "instance_info",
            &[
                ("instance", &name),
                ("region", region),
                ("version", version),
            ],
        )
    };
    let old_info = info("1.4.0");
    let new_info = info("1.5.0");
    let scrapes = scrapes(instance);
    let mut next = scrapes.iter().peekable();
    let mut info_switched = false;
    for second in 0..3600 {
        let tick = START_MS + second * 1000;
        let mut i = 0;
        for point in &mut points {
            for &v in point.tick(tick) {
                values[i] = v;
                i += 1;
            }
        }
        if Some(tick) == restart {
            at_restart.copy_from_slice(&values);
        }
        while let Some(&t) = next.next_if(|&&t| t < tick + 1000) {
            // host-003 is gone at 50:00: its first missed scrape writes
            // staleness markers.
            if instance == 3 && t == at(50, 1.234) {
                for key in keys.iter().chain([&old_info]) {
                    data.push(key, t, STALE);
                }
                continue;
            }
            let restarted = restart.is_some_and(|r| t >= r);
            for (k, key) in keys.iter().enumerate() {
                let mut v = values[k];
                if restarted && is_counter(key.metric()) {
                    v -= at_restart[k];
                }
                if frozen(key) && t >= at(35, 0.0) {
                    if key.metric() == "heartbeat_up" {
                        v = 0.0;
                    } else {
                        v = last_seen_at_freeze;
                    }
                } else if frozen(key) && key.metric() == "heartbeat_last_seen_seconds" {
                    last_seen_at_freeze = v;
                }
                data.push(key, t, v);
            }
            if restarted {
                if !info_switched {
                    data.push(&old_info, t, STALE);
                    info_switched = true;
                }
                data.push(&new_info, t, 1.0);
            } else {
                data.push(&old_info, t, 1.0);
            }
        }
    }
    // Every scrape time was used (none fell outside the hour).
    assert!(next.next().is_none());
}

/// `edge_value{instance="edge", case}`: gauges with hard values.
fn edge_values(data: &mut Data) {
    let edge = |case: &str| key("edge_value", &[("instance", "edge"), ("case", case)]);
    let every_15s = |k: i64| START_MS + k * 15_000;
    let (negative, huge, tiny, inf, nan) = (
        edge("negative"),
        edge("huge"),
        edge("tiny"),
        edge("inf"),
        edge("nan"),
    );
    for k in 0..240 {
        let t = every_15s(k);
        data.push(&negative, t, -500.0 - 37.25 * ((k * 7) % 11) as f64);
        data.push(
            &huge,
            t,
            [1.7e308, 1.5e308, -1.7e308, 1e308][k as usize % 4],
        );
        data.push(&tiny, t, [5e-324, 1e-310, 2.5e-308, 0.0][k as usize % 4]);
        let cycle = [1.0, f64::INFINITY, 2.0, f64::NEG_INFINITY, 3.0];
        data.push(&inf, t, cycle[k as usize % 5]);
        data.push(&nan, t, if k % 4 == 2 { f64::NAN } else { k as f64 });
    }
    // Marked stale at 10:00, back at 12:00, stale for good at 40:00.
    let stale = edge("stale");
    for k in 0..=160 {
        let v = match k {
            40 | 160 => STALE,
            41..=47 => continue,
            _ => k as f64 * 0.5,
        };
        data.push(&stale, every_15s(k), v);
    }
    data.push(&edge("single"), at(30, 0.0), 42.0);
    // Intervals from 1 ms to just over the lookback.
    let irregular = edge("irregular");
    let gaps = [1, 999, 61_000, 299_999, 300_001, 7_000, 15_000, 333];
    let (mut t, mut k) = (START_MS + 500, 0);
    while t < END_MS {
        data.push(&irregular, t, (k * k) as f64 / 7.0);
        t += gaps[k % gaps.len()];
        k += 1;
    }
}

/// `edge_labels{instance="edge", path, script}`: label values with a
/// quote, a backslash, a newline and non-ASCII letters.
fn edge_labels(data: &mut Data) {
    let odd = key(
        "edge_labels",
        &[
            ("instance", "edge"),
            ("path", "/a\"b\\c\nd"),
            ("script", "日本語"),
        ],
    );
    let plain = key(
        "edge_labels",
        &[
            ("instance", "edge"),
            ("path", "/plain"),
            ("script", "ascii"),
        ],
    );
    for k in 0..240 {
        data.push(&odd, START_MS + k * 15_000, 1.0);
        data.push(&plain, START_MS + k * 15_000, 2.0);
    }
}

/// `edge_requests_total{instance="edge", case}`: counters that misbehave.
fn edge_counters(data: &mut Data) {
    let edge = |case: &str| {
        key(
            "edge_requests_total",
            &[("instance", "edge"), ("case", case)],
        )
    };
    let (resets, negative, fractional, late, nan) = (
        edge("resets"),
        edge("negative"),
        edge("fractional"),
        edge("late_start"),
        edge("nan"),
    );
    for k in 0..240i64 {
        let t = START_MS + k * 15_000;
        // Resets to 0 at 15:00, to 3 at 25:00 and again to 2 at 25:15.
        let v = match k {
            0..=59 => 5 * k,
            60..=99 => 5 * (k - 60),
            100 => 3,
            _ => 2 + 4 * (k - 101),
        };
        data.push(&resets, t, v as f64);
        data.push(&negative, t, -100.0 + 3.0 * k as f64);
        data.push(&fractional, t, 0.1 * k as f64);
        if k >= 80 {
            // Appears at 20:00 already at 1000: rate's extrapolation
            // towards the start of the window is not cut at zero here.
            data.push(&late, t, 1000.0 + 7.0 * (k - 80) as f64);
        }
        data.push(&nan, t, if k == 100 { f64::NAN } else { 2.0 * k as f64 });
    }
}

/// `edge_latency_seconds_bucket{instance="edge", case, le}`: broken
/// histograms, cumulative counts growing with time.
fn edge_histograms(data: &mut Data) {
    type Counts = fn(i64) -> f64;
    let histograms: [(&str, &[(&str, Counts)]); 7] = [
        (
            // le="0.5" below le="0.25" at every other scrape.
            "non_monotonic",
            &[
                ("0.1", |k| 2.0 * k as f64),
                ("0.25", |k| 5.0 * k as f64),
                ("0.5", |k| {
                    if k % 2 == 0 {
                        (5 * k - 3).max(0) as f64
                    } else {
                        6.0 * k as f64
                    }
                }),
                ("1", |k| 9.0 * k as f64),
                ("+Inf", |k| 10.0 * k as f64),
            ],
        ),
        (
            "no_inf",
            &[("0.1", |k| k as f64), ("1", |k| 2.0 * k as f64)],
        ),
        ("inf_only", &[("+Inf", |k| 3.0 * k as f64)]),
        (
            "empty",
            &[("0.1", |_| 0.0), ("1", |_| 0.0), ("+Inf", |_| 0.0)],
        ),
        (
            // The same bound written two ways: two series, one bucket.
            "dup_le",
            &[
                ("0.1", |k| 3.0 * k as f64),
                ("0.10", |k| k as f64),
                ("1", |k| 8.0 * k as f64),
                ("+Inf", |k| 10.0 * k as f64),
            ],
        ),
        (
            "negative_le",
            &[
                ("-1", |k| k as f64),
                ("0", |k| 4.0 * k as f64),
                ("1", |k| 6.0 * k as f64),
                ("+Inf", |k| 7.0 * k as f64),
            ],
        ),
        (
            "nan_bucket",
            &[
                ("0.1", |k| k as f64),
                (
                    "0.5",
                    |k| if k % 3 == 1 { f64::NAN } else { 3.0 * k as f64 },
                ),
                ("+Inf", |k| 4.0 * k as f64),
            ],
        ),
    ];
    for (case, buckets) in histograms {
        for (le, counts) in buckets {
            let key = key(
                "edge_latency_seconds_bucket",
                &[("instance", "edge"), ("case", case), ("le", le)],
            );
            for k in 0..240 {
                data.push(&key, START_MS + k * 15_000, counts(k));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hard_cases_are_in_the_data() {
        let data = generate();
        let get = |text: &str| {
            data.iter()
                .find(|(k, _)| k.to_string() == text)
                .map(|(_, s)| s.as_slice())
                .unwrap_or_else(|| panic!("no series {text}"))
        };
        // host-002's counters restart from 0 after the restart at 25:40.
        let ok = get(r#"gateway_requests_total{code="200",instance="host-002",route="/v1/send"}"#);
        let before = ok.iter().rfind(|&&(t, _)| t < at(25, 40.0)).unwrap();
        let after = ok.iter().find(|&&(t, _)| t >= at(25, 40.0)).unwrap();
        assert_eq!(before.0, at(24, 52.5));
        assert_eq!(after.0, at(25, 52.5));
        assert!(after.1 < before.1 / 10.0, "{before:?} {after:?}");
        // host-003 has an 8-minute gap and ends with staleness markers.
        let up = get(r#"heartbeat_up{instance="host-003",service="mailer"}"#);
        assert!(up
            .windows(2)
            .any(|w| w[1].0 - w[0].0 == 8 * MINUTE_MS + 30_000));
        let marker = up.iter().find(|&&(t, _)| t == at(50, 1.234)).unwrap();
        assert_eq!(marker.1.to_bits(), STALE.to_bits());
        assert_eq!(up.last().unwrap().0, at(59, 31.234));
        // The old instance_info of host-002 ends with a marker.
        let info = get(r#"instance_info{instance="host-002",region="eu",version="1.4.0"}"#);
        assert_eq!(info.last().unwrap().0, at(25, 52.5));
        assert_eq!(info.last().unwrap().1.to_bits(), STALE.to_bits());
        assert_eq!(data.values().filter(|s| s.is_empty()).count(), 0);
        // Deterministic, to the bit.
        let bits = |data: &BTreeMap<SeriesKey, Vec<(i64, f64)>>| -> Vec<(String, i64, u64)> {
            data.iter()
                .flat_map(|(k, s)| s.iter().map(move |&(t, v)| (k.to_string(), t, v.to_bits())))
                .collect()
        };
        assert_eq!(bits(&generate()), bits(&data));
    }
}
