//! A `container` resource's replica set: finding its members (by the ids
//! recorded and by their marker labels, so a crash in the middle of an update
//! leaves nothing unaccounted for), reading them back as one value, and
//! converging them on the planned settings one replica at a time (rolling) or
//! a whole new set at once (blue-green).

use std::collections::BTreeMap;

use bollard::Docker;
use futures_util::future::join_all;
use infra_core::{OperationContext, ProviderError, Value};

use crate::container::{self, Replica, Strategy, replica_name, replicas};
use crate::proxy::Proxy;
use crate::util::{Observed, REPLICA, REVISION, Scope, docker_error, str_list};

/// What refresh reports when the members were made from different settings
/// (an update cut short): any planned revision differs from it, so the next
/// apply finishes the job.
const MIXED: &str = "mixed";

/// One existing container of the set.
#[derive(Clone, Debug)]
pub struct Member {
    pub id: String,
    pub name: String,
    pub slot: Option<usize>,
    pub revision: Option<String>,
    pub running: bool,
}

impl Member {
    fn from_observed(o: &Observed) -> Member {
        let text = |k: &str| o.value.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        Member {
            id: o.id().to_string(),
            name: text("name"),
            slot: o.labels.get(REPLICA).and_then(|s| s.parse().ok()),
            revision: o.labels.get(REVISION).cloned(),
            running: o.value.get("running").and_then(Value::as_bool).unwrap_or(false),
        }
    }
}

/// The ids a state value records: `ids`, and `id` for states that predate replicas.
fn recorded_ids(state: &Value) -> Vec<String> {
    let mut ids = str_list(state, "ids").unwrap_or_default();
    if let Some(id) = state.get("id").and_then(Value::as_str)
        && !ids.iter().any(|i| i == id)
    {
        ids.push(id.to_string());
    }
    ids
}

/// The observed containers that belong to this resource, in replica order.
fn belonging<'a>(
    lineage: &str,
    address: &str,
    recorded: &Value,
    observed: impl Iterator<Item = &'a Observed>,
) -> Vec<&'a Observed> {
    let ids = recorded_ids(recorded);
    let mut members: Vec<&Observed> = observed
        .filter(|o| !crate::proxy::is_proxy(o))
        .filter(|o| o.made_for(lineage, address) || ids.iter().any(|i| i == o.id()))
        .collect();
    members.sort_by_key(|o| (Member::from_observed(o).slot.unwrap_or(usize::MAX), o.id().to_string()));
    members
}

/// Refresh: the recorded value with what the members show laid over it, or
/// `None` when none is left. `replicas` counts the members made from the
/// recorded settings; `running` says whether all of them run.
pub fn gather<'a>(
    lineage: &str,
    address: &str,
    recorded: &Value,
    observed: impl Iterator<Item = &'a Observed>,
) -> Option<Value> {
    let members = belonging(lineage, address, recorded, observed);
    let revision = recorded.get("revision").and_then(Value::as_str);
    let current: Vec<&Observed> =
        members.iter().copied().filter(|o| Member::from_observed(o).revision.as_deref() == revision).collect();
    let first = current.first().or(members.first())?;
    let mut value = container::reconcile(recorded, &crate::proxy::without_edge(recorded, &first.value));
    let expected_name = replica_name(recorded, Member::from_observed(first).slot.unwrap_or(1));
    if first.value.get("name").and_then(Value::as_str) == Some(expected_name.as_str()) {
        value.set("name", recorded.get("name").cloned().unwrap_or(Value::Null));
    }
    let ids = current.iter().map(|o| Value::string(o.id())).collect();
    value.set("ids", Value::List(ids));
    value.set("replicas", Value::Number(current.len() as f64));
    let running = !current.is_empty() && current.iter().all(|o| Member::from_observed(o).running);
    value.set("running", Value::Bool(running));
    if current.len() != members.len() {
        value.set("revision", Value::string(MIXED));
    } else {
        value.set("revision", recorded.get("revision").cloned().unwrap_or(Value::Null));
    }
    Some(value)
}

