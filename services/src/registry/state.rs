//! The registry's state: registered instances, their checks' statuses, and the index that
//! blocking queries wait on. Kept in `BTreeMap`s so every answer lists in a stable order.
//!
//! Every change (register, deregister, a check's status or output) takes the next index; a
//! service name remembers the index of its last change, which is the `X-Consul-Index` of its
//! health and catalog answers.
//!
//! ```
//! use conclave_services::registry::state::Catalog;
//! use conclave_services::registry::wire::parse_registration;
//! let mut catalog = Catalog::default();
//! catalog.register(parse_registration(br#"{"Name": "web"}"#).unwrap());
//! assert_eq!(catalog.service_index("web"), 2);
//! ```

use super::wire::{CheckDef, Registration, Status};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The node every instance is registered on: this registry, as a Consul agent is the node of
/// the services registered with it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub name: String,
    pub address: String,
    pub datacenter: String,
}

/// A check and what it last found.
#[derive(Debug, Clone)]
pub struct CheckState {
    pub def: CheckDef,
    pub service_id: String,
    pub status: Status,
    pub output: String,
    /// When the check went critical, for `DeregisterCriticalServiceAfter`.
    pub critical_since: Option<Instant>,
    /// For a TTL check: critical if no pass comes before this.
    pub ttl_deadline: Option<Instant>,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Debug, Clone)]
pub struct Instance {
    pub reg: Registration,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Debug)]
pub struct Catalog {
    index: u64,
    instances: BTreeMap<String, Instance>,
    checks: BTreeMap<String, CheckState>,
    /// Service name -> index of its last change (kept after its last instance leaves).
    service_indexes: BTreeMap<String, u64>,
}

impl Default for Catalog {
    /// Starts at index 1: Consul never answers `X-Consul-Index: 0`.
    fn default() -> Self {
        Catalog {
            index: 1,
            instances: BTreeMap::new(),
            checks: BTreeMap::new(),
            service_indexes: BTreeMap::new(),
        }
    }
}

impl Catalog {
    /// The index of the last change of anything.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The index of the last change of this service's instances or checks; for a name never
    /// registered, 0 for waiting (any registration of it is news) and the global index for
    /// the header (see `service_header_index`).
    pub fn service_index(&self, name: &str) -> u64 {
        self.service_indexes.get(name).copied().unwrap_or(0)
    }

    pub fn service_header_index(&self, name: &str) -> u64 {
        self.service_indexes
            .get(name)
            .copied()
            .unwrap_or(self.index)
    }

    fn bump(&mut self, service: &str) -> u64 {
        self.index += 1;
        self.service_indexes.insert(service.to_string(), self.index);
        self.index
    }

    /// Adds or replaces an instance (and its checks); returns the ids of the checks it had.
    /// A check registered again unchanged keeps what it last found (and a TTL check its
    /// deadline), so a node that re-registers itself does not flap out of `?passing`.
    pub fn register(&mut self, reg: Registration) -> Vec<String> {
        let before: BTreeMap<String, CheckState> = self.checks_of_id(&reg.id);
        let old_checks = self.deregister(&reg.id).unwrap_or_default();
        let index = self.bump(&reg.name);
        let now = Instant::now();
        for def in &reg.checks {
            let state = match before.get(&def.id) {
                Some(old) if old.def == *def => CheckState {
                    modify_index: index,
                    ..old.clone()
                },
                _ => CheckState {
                    def: def.clone(),
                    service_id: reg.id.clone(),
                    status: def.status,
                    output: String::new(),
                    critical_since: (def.status == Status::Critical).then_some(now),
                    ttl_deadline: match def.kind {
                        super::wire::CheckKind::Ttl(ttl) => Some(now + ttl),
                        _ => None,
                    },
                    create_index: index,
                    modify_index: index,
                },
            };
            self.checks.insert(def.id.clone(), state);
        }
        let id = reg.id.clone();
        let instance = Instance {
            reg,
            create_index: index,
            modify_index: index,
        };
        self.instances.insert(id, instance);
        old_checks
    }

