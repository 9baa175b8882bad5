//! The retention policy: how long raw samples and each rollup tier are
//! kept, with per-metric overrides, and the clock retention measures age
//! against.
//!
//! Invariants (checked by [`RetentionPolicy::validate`]):
//! - tiers are sorted by strictly increasing `resolution_ms`, each a whole
//!   multiple of the previous one (a tier is rolled up from the next finer
//!   one) and of 1 s;
//! - every keep duration is positive (`None` keeps forever);
//! - an override names tiers the policy has, and its pattern is a valid
//!   regex (anchored at both ends, like a PromQL `=~` matcher).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// How long each tier of data is kept; see the module invariants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// How long raw samples are kept; `None`: forever.
    pub raw_keep_ms: Option<i64>,
    /// The rollup tiers, finest first.
    pub tiers: Vec<TierPolicy>,
    /// Per-metric exceptions; the first whose pattern matches a series'
    /// metric name applies.
    pub overrides: Vec<RetentionOverride>,
}

/// One rollup tier: buckets of `resolution_ms`, kept `keep_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierPolicy {
    pub resolution_ms: i64,
    /// `None`: forever.
    pub keep_ms: Option<i64>,
}

/// Keep durations for the series whose metric name matches `metric`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionOverride {
    /// A regex over the whole metric name, e.g. `debug_.*`.
    pub metric: String,
    /// Replaces the policy's `raw_keep_ms` when `Some`.
    pub raw_keep_ms: Option<Option<i64>>,
    /// (tier resolution, keep) pairs replacing the policy's keep of that
    /// tier.
    pub tier_keep_ms: Vec<(i64, Option<i64>)>,
}

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

impl Default for RetentionPolicy {
    /// Raw samples 15 days, 1-minute rollups 90 days, 1-hour rollups 2
    /// years (730 days): a month-long dashboard reads 1-minute buckets, a
    /// year-long one 1-hour buckets.
    fn default() -> Self {
        RetentionPolicy {
            raw_keep_ms: Some(15 * DAY_MS),
            tiers: vec![
                TierPolicy {
                    resolution_ms: MINUTE_MS,
                    keep_ms: Some(90 * DAY_MS),
                },
                TierPolicy {
                    resolution_ms: HOUR_MS,
                    keep_ms: Some(730 * DAY_MS),
                },
            ],
            overrides: Vec::new(),
        }
    }
}

/// What retention measures age against. Data is deleted when it is older
/// than its keep duration at `min(clock, newest sample)`: a writer that
/// stops does not lose its last days of data as the wall clock moves on,
/// and a database of old (imported) data keeps it.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system's wall clock.
    #[default]
    System,
    /// A clock tests (or an offline `strata compact --now`) set.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock reading `now_ms` until [`Clock::set`].
    pub fn manual(now_ms: i64) -> Clock {
        Clock::Manual(Arc::new(AtomicI64::new(now_ms)))
    }

    /// Moves a manual clock; does nothing to the system clock.
    pub fn set(&self, now_ms: i64) {
        if let Clock::Manual(now) = self {
            now.store(now_ms, Ordering::Relaxed);
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Clock::Manual(now) => now.load(Ordering::Relaxed),
        }
    }
}

impl RetentionPolicy {
    /// Checks the module invariants; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |what: &str, keep: Option<i64>| match keep {
            Some(ms) if ms <= 0 => Err(format!("{what} keep must be positive, is {ms} ms")),
            _ => Ok(()),
        };
        positive("raw", self.raw_keep_ms)?;
        let mut finer = 1_000;
        for tier in &self.tiers {
            if tier.resolution_ms <= 0 || tier.resolution_ms % finer != 0 {
                return Err(format!(
                    "tier resolution {} ms must be a positive multiple of {finer} ms (1 s or the next finer tier)",
                    tier.resolution_ms
                ));
            }
            if tier.resolution_ms == finer && finer != 1_000 {
                return Err(format!(
                    "two tiers have resolution {} ms",
                    tier.resolution_ms
                ));
            }
            positive(&format!("tier {} ms", tier.resolution_ms), tier.keep_ms)?;
            finer = tier.resolution_ms;
        }
        Ok(())
    }
}
