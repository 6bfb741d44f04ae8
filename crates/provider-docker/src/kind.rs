//! The docker provider's resource types: the one place their names are
//! spelled. Every entry point turns the engine's type name into a [`Kind`]
//! once, and the rest dispatches on it, so a new type is a compile error
//! wherever it is not handled.

use infra_core::{ProviderError, Schema};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Image,
    Network,
    Volume,
    Container,
    Backup,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Image, Kind::Network, Kind::Volume, Kind::Container, Kind::Backup];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Network => "network",
            Kind::Volume => "volume",
            Kind::Container => "container",
            Kind::Backup => "backup",
        }
    }

    pub fn of(name: &str) -> Result<Kind, ProviderError> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| ProviderError::invalid("", format!("the docker provider has no resource type `{name}`")))
    }

    pub fn schema(self) -> Schema {
        match self {
            Kind::Image => crate::image::schema(),
            Kind::Network => crate::network::schema(),
            Kind::Volume => crate::volume::schema(),
            Kind::Container => crate::container::schema(),
            Kind::Backup => crate::backup::schema(),
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
        let error = Kind::of("service").expect_err("unknown");
        assert_eq!(error.message, "the docker provider has no resource type `service`");
    }
}