/// Every container of this resource that exists now.
async fn members(docker: &Docker, ctx: &OperationContext, recorded: &Value) -> Result<Vec<Member>, ProviderError> {
    let all = container::list(docker, Scope::All).await?;
    let address = ctx.address.to_string();
    Ok(belonging(&ctx.lineage, &address, recorded, all.values()).into_iter().map(Member::from_observed).collect())
}

/// Creates the whole set from nothing, the replicas started together.
pub async fn create(
    docker: &Docker,
    ctx: &OperationContext,
    planned: &Value,
    proxy_base: &str,
) -> Result<Value, ProviderError> {
    converge(docker, ctx, &Value::Null, planned, proxy_base).await
}

/// Brings the existing members to the planned settings and count. Members
/// already made from the planned revision stay; the others are replaced as the
/// update strategy says. Behind infra's proxy, a new replica takes
/// connections before an old one leaves. Safe to run again after it was cut short.
pub async fn converge(
    docker: &Docker,
    ctx: &OperationContext,
    prior: &Value,
    planned: &Value,
    proxy_base: &str,
) -> Result<Value, ProviderError> {
    let hold = crate::rollback::Hold::Exactly { kept: &ctx.kept, running: planned };
    crate::rollback::hold_images(docker, planned, hold).await?;
    let members = members(docker, ctx, prior).await?;
    let revision = planned.get("revision").and_then(Value::as_str).map(str::to_string);
    let mut plan = SetPlan::new(replicas(planned), members, revision.as_deref());
    let proxy = if crate::publish::proxied(planned) {
        // Members made before the proxy hold its ports: they go first.
        if !plan.stale.is_empty() && prior.get("proxy").and_then(Value::as_bool) != Some(true) {
            for old in std::mem::take(&mut plan.stale) {
                retire(docker, None, &old).await?;
            }
        }
        Some(crate::proxy::ensure(docker, ctx, planned, proxy_base).await?)
    } else {
        // The ports first; the network once its replicas are gone (below).
        crate::proxy::remove_container(docker, ctx, planned).await?;
        None
    };
    let proxy = proxy.as_ref();
    let ids = match Strategy::of(planned)? {
        Strategy::BlueGreen if !plan.missing().is_empty() && !plan.stale.is_empty() => {
            blue_green(docker, ctx, planned, &mut plan, proxy).await?
        }
        _ => rolling(docker, ctx, planned, &mut plan, proxy).await?,
    };
    for old in &plan.stale {
        retire(docker, proxy, old).await?;
    }
    if proxy.is_none() {
        crate::proxy::remove_network(docker, ctx, planned).await?;
    }
    if !should_run(planned) {
        for m in plan.keep.values().filter(|m| m.running) {
            container::stop(docker, &m.id, &m.name).await?;
        }
    }
    let image_id = match ids.first() {
        Some(first) => container::image_id(docker, first).await?,
        None => Value::Null,
    };
    let mut state = with_ids(planned, ids);
    state.set("image_id", image_id);
    Ok(state)
}

/// Which members stay in which slot, and which are to go.
struct SetPlan {
    count: usize,
    /// Slot (1-based) → a member made from the planned revision.
    keep: BTreeMap<usize, Member>,
    /// Members of another revision, extra members, and members past the count.
    stale: Vec<Member>,
}

impl SetPlan {
    fn new(count: usize, members: Vec<Member>, revision: Option<&str>) -> SetPlan {
        let mut keep = BTreeMap::new();
        let mut stale = Vec::new();
        let mut unplaced = Vec::new();
        for m in members {
            let current = m.revision.as_deref() == revision;
            match m.slot {
                Some(slot) if current && slot <= count && !keep.contains_key(&slot) => {
                    keep.insert(slot, m);
                }
                _ if current => unplaced.push(m),
                _ => stale.push(m),
            }
        }
        // A current member without a free slot of its own (imported, or from
        // a larger set) fills a gap before anything new is made.
        for m in unplaced {
            match (1..=count).find(|s| !keep.contains_key(s)) {
                Some(slot) => {
                    keep.insert(slot, m);
                }
                None => stale.push(m),
            }
        }
        SetPlan { count, keep, stale }
    }

