//! Which provider configuration manages a resource: `docker` (the default
//! configuration of the `docker` provider), `docker.remote` (the one with
//! `alias = "remote"`), or `docker.hosts["web1"]` (one instance of a
//! configuration with `for_each`). State and plans record it as that text.

use std::fmt;

use crate::InstanceKey;

/// A provider configuration's key: the provider's name and, for a second
/// configuration of the same provider, its alias; for one with `for_each`,
/// which instance.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderKey {
    /// Shared: every planned change and state record of a configuration holds
    /// its key, and a plan of 100,000 resources clones it that often.
    text: std::sync::Arc<str>,
    /// Where the name ends in `text` (the alias follows a `.`).
    name_len: usize,
    /// Where the block's key ends in `text` (the instance key follows).
    block_len: usize,
    instance: InstanceKey,
}

impl ProviderKey {
    /// The default configuration of provider `name`.
    pub fn new(name: &str) -> ProviderKey {
        ProviderKey { text: name.into(), name_len: name.len(), block_len: name.len(), instance: InstanceKey::None }
    }

    /// The configuration of provider `name` with `alias`.
    pub fn aliased(name: &str, alias: &str) -> ProviderKey {
        let text = format!("{name}.{alias}");
        ProviderKey { block_len: text.len(), text: text.into(), name_len: name.len(), instance: InstanceKey::None }
    }

    /// One instance of this configuration (which has `for_each`): `docker.hosts["web1"]`.
    pub fn instance(&self, key: InstanceKey) -> ProviderKey {
        let block = &self.text[..self.block_len];
        ProviderKey { text: format!("{block}{key}").into(), instance: key, ..self.clone() }
    }

    /// The configuration block this key names an instance of (itself when it has no instance key).
    pub fn block(&self) -> ProviderKey {
        self.instance(InstanceKey::None)
    }

    /// Which instance of a configuration with `for_each`; `None` for one without.
    pub fn instance_key(&self) -> &InstanceKey {
        &self.instance
    }

    /// A key as state and plans record it (`docker`, `docker.remote`,
    /// `docker.hosts["web1"]`). A key whose instance part does not read is
    /// kept as text, naming no configuration there is.
    pub fn parse(text: &str) -> ProviderKey {
        let (block, instance) = match text.find('[') {
            Some(at) => match crate::address::parse_key(&text[at..]) {
                Ok(key) => (&text[..at], key),
                Err(_) => (text, InstanceKey::None),
            },
            None => (text, InstanceKey::None),
        };
        let block = match block.split_once('.') {
            Some((name, alias)) => ProviderKey::aliased(name, alias),
            None => ProviderKey::new(block),
        };
        block.instance(instance)
    }

    /// The provider's name: the one its factory is registered under.
    pub fn name(&self) -> &str {
        &self.text[..self.name_len]
    }

    pub fn alias(&self) -> Option<&str> {
        self.text.get(self.name_len + 1..self.block_len)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for ProviderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<&str> for ProviderKey {
    fn from(text: &str) -> ProviderKey {
        ProviderKey::parse(text)
    }
}

impl PartialEq<str> for ProviderKey {
    fn eq(&self, other: &str) -> bool {
        *self.text == *other
    }
}

impl PartialEq<&str> for ProviderKey {
    fn eq(&self, other: &&str) -> bool {
        *self.text == **other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_names_its_provider_and_alias_and_reads_back_as_written() {
        let plain = ProviderKey::parse("docker");
        assert_eq!((plain.name(), plain.alias(), plain.as_str()), ("docker", None, "docker"));
        let aliased = ProviderKey::parse("docker.remote");
        assert_eq!((aliased.name(), aliased.alias()), ("docker", Some("remote")));
        assert_eq!(aliased, ProviderKey::aliased("docker", "remote"));
        assert_eq!(aliased.to_string(), "docker.remote");
        assert!(plain < aliased, "ordered as the text");
        let one = ProviderKey::parse("docker.hosts[\"web.1\"]");
        assert_eq!((one.name(), one.alias()), ("docker", Some("hosts")));
        assert_eq!(one.instance_key(), &InstanceKey::Str("web.1".into()));
        assert_eq!(one.block(), ProviderKey::aliased("docker", "hosts"));
        assert_eq!(one.to_string(), "docker.hosts[\"web.1\"]");
        assert_eq!(ProviderKey::aliased("docker", "hosts").instance(InstanceKey::Int(2)).as_str(), "docker.hosts[2]");
    }
}
