//! The apply walk: runs a plan's changes in dependency order, independent ones
//! concurrently (bounded by `parallelism`), deletions in reverse dependency
//! order, saving state after every single resource operation.
//!
//! One task (this orchestrator) owns evaluation and state; only provider calls
//! run concurrently. A failure stops what depends on it and lets the rest finish.
//! An interrupt stops scheduling, lets running operations finish and saves.
//!
//! `schedule.rs` orders the steps, `operation.rs` is what runs concurrently,
//! `record.rs` takes results into state, `unavailable.rs` keeps track of
//! places that stopped answering.

mod operation;
mod record;
mod schedule;
mod unavailable;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use infra_core::plan::{Action, Plan, PlanMode, ResourceChange};
use infra_core::state::{State, StateStore};
use infra_core::{InstanceKey, Provider, ProviderKey, ResourceAddress, Value};
use infra_syntax::{Code, Diagnostic};
use petgraph::graph::NodeIndex;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::graph::{Graph, Node};
use crate::instance::Instance;
use crate::propose::first_mismatch;
use crate::scope::{Place, Values};
use crate::{Workspace, evaluate};
use operation::{Finished, Op, Removal, RemovalKind, Work, Write};
use schedule::{Schedule, Step};

/// Set by Ctrl-C: stop starting new work.
#[derive(Default)]
pub struct Interrupt {
    flag: AtomicBool,
    notify: Notify,
}

impl Interrupt {
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

/// Progress, for the CLI to render.
#[derive(Clone, Debug)]
pub enum Event {
    Started {
        address: ResourceAddress,
        action: Action,
    },
    Finished {
        address: ResourceAddress,
        action: Action,
        elapsed: Duration,
        error: Option<String>,
        /// The machine it ran on, when the provider names one ([`Provider::location`]).
        location: Option<String>,
    },
    /// A planned change that did not run because something it needs failed.
    Skipped {
        address: ResourceAddress,
        location: Option<String>,
    },
}

pub trait Observer: Send + Sync {
    fn event(&self, event: Event);
}

pub struct ApplyOptions {
    pub parallelism: usize,
    pub interrupt: Arc<Interrupt>,
    pub observer: Arc<dyn Observer>,
}

#[derive(Debug, Default)]
pub struct ApplyReport {
    pub errors: Vec<Diagnostic>,
    pub interrupted: bool,
    pub added: usize,
    pub changed: usize,
    pub destroyed: usize,
    /// Refresh-only: resources whose state now records what was found.
    pub accepted: usize,
    /// `abandon_on_destroy`: removed from state, the objects left in place.
    pub forgotten: usize,
}

impl ApplyReport {
    pub fn succeeded(&self) -> bool {
        self.errors.is_empty() && !self.interrupted
    }
}

struct Applier<'a> {
    ws: &'a Workspace<'a>,
    graph: &'a Graph,
    plan: &'a Plan,
    state: &'a mut State,
    store: &'a dyn StateStore,
    options: &'a ApplyOptions,
    eval: evaluate::Evaluator<'a>,
    values: Values,
    providers: HashMap<ProviderKey, Arc<dyn Provider>>,
    changes: BTreeMap<ResourceAddress, &'a ResourceChange>,
    schedule: Schedule,
    pending: VecDeque<Op>,
    report: ApplyReport,
    /// State could not be saved: nothing more may start.
    halted: bool,
    /// Some operation was recorded this run.
    recorded: bool,
    /// Places that stopped answering this run (a provider, and the machine it
    /// names), each with the changes not attempted there since: nothing more
    /// is tried at such a place, as Ansible takes an unreachable host out of
    /// the play.
    unavailable: BTreeMap<(ProviderKey, Option<String>), Vec<ResourceAddress>>,
    /// The revisions kept of an object a destroy-first replacement deleted,
    /// until its replacement is made and records them.
    replaced_revisions: HashMap<ResourceAddress, Vec<Value>>,
}

