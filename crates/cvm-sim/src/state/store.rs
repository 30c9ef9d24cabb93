//! Instances with the indexes that keep lookups cheap at 10,000 instances: by id, by owner
//! in creation order, by tag pair, and ClientToken → the ids it created.

use std::collections::{BTreeMap, HashMap};

use super::instance::Instance;

type TagKey = (String, String, String);

#[derive(Debug, Default)]
pub struct InstanceStore {
    by_id: HashMap<String, Instance>,
    by_owner: HashMap<String, BTreeMap<u64, String>>,
    by_tag: HashMap<TagKey, BTreeMap<u64, String>>,
    tokens: HashMap<(String, String), Vec<String>>,
    next_seq: u64,
}

impl InstanceStore {
    pub fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn insert(&mut self, instance: Instance) {
        self.by_owner
            .entry(instance.owner.clone())
            .or_default()
            .insert(instance.seq, instance.id.clone());
        for tag in &instance.tags {
            self.by_tag
                .entry((instance.owner.clone(), tag.key.clone(), tag.value.clone()))
                .or_default()
                .insert(instance.seq, instance.id.clone());
        }
        self.by_id.insert(instance.id.clone(), instance);
    }

    pub fn remove(&mut self, id: &str) -> Option<Instance> {
        let instance = self.by_id.remove(id)?;
        if let Some(ids) = self.by_owner.get_mut(&instance.owner) {
            ids.remove(&instance.seq);
        }
        for tag in &instance.tags {
            let key = (instance.owner.clone(), tag.key.clone(), tag.value.clone());
            if let Some(ids) = self.by_tag.get_mut(&key) {
                ids.remove(&instance.seq);
                if ids.is_empty() {
                    self.by_tag.remove(&key);
                }
            }
        }
        Some(instance)
    }

    /// Replaces an instance's tags and keeps the tag index in step, so tag filters of
    /// DescribeInstances see the change at once.
    pub fn set_tags(&mut self, id: &str, tags: Vec<super::instance::Tag>) {
        if let Some(mut instance) = self.remove(id) {
            instance.tags = tags;
            self.insert(instance);
        }
    }

    pub fn get(&self, id: &str) -> Option<&Instance> {
        self.by_id.get(id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Instance> {
        self.by_id.get_mut(id)
    }

    /// An owner's instance by id; other accounts' instances do not exist for it.
    pub fn get_owned(&self, owner: &str, id: &str) -> Option<&Instance> {
        self.by_id.get(id).filter(|i| i.owner == owner)
    }

    /// An owner's instances in creation order.
    pub fn owned<'a>(&'a self, owner: &str) -> impl Iterator<Item = &'a Instance> + 'a {
        self.by_owner
            .get(owner)
            .into_iter()
            .flat_map(|ids| ids.values())
            .filter_map(|id| self.by_id.get(id))
    }

    /// An owner's instances carrying `key=value` for any of `values`, in creation order.
    pub fn tagged<'a>(&'a self, owner: &str, key: &str, values: &[String]) -> Vec<&'a Instance> {
        let mut hits: BTreeMap<u64, &str> = BTreeMap::new();
        for value in values {
            let index_key = (owner.to_string(), key.to_string(), value.clone());
            if let Some(ids) = self.by_tag.get(&index_key) {
                hits.extend(ids.iter().map(|(seq, id)| (*seq, id.as_str())));
            }
        }
        hits.values().filter_map(|id| self.by_id.get(*id)).collect()
    }

    pub fn all(&self) -> impl Iterator<Item = &Instance> {
        self.by_id.values()
    }

    pub fn token_ids(&self, owner: &str, token: &str) -> Option<&[String]> {
        self.tokens
            .get(&(owner.to_string(), token.to_string()))
            .map(Vec::as_slice)
    }

    /// Tokens are kept after their instances are gone: a late retry must not create again.
    pub fn remember_token(&mut self, owner: &str, token: &str, ids: Vec<String>) {
        self.tokens
            .insert((owner.to_string(), token.to_string()), ids);
    }
}
