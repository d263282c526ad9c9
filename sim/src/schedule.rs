//! Timed schedules: a run written out as the steps the world took, each with its virtual
//! time, in the order they happened.
//!
//! A schedule is what ties the explorer to the simulator. Every counterexample the explorer
//! finds under `Bounded` timing carries one; `conclave replay` hands it to the simulator's
//! scripted mode ([`crate::world::World::scripted`]), which carries out each step with its
//! own code and refuses any step the simulator could not have taken (a message delivered
//! later than the maximum delay after it was sent, a timer fired before or after its due
//! time, a timer left unfired past its due time, FIFO order broken). The other way round, a
//! world running on its own can log the steps it takes, and the explorer can follow such a
//! log through its state graph (see `explore::Model::follow`).
//!
//! Steps name processes by name and messages and timers by their printed form (as in a
//! trace), so a schedule reads like a log and can be edited by hand. A message is named by
//! its sender, receiver, content and the time it was sent: two messages alike in all four
//! cannot be told apart by anything, so it does not matter which of them a step takes.
//!
//! ```
//! use conclave_sim::schedule::{Packet, Step, Timed};
//! let step = Timed {
//!     at_us: 150_000,
//!     step: Step::Deliver(Packet { from: "n1".into(), to: "n2".into(), msg: "Ok".into(), sent_us: 100_000 }),
//! };
//! let json = serde_json::to_string(&step).unwrap();
//! assert_eq!(json, r#"{"at_us":150000,"step":{"deliver":{"from":"n1","to":"n2","msg":"Ok","sent_us":100000}}}"#);
//! assert_eq!(step.to_string(), "t=150ms deliver n1 -> n2 Ok (sent at 100ms)");
//! ```

use conclave_algorithms::Time;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One message in flight, as a step names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packet {
    pub from: String,
    pub to: String,
    /// The message as a trace prints it.
    pub msg: String,
    /// When it was sent (µs of virtual time).
    pub sent_us: u64,
}

/// What happens at one step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The message arrives.
    Deliver(Packet),
    /// The network loses the message.
    Lose(Packet),
    /// The network duplicates the message: a copy follows the original on its link.
    Duplicate(Packet),
    /// The failure detector's notice to `observer` about `about`, sent at a change at
    /// `changed_us`, arrives: the observer is told its verdict (`about` is suspected, or
    /// trusted again).
    Notice {
        observer: String,
        about: String,
        suspected: bool,
        changed_us: u64,
    },
    /// A timer of `node` fires (named as a trace prints it).
    Timer {
        node: String,
        timer: String,
    },
    Crash {
        node: String,
    },
    Restart {
        node: String,
    },
    Pause {
        node: String,
    },
    Resume {
        node: String,
    },
    Leave {
        node: String,
    },
    /// The network splits into these groups (unlisted processes form one more group).
    Partition {
        groups: Vec<Vec<String>>,
    },
    Block {
        a: String,
        b: String,
    },
    Unblock {
        a: String,
        b: String,
    },
    Heal,
}

/// A step and the virtual time it happens at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timed {
    pub at_us: u64,
    pub step: Step,
}

impl Step {
    /// Whether the step is a fault (not a delivery, notice or timer).
    pub fn is_fault(&self) -> bool {
        !matches!(
            self,
            Step::Deliver(_) | Step::Notice { .. } | Step::Timer { .. }
        )
    }
}

impl fmt::Display for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {} {} (sent at {})",
            self.from,
            self.to,
            self.msg,
            Time(self.sent_us)
        )
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Deliver(p) => write!(f, "deliver {p}"),
            Step::Lose(p) => write!(f, "lose {p}"),
            Step::Duplicate(p) => write!(f, "duplicate {p}"),
            Step::Notice {
                observer,
                about,
                suspected,
                changed_us,
            } => write!(
                f,
                "notice to {observer}: {about} {} (change at {})",
                if *suspected { "suspected" } else { "trusted" },
                Time(*changed_us)
            ),
            Step::Timer { node, timer } => write!(f, "timer {timer} of {node}"),
            Step::Crash { node } => write!(f, "crash {node}"),
            Step::Restart { node } => write!(f, "restart {node}"),
            Step::Pause { node } => write!(f, "pause {node}"),
            Step::Resume { node } => write!(f, "resume {node}"),
            Step::Leave { node } => write!(f, "leave {node}"),
            Step::Partition { groups } => write!(f, "partition {groups:?}"),
            Step::Block { a, b } => write!(f, "block {a} {b}"),
            Step::Unblock { a, b } => write!(f, "unblock {a} {b}"),
            Step::Heal => write!(f, "heal"),
        }
    }
}

impl fmt::Display for Timed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t={} {}", Time(self.at_us), self.step)
    }
}

/// Why the simulator refused a schedule: the step (0-based) and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("step {} ({step}): {why}", .index + 1)]
pub struct Refused {
    pub index: usize,
    pub step: Timed,
    pub why: String,
}
