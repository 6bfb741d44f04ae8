//! The ssh provider's resource types: the one place their names are spelled.
//! Entry points turn the engine's type name into a [`Kind`] once and dispatch
//! on it; modules that serve several types (`fs`, `accounts`, `system`) get
//! the name to tell them apart.

use infra_core::{ProviderError, Schema};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Server,
    File,
    Directory,
    Permissions,
    Group,
    User,
    AuthorizedKey,
    Package,
    Service,
    Sysctl,
    Timer,
    Sshd,
    Firewall,
    Backup,
}

impl Kind {
    pub const ALL: [Kind; 14] = [
        Kind::Server,
        Kind::File,
        Kind::Directory,
        Kind::Permissions,
        Kind::Group,
        Kind::User,
        Kind::AuthorizedKey,
        Kind::Package,
        Kind::Service,
        Kind::Sysctl,
        Kind::Timer,
        Kind::Sshd,
        Kind::Firewall,
        Kind::Backup,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Server => "server",
            Kind::File => "file",
            Kind::Directory => "directory",
            Kind::Permissions => "permissions",
            Kind::Group => "group",
            Kind::User => "user",
            Kind::AuthorizedKey => "authorized_key",
            Kind::Package => "package",
            Kind::Service => "service",
            Kind::Sysctl => "sysctl",
            Kind::Timer => "timer",
            Kind::Sshd => "sshd",
            Kind::Firewall => "firewall",
            Kind::Backup => "backup",
        }
    }

    pub fn of(name: &str) -> Result<Kind, ProviderError> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| ProviderError::invalid("", format!("the ssh provider has no resource type `{name}`")))
    }

    pub fn schema(self) -> Schema {
        match self {
            Kind::Server => crate::server::schema(),
            Kind::File => crate::fs::file_schema(),
            Kind::Directory => crate::fs::directory_schema(),
            Kind::Permissions => crate::fs::permissions_schema(),
            Kind::Group => crate::accounts::group_schema(),
            Kind::User => crate::accounts::user_schema(),
            Kind::AuthorizedKey => crate::accounts::key_schema(),
            Kind::Package => crate::packages::schema(),
            Kind::Service => crate::system::service_schema(),
            Kind::Sysctl => crate::system::sysctl_schema(),
            Kind::Timer => crate::timer::schema(),
            Kind::Sshd => crate::sshd::schema(),
            Kind::Firewall => crate::firewall::schema(),
            Kind::Backup => crate::backup::schema(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_name_and_nothing_else_does() {
        for kind in Kind::ALL {
            assert_eq!(Kind::of(kind.name()).expect("known"), kind);
        }
        assert_eq!(Kind::of("swarm").expect_err("unknown").message, "the ssh provider has no resource type `swarm`");
    }
}
