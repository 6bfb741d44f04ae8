//! Evaluation shared by plan and apply: variables, locals, outputs, provider
//! configurations, resource expansion and instance configurations.

use std::collections::BTreeMap;

use infra_core::{InstanceKey, ProviderKey, ResourceAddress, Schema, Type, Value};
use infra_lang::{Config, Host, Resource, eval, eval_body};
use infra_syntax::ast::Expr;
use infra_syntax::{Code, Diagnostic};

use crate::graph::Node;
use crate::scope::{ModuleInstance, ModuleScope, Place, Repetition, Values};

pub struct Evaluator<'a> {
    pub config: &'a Config,
    pub host: &'a Host,
    /// Values for root variables (`-var`, var files, environment).
    pub root_variables: &'a BTreeMap<String, Value>,
}

impl<'a> Evaluator<'a> {
    pub fn scope<'v>(&'v self, values: &'v Values, place: Place<'v>, repetition: Repetition) -> ModuleScope<'v> {
        ModuleScope { config: self.config, values, place, repetition, host: self.host }
    }

    /// A variable's value: from its module call (or the root inputs), else its
    /// default; converted to its type, marked if sensitive, validated.
    pub fn variable(&self, values: &Values, place: Place<'_>, name: &str) -> Result<Value, Vec<Diagnostic>> {
        let m = place.module;
        let module = &self.config.modules[m];
        let variable = &module.variables[name];
        let (given, span) = match self.config.caller(m) {
            None => (self.root_variables.get(name).cloned(), variable.name.span),
            Some((parent, call)) => match call.inputs.iter().find(|i| i.name.name == name) {
                Some(input) => {
                    let at = Place { module: parent, keys: &place.keys[..place.keys.len().saturating_sub(1)] };
                    let scope = self.scope(values, at, values.repetition(m, place.keys));
                    (Some(eval(&input.value, &scope).map_err(|d| vec![d])?), input.value.span)
                }
                None => (None, call.name.span),
            },
        };
        let value = match (given, &variable.default) {
            (Some(v), _) => v,
            (None, Some(default)) => {
                let scope = self.scope(values, place, Repetition::Single);
                eval(default, &scope).map_err(|d| vec![d])?
            }
            (None, None) => {
                return Err(vec![
                    Diagnostic::error(Code::MissingVariable, format!("no value for the required variable `{name}`"))
                        .with_label(variable.name.span, "declared here without a default")
                        .with_help(format!(
                            "pass `-var {name}=...`, put `{name} = ...` in a `-var-file`, or set INFRA_VAR_{name}"
                        )),
                ]);
            }
        };
        let value = variable.ty.convert(value).map_err(|found| {
            vec![
                Diagnostic::error(
                    Code::TypeMismatch,
                    format!("variable `{name}` must be {}, found {found}", variable.ty),
                )
                .with_label(span, format!("expected {}", variable.ty)),
            ]
        })?;
        let value = if variable.sensitive { value.sensitive() } else { value };
        self.validate(place, name, &value)?;
        Ok(value)
    }

    fn validate(&self, place: Place<'_>, name: &str, value: &Value) -> Result<(), Vec<Diagnostic>> {
        let variable = &self.config.modules[place.module].variables[name];
        if variable.validations.is_empty() || !value.is_wholly_known() {
            return Ok(());
        }
        // A validation sees only its own variable.
        let mut own = Values::default();
        own.set(Node::Variable(place.module, name.to_string()), place.keys, value.clone());
        let scope = self.scope(&own, place, Repetition::Single);
        let errors = false_conditions(&scope, &variable.validations, Code::Validation, &|message| {
            format!("invalid value for `var.{name}`: {message}")
        });
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// A `check` block's asserts against the values known so far. A condition
    /// that depends on something known only after apply passes the plan and is
    /// judged when apply evaluates it again.
    pub fn check(&self, values: &Values, place: Place<'_>, name: &str) -> Result<Value, Vec<Diagnostic>> {
        let check = &self.config.modules[place.module].checks[name];
        let scope = self.scope(values, place, Repetition::Single);
        let prefix: String = place.steps(self.config).iter().map(|step| format!("module.{step}.")).collect();
        let errors = false_conditions(&scope, &check.asserts, Code::Check, &|message| {
            format!("check `{prefix}{name}` failed: {message}")
        });
        if errors.is_empty() { Ok(Value::Null) } else { Err(errors) }
    }

    /// Evaluates a variable, local, output, check or module call node into
    /// `values`, once per instance of its module; `None` for providers and
    /// resources, which plan and apply handle each their own way. When
    /// destroying, outputs and checks are skipped: they may refer to what is
    /// already gone.
    pub fn value_node(
        &self,
        values: &mut Values,
        node: &Node,
        destroying: bool,
    ) -> Option<Result<(), Vec<Diagnostic>>> {
        match node {
            Node::Provider(_) | Node::Resource(..) => return None,
            Node::Output(..) | Node::Check(..) if destroying => return Some(Ok(())),
            _ => {}
        }
        let mut errors: Vec<Diagnostic> = Vec::new();
        for keys in values.instances(node.module()) {
            let place = Place { module: node.module(), keys: &keys };
            let evaluated = match node {
                Node::Call(_, name) => self.call(values, place, name),
                _ => self.value(values, place, node).map(|v| values.set(node.clone(), &keys, v)),
            };
            // Every instance of a module makes the same mistake the same way: say it once.
            for d in evaluated.err().into_iter().flatten() {
                if !errors.contains(&d) {
                    errors.push(d);
                }
            }
        }
        Some(if errors.is_empty() { Ok(()) } else { Err(errors) })
    }

    fn value(&self, values: &Values, place: Place<'_>, node: &Node) -> Result<Value, Vec<Diagnostic>> {
        match node {
            Node::Variable(_, name) => self.variable(values, place, name),
            Node::Local(_, name) => self.local(values, place, name),
            Node::Output(_, name) => self.output(values, place, name),
            Node::Check(_, name) => self.check(values, place, name),
            Node::Provider(_) | Node::Resource(..) | Node::Call(..) => Ok(Value::Null),
        }
    }

    /// The instances one instance of a module makes of the module it calls
    /// `name`: one per `count` or `for_each` key, or one without a key.
    fn call(&self, values: &mut Values, place: Place<'_>, name: &str) -> Result<(), Vec<Diagnostic>> {
        let call = &self.config.modules[place.module].calls[name];
        let Some(child) = call.module else { return Ok(()) };
        let scope = self.scope(values, place, Repetition::Single);
        let repetitions = repetitions(&scope, call.count.as_ref(), call.for_each.as_ref())?;
        let mut instances = Vec::new();
        for repetition in repetitions {
            let providers = self.passed_providers(values, place, call, &repetition)?;
            instances.push((place.child_keys(repetition.key()), ModuleInstance { repetition, providers }));
        }
        for (keys, instance) in instances {
            values.add_instance(child, keys, instance);
        }
        Ok(())
    }

    /// What the instance `repetition` of `call` (made in `place`) means by
    /// each provider name: the calling instance's meanings, then the call's
    /// `providers` map, with instance keys evaluated.
    fn passed_providers(
        &self,
        values: &Values,
        place: Place<'_>,
        call: &infra_lang::ModuleCall,
        repetition: &Repetition,
    ) -> Result<BTreeMap<ProviderKey, ProviderKey>, Vec<Diagnostic>> {
        let mut providers = values.instance(place).map(|i| i.providers.clone()).unwrap_or_default();
        for pass in &call.providers {
            let outer = values.provider_in(place, &pass.outer.reference.key());
            let chosen = match &pass.outer.instance {
                Some(key) => {
                    let scope = self.scope(values, place, repetition.clone());
                    outer.block().instance(instance_key(key, eval(key, &scope).map_err(|d| vec![d])?)?)
                }
                None => outer,
            };
            providers.insert(pass.inner.key(), chosen);
        }
        Ok(providers)
    }

    /// The provider configuration (the instance, for one with `for_each`) that
    /// manages one instance of `resource`: `block` is the configuration the
    /// graph chose for the block.
    pub fn provider_of(
        &self,
        values: &Values,
        place: Place<'_>,
        resource: &Resource,
        repetition: &Repetition,
        block: &ProviderKey,
    ) -> Result<ProviderKey, Vec<Diagnostic>> {
        let chosen = resource.provider.as_deref();
        if let Some(key) = chosen.and_then(|c| c.instance.as_ref()) {
            let scope = self.scope(values, place, repetition.clone());
            return Ok(block.instance(instance_key(key, eval(key, &scope).map_err(|d| vec![d])?)?));
        }
        let local = chosen.map_or_else(|| ProviderKey::new(block.name()), |c| c.reference.key());
        Ok(values.provider_in(place, &local))
    }

    pub fn local(&self, values: &Values, place: Place<'_>, name: &str) -> Result<Value, Vec<Diagnostic>> {
        let local = &self.config.modules[place.module].locals[name];
        eval(&local.value, &self.scope(values, place, Repetition::Single)).map_err(|d| vec![d])
    }

    pub fn output(&self, values: &Values, place: Place<'_>, name: &str) -> Result<Value, Vec<Diagnostic>> {
        let output = &self.config.modules[place.module].outputs[name];
        let value = eval(&output.value, &self.scope(values, place, Repetition::Single)).map_err(|d| vec![d])?;
        if place.module == 0 && value.contains_sensitive() && !output.sensitive {
            return Err(vec![
                Diagnostic::error(Code::SensitiveOutput, format!("output `{name}` would show a sensitive value"))
                    .with_label(output.value.span, "this value is sensitive")
                    .with_help("add `sensitive = true` to the output to keep it out of plans and logs"),
            ]);
        }
        Ok(if output.sensitive { value.sensitive() } else { value })
    }

    /// The instances a provider block with `for_each` asks for (one without a
    /// key for a block without, or no block).
    pub fn provider_repetitions(
        &self,
        values: &Values,
        block: &ProviderKey,
    ) -> Result<Vec<Repetition>, Vec<Diagnostic>> {
        let found = self.config.root().providers.iter().find(|p| p.reference.key() == *block);
        let scope = self.scope(values, Place::ROOT, Repetition::Single);
        repetitions(&scope, None, found.and_then(|p| p.for_each.as_ref()))
    }

    pub fn provider_config(
        &self,
        values: &Values,
        key: &ProviderKey,
        repetition: Repetition,
        schema: &Schema,
    ) -> Result<Value, Vec<Diagnostic>> {
        let block = self.config.root().providers.iter().find(|p| p.reference.key() == key.block());
        let scope = self.scope(values, Place::ROOT, repetition);
        match block {
            Some(b) => eval_body(&b.body, schema, &scope, &[], b.span, &format!("provider `{key}`")),
            None => {
                eval_body(&Default::default(), schema, &scope, &[], Default::default(), &format!("provider `{key}`"))
            }
        }
    }

    /// The instances `count` / `for_each` ask for, in key order.
    pub fn expand(
        &self,
        values: &Values,
        place: Place<'_>,
        resource: &Resource,
    ) -> Result<Vec<Repetition>, Vec<Diagnostic>> {
        let scope = self.scope(values, place, Repetition::Single);
        repetitions(&scope, resource.count.as_deref(), resource.for_each.as_deref())
    }

    pub fn instance_config(
        &self,
        values: &Values,
        place: Place<'_>,
        resource: &Resource,
        repetition: &Repetition,
        schema: &Schema,
        what: &str,
    ) -> Result<Value, Vec<Diagnostic>> {
        let scope = self.scope(values, place, repetition.clone());
        let config = eval_body(&resource.body, schema, &scope, &[], resource.kind.span.to(resource.name.span), what);
        let unknown_ignored: Vec<Diagnostic> = resource
            .lifecycle
            .ignore_changes
            .iter()
            .filter(|i| {
                !schema.attributes.contains_key(i.name.as_str()) && !schema.blocks.contains_key(i.name.as_str())
            })
            .map(|i| {
                let d = Diagnostic::error(Code::IgnoreChanges, format!("{what} has no attribute `{}`", i.name))
                    .with_label(i.span, "not an attribute of this resource");
                match infra_lang::did_you_mean(&i.name, schema.attributes.keys().copied()) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d,
                }
            })
            .collect();
        match config {
            Ok(_) if !unknown_ignored.is_empty() => Err(unknown_ignored),
            Err(mut errors) => {
                errors.extend(unknown_ignored);
                Err(errors)
            }
            ok => ok,
        }
    }

    pub fn address(&self, place: Place<'_>, resource: &Resource, key: InstanceKey) -> ResourceAddress {
        ResourceAddress::new(place.steps(self.config), &resource.kind.name, &resource.name.name, key)
    }
}

