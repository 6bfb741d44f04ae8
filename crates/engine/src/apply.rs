//! The apply walk: runs a plan's changes in dependency order, independent ones
//! concurrently (bounded by `parallelism`), deletions in reverse dependency
//! order, saving state after every single resource operation.
//!
//! One task (this orchestrator) owns evaluation and state; only provider calls
//! run concurrently. A failure stops what depends on it and lets the rest finish.
//! An interrupt stops scheduling, lets running operations finish and saves.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use infra_core::plan::{Action, Plan, PlanMode, ResourceChange};
use infra_core::state::{ResourceState, State, StateStore};
use infra_core::{
    InstanceKey, OperationContext, PathStep, Provider, ProviderError, ProviderErrorKind, ResourceAddress, Schema, Value,
};
use infra_syntax::Diagnostic;
use petgraph::graph::NodeIndex;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::adopt::create_or_adopt;
use crate::graph::{Graph, Node};
use crate::plan::provider_diagnostic;
use crate::propose::{first_mismatch, propose, settle};
use crate::scope::Values;
use crate::{Workspace, evaluate};

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

#[derive(Clone, Debug)]
enum Step {
    Config(NodeIndex),
    /// A provider used only by resources removed from the configuration.
    OrphanProvider(String),
    Delete(ResourceAddress),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OpKind {
    Configure,
    Create,
    Update,
    Delete,
    /// The old object of a create-before-destroy replacement.
    DeleteReplaced,
    /// `abandon_on_destroy`: out of state, the object left alone.
    Forget,
}

struct Op {
    step: usize,
    kind: OpKind,
    address: Option<ResourceAddress>,
    provider_key: String,
    prior: Option<Value>,
    planned: Option<Value>,
    dependencies: Vec<ResourceAddress>,
    create_before_destroy: bool,
    schema: Option<Schema>,
    action: Action,
}

enum OpOutcome {
    Configured(Arc<dyn Provider>),
    Written(Value),
    Deleted,
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
    providers: HashMap<String, Arc<dyn Provider>>,
    changes: BTreeMap<ResourceAddress, &'a ResourceChange>,
    steps: Vec<Step>,
    successors: Vec<Vec<usize>>,
    waiting_on: Vec<usize>,
    /// Operations still running or queued per step.
    outstanding: Vec<usize>,
    step_failed: Vec<bool>,
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
    unavailable: BTreeMap<(String, Option<String>), Vec<ResourceAddress>>,
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
        steps: Vec::new(),
        successors: Vec::new(),
        waiting_on: Vec::new(),
        outstanding: Vec::new(),
        step_failed: Vec::new(),
        pending: VecDeque::new(),
        report: ApplyReport::default(),
        halted: false,
        recorded: false,
        unavailable: BTreeMap::new(),
    };
    // The lineage marks every object a provider creates: it must be on disk
    // before the first one exists, or a crash would orphan it.
    if matches!(applier.store.load(), Ok(None))
        && let Err(e) = applier.store.save(applier.state)
    {
        applier.report.errors.push(Diagnostic::error("infra::state", e.to_string()));
        return applier.report;
    }
    // Renames and imports first: every step below starts from them.
    let renamed = crate::moves::rename(applier.state, &plan.moved);
    if !renamed.is_empty() {
        applier.persist(&renamed);
    }
    match crate::imports::record(ws, graph, plan, applier.state).await {
        Ok(imported) if !imported.is_empty() => applier.persist(&imported),
        Ok(_) => {}
        Err(errors) => {
            applier.report.errors.extend(errors);
            return applier.report;
        }
    }
    if plan.mode == PlanMode::RefreshOnly {
        applier.accept_drift();
    } else {
        if plan.mode == PlanMode::Destroy {
            applier.freeze_resource_values();
        }
        applier.build_steps();
        applier.run().await;
        applier.report_not_attempted();
    }
    applier.save_outputs();
    applier.report
}

