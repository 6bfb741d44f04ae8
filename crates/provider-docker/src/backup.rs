//! `backup` on a Docker host: a volume, or a PostgreSQL database (a consistent
//! `pg_dump`, streamed into restic), backed up by a runner container of the
//! backup's own (`infra-backup-NAME`, from an image with restic, and
//! PostgreSQL's client tools for a database). The runner runs the shared
//! runner script (`infra_restic::runner`) on the backup's schedule, so a
//! scheduled backup needs nothing from infra; `infra backup ...` runs the same
//! script in it.
//!
//! The settings live in a volume of the backup's (`infra-backup-NAME`,
//! mounted at `/etc/infra/backup/NAME`), so the secrets written there survive
//! the runner being recreated; they are never recorded (see `infra_restic`).
//! Destroying the backup removes the runner and its settings volume, never the
//! repository.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, RestartPolicy, RestartPolicyNameEnum};
use bollard::query_parameters::{CreateContainerOptions, RemoveContainerOptions, UploadToContainerOptions};
use infra_core::{
    AttributeSchema, BlockNesting, ExecOutput, OperationContext, ProviderError, Refined, Schema, Type, Value,
};
use infra_restic::{SETTINGS, runner};

use crate::util::{Observed, docker_error, labels};

pub fn schema() -> Schema {
    let postgres = Schema::new("A PostgreSQL database to dump (pg_dump, streamed; restored with psql).")
        .attribute("host", AttributeSchema::required(Type::String).describe("e.g. the database container's alias"))
        .attribute("port", AttributeSchema::optional(Type::Number))
        .attribute("database", AttributeSchema::required(Type::String))
        .attribute("user", AttributeSchema::required(Type::String))
        .attribute("password", AttributeSchema::optional(Type::String).sensitive().describe("never recorded"));
    let list = |what: &'static str| AttributeSchema::optional(Type::list(Type::String)).describe(what);
    infra_restic::schema(Schema::new(
        "A Docker volume or a PostgreSQL database backed up with restic by a runner container.",
    ))
    .attribute(
        "image",
        AttributeSchema::required(Type::String)
            .describe("an image with restic and bash (psql/pg_dump for a database, systemd-analyze for a schedule)"),
    )
    .attribute("volume", AttributeSchema::optional(Type::String).describe("the volume to back up (mounted read-only)"))
    .block("postgres", BlockNesting::Single, postgres)
    .attribute("networks", list("networks the runner joins"))
    .attribute("mounts", list("more mounts for the runner, e.g. a repository volume"))
    .attribute("runner", AttributeSchema::computed(Type::String).describe("running, stopped or missing"))
    .attribute("container_id", AttributeSchema::computed(Type::String))
}

pub fn validate(config: &Value) -> Vec<ProviderError> {
    let mut errors = infra_restic::validate(config);
    let (config, _) = config.unmark();
    let volume = config.get("volume").is_some_and(|v| !v.is_null());
    let postgres = config.get("postgres").is_some_and(|v| !v.is_null());
    if volume == postgres {
        errors.push(ProviderError::invalid("volume", "back up either a `volume` or a `postgres { ... }` database"));
    }
    errors
}

/// The settings' view of the backup: what to read (the mounted volume, or
/// pg_dump's output) and the database's connection as environment (secret).
fn derived(config: &Value) -> Value {
    let mut derived = config.clone();
    let list = |items: &[&str]| Value::List(items.iter().map(|i| Value::string(*i)).collect());
    if let Some(pg) = config.get("postgres").filter(|p| !p.is_null()) {
        let field = |k: &str| pg.get(k).and_then(|v| v.peel().as_str().map(str::to_string));
        derived.set("dump", list(&["pg_dump", "--no-owner", "--no-privileges", "--clean", "--if-exists"]));
        derived.set("dump_name", Value::string(format!("{}.sql", field("database").unwrap_or_default())));
        derived.set("load", list(&["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"]));
        derived.set("paths", Value::List(Vec::new()));
        let port = pg.get("port").and_then(Value::as_number).map_or("5432".to_string(), |p| format!("{}", p as u64));
        let mut environment = config.get("environment").and_then(Value::as_object).cloned().unwrap_or_default();
        for (key, value) in [
            ("PGHOST", field("host")),
            ("PGPORT", Some(port)),
            ("PGDATABASE", field("database")),
            ("PGUSER", field("user")),
            ("PGPASSWORD", field("password")),
        ] {
            if let Some(value) = value {
                environment.insert(key.to_string(), Value::string(value));
            }
        }
        derived.set("environment", Value::Object(environment.into()));
    } else {
        derived.set("paths", list(&["/source"]));
    }
    derived
}

fn files(config: &Value, name: &str) -> Vec<(String, Vec<u8>)> {
    infra_restic::settings(&derived(config), name)
}

