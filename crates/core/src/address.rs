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

/// `module.net.module.dns.file.motd["a"]`: the module path, type, name and key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceAddress {
    pub module: Vec<String>,
    pub kind: String,
    pub name: String,
    pub key: InstanceKey,
}

impl ResourceAddress {
    pub fn new(module: Vec<String>, kind: impl Into<String>, name: impl Into<String>, key: InstanceKey) -> Self {
        ResourceAddress { module, kind: kind.into(), name: name.into(), key }
    }

    /// The same address without its instance key: the resource as written.
    pub fn without_key(&self) -> ResourceAddress {
        ResourceAddress { key: InstanceKey::None, ..self.clone() }
    }

    /// True when `self` names `other` or a resource that contains it: `file.x` contains
    /// `file.x[0]`, and `module.m` (with an empty kind) contains everything in it.
    pub fn contains(&self, other: &ResourceAddress) -> bool {
        if !other.module.starts_with(&self.module) {
            return false;
        }
        if self.kind.is_empty() {
            return true;
        }
        self.module == other.module
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
        write!(f, "{}.{}", self.kind, self.name)?;
        match &self.key {
            InstanceKey::None => Ok(()),
            InstanceKey::Int(i) => write!(f, "[{i}]"),
            InstanceKey::Str(s) => write!(f, "[{s:?}]"),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid resource address {input:?}: {reason}")]
pub struct AddressParseError {
    pub input: String,
    pub reason: &'static str,
}

/// Parses addresses as users type them; `module.m` alone names a whole module.
impl FromStr for ResourceAddress {
    type Err = AddressParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| AddressParseError { input: input.to_string(), reason };
        let (path, key) = match input.find('[') {
            Some(open) => {
                let inner = input[open..]
                    .strip_prefix('[')
                    .and_then(|s| s.strip_suffix(']'))
                    .ok_or_else(|| err("an index must end the address, as in `file.x[0]`"))?;
                let key = if let Some(s) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                    InstanceKey::Str(s.replace("\\\"", "\""))
                } else {
                    InstanceKey::Int(inner.parse().map_err(|_| err("an index is a number or a quoted string"))?)
                };
                (&input[..open], key)
            }
            None => (input, InstanceKey::None),
        };
        let parts: Vec<&str> = path.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(err("empty name"));
        }
        let is_name = |p: &str| {
            p.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !parts.iter().all(|p| is_name(p)) {
            return Err(err("names are letters, digits, `_` and `-`, as in `file.motd` (no quotes)"));
        }
        let mut module = Vec::new();
        let mut i = 0;
        while i + 1 < parts.len() && parts[i] == "module" {
            module.push(parts[i + 1].to_string());
            i += 2;
        }
        match &parts[i..] {
            [] if key == InstanceKey::None => Ok(ResourceAddress::new(module, "", "", key)),
            [kind, name] => Ok(ResourceAddress::new(module, *kind, *name, key)),
            _ => Err(err("expected TYPE.NAME, optionally after module.NAME.")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        for text in ["file.motd", "file.x[3]", "module.web.file.x[\"a\"]", "module.a.module.b.random_id.id"] {
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
