//! `infra validate`: evaluates every expression with unknown inputs, so type
//! errors, unknown attributes and missing ones show up without state, variables
//! or providers.

use std::collections::BTreeMap;

use infra_core::Value;
use infra_syntax::Diagnostic;
use petgraph::Direction;

use crate::graph::{Graph, Node};
use crate::scope::{Repetition, Values};
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
                Some(factory) => eval.provider_config(&values, key, &factory.schema().config).map(|_| Value::Unknown),
                None => Ok(Value::Unknown),
            },
            Node::Resource(m, kind, name) => {
                let resource = &ws.config.modules[*m].resources[&(kind.clone(), name.clone())];
                let provider = graph.resource_provider[&(*m, kind.clone(), name.clone())].clone();
                let factory = ws.registry.get(provider.name());
                match factory.and_then(|f| f.schema().resources.get(kind.as_str())) {
                    Some(schema) => {
                        let what = eval.address(*m, resource, infra_core::InstanceKey::None).to_string();
                        eval.instance_config(&values, *m, resource, &Repetition::Any, schema, &what)
                            .map(|_| Value::Unknown)
                    }
                    None => Ok(Value::Unknown),
                }
            }
            other => match eval.value_node(&mut values, other, false) {
                Some(Ok(())) => continue,
                Some(Err(e)) => Err(e),
                None => Ok(Value::Unknown),
            },
        };
        match result {
            Ok(v) => values.set(node, v),
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