    fn missing(&self) -> Vec<usize> {
        (1..=self.count).filter(|s| !self.keep.contains_key(s)).collect()
    }

    /// The stale member a new replica in `slot` replaces: the one that held the
    /// slot, else any.
    fn take_stale_for(&mut self, slot: usize) -> Option<Member> {
        let index = self.stale.iter().position(|m| m.slot == Some(slot)).or(if self.stale.is_empty() {
            None
        } else {
            Some(0)
        })?;
        Some(self.stale.remove(index))
    }
}

/// One slot at a time: the new replica is created and healthy before the one
/// it replaces stops, so the set never has fewer healthy members than before.
async fn rolling(
    docker: &Docker,
    ctx: &OperationContext,
    planned: &Value,
    plan: &mut SetPlan,
    proxy: Option<&Proxy>,
) -> Result<Vec<String>, ProviderError> {
    settle_kept(docker, planned, plan, proxy).await?;
    // Nothing old to step around: start every missing replica together.
    if plan.stale.is_empty() {
        let made = start_all(docker, ctx, planned, &plan.missing(), true).await?;
        admit_all(docker, planned, proxy, &made).await?;
        return Ok(slot_ids(plan, made));
    }
    let mut made = Vec::new();
    for slot in plan.missing() {
        let old = plan.take_stale_for(slot);
        let replica = Replica { slot, name: replica_name(planned, slot), aliases: true };
        let moved = match &old {
            Some(old) => step_aside(docker, old, &replica.name).await?,
            None => false,
        };
        let created = match container::create_replica(docker, ctx, planned, &replica).await {
            Ok(id) => admitted(docker, proxy, id, &replica.name).await,
            Err(e) => Err(e),
        };
        match created {
            Ok(id) => made.push((slot, id)),
            Err(e) => {
                if let Some(old) = old.as_ref().filter(|_| moved) {
                    step_back(docker, old).await;
                }
                return Err(e);
            }
        }
        if let Some(old) = old {
            retire(docker, proxy, &old).await?;
        }
    }
    Ok(slot_ids(plan, made))
}

/// A new replica put behind the proxy; one the proxy never sees up is removed.
async fn admitted(docker: &Docker, proxy: Option<&Proxy>, id: String, name: &str) -> Result<String, ProviderError> {
    let Some(proxy) = proxy else { return Ok(id) };
    match proxy.admit(docker, &id, name).await {
        Ok(()) => Ok(id),
        Err(e) => {
            let _ = container::remove(docker, &id).await;
            Err(e)
        }
    }
}

/// Puts replicas just made behind the proxy; if one never shows up there,
/// all of them are removed again, as when one fails to start.
async fn admit_all(
    docker: &Docker,
    planned: &Value,
    proxy: Option<&Proxy>,
    made: &[(usize, String)],
) -> Result<(), ProviderError> {
    let Some(proxy) = proxy else { return Ok(()) };
    for (slot, id) in made {
        if let Err(e) = proxy.admit(docker, id, &replica_name(planned, *slot)).await {
            for (_, id) in made {
                let _ = container::remove(docker, id).await;
            }
            return Err(e);
        }
    }
    Ok(())
}

