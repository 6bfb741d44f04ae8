//! The ssh provider's resource types: the one place their names are spelled.
//! Entry points turn the engine's type name into a [`Kind`] once and dispatch
//! on it; modules that serve several types (`fs`, `accounts`, `system`) get
//! the name to tell them apart.

use infra_core::{ResourceKind, Schema};

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

impl ResourceKind for Kind {
    const PROVIDER: &'static str = "ssh";
    const ALL: &'static [Kind] = &[
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

    fn name(self) -> &'static str {
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
}

impl Kind {
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