    fn checks_of_id(&self, id: &str) -> BTreeMap<String, CheckState> {
        let Some(instance) = self.instances.get(id) else {
            return BTreeMap::new();
        };
        self.checks_of(instance)
            .map(|c| (c.def.id.clone(), c.clone()))
            .collect()
    }

    /// Removes an instance and its checks; returns the removed check ids, None if unknown.
    pub fn deregister(&mut self, id: &str) -> Option<Vec<String>> {
        let instance = self.instances.remove(id)?;
        self.bump(&instance.reg.name);
        let ids: Vec<String> = instance.reg.checks.iter().map(|c| c.id.clone()).collect();
        for c in &ids {
            self.checks.remove(c);
        }
        Some(ids)
    }

    pub fn check(&self, id: &str) -> Option<&CheckState> {
        self.checks.get(id)
    }

    /// Records a check's result; takes an index (wakes blocking queries) only on a change.
    pub fn set_check(&mut self, id: &str, status: Status, output: String) -> bool {
        let Some(check) = self.checks.get(id) else {
            return false;
        };
        if check.status == status && check.output == output {
            return true;
        }
        let service = self.instances[&check.service_id].reg.name.clone();
        let index = self.bump(&service);
        let check = self.checks.get_mut(id).expect("looked up above");
        if status == Status::Critical {
            check.critical_since.get_or_insert_with(Instant::now);
        } else {
            check.critical_since = None;
        }
        check.status = status;
        check.output = output;
        check.modify_index = index;
        true
    }

    /// A TTL check's pass, warn or fail: its deadline moves one TTL ahead.
    pub fn update_ttl(&mut self, id: &str, status: Status, note: String) -> Result<(), String> {
        let Some(check) = self.checks.get_mut(id) else {
            return Err(format!(
                "Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name."
            ));
        };
        let super::wire::CheckKind::Ttl(ttl) = check.def.kind else {
            return Err(format!("CheckID {id:?} does not have associated TTL"));
        };
        check.ttl_deadline = Some(Instant::now() + ttl);
        self.set_check(id, status, note);
        Ok(())
    }

    /// TTL checks past their deadline: (id, deadline). The runner marks them critical.
    pub fn ttl_deadlines(&self) -> Vec<(String, Instant)> {
        self.checks
            .iter()
            .filter_map(|(id, c)| c.ttl_deadline.map(|d| (id.clone(), d)))
            .collect()
    }

    /// Instances whose check has been critical longer than its DeregisterCriticalServiceAfter.
    pub fn critical_too_long(&self, now: Instant) -> Vec<String> {
        let ids: std::collections::BTreeSet<String> = self
            .checks
            .values()
            .filter(
                |c| match (c.critical_since, c.def.deregister_critical_after) {
                    (Some(since), Some(after)) => now.duration_since(since) >= after,
                    _ => false,
                },
            )
            .map(|c| c.service_id.clone())
            .collect();
        ids.into_iter().collect()
    }