impl<'a> Applier<'a> {
    fn add_step(&mut self, step: Step) -> usize {
        self.steps.push(step);
        self.successors.push(Vec::new());
        self.waiting_on.push(0);
        self.outstanding.push(0);
        self.step_failed.push(false);
        self.steps.len() - 1
    }

    fn add_edge(&mut self, from: usize, to: usize) {
        if from != to && !self.successors[from].contains(&to) {
            self.successors[from].push(to);
            self.waiting_on[to] += 1;
        }
    }

    fn build_steps(&mut self) {
        for node in self.graph.graph.node_indices() {
            let i = self.add_step(Step::Config(node));
            debug_assert_eq!(i, node.index());
        }
        for edge in self.graph.graph.edge_indices() {
            if let Some((a, b)) = self.graph.graph.edge_endpoints(edge) {
                self.add_edge(a.index(), b.index());
            }
        }
        let plan = self.plan;
        let mut delete_steps: HashMap<ResourceAddress, usize> = HashMap::new();
        let mut orphan_providers: HashMap<String, usize> = HashMap::new();
        for change in &plan.changes {
            let destroys_first =
                change.action == Action::Delete || (change.action == Action::Replace && !change.create_before_destroy);
            if !destroys_first {
                continue;
            }
            let step = self.add_step(Step::Delete(change.address.clone()));
            delete_steps.insert(change.address.clone(), step);
            let provider_step = match self.graph.node(&Node::Provider(change.provider.clone())) {
                Some(node) => node.index(),
                None => match orphan_providers.get(&change.provider) {
                    Some(s) => *s,
                    None => {
                        let s = self.add_step(Step::OrphanProvider(change.provider.clone()));
                        orphan_providers.insert(change.provider.clone(), s);
                        s
                    }
                },
            };
            self.add_edge(provider_step, step);
            if change.action == Action::Replace
                && let Some(node) = self.resource_node(&change.address)
            {
                self.add_edge(step, node.index());
            }
        }
        // Something that depended on X is deleted before X: as recorded when it
        // was applied, and as the configuration says now (an imported resource
        // has no recorded dependencies).
        let recorded_dependencies = |address: &ResourceAddress| -> Vec<ResourceAddress> {
            let mut dependencies =
                self.state.resources.get(address).map(|r| r.dependencies.clone()).unwrap_or_default();
            if let Some(node) = self.resource_node(address) {
                dependencies.extend(crate::plan::resource_dependencies(self.ws, self.graph, node));
            }
            dependencies
        };
        let mut edges = Vec::new();
        for (dependent, &dependent_step) in &delete_steps {
            for dependency in recorded_dependencies(dependent) {
                for (address, &step) in &delete_steps {
                    if address.without_key() == dependency {
                        edges.push((dependent_step, step));
                    }
                }
            }
        }
        // A resource that stays is updated before what it used to depend on goes.
        for (address, r) in self.state.resources.iter() {
            if delete_steps.contains_key(address) {
                continue;
            }
            let Some(node) = self.resource_node(address) else {
                continue;
            };
            for dependency in &r.dependencies {
                for (deleted, &step) in &delete_steps {
                    let purely_deleted = self.changes.get(deleted).is_some_and(|c| c.action == Action::Delete);
                    if purely_deleted && deleted.without_key() == *dependency {
                        edges.push((node.index(), step));
                    }
                }
            }
        }
        for (a, b) in edges {
            self.add_edge(a, b);
        }
    }

    fn resource_node(&self, address: &ResourceAddress) -> Option<NodeIndex> {
        let m = self.ws.config.modules.iter().position(|module| module.path == address.module)?;
        self.graph.node(&Node::Resource(m, address.kind.clone(), address.name.clone()))
    }

