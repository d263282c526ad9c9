//! The monitor's log in SQLite: every report (`reports`), each node's role changes (`roles`)
//! and every change of the block list (`blocks`). The schema is created and migrated in code
//! (`PRAGMA user_version`), so a fresh file and an old one both open.
//!
//! ```
//! use conclave_services::monitor::store::{NodeReport, Store};
//! let mut store = Store::open_in_memory().unwrap();
//! let report = NodeReport {
//!     node: "a".into(), address: "127.0.0.1:7001".into(), coordinator: Some("c".into()),
//!     group: 0, status: "Normal".into(), role: conclave_algorithms::Role::Follower,
//! };
//! let changed = store.insert_report(&report, 1_000).unwrap();
//! assert!(changed, "a node's first report is a role change");
//! assert_eq!(store.latest().unwrap()[0].report.coordinator.as_deref(), Some("c"));
//! ```

use conclave_algorithms::Role;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

/// The schema's version after every migration below has run.
const SCHEMA_VERSION: i64 = 1;

const MIGRATIONS: [&str; 1] = [
    // 1: the three tables.
    "CREATE TABLE reports (
        id INTEGER PRIMARY KEY,
        at_us INTEGER NOT NULL,
        node TEXT NOT NULL,
        address TEXT NOT NULL,
        coordinator TEXT,
        grp INTEGER NOT NULL,
        status TEXT NOT NULL,
        role TEXT NOT NULL
    );
    CREATE INDEX reports_by_node ON reports (node, id);
    CREATE TABLE roles (
        id INTEGER PRIMARY KEY,
        at_us INTEGER NOT NULL,
        node TEXT NOT NULL,
        role TEXT NOT NULL,
        coordinator TEXT,
        grp INTEGER NOT NULL,
        status TEXT NOT NULL
    );
    CREATE TABLE blocks (
        id INTEGER PRIMARY KEY,
        at_us INTEGER NOT NULL,
        source TEXT NOT NULL,
        pairs TEXT NOT NULL
    );",
];

/// What a node reports every second (`POST /api/report`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeReport {
    /// The node's member name.
    pub node: String,
    /// Where it listens (`host:port`).
    pub address: String,
    /// The coordinator it names, if any.
    pub coordinator: Option<String>,
    pub group: u64,
    /// Its algorithm's status word ("Normal", "Election", ...).
    pub status: String,
    pub role: Role,
}

/// A stored report and when it arrived (microseconds since the Unix epoch).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredReport {
    pub at_us: u64,
    #[serde(flatten)]
    pub report: NodeReport,
}

/// A change of a node's role or coordinator (or its first report).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RoleChange {
    pub at_us: u64,
    pub node: String,
    pub role: Role,
    pub coordinator: Option<String>,
    pub group: u64,
    pub status: String,
}

/// Two nodes whose link is blocked, in name order.
pub type Pair = (String, String);

/// One change of the block list: the whole list after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlockChange {
    pub at_us: u64,
    /// "api", "form" or "reset".
    pub source: String,
    pub pairs: Vec<Pair>,
}

/// An error of the database, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("monitor database: {doing}: {source}")]
pub struct StoreError {
    doing: &'static str,
    source: rusqlite::Error,
}

fn doing(what: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError {
        doing: what,
        source,
    }
}

/// The open database.
pub struct Store {
    db: Connection,
}

