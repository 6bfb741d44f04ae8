//! The values known so far during a walk, and the [`Scope`] expressions see.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use infra_core::{InstanceKey, Value};
use infra_lang::{Config, Host, ModuleId, Reference, Scope};

use crate::graph::Node;

/// Values of evaluated nodes. A resource's value is its one instance's object,
/// a list (with `count`) or a map (with `for_each`) of them.
#[derive(Default)]
pub struct Values {
    nodes: HashMap<Node, Value>,
}

impl Values {
    pub fn set(&mut self, node: Node, value: Value) {
        self.nodes.insert(node, value);
    }

    pub fn get(&self, node: &Node) -> Option<&Value> {
        self.nodes.get(node)
    }
}

/// The `count.index` or `each.key` / `each.value` of the instance being evaluated.
#[derive(Clone, Debug)]
pub enum Repetition {
    Single,
    /// Validation: some instance, `count.index` and `each` unknown.
    Any,
    Count(u64),
    Each(String, Value),
}

impl Repetition {
    pub fn key(&self) -> InstanceKey {
        match self {
            Repetition::Single | Repetition::Any => InstanceKey::None,
            Repetition::Count(i) => InstanceKey::Int(*i),
            Repetition::Each(k, _) => InstanceKey::Str(k.clone()),
        }
    }
}

fn relative_to(path: &Path, base: &Path) -> String {
    match path.strip_prefix(base) {
        Ok(rest) if rest.as_os_str().is_empty() => ".".to_string(),
        Ok(rest) => rest.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

pub struct ModuleScope<'a> {
    pub config: &'a Config,
    pub values: &'a Values,
    pub module: ModuleId,
    pub repetition: Repetition,
    pub host: &'a Host,
}

impl Scope for ModuleScope<'_> {
    fn resolve(&self, reference: &Reference) -> Option<Value> {
        let m = self.module;
        match reference {
            Reference::Var(n) => self.values.get(&Node::Variable(m, n.clone())).cloned(),
            Reference::Local(n) => self.values.get(&Node::Local(m, n.clone())).cloned(),
            Reference::Resource { kind, name } => {
                self.values.get(&Node::Resource(m, kind.clone(), name.clone())).cloned()
            }
            Reference::Module(name) | Reference::ModuleOutput { module: name, .. } => {
                let child = self.config.modules[m].calls.get(name)?.module?;
                let outputs: BTreeMap<String, Value> = self.config.modules[child]
                    .outputs
                    .keys()
                    .map(|o| {
                        let v = self.values.get(&Node::Output(child, o.clone())).cloned().unwrap_or(Value::Unknown);
                        (o.clone(), v)
                    })
                    .collect();
                Some(Value::Object(outputs))
            }
            Reference::CountIndex => match self.repetition {
                Repetition::Count(i) => Some(Value::Number(i as f64)),
                Repetition::Any => Some(Value::Unknown),
                _ => None,
            },
            Reference::EachKey => match &self.repetition {
                Repetition::Each(k, _) => Some(Value::string(k.clone())),
                Repetition::Any => Some(Value::Unknown),
                _ => None,
            },
            Reference::EachValue => match &self.repetition {
                Repetition::Each(_, v) => Some(v.clone()),
                Repetition::Any => Some(Value::Unknown),
                _ => None,
            },
            // As in Terraform, `path.module` and `path.root` are relative to the
            // working directory, so plans do not change with where a checkout lives.
            Reference::Path(p) => {
                let path = match p.as_str() {
                    "module" => relative_to(&self.config.modules[m].dir, &self.host.cwd),
                    "root" => relative_to(&self.host.root, &self.host.cwd),
                    "cwd" => self.host.cwd.display().to_string(),
                    _ => return None,
                };
                Some(Value::string(path))
            }
            Reference::Env(attr) => (attr == "name").then(|| Value::string(self.host.environment_name())),
        }
    }

    fn module_dir(&self) -> &Path {
        &self.config.modules[self.module].dir
    }

    fn host(&self) -> &Host {
        self.host
    }
}
