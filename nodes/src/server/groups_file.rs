//! `<data-dir>/groups.json`: which groups a node joined or left after it
//! first started, and its ring view.
//!
//! Guarantees: [`GroupsFile::save`] replaces the file atomically (write a
//! temporary file, fsync it, rename it over, fsync the directory), so a
//! crash leaves either the old or the new record, never a torn one. A file
//! that does not parse is an error naming the file, never a panic and never
//! silently ignored (ignoring it could resurrect a group this node left).
//! A missing file means "nothing joined or left yet".

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::consensus::{GroupId, LogIndex, NodeId, Term};

/// The file's name inside the data directory.
pub const GROUPS_FILE: &str = "groups.json";
const VERSION: u32 = 1;

/// What a node records about its groups.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupsFile {
    pub version: u32,
    /// Groups joined by `join-group` (hosted at start, as joining cores).
    #[serde(default)]
    pub joined: BTreeSet<GroupId>,
    /// Groups this node left (retired or `leave-group`): never hosted at
    /// start, even if the initial placement gives them to this node.
    #[serde(default)]
    pub left: BTreeSet<GroupId>,
    /// For each group this node left: the highest term (ballot) it had
    /// seen there. A later join starts its core at least at that term, so
    /// the wiped node never votes twice in a term.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub terms: BTreeMap<GroupId, u64>,
    /// For each group this node left: its join floor for a later join, the
    /// (term, commit index) it had when it left (the largest such). After
    /// a removal it applied, every log that reaches this position holds that
    /// removal, so a joining core counts itself only in configurations
    /// that mean its new self (`CoreConfig::join_floor`). Kept while the
    /// group is joined again, so a restarted joining node keeps its floor.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub join_floors: BTreeMap<GroupId, (u64, u64)>,
    /// The ring view set by `set-members`; None: the initial `--members`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<NodeId>>,
}

