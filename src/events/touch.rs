//! The paths updates touched in overridden snapshot rows, as shared chains.
//!
//! A snapshot row that updates changed keeps its other fields from the
//! snapshot, so a reader asks, per column, whether the row's updates
//! touched it. Each row's touched paths are a *list*: a chain of nodes,
//! each one path more than its parent, shared between rows (two rows
//! whose updates touched the same paths in the same order hold the same
//! list). Adding a path to a row makes one node (or finds it), never a
//! copy of the row's list, so n updates of one row, each touching a new
//! path, cost n nodes (a list per update would cost n²/2 paths: 4,000
//! updates took 1.31 GB). Nodes are never freed or changed, so a list id
//! taken before an event still names the same paths after it.

use std::collections::{HashMap, HashSet};

/// No parent: the list's first path.
const ROOT: u32 = u32::MAX;
/// A list this long or longer keeps the set of its paths (see
/// [`Touches::sets`]).
const SET_FROM: u32 = 64;

/// The interned paths and the lists (see the module docs).
#[derive(Clone, Default, Debug)]
pub(crate) struct Touches {
    /// Each distinct touched path once, and its index.
    paths: Vec<Vec<String>>,
    path_ids: HashMap<Vec<String>, u32>,
    /// List `i`: its parent list (`ROOT`: none) and the path it adds.
    nodes: Vec<(u32, u32)>,
    node_ids: HashMap<(u32, u32), u32>,
    /// The number of paths of list `i`.
    depth: Vec<u32>,
    /// The paths of some lists of [`SET_FROM`] paths or more, by list: a
    /// row's set moves to its new list as the row's updates extend it, so
    /// asking whether a long list holds a path costs a lookup, not a walk
    /// up the chain (60,000 updates of one row, each touching a new path
    /// and one it touched before, walked 1.8 billion steps). A list
    /// without a set (its set moved on with another row sharing it) is
    /// walked, and its set made again when it is extended.
    sets: HashMap<u32, HashSet<u32>>,
}