fn unknown_expansion(span: infra_syntax::Span, what: &str) -> Diagnostic {
    Diagnostic::error(Code::UnknownExpansion, format!("`{what}` depends on values known only after apply"))
        .with_label(span, "not known at plan time")
        .with_help("base it on variables and locals, or apply the resources it depends on first with `-target`")
}

/// The value of a resource node from its instances' values.
pub fn aggregate(resource: &Resource, instances: Vec<(InstanceKey, Value)>) -> Value {
    if resource.count.is_some() {
        Value::List(instances.into_iter().map(|(_, v)| v).collect())
    } else if resource.for_each.is_some() {
        Value::Object(
            instances
                .into_iter()
                .filter_map(|(k, v)| match k {
                    InstanceKey::Str(s) => Some((s, v)),
                    _ => None,
                })
                .collect(),
        )
    } else {
        instances.into_iter().next().map(|(_, v)| v).unwrap_or(Value::Null)
    }
}

/// The instances `count` or `for_each` (at most one of them is given) ask for,
/// in key order; one without a key when neither is.
fn repetitions(
    scope: &ModuleScope<'_>,
    count: Option<&Expr>,
    for_each: Option<&Expr>,
) -> Result<Vec<Repetition>, Vec<Diagnostic>> {
    if let Some(count) = count {
        let value = eval(count, scope).map_err(|d| vec![d])?;
        return count_repetitions(count, value).map_err(|d| vec![d]);
    }
    if let Some(for_each) = for_each {
        let value = eval(for_each, scope).map_err(|d| vec![d])?;
        return each_repetitions(for_each, value).map_err(|d| vec![d]);
    }
    Ok(vec![Repetition::Single])
}