    async fn run(&mut self) {
        let mut ready: VecDeque<usize> = (0..self.steps.len()).filter(|i| self.waiting_on[*i] == 0).collect();
        let mut running: JoinSet<(Op, Result<OpOutcome, ProviderError>, Duration)> = JoinSet::new();
        loop {
            while let Some(step) = ready.pop_front() {
                if self.options.interrupt.is_set() || self.halted {
                    self.report.interrupted |= self.options.interrupt.is_set();
                    continue;
                }
                self.start_step(step);
                if self.outstanding[step] == 0 {
                    self.finish_step(step, &mut ready);
                }
            }
            while running.len() < self.options.parallelism.max(1) && !self.options.interrupt.is_set() && !self.halted {
                let Some(op) = self.pending.pop_front() else {
                    break;
                };
                if self.skip_if_unavailable(&op) {
                    self.outstanding[op.step] -= 1;
                    if self.outstanding[op.step] == 0 {
                        self.finish_step(op.step, &mut ready);
                    }
                    continue;
                }
                self.spawn(op, &mut running);
            }
            if running.is_empty() {
                if self.pending.is_empty() || self.options.interrupt.is_set() || self.halted {
                    self.report.interrupted |= self.options.interrupt.is_set();
                    break;
                }
                continue;
            }
            let finished = tokio::select! {
                done = running.join_next() => done,
                () = self.options.interrupt.notify.notified() => continue,
            };
            // Everything that finished meanwhile is recorded with one durable write.
            let mut batch = vec![finished];
            while let Some(more) = running.try_join_next() {
                batch.push(Some(more));
            }
            let mut touched = Vec::new();
            let mut events = Vec::new();
            let mut steps = Vec::new();
            for finished in batch {
                match finished {
                    Some(Ok((op, outcome, elapsed))) => {
                        steps.push(op.step);
                        let (address, event) = self.complete(op, outcome, elapsed);
                        touched.extend(address);
                        events.extend(event);
                    }
                    Some(Err(join_error)) => {
                        self.report
                            .errors
                            .push(Diagnostic::error("infra::internal", format!("an operation panicked: {join_error}")));
                        self.halted = true;
                    }
                    None => {}
                }
            }
            if !touched.is_empty() {
                self.persist(&touched);
            }
            for event in events {
                self.options.observer.event(event);
            }
            for step in steps {
                self.outstanding[step] -= 1;
                if self.outstanding[step] == 0 {
                    self.finish_step(step, &mut ready);
                }
            }
        }
        if self.options.interrupt.is_set() {
            self.report.interrupted = true;
        }
    }

    fn finish_step(&mut self, step: usize, ready: &mut VecDeque<usize>) {
        if !self.step_failed[step]
            && self.plan.mode != PlanMode::Destroy
            && let Step::Config(node) = self.steps[step]
            && let Node::Resource(m, kind, name) = &self.graph.graph[node]
        {
            self.set_resource_value(*m, kind, name);
        }
        for next in self.successors[step].clone() {
            if self.step_failed[step] {
                self.step_failed[next] = true;
            }
            self.waiting_on[next] -= 1;
            if self.waiting_on[next] == 0 {
                if self.step_failed[next] {
                    // Skipped: propagate without running.
                    self.announce_skipped(next);
                    self.finish_step(next, ready);
                } else {
                    ready.push_back(next);
                }
            }
        }
    }

    /// Tells the observer which planned changes of a step will not run
    /// because something they depend on failed.
    fn announce_skipped(&self, step: usize) {
        let Step::Config(node) = self.steps[step] else { return };
        let Node::Resource(m, kind, name) = &self.graph.graph[node] else { return };
        let Some(resource) = self.ws.config.modules[*m].resources.get(&(kind.clone(), name.clone())) else { return };
        let base = self.eval.address(*m, resource, InstanceKey::None);
        for (_, change) in infra_core::state::instances_of(&self.changes, &base) {
            if change.action == Action::NoOp {
                continue;
            }
            let location =
                self.location_of(&change.provider, &change.address, change.after.as_ref().or(change.before.as_ref()));
            self.options.observer.event(Event::Skipped { address: change.address.clone(), location });
        }
    }