impl Touches {
    /// The list `list` (`None`: no path yet) with `paths` added, each
    /// path it does not hold once, in order. `None` only when both are
    /// empty.
    pub(crate) fn extend<'p>(
        &mut self,
        mut list: Option<u32>,
        paths: impl IntoIterator<Item = &'p Vec<String>>,
    ) -> Option<u32> {
        let mut set = list.and_then(|l| self.sets.remove(&l));
        for p in paths {
            if set.is_none()
                && let Some(l) = list
                && self.depth[l as usize] >= SET_FROM
            {
                set = Some(self.list_set(l));
            }
            if let Some(&id) = self.path_ids.get(p)
                && set
                    .as_ref()
                    .map_or_else(|| self.holds(list, id), |s| s.contains(&id))
            {
                continue;
            }
            let id = match self.path_ids.get(p) {
                Some(&id) => id,
                None => {
                    let id = self.paths.len() as u32;
                    self.paths.push(p.clone());
                    self.path_ids.insert(p.clone(), id);
                    id
                }
            };
            let key = (list.unwrap_or(ROOT), id);
            let node = match self.node_ids.get(&key) {
                Some(&n) => n,
                None => {
                    let n = self.nodes.len() as u32;
                    let d = list.map_or(0, |l| self.depth[l as usize]) + 1;
                    self.nodes.push(key);
                    self.depth.push(d);
                    self.node_ids.insert(key, n);
                    n
                }
            };
            if let Some(s) = set.as_mut() {
                s.insert(id);
            }
            list = Some(node);
        }
        if let (Some(l), Some(s)) = (list, set) {
            self.sets.entry(l).or_insert(s);
        }
        list
    }

    /// The set of the paths of `list` (a walk up its chain).
    fn list_set(&self, list: u32) -> HashSet<u32> {
        let mut out = HashSet::with_capacity(self.depth[list as usize] as usize);
        let mut at = list;
        while at != ROOT {
            let (parent, p) = self.nodes[at as usize];
            out.insert(p);
            at = parent;
        }
        out
    }

    /// Whether `list` holds the path `id` (a walk up its chain: integer
    /// steps, one per path the row's updates touched).
    fn holds(&self, list: Option<u32>, id: u32) -> bool {
        let mut at = list.unwrap_or(ROOT);
        while at != ROOT {
            let (parent, p) = self.nodes[at as usize];
            if p == id {
                return true;
            }
            at = parent;
        }
        false
    }

    /// The paths of `list`, the last added first.
    pub(crate) fn paths(&self, list: u32) -> impl Iterator<Item = &[String]> + '_ {
        let mut at = list;
        std::iter::from_fn(move || {
            if at == ROOT {
                return None;
            }
            let (parent, p) = self.nodes[at as usize];
            at = parent;
            Some(self.paths[p as usize].as_slice())
        })
    }

    /// For every list, whether one of its paths satisfies `hit` (each
    /// path and each list tested once).
    pub(crate) fn hits(&self, hit: impl Fn(&[String]) -> bool) -> Vec<bool> {
        let by_path: Vec<bool> = self.paths.iter().map(|p| hit(p)).collect();
        let mut out: Vec<bool> = Vec::with_capacity(self.nodes.len());
        // A parent is made before its children.
        for &(parent, p) in &self.nodes {
            let up = parent != ROOT && out[parent as usize];
            out.push(up || by_path[p as usize]);
        }
        out
    }

    /// The number of lists.
    #[cfg(test)]
    fn lists(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<String> {
        s.split('.').map(str::to_string).collect()
    }

    fn all(t: &Touches, list: Option<u32>) -> Vec<String> {
        let mut v: Vec<String> = list
            .map(|l| t.paths(l).map(|p| p.join(".")).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn rows_touching_the_same_paths_share_a_list_and_repeats_add_nothing() {
        let mut t = Touches::default();
        let a = t.extend(None, &[p("state"), p("labels")]);
        let b = t.extend(None, &[p("state")]);
        let b = t.extend(b, &[p("labels"), p("state")]);
        assert_eq!(a, b);
        assert_eq!(t.lists(), 2);
        assert_eq!(t.extend(a, &[p("labels")]), a);
        assert_eq!(all(&t, a), ["labels", "state"]);
        assert_eq!(t.extend(None, &[]), None);
        let c = t.extend(a, &[p("user.login")]);
        assert_eq!(all(&t, c), ["labels", "state", "user.login"]);
        // `a` still names what it named.
        assert_eq!(all(&t, a), ["labels", "state"]);
        let hits = t.hits(|p| p[0] == "user");
        assert_eq!(
            (hits[a.unwrap() as usize], hits[c.unwrap() as usize]),
            (false, true)
        );
    }

    /// Lists past [`SET_FROM`] paths answer from their set; rows that
    /// share a long list and then part (the set moves on with one of
    /// them) still hold exactly their paths, each path once.
    #[test]
    fn long_lists_shared_then_parted_hold_exactly_their_paths() {
        let mut t = Touches::default();
        let mut model: Vec<std::collections::BTreeSet<String>> = vec![Default::default(); 3];
        let mut lists: Vec<Option<u32>> = vec![None; 3];
        let mut x = 7u64;
        for step in 0..3000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // Rows 0 and 1 take the same paths for the first 200 steps
            // (one shared list), then each its own; row 2 repeats paths.
            let row = if step < 200 {
                (step % 2) as usize
            } else {
                (x >> 33) as usize % 3
            };
            let name = match row {
                2 => format!("r{}", (x >> 40) % 150),
                _ if step < 200 => format!("s{}", step / 2),
                _ => format!("n{row}_{step}"),
            };
            let again = model[row]
                .iter()
                .next()
                .cloned()
                .unwrap_or_else(|| name.clone());
            let paths = [p(&name), p(&again), p("updated_at")];
            lists[row] = t.extend(lists[row], &paths);
            for q in [&name, &again, &"updated_at".to_string()] {
                model[row].insert(q.clone());
            }
            if step == 199 {
                assert_eq!(lists[0], lists[1], "shared");
            }
            if step % 100 == 99 {
                for r in 0..3 {
                    let got = all(&t, lists[r]);
                    let want: Vec<String> = model[r].iter().cloned().collect();
                    assert_eq!(got, want, "row {r} at {step}");
                }
            }
        }
        assert!(!t.sets.is_empty());
        let long = lists[0].unwrap();
        assert!(t.depth[long as usize] >= SET_FROM);
        assert_eq!(t.depth[long as usize] as usize, model[0].len());
    }

    #[test]
    fn many_updates_of_one_row_cost_a_node_each() {
        let mut t = Touches::default();
        let mut list = None;
        for i in 0..4000 {
            list = t.extend(list, &[p(&format!("f{i}"))]);
            list = t.extend(list, &[p("updated_at")]);
        }
        assert_eq!(t.lists(), 4001);
        assert_eq!(t.paths.len(), 4001);
        assert_eq!(t.paths(list.unwrap()).count(), 4001);
    }
}
