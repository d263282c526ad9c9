//! Seed 002's central log server, as a service of its own: every voter reports its state to
//! it at a fixed interval, and it keeps each reporter's last report (the table its web page
//! shows). It is the same for every algorithm, so it is not part of one: the simulator's
//! world sends each running voter's [`Report`] over the simulated network, and real nodes
//! send the same message to a real server.
//!
//! ```
//! use conclave_algorithms::logserver::{LogServer, Report};
//! use conclave_algorithms::{Pid, Role, Time, View};
//!
//! let mut server = LogServer::default();
//! let view = View::new(Role::Follower, Some(Pid(3)), "Normal");
//! server.on_report(Pid(1), Report::of(&view), Time(2_000_000));
//! let row = &server.table()[&Pid(1)];
//! assert_eq!((row.report.coordinator, &*row.report.status), (Some(Pid(3)), "Normal"));
//! assert_eq!(row.received, Time(2_000_000));
//! ```

use crate::{Pid, Time, View};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// What a node reports: the coordinator it names, its group, its algorithm's status.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Report {
    pub coordinator: Option<Pid>,
    pub group: u64,
    /// Borrowed from the view when the report is made; owned when it was decoded.
    pub status: Cow<'static, str>,
}

impl Report {
    /// The report of a node that holds `view`.
    pub fn of(view: &View) -> Self {
        Report {
            coordinator: view.leader,
            group: view.group,
            status: Cow::Borrowed(view.status),
        }
    }
}

/// One row of the server's table: a node's last report and when it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRow {
    pub report: Report,
    pub received: Time,
}

/// The server's state: each reporter's last report, by process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogServer {
    table: BTreeMap<Pid, LogRow>,
}

impl LogServer {
    /// A report from `from` arrives at `now`: it replaces that node's row.
    pub fn on_report(&mut self, from: Pid, report: Report, now: Time) {
        self.table.insert(
            from,
            LogRow {
                report,
                received: now,
            },
        );
    }
    /// Every reporter's last report, in process order.
    pub fn table(&self) -> &BTreeMap<Pid, LogRow> {
        &self.table
    }
}
