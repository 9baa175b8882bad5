//! Hand computations kept only because `strata bench query` (src/cli/bench.rs)
//! still calls them; its rewrite to PromQL removes that use, and this file
//! goes with it. Not for new code: `increase` ignores counter resets; use
//! the query engine ([`super::KpiRule`]).

use std::collections::BTreeMap;

use strata::{Sample, SeriesSamples};

/// Counter increase over the samples (the simulated workloads never reset).
pub fn increase(samples: &[Sample]) -> f64 {
    match (samples.first(), samples.last()) {
        (Some(first), Some(last)) => last.value - first.value,
        _ => 0.0,
    }
}

/// The `q` quantile, in milliseconds, of a latency histogram in seconds
/// given as cumulative `_bucket` series (label `le`), summed over all
/// series and over the range.
pub fn latency_quantile_ms(q: f64, buckets: &[SeriesSamples]) -> f64 {
    let mut by_bound: BTreeMap<u64, f64> = BTreeMap::new();
    for series in buckets {
        let le = match series.key.get("le") {
            Some("+Inf") => f64::INFINITY,
            Some(le) => le.parse().unwrap_or(f64::INFINITY),
            None => continue,
        };
        *by_bound.entry(le.to_bits()).or_default() += increase(&series.samples);
    }
    let cumulative: Vec<(f64, f64)> = by_bound
        .into_iter()
        .map(|(le, count)| (f64::from_bits(le), count))
        .collect();
    1000.0 * histogram_quantile(q, &cumulative)
}

/// Prometheus-style quantile from cumulative (upper bound, count) buckets,
/// sorted by bound: linear interpolation inside the bucket that holds the
/// rank.
fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    let Some(&(_, total)) = buckets.last() else {
        return f64::NAN;
    };
    let rank = q * total;
    let mut lower = 0.0;
    let mut below = 0.0;
    for &(upper, count) in buckets {
        if count >= rank {
            if upper.is_infinite() {
                return lower;
            }
            let inside = count - below;
            let fraction = if inside > 0.0 {
                (rank - below) / inside
            } else {
                0.0
            };
            return lower + (upper - lower) * fraction;
        }
        lower = upper;
        below = count;
    }
    lower
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_inside_buckets() {
        // 10 observations <= 0.1, 10 more <= 0.2, none above
        let buckets = [(0.1, 10.0), (0.2, 20.0), (f64::INFINITY, 20.0)];
        assert!((histogram_quantile(0.5, &buckets) - 0.1).abs() < 1e-12);
        assert!((histogram_quantile(0.75, &buckets) - 0.15).abs() < 1e-12);
        assert!(histogram_quantile(0.5, &[]).is_nan());
    }
}