    fn instances_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Instance> + 'a {
        self.instances.values().filter(move |i| i.reg.name == name)
    }

    fn checks_of<'a>(&'a self, instance: &'a Instance) -> impl Iterator<Item = &'a CheckState> {
        instance
            .reg
            .checks
            .iter()
            .filter_map(|c| self.checks.get(&c.id))
    }

    /// `GET /v1/health/service/:name`: one entry per instance, in id order; with `passing`,
    /// only instances whose every check passes (warning and critical ones are left out).
    pub fn health_json(&self, name: &str, passing: bool, node: &NodeInfo) -> Value {
        let entries: Vec<Value> = self
            .instances_of(name)
            .filter(|i| !passing || self.checks_of(i).all(|c| c.status == Status::Passing))
            .map(|i| {
                let mut checks = vec![serf_health(node)];
                checks.extend(self.checks_of(i).map(|c| check_json(c, &i.reg, node)));
                json!({
                    "Node": node_json(node),
                    "Service": service_json(i),
                    "Checks": checks,
                })
            })
            .collect();
        Value::Array(entries)
    }

    /// `GET /v1/catalog/service/:name`: every instance, whatever its checks say.
    pub fn catalog_service_json(&self, name: &str, node: &NodeInfo) -> Value {
        let entries: Vec<Value> = self
            .instances_of(name)
            .map(|i| {
                json!({
                    "ID": "",
                    "Node": node.name,
                    "Address": node.address,
                    "Datacenter": node.datacenter,
                    "TaggedAddresses": tagged_addresses(node),
                    "NodeMeta": {},
                    "ServiceKind": "",
                    "ServiceID": i.reg.id,
                    "ServiceName": i.reg.name,
                    "ServiceTags": i.reg.tags,
                    "ServiceAddress": i.reg.address,
                    "ServiceMeta": i.reg.meta,
                    "ServicePort": i.reg.port,
                    "ServiceWeights": {"Passing": 1, "Warning": 1},
                    "ServiceEnableTagOverride": false,
                    "CreateIndex": i.create_index,
                    "ModifyIndex": i.modify_index,
                })
            })
            .collect();
        Value::Array(entries)
    }

    /// `GET /v1/catalog/services`: each service name with the union of its instances' tags.
    pub fn catalog_services_json(&self) -> Value {
        let mut services: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for i in self.instances.values() {
            let tags = services.entry(&i.reg.name).or_default();
            for t in &i.reg.tags {
                if !tags.contains(&t.as_str()) {
                    tags.push(t);
                }
            }
        }
        json!(services)
    }
}

fn tagged_addresses(node: &NodeInfo) -> Value {
    json!({"lan": node.address, "wan": node.address})
}

fn node_json(node: &NodeInfo) -> Value {
    json!({
        "ID": "",
        "Node": node.name,
        "Address": node.address,
        "Datacenter": node.datacenter,
        "TaggedAddresses": tagged_addresses(node),
        "Meta": {},
        "CreateIndex": 1,
        "ModifyIndex": 1,
    })
}

fn service_json(i: &Instance) -> Value {
    json!({
        "ID": i.reg.id,
        "Service": i.reg.name,
        "Tags": i.reg.tags,
        "Address": i.reg.address,
        "Meta": i.reg.meta,
        "Port": i.reg.port,
        "Weights": {"Passing": 1, "Warning": 1},
        "EnableTagOverride": false,
        "CreateIndex": i.create_index,
        "ModifyIndex": i.modify_index,
    })
}

/// The node's own check, which Consul lists with every service's checks.
fn serf_health(node: &NodeInfo) -> Value {
    json!({
        "Node": node.name,
        "CheckID": "serfHealth",
        "Name": "Serf Health Status",
        "Status": "passing",
        "Notes": "",
        "Output": "Agent alive and reachable",
        "ServiceID": "",
        "ServiceName": "",
        "ServiceTags": [],
        "Type": "",
        "CreateIndex": 1,
        "ModifyIndex": 1,
    })
}

fn check_json(c: &CheckState, reg: &Registration, node: &NodeInfo) -> Value {
    json!({
        "Node": node.name,
        "CheckID": c.def.id,
        "Name": c.def.name,
        "Status": c.status.as_str(),
        "Notes": c.def.notes,
        "Output": c.output,
        "ServiceID": reg.id,
        "ServiceName": reg.name,
        "ServiceTags": reg.tags,
        "Type": c.def.kind.type_name(),
        "Interval": go_duration(c.def.interval),
        "Timeout": go_duration(c.def.timeout),
        "CreateIndex": c.create_index,
        "ModifyIndex": c.modify_index,
    })
}

/// A duration as Go prints it, for the fields Consul echoes ("10s", "1.5s", "1m30s").
fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 != 0 || ms < 1000 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}
