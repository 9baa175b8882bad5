//! Label index of the head: postings per label, updated as series are
//! created and dropped. Series ids are assigned in increasing order and
//! never reused, so appending an id keeps every postings list sorted.
//!
//! Invariants: the id map holds exactly the live series of the head. A
//! dropped series leaves it first ([`HeadIndex::unlist`], cheap, while
//! appends are held off) and its postings later
//! ([`HeadIndex::remove_postings`], one pass per list): in between,
//! postings may name ids the id map does not have, and readers resolve
//! every id through [`HeadIndex::get`], which skips them. A postings list
//! is never left empty (the label value goes, and a name without values),
//! so label names and values follow the live series too.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::MemSeries;
use crate::index::Postings;
use crate::series::SeriesKey;

#[derive(Default)]
pub struct HeadIndex {
    /// Live series by id (a map: ids of dropped series leave holes that a
    /// vector would keep forever under churn).
    series: HashMap<u32, Arc<MemSeries>>,
    /// name → value → sorted series ids
    postings: BTreeMap<Arc<str>, BTreeMap<Arc<str>, Vec<u32>>>,
}

impl HeadIndex {
    /// `key` with its strings replaced by the copies the index already
    /// holds, so that series share label strings.
    pub fn intern(&self, key: &SeriesKey) -> SeriesKey {
        let mut names = true;
        let mut current: Option<&BTreeMap<Arc<str>, Vec<u32>>> = None;
        key.interned(|s| {
            let shared = if names {
                current = self.postings.get(&**s);
                self.postings
                    .get_key_value(&**s)
                    .map(|(k, _)| Arc::clone(k))
            } else {
                current
                    .and_then(|values| values.get_key_value(&**s))
                    .map(|(k, _)| Arc::clone(k))
            };
            names = !names;
            shared.unwrap_or_else(|| Arc::clone(s))
        })
    }

    pub fn add(&mut self, series: Arc<MemSeries>) {
        let id = series.series_id;
        for label in series.key.labels() {
            let ids = self
                .postings
                .entry(label.name.clone())
                .or_default()
                .entry(label.value.clone())
                .or_default();
            let at = ids.partition_point(|&existing| existing < id);
            ids.insert(at, id);
        }
        self.series.insert(id, series);
    }

    /// Removes a dropped series from the id map: [`Self::get`] no longer
    /// finds it. Its postings stay until [`Self::remove_postings`].
    pub fn unlist(&mut self, series_id: u32) {
        self.series.remove(&series_id);
    }

    /// Removes `dropped` (series [`Self::unlist`]ed before) from every
    /// postings list, each list rewritten once however many of its series
    /// go.
    pub fn remove_postings(&mut self, dropped: &[Arc<MemSeries>]) {
        let mut ids: Vec<u32> = dropped.iter().map(|s| s.series_id).collect();
        ids.sort_unstable();
        let mut touched: HashSet<(&str, &str)> = HashSet::new();
        for series in dropped {
            for label in series.key.labels() {
                touched.insert((&label.name, &label.value));
            }
        }
        for (name, value) in touched {
            let Some(values) = self.postings.get_mut(name) else {
                continue;
            };
            if let Some(postings) = values.get_mut(value) {
                postings.retain(|id| ids.binary_search(id).is_err());
                if postings.is_empty() {
                    values.remove(value);
                } else if postings.capacity() > 2 * postings.len() {
                    postings.shrink_to_fit();
                }
            }
            if values.is_empty() {
                self.postings.remove(name);
            }
        }
        if self.series.capacity() > 4 * self.series.len().max(64) {
            let live = self.series.len();
            self.series.shrink_to(2 * live);
        }
    }

    pub fn get(&self, series_id: u32) -> Option<&Arc<MemSeries>> {
        self.series.get(&series_id)
    }

    pub fn label_names(&self) -> impl Iterator<Item = &str> {
        self.postings.keys().map(|name| &**name)
    }

    pub fn label_values(&self, name: &str) -> impl Iterator<Item = &str> {
        self.postings
            .get(name)
            .into_iter()
            .flat_map(|values| values.keys().map(|value| &**value))
    }
}

impl Postings for HeadIndex {
    fn all_series(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.series.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    fn postings(&self, name: &str, value: &str) -> Option<&[u32]> {
        self.postings.get(name)?.get(value).map(Vec::as_slice)
    }

    fn for_each_value(&self, name: &str, visit: &mut dyn FnMut(&str, &[u32])) {
        if let Some(values) = self.postings.get(name) {
            for (value, ids) in values {
                visit(value, ids);
            }
        }
    }
}