    fn fail(&mut self, step: usize, errors: Vec<Diagnostic>) {
        self.step_failed[step] = true;
        self.report.errors.extend(errors);
    }

    fn start_step(&mut self, step: usize) {
        match self.steps[step].clone() {
            Step::Config(node) => {
                let destroying = self.plan.mode == PlanMode::Destroy;
                let result = match self.graph.graph[node].clone() {
                    Node::Provider(key) => {
                        self.queue_configure(step, key);
                        Ok(())
                    }
                    Node::Resource(m, kind, name) => self.start_resource(step, node, m, &kind, &name),
                    other => self.eval.value_node(&mut self.values, &other, destroying).unwrap_or(Ok(())),
                };
                if let Err(errors) = result {
                    self.fail(step, errors);
                }
            }
            Step::OrphanProvider(key) => self.queue_configure(step, key),
            Step::Delete(address) => {
                let change = self.changes[&address];
                let schema = self.schema_of(&change.provider, &address.kind);
                let abandoned = change.reason == Some(infra_core::plan::ChangeReason::Abandoned);
                self.queue(Op {
                    step,
                    kind: if abandoned { OpKind::Forget } else { OpKind::Delete },
                    address: Some(address.clone()),
                    provider_key: change.provider.clone(),
                    prior: change.before.clone(),
                    planned: None,
                    dependencies: Vec::new(),
                    create_before_destroy: false,
                    schema,
                    action: Action::Delete,
                });
            }
        }
    }

    fn schema_of(&self, provider_key: &str, kind: &str) -> Option<Schema> {
        let name = provider_key.split('.').next().unwrap_or(provider_key);
        self.ws.registry.get(name).and_then(|f| f.schema().resources.get(kind).cloned())
    }

    fn queue_configure(&mut self, step: usize, key: String) {
        self.queue(Op {
            step,
            kind: OpKind::Configure,
            address: None,
            provider_key: key,
            prior: None,
            planned: None,
            dependencies: Vec::new(),
            create_before_destroy: false,
            schema: None,
            action: Action::NoOp,
        });
    }

    fn queue(&mut self, op: Op) {
        self.outstanding[op.step] += 1;
        self.pending.push_back(op);
    }

