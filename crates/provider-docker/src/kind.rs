//! The docker provider's resource types: the one place their names are
//! spelled. Every entry point turns the engine's type name into a [`Kind`]
//! once, and the rest dispatches on it, so a new type is a compile error
//! wherever it is not handled.

use infra_core::{ResourceKind, Schema};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Image,
    Network,
    Volume,
    Container,
    Backup,
    Swarm,
    SwarmNode,
    SwarmService,
    SwarmConfig,
    SwarmSecret,
    SwarmMembers,
}

impl ResourceKind for Kind {
    const PROVIDER: &'static str = "docker";
    const ALL: &'static [Kind] = &[
        Kind::Image,
        Kind::Network,
        Kind::Volume,
        Kind::Container,
        Kind::Backup,
        Kind::Swarm,
        Kind::SwarmNode,
        Kind::SwarmService,
        Kind::SwarmConfig,
        Kind::SwarmSecret,
        Kind::SwarmMembers,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Network => "network",
            Kind::Volume => "volume",
            Kind::Container => "container",
            Kind::Backup => "backup",
            Kind::Swarm => "swarm",
            Kind::SwarmNode => "swarm_node",
            Kind::SwarmService => "swarm_service",
            Kind::SwarmConfig => "swarm_config",
            Kind::SwarmSecret => "swarm_secret",
            Kind::SwarmMembers => "swarm_members",
        }
    }
}

impl Kind {
    pub fn schema(self) -> Schema {
        match self {
            Kind::Image => crate::image::schema(),
            Kind::Network => crate::network::schema(),
            Kind::Volume => crate::volume::schema(),
            Kind::Container => crate::container::schema(),
            Kind::Backup => crate::backup::schema(),
            Kind::Swarm => crate::swarm::swarm_schema(),
            Kind::SwarmNode => crate::swarm::node_schema(),
            Kind::SwarmService => crate::service_spec::schema(),
            Kind::SwarmConfig => crate::swarm_data::schema(crate::swarm_data::Data::Config),
            Kind::SwarmSecret => crate::swarm_data::schema(crate::swarm_data::Data::Secret),
            Kind::SwarmMembers => crate::swarm_members::schema(),
        }
    }

    /// The Docker object types a refresh of this kind lists: a backup is its
    /// runner container and its settings volume.
    pub fn listed(self) -> &'static [Kind] {
        match self {
            Kind::Backup => &[Kind::Container, Kind::Volume],
            Kind::Image => &[Kind::Image],
            Kind::Network => &[Kind::Network],
            Kind::Volume => &[Kind::Volume],
            Kind::Container => &[Kind::Container],
            Kind::Swarm => &[Kind::Swarm],
            Kind::SwarmNode => &[Kind::SwarmNode],
            Kind::SwarmService => &[Kind::SwarmService],
            Kind::SwarmConfig => &[Kind::SwarmConfig],
            Kind::SwarmSecret => &[Kind::SwarmSecret],
            Kind::SwarmMembers => &[Kind::SwarmMembers],
        }
    }
}