pub async fn apply(
    ws: &Workspace<'_>,
    graph: &Graph,
    plan: &Plan,
    state: &mut State,
    store: &dyn StateStore,
    options: &ApplyOptions,
) -> ApplyReport {
    let mut applier = Applier {
        ws,
        graph,
        plan,
        state,
        store,
        options,
        eval: evaluate::Evaluator { config: ws.config, host: ws.host, root_variables: &plan.variables },
        values: Values::default(),
        providers: HashMap::new(),
        changes: plan.changes.iter().map(|c| (c.address.clone(), c)).collect(),
        schedule: Schedule::empty(),
        pending: VecDeque::new(),
        report: ApplyReport::default(),
        halted: false,
        recorded: false,
        unavailable: BTreeMap::new(),
        replaced_revisions: HashMap::new(),
    };
    if applier.prepare_state().await {
        if plan.mode == PlanMode::RefreshOnly {
            applier.accept_drift();
        } else {
            if plan.mode == PlanMode::Destroy {
                applier.freeze_resource_values();
            }
            applier.schedule = Schedule::build(ws, graph, plan, applier.state);
            applier.run().await;
            applier.report_not_attempted();
        }
        applier.save_outputs();
    }
    applier.report
}

impl<'a> Applier<'a> {
    /// Before any step: the lineage on disk, then the plan's renames and
    /// imports recorded. False when that failed (the report says why).
    async fn prepare_state(&mut self) -> bool {
        // The lineage marks every object a provider creates: it must be on disk
        // before the first one exists, or a crash would orphan it.
        if matches!(self.store.load(), Ok(None))
            && let Err(e) = self.store.save(self.state)
        {
            self.report.errors.push(Diagnostic::error(Code::State, e.to_string()));
            return false;
        }
        let renamed = crate::moves::rename(self.state, &self.plan.moved);
        if !renamed.is_empty() {
            self.persist(&renamed);
        }
        match crate::imports::record(self.ws, self.graph, self.plan, self.state).await {
            Ok(imported) => {
                if !imported.is_empty() {
                    self.persist(&imported);
                }
                true
            }
            Err(errors) => {
                self.report.errors.extend(errors);
                false
            }
        }
    }

    async fn run(&mut self) {
        let mut ready = self.schedule.first_ready();
        let mut running: JoinSet<Finished> = JoinSet::new();
        loop {
            self.start_ready(&mut ready);
            self.spawn_pending(&mut running, &mut ready);
            if running.is_empty() {
                if self.pending.is_empty() || self.stopping() {
                    break;
                }
                continue;
            }
            let finished = tokio::select! {
                done = running.join_next() => done,
                () = self.options.interrupt.notify.notified() => continue,
            };
            // Everything that finished meanwhile is recorded with one durable write.
            let mut batch: Vec<_> = finished.into_iter().collect();
            while let Some(more) = running.try_join_next() {
                batch.push(more);
            }
            self.take_in_batch(batch, &mut ready);
        }
        self.report.interrupted |= self.options.interrupt.is_set();
    }

    /// Interrupted, or state can no longer be recorded.
    fn stopping(&mut self) -> bool {
        self.report.interrupted |= self.options.interrupt.is_set();
        self.options.interrupt.is_set() || self.halted
    }

    fn start_ready(&mut self, ready: &mut VecDeque<usize>) {
        while let Some(step) = ready.pop_front() {
            if self.stopping() {
                continue;
            }
            self.start_step(step);
            if self.schedule.idle(step) {
                self.finish_step(step, ready);
            }
        }
    }

    /// Starts queued operations, as many as `parallelism` allows.
    fn spawn_pending(&mut self, running: &mut JoinSet<Finished>, ready: &mut VecDeque<usize>) {
        while running.len() < self.options.parallelism.max(1) && !self.stopping() {
            let Some(op) = self.pending.pop_front() else {
                break;
            };
            if self.skip_if_unavailable(&op) {
                if self.schedule.work_done(op.step) {
                    self.finish_step(op.step, ready);
                }
                continue;
            }
            if let Some(address) = op.address() {
                self.options.observer.event(Event::Started { address: address.clone(), action: op.action() });
            }
            let provider = self.providers.get(&op.provider).cloned();
            running.spawn(operation::run(op, provider, self.state.lineage.clone()));
        }
    }

    fn take_in_batch(&mut self, batch: Vec<Result<Finished, tokio::task::JoinError>>, ready: &mut VecDeque<usize>) {
        let mut touched = Vec::new();
        let mut events = Vec::new();
        let mut steps = Vec::new();
        for finished in batch {
            match finished {
                Ok(finished) => {
                    steps.push(finished.0.step);
                    let (address, event) = self.complete(finished);
                    touched.extend(address);
                    events.extend(event);
                }
                Err(join_error) => {
                    let message = format!("an operation panicked: {join_error}");
                    self.report.errors.push(Diagnostic::error(Code::Internal, message));
                    self.halted = true;
                }
            }
        }
        if !touched.is_empty() {
            self.persist(&touched);
        }
        for event in events {
            self.options.observer.event(event);
        }
        for step in steps {
            if self.schedule.work_done(step) {
                self.finish_step(step, ready);
            }
        }
    }