/// The whole new set is started without the network aliases, and only once
/// every new replica is healthy do the aliases move to it and the old set stop.
async fn blue_green(
    docker: &Docker,
    ctx: &OperationContext,
    planned: &Value,
    plan: &mut SetPlan,
    proxy: Option<&Proxy>,
) -> Result<Vec<String>, ProviderError> {
    settle_kept(docker, planned, plan, proxy).await?;
    let missing = plan.missing();
    let mut moved = Vec::new();
    for slot in &missing {
        let name = replica_name(planned, *slot);
        for old in plan.stale.iter().filter(|m| m.name == name) {
            if step_aside(docker, old, &name).await? {
                moved.push(old.clone());
            }
        }
    }
    let made = match start_all(docker, ctx, planned, &missing, false).await {
        Ok(made) => made,
        Err(e) => {
            for old in &moved {
                step_back(docker, old).await;
            }
            return Err(e);
        }
    };
    if let Err(e) = admit_all(docker, planned, proxy, &made).await {
        for old in &moved {
            step_back(docker, old).await;
        }
        return Err(e);
    }
    let networks = str_list(planned, "networks").unwrap_or_default();
    for (slot, id) in &made {
        let name = replica_name(planned, *slot);
        for network in &networks {
            let _ = docker
                .disconnect_network(
                    network,
                    bollard::models::NetworkDisconnectRequest { container: id.clone(), force: Some(true) },
                )
                .await;
            container::connect(docker, id, &name, network, planned, true).await?;
        }
    }
    Ok(slot_ids(plan, made))
}

/// Members that stay: named as their slot says and running.
async fn settle_kept(
    docker: &Docker,
    planned: &Value,
    plan: &mut SetPlan,
    proxy: Option<&Proxy>,
) -> Result<(), ProviderError> {
    let mut vanished = Vec::new();
    for (slot, m) in &plan.keep {
        let name = replica_name(planned, *slot);
        if m.name != name {
            // Step aside whatever holds the name (a stale member) first.
            for old in plan.stale.iter().filter(|o| o.name == name) {
                step_aside(docker, old, &name).await?;
            }
            rename(docker, &m.id, &m.name, &name).await?;
        }
        if should_run(planned) && !m.running {
            if !container::start_if_present(docker, &m.id, &name).await? {
                vanished.push(*slot);
                continue;
            }
            if let Ok(Some(check)) = crate::health::check(planned) {
                crate::health::wait_healthy(docker, &m.id, &name, check.deadline).await?;
            }
        }
        // Behind the proxy already, or made before it was (re)started.
        if let Some(proxy) = proxy.filter(|_| should_run(planned)) {
            proxy.admit(docker, &m.id, &name).await?;
        }
    }
    // Their slots count as missing: made anew like any other.
    for slot in vanished {
        plan.keep.remove(&slot);
    }
    Ok(())
}

