//! The columns of an overlay's view, counted so that no log an overlay
//! accepts makes more columns than `compact` may write (SPEC.md 13.1).
//!
//! A column is a node of the snapshot's tree (the row, a key of an object,
//! the elements of an array). The view's columns are the snapshot's nodes
//! and every path events brought since (a path no row holds any more still
//! counts: the count never falls, so it bounds what a compaction writes).

use crate::model::NodeName;
use crate::read::Snapshot;
use serde_json::Value;
use std::collections::HashMap;

/// The nodes of the view (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct Columns {
    /// Every key node, by parent and key.
    keys: HashMap<u32, HashMap<Box<str>, u32>>,
    /// Every array's element node, by parent.
    elems: HashMap<u32, u32>,
    /// Nodes, the row included.
    len: u32,
    /// The most nodes the view may have.
    max: u32,
}

/// The nodes one event would add: (parent, name) -> the id it would take.
pub(crate) struct Plan<'v> {
    new: HashMap<(u32, Option<&'v str>), u32>,
}

impl Columns {
    /// The snapshot's nodes; the view may have `max` nodes (at least as
    /// many as the snapshot has).
    pub(crate) fn of(snap: &Snapshot, max: usize) -> Columns {
        let nodes = &snap.footer().nodes;
        let mut keys: HashMap<u32, HashMap<Box<str>, u32>> = HashMap::new();
        let mut elems = HashMap::new();
        for (i, n) in nodes.iter().enumerate().skip(1) {
            match &n.name {
                NodeName::Key(k) => {
                    keys.entry(n.parent)
                        .or_default()
                        .insert(k.as_str().into(), i as u32);
                }
                NodeName::Elem => {
                    elems.insert(n.parent, i as u32);
                }
                NodeName::Root => {}
            }
        }
        let len = nodes.len().max(1) as u32;
        Columns {
            keys,
            elems,
            len,
            max: u32::try_from(max).unwrap_or(u32::MAX).max(len),
        }
    }

    /// An empty plan.
    pub(crate) fn plan<'v>(&self) -> Plan<'v> {
        Plan {
            new: HashMap::new(),
        }
    }

    fn child<'v>(&self, plan: &mut Plan<'v>, parent: u32, name: Option<&'v str>) -> u32 {
        let known = match name {
            Some(k) => self.keys.get(&parent).and_then(|m| m.get(k)),
            None => self.elems.get(&parent),
        };
        if let Some(&id) = known {
            return id;
        }
        let next = self.len + plan.new.len() as u32;
        *plan.new.entry((parent, name)).or_insert(next)
    }

    /// Plan the nodes of `v` placed at node `at`.
    pub(crate) fn walk<'v>(&self, plan: &mut Plan<'v>, at: u32, v: &'v Value) {
        match v {
            Value::Object(o) => {
                for (k, x) in o {
                    let c = self.child(plan, at, Some(k.as_str()));
                    self.walk(plan, c, x);
                }
            }
            Value::Array(a) => {
                // `build` makes the elements' node for an empty array too.
                let c = self.child(plan, at, None);
                for x in a {
                    self.walk(plan, c, x);
                }
            }
            _ => {}
        }
    }

    /// Plan the nodes of a created row.
    pub(crate) fn walk_row<'v>(
        &self,
        plan: &mut Plan<'v>,
        row: &'v serde_json::Map<String, Value>,
    ) {
        for (k, x) in row {
            let c = self.child(plan, 0, Some(k.as_str()));
            self.walk(plan, c, x);
        }
    }

    /// Plan the nodes of a `set` of `path` to `v` (objects along the path).
    pub(crate) fn walk_set<'v>(&self, plan: &mut Plan<'v>, path: &'v [String], v: &'v Value) {
        let mut at = 0;
        for k in path {
            at = self.child(plan, at, Some(k.as_str()));
        }
        self.walk(plan, at, v);
    }

    /// Check that the view may take the plan's nodes: the message when not.
    pub(crate) fn check(&self, plan: &Plan<'_>) -> std::result::Result<(), String> {
        let total = self.len as u64 + plan.new.len() as u64;
        if total > self.max as u64 {
            return Err(format!(
                "the event makes {total} columns, more than the {} a snapshot may have (max_columns; the snapshot and the events so far have {}, counting paths no row holds any more: `colsnap compact` the events so far and apply the rest to the new snapshot)",
                self.max, self.len
            ));
        }
        Ok(())
    }

    /// Add the plan's nodes (after [`Self::check`]).
    pub(crate) fn commit(&mut self, plan: Plan<'_>) {
        self.len += plan.new.len() as u32;
        for ((parent, name), id) in plan.new {
            match name {
                Some(k) => {
                    self.keys.entry(parent).or_default().insert(k.into(), id);
                }
                None => {
                    self.elems.insert(parent, id);
                }
            }
        }
    }
}