pub fn plan(prior: Option<&Value>, mut proposed: Value) -> Result<Refined, ProviderError> {
    let (bare, _) = proposed.unmark();
    let name = bare.text("name").to_string();
    let known = bare.is_wholly_known();
    let settings =
        if known && !name.is_empty() { infra_restic::settings_digest(&files(&bare, &name)) } else { Value::Unknown };
    proposed.set("settings_sha256", settings);
    // The database password travels as environment, like the repository's
    // secrets, and is never recorded where the user wrote it.
    let environment = derived(&bare).get("environment").cloned().unwrap_or(Value::Null);
    let mut secrets = proposed.clone();
    secrets.set("environment", environment.sensitive());
    infra_restic::plan_secrets(prior, &mut secrets);
    for key in ["password", "environment", "secrets_digest"] {
        proposed.set(key, secrets.get(key).cloned().unwrap_or(Value::Null));
    }
    forget_database_password(&mut proposed);
    proposed.set("runner", Value::string("running"));
    if prior.is_none() {
        proposed.set("container_id", Value::Unknown);
    }
    proposed.set("id", if name.is_empty() { Value::Unknown } else { Value::string(name) });
    Ok(Refined::new(proposed))
}

fn runner_name(name: &str) -> String {
    format!("infra-backup-{name}")
}

/// The backup as refresh finds it: `None` when its settings volume is gone
/// (everything, secrets included, is made again); its runner's state otherwise.
pub fn observed(
    recorded: &Value,
    containers: &HashMap<String, Observed>,
    volumes: &HashMap<String, Observed>,
) -> Option<Value> {
    let name = recorded.text("name");
    volumes.get(&runner_name(name))?;
    let id = recorded.text("container_id");
    let runner = match containers.get(id) {
        Some(c) if c.value.get("running").and_then(Value::as_bool) == Some(true) => "running",
        Some(_) => "stopped",
        None => "missing",
    };
    let mut value = recorded.clone();
    value.set("runner", Value::string(runner));
    Some(value)
}

/// Makes (or makes again) the runner: the settings volume if missing, a new
/// container with every setting uploaded (and the secrets when the plan
/// carries them), started; then the repository is opened or initialised.
pub async fn write(
    docker: &Docker,
    ctx: &OperationContext,
    prior: Option<&Value>,
    planned: &Value,
) -> Result<Value, ProviderError> {
    let (bare, _) = planned.unmark();
    let (name, config) = infra_restic::named(&bare, &ctx.address);
    if let Some(old) = prior.map(|p| p.text("container_id")).filter(|id| !id.is_empty()) {
        remove_container(docker, old).await?;
    }
    ensure_volume(docker, ctx, &runner_name(&name)).await?;
    let id = create_runner(docker, ctx, &config, &name).await?;
    let settings = files(&config, &name);
    let settings_sha256 = infra_restic::settings_digest(&settings);
    let mut upload = settings;
    let environment = derived(&config);
    if let Some(secrets) = infra_restic::secret_contents(&environment, &name) {
        upload.extend(secrets);
    }
    upload_files(docker, &id, &upload).await?;
    docker
        .start_container(&id, None)
        .await
        .map_err(|e| docker_error(&format!("starting {}", runner_name(&name)), e))?;
    if let Err(e) = run_runner(docker, &id, &infra_restic::runner_argv(&name, "init", &[])?).await {
        let _ = remove_container(docker, &id).await;
        return Err(e);
    }
    let digest = match bare.get("password").is_none_or(Value::is_null) {
        true => planned.get("secrets_digest").cloned().unwrap_or(Value::Null),
        false => Value::string(infra_restic::secrets_digest(&environment)),
    };
    let mut value = planned.clone();
    for (key, v) in [
        ("name", Value::string(&name)),
        ("id", Value::string(&name)),
        ("container_id", Value::string(&id)),
        ("runner", Value::string("running")),
        ("settings_sha256", settings_sha256),
        ("secrets_digest", digest),
        ("password", Value::Null),
        ("environment", Value::Null),
    ] {
        value.set(key, v);
    }
    forget_database_password(&mut value);
    Ok(value)
}

async fn ensure_volume(docker: &Docker, ctx: &OperationContext, name: &str) -> Result<(), ProviderError> {
    let options = bollard::models::VolumeCreateRequest {
        name: Some(name.to_string()),
        labels: Some(labels(ctx, &Value::Null)),
        ..Default::default()
    };
    docker.create_volume(options).await.map(|_| ()).map_err(|e| docker_error(&format!("creating volume {name}"), e))
}

/// A runner this backup made before a crash, never recorded, goes before a new
/// one takes its name; a container of that name that is not this backup's is
/// an error.
async fn remove_leftover_runner(docker: &Docker, ctx: &OperationContext, container: &str) -> Result<(), ProviderError> {
    let leftover =
        docker.inspect_container(container, None::<bollard::query_parameters::InspectContainerOptions>).await;
    let Ok(found) = leftover else { return Ok(()) };
    let markers = found.config.and_then(|c| c.labels).unwrap_or_default();
    if !crate::util::carries_markers(ctx, &markers) {
        return Err(ProviderError::failed(format!(
            "a container named {container} exists and is not this backup's: give the backup another `name`"
        )));
    }
    remove_container(docker, found.id.as_deref().unwrap_or(container)).await
}