/// Creates the replicas of `slots` concurrently; if any fails, the others made
/// here are removed again, so the set is as it was.
async fn start_all(
    docker: &Docker,
    ctx: &OperationContext,
    planned: &Value,
    slots: &[usize],
    aliases: bool,
) -> Result<Vec<(usize, String)>, ProviderError> {
    let replicas: Vec<Replica> =
        slots.iter().map(|&slot| Replica { slot, name: replica_name(planned, slot), aliases }).collect();
    let results = join_all(replicas.iter().map(|r| container::create_replica(docker, ctx, planned, r))).await;
    let mut made = Vec::new();
    let mut first_error = None;
    for (replica, result) in replicas.iter().zip(results) {
        match result {
            Ok(id) => made.push((replica.slot, id)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        for (_, id) in &made {
            let _ = container::remove(docker, id).await;
        }
        return Err(e);
    }
    Ok(made)
}

/// Renames `old` out of the way of a new replica that takes its name, the way
/// docker compose does (`SHORTID_NAME`). Says whether it had to.
async fn step_aside(docker: &Docker, old: &Member, name: &str) -> Result<bool, ProviderError> {
    if old.name != name {
        return Ok(false);
    }
    rename(docker, &old.id, &old.name, &aside_name(old)).await?;
    Ok(true)
}

/// Undoes [`step_aside`] after the new replica failed: the old one keeps serving.
async fn step_back(docker: &Docker, old: &Member) {
    let _ = rename(docker, &old.id, &aside_name(old), &old.name).await;
}

fn aside_name(old: &Member) -> String {
    format!("{}_{}", &old.id[..old.id.len().min(12)], old.name)
}

async fn rename(docker: &Docker, id: &str, from: &str, to: &str) -> Result<(), ProviderError> {
    let options = bollard::query_parameters::RenameContainerOptions { name: to.to_string() };
    docker
        .rename_container(id, options)
        .await
        .map_err(|e| docker_error(&format!("renaming container {from} to {to}"), e))
}

/// Stops a member gracefully (its stop signal, then 10 s) and removes it;
/// behind the proxy, once the proxy sends it nothing more.
async fn retire(docker: &Docker, proxy: Option<&Proxy>, member: &Member) -> Result<(), ProviderError> {
    if let Some(proxy) = proxy {
        proxy.drain(docker, &member.id).await?;
    }
    container::stop(docker, &member.id, &member.name).await?;
    let _ = container::remove(docker, &member.id).await;
    Ok(())
}

/// Removes a container whatever its state; one already gone is fine.
/// Removes every member: those recorded and any labelled for this address.
pub async fn delete(docker: &Docker, ctx: &OperationContext, prior: &Value) -> Result<(), ProviderError> {
    // Destroyed, nothing is kept; replaced, the new container settles the rest.
    let hold = match ctx.kept.as_slice() {
        [] => crate::rollback::Hold::Exactly { kept: &[], running: &Value::Null },
        kept => crate::rollback::Hold::AtLeast(kept),
    };
    crate::rollback::hold_images(docker, prior, hold).await?;
    for m in members(docker, ctx, prior).await? {
        match container::remove(docker, &m.id).await {
            Ok(()) => {}
            Err(e) if crate::util::is_not_found(&e) => {}
            Err(e) => return Err(docker_error(&format!("removing container {}", m.name), e)),
        }
    }
    crate::proxy::remove(docker, ctx, prior).await
}

fn should_run(planned: &Value) -> bool {
    planned.get("running").and_then(Value::as_bool) != Some(false)
}

fn slot_ids(plan: &SetPlan, made: Vec<(usize, String)>) -> Vec<String> {
    let mut by_slot: BTreeMap<usize, String> = plan.keep.iter().map(|(s, m)| (*s, m.id.clone())).collect();
    by_slot.extend(made);
    by_slot.into_values().collect()
}

fn with_ids(planned: &Value, ids: Vec<String>) -> Value {
    let mut state = planned.clone();
    state.set("id", ids.first().map_or(Value::Null, Value::string));
    state.set("ids", Value::List(ids.into_iter().map(Value::String).collect()));
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, slot: Option<usize>, revision: &str) -> Member {
        Member {
            id: id.into(),
            name: format!("web-{}", slot.unwrap_or(0)),
            slot,
            revision: Some(revision.into()),
            running: true,
        }
    }

    #[test]
    fn members_of_the_planned_revision_stay_in_their_slots() {
        let plan = SetPlan::new(
            3,
            vec![member("a", Some(1), "new"), member("b", Some(2), "old"), member("c", Some(3), "new")],
            Some("new"),
        );
        assert_eq!(plan.keep.keys().copied().collect::<Vec<_>>(), [1, 3]);
        assert_eq!(plan.missing(), [2]);
        assert_eq!(plan.stale.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn scaling_down_retires_the_highest_slots_and_duplicates() {
        let plan = SetPlan::new(
            1,
            vec![member("a", Some(1), "r"), member("a2", Some(1), "r"), member("b", Some(2), "r")],
            Some("r"),
        );
        assert_eq!(plan.keep.values().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["a"]);
        assert_eq!(plan.stale.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["a2", "b"]);
    }

    #[test]
    fn an_unlabelled_current_member_fills_a_gap() {
        let imported = Member { slot: None, revision: None, ..member("x", None, "") };
        let plan = SetPlan::new(2, vec![imported], None);
        assert_eq!(plan.keep.keys().copied().collect::<Vec<_>>(), [1]);
        assert_eq!(plan.missing(), [2]);
    }
}
