//! Keep durations per series: the retention policy with its per-metric
//! overrides resolved against a metric name, and the cutoffs retention
//! applies at a given "now".
//!
//! Invariant: the first override whose pattern matches the whole metric
//! name (`__name__`) decides; a series without a metric name, or one no
//! override matches, keeps the policy's durations.

use std::collections::HashMap;

use super::policy::RetentionPolicy;
use crate::error::InputError;

/// Which tier a keep duration is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    Raw,
    /// The rollup tier of this resolution.
    Rollup(i64),
}

/// A validated policy, asked per tier.
pub struct KeepRules {
    policy: RetentionPolicy,
}

impl Tier {
    /// The manifest's resolution of this tier (0: raw).
    fn resolution_ms(self) -> i64 {
        match self {
            Tier::Raw => 0,
            Tier::Rollup(resolution_ms) => resolution_ms,
        }
    }
}

impl KeepRules {
    /// Fails on a policy [`RetentionPolicy::validate`] rejects (an
    /// override pattern that is no valid regex, ...).
    pub fn new(policy: &RetentionPolicy) -> Result<KeepRules, InputError> {
        policy.validate().map_err(InputError::BadOption)?;
        Ok(KeepRules {
            policy: policy.clone(),
        })
    }

    /// How long the policy keeps `tier` when no override applies; `None`:
    /// forever (also for a tier the policy does not have).
    pub fn default_keep_ms(&self, tier: Tier) -> Option<i64> {
        // `keeps_ms` lists the policy's own keep first.
        self.all_keeps(tier).next().flatten()
    }

    /// How long series of metric `metric` are kept in `tier`; `None`:
    /// forever.
    pub fn keep_ms(&self, metric: &str, tier: Tier) -> Option<i64> {
        self.policy.keep_ms_for(metric, tier.resolution_ms())
    }

    /// Every keep duration of `tier` some series may get: the default and
    /// each override's.
    fn all_keeps(&self, tier: Tier) -> impl Iterator<Item = Option<i64>> + '_ {
        self.policy.keeps_ms(tier.resolution_ms())
    }

    /// Whether no series is ever deleted from `tier`.
    pub fn keeps_forever(&self, tier: Tier) -> bool {
        self.all_keeps(tier).all(|keep| keep.is_none())
    }

    /// The shortest keep of `tier` any series gets (`None` when every
    /// series is kept forever).
    pub fn shortest_keep_ms(&self, tier: Tier) -> Option<i64> {
        self.all_keeps(tier).flatten().min()
    }
}

/// The cutoffs of one tier at one "now": data (a raw sample's timestamp,
/// a bucket's start) before a series' cutoff is deleted. Each cutoff is
/// clamped to `limit_ms` (what must not be deleted yet, e.g. data not
/// rolled up into the next tier), and cached per metric name.
pub struct Cutoffs<'a> {
    rules: &'a KeepRules,
    tier: Tier,
    now_ms: i64,
    limit_ms: i64,
    by_metric: HashMap<String, i64>,
}

impl<'a> Cutoffs<'a> {
    pub fn new(rules: &'a KeepRules, tier: Tier, now_ms: i64, limit_ms: i64) -> Cutoffs<'a> {
        Cutoffs {
            rules,
            tier,
            now_ms,
            limit_ms,
            by_metric: HashMap::new(),
        }
    }

    /// The cutoff of series of metric `metric`; `i64::MIN`: nothing is
    /// deleted.
    pub fn of_metric(&mut self, metric: &str) -> i64 {
        if let Some(&cutoff) = self.by_metric.get(metric) {
            return cutoff;
        }
        let cutoff = self.cutoff_for(self.rules.keep_ms(metric, self.tier));
        self.by_metric.insert(metric.to_owned(), cutoff);
        cutoff
    }

    /// The largest cutoff any series of the tier gets: before it, some
    /// series may have lost data.
    pub fn largest(&self) -> i64 {
        self.cutoff_for(self.rules.shortest_keep_ms(self.tier))
    }

    fn cutoff_for(&self, keep_ms: Option<i64>) -> i64 {
        match keep_ms {
            None => i64::MIN,
            Some(keep) => self.now_ms.saturating_sub(keep).min(self.limit_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compaction::policy::{RetentionOverride, TierPolicy};

    #[test]
    fn the_first_matching_override_decides_per_tier() {
        let policy = RetentionPolicy {
            raw_keep_ms: Some(100),
            tiers: vec![TierPolicy {
                resolution_ms: 1_000,
                keep_ms: Some(1_000),
            }],
            overrides: vec![
                RetentionOverride {
                    metric: "debug_.*".into(),
                    raw_keep_ms: Some(Some(10)),
                    tier_keep_ms: vec![],
                },
                RetentionOverride {
                    metric: "debug_x|slo".into(),
                    raw_keep_ms: Some(None),
                    tier_keep_ms: vec![(1_000, None)],
                },
            ],
        };
        let rules = KeepRules::new(&policy).unwrap();
        assert_eq!(rules.keep_ms("cpu", Tier::Raw), Some(100));
        assert_eq!(rules.keep_ms("debug_x", Tier::Raw), Some(10));
        assert_eq!(rules.keep_ms("debug_x", Tier::Rollup(1_000)), Some(1_000));
        assert_eq!(rules.keep_ms("slo", Tier::Raw), None);
        assert_eq!(rules.keep_ms("slo", Tier::Rollup(1_000)), None);
        // Anchored: a name merely containing the pattern does not match.
        assert_eq!(rules.keep_ms("my_debug_x", Tier::Raw), Some(100));
        assert!(!rules.keeps_forever(Tier::Raw));
        assert_eq!(rules.shortest_keep_ms(Tier::Raw), Some(10));

        let mut cutoffs = Cutoffs::new(&rules, Tier::Raw, 1_000, 950);
        assert_eq!(cutoffs.of_metric("cpu"), 900);
        assert_eq!(cutoffs.of_metric("debug_y"), 950, "clamped to the limit");
        assert_eq!(cutoffs.of_metric("slo"), i64::MIN);
        assert_eq!(cutoffs.largest(), 950);
    }
}
