//! The flags around the algorithm that both node front ends take, `conclave-node` (members
//! from flags) and `conclave node` (members from a scenario): the cluster key, the role
//! hooks, the trace log, the block file and the monitor. Each front end flattens
//! [`RuntimeFlags`] into its own arguments, so the two spell, document and check them alike.
//!
//! ```
//! use clap::Parser;
//! use conclave_algorithms::net::flags::RuntimeFlags;
//!
//! #[derive(Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     runtime: RuntimeFlags,
//! }
//! let args = Args::parse_from(["node", "--on-leader", "echo lead", "--block-file", "b.txt"]);
//! assert_eq!(args.runtime.on_leader.as_deref(), Some("echo lead"));
//! assert_eq!(args.runtime.unsupported_by_lab(), Some("--block-file"));
//! ```

use crate::net::lab::LabConfig;
use crate::net::report::{temp_block_file, Monitor};
use crate::net::runtime::NodeConfig;
use crate::net::ClusterKey;
use crate::Algorithm;
use std::path::{Path, PathBuf};

/// The runtime's options around the algorithm.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RuntimeFlags {
    /// A file holding the cluster key (at least 16 bytes): every frame is authenticated.
    #[arg(long, value_name = "FILE")]
    pub cluster_key_file: Option<PathBuf>,
    /// A command (`sh -c`) started when this node becomes leader.
    #[arg(long, value_name = "CMD")]
    pub on_leader: Option<String>,
    /// A command (`sh -c`) started when this node becomes a follower.
    #[arg(long, value_name = "CMD")]
    pub on_follower: Option<String>,
    /// Where to write the trace log, one JSON object per event.
    #[arg(long, value_name = "FILE")]
    pub trace_log: Option<PathBuf>,
    /// A file of blocked links, `a b` a line (node names): messages between them are
    /// dropped both ways. Read again when it changes.
    #[arg(long, value_name = "FILE")]
    pub block_file: Option<PathBuf>,
    /// Report every view to the monitor at this URL each second, and take its block list.
    #[arg(long, value_name = "URL")]
    pub monitor: Option<String>,
    /// A file holding the monitor's token, sent as a bearer token.
    #[arg(long, value_name = "FILE", requires = "monitor")]
    pub monitor_token_file: Option<PathBuf>,
}

/// What [`RuntimeFlags`] name, read: the key, the monitor with its token, and the block file
/// the node reads.
pub struct RuntimeInputs {
    pub key: Option<ClusterKey>,
    pub monitor: Option<Monitor>,
    /// `--block-file`, or with `--monitor` alone a file of ours for the monitor's list.
    pub block_file: Option<PathBuf>,
    /// Removes that file of ours when dropped: keep it until the node has stopped.
    pub temp: Option<TempFile>,
}

/// A file of this process, removed when this is dropped.
pub struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl RuntimeFlags {
    /// The first of the flags given that `--wire lab` does not support (the lab's pickles
    /// carry no tag, and its nodes neither report to a monitor nor read a block list).
    pub fn unsupported_by_lab(&self) -> Option<&'static str> {
        [
            (self.cluster_key_file.is_some(), "--cluster-key-file"),
            (self.block_file.is_some(), "--block-file"),
            (self.monitor.is_some(), "--monitor"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }

    /// Reads the key and the monitor's token. An error names the flag and the file.
    pub fn read(&self) -> Result<RuntimeInputs, String> {
        let key = match &self.cluster_key_file {
            Some(path) => Some(ClusterKey::load(path).map_err(|e| e.to_string())?),
            None => None,
        };
        let monitor = match &self.monitor {
            Some(url) => Some(Monitor::new(
                url,
                read_token(self.monitor_token_file.as_deref(), "--monitor-token-file")?,
            )),
            None => None,
        };
        let temp = match (&monitor, &self.block_file) {
            (Some(_), None) => Some(TempFile(temp_block_file())),
            _ => None,
        };
        let block_file = self
            .block_file
            .clone()
            .or_else(|| temp.as_ref().map(|t| t.0.clone()));
        Ok(RuntimeInputs {
            key,
            monitor,
            block_file,
            temp,
        })
    }

    /// Gives a node's configuration the trace log and the hooks (the key and the block file
    /// come from [`RuntimeFlags::read`]: see [`RuntimeInputs::configure`]).
    pub fn configure_lab(&self, config: &mut LabConfig) {
        config.trace_log = self.trace_log.clone();
        config.on_leader = self.on_leader.clone();
        config.on_follower = self.on_follower.clone();
    }
}

impl RuntimeInputs {
    /// Gives a node's configuration the key (taken from here), the block file, the trace log
    /// and the hooks.
    pub fn configure<A: Algorithm>(&mut self, flags: &RuntimeFlags, config: &mut NodeConfig<A>) {
        config.key = self.key.take();
        config.block_file = self.block_file.clone();
        config.trace_log = flags.trace_log.clone();
        config.on_leader = flags.on_leader.clone();
        config.on_follower = flags.on_follower.clone();
    }
}

/// The token in the file at `path`, if one is given: its content less a trailing `\n` or
/// `\r\n`. `flag` names the flag in an error, and an empty token is one.
pub fn read_token(path: Option<&Path>, flag: &str) -> Result<Option<String>, String> {
    let Some(path) = path else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {flag} {}: {e}", path.display()))?;
    let token = text.trim_end_matches(['\n', '\r']).to_string();
    if token.is_empty() {
        return Err(format!("{flag} {} is empty", path.display()));
    }
    Ok(Some(token))
}