/// An instance key chosen by an expression (`docker.hosts[each.key]`): a
/// string or a whole number.
fn instance_key(expr: &Expr, value: Value) -> Result<InstanceKey, Vec<Diagnostic>> {
    match value.unmark().0 {
        Value::String(s) => Ok(InstanceKey::Str(s)),
        Value::Number(n) if n >= 0.0 && n.fract() == 0.0 => Ok(InstanceKey::Int(n as u64)),
        Value::Unknown => Err(vec![unknown_expansion(expr.span, "provider")]),
        other => Err(vec![
            Diagnostic::error(
                Code::ProviderRef,
                format!("a provider instance is chosen by a string or a whole number, found a {}", other.type_name()),
            )
            .with_label(expr.span, "not an instance key"),
        ]),
    }
}

/// The instances `count = <value>` asks for.
fn count_repetitions(count: &Expr, value: Value) -> Result<Vec<Repetition>, Diagnostic> {
    match Type::Number.convert(value.unmark().0) {
        Ok(Value::Number(n)) if n >= 0.0 && n.fract() == 0.0 => Ok((0..n as u64).map(Repetition::Count).collect()),
        Ok(Value::Unknown) => Err(unknown_expansion(count.span, "count")),
        _ => {
            Err(Diagnostic::error(Code::Count, "`count` must be a whole number ≥ 0")
                .with_label(count.span, "not a count"))
        }
    }
}

