//! `image`: an image built from a context directory and a Dockerfile, imported
//! from a root filesystem tarball, or pulled by reference.
//!
//! For a build the plan knows the image's content hash (every file of the
//! context, its mode and path, the Dockerfile name, build args and target); for
//! an import, the tarball's hash and the changes applied to it. So a changed
//! context or tarball shows as a rebuild before apply, and the tag (`NAME:HASH`)
//! is known at plan time: containers using it change exactly when it does. A
//! pulled image is tagged by its reference and records the registry's digest.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use bollard::Docker;
use bollard::query_parameters::{BuildImageOptions, ListImagesOptions, RemoveImageOptions};
use futures_util::StreamExt;
use infra_core::{AttributeSchema, OperationContext, ProviderError, Refined, Schema, Type, Value};
use sha2::{Digest, Sha256};

use crate::util::{Observed, Scope, docker_error, labels};

/// How many lines of build output a failure shows.
const BUILD_LOG_TAIL: usize = 25;

pub fn schema() -> Schema {
    Schema::new("An image: built from a context directory, imported from a rootfs tarball, or pulled.")
        .attribute(
            "name",
            AttributeSchema::optional(Type::String)
                .force_new()
                .describe("repository name of a built or imported image; the tag is the content hash"),
        )
        .attribute(
            "context",
            AttributeSchema::optional(Type::String).force_new().describe("build from this context directory"),
        )
        .attribute(
            "import",
            AttributeSchema::optional(Type::String)
                .force_new()
                .describe("import this root filesystem tarball (as `docker import` does)"),
        )
        .attribute(
            "changes",
            AttributeSchema::optional(Type::list(Type::String))
                .force_new()
                .describe("Dockerfile instructions applied on import, e.g. [\"CMD [\\\"/bin/bash\\\"]\"]"),
        )
        .attribute(
            "pull",
            AttributeSchema::optional(Type::String)
                .force_new()
                .describe("pull this reference (repo:tag or repo@digest) from its registry"),
        )
        .attribute(
            "keep_locally",
            AttributeSchema::optional(Type::Bool)
                .default(Value::Bool(false))
                .describe("destroy forgets the image but leaves it on the host (as docker compose down does), so the next apply reuses it"),
        )
        .attribute(
            "dockerfile",
            AttributeSchema::optional(Type::String).default(Value::string("Dockerfile")).force_new(),
        )
        .attribute("build_args", AttributeSchema::optional(Type::map(Type::String)).force_new())
        .attribute("target", AttributeSchema::optional(Type::String).force_new())
        .attribute("content_hash", AttributeSchema::computed(Type::String))
        .attribute(
            "tag",
            // NAME:HASH names the image: another tag is another image (the
            // name or the content changed), never the same one renamed.
            AttributeSchema::computed(Type::String).force_new(),
        )
        .attribute("id", AttributeSchema::computed(Type::String))
        .attribute("digest", AttributeSchema::computed(Type::String).describe("the registry digest of a pulled image"))
}

