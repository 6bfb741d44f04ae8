//! Which provider configuration manages a resource: `docker` (the default
//! configuration of the `docker` provider) or `docker.remote` (the one with
//! `alias = "remote"`). State and plans record it as that text.

use std::fmt;

/// A provider configuration's key: the provider's name and, for a second
/// configuration of the same provider, its alias.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderKey {
    text: String,
    /// Where the name ends in `text` (the alias follows a `.`).
    name_len: usize,
}

impl ProviderKey {
    /// The default configuration of provider `name`.
    pub fn new(name: &str) -> ProviderKey {
        ProviderKey { text: name.to_string(), name_len: name.len() }
    }

    /// The configuration of provider `name` with `alias`.
    pub fn aliased(name: &str, alias: &str) -> ProviderKey {
        ProviderKey { text: format!("{name}.{alias}"), name_len: name.len() }
    }

    /// A key as state and plans record it (`docker`, `docker.remote`).
    pub fn parse(text: &str) -> ProviderKey {
        match text.split_once('.') {
            Some((name, alias)) => ProviderKey::aliased(name, alias),
            None => ProviderKey::new(text),
        }
    }

    /// The provider's name: the one its factory is registered under.
    pub fn name(&self) -> &str {
        &self.text[..self.name_len]
    }

    pub fn alias(&self) -> Option<&str> {
        self.text.get(self.name_len + 1..)
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
        self.text == other
    }
}

impl PartialEq<&str> for ProviderKey {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
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
    }
}
