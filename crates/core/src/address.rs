//! [`ResourceAddress`]: how a resource instance is named, in state, plans and on the CLI.

use std::fmt;
use std::str::FromStr;

/// Which instance of a resource with `count` or `for_each`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InstanceKey {
    None,
    Int(u64),
    Str(String),
}

/// One step of a module path: the call's name, and which instance of it when
/// the call has `count` or `for_each` (`web["a"]`, `db[0]`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleStep {
    pub name: String,
    pub key: InstanceKey,
}

impl ModuleStep {
    /// A step of a call without instances.
    pub fn plain(name: impl Into<String>) -> ModuleStep {
        ModuleStep { name: name.into(), key: InstanceKey::None }
    }

    /// The steps of a module instance: call names with their instance keys.
    pub fn keyed(names: &[String], keys: &[InstanceKey]) -> Vec<ModuleStep> {
        names.iter().zip(keys).map(|(name, key)| ModuleStep { name: name.clone(), key: key.clone() }).collect()
    }

    /// The steps of a module path written as call names only.
    pub fn path(names: &[String]) -> Vec<ModuleStep> {
        names.iter().map(ModuleStep::plain).collect()
    }

    /// Whether `self`, written in an address the user gave, names `other`: a
    /// step without a key names every instance of the call, as `-target
    /// module.web` does in Terraform.
    fn names(&self, other: &ModuleStep) -> bool {
        self.name == other.name && (self.key == InstanceKey::None || self.key == other.key)
    }
}

impl fmt::Display for ModuleStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.name, self.key)
    }
}

/// `[0]`, `["a"]`, or nothing: how an instance key is written after a name.
impl fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstanceKey::None => Ok(()),
            InstanceKey::Int(i) => write!(f, "[{i}]"),
            InstanceKey::Str(s) => write!(f, "[{s:?}]"),
        }
    }
}

/// `module.net.module.dns.file.motd["a"]`: the module path, type, name and key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceAddress {
    pub module: Vec<ModuleStep>,
    pub kind: String,
    pub name: String,
    pub key: InstanceKey,
}

impl ResourceAddress {
    pub fn new(module: Vec<ModuleStep>, kind: impl Into<String>, name: impl Into<String>, key: InstanceKey) -> Self {
        ResourceAddress { module, kind: kind.into(), name: name.into(), key }
    }

    /// The same address without its instance key: the resource as written.
    pub fn without_key(&self) -> ResourceAddress {
        ResourceAddress { key: InstanceKey::None, ..self.clone() }
    }

    /// Whether the address lies in the module called by the path `names`
    /// (call names, any instance).
    pub fn in_module(&self, names: &[String]) -> bool {
        self.module.len() == names.len() && self.module.iter().zip(names).all(|(step, name)| step.name == *name)
    }

    /// Whether the address is an instance of the block `kind.name` in the
    /// module called by the path `names` (any instance of each call).
    pub fn of_block(&self, names: &[String], kind: &str, name: &str) -> bool {
        self.kind == kind && self.name == name && self.in_module(names)
    }

    /// Whether `self`, as a user wrote it, may name instances of the block
    /// `kind.name` in the module called by the path `names`, whatever their
    /// keys: `module.web["a"]` and `module.web.file.x[0]` both may name
    /// instances of `file.x` in `module.web`.
    pub fn may_name_block(&self, names: &[String], kind: &str, name: &str) -> bool {
        let under =
            self.module.len() <= names.len() && self.module.iter().zip(names).all(|(step, call)| step.name == *call);
        under && (self.kind.is_empty() || (self.module.len() == names.len() && self.kind == kind && self.name == name))
    }

    /// The instance keys of its module path, one per call (`None` for a call
    /// without `count` or `for_each`): which instance of its module it is in.
    pub fn module_keys(&self) -> Vec<InstanceKey> {
        self.module.iter().map(|step| step.key.clone()).collect()
    }

    /// True when `self` names `other` or a resource that contains it: `file.x` contains
    /// `file.x[0]`, `module.m` (with an empty kind) contains everything in it, and
    /// a module step without a key names every instance of that call.
    pub fn contains(&self, other: &ResourceAddress) -> bool {
        let under = other.module.len() >= self.module.len()
            && self.module.iter().zip(&other.module).all(|(mine, theirs)| mine.names(theirs));
        if !under {
            return false;
        }
        if self.kind.is_empty() {
            return true;
        }
        self.module.len() == other.module.len()
            && self.kind == other.kind
            && self.name == other.name
            && (self.key == InstanceKey::None || self.key == other.key)
    }
}

impl fmt::Display for ResourceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.module.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "module.{m}")?;
        }
        if self.kind.is_empty() {
            return Ok(());
        }
        if !self.module.is_empty() {
            f.write_str(".")?;
        }
        write!(f, "{}.{}{}", self.kind, self.name, self.key)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid resource address {input:?}: {reason}")]
pub struct AddressParseError {
    pub input: String,
    pub reason: &'static str,
}

/// A dot-separated part of an address: a name and the key written after it.
struct Part {
    name: String,
    key: InstanceKey,
}