/// The instances `for_each = <value>` asks for: one per key of a map, or per
/// string of a list, in key order.
fn each_repetitions(for_each: &Expr, value: Value) -> Result<Vec<Repetition>, Diagnostic> {
    // A map's keys are known even where its values are not (`for_each =
    // module.machine`, whose addresses come after apply): only keys must be.
    let keys_known = match value.peel() {
        Value::Unknown => false,
        Value::List(items) => items.iter().all(Value::is_wholly_known),
        _ => true,
    };
    if !keys_known {
        return Err(unknown_expansion(for_each.span, "for_each"));
    }
    let keys_secret = match &value {
        Value::Sensitive(_) => true,
        Value::List(items) => items.iter().any(Value::contains_sensitive),
        _ => false,
    };
    if keys_secret {
        return Err(Diagnostic::error(Code::ForEach, "`for_each` cannot take its keys from a sensitive value")
            .with_label(for_each.span, "sensitive")
            .with_help(
                "keys become part of resource addresses, which every plan shows; key by a name that is not secret \
                 and keep the secret in the value",
            ));
    }
    let sensitive = value.contains_sensitive();
    match value.unmark().0 {
        Value::Object(map) => {
            Ok(map.into_iter().map(|(k, v)| Repetition::Each(k, if sensitive { v.sensitive() } else { v })).collect())
        }
        Value::List(items) => list_repetitions(for_each, items),
        other => Err(Diagnostic::error(
            Code::ForEach,
            format!("`for_each` needs a map or a list of strings, found a {}", other.type_name()),
        )
        .with_label(for_each.span, "not a collection")),
    }
}