impl Store {
    /// Opens (or creates) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = Connection::open(path).map_err(doing("opening the file"))?;
        Store::migrate(db)
    }

    pub fn open_in_memory() -> Result<Store, StoreError> {
        let db = Connection::open_in_memory().map_err(doing("opening in memory"))?;
        Store::migrate(db)
    }

    fn migrate(db: Connection) -> Result<Store, StoreError> {
        db.pragma_update(None, "journal_mode", "WAL")
            .map_err(doing("setting WAL mode"))?;
        let version: i64 = db
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(doing("reading the schema version"))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            db.execute_batch(&format!(
                "BEGIN; {sql}; PRAGMA user_version = {}; COMMIT;",
                i + 1
            ))
            .map_err(doing("migrating the schema"))?;
        }
        debug_assert_eq!(MIGRATIONS.len() as i64, SCHEMA_VERSION);
        Ok(Store { db })
    }

    /// Stores a report; a first report, or one whose role or coordinator differs from the
    /// node's previous one, is also stored as a role change (returns true then).
    pub fn insert_report(&mut self, r: &NodeReport, at_us: u64) -> Result<bool, StoreError> {
        Ok(self.insert_reports(&[(r, at_us)])?[0])
    }

    /// Stores reports in order, in one transaction (one sync of the file for them all):
    /// whether each is a role change, as [`Store::insert_report`] says. Either all are
    /// stored or, on an error, none.
    pub fn insert_reports(
        &mut self,
        reports: &[(&NodeReport, u64)],
    ) -> Result<Vec<bool>, StoreError> {
        let tx = self.db.transaction().map_err(doing("starting a report"))?;
        let changed = reports
            .iter()
            .map(|(r, at_us)| insert_in(&tx, r, *at_us))
            .collect::<Result<Vec<bool>, StoreError>>()?;
        tx.commit().map_err(doing("committing a report"))?;
        Ok(changed)
    }

    /// Each node's last report, by name.
    pub fn latest(&self) -> Result<Vec<StoredReport>, StoreError> {
        self.reports(
            "SELECT at_us, node, address, coordinator, grp, status, role FROM reports
             WHERE id IN (SELECT MAX(id) FROM reports GROUP BY node) ORDER BY node",
            None,
        )
    }

    /// The last `limit` reports, oldest first.
    pub fn recent_reports(&self, limit: u64) -> Result<Vec<StoredReport>, StoreError> {
        self.reports(
            "SELECT * FROM (SELECT at_us, node, address, coordinator, grp, status, role, id
             FROM reports ORDER BY id DESC LIMIT ?1) ORDER BY id",
            Some(limit),
        )
    }

    fn reports(&self, sql: &str, limit: Option<u64>) -> Result<Vec<StoredReport>, StoreError> {
        let mut stmt = self.db.prepare(sql).map_err(doing("reading reports"))?;
        let row = |row: &rusqlite::Row| {
            Ok(StoredReport {
                at_us: row.get::<_, i64>(0)? as u64,
                report: NodeReport {
                    node: row.get(1)?,
                    address: row.get(2)?,
                    coordinator: row.get(3)?,
                    group: row.get::<_, i64>(4)? as u64,
                    status: row.get(5)?,
                    role: role_of(&row.get::<_, String>(6)?),
                },
            })
        };
        let rows = match limit {
            Some(n) => stmt.query_map([n as i64], row),
            None => stmt.query_map([], row),
        };
        rows.and_then(|rows| rows.collect())
            .map_err(doing("reading reports"))
    }

    /// Every role change, oldest first.
    pub fn roles(&self) -> Result<Vec<RoleChange>, StoreError> {
        let mut stmt = self
            .db
            .prepare("SELECT at_us, node, role, coordinator, grp, status FROM roles ORDER BY id")
            .map_err(doing("reading role changes"))?;
        let rows = stmt.query_map([], |row| {
            Ok(RoleChange {
                at_us: row.get::<_, i64>(0)? as u64,
                node: row.get(1)?,
                role: role_of(&row.get::<_, String>(2)?),
                coordinator: row.get(3)?,
                group: row.get::<_, i64>(4)? as u64,
                status: row.get(5)?,
            })
        });
        rows.and_then(|rows| rows.collect())
            .map_err(doing("reading role changes"))
    }

    /// Stores a new block list (the whole list) and where it came from.
    pub fn set_blocks(
        &mut self,
        pairs: &BTreeSet<Pair>,
        source: &str,
        at_us: u64,
    ) -> Result<(), StoreError> {
        let list: Vec<&Pair> = pairs.iter().collect();
        let json = serde_json::to_string(&list).expect("pairs of strings are JSON");
        self.db
            .execute(
                "INSERT INTO blocks (at_us, source, pairs) VALUES (?1, ?2, ?3)",
                params![at_us as i64, source, json],
            )
            .map_err(doing("storing the block list"))?;
        Ok(())
    }

    /// Every change of the block list, oldest first.
    pub fn block_history(&self) -> Result<Vec<BlockChange>, StoreError> {
        let mut stmt = self
            .db
            .prepare("SELECT at_us, source, pairs FROM blocks ORDER BY id")
            .map_err(doing("reading the block history"))?;
        let rows = stmt.query_map([], |row| {
            let json: String = row.get(2)?;
            Ok(BlockChange {
                at_us: row.get::<_, i64>(0)? as u64,
                source: row.get(1)?,
                pairs: serde_json::from_str(&json).unwrap_or_default(),
            })
        });
        rows.and_then(|rows| rows.collect())
            .map_err(doing("reading the block history"))
    }

    /// The block list now: the last one stored (empty if none was).
    pub fn blocks(&self) -> Result<BTreeSet<Pair>, StoreError> {
        let json: Option<String> = self
            .db
            .query_row(
                "SELECT pairs FROM blocks ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(doing("reading the block list"))?;
        let pairs: Vec<Pair> = json
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default();
        Ok(pairs.into_iter().collect())
    }
}

