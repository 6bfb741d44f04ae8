//! What `infra rollback` needs of Docker for a `container`: the images its
//! kept revisions ran stay on the host while state keeps those revisions,
//! and a kept revision is put back with the very image it ran.
//!
//! Images are held by tags of their own, `infra-rollback/NAME:ID` (NAME the
//! container's, ID the start of the image id): while a tag names an image,
//! Docker keeps it, even after the `image` resource that built it replaced or
//! removed its own tag. The tags are made exactly those of the kept revisions
//! before any replica is removed (after that, an image nothing else holds
//! would already be gone), and all of them go when the container is destroyed.

use std::collections::{BTreeMap, BTreeSet};

use bollard::Docker;
use bollard::query_parameters::{ListImagesOptions, RemoveImageOptions, TagImageOptions};
use infra_core::{ProviderError, Value};

use crate::util::{docker_error, is_not_found};

const REPOSITORY: &str = "infra-rollback";

/// A tag that holds an image for a container's kept revision: not the name
/// of an image resource's image, so an image with only these is no image
/// resource's (refresh reads it as gone, adoption passes it by).
pub fn is_hold(tag: &str) -> bool {
    tag.strip_prefix(REPOSITORY).is_some_and(|rest| rest.starts_with('/'))
}

/// The repository a container's held images are tagged in: its name as a
/// repository may spell it (lower case, runs of other characters as `-`).
fn repository(container: &str) -> String {
    let mut name = String::new();
    for c in container.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_alphanumeric() {
            name.push(c);
        } else if !name.is_empty() && !name.ends_with('-') {
            name.push('-');
        }
    }
    format!("{REPOSITORY}/{}", name.trim_end_matches('-'))
}

/// The tag that holds an image: the first 12 hex digits of its id, as
/// `docker images` shows it.
fn tag_of(image_id: &str) -> String {
    image_id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// What a container's held images are to be.
pub enum Hold<'a> {
    /// Exactly those `kept` revisions ran, and the one the container is to
    /// run when it names it by id (a revision put back after its tag moved
    /// on: nothing else holds it).
    Exactly { kept: &'a [Value], running: &'a Value },
    /// At least those `kept` revisions ran: the delete half of a replacement,
    /// before the new container (`Exactly`) says which else it needs.
    AtLeast(&'a [Value]),
}

/// Makes the held images of `container` (a planned or recorded value) as
/// `hold` says.
pub async fn hold_images(docker: &Docker, container: &Value, hold: Hold<'_>) -> Result<(), ProviderError> {
    let repository = repository(container.text("name"));
    let (kept, running, exact) = match hold {
        Hold::Exactly { kept, running } => {
            (kept, running.non_empty_text("image").filter(|i| i.starts_with("sha256:")), true)
        }
        Hold::AtLeast(kept) => (kept, None, false),
    };
    let wanted: BTreeMap<String, &str> =
        kept.iter().filter_map(|r| r.non_empty_text("image_id")).chain(running).map(|id| (tag_of(id), id)).collect();
    let held = held_tags(docker, &repository).await?;
    for (tag, id) in &wanted {
        if held.contains(tag) {
            continue;
        }
        let options = TagImageOptions { repo: Some(repository.clone()), tag: Some(tag.clone()) };
        match docker.tag_image(id, Some(options)).await {
            // Gone already (removed by hand): nothing to hold; a rollback to it says so.
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(docker_error(&format!("tagging image {id} as {repository}:{tag}"), e)),
            Ok(()) => {}
        }
    }
    for tag in held.iter().filter(|t| exact && !wanted.contains_key(*t)) {
        let reference = format!("{repository}:{tag}");
        // Forced: an image a replica still runs loses only the tag.
        let options = RemoveImageOptions { force: true, noprune: false, platforms: None };
        match docker.remove_image(&reference, Some(options), None).await {
            Err(e) if !is_not_found(&e) => return Err(docker_error(&format!("removing image tag {reference}"), e)),
            _ => {}
        }
    }
    Ok(())
}

async fn held_tags(docker: &Docker, repository: &str) -> Result<BTreeSet<String>, ProviderError> {
    let filters = std::collections::HashMap::from([("reference".to_string(), vec![repository.to_string()])]);
    let options = ListImagesOptions { filters: Some(filters), ..Default::default() };
    let images = docker.list_images(Some(options)).await.map_err(|e| docker_error("listing images", e))?;
    let prefix = format!("{repository}:");
    Ok(images
        .iter()
        .flat_map(|i| i.repo_tags.iter())
        .filter_map(|t| t.strip_prefix(&prefix))
        .map(str::to_string)
        .collect())
}

/// The settings that put a container back as `earlier` recorded it: its
/// image by name while the name still means the image it ran, else by id
/// (held by its tag); an error when the image is no longer on the host.
pub async fn restore(docker: &Docker, mut earlier: Value) -> Result<Value, ProviderError> {
    let Some(id) = earlier.non_empty_text("image_id").map(str::to_string) else {
        return Ok(earlier); // recorded before image ids were: as it was
    };
    let image = earlier.text("image").to_string();
    if docker.inspect_image(&image).await.is_ok_and(|found| found.id.as_deref() == Some(id.as_str())) {
        return Ok(earlier);
    }
    match docker.inspect_image(&id).await {
        Ok(_) => {
            earlier.set("image", Value::string(&id));
            Ok(earlier)
        }
        Err(e) if is_not_found(&e) => Err(ProviderError::failed(format!(
            "the image it ran ({image}, {}) is no longer on this host: build it again, or roll back to another \
             revision",
            tag_of(&id)
        ))),
        Err(e) => Err(docker_error(&format!("inspecting image {id}"), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_name_becomes_a_repository_docker_accepts() {
        assert_eq!(repository("quickstart-web"), "infra-rollback/quickstart-web");
        assert_eq!(repository("My_App..v2"), "infra-rollback/my-app-v2");
        assert_eq!(repository("_x_"), "infra-rollback/x");
        assert_eq!(tag_of("sha256:0123456789abcdef"), "0123456789ab");
        assert!(is_hold("infra-rollback/quickstart-web:0123456789ab"));
        assert!(!is_hold("infra-rollback-web:1") && !is_hold("quickstart/web:1"));
    }
}
