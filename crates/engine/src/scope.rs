//! The values known so far during a walk, and the [`Scope`] expressions see.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use infra_core::{InstanceKey, ModuleStep, ProviderKey, Value};
use infra_lang::{Config, Host, ModuleId, Reference, Scope};

use crate::graph::Node;

/// Which instance of a module an expression is evaluated in: the module and
/// the instance keys along its call path (empty for the root; `None` for a
/// call without `count` or `for_each`).
#[derive(Clone, Copy, Debug)]
pub struct Place<'k> {
    pub module: ModuleId,
    pub keys: &'k [InstanceKey],
}

impl Place<'static> {
    pub const ROOT: Place<'static> = Place { module: 0, keys: &[] };
}

impl Place<'_> {
    /// Its module path as address steps: `module.web["a"].module.db`.
    pub fn steps(&self, config: &Config) -> Vec<ModuleStep> {
        ModuleStep::keyed(&config.modules[self.module].path, self.keys)
    }

    /// The keys of its instance of the call it makes with `key`.
    pub fn child_keys(&self, key: InstanceKey) -> Vec<InstanceKey> {
        self.keys.iter().cloned().chain(std::iter::once(key)).collect()
    }
}

/// Values of evaluated nodes, one per instance of the node's module. A
/// resource's value is its one instance's object, a list (with `count`) or a
/// map (with `for_each`) of them.
pub struct Values {
    nodes: HashMap<Node, PerInstance>,
    /// The instances of each module known so far. The root has one, with no keys.
    instances: HashMap<ModuleId, BTreeMap<Vec<InstanceKey>, ModuleInstance>>,
}

/// A node's values by module instance. Most nodes are in the root module,
/// whose one instance has no keys: they hold their value without a map.
enum PerInstance {
    Root(Value),
    Keyed(HashMap<Vec<InstanceKey>, Value>),
}

/// One instance of a module.
#[derive(Clone, Debug, Default)]
pub struct ModuleInstance {
    /// The `count.index` or `each` its call's inputs see.
    pub repetition: Repetition,
    /// The provider configurations its resources use under other names (a
    /// call's `providers = { docker = docker.hosts[each.key] }`, and those of
    /// the calls above it): by the name used in the module, the instance meant.
    pub providers: BTreeMap<ProviderKey, ProviderKey>,
}

impl Default for Values {
    fn default() -> Values {
        let root = BTreeMap::from([(Vec::new(), ModuleInstance::default())]);
        Values { nodes: HashMap::new(), instances: HashMap::from([(0, root)]) }
    }
}

impl Values {
    pub fn set(&mut self, node: Node, keys: &[InstanceKey], value: Value) {
        let slot = self.nodes.entry(node).or_insert_with(|| PerInstance::Keyed(HashMap::new()));
        match slot {
            PerInstance::Root(held) if keys.is_empty() => *held = value,
            PerInstance::Keyed(map) if map.is_empty() && keys.is_empty() => *slot = PerInstance::Root(value),
            PerInstance::Keyed(map) => {
                map.insert(keys.to_vec(), value);
            }
            PerInstance::Root(held) => {
                let root = std::mem::replace(held, Value::Null);
                *slot = PerInstance::Keyed(HashMap::from([(Vec::new(), root), (keys.to_vec(), value)]));
            }
        }
    }

    pub fn get(&self, node: &Node, keys: &[InstanceKey]) -> Option<&Value> {
        match self.nodes.get(node)? {
            PerInstance::Root(value) => keys.is_empty().then_some(value),
            PerInstance::Keyed(map) => map.get(keys),
        }
    }

    /// The instances of module `m`, by their keys.
    pub fn instances(&self, m: ModuleId) -> Vec<Vec<InstanceKey>> {
        self.instances.get(&m).map(|i| i.keys().cloned().collect()).unwrap_or_default()
    }

    pub fn add_instance(&mut self, m: ModuleId, keys: Vec<InstanceKey>, instance: ModuleInstance) {
        self.instances.entry(m).or_default().insert(keys, instance);
    }

    pub fn instance(&self, place: Place<'_>) -> Option<&ModuleInstance> {
        self.instances.get(&place.module)?.get(place.keys)
    }

    /// The `count.index` / `each` of one module instance's call.
    pub fn repetition(&self, m: ModuleId, keys: &[InstanceKey]) -> Repetition {
        self.instance(Place { module: m, keys }).map(|i| i.repetition.clone()).unwrap_or_default()
    }