/// `for_each` over a list: strings only, none repeated (each key is one
/// instance, so two equal keys would silently be one).
fn list_repetitions(for_each: &Expr, items: Vec<Value>) -> Result<Vec<Repetition>, Diagnostic> {
    let mut keys = Vec::new();
    for item in items {
        match item {
            Value::String(s) => keys.push(Repetition::Each(s.clone(), Value::String(s))),
            other => {
                return Err(Diagnostic::error(
                    Code::ForEach,
                    format!("`for_each` over a list needs strings, found a {}", other.type_name()),
                )
                .with_label(for_each.span, "use a map, or a list of strings"));
            }
        }
    }
    keys.sort_by_key(|a| a.key());
    let mut repeated: Vec<String> = keys
        .windows(2)
        .filter_map(|w| match (&w[0], &w[1]) {
            (Repetition::Each(a, _), Repetition::Each(b, _)) if a == b => Some(format!("{a:?}")),
            _ => None,
        })
        .collect();
    repeated.dedup();
    if repeated.is_empty() {
        return Ok(keys);
    }
    Err(Diagnostic::error(Code::ForEach, format!("`for_each` over a list repeats {}", repeated.join(", ")))
        .with_label(for_each.span, "each key makes one instance")
        .with_help("remove the repeats, or write `toset(...)` to drop them on purpose"))
}

/// The conditions that are false (or not bools), each as a diagnostic with its
/// error message, worded by `failure`. Unknown conditions pass.
fn false_conditions(
    scope: &dyn infra_lang::Scope,
    conditions: &[infra_lang::Validation],
    code: Code,
    failure: &dyn Fn(&str) -> String,
) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    for condition in conditions {
        match eval(&condition.condition, scope).map(|v| v.peel().clone()) {
            Ok(Value::Bool(true)) | Ok(Value::Unknown) => {}
            Ok(Value::Bool(false)) => {
                let message = match eval(&condition.error_message, scope) {
                    // As Terraform does: the message is not shown at all.
                    Ok(m) if m.contains_sensitive() => {
                        "the error message includes a sensitive value, so it is not shown".to_string()
                    }
                    Ok(m) => m.as_str().map_or_else(|| "the condition is false".into(), str::to_string),
                    Err(_) => "the condition is false".into(),
                };
                errors.push(
                    Diagnostic::error(code, failure(&message))
                        .with_label(condition.condition.span, "this condition is false"),
                );
            }
            Ok(other) => errors.push(
                Diagnostic::error(code, format!("a condition must be a bool, found a {}", other.type_name()))
                    .with_label(condition.condition.span, "not a bool"),
            ),
            Err(d) => errors.push(d),
        }
    }
    errors
}
