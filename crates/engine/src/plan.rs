//! The plan walk: configure providers, refresh what state records (one batched
//! read per provider), then evaluate every node in dependency order and compare
//! each resource instance with its refreshed state.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use infra_core::plan::{Action, ChangeReason, Drift, OutputChange, Plan, PlanMode, PlanWarning, ResourceChange};
use infra_core::state::{ResourceState, State};
use infra_core::{InstanceKey, ModuleStep, Provider, ProviderKey, ReadRequest, ResourceAddress, Value};
use infra_syntax::{Code, Diagnostic};
use petgraph::Direction;
use petgraph::graph::NodeIndex;

use crate::graph::{Graph, Node};
use crate::propose::{action, same};
use crate::scope::{Place, Values};
use crate::{Workspace, evaluate};

#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    pub mode: PlanMode,
    /// Read the real world first, so drift shows (`-refresh=false` skips it).
    pub refresh: bool,
    pub targets: Vec<ResourceAddress>,
    pub replace: Vec<ResourceAddress>,
    pub variables: BTreeMap<String, Value>,
    /// `infra rollback`: instances planned from these settings instead of
    /// their blocks; only they are planned, nothing they depend on.
    pub restore: BTreeMap<ResourceAddress, infra_core::plan::Restore>,
}

pub(crate) struct Planner<'a> {
    ws: &'a Workspace<'a>,
    graph: &'a Graph,
    state: &'a State,
    options: &'a PlanOptions,
    eval: evaluate::Evaluator<'a>,
    values: Values,
    pub(crate) providers: HashMap<ProviderKey, Arc<dyn Provider>>,
    /// Configurations that connect only at apply (settings not known yet).
    configured_at_apply: HashSet<ProviderKey>,
    /// Refreshed attributes by address; `None` when the object is gone.
    refreshed: HashMap<ResourceAddress, Option<Value>>,
    changes: Vec<ResourceChange>,
    drift: Vec<Drift>,
    warnings: Vec<PlanWarning>,
    errors: Vec<Diagnostic>,
    failed: HashSet<NodeIndex>,
    /// Resource nodes the plan may change (all, unless `-target` narrows it).
    in_scope: Option<HashSet<NodeIndex>>,
}

pub async fn plan(
    ws: &Workspace<'_>,
    graph: &Graph,
    state: &State,
    options: &PlanOptions,
) -> Result<Plan, Vec<Diagnostic>> {
    let prior = state;
    let crate::moves::Moved { mut state, moves: moved, warnings: move_warnings } =
        crate::moves::apply(ws.config, prior)?;
    let imports = match options.mode {
        PlanMode::Normal => crate::imports::read(ws, graph, &mut state, &options.variables).await?,
        PlanMode::Destroy | PlanMode::RefreshOnly => Vec::new(),
    };
    let state: &State = &state;
    let mut planner = Planner {
        ws,
        graph,
        state,
        options,
        eval: evaluate::Evaluator { config: ws.config, host: ws.host, root_variables: &options.variables },
        values: Values::default(),
        providers: HashMap::new(),
        configured_at_apply: HashSet::new(),
        refreshed: HashMap::new(),
        // One change per resource block at least: reserved so that the vector
        // does not double past it (at 100,000 resources, 9 MB of slack).
        changes: Vec::with_capacity(graph.resource_provider.len()),
        drift: Vec::new(),
        warnings: Vec::new(),
        errors: Vec::new(),
        failed: HashSet::new(),
        in_scope: None,
    };
    planner.check_root_variables();
    planner.in_scope = planner.targeted_nodes();
    for node in graph.topological() {
        planner.visit(node).await;
    }
    planner.plan_removed_resources().await;
    if options.mode == PlanMode::Normal {
        planner.check_targets_name_something();
    }
    let outputs = planner.output_changes();
    if !planner.errors.is_empty() {
        return Err(planner.errors);
    }
    let mut changes = planner.changes;
    // An address has one change at most (a recorded instance is either planned
    // or deleted), so an unstable sort gives the stable order without the
    // stable sort's buffer of half the changes.
    changes.sort_unstable_by(|a, b| a.address.cmp(&b.address));
    debug_assert!(changes.windows(2).all(|w| w[0].address != w[1].address), "one change per address");
    let mut drift = planner.drift;
    // An object just imported was read a moment ago; it has no history to drift from.
    drift.retain(|d| !imports.iter().any(|i| i.address == d.address));
    drift.sort_by(|a, b| a.address.cmp(&b.address));
    let mut warnings = move_warnings;
    warnings.extend(planner.warnings);
    Ok(Plan {
        mode: options.mode,
        lineage: prior.lineage.clone(),
        prior_serial: prior.serial,
        config_digest: crate::config_digest(ws.config, &options.variables),
        variables: marked_variables(ws, &options.variables),
        targets: options.targets.clone(),
        changes,
        drift,
        outputs,
        warnings,
        moved,
        imports,
        withheld: Default::default(),
        restore: options.restore.clone(),
    })
}