/// Stores one report inside `tx`: whether it is a role change.
fn insert_in(tx: &rusqlite::Transaction, r: &NodeReport, at_us: u64) -> Result<bool, StoreError> {
    let previous: Option<(String, Option<String>)> = tx
        .query_row(
            "SELECT role, coordinator FROM reports WHERE node = ?1 ORDER BY id DESC LIMIT 1",
            [&r.node],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(doing("reading the node's last report"))?;
    let role = role_name(r.role);
    tx.execute(
        "INSERT INTO reports (at_us, node, address, coordinator, grp, status, role)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            at_us as i64,
            r.node,
            r.address,
            r.coordinator,
            r.group as i64,
            r.status,
            role
        ],
    )
    .map_err(doing("storing a report"))?;
    let changed = previous.is_none_or(|(p_role, p_coord)| {
        p_role != role || p_coord.as_deref() != r.coordinator.as_deref()
    });
    if changed {
        tx.execute(
            "INSERT INTO roles (at_us, node, role, coordinator, grp, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                at_us as i64,
                r.node,
                role,
                r.coordinator,
                r.group as i64,
                r.status
            ],
        )
        .map_err(doing("storing a role change"))?;
    }
    Ok(changed)
}

/// The role's name as stored (serde's name).
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Idle => "Idle",
        Role::Candidate => "Candidate",
        Role::Follower => "Follower",
        Role::Leader => "Leader",
        Role::Service => "Service",
    }
}

fn role_of(name: &str) -> Role {
    match name {
        "Candidate" => Role::Candidate,
        "Follower" => Role::Follower,
        "Leader" => Role::Leader,
        "Service" => Role::Service,
        _ => Role::Idle,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(node: &str, coordinator: &str, role: Role) -> NodeReport {
        NodeReport {
            node: node.into(),
            address: "127.0.0.1:7001".into(),
            coordinator: Some(coordinator.into()),
            group: 0,
            status: "Normal".into(),
            role,
        }
    }

    /// One batch, read in order: a node's second report in it is compared with its first.
    #[test]
    fn a_batch_counts_role_changes_as_reports_one_at_a_time_would() {
        let mut store = Store::open_in_memory().unwrap();
        let (a1, b1) = (
            report("a", "c", Role::Follower),
            report("b", "c", Role::Follower),
        );
        let a2 = report("a", "c", Role::Follower);
        let a3 = report("a", "a", Role::Candidate);
        let batch = [(&a1, 1), (&b1, 2), (&a2, 3), (&a3, 4)];
        assert_eq!(
            store.insert_reports(&batch).unwrap(),
            [true, true, false, true]
        );
        let roles: Vec<(String, u64)> = store
            .roles()
            .unwrap()
            .into_iter()
            .map(|r| (r.node, r.at_us))
            .collect();
        assert_eq!(roles, [("a".into(), 1), ("b".into(), 2), ("a".into(), 4)]);
        let latest = store.latest().unwrap();
        assert_eq!(latest.len(), 2);
        assert_eq!(latest[0].report, a3);
        // The next batch continues from the stored ones.
        assert_eq!(
            store.insert_reports(&[(&a3, 5), (&b1, 6)]).unwrap(),
            [false, false]
        );
    }
}
