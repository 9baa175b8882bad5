//! Label index: matchers and their evaluation over postings lists.
//!
//! A postings list is the sorted, duplicate-free list of series ids that
//! carry one label `name=value`. Evaluating matchers touches only the
//! postings of the label names the matchers mention, so its cost follows
//! the matching series, not the whole index.
//!
//! Semantics are Prometheus's: a label that is absent has the value "", so
//! a matcher that accepts "" (`a=""`, `a!="x"`, `a=~".*"`) also selects the
//! series without label `a`. Regular expressions are anchored at both ends
//! and `.` matches any character but a newline (Prometheus 2.x; `(?s)`
//! opts in).

mod matcher;
mod selector;

pub use matcher::{MatchOp, Matcher};
pub use selector::parse_selector;

/// Read access to postings, implemented by each index (segment, head).
pub(crate) trait Postings {
    /// Every series id in the index, sorted.
    fn all_series(&self) -> Vec<u32>;
    /// The postings of `name=value`, if any series has that label.
    fn postings(&self, name: &str, value: &str) -> Option<&[u32]>;
    /// Calls `visit` with every value of label `name` and its postings.
    fn for_each_value(&self, name: &str, visit: &mut dyn FnMut(&str, &[u32]));
}

/// The sorted ids of the series that satisfy every matcher. No matchers
/// selects every series.
pub(crate) fn select(index: &dyn Postings, matchers: &[Matcher]) -> Vec<u32> {
    // Matchers that reject "" select from postings directly; evaluate them
    // first so that the intersection starts small.
    let mut ordered: Vec<&Matcher> = matchers.iter().collect();
    ordered.sort_by_key(|m| m.matches(""));
    let mut result: Option<Vec<u32>> = None;
    for matcher in ordered {
        let selected = select_one(index, matcher);
        result = Some(match result {
            None => selected,
            Some(previous) => intersect(&previous, &selected),
        });
        if result.as_ref().is_some_and(Vec::is_empty) {
            break;
        }
    }
    result.unwrap_or_else(|| index.all_series())
}

fn select_one(index: &dyn Postings, matcher: &Matcher) -> Vec<u32> {
    if matcher.op() == MatchOp::Equal && !matcher.value().is_empty() {
        return index
            .postings(matcher.name(), matcher.value())
            .map(<[u32]>::to_vec)
            .unwrap_or_default();
    }
    let accepts_absent = matcher.matches("");
    // Collect the postings of the values on the minority side.
    let mut ids = Vec::new();
    index.for_each_value(matcher.name(), &mut |value, postings| {
        if matcher.matches(value) != accepts_absent {
            ids.extend_from_slice(postings);
        }
    });
    ids.sort_unstable();
    ids.dedup();
    if accepts_absent {
        difference(&index.all_series(), &ids)
    } else {
        ids
    }
}

/// Intersection of two sorted lists.
pub(crate) fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Elements of sorted `a` that are not in sorted `b`.
pub(crate) fn difference(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j == b.len() || b[j] != x {
            out.push(x);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A tiny in-memory index: (name, value) -> ids.
    struct MapIndex {
        series: u32,
        map: BTreeMap<(String, String), Vec<u32>>,
    }

    impl Postings for MapIndex {
        fn all_series(&self) -> Vec<u32> {
            (0..self.series).collect()
        }
        fn postings(&self, name: &str, value: &str) -> Option<&[u32]> {
            self.map
                .get(&(name.to_owned(), value.to_owned()))
                .map(Vec::as_slice)
        }
        fn for_each_value(&self, name: &str, visit: &mut dyn FnMut(&str, &[u32])) {
            for ((n, v), ids) in &self.map {
                if n == name {
                    visit(v, ids);
                }
            }
        }
    }

    fn index() -> MapIndex {
        // 0: job=a,env=prod  1: job=b,env=dev  2: job=a
        let mut map = BTreeMap::new();
        map.insert(("job".into(), "a".into()), vec![0, 2]);
        map.insert(("job".into(), "b".into()), vec![1]);
        map.insert(("env".into(), "prod".into()), vec![0]);
        map.insert(("env".into(), "dev".into()), vec![1]);
        MapIndex { series: 3, map }
    }

    fn m(name: &str, op: MatchOp, value: &str) -> Matcher {
        Matcher::new(name, op, value).unwrap()
    }

    #[test]
    fn prometheus_semantics() {
        let idx = index();
        assert_eq!(select(&idx, &[]), vec![0, 1, 2]);
        assert_eq!(select(&idx, &[m("job", MatchOp::Equal, "a")]), vec![0, 2]);
        assert_eq!(
            select(&idx, &[m("env", MatchOp::NotEqual, "prod")]),
            vec![1, 2]
        );
        assert_eq!(select(&idx, &[m("env", MatchOp::Equal, "")]), vec![2]);
        assert_eq!(select(&idx, &[m("env", MatchOp::Regex, "p.*")]), vec![0]);
        assert_eq!(
            select(&idx, &[m("env", MatchOp::Regex, "p.*|")]),
            vec![0, 2]
        );
        assert_eq!(
            select(&idx, &[m("env", MatchOp::NotRegex, "d.*")]),
            vec![0, 2]
        );
        assert_eq!(
            select(
                &idx,
                &[
                    m("job", MatchOp::Equal, "a"),
                    m("env", MatchOp::NotEqual, "")
                ]
            ),
            vec![0]
        );
        assert_eq!(
            select(&idx, &[m("nope", MatchOp::Equal, "x")]),
            Vec::<u32>::new()
        );
    }

    #[test]
    fn regex_dot_stops_at_newlines_like_prometheus_2() {
        // Prometheus 2.x (Go's RE2 defaults): `.` does not match `\n`;
        // `(?s)` opts in, as it does there.
        let m = Matcher::new("k", MatchOp::Regex, ".+").unwrap();
        assert!(!m.matches("line one\nline two"));
        assert!(m.matches("line one"));
        assert!(!m.matches(""));
        let m = Matcher::new("k", MatchOp::Regex, "(?s).+").unwrap();
        assert!(m.matches("line one\nline two"));
        let m = Matcher::new("k", MatchOp::NotRegex, "a.b").unwrap();
        assert!(m.matches("a\nb"));
    }

    #[test]
    fn set_operations() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[3, 4, 7]), vec![3, 7]);
        assert_eq!(difference(&[1, 3, 5, 7], &[3, 4, 7]), vec![1, 5]);
    }
}