/// The root variables as given, those declared `sensitive` marked so: a saved
/// plan withholds them.
fn marked_variables(ws: &Workspace, given: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    let declared = &ws.config.root().variables;
    given
        .iter()
        .map(|(name, value)| {
            let sensitive = declared.get(name).is_some_and(|v| v.sensitive);
            (name.clone(), if sensitive { value.clone().sensitive() } else { value.clone() })
        })
        .collect()
}

/// Resource dependencies of a node: the resources it reads, directly or through
/// variables, locals, outputs and the configuration of its provider.
pub(crate) fn resource_dependencies(ws: &Workspace, graph: &Graph, node: NodeIndex) -> Vec<ResourceAddress> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut stack: Vec<NodeIndex> = graph.graph.neighbors_directed(node, Direction::Incoming).collect();
    while let Some(n) = stack.pop() {
        if !seen.insert(n) {
            continue;
        }
        match &graph.graph[n] {
            Node::Resource(m, kind, name) => {
                out.push(ResourceAddress::new(
                    ModuleStep::path(&ws.config.modules[*m].path),
                    kind,
                    name,
                    InstanceKey::None,
                ));
            }
            // What a provider's configuration reads (the server a Docker engine
            // is reached through) is a dependency of everything it manages.
            _ => stack.extend(graph.graph.neighbors_directed(n, Direction::Incoming)),
        }
    }
    out.sort();
    out
}

