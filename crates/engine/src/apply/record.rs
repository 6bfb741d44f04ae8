//! Taking in what finished: state updated in memory, then recorded durably
//! (one write for everything that finished together) before anything that
//! depends on it starts; the report's counts; the outputs at the end.

use std::collections::BTreeMap;

use infra_core::plan::{Action, PlanMode};
use infra_core::state::ResourceState;
use infra_core::{PathStep, ProviderError, ProviderErrorKind, ProviderKey, ResourceAddress, Schema, Value};
use infra_syntax::{Code, Diagnostic};

use super::operation::{Done, Finished, Op, Removal, RemovalKind, Work, Write};
use super::{Applier, Event};
use crate::graph::Node;

impl Applier<'_> {
    /// Takes in one finished operation: updates state in memory and returns the
    /// address to record durably and the event to show once it is recorded.
    pub(super) fn complete(&mut self, finished: Finished) -> (Option<ResourceAddress>, Option<Event>) {
        let (op, outcome, elapsed) = finished;
        // A backend's message may quote what it was given, secrets included.
        let outcome = outcome.map_err(|mut e| {
            e.message = op.values().into_iter().fold(e.message, |text, v| v.redact(&text));
            e
        });
        let location = self.location(&op);
        if let Err(e) = &outcome
            && e.kind == ProviderErrorKind::Unavailable
            && op.address().is_some()
        {
            self.unavailable.entry((op.provider.clone(), location.clone())).or_default();
        }
        let event = op.address().map(|address| Event::Finished {
            address: address.clone(),
            action: op.action(),
            elapsed,
            error: outcome.as_ref().err().map(|e| e.message.clone()),
            location,
        });
        let recorded = match outcome {
            Err(e) => {
                self.failed(&op, &e);
                None
            }
            Ok(done) => self.take_in(op, done),
        };
        (recorded, event)
    }

    fn failed(&mut self, op: &Op, e: &ProviderError) {
        let diagnostic = match (&op.work, op.address()) {
            (Work::Configure(settings), _) => settings.refused(e),
            (_, Some(address)) => {
                let verb = op.verb();
                let d = Diagnostic::error(Code::Provider, format!("{address}: {verb} failed: {}", e.message));
                match self.resource_span(address) {
                    Some(span) => d.with_label(span, format!("while {verb} this resource")),
                    None => d,
                }
            }
            (_, None) => Diagnostic::error(Code::Provider, e.message.clone()),
        };
        self.fail(op.step, vec![diagnostic]);
    }

    /// A success; returns the address whose record changed.
    fn take_in(&mut self, op: Op, done: Done) -> Option<ResourceAddress> {
        match (op.work, done) {
            (Work::Configure(_), Done::Configured(provider)) => {
                self.providers.insert(op.provider, provider);
                None
            }
            (Work::Write(write), Done::Written(value)) => Some(self.written(op.step, op.provider, *write, value)),
            (Work::Remove(removal), Done::Removed) => Some(self.removed(removal)),
            // `operation::execute` answers each kind of work with its own kind of result.
            _ => None,
        }
    }

    fn written(
        &mut self,
        step: usize,
        provider: infra_core::ProviderKey,
        write: Write,
        value: Value,
    ) -> ResourceAddress {
        let attributes = mark_sensitive(value, &write.schema, &write.planned);
        let record = ResourceState {
            provider: provider.clone(),
            attributes,
            dependencies: write.dependencies,
            create_before_destroy: write.create_before_destroy,
            revisions: write.kept,
        };
        let old = self.state.resources.insert(write.address.clone(), record);
        match write.action {
            Action::Update => self.report.changed += 1,
            _ => self.report.added += 1,
        }
        if write.create_before_destroy
            && let Some(old) = old.map(|o| o.attributes).or(write.prior)
        {
            let kind = RemovalKind::DeleteReplaced;
            let kept = self.state.resources.get(&write.address).map(|r| r.revisions.clone()).unwrap_or_default();
            let removal = Removal { address: write.address.clone(), prior: old, kind, kept };
            self.queue(Op { step, provider, work: Work::Remove(removal) });
        }
        write.address
    }

    fn removed(&mut self, removal: Removal) -> ResourceAddress {
        if removal.kind != RemovalKind::DeleteReplaced {
            self.state.resources.remove(&removal.address);
        }
        if removal.kind == RemovalKind::Delete && !removal.kept.is_empty() {
            // The first half of a destroy-first replacement: the second records them.
            self.replaced_revisions.insert(removal.address.clone(), removal.kept);
        }
        if removal.kind == RemovalKind::Forget {
            self.report.forgotten += 1;
        } else {
            self.report.destroyed += 1;
        }
        removal.address
    }

    fn resource_span(&self, address: &ResourceAddress) -> Option<infra_syntax::Span> {
        let module = self.ws.config.modules.iter().find(|m| address.in_module(&m.path))?;
        let r = module.resources.get(&(address.kind.clone(), address.name.clone()))?;
        Some(r.kind.span.to(r.name.span))
    }

    /// Records the resources at `touched` durably now. If that fails nothing
    /// more may start: the next operation would not be recorded.
    pub(super) fn persist(&mut self, touched: &[ResourceAddress]) {
        self.state.serial += 1;
        self.recorded = true;
        if let Err(e) = self.store.record(self.state, touched) {
            let done: Vec<String> = touched.iter().map(ToString::to_string).collect();
            self.report.errors.push(
                Diagnostic::error(Code::State, format!("{} changed but could not be recorded: {e}", done.join(", ")))
                    .with_help(
                        "infra stopped so that no further change goes unrecorded; once state can be written, the next \
                     apply finds these objects again (or makes them anew) and finishes",
                    ),
            );
            self.halted = true;
        }
    }

    /// Records the settings of a provider instance (of a configuration with
    /// `for_each`) before anything is done through it, when they differ from
    /// what state has.
    pub(super) fn record_provider_settings(&mut self, key: &ProviderKey, config: &Value) {
        if self.halted || self.state.providers.get(key) == Some(config) {
            return;
        }
        self.state.providers.insert(key.clone(), config.clone());
        self.state.serial += 1;
        if let Err(e) = self.store.save(self.state) {
            let message = format!("provider `{key}`: its settings could not be recorded: {e}");
            self.report.errors.push(Diagnostic::error(Code::State, message));
            self.halted = true;
        }
    }

    /// `apply -refresh-only`: state takes what the plan's refresh found, changes
    /// made outside infra included; nothing real is touched.
    pub(super) fn accept_drift(&mut self) {
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

    /// One full snapshot at the end folds the run's journal into state, with
    /// the outputs as they now are.
    pub(super) fn save_outputs(&mut self) {
        if self.halted {
            return;
        }
        let outputs = match self.plan.mode {
            PlanMode::RefreshOnly => self.refreshed_outputs(),
            PlanMode::Normal => self.evaluated_outputs(),
            PlanMode::Destroy => BTreeMap::new(),
        };
        // Settings of provider instances nothing recorded was made by are not needed any more.
        let used: std::collections::BTreeSet<&ProviderKey> =
            self.state.resources.values().map(|r| &r.provider).collect();
        let unused: Vec<ProviderKey> = self.state.providers.keys().filter(|k| !used.contains(k)).cloned().collect();
        for key in &unused {
            self.state.providers.remove(key);
        }
        if outputs != self.state.outputs || self.recorded || !unused.is_empty() {
            self.state.outputs = outputs;
            self.state.serial += 1;
            if let Err(e) = self.store.save(self.state) {
                self.report.errors.push(Diagnostic::error(Code::State, e.to_string()));
            }
        }
    }

    /// What the plan computed from the refreshed values; an output of something
    /// never created keeps its recorded value.
    fn refreshed_outputs(&self) -> BTreeMap<String, Value> {
        let mut outputs = BTreeMap::new();
        for output in &self.plan.outputs {
            let value = match &output.after {
                Some(v) if v.is_wholly_known() => Some(v),
                _ => self.state.outputs.get(&output.name),
            };
            if let Some(value) = value {
                outputs.insert(output.name.clone(), value.clone());
            }
        }
        outputs
    }

    /// The root outputs as evaluated in this run; one that could not be keeps
    /// its recorded value.
    fn evaluated_outputs(&self) -> BTreeMap<String, Value> {
        let mut outputs = BTreeMap::new();
        for name in self.ws.config.root().outputs.keys() {
            let value = self.values.get(&Node::Output(0, name.clone()), &[]).or_else(|| self.state.outputs.get(name));
            if let Some(value) = value {
                outputs.insert(name.clone(), value.clone());
            }
        }
        outputs
    }
}

/// Provider answers come back bare: mark what the schema calls sensitive and what
/// the configuration marked.
fn mark_sensitive(value: Value, schema: &Schema, planned: &Value) -> Value {
    let mut paths = planned.sensitive_paths();
    paths.extend(
        schema.attributes.iter().filter(|(_, a)| a.sensitive).map(|(n, _)| vec![PathStep::Key((*n).to_string())]),
    );
    value.unmark().0.mark_paths(&paths)
}