    /// The provider configuration a module instance means by `local`.
    pub fn provider_in(&self, place: Place<'_>, local: &ProviderKey) -> ProviderKey {
        self.instance(place).and_then(|i| i.providers.get(local)).cloned().unwrap_or_else(|| local.clone())
    }

    /// The instances of module `m` called from the parent instance `parent`.
    fn instances_under<'s>(
        &'s self,
        m: ModuleId,
        parent: &'s [InstanceKey],
    ) -> impl Iterator<Item = (&'s Vec<InstanceKey>, &'s Repetition)> + 's {
        let all = self.instances.get(&m).into_iter().flatten();
        all.filter(move |(keys, _)| keys.starts_with(parent)).map(|(keys, i)| (keys, &i.repetition))
    }
}

/// The `count.index` or `each.key` / `each.value` of the instance being evaluated.
#[derive(Clone, Debug, Default)]
pub enum Repetition {
    #[default]
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
    pub place: Place<'a>,
    pub repetition: Repetition,
    pub host: &'a Host,
}

impl ModuleScope<'_> {
    fn value(&self, node: Node) -> Option<Value> {
        self.values.get(&node, self.place.keys).cloned()
    }

    /// `module.NAME`: an object of its outputs, or for a call with `count` or
    /// `for_each`, a list or map of such objects, one per instance.
    fn module_call(&self, name: &str) -> Option<Value> {
        let call = self.config.modules[self.place.module].calls.get(name)?;
        let child = call.module?;
        let outputs_at = |keys: &[InstanceKey]| {
            let outputs = self.config.modules[child].outputs.keys().map(|o| {
                let v = self.values.get(&Node::Output(child, o.clone()), keys).cloned().unwrap_or(Value::Unknown);
                (o.clone(), v)
            });
            Value::Object(outputs.collect())
        };
        if call.count.is_none() && call.for_each.is_none() {
            return Some(outputs_at(&self.place.child_keys(InstanceKey::None)));
        }
        let instances: Vec<_> = self.values.instances_under(child, self.place.keys).collect();
        if instances.iter().any(|(_, r)| matches!(r, Repetition::Any)) {
            return Some(Value::Unknown);
        }
        let each = instances.into_iter().map(|(keys, repetition)| (repetition.key(), outputs_at(keys)));
        Some(match call.count {
            Some(_) => Value::List(each.map(|(_, v)| v).collect()),
            None => Value::Object(
                each.filter_map(|(key, v)| match key {
                    InstanceKey::Str(k) => Some((k, v)),
                    _ => None,
                })
                .collect(),
            ),
        })
    }
}

impl Scope for ModuleScope<'_> {
    fn resolve(&self, reference: &Reference) -> Option<Value> {
        let m = self.place.module;
        match reference {
            Reference::Var(n) => self.value(Node::Variable(m, n.clone())),
            Reference::Local(n) => self.value(Node::Local(m, n.clone())),
            Reference::Resource { kind, name } => self.value(Node::Resource(m, kind.clone(), name.clone())),
            Reference::Module(name) | Reference::ModuleOutput { module: name, .. } => self.module_call(name),
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
        &self.config.modules[self.place.module].dir
    }

    fn host(&self) -> &Host {
        self.host
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_every_module_instance_apart_from_the_root_one() {
        let mut values = Values::default();
        let node = || Node::Local(1, "x".into());
        let a = [InstanceKey::Str("a".into())];
        values.set(node(), &[], Value::string("root"));
        assert_eq!(values.get(&node(), &[]), Some(&Value::string("root")));
        assert_eq!(values.get(&node(), &a), None);
        values.set(node(), &a, Value::string("a"));
        values.set(node(), &[], Value::string("root again"));
        assert_eq!(values.get(&node(), &a), Some(&Value::string("a")));
        assert_eq!(values.get(&node(), &[]), Some(&Value::string("root again")));
        let b = Node::Local(1, "y".into());
        values.set(b.clone(), &a, Value::string("b"));
        values.set(b.clone(), &[], Value::string("b root"));
        assert_eq!(
            (values.get(&b, &a), values.get(&b, &[])),
            (Some(&Value::string("b")), Some(&Value::string("b root")))
        );
    }
}