    fn finish_step(&mut self, step: usize, ready: &mut VecDeque<usize>) {
        if !self.schedule.failed(step)
            && self.plan.mode != PlanMode::Destroy
            && let Step::Config(node) = self.schedule.step(step)
            && let Node::Resource(m, kind, name) = &self.graph.graph[*node]
        {
            for keys in self.values.instances(*m) {
                self.set_resource_value(Place { module: *m, keys: &keys }, kind, name);
            }
        }
        for next in self.schedule.release(step) {
            if self.schedule.failed(next) {
                // Skipped: propagate without running.
                self.announce_skipped(next);
                self.finish_step(next, ready);
            } else {
                ready.push_back(next);
            }
        }
    }

    /// Tells the observer which planned changes of a step will not run
    /// because something they depend on failed.
    fn announce_skipped(&self, step: usize) {
        let Step::Config(node) = self.schedule.step(step) else { return };
        let Node::Resource(m, kind, name) = &self.graph.graph[*node] else { return };
        let path = &self.ws.config.modules[*m].path;
        for (_, change) in infra_core::state::instances_of_block(&self.changes, path, kind, name) {
            if change.action == Action::NoOp {
                continue;
            }
            let value = change.after.as_ref().or(change.before.as_ref());
            let location = self.location_of(&change.provider, &change.address, value);
            self.options.observer.event(Event::Skipped { address: change.address.clone(), location });
        }
    }

    fn fail(&mut self, step: usize, errors: Vec<Diagnostic>) {
        self.schedule.mark_failed(step);
        self.report.errors.extend(errors);
    }

    fn start_step(&mut self, step: usize) {
        let result = match self.schedule.step(step).clone() {
            Step::Config(node) => match self.graph.graph[node].clone() {
                Node::Provider(key) => self.queue_configure(step, key),
                Node::Resource(m, kind, name) => self.start_resource(step, node, m, &kind, &name),
                other => {
                    let destroying = self.plan.mode == PlanMode::Destroy;
                    self.eval.value_node(&mut self.values, &other, destroying).unwrap_or(Ok(()))
                }
            },
            Step::OrphanProvider(key) => self.queue_configure(step, key),
            Step::Delete(address) => {
                self.queue_delete(step, &address);
                Ok(())
            }
        };
        if let Err(errors) = result {
            self.fail(step, errors);
        }
    }

    fn queue_delete(&mut self, step: usize, address: &ResourceAddress) {
        let change = self.changes[address];
        let abandoned = change.reason == Some(infra_core::plan::ChangeReason::Abandoned);
        let kind = if abandoned { RemovalKind::Forget } else { RemovalKind::Delete };
        let prior = change.before.clone().unwrap_or(Value::Null);
        // The delete half of a replacement: the new object keeps the old one as a revision.
        let kept = match (&change.action, &change.after) {
            (Action::Replace, Some(after)) => self.kept_after(change, after),
            _ => Vec::new(),
        };
        let removal = Removal { address: address.clone(), prior, kind, kept };
        self.queue(Op { step, provider: change.provider.clone(), work: Work::Remove(removal) });
    }

    /// Configures every instance of the configuration `block`; an instance of
    /// one with `for_each` has its settings recorded in state first, so that
    /// what it makes can be destroyed after its key is gone.
    fn queue_configure(&mut self, step: usize, block: ProviderKey) -> Result<(), Vec<Diagnostic>> {
        let all = crate::providers::settings(self.ws, &self.eval, &self.values, &block, &self.state.providers)?;
        for settings in all {
            let key = settings.key().clone();
            if key.instance_key() != &InstanceKey::None {
                self.record_provider_settings(&key, settings.config());
            }
            self.queue(Op { step, provider: key, work: Work::Configure(settings) });
        }
        Ok(())
    }

    fn queue(&mut self, op: Op) {
        self.schedule.add_work(op.step);
        self.pending.push_back(op);
    }

