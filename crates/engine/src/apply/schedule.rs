//! The order of an apply: one step per graph node, plus one per deletion that
//! must happen before anything is created (deletes and destroy-first
//! replacements), each waiting for the steps it depends on.
//!
//! Deletions run in reverse dependency order, as recorded when the objects were
//! made and as the configuration says now; a resource that stays is updated
//! before what it used to depend on goes; a destroy-first replacement deletes
//! before its resource's step creates.

use std::collections::{HashMap, HashSet, VecDeque};

use infra_core::plan::{Action, Plan};
use infra_core::state::State;
use infra_core::{ProviderKey, ResourceAddress};
use petgraph::graph::NodeIndex;

use crate::Workspace;
use crate::graph::{Graph, Node};

#[derive(Clone, Debug)]
pub(super) enum Step {
    /// A graph node: a value to evaluate, a provider to configure, a resource's changes.
    Config(NodeIndex),
    /// A provider used only by resources removed from the configuration.
    OrphanProvider(ProviderKey),
    Delete(ResourceAddress),
}

struct Slot {
    step: Step,
    successors: Vec<usize>,
    /// Steps that must finish before this one starts.
    waiting_on: usize,
    /// Operations of this step queued or running.
    outstanding: usize,
    /// It, or something it needs, failed: it does not run.
    failed: bool,
}

pub(super) struct Schedule {
    slots: Vec<Slot>,
}

impl Schedule {
    pub(super) fn empty() -> Schedule {
        Schedule { slots: Vec::new() }
    }

    pub(super) fn build(ws: &Workspace<'_>, graph: &Graph, plan: &Plan, state: &State) -> Schedule {
        let mut schedule = Schedule::empty();
        for node in graph.graph.node_indices() {
            let i = schedule.add(Step::Config(node));
            debug_assert_eq!(i, node.index());
        }
        for edge in graph.graph.edge_indices() {
            if let Some((a, b)) = graph.graph.edge_endpoints(edge) {
                schedule.edge(a.index(), b.index());
            }
        }
        let deletes = schedule.add_deletes(ws, graph, plan);
        let mut edges = deletes_in_reverse_order(ws, graph, state, &deletes);
        edges.extend(updates_before_deletes(ws, graph, plan, state, &deletes));
        for (a, b) in edges {
            schedule.edge(a, b);
        }
        schedule
    }

    fn add(&mut self, step: Step) -> usize {
        self.slots.push(Slot { step, successors: Vec::new(), waiting_on: 0, outstanding: 0, failed: false });
        self.slots.len() - 1
    }

    fn edge(&mut self, from: usize, to: usize) {
        if from != to && !self.slots[from].successors.contains(&to) {
            self.slots[from].successors.push(to);
            self.slots[to].waiting_on += 1;
        }
    }

    /// A step per deletion that runs before creates, after its provider is
    /// configured (a provider no longer in the configuration gets a step of
    /// its own). Returns the delete steps by address.
    fn add_deletes(&mut self, ws: &Workspace<'_>, graph: &Graph, plan: &Plan) -> HashMap<ResourceAddress, usize> {
        let mut deletes = HashMap::new();
        let mut orphan_providers: HashMap<ProviderKey, usize> = HashMap::new();
        for change in &plan.changes {
            let destroys_first =
                change.action == Action::Delete || (change.action == Action::Replace && !change.create_before_destroy);
            if !destroys_first {
                continue;
            }
            let step = self.add(Step::Delete(change.address.clone()));
            deletes.insert(change.address.clone(), step);
            let block = change.provider.block();
            let provider_step = match graph.node(&Node::Provider(block.clone())) {
                Some(node) => node.index(),
                None => *orphan_providers.entry(block.clone()).or_insert_with(|| self.add(Step::OrphanProvider(block))),
            };
            self.edge(provider_step, step);
            if change.action == Action::Replace
                && let Some(node) = graph.resource_node(ws.config, &change.address)
            {
                self.edge(step, node.index());
            }
        }
        deletes
    }

    pub(super) fn step(&self, i: usize) -> &Step {
        &self.slots[i].step
    }

    /// Steps that wait for nothing.
    pub(super) fn first_ready(&self) -> VecDeque<usize> {
        (0..self.slots.len()).filter(|i| self.slots[*i].waiting_on == 0).collect()
    }

    pub(super) fn failed(&self, i: usize) -> bool {
        self.slots[i].failed
    }

    pub(super) fn mark_failed(&mut self, i: usize) {
        self.slots[i].failed = true;
    }

    pub(super) fn add_work(&mut self, i: usize) {
        self.slots[i].outstanding += 1;
    }

    /// One operation of step `i` is over; true when it was the last.
    pub(super) fn work_done(&mut self, i: usize) -> bool {
        let slot = &mut self.slots[i];
        slot.outstanding = slot.outstanding.saturating_sub(1);
        slot.outstanding == 0
    }

    pub(super) fn idle(&self, i: usize) -> bool {
        self.slots[i].outstanding == 0
    }

    /// Step `i` is finished: its successors stop waiting for it (and fail with
    /// it). Returns those that now wait for nothing.
    pub(super) fn release(&mut self, i: usize) -> Vec<usize> {
        let failed = self.slots[i].failed;
        let mut now_ready = Vec::new();
        for next in self.slots[i].successors.clone() {
            let slot = &mut self.slots[next];
            slot.failed |= failed;
            slot.waiting_on -= 1;
            if slot.waiting_on == 0 {
                now_ready.push(next);
            }
        }
        now_ready
    }
}

/// Something that depended on X is deleted before X: as recorded when it was
/// applied, and as the configuration says now (an imported resource has no
/// recorded dependencies).
fn deletes_in_reverse_order(
    ws: &Workspace<'_>,
    graph: &Graph,
    state: &State,
    deletes: &HashMap<ResourceAddress, usize>,
) -> Vec<(usize, usize)> {
    let mut edges = Vec::new();
    for (dependent, &dependent_step) in deletes {
        let mut dependencies = state.resources.get(dependent).map(|r| r.dependencies.clone()).unwrap_or_default();
        if let Some(node) = graph.resource_node(ws.config, dependent) {
            dependencies.extend(crate::plan::resource_dependencies(ws, graph, node));
        }
        for dependency in dependencies {
            for (address, &step) in deletes {
                // A dependency names its block, in every instance of its module.
                if dependency.contains(address) {
                    edges.push((dependent_step, step));
                }
            }
        }
    }
    edges
}

/// A resource that stays is updated before what it used to depend on goes.
fn updates_before_deletes(
    ws: &Workspace<'_>,
    graph: &Graph,
    plan: &Plan,
    state: &State,
    deletes: &HashMap<ResourceAddress, usize>,
) -> Vec<(usize, usize)> {
    let purely_deleted: HashSet<&ResourceAddress> =
        plan.changes.iter().filter(|c| c.action == Action::Delete).map(|c| &c.address).collect();
    let mut edges = Vec::new();
    for (address, r) in &state.resources {
        if deletes.contains_key(address) {
            continue;
        }
        let Some(node) = graph.resource_node(ws.config, address) else { continue };
        for dependency in &r.dependencies {
            for (deleted, &step) in deletes {
                if dependency.contains(deleted) && purely_deleted.contains(deleted) {
                    edges.push((node.index(), step));
                }
            }
        }
    }
    edges
}
