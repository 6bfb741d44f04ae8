//! `image`: an image built from a context directory and a Dockerfile.
//!
//! The plan knows the image's content hash (every file of the context, its
//! mode and path, the Dockerfile name, build args and target), so a changed
//! context shows as a rebuild before apply, and the tag (`NAME:HASH`) is known
//! at plan time: containers using it are replaced exactly when it changes.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use bollard::Docker;
use bollard::query_parameters::{BuildImageOptions, ListImagesOptions, RemoveImageOptions};
use futures_util::StreamExt;
use infra_core::{AttributeSchema, OperationContext, ProviderError, Schema, Type, Value};
use sha2::{Digest, Sha256};

use crate::util::{Observed, Scope, docker_error, labels, set};

/// How many lines of build output a failure shows.
const BUILD_LOG_TAIL: usize = 25;

pub fn schema() -> Schema {
    Schema::new("An image built from a context directory.")
        .attribute(
            "name",
            AttributeSchema::required(Type::String)
                .force_new()
                .describe("repository name; the tag is the content hash"),
        )
        .attribute(
            "context",
            AttributeSchema::required(Type::String).force_new().describe("the build context directory"),
        )
        .attribute(
            "dockerfile",
            AttributeSchema::optional(Type::String).default(Value::string("Dockerfile")).force_new(),
        )
        .attribute("build_args", AttributeSchema::optional(Type::map(Type::String)).force_new())
        .attribute("target", AttributeSchema::optional(Type::String).force_new())
        .attribute("content_hash", AttributeSchema::computed(Type::String))
        .attribute("tag", AttributeSchema::computed(Type::String))
        .attribute("id", AttributeSchema::computed(Type::String))
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

/// The hash that names an image's content: files, modes, build settings.
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
pub fn plan(prior: Option<&Value>, mut proposed: Value) -> Result<(Value, Vec<String>), ProviderError> {
    let dockerfile = PathBuf::from(str_attr(&proposed, "context").unwrap_or("."))
        .join(str_attr(&proposed, "dockerfile").unwrap_or("Dockerfile"));
    if !dockerfile.is_file() {
        return Err(ProviderError::invalid("dockerfile", format!("no Dockerfile at {}", dockerfile.display())));
    }
    let hash = content_hash(&proposed)?;
    let tag = format!("{}:{}", str_attr(&proposed, "name").unwrap_or("image"), &hash[..12]);
    let rebuild = prior.and_then(|p| str_attr(p, "content_hash")).is_some_and(|old| old != hash);
    set(&mut proposed, "content_hash", Value::string(&hash));
    set(&mut proposed, "tag", Value::string(tag));
    if rebuild {
        set(&mut proposed, "id", Value::Unknown);
    }
    Ok((proposed, if rebuild { vec!["content_hash".to_string()] } else { Vec::new() }))
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
    let context = PathBuf::from(str_attr(&bare, "context").unwrap_or("."));
    let tag = str_attr(&bare, "tag").unwrap_or_default().to_string();
    // The tag names the content: an image already tagged so was built from these
    // very files and settings, and building again would only repeat it.
    if let Ok(existing) = docker.inspect_image(&tag).await {
        let mut state = planned.clone();
        set(&mut state, "id", Value::string(existing.id.unwrap_or_default()));
        return Ok(state);
    }
    let options = BuildImageOptions {
        dockerfile: str_attr(&bare, "dockerfile").unwrap_or("Dockerfile").to_string(),
        t: Some(tag.clone()),
        buildargs: bare.get("build_args").and_then(Value::as_object).map(|m| {
            m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect::<HashMap<_, _>>()
        }),
        target: str_attr(&bare, "target").unwrap_or_default().to_string(),
        labels: Some(labels(ctx, &Value::Null)),
        rm: true,
        forcerm: true,
        ..Default::default()
    };
    let body = context_tar(&context)?;
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(body.into())));
    let mut log: Vec<String> = Vec::new();
    let mut id = None;
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| build_failure(&tag, &log, &e.to_string()))?;
        if let Some(detail) = info.error_detail.and_then(|d| d.message) {
            return Err(build_failure(&tag, &log, &detail));
        }
        if let Some(text) = info.stream {
            log.extend(text.lines().map(str::to_string));
            if log.len() > BUILD_LOG_TAIL {
                log.drain(..log.len() - BUILD_LOG_TAIL);
            }
        }
        if let Some(image) = info.aux.and_then(|a| a.id) {
            id = Some(image);
        }
    }
    let id = match id {
        Some(id) => id,
        None => docker
            .inspect_image(&tag)
            .await
            .map_err(|e| docker_error(&format!("inspecting image {tag}"), e))?
            .id
            .unwrap_or_default(),
    };
    let mut state = planned.clone();
    set(&mut state, "id", Value::string(id));
    Ok(state)
}

fn build_failure(tag: &str, log: &[String], message: &str) -> ProviderError {
    ProviderError::failed(format!(
        "building image {tag} failed: {}\nlast build output:\n{}",
        message.trim(),
        log.join("\n")
    ))
}

pub async fn delete(docker: &Docker, prior: &Value) -> Result<(), bollard::errors::Error> {
    let tag = str_attr(prior, "tag").or_else(|| str_attr(prior, "id")).unwrap_or_default();
    // Untag and delete the image but keep its untagged parent layers: they are
    // Docker's build cache, so applying the same content again is fast.
    docker
        .remove_image(tag, Some(RemoveImageOptions { force: false, noprune: true, platforms: None }), None)
        .await
        .map(|_| ())
}

pub async fn list(docker: &Docker, scope: Scope) -> Result<HashMap<String, Observed>, ProviderError> {
    let options = ListImagesOptions { filters: scope.filters(), ..Default::default() };
    let images = docker.list_images(Some(options)).await.map_err(|e| docker_error("listing images", e))?;
    Ok(images
        .into_iter()
        .map(|i| {
            let value = Value::object([("id", Value::string(&i.id))]);
            (i.id.clone(), Observed::new(value, &i.labels))
        })
        .collect())
}
