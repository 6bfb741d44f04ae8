//! `infra validate`: evaluates every expression with unknown inputs, so type
//! errors, unknown attributes and missing ones show up without state, variables
//! or providers.

use std::collections::BTreeMap;

use infra_core::{InstanceKey, Value};
use infra_syntax::Diagnostic;
use petgraph::Direction;

use crate::graph::{Graph, Node};
use crate::scope::{ModuleInstance, Place, Repetition, Values};
use crate::{Workspace, evaluate};

pub fn validate(ws: &Workspace<'_>, graph: &Graph) -> Vec<Diagnostic> {
    // Root variables without a default are unknown here: any value could come.
    let unknown_inputs: BTreeMap<String, Value> = ws
        .config
        .root()
        .variables
        .iter()
        .filter(|(_, v)| v.default.is_none())
        .map(|(n, _)| (n.clone(), Value::Unknown))
        .collect();
    let eval = evaluate::Evaluator { config: ws.config, host: ws.host, root_variables: &unknown_inputs };
    let mut values = Values::default();
    let mut errors = Vec::new();
    let mut failed = std::collections::HashSet::new();
    for index in graph.topological() {
        if graph.graph.neighbors_directed(index, Direction::Incoming).any(|n| failed.contains(&n)) {
            failed.insert(index);
            continue;
        }
        let node = graph.graph[index].clone();
        let result = match &node {
            Node::Provider(key) => match ws.registry.get(key.name()) {
                Some(factory) => {
                    let any =
                        if ws.config.root().providers.iter().any(|p| p.reference.key() == *key && p.for_each.is_some())
                        {
                            Repetition::Any
                        } else {
                            Repetition::Single
                        };
                    eval.provider_config(&values, key, any, &factory.schema().config).map(|_| Value::Unknown)
                }
                None => Ok(Value::Unknown),
            },
            Node::Resource(m, kind, name) => validate_resource(ws, graph, &eval, &values, *m, kind, name),
            Node::Call(m, name) => {
                any_instance_of_call(ws, &mut values, *m, name);
                continue;
            }
            other => match eval.value_node(&mut values, other, false) {
                Some(Ok(())) => continue,
                Some(Err(e)) => Err(e),
                None => Ok(Value::Unknown),
            },
        };
        match result {
            Ok(v) => {
                for keys in values.instances(node.module()) {
                    values.set(node.clone(), &keys, v.clone());
                }
            }
            Err(e) => {
                errors.extend(e);
                failed.insert(index);
            }
        }
    }
    errors.extend(crate::moves::check(ws.config));
    errors.extend(crate::imports::check(ws));
    errors
}

/// A resource block's body against its schema, with `count.index` and `each`
/// unknown, in every instance of its module.
fn validate_resource(
    ws: &Workspace<'_>,
    graph: &Graph,
    eval: &evaluate::Evaluator<'_>,
    values: &Values,
    m: usize,
    kind: &str,
    name: &str,
) -> Result<Value, Vec<Diagnostic>> {
    let resource = &ws.config.modules[m].resources[&(kind.to_string(), name.to_string())];
    let provider = &graph.resource_provider[&(m, kind.to_string(), name.to_string())];
    let factory = ws.registry.get(provider.name());
    let Some(schema) = factory.and_then(|f| f.schema().resources.get(kind)) else { return Ok(Value::Unknown) };
    for keys in values.instances(m) {
        let place = Place { module: m, keys: &keys };
        let what = eval.address(place, resource, InstanceKey::None).to_string();
        eval.instance_config(values, place, resource, &Repetition::Any, schema, &what)?;
    }
    Ok(Value::Unknown)
}

/// Validating: one instance of the called module stands for all of them,
/// with `count.index` and `each` unknown in the call's inputs.
fn any_instance_of_call(ws: &Workspace<'_>, values: &mut Values, m: usize, name: &str) {
    let call = &ws.config.modules[m].calls[name];
    let Some(child) = call.module else { return };
    let repeated = call.count.is_some() || call.for_each.is_some();
    let repetition = if repeated { Repetition::Any } else { Repetition::Single };
    for keys in values.instances(m) {
        let place = Place { module: m, keys: &keys };
        let instance = ModuleInstance { repetition: repetition.clone(), providers: Default::default() };
        values.add_instance(child, place.child_keys(InstanceKey::None), instance);
    }
}