    /// Queues the planned creates and updates of one resource block in every
    /// instance of its module, each planned again with the values now known
    /// and checked against the plan.
    fn start_resource(
        &mut self,
        step: usize,
        node: NodeIndex,
        m: usize,
        kind: &str,
        name: &str,
    ) -> Result<(), Vec<Diagnostic>> {
        if self.plan.mode == PlanMode::Destroy {
            // Frozen before the run for the module instances state records;
            // one with nothing recorded reads as empty.
            for keys in self.values.instances(m) {
                if self.values.get(&self.graph.graph[node], &keys).is_none() {
                    self.set_resource_value(Place { module: m, keys: &keys }, kind, name);
                }
            }
            return Ok(());
        }
        let path = &self.ws.config.modules[m].path;
        let expected: HashSet<ResourceAddress> = infra_core::state::instances_of_block(&self.changes, path, kind, name)
            .into_iter()
            .filter(|(_, c)| c.action != Action::Delete)
            .map(|(a, _)| a.clone())
            .collect();
        if expected.is_empty() {
            return Ok(());
        }
        let mut errors = Vec::new();
        let mut seen = HashSet::new();
        for keys in self.values.instances(m) {
            let place = Place { module: m, keys: &keys };
            let queued = self.start_resource_in(step, node, place, kind, name, &mut seen);
            errors.extend(queued.err().into_iter().flatten());
        }
        errors.extend(expected.difference(&seen).map(no_longer_produced));
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// `start_resource` in one module instance; `seen` collects the instances
    /// that have a change in the plan.
    fn start_resource_in(
        &mut self,
        step: usize,
        node: NodeIndex,
        place: Place<'_>,
        kind: &str,
        name: &str,
        seen: &mut HashSet<ResourceAddress>,
    ) -> Result<(), Vec<Diagnostic>> {
        let m = place.module;
        let resource = &self.ws.config.modules[m].resources[&(kind.to_string(), name.to_string())];
        let provider_key = self.graph.resource_provider[&(m, kind.to_string(), name.to_string())].clone();
        let Some(schema) = crate::providers::resource_schema(self.ws, &provider_key, kind) else {
            return Ok(());
        };
        let repetitions = self.eval.expand(&self.values, place, resource)?;
        let dependencies = crate::plan::resource_dependencies(self.ws, self.graph, node);
        let mut errors = Vec::new();
        for repetition in &repetitions {
            let address = self.eval.address(place, resource, repetition.key());
            let Some(change) = self.changes.get(&address).copied() else {
                continue;
            };
            seen.insert(address.clone());
            if change.action == Action::NoOp {
                self.record_refreshed(change);
                continue;
            }
            let instance = Instance { place, resource, repetition, address: &address };
            match self.replan(&instance, schema, change) {
                Ok(planned) => {
                    let kept = self.kept_after(change, &planned);
                    let write = Write {
                        address: address.clone(),
                        action: change.action,
                        prior: change.before.clone(),
                        planned,
                        dependencies: dependencies.clone(),
                        create_before_destroy: change.action == Action::Replace && change.create_before_destroy,
                        schema: schema.clone(),
                        kept,
                    };
                    self.queue(Op { step, provider: change.provider.clone(), work: Work::Write(Box::new(write)) });
                }
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// The earlier revisions state keeps of `change`'s instance once it is
    /// made as `planned`: none for a type that keeps none.
    fn kept_after(&self, change: &ResourceChange, planned: &Value) -> Vec<Value> {
        let recorded = self.state.resources.get(&change.address).map(|r| &r.revisions);
        let earlier = recorded.or_else(|| self.replaced_revisions.get(&change.address)).map_or(&[][..], |r| &r[..]);
        let Some(schema) = crate::providers::resource_schema(self.ws, &change.provider, &change.address.kind) else {
            return Vec::new();
        };
        match &change.before {
            Some(prior) => {
                let restored = self.plan.restore.get(&change.address).map(|r| &r.revision);
                infra_core::state::revisions::after_change(schema, prior, earlier, planned, restored)
            }
            // Made again after it went missing: what was kept before still stands.
            None => earlier.to_vec(),
        }
    }

    /// Plans an instance again as the plan did, now that what it reads is
    /// known, and refuses if a value the plan promised no longer holds.
    fn replan(
        &self,
        instance: &Instance<'_>,
        schema: &infra_core::Schema,
        change: &ResourceChange,
    ) -> Result<Value, Vec<Diagnostic>> {
        let Some(provider) = self.providers.get(&change.provider) else {
            let message = format!("provider `{}` is not configured", change.provider);
            return Err(vec![Diagnostic::error(Code::Provider, message)]);
        };
        let prior = crate::instance::planned_from(change);
        let restored = self.plan.restore.get(instance.address).map(|r| &r.settings);
        let planned =
            crate::instance::plan(&self.eval, &self.values, instance, schema, &**provider, prior, restored)?.value;
        // Planned without its provider, it could only promise the configuration.
        let unchecked = change.reason == Some(infra_core::plan::ChangeReason::ProviderConfiguredAtApply);
        if !unchecked
            && let Some(promised) = &change.after
            && let Some(path) = first_mismatch(promised, &planned, &mut String::new())
        {
            return Err(vec![
                Diagnostic::error(
                    Code::InconsistentPlan,
                    format!("{}: `{path}` changed between plan and apply", instance.address),
                )
                .with_label(instance.resource.name.span, "planned value no longer holds")
                .with_help("run `infra plan` again and review the new plan"),
            ]);
        }
        Ok(planned)
    }

    /// A no-op still records what refresh saw, so state follows the real world.
    /// It also records the provider configuration that manages it now (one
    /// moved into a loop is managed by its instance from then on).
    fn record_refreshed(&mut self, change: &ResourceChange) {
        let Some(before) = &change.before else { return };
        let Some(r) = self.state.resources.get_mut(&change.address) else { return };
        if &r.attributes != before || r.provider != change.provider {
            r.attributes = before.clone();
            r.provider = change.provider.clone();
            self.persist(std::slice::from_ref(&change.address));
        }
    }

    /// The machine an operation works on, when its provider names one.
    fn location(&self, op: &Op) -> Option<String> {
        self.location_of(&op.provider, op.address()?, op.value())
    }

    /// The machine a resource's `value` lives on, as its provider names it.
    fn location_of(&self, provider: &ProviderKey, address: &ResourceAddress, value: Option<&Value>) -> Option<String> {
        self.providers.get(provider)?.location(&address.kind, value?)
    }

    /// Destroying: every resource reads as state recorded it before the run, so
    /// what evaluation still needs (a module input `server.web["a"]`, a provider
    /// configuration) does not depend on which deletes happened to finish first.
    fn freeze_resource_values(&mut self) {
        let resources: Vec<(usize, String, String)> = self
            .graph
            .graph
            .node_weights()
            .filter_map(|n| match n {
                Node::Resource(m, kind, name) => Some((*m, kind.clone(), name.clone())),
                _ => None,
            })
            .collect();
        for (m, kind, name) in resources {
            let path = &self.ws.config.modules[m].path;
            let recorded_in: BTreeSet<Vec<InstanceKey>> =
                infra_core::state::instances_of_block(&self.state.resources, path, &kind, &name)
                    .into_iter()
                    .map(|(a, _)| a.module_keys())
                    .collect();
            for keys in recorded_in {
                self.set_resource_value(Place { module: m, keys: &keys }, &kind, &name);
            }
        }
    }

    fn set_resource_value(&mut self, place: Place<'_>, kind: &str, name: &str) {
        let resource = &self.ws.config.modules[place.module].resources[&(kind.to_string(), name.to_string())];
        let base = self.eval.address(place, resource, InstanceKey::None);
        // An instance on its way out (a key removed) is not part of the value
        // what comes after reads, even before its delete has run; destroying,
        // everything reads as it was.
        let leaving = |address: &ResourceAddress| {
            self.plan.mode != PlanMode::Destroy && self.changes.get(address).is_some_and(|c| c.action == Action::Delete)
        };
        let instances: Vec<(InstanceKey, Value)> = infra_core::state::instances_of(&self.state.resources, &base)
            .filter(|(a, _)| !leaving(a))
            .map(|(a, r)| (a.key.clone(), r.attributes.clone()))
            .collect();
        let value = evaluate::aggregate(resource, instances);
        self.values.set(Node::Resource(place.module, kind.into(), name.into()), place.keys, value);
    }
}

fn no_longer_produced(address: &ResourceAddress) -> Diagnostic {
    Diagnostic::error(
        Code::InconsistentPlan,
        format!("{address}: the plan has a change for this instance, but the configuration no longer produces it"),
    )
}