    fn start_resource(
        &mut self,
        step: usize,
        node: NodeIndex,
        m: usize,
        kind: &str,
        name: &str,
    ) -> Result<(), Vec<Diagnostic>> {
        if self.plan.mode == PlanMode::Destroy {
            return Ok(());
        }
        let config = self.ws.config;
        let resource = &config.modules[m].resources[&(kind.to_string(), name.to_string())];
        let provider_key = self.graph.resource_provider[&(m, kind.to_string(), name.to_string())].clone();
        let Some(schema) = self.schema_of(&provider_key, kind) else {
            return Ok(());
        };
        let base = self.eval.address(m, resource, InstanceKey::None);
        let planned_here: Vec<&ResourceChange> = infra_core::state::instances_of(&self.changes, &base)
            .map(|(_, c)| *c)
            .filter(|c| c.action != Action::Delete)
            .collect();
        if planned_here.is_empty() {
            return Ok(());
        }
        let repetitions = self.eval.expand(&self.values, m, resource)?;
        let dependencies = crate::plan::resource_dependencies(self.ws, self.graph, node);
        let mut errors = Vec::new();
        let expected: HashSet<&ResourceAddress> = planned_here.iter().map(|c| &c.address).collect();
        let mut seen = HashSet::new();
        for repetition in &repetitions {
            let address = self.eval.address(m, resource, repetition.key());
            let Some(change) = self.changes.get(&address).copied() else {
                continue;
            };
            seen.insert(change.address.clone());
            if change.action == Action::NoOp {
                self.record_refreshed(change);
                continue;
            }
            let what = address.to_string();
            let provider = self.providers[&provider_key].clone();
            let result =
                self.eval.instance_config(&self.values, m, resource, repetition, &schema, &what).and_then(|config| {
                    let prior = match change.action {
                        Action::Update => change.before.as_ref(),
                        _ => None,
                    };
                    let proposed = propose(&schema, prior, &config, &resource.lifecycle.ignore_changes);
                    let refined = provider
                        .plan(kind, prior, proposed.clone())
                        .map_err(|e| vec![provider_diagnostic(&what, resource, &e, &proposed)])?;
                    let (planned, _) = settle(&schema, prior, &proposed, refined.planned, refined.replace_on);
                    if let Some(promised) = &change.after
                        && let Some(path) = first_mismatch(promised, &planned, &mut String::new())
                    {
                        return Err(vec![
                            Diagnostic::error(
                                "infra::inconsistent_plan",
                                format!("{what}: `{path}` changed between plan and apply"),
                            )
                            .with_label(resource.name.span, "planned value no longer holds")
                            .with_help("run `infra plan` again and review the new plan"),
                        ]);
                    }
                    Ok(planned)
                });
            match result {
                Ok(planned) => {
                    let kind_of_op = match change.action {
                        Action::Update => OpKind::Update,
                        _ => OpKind::Create,
                    };
                    self.queue(Op {
                        step,
                        kind: kind_of_op,
                        address: Some(address.clone()),
                        provider_key: provider_key.clone(),
                        prior: change.before.clone(),
                        planned: Some(planned),
                        dependencies: dependencies.clone(),
                        create_before_destroy: change.action == Action::Replace && change.create_before_destroy,
                        schema: Some(schema.clone()),
                        action: change.action,
                    });
                }
                Err(e) => errors.extend(e),
            }
        }
        for missing in expected.iter().filter(|a| !seen.contains(**a)) {
            errors.push(Diagnostic::error(
                "infra::inconsistent_plan",
                format!(
                    "{missing}: the plan has a change for this instance, but the configuration no longer produces it"
                ),
            ));
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// A no-op still records what refresh saw, so state follows the real world.
    fn record_refreshed(&mut self, change: &ResourceChange) {
        let Some(before) = &change.before else { return };
        let differs = self.state.resources.get(&change.address).is_some_and(|r| &r.attributes != before);
        if differs {
            if let Some(r) = self.state.resources.get_mut(&change.address) {
                r.attributes = before.clone();
            }
            self.persist(std::slice::from_ref(&change.address));
        }
    }

    fn spawn(&mut self, op: Op, running: &mut JoinSet<(Op, Result<OpOutcome, ProviderError>, Duration)>) {
        if let Some(address) = &op.address {
            self.options.observer.event(Event::Started { address: address.clone(), action: op.action });
        }
        let lineage = self.state.lineage.clone();
        if op.kind == OpKind::Configure {
            let key = op.provider_key.clone();
            let factory = self.ws.registry.get(key.split('.').next().unwrap_or(&key)).cloned();
            let config = factory.as_ref().map(|f| self.eval.provider_config(&self.values, &key, &f.schema().config));
            running.spawn(async move {
                let started = Instant::now();
                let outcome = match (factory, config) {
                    (Some(factory), Some(Ok(config))) => factory.configure(&config).await.map(OpOutcome::Configured),
                    (_, Some(Err(errors))) => Err(ProviderError::invalid(
                        "",
                        errors.into_iter().map(|d| d.message).collect::<Vec<_>>().join("; "),
                    )),
                    _ => Err(ProviderError::failed(format!("no provider `{key}` in this build of infra"))),
                };
                (op, outcome, started.elapsed())
            });
            return;
        }
        let Some(provider) = self.providers.get(&op.provider_key).cloned() else {
            let step = op.step;
            self.fail(
                step,
                vec![Diagnostic::error("infra::provider", format!("provider `{}` is not configured", op.provider_key))],
            );
            self.outstanding[step] -= 1;
            return;
        };
        let schema = op
            .address
            .as_ref()
            .filter(|_| op.kind == OpKind::Create)
            .and_then(|a| self.schema_of(&op.provider_key, &a.kind));
        running.spawn(async move {
            let started = Instant::now();
            let address = op.address.clone().expect("resource operations have an address");
            let replacing =
                if op.kind == OpKind::Create && op.action == Action::Replace { op.prior.clone() } else { None };
            let ctx = OperationContext { lineage, address: address.clone(), replacing };
            let kind = address.kind.as_str();
            let null = Value::Null;
            let outcome = match op.kind {
                OpKind::Create => {
                    let planned = op.planned.as_ref().unwrap_or(&null);
                    create_or_adopt(&*provider, &ctx, schema.as_ref(), planned).await.map(OpOutcome::Written)
                }
                OpKind::Update => {
                    let prior = op.prior.as_ref().unwrap_or(&null);
                    provider
                        .update(&ctx, kind, prior, op.planned.as_ref().unwrap_or(&null))
                        .await
                        .map(OpOutcome::Written)
                }
                OpKind::Delete | OpKind::DeleteReplaced => {
                    provider.delete(&ctx, kind, op.prior.as_ref().unwrap_or(&null)).await.map(|()| OpOutcome::Deleted)
                }
                OpKind::Forget => Ok(OpOutcome::Deleted),
                OpKind::Configure => unreachable!("handled above"),
            };
            (op, outcome, started.elapsed())
        });
    }

    /// The machine an operation works on, when its provider names one.
    fn location(&self, op: &Op) -> Option<String> {
        let address = op.address.as_ref()?;
        self.location_of(&op.provider_key, address, op.planned.as_ref().or(op.prior.as_ref()))
    }

    /// The machine a resource's `value` lives on, as its provider names it.
    fn location_of(&self, provider_key: &str, address: &ResourceAddress, value: Option<&Value>) -> Option<String> {
        self.providers.get(provider_key)?.location(&address.kind, value?)
    }

    /// Leaves out an operation whose place stopped answering earlier in this
    /// run: its step fails without another attempt (and another error) that
    /// would only wait for the same timeout.
    fn skip_if_unavailable(&mut self, op: &Op) -> bool {
        let Some(address) = &op.address else { return false };
        let location = self.location(op);
        let Some(not_attempted) = self.unavailable.get_mut(&(op.provider_key.clone(), location.clone())) else {
            return false;
        };
        not_attempted.push(address.clone());
        self.step_failed[op.step] = true;
        self.options.observer.event(Event::Skipped { address: address.clone(), location });
        true
    }

    /// One error per place that stopped answering, naming what was not tried there.
    fn report_not_attempted(&mut self) {
        const LISTED: usize = 10;
        for ((provider, location), addresses) in std::mem::take(&mut self.unavailable) {
            if addresses.is_empty() {
                continue;
            }
            let target = location.unwrap_or_else(|| format!("provider `{provider}`"));
            let mut listed = addresses.iter().take(LISTED).map(ToString::to_string).collect::<Vec<_>>().join(", ");
            if addresses.len() > LISTED {
                listed.push_str(&format!(" and {} more", addresses.len() - LISTED));
            }
            let count =
                if addresses.len() == 1 { "1 change".to_string() } else { format!("{} changes", addresses.len()) };
            self.report.errors.push(
                Diagnostic::error(
                    "infra::not_attempted",
                    format!("{count} not attempted after {target} stopped answering: {listed}"),
                )
                .with_help("run `infra apply` again once it answers; what was done is recorded in state"),
            );
        }
    }

    /// Takes in one finished operation: updates state in memory and returns the
    /// address to record durably and the event to show once it is recorded.
    fn complete(
        &mut self,
        op: Op,
        outcome: Result<OpOutcome, ProviderError>,
        elapsed: Duration,
    ) -> (Option<ResourceAddress>, Option<Event>) {
        // A backend's message may quote what it was given, secrets included.
        let outcome = outcome.map_err(|mut e| {
            e.message = [&op.planned, &op.prior].into_iter().flatten().fold(e.message, |text, v| v.redact(&text));
            e
        });
        let location = self.location(&op);
        if let Err(e) = &outcome
            && e.kind == ProviderErrorKind::Unavailable
            && op.address.is_some()
        {
            self.unavailable.entry((op.provider_key.clone(), location.clone())).or_default();
        }
        let event = op.address.as_ref().map(|address| Event::Finished {
            address: address.clone(),
            action: op.action,
            elapsed,
            error: outcome.as_ref().err().map(|e| e.message.clone()),
            location,
        });
        let what = op.address.as_ref().map_or_else(|| format!("provider `{}`", op.provider_key), ToString::to_string);
        match outcome {
            Err(e) => {
                let verb = match op.kind {
                    OpKind::Configure => "configuring",
                    OpKind::Create => "creating",
                    OpKind::Update => "updating",
                    OpKind::Delete | OpKind::DeleteReplaced => "deleting",
                    OpKind::Forget => "forgetting",
                };
                let mut d = Diagnostic::error("infra::provider", format!("{what}: {verb} failed: {}", e.message));
                if let Some(span) = op.address.as_ref().and_then(|a| self.resource_span(a)) {
                    d = d.with_label(span, format!("while {verb} this resource"));
                }
                let step = op.step;
                self.fail(step, vec![d]);
                (None, event)
            }
            Ok(OpOutcome::Configured(provider)) => {
                self.providers.insert(op.provider_key.clone(), provider);
                (None, event)
            }
            Ok(OpOutcome::Written(value)) => {
                let address = op.address.clone().expect("writes have an address");
                let attributes = mark_sensitive(value, op.schema.as_ref(), op.planned.as_ref());
                let old = self.state.resources.insert(
                    address.clone(),
                    ResourceState {
                        provider: op.provider_key.clone(),
                        attributes,
                        dependencies: op.dependencies.clone(),
                        create_before_destroy: op.create_before_destroy,
                    },
                );
                match op.action {
                    Action::Update => self.report.changed += 1,
                    Action::Replace => {
                        self.report.added += 1;
                    }
                    _ => self.report.added += 1,
                }
                if op.create_before_destroy
                    && let Some(old) = old.map(|o| o.attributes).or(op.prior.clone())
                {
                    self.queue(Op {
                        step: op.step,
                        kind: OpKind::DeleteReplaced,
                        address: Some(address.clone()),
                        provider_key: op.provider_key,
                        prior: Some(old),
                        planned: None,
                        dependencies: Vec::new(),
                        create_before_destroy: false,
                        schema: op.schema,
                        action: Action::Delete,
                    });
                }
                (Some(address), event)
            }
            Ok(OpOutcome::Deleted) => {
                let address = op.address.clone().expect("deletes have an address");
                if matches!(op.kind, OpKind::Delete | OpKind::Forget) {
                    self.state.resources.remove(&address);
                }
                if op.kind == OpKind::Forget {
                    self.report.forgotten += 1;
                } else {
                    self.report.destroyed += 1;
                }
                (Some(address), event)
            }
        }
    }

    fn resource_span(&self, address: &ResourceAddress) -> Option<infra_syntax::Span> {
        let module = self.ws.config.modules.iter().find(|m| m.path == address.module)?;
        let r = module.resources.get(&(address.kind.clone(), address.name.clone()))?;
        Some(r.kind.span.to(r.name.span))
    }

    /// Records the resources at `touched` durably now. If that fails nothing
    /// more may start: the next operation would not be recorded.
    fn persist(&mut self, touched: &[ResourceAddress]) {
        self.state.serial += 1;
        self.recorded = true;
        if let Err(e) = self.store.record(self.state, touched) {
            let done: Vec<String> = touched.iter().map(ToString::to_string).collect();
            self.report.errors.push(
                Diagnostic::error(
                    "infra::state",
                    format!("{} changed but could not be recorded: {e}", done.join(", ")),
                )
                .with_help(
                    "infra stopped so that no further change goes unrecorded; once state can be written, the next \
                     apply finds these objects again (or makes them anew) and finishes",
                ),
            );
            self.halted = true;
        }
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
            self.set_resource_value(m, &kind, &name);
        }
    }

    fn set_resource_value(&mut self, m: usize, kind: &str, name: &str) {
        let resource = &self.ws.config.modules[m].resources[&(kind.to_string(), name.to_string())];
        let base = self.eval.address(m, resource, InstanceKey::None);
        let instances: Vec<(InstanceKey, Value)> = infra_core::state::instances_of(&self.state.resources, &base)
            .map(|(a, r)| (a.key.clone(), r.attributes.clone()))
            .collect();
        self.values.set(Node::Resource(m, kind.into(), name.into()), evaluate::aggregate(resource, instances));
    }

    /// `apply -refresh-only`: state takes what the plan's refresh found, changes
    /// made outside infra included; nothing real is touched.
    fn accept_drift(&mut self) {
        let touched: Vec<ResourceAddress> = self.plan.drift.iter().map(|d| d.address.clone()).collect();
        for drift in &self.plan.drift {
            match (&drift.actual, self.state.resources.get_mut(&drift.address)) {
                (Some(actual), Some(recorded)) => recorded.attributes = actual.clone(),
                (None, _) => {
                    self.state.resources.remove(&drift.address);
                }
                (Some(_), None) => continue,
            }
            self.report.accepted += 1;
        }
        if !touched.is_empty() {
            self.persist(&touched);
        }
    }

    fn save_outputs(&mut self) {
        if self.halted {
            return;
        }
        let mut outputs = BTreeMap::new();
        if self.plan.mode == PlanMode::RefreshOnly {
            // What the plan computed from the refreshed values; an output of
            // something never created keeps its recorded value.
            for output in &self.plan.outputs {
                match &output.after {
                    Some(v) if v.is_wholly_known() => {
                        outputs.insert(output.name.clone(), v.clone());
                    }
                    _ => {
                        if let Some(old) = self.state.outputs.get(&output.name) {
                            outputs.insert(output.name.clone(), old.clone());
                        }
                    }
                }
            }
        }
        if self.plan.mode == PlanMode::Normal {
            for name in self.ws.config.root().outputs.keys() {
                match self.values.get(&Node::Output(0, name.clone())) {
                    Some(v) => {
                        outputs.insert(name.clone(), v.clone());
                    }
                    None => {
                        if let Some(old) = self.state.outputs.get(name) {
                            outputs.insert(name.clone(), old.clone());
                        }
                    }
                }
            }
        }
        if outputs != self.state.outputs || self.recorded {
            // One full snapshot at the end folds the run's journal into state.
            self.state.outputs = outputs;
            self.state.serial += 1;
            if let Err(e) = self.store.save(self.state) {
                self.report.errors.push(Diagnostic::error("infra::state", e.to_string()));
            }
        }
    }
}

/// Provider answers come back bare: mark what the schema calls sensitive and what
/// the configuration marked.
fn mark_sensitive(value: Value, schema: Option<&Schema>, planned: Option<&Value>) -> Value {
    let mut paths = planned.map(Value::sensitive_paths).unwrap_or_default();
    if let Some(schema) = schema {
        paths.extend(
            schema.attributes.iter().filter(|(_, a)| a.sensitive).map(|(n, _)| vec![PathStep::Key((*n).to_string())]),
        );
    }
    value.unmark().0.mark_paths(&paths)
}