async fn create_runner(
    docker: &Docker,
    ctx: &OperationContext,
    config: &Value,
    name: &str,
) -> Result<String, ProviderError> {
    let container = runner_name(name);
    let mut binds = vec![format!("{container}:{SETTINGS}/{name}")];
    if let Some(volume) = config.get("volume").and_then(Value::as_str) {
        binds.push(format!("{volume}:/source:ro"));
    }
    binds.extend(config.strings("mounts"));
    let networks = config.strings("networks");
    let body = ContainerCreateBody {
        image: Some(config.text("image").to_string()),
        cmd: Some(vec![runner::PATH.to_string(), "schedule".to_string(), name.to_string()]),
        labels: Some(labels(ctx, &Value::Null)),
        host_config: Some(HostConfig {
            binds: Some(binds),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            network_mode: networks.first().cloned(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut attempts = 0;
    let id = loop {
        attempts += 1;
        remove_leftover_runner(docker, ctx, &container).await?;
        let options = CreateContainerOptions { name: Some(container.clone()), platform: String::new() };
        match docker.create_container(Some(options), body.clone()).await {
            Ok(created) => break created.id,
            // The name taken since the look: a killed run's request finishing late.
            Err(e) if attempts < 2 && crate::util::is_conflict(&e) => continue,
            Err(e) => return Err(docker_error(&format!("creating container {container}"), e)),
        }
    };
    for network in networks.iter().skip(1) {
        let request = bollard::models::NetworkConnectRequest { container: id.clone(), ..Default::default() };
        docker
            .connect_network(network, request)
            .await
            .map_err(|e| docker_error(&format!("connecting {container} to {network}"), e))?;
    }
    Ok(id)
}

/// Files into the container as one tar archive (root-only but the runner).
async fn upload_files(docker: &Docker, id: &str, files: &[(String, Vec<u8>)]) -> Result<(), ProviderError> {
    let mut archive = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(if path == runner::PATH { 0o755 } else { 0o600 });
        header.set_cksum();
        archive
            .append_data(&mut header, path.trim_start_matches('/'), bytes.as_slice())
            .map_err(|e| ProviderError::failed(format!("packing the backup settings: {e}")))?;
    }
    let archive =
        archive.into_inner().map_err(|e| ProviderError::failed(format!("packing the backup settings: {e}")))?;
    let options = UploadToContainerOptions { path: "/".to_string(), ..Default::default() };
    docker
        .upload_to_container(id, Some(options), bollard::body_full(archive.into()))
        .await
        .map_err(|e| docker_error("writing the backup settings into its runner", e))
}

async fn remove_container(docker: &Docker, id: &str) -> Result<(), ProviderError> {
    let options = RemoveContainerOptions { force: true, ..Default::default() };
    match docker.remove_container(id, Some(options)).await {
        Err(e) if !crate::util::is_not_found(&e) => Err(docker_error(&format!("removing container {id}"), e)),
        _ => Ok(()),
    }
}

/// Removes the runner and its settings; the repository stays.
pub async fn delete(docker: &Docker, prior: &Value) -> Result<(), ProviderError> {
    remove_container(docker, prior.text("container_id")).await?;
    let volume = runner_name(prior.text("name"));
    match docker.remove_volume(&volume, None::<bollard::query_parameters::RemoveVolumeOptions>).await {
        Err(e) if !crate::util::is_not_found(&e) => Err(docker_error(&format!("removing volume {volume}"), e)),
        _ => Ok(()),
    }
}

async fn run_runner(docker: &Docker, id: &str, argv: &[String]) -> Result<ExecOutput, ProviderError> {
    let output = crate::container::exec(docker, id, argv).await?;
    if output.exit_code != 0 {
        return Err(ProviderError::failed(infra_restic::failure(&String::from_utf8_lossy(&output.stderr))));
    }
    Ok(output)
}

/// `infra backup run|list|verify|status` and `infra restore` in the runner.
pub async fn act(
    docker: &Docker,
    state: &Value,
    action: &str,
    args: &[(String, String)],
) -> Result<ExecOutput, ProviderError> {
    let name = state.text("name");
    let mut output =
        run_runner(docker, state.text("container_id"), &infra_restic::runner_argv(name, action, args)?).await?;
    if action == "list" {
        output.stdout = infra_restic::listing(name, &output.stdout)?;
    }
    Ok(output)
}

/// The database password travels in `environment`; where the user wrote it,
/// it is never planned or recorded.
fn forget_database_password(value: &mut Value) {
    if let Value::Object(map) = value
        && let Some(Value::Object(pg)) = map.get_mut("postgres")
    {
        pg.insert("password".into(), Value::Null);
    }
}