/// Splits `module.web["a.b"].file.x[0]` into its parts: names separated by
/// dots, each optionally followed by one `[index]` (a number or a quoted
/// string, `\"` and `\\` escaped), dots inside quotes belonging to the key.
fn parts(input: &str) -> Result<Vec<Part>, &'static str> {
    let mut parts = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '.' || c == '[' {
                break;
            }
            name.push(c);
            chars.next();
        }
        let is_name = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if name.is_empty() {
            return Err("empty name");
        }
        if !is_name {
            return Err("names are letters, digits, `_` and `-`, as in `file.motd` (no quotes)");
        }
        let key = if chars.peek() == Some(&'[') {
            chars.next();
            index(&mut chars)?
        } else {
            InstanceKey::None
        };
        parts.push(Part { name, key });
        match chars.next() {
            None => return Ok(parts),
            Some('.') => {}
            Some(_) => return Err("an index ends a name, as in `file.x[0]` or `module.web[\"a\"].file.x`"),
        }
    }
}

/// An instance key as written after a name: `[0]` or `["a"]`, nothing after it.
pub(crate) fn parse_key(text: &str) -> Result<InstanceKey, &'static str> {
    let mut chars = text.chars().peekable();
    if chars.next() != Some('[') {
        return Err("an instance key starts with `[`");
    }
    let key = index(&mut chars)?;
    if chars.next().is_some() {
        return Err("nothing may follow an instance key");
    }
    Ok(key)
}

/// The inside of `[...]` after the `[`, and the `]`.
fn index(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<InstanceKey, &'static str> {
    const BAD: &str = "an index is a number or a quoted string, as in `file.x[0]` or `file.x[\"a\"]`";
    if chars.peek() == Some(&'"') {
        chars.next();
        let mut key = String::new();
        loop {
            match chars.next() {
                Some('\\') => key.push(chars.next().ok_or(BAD)?),
                Some('"') => break,
                Some(c) => key.push(c),
                None => return Err(BAD),
            }
        }
        return if chars.next() == Some(']') { Ok(InstanceKey::Str(key)) } else { Err(BAD) };
    }
    let mut digits = String::new();
    loop {
        match chars.next() {
            Some(']') => break,
            Some(c) => digits.push(c),
            None => return Err(BAD),
        }
    }
    digits.parse().map(InstanceKey::Int).map_err(|_| BAD)
}

/// Parses addresses as users type them; `module.m` alone names a whole module.
impl FromStr for ResourceAddress {
    type Err = AddressParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| AddressParseError { input: input.to_string(), reason };
        let parts = parts(input).map_err(err)?;
        let mut module = Vec::new();
        let mut i = 0;
        while i + 1 < parts.len() && parts[i].name == "module" && parts[i].key == InstanceKey::None {
            module.push(ModuleStep { name: parts[i + 1].name.clone(), key: parts[i + 1].key.clone() });
            i += 2;
        }
        match &parts[i..] {
            [] => Ok(ResourceAddress::new(module, "", "", InstanceKey::None)),
            [kind, name] if kind.key == InstanceKey::None => {
                Ok(ResourceAddress::new(module, kind.name.clone(), name.name.clone(), name.key.clone()))
            }
            _ => Err(err("expected TYPE.NAME, optionally after module.NAME.")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_instances_are_part_of_the_address() {
        let text = "module.web[\"a.b\"].module.db[0].file.x[\"k\"]";
        let parsed: ResourceAddress = text.parse().expect(text);
        assert_eq!(parsed.module[0], ModuleStep { name: "web".into(), key: InstanceKey::Str("a.b".into()) });
        assert_eq!(parsed.module[1], ModuleStep { name: "db".into(), key: InstanceKey::Int(0) });
        assert_eq!(parsed.to_string(), text);
        let all: ResourceAddress = "module.web".parse().expect("a module");
        let one: ResourceAddress = "module.web[\"a\"]".parse().expect("an instance");
        let inside: ResourceAddress = "module.web[\"a\"].file.x".parse().expect("inside");
        let other: ResourceAddress = "module.web[\"b\"].file.x".parse().expect("inside another");
        assert!(all.contains(&inside) && all.contains(&other), "a call without a key names every instance");
        assert!(one.contains(&inside) && !one.contains(&other));
        assert!(inside.in_module(&["web".to_string()]));
        for bad in ["module.web[a].file.x", "module.web[\"a\"file.x", "file[0].x", "module.web[\"a\"]x.file.y"] {
            assert!(bad.parse::<ResourceAddress>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn round_trips_through_text() {
        for text in [
            "file.motd",
            "file.x[3]",
            "module.web.file.x[\"a\"]",
            "module.a.module.b.random_id.id",
            "file.q[\"a\\\"b\"]",
        ] {
            let parsed: ResourceAddress = text.parse().expect(text);
            assert_eq!(parsed.to_string(), text);
        }
        assert!("file".parse::<ResourceAddress>().is_err());
        assert!("\"file.x\"".parse::<ResourceAddress>().is_err(), "a quoted address is not an address");
        assert!("file.x y".parse::<ResourceAddress>().is_err());
        assert!("file.x[abc]".parse::<ResourceAddress>().is_err());
    }

    #[test]
    fn containment() {
        let module: ResourceAddress = "module.web".parse().expect("valid");
        let inner: ResourceAddress = "module.web.file.x[0]".parse().expect("valid");
        let whole: ResourceAddress = "module.web.file.x".parse().expect("valid");
        assert!(module.contains(&inner));
        assert!(whole.contains(&inner));
        assert!(!inner.contains(&whole));
    }
}
