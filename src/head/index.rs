//! Label index of the head: postings per label, updated as series are
//! created. Series ids are assigned in increasing order, so appending an
//! id keeps every postings list sorted.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::MemSeries;
use crate::index::Postings;
use crate::series::SeriesKey;

#[derive(Default)]
pub struct HeadIndex {
    /// Series by id; `None` where an id was never stored here.
    series: Vec<Option<Arc<MemSeries>>>,
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
        let slot = id as usize;
        if self.series.len() <= slot {
            self.series.resize(slot + 1, None);
        }
        self.series[slot] = Some(series);
    }

    pub fn get(&self, series_id: u32) -> Option<&Arc<MemSeries>> {
        self.series.get(series_id as usize).and_then(Option::as_ref)
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
        self.series
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(id, _)| id as u32)
            .collect()
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