/// Where an image comes from: exactly one of `context`, `import`, `pull`.
enum Source<'a> {
    Build(&'a str),
    Import(&'a str),
    Pull(&'a str),
}

impl<'a> Source<'a> {
    fn of(config: &'a Value) -> Result<Source<'a>, ProviderError> {
        let given: Vec<Source> = [
            str_attr(config, "context").map(Source::Build),
            str_attr(config, "import").map(Source::Import),
            str_attr(config, "pull").map(Source::Pull),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut given = given.into_iter();
        match (given.next(), given.next()) {
            (Some(source), None) => Ok(source),
            (None, _) => Err(ProviderError::invalid("context", "an image needs one of `context`, `import` or `pull`")),
            (Some(_), Some(_)) => {
                Err(ProviderError::invalid("context", "an image takes only one of `context`, `import` and `pull`"))
            }
        }
    }
}

pub fn validate(config: &Value) -> Vec<ProviderError> {
    let mut errors = Vec::new();
    match Source::of(config) {
        Err(e) => errors.push(e),
        Ok(Source::Pull(reference)) => {
            if reference.is_empty() || reference.contains(char::is_whitespace) {
                errors.push(ProviderError::invalid("pull", format!("{reference:?} is not an image reference")));
            }
        }
        Ok(_) if config.get("name").is_none_or(Value::is_null) => {
            errors.push(ProviderError::invalid("name", "a built or imported image needs a `name` (its repository)"));
        }
        Ok(_) => {}
    }
    if config.get("changes").is_some_and(|c| !c.is_null()) && str_attr(config, "import").is_none() {
        errors.push(ProviderError::invalid("changes", "`changes` applies to an imported image only"));
    }
    errors
}

/// A reference without its tag or digest: `host:5000/team/app:1` → `host:5000/team/app`.
fn repository_of(reference: &str) -> &str {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    match without_digest.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => repository,
        _ => without_digest,
    }
}

/// A reference as Docker tags it: `:latest` added when it names no tag or digest.
fn full_reference(reference: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    if last.contains(':') || last.contains('@') { reference.to_string() } else { format!("{reference}:latest") }
}

fn str_attr<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn context_files(dir: &Path) -> Result<Vec<PathBuf>, ProviderError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| {
            ProviderError::invalid("context", format!("cannot read build context {}: {e}", d.display()))
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The hash that names an imported image: the tarball and the changes.
fn import_hash(config: &Value, path: &str) -> Result<String, ProviderError> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| ProviderError::invalid("import", format!("cannot read image tarball {path}: {e}")))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .map_err(|e| ProviderError::invalid("import", format!("cannot read image tarball {path}: {e}")))?;
    for change in crate::util::str_list(&config.unmark().0, "changes").unwrap_or_default() {
        hasher.update(change.as_bytes());
        hasher.update([0]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The hash that names a built image's content: files, modes, build settings.
pub fn content_hash(config: &Value) -> Result<String, ProviderError> {
    let context = PathBuf::from(str_attr(config, "context").unwrap_or("."));
    let mut hasher = Sha256::new();
    for file in context_files(&context)? {
        let relative = file.strip_prefix(&context).unwrap_or(&file);
        let bytes = std::fs::read(&file)
            .map_err(|e| ProviderError::invalid("context", format!("cannot read {}: {e}", file.display())))?;
        let mode = std::fs::metadata(&file).map(|m| m.permissions().mode()).unwrap_or(0);
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(mode.to_le_bytes());
        hasher.update(Sha256::digest(&bytes));
    }
    let (bare, _) = config.unmark();
    for key in ["dockerfile", "target"] {
        hasher.update(str_attr(&bare, key).unwrap_or_default().as_bytes());
        hasher.update([0]);
    }
    hasher.update(bare.get("build_args").map(Value::to_json).unwrap_or_default().to_string().as_bytes());
    Ok(hex::encode(hasher.finalize()))
}

/// Fills the hash and tag at plan time; a new hash rebuilds the image.
pub fn plan(prior: Option<&Value>, mut proposed: Value) -> Result<Refined, ProviderError> {
    let hash = match Source::of(&proposed)? {
        Source::Build(context) => {
            let dockerfile = PathBuf::from(context).join(str_attr(&proposed, "dockerfile").unwrap_or("Dockerfile"));
            if !dockerfile.is_file() {
                return Err(ProviderError::invalid("dockerfile", format!("no Dockerfile at {}", dockerfile.display())));
            }
            content_hash(&proposed)?
        }
        Source::Import(path) => import_hash(&proposed, path)?,
        Source::Pull(reference) => {
            // Only a pull has a registry digest; it is known once pulled.
            let tag = full_reference(reference);
            proposed.set("tag", Value::string(tag));
            return Ok(Refined::new(proposed));
        }
    };
    // Built and imported images have no registry digest.
    proposed.set("digest", Value::Null);
    let tag = format!("{}:{}", str_attr(&proposed, "name").unwrap_or("image"), &hash[..12]);
    let rebuild = prior.and_then(|p| str_attr(p, "content_hash")).is_some_and(|old| old != hash);
    proposed.set("content_hash", Value::string(&hash));
    proposed.set("tag", Value::string(tag));
    if rebuild {
        proposed.set("id", Value::Unknown);
    }
    Ok(Refined::new(proposed).replace_on(if rebuild { vec!["content_hash".to_string()] } else { Vec::new() }))
}

/// The build context as a tar with normalised headers (owner root, fixed
/// times): the same files always make the same archive, so Docker's layer cache
/// hits on every rebuild instead of re-running each step.
fn context_tar(context: &Path) -> Result<Vec<u8>, ProviderError> {
    let pack_error = |e: std::io::Error| {
        ProviderError::invalid("context", format!("cannot pack build context {}: {e}", context.display()))
    };
    let mut builder = tar::Builder::new(Vec::new());
    for file in context_files(context)? {
        let relative = file.strip_prefix(context).unwrap_or(&file);
        let bytes = std::fs::read(&file).map_err(pack_error)?;
        let mode = std::fs::metadata(&file).map_err(pack_error)?.permissions().mode();
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(mode & 0o7777);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        builder.append_data(&mut header, relative, bytes.as_slice()).map_err(pack_error)?;
    }
    builder.into_inner().map_err(pack_error)
}

pub async fn create(docker: &Docker, ctx: &OperationContext, planned: &Value) -> Result<Value, ProviderError> {
    let (bare, _) = planned.unmark();
    let tag = str_attr(&bare, "tag").unwrap_or_default().to_string();
    // The tag names the content: an image already tagged so was built from these
    // very files and settings (or pulled by this reference), and making it again
    // would only repeat it.
    if let Ok(existing) = docker.inspect_image(&tag).await {
        return Ok(recorded(planned, existing));
    }
    match Source::of(&bare)? {
        Source::Build(context) => build(docker, ctx, &bare, Path::new(context), &tag).await?,
        Source::Import(path) => import(docker, ctx, &bare, path, &tag).await?,
        Source::Pull(reference) => pull(docker, reference).await?,
    }
    let existing = docker.inspect_image(&tag).await.map_err(|e| docker_error(&format!("inspecting image {tag}"), e))?;
    Ok(recorded(planned, existing))
}

/// The planned value with what Docker says of the image: its id, and for a
/// pulled one the registry digest.
fn recorded(planned: &Value, image: bollard::models::ImageInspect) -> Value {
    let mut state = planned.clone();
    state.set("id", Value::string(image.id.unwrap_or_default()));
    let digest = str_attr(planned, "pull")
        .and_then(|reference| {
            let prefix = format!("{}@", repository_of(reference));
            image.repo_digests.unwrap_or_default().into_iter().find(|d| d.starts_with(&prefix))
        })
        .map_or(Value::Null, Value::String);
    state.set("digest", digest);
    state
}

async fn import(
    docker: &Docker,
    ctx: &OperationContext,
    config: &Value,
    path: &str,
    tag: &str,
) -> Result<(), ProviderError> {
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| ProviderError::invalid("import", format!("cannot read image tarball {path}: {e}")))?;
    let (repo, hash) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
    let mut changes = crate::util::str_list(config, "changes").unwrap_or_default();
    // Markers as labels, quoted as Dockerfile LABEL values.
    changes.extend(
        labels(ctx, &Value::Null).into_iter().map(|(k, v)| format!("LABEL {k}={}", serde_json::Value::String(v))),
    );
    let options = bollard::query_parameters::CreateImageOptions {
        from_src: Some("-".into()),
        repo: Some(repo.to_string()),
        tag: Some(hash.to_string()),
        changes,
        ..Default::default()
    };
    let mut stream = docker.create_image(Some(options), Some(bollard::body_full(bytes.into())), None);
    while let Some(item) = stream.next().await {
        item.map_err(|e| docker_error(&format!("importing {path} as image {tag}"), e))?;
    }
    Ok(())
}

async fn pull(docker: &Docker, reference: &str) -> Result<(), ProviderError> {
    let options =
        bollard::query_parameters::CreateImageOptions { from_image: Some(reference.to_string()), ..Default::default() };
    let mut stream = docker.create_image(Some(options), None, None);
    while let Some(item) = stream.next().await {
        item.map_err(|e| docker_error(&format!("pulling image {reference}"), e))?;
    }
    Ok(())
}

async fn build(
    docker: &Docker,
    ctx: &OperationContext,
    bare: &Value,
    context: &Path,
    tag: &str,
) -> Result<(), ProviderError> {
    let build_args = bare.get("build_args").and_then(Value::as_object).map(|m| {
        m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect::<HashMap<_, _>>()
    });
    let dockerfile = str_attr(bare, "dockerfile").unwrap_or("Dockerfile");
    let target = str_attr(bare, "target").unwrap_or_default();
    let body = context_tar(context)?;
    build_tar(docker, body, dockerfile, tag, labels(ctx, &Value::Null), build_args.unwrap_or_default(), target).await
}

/// Builds a packed context as `tag`; a failure carries the build's last lines.
pub async fn build_tar(
    docker: &Docker,
    context: Vec<u8>,
    dockerfile: &str,
    tag: &str,
    labels: HashMap<String, String>,
    build_args: HashMap<String, String>,
    target: &str,
) -> Result<(), ProviderError> {
    let options = BuildImageOptions {
        dockerfile: dockerfile.to_string(),
        t: Some(tag.to_string()),
        buildargs: Some(build_args),
        target: target.to_string(),
        labels: Some(labels),
        rm: true,
        forcerm: true,
        ..Default::default()
    };
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    let mut log: Vec<String> = Vec::new();
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| build_failure(tag, &log, &e.to_string()))?;
        if let Some(detail) = info.error_detail.and_then(|d| d.message) {
            return Err(build_failure(tag, &log, &detail));
        }
        if let Some(text) = info.stream {
            log.extend(text.lines().map(str::to_string));
            if log.len() > BUILD_LOG_TAIL {
                log.drain(..log.len() - BUILD_LOG_TAIL);
            }
        }
    }
    Ok(())
}

fn build_failure(tag: &str, log: &[String], message: &str) -> ProviderError {
    ProviderError::failed(format!(
        "building image {tag} failed: {}\nlast build output:\n{}",
        message.trim(),
        log.join("\n")
    ))
}

pub async fn delete(docker: &Docker, prior: &Value) -> Result<(), bollard::errors::Error> {
    if prior.get("keep_locally").and_then(Value::as_bool) == Some(true) {
        return Ok(());
    }
    let tag = str_attr(prior, "tag").or_else(|| str_attr(prior, "id")).unwrap_or_default();
    // Untag and delete the image but keep its untagged parent layers: they are
    // Docker's build cache, so applying the same content again is fast. Forced,
    // because containers still running it (a rolling update has not reached
    // them yet) keep it alive by id: Docker removes it once the last one goes.
    docker
        .remove_image(tag, Some(RemoveImageOptions { force: true, noprune: true, platforms: None }), None)
        .await
        .map(|_| ())
}

/// The image this state built or imported for the address and never
/// recorded, with the tag it carries: the planned one when it has it, so an
/// image kept under another name (`keep_locally`, then a new `name`) reads as
/// the other image it is.
pub async fn adopt(docker: &Docker, ctx: &OperationContext, planned: &Value) -> Result<Option<Value>, ProviderError> {
    let options = ListImagesOptions { filters: Some(marker_filter(ctx)), ..Default::default() };
    let images = docker.list_images(Some(options)).await.map_err(|e| docker_error("listing images", e))?;
    let wanted = str_attr(planned, "tag").unwrap_or_default();
    let tagged = |i: &bollard::models::ImageSummary| -> Vec<String> {
        i.repo_tags.iter().filter(|t| t.as_str() != "<none>:<none>" && !crate::rollback::is_hold(t)).cloned().collect()
    };
    let replaced = ctx.replaced_id();
    let mut candidates: Vec<(String, Vec<String>)> = images
        .iter()
        .filter(|i| Some(i.id.as_str()) != replaced)
        .map(|i| (i.id.clone(), tagged(i)))
        .filter(|(_, tags)| !tags.is_empty())
        .collect();
    candidates.sort_by_key(|(_, tags)| !tags.iter().any(|t| t == wanted));
    Ok(candidates.into_iter().next().map(|(id, tags)| {
        let tag = tags.iter().find(|t| t.as_str() == wanted).unwrap_or(&tags[0]).clone();
        Value::object([("id", Value::string(id)), ("tag", Value::String(tag))])
    }))
}

/// Docker's label filter for the objects made for `ctx`'s address by its state.
fn marker_filter(ctx: &OperationContext) -> HashMap<String, Vec<String>> {
    let markers = labels(ctx, &Value::Null).into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    [("label".to_string(), markers)].into()
}

pub async fn list(docker: &Docker, scope: Scope) -> Result<HashMap<String, Observed>, ProviderError> {
    let options = ListImagesOptions { filters: scope.filters(), ..Default::default() };
    let images = docker.list_images(Some(options)).await.map_err(|e| docker_error("listing images", e))?;
    Ok(images
        .into_iter()
        // An untagged image is one infra deleted while a container still ran
        // it (or one only a container's kept revision holds): gone as far as
        // state is concerned, and never adopted.
        .filter(|i| i.repo_tags.iter().any(|t| t != "<none>:<none>" && !crate::rollback::is_hold(t)))
        .map(|i| {
            let value = Value::object([("id", Value::string(&i.id))]);
            (i.id.clone(), Observed::new(value, &i.labels))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::{full_reference, repository_of};

    #[test]
    fn references() {
        assert_eq!(full_reference("postgres"), "postgres:latest");
        assert_eq!(full_reference("127.0.0.1:5000/team/app"), "127.0.0.1:5000/team/app:latest");
        assert_eq!(full_reference("redis:7"), "redis:7");
        assert_eq!(repository_of("127.0.0.1:5000/team/app:1"), "127.0.0.1:5000/team/app");
        assert_eq!(repository_of("127.0.0.1:5000/team/app"), "127.0.0.1:5000/team/app");
        assert_eq!(repository_of("app@sha256:abc"), "app");
    }
}
