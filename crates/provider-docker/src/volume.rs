//! `volume`: a named Docker volume, labelled with its owner. Its data outlives
//! containers; `lifecycle { prevent_destroy = true }` protects it.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::VolumeCreateRequest;
use infra_core::{AttributeSchema, OperationContext, ProviderError, Schema, Type, Value};

use crate::util::{Observed, Scope, docker_error, labels};

pub fn schema() -> Schema {
    Schema::new("A named Docker volume.")
        .attribute("name", AttributeSchema::required(Type::String).force_new())
        .attribute("driver", AttributeSchema::optional(Type::String).default(Value::string("local")).force_new())
        .attribute("labels", AttributeSchema::optional(Type::map(Type::String)).force_new())
        .attribute("mountpoint", AttributeSchema::computed(Type::String))
        .attribute("id", AttributeSchema::computed(Type::String))
}

pub async fn create(docker: &Docker, ctx: &OperationContext, planned: &Value) -> Result<Value, ProviderError> {
    let name = planned.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    let request = VolumeCreateRequest {
        name: Some(name.clone()),
        driver: planned.get("driver").and_then(Value::as_str).map(str::to_string),
        labels: Some(labels(ctx, planned)),
        ..Default::default()
    };
    let created =
        docker.create_volume(request).await.map_err(|e| docker_error(&format!("creating volume {name}"), e))?;
    let mut state = planned.clone();
    // A volume's name is its id.
    state.set("id", Value::string(&created.name));
    state.set("mountpoint", Value::string(created.mountpoint));
    Ok(state)
}

pub async fn list(docker: &Docker, scope: Scope) -> Result<HashMap<String, Observed>, ProviderError> {
    let options = bollard::query_parameters::ListVolumesOptions { filters: scope.filters() };
    let listed = docker.list_volumes(Some(options)).await.map_err(|e| docker_error("listing volumes", e))?;
    Ok(listed
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| {
            let value = Value::object([
                ("id", Value::string(&v.name)),
                ("name", Value::string(&v.name)),
                ("driver", Value::string(&v.driver)),
                ("mountpoint", Value::string(&v.mountpoint)),
            ]);
            (v.name.clone(), Observed::new(value, &v.labels))
        })
        .collect())
}