impl GroupsFile {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(GROUPS_FILE)
    }

    /// Read the file; a missing file is an empty record. The error names
    /// the file and what is wrong with it.
    pub fn load(data_dir: &Path) -> Result<GroupsFile, String> {
        let path = Self::path(data_dir);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(GroupsFile {
                    version: VERSION,
                    ..GroupsFile::default()
                })
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let file: GroupsFile = serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "{} is corrupt: {e}; refusing to start (it records the groups this node joined and left)",
                path.display()
            )
        })?;
        if file.version != VERSION {
            return Err(format!(
                "{}: version {} is not the supported {VERSION}",
                path.display(),
                file.version
            ));
        }
        if let Some(g) = file.joined.intersection(&file.left).next() {
            return Err(format!(
                "{} is corrupt: group {} is both joined and left",
                path.display(),
                g.0
            ));
        }
        Ok(file)
    }

    /// Replace the file atomically and durably.
    pub fn save(&self, data_dir: &Path) -> Result<(), String> {
        let path = Self::path(data_dir);
        let tmp = data_dir.join(format!("{GROUPS_FILE}.tmp"));
        let io = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
        let mut bytes = serde_json::to_vec_pretty(self).expect("groups.json always serializes");
        bytes.push(b'\n');
        {
            let mut f = std::fs::File::create(&tmp).map_err(|e| io("creating", &tmp, e))?;
            f.write_all(&bytes).map_err(|e| io("writing", &tmp, e))?;
            f.sync_all().map_err(|e| io("fsyncing", &tmp, e))?;
        }
        std::fs::rename(&tmp, &path).map_err(|e| io("renaming onto", &path, e))?;
        std::fs::File::open(data_dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("fsyncing", data_dir, e))?;
        Ok(())
    }

    /// `group` is hosted again (as a joining core).
    pub fn record_join(&mut self, group: GroupId) {
        self.left.remove(&group);
        self.joined.insert(group);
    }

    /// `group` is no longer hosted; `term` and `commit` are the highest
    /// term this node saw in it and its commit index then (kept as floors
    /// for a later join).
    pub fn record_leave(&mut self, group: GroupId, term: u64, commit: u64) {
        self.joined.remove(&group);
        self.left.insert(group);
        let floor = self.terms.entry(group).or_insert(0);
        *floor = (*floor).max(term);
        let join_floor = self.join_floors.entry(group).or_insert((0, 0));
        *join_floor = (*join_floor).max((term, commit));
    }

    /// The join floor of a new core of `group` (None: never left it).
    pub fn join_floor(&self, group: GroupId) -> Option<(Term, LogIndex)> {
        self.join_floors
            .get(&group)
            .map(|&(term, index)| (Term(term), LogIndex(index)))
    }

    /// The term a new core of `group` must start at, at least.
    pub fn term_floor(&self, group: GroupId) -> u64 {
        self.terms.get(&group).copied().unwrap_or(0)
    }

    /// The groups to host at start and their seed voters: the initial
    /// placement's groups minus those left, plus those joined (with no
    /// voters: a joined group learns its configuration from its leader or
    /// its own storage, never from the initial placement).
    pub fn hosted(&self, initial: &[(GroupId, Vec<NodeId>)]) -> Vec<(GroupId, Vec<NodeId>)> {
        let mut out: Vec<(GroupId, Vec<NodeId>)> = initial
            .iter()
            .filter(|(g, _)| !self.left.contains(g) && !self.joined.contains(g))
            .cloned()
            .collect();
        out.extend(self.joined.iter().map(|g| (*g, Vec::new())));
        out.sort_by_key(|(g, _)| *g);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[u64]) -> Vec<NodeId> {
        v.iter().copied().map(NodeId).collect()
    }

    #[test]
    fn a_missing_file_is_an_empty_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = GroupsFile::load(dir.path()).expect("missing is fine");
        assert!(f.joined.is_empty() && f.left.is_empty() && f.members.is_none());
    }

    #[test]
    fn round_trips_through_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut f = GroupsFile::load(dir.path()).expect("load");
        f.record_join(GroupId(3));
        f.record_leave(GroupId(1), 7, 40);
        f.members = Some(ids(&[1, 2, 4]));
        f.save(dir.path()).expect("save");
        assert!(!dir.path().join("groups.json.tmp").exists(), "renamed away");
        let back = GroupsFile::load(dir.path()).expect("reload");
        assert_eq!(back, f);
        // Leaving what was joined moves it; joining what was left moves it back.
        let mut g = back.clone();
        g.record_leave(GroupId(3), 2, 9);
        g.record_join(GroupId(1));
        assert_eq!(g.joined, [GroupId(1)].into_iter().collect());
        assert_eq!(g.left, [GroupId(3)].into_iter().collect());
        // Term floors survive a re-join and only grow.
        assert_eq!(g.term_floor(GroupId(1)), 7);
        g.record_leave(GroupId(1), 5, 90);
        assert_eq!(g.term_floor(GroupId(1)), 7);
        // So do join floors, compared as log positions (term first).
        assert_eq!(g.join_floor(GroupId(1)), Some((Term(7), LogIndex(40))));
        g.record_leave(GroupId(1), 7, 52);
        assert_eq!(g.join_floor(GroupId(1)), Some((Term(7), LogIndex(52))));
        assert_eq!(g.join_floor(GroupId(2)), None, "never left");
        g.record_join(GroupId(1));
        g.save(dir.path()).expect("save again");
        assert_eq!(GroupsFile::load(dir.path()).expect("reload"), g);
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("groups.json");
        for bad in [
            &b"{\"version\":1,\"joined\":[1"[..],
            b"not json",
            b"{\"version\":1,\"joined\":[\"x\"]}",
            b"{\"version\":1,\"surprise\":true}",
            b"{\"version\":7}",
            b"{\"version\":1,\"joined\":[2],\"left\":[2]}",
        ] {
            std::fs::write(&path, bad).expect("write");
            let e = GroupsFile::load(dir.path()).expect_err("corrupt");
            assert!(
                e.contains(&path.display().to_string()),
                "{e:?} names the file"
            );
        }
    }

    #[test]
    fn hosted_is_initial_minus_left_plus_joined_as_joining() {
        let initial = vec![
            (GroupId(0), ids(&[1, 2, 3])),
            (GroupId(1), ids(&[1, 2, 3])),
            (GroupId(2), ids(&[1, 2, 3])),
        ];
        let mut f = GroupsFile::default();
        f.record_leave(GroupId(1), 1, 0);
        f.record_join(GroupId(5));
        f.record_leave(GroupId(2), 1, 0);
        f.record_join(GroupId(2));
        assert_eq!(
            f.hosted(&initial),
            vec![
                (GroupId(0), ids(&[1, 2, 3])),
                (GroupId(2), vec![]),
                (GroupId(5), vec![]),
            ]
        );
    }

    proptest::proptest! {
        /// Fuzz: random bytes in the file never panic the loader.
        #[test]
        fn load_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..128)) {
            let dir = tempfile::tempdir().expect("tempdir");
            std::fs::write(dir.path().join("groups.json"), &bytes).expect("write");
            let _ = GroupsFile::load(dir.path());
        }
    }
}