impl<'a> Planner<'a> {
    fn check_root_variables(&mut self) {
        let declared = &self.ws.config.root().variables;
        for name in self.options.variables.keys() {
            if !declared.contains_key(name) {
                let mut d = Diagnostic::error(
                    Code::UnknownVariable,
                    format!("a value was given for `{name}`, which is not declared"),
                );
                if let Some(s) = infra_lang::did_you_mean(name, declared.keys().map(String::as_str)) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                } else {
                    d = d.with_help(format!("declare it with `variable \"{name}\" {{}}` or remove the value"));
                }
                self.errors.push(d);
            }
        }
    }

    /// With `-target`, the targeted resources and everything they depend on;
    /// in destroy mode, the targets and everything that depends on them.
    fn targeted_nodes(&self) -> Option<HashSet<NodeIndex>> {
        if self.options.targets.is_empty() {
            return None;
        }
        let direction = match self.options.mode {
            PlanMode::Normal | PlanMode::RefreshOnly => Direction::Incoming,
            PlanMode::Destroy => Direction::Outgoing,
        };
        let mut keep = HashSet::new();
        let mut stack: Vec<NodeIndex> = self
            .graph
            .graph
            .node_indices()
            .filter(|i| match &self.graph.graph[*i] {
                Node::Resource(m, kind, name) => {
                    let path = &self.ws.config.modules[*m].path;
                    self.options.targets.iter().any(|t| t.may_name_block(path, kind, name))
                }
                _ => false,
            })
            .collect();
        // A rollback changes exactly what it names: what that reads stays as recorded.
        let reach = self.options.restore.is_empty();
        while let Some(n) = stack.pop() {
            if keep.insert(n) && reach {
                stack.extend(self.graph.graph.neighbors_directed(n, direction));
            }
        }
        Some(keep)
    }

    /// A `-target` that names no instance the configuration makes and nothing
    /// state records is a typing mistake (a wrong key, say), not an empty plan.
    fn check_targets_name_something(&mut self) {
        for target in &self.options.targets {
            let named = self.changes.iter().any(|c| target.contains(&c.address))
                || self.state.resources.keys().any(|a| target.contains(a));
            if !named {
                let d = Diagnostic::error(Code::Target, format!("`-target {target}` matches nothing")).with_help(
                    "no instance the configuration makes and nothing state records has this address; \
                     `infra state list` shows what state records, and an instance of a module with \
                     `for_each` is written with its key: `module.web[\"a\"]`",
                );
                let d = self.label_call_instances(d, target);
                self.errors.push(d);
            }
        }
    }

    /// Points a diagnostic about `target` at the module call its path names,
    /// with the instances that call makes.
    fn label_call_instances(&self, d: Diagnostic, target: &ResourceAddress) -> Diagnostic {
        let names: Vec<String> = target.module.iter().map(|step| step.name.clone()).collect();
        let call = names
            .split_last()
            .and_then(|(last, above)| self.ws.config.modules.iter().find(|m| m.path == above)?.calls.get(last));
        let Some(call) = call else { return d };
        let Some(child) = call.module else { return d };
        let span = call.for_each.as_ref().or(call.count.as_ref()).map_or(call.name.span, |e| e.span);
        let keys: Vec<String> = (self.values.instances(child).iter())
            .filter_map(|keys| keys.last().map(ToString::to_string))
            .filter(|key| !key.is_empty())
            .collect();
        let label = match keys.as_slice() {
            [] => "this call makes no keyed instances".to_string(),
            keys => format!("makes {}", keys.join(", ")),
        };
        d.with_label(span, label)
    }

    fn targeted(&self, node: NodeIndex, address: &ResourceAddress) -> bool {
        match &self.in_scope {
            None => true,
            // A block some target names (whatever the keys) is planned only in the
            // instances a target contains; a block it reaches through a
            // dependency, in all of them.
            Some(nodes) => {
                let names: Vec<String> = address.module.iter().map(|step| step.name.clone()).collect();
                nodes.contains(&node)
                    && (self.options.targets.iter().any(|t| t.contains(address))
                        || !self.options.targets.iter().any(|t| t.may_name_block(&names, &address.kind, &address.name)))
            }
        }
    }

    async fn visit(&mut self, node: NodeIndex) {
        let upstream_failed =
            self.graph.graph.neighbors_directed(node, Direction::Incoming).any(|n| self.failed.contains(&n));
        if upstream_failed {
            self.failed.insert(node);
            return;
        }
        let destroying = self.options.mode == PlanMode::Destroy;
        let result = match self.graph.graph[node].clone() {
            Node::Provider(key) => self.configure_provider(&key).await,
            Node::Resource(m, kind, name) => self.plan_resource(node, m, &kind, &name),
            other => self.eval.value_node(&mut self.values, &other, destroying).unwrap_or(Ok(())),
        };
        if let Err(errors) = result {
            self.errors.extend(errors);
            self.failed.insert(node);
        }
    }

    /// Configures every instance of the configuration `block` (those state
    /// records and the configuration no longer makes included) and refreshes
    /// what each manages.
    /// A configuration whose settings read values known only after apply (and
    /// so cannot connect yet) is configured at apply; changes through it say so.
    async fn configure_provider(&mut self, block: &ProviderKey) -> Result<(), Vec<Diagnostic>> {
        let state: &State = self.state;
        let all = crate::providers::settings(self.ws, &self.eval, &self.values, block, &state.providers)?;
        for settings in all {
            let key = settings.key().clone();
            let provider = match settings.connect().await {
                Ok(provider) => provider,
                Err(_) if !settings.config().is_wholly_known() => {
                    self.configured_at_apply.insert(key.clone());
                    self.providers.insert(key.clone(), crate::providers::ConfiguredAtApply::standing_in_for(key));
                    continue;
                }
                Err(e) => return Err(vec![settings.refused(&e)]),
            };
            self.providers.insert(key.clone(), provider.clone());
            if self.options.refresh {
                self.refresh(&key, provider).await;
            }
        }
        Ok(())
    }

    /// One batched read for everything this provider manages.
    async fn refresh(&mut self, key: &ProviderKey, provider: Arc<dyn Provider>) {
        let requests: Vec<ReadRequest> = self
            .state
            .resources
            .iter()
            .filter(|(_, r)| r.provider == *key)
            .map(|(address, r)| ReadRequest {
                lineage: self.state.lineage.clone(),
                address: address.clone(),
                kind: address.kind.clone(),
                state: r.attributes.clone(),
            })
            .collect();
        if requests.is_empty() {
            return;
        }
        let results = provider.read(&requests).await;
        for (request, result) in requests.into_iter().zip(results) {
            match result {
                Ok(found) => {
                    let recorded = &request.state;
                    // Secrets stay secret after a read.
                    let found = found.map(|v| v.unmark().0.mark_paths(&recorded.sensitive_paths()));
                    let changed = found.as_ref().is_none_or(|f| !same(f, recorded));
                    if changed {
                        self.drift.push(Drift {
                            address: request.address.clone(),
                            recorded: recorded.clone(),
                            actual: found.clone(),
                        });
                    }
                    self.refreshed.insert(request.address, found);
                }
                Err(e) => self.errors.push(Diagnostic::error(
                    Code::Provider,
                    format!("{}: refreshing failed: {}", request.address, e.message),
                )),
            }
        }
    }

    fn prior(&self, address: &ResourceAddress) -> Option<Value> {
        match self.refreshed.get(address) {
            Some(refreshed) => refreshed.clone(),
            None => self.state.resources.get(address).map(|r| r.attributes.clone()),
        }
    }

    /// State instances of a resource as written in one instance of its module, with their keys.
    fn recorded_instances(
        &self,
        place: Place<'_>,
        kind: &str,
        name: &str,
    ) -> Vec<(ResourceAddress, &'a ResourceState)> {
        let base = ResourceAddress::new(place.steps(self.ws.config), kind, name, InstanceKey::None);
        let state: &'a State = self.state;
        infra_core::state::instances_of(&state.resources, &base).map(|(a, r)| (a.clone(), r)).collect()
    }

    /// Plans a resource block in every instance of its module, and deletes
    /// what it recorded in module instances that are gone.
    fn plan_resource(&mut self, node: NodeIndex, m: usize, kind: &str, name: &str) -> Result<(), Vec<Diagnostic>> {
        let module_instances = self.values.instances(m);
        let mut errors = Vec::new();
        for keys in &module_instances {
            let place = Place { module: m, keys };
            errors.extend(self.plan_resource_in(node, place, kind, name).err().into_iter().flatten());
        }
        if m != 0 {
            errors.extend(
                self.plan_vanished_instances(node, m, kind, name, &module_instances).err().into_iter().flatten(),
            );
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// Instances recorded in module instances the configuration no longer
    /// makes (a key removed from a module's `for_each`): deleted, through the
    /// provider configuration that made them.
    fn plan_vanished_instances(
        &mut self,
        node: NodeIndex,
        m: usize,
        kind: &str,
        name: &str,
        module_instances: &[Vec<InstanceKey>],
    ) -> Result<(), Vec<Diagnostic>> {
        let resource = &self.ws.config.modules[m].resources[&(kind.to_string(), name.to_string())];
        let path = &self.ws.config.modules[m].path;
        let in_scope = self.in_scope.as_ref().is_none_or(|s| s.contains(&node));
        let reason = match self.options.mode {
            PlanMode::Destroy => ChangeReason::DestroyRequested,
            PlanMode::Normal if in_scope => ChangeReason::ModuleInstanceRemoved,
            _ => return Ok(()),
        };
        let state: &'a State = self.state;
        let recorded = infra_core::state::instances_of_block(&state.resources, path, kind, name);
        let vanished = recorded.into_iter().filter(|(a, _)| !module_instances.contains(&a.module_keys()));
        for (address, r) in vanished {
            if !self.targeted(node, address) {
                continue;
            }
            if let Some(prior) = self.prior(address) {
                self.push_delete(address, &r.provider, prior, r.dependencies.clone(), reason, Some(resource))?;
            }
        }
        Ok(())
    }

    /// A resource not planned in this walk (destroying, refreshing, or outside
    /// `-target`): its value is what state recorded, refreshed; destroying
    /// plans the delete of each targeted instance.
    fn keep_recorded(
        &mut self,
        node: NodeIndex,
        place: Place<'_>,
        resource: &infra_lang::Resource,
        recorded: Vec<(ResourceAddress, &'a ResourceState)>,
    ) -> Result<(), Vec<Diagnostic>> {
        let mut instances = Vec::new();
        for (address, r) in recorded {
            let prior = self.prior(&address);
            if self.options.mode == PlanMode::Destroy
                && self.targeted(node, &address)
                && let Some(prior) = &prior
            {
                let (dependencies, reason) = (r.dependencies.clone(), ChangeReason::DestroyRequested);
                self.push_delete(&address, &r.provider, prior.clone(), dependencies, reason, Some(resource))?;
            }
            instances.push((address.key, prior.unwrap_or(Value::Null)));
        }
        // Not planned here and never created: nothing is known about it yet.
        let value = if instances.is_empty() { Value::Unknown } else { evaluate::aggregate(resource, instances) };
        let node = Node::Resource(place.module, resource.kind.name.clone(), resource.name.name.clone());
        self.values.set(node, place.keys, value);
        Ok(())
    }

    fn plan_resource_in(
        &mut self,
        node: NodeIndex,
        place: Place<'_>,
        kind: &str,
        name: &str,
    ) -> Result<(), Vec<Diagnostic>> {
        let m = place.module;
        let resource = &self.ws.config.modules[m].resources[&(kind.to_string(), name.to_string())];
        let block = self.graph.resource_provider[&(m, kind.to_string(), name.to_string())].clone();
        let recorded = self.recorded_instances(place, kind, name);
        let in_scope = self.in_scope.as_ref().is_none_or(|s| s.contains(&node));
        // Refresh-only proposes nothing: each resource is what refresh found.
        if self.options.mode != PlanMode::Normal || !in_scope {
            return self.keep_recorded(node, place, resource, recorded);
        }
        let Some(schema) = crate::providers::resource_schema(self.ws, &block, kind) else {
            return Ok(()); // the graph checked every resource type, so this is never reached
        };
        let repetitions = self.eval.expand(&self.values, place, resource)?;
        let dependencies = resource_dependencies(self.ws, self.graph, node);
        let mut instances = Vec::new();
        let mut errors = Vec::new();
        let mut planned_keys = HashSet::new();
        for repetition in &repetitions {
            let address = self.eval.address(place, resource, repetition.key());
            planned_keys.insert(address.key.clone());
            if !self.targeted(node, &address) {
                // Not planned now: what it has is what refresh found; never made, nothing is known.
                instances.push((address.key.clone(), self.prior(&address).unwrap_or(Value::Unknown)));
                continue;
            }
            let instance = crate::instance::Instance { place, resource, repetition, address: &address };
            let planned = self
                .provider_instance(&instance, &block)
                .and_then(|(key, provider)| self.plan_instance(&instance, schema, &provider, &key, &dependencies));
            match planned {
                Ok(after) => instances.push((address.key, after)),
                Err(e) => errors.extend(e),
            }
        }
        for (address, r) in recorded {
            if planned_keys.contains(&address.key) || !self.targeted(node, &address) {
                continue;
            }
            if let Some(prior) = self.prior(&address) {
                self.push_delete(
                    &address,
                    &r.provider,
                    prior,
                    r.dependencies.clone(),
                    ChangeReason::RemovedFromConfig,
                    Some(resource),
                )?;
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let value = evaluate::aggregate(resource, instances);
        self.values.set(Node::Resource(m, kind.into(), name.into()), place.keys, value);
        Ok(())
    }

    /// The configured provider (instance) that manages `instance`, of the
    /// configuration `block`; an error naming the instances there are when it
    /// chooses one the configuration does not make.
    fn provider_instance(
        &self,
        instance: &crate::instance::Instance<'_>,
        block: &ProviderKey,
    ) -> Result<(ProviderKey, Arc<dyn Provider>), Vec<Diagnostic>> {
        let key = self.eval.provider_of(&self.values, instance.place, instance.resource, instance.repetition, block)?;
        if let Some(provider) = self.providers.get(&key) {
            return Ok((key, provider.clone()));
        }
        let mut made: Vec<String> =
            self.providers.keys().filter(|k| k.block() == key.block()).map(|k| k.to_string()).collect();
        made.sort();
        let resource = instance.resource;
        let span = resource.provider.as_ref().map_or(resource.kind.span.to(resource.name.span), |c| c.span);
        let message = format!("{}: there is no provider configuration `{key}`", instance.address);
        let help = match made.as_slice() {
            [] => format!("`{}` makes no instances", key.block()),
            made => format!("its `for_each` makes {}", made.join(", ")),
        };
        Err(vec![Diagnostic::error(Code::UnknownProvider, message).with_label(span, "chosen here").with_help(help)])
    }

    fn plan_instance(
        &mut self,
        instance: &crate::instance::Instance<'_>,
        schema: &infra_core::Schema,
        provider: &Arc<dyn Provider>,
        provider_key: &ProviderKey,
        dependencies: &[ResourceAddress],
    ) -> Result<Value, Vec<Diagnostic>> {
        let (address, resource) = (instance.address, instance.resource);
        let prior = self.prior(address);
        let gone = self.state.resources.contains_key(address) && prior.is_none();
        let requested = self.options.replace.iter().any(|r| r == address);
        // A replacement asked for is planned as a new object: nothing computed
        // for the old one (an id, a generated password) carries over.
        let planned_from = if requested { None } else { prior.as_ref() };
        let restored = self.options.restore.get(address).map(|r| &r.settings);
        let planned =
            crate::instance::plan(&self.eval, &self.values, instance, schema, &**provider, planned_from, restored)?;
        let warnings = planned.warnings.into_iter().map(|message| PlanWarning { address: address.clone(), message });
        self.warnings.extend(warnings);
        let (replace, value) = (planned.replace, planned.value);
        let mut action = action(prior.as_ref(), &value, &replace);
        let mut reason = None;
        if requested && prior.is_some() {
            action = Action::Replace;
            reason = Some(ChangeReason::ReplaceRequested);
        } else if action == Action::Replace {
            reason = Some(ChangeReason::ForcedByAttributes);
        } else if gone {
            reason = Some(ChangeReason::GoneOutsideInfra);
        } else if self.configured_at_apply.contains(provider_key) && action != Action::NoOp {
            reason = Some(ChangeReason::ProviderConfiguredAtApply);
        }
        if matches!(action, Action::Replace) && resource.lifecycle.prevent_destroy {
            return Err(vec![prevented(&address.to_string(), resource)]);
        }
        self.changes.push(ResourceChange {
            address: address.clone(),
            provider: provider_key.clone(),
            action,
            before: prior,
            after: Some(value.clone()),
            replace_paths: replace,
            reason,
            note: planned.note.filter(|_| action == Action::Update),
            dependencies: dependencies.to_vec(),
            create_before_destroy: resource.lifecycle.create_before_destroy,
        });
        Ok(value)
    }

    fn push_delete(
        &mut self,
        address: &ResourceAddress,
        provider: &ProviderKey,
        prior: Value,
        dependencies: Vec<ResourceAddress>,
        reason: ChangeReason,
        resource: Option<&infra_lang::Resource>,
    ) -> Result<(), Vec<Diagnostic>> {
        if let Some(resource) = resource.filter(|r| r.lifecycle.prevent_destroy) {
            return Err(vec![prevented(&address.to_string(), resource)]);
        }
        let reason = match resource {
            Some(r) if r.lifecycle.abandon_on_destroy => ChangeReason::Abandoned,
            _ => reason,
        };
        self.changes.push(ResourceChange {
            address: address.clone(),
            provider: provider.clone(),
            action: Action::Delete,
            before: Some(prior),
            after: None,
            replace_paths: Vec::new(),
            reason: Some(reason),
            note: None,
            dependencies,
            create_before_destroy: false,
        });
        Ok(())
    }

    /// Resources in state whose block is gone from the configuration.
    async fn plan_removed_resources(&mut self) {
        let modules = &self.ws.config.modules;
        let removed: Vec<(ResourceAddress, ResourceState)> = self
            .state
            .resources
            .iter()
            .filter(|(a, _)| {
                let module = modules.iter().find(|m| a.in_module(&m.path));
                module.is_none_or(|m| m.resource(&a.kind, &a.name).is_none())
            })
            .filter(|(a, _)| {
                self.options.targets.is_empty()
                    || self.options.targets.iter().any(|t| t.contains(a) || t.without_key().contains(a))
            })
            .map(|(a, r)| (a.clone(), r.clone()))
            .collect();
        for (address, r) in removed {
            let configured = self.providers.keys().any(|k| k.block() == r.provider.block());
            if !configured && let Err(e) = self.configure_provider(&r.provider.block()).await {
                self.errors.extend(e);
                continue;
            }
            let reason = match self.options.mode {
                PlanMode::Destroy => ChangeReason::DestroyRequested,
                PlanMode::Normal => ChangeReason::RemovedFromConfig,
                PlanMode::RefreshOnly => continue,
            };
            if let Some(prior) = self.prior(&address) {
                let _ = self.push_delete(&address, &r.provider, prior, r.dependencies.clone(), reason, None);
            }
        }
    }

    fn output_changes(&mut self) -> Vec<OutputChange> {
        let root = self.ws.config.root();
        let mut changes: Vec<OutputChange> = root
            .outputs
            .keys()
            .map(|name| {
                let after = match self.options.mode {
                    PlanMode::Destroy => None,
                    PlanMode::Normal | PlanMode::RefreshOnly => {
                        self.values.get(&Node::Output(0, name.clone()), &[]).cloned()
                    }
                };
                OutputChange { name: name.clone(), before: self.state.outputs.get(name).cloned(), after }
            })
            .collect();
        for (name, value) in &self.state.outputs {
            if !root.outputs.contains_key(name) {
                changes.push(OutputChange { name: name.clone(), before: Some(value.clone()), after: None });
            }
        }
        changes.sort_by(|a, b| a.name.cmp(&b.name));
        changes
    }
}

fn prevented(what: &str, resource: &infra_lang::Resource) -> Diagnostic {
    Diagnostic::error(Code::PreventDestroy, format!("{what} has `prevent_destroy` set, but this plan would destroy it"))
        .with_label(resource.kind.span.to(resource.name.span), "protected resource")
        .with_help(
            "change the plan so it keeps the resource, or remove `prevent_destroy` from its lifecycle block first",
        )
}
