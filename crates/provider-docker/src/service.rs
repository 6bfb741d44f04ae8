//! `swarm_service`: creating, updating and removing a Swarm service through a
//! manager's engine, and waiting until the swarm has done it. Docker answers a
//! create or update at once and rolls the tasks out afterwards; an apply that
//! returned then would report success for an update the swarm later rolls
//! back. So each operation waits until every wanted task runs the new spec
//! (healthy, when it has a health check), and an update the swarm rolls back
//! fails naming the service and the tasks' errors.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{Service, ServiceUpdateStatusStateEnum, Task, TaskState};
use bollard::query_parameters::{InspectServiceOptions, ListServicesOptions, ListTasksOptions, UpdateServiceOptions};
use infra_core::{OperationContext, ProviderError, Value};

use crate::service_spec::{observed, revision, spec, wanted_replicas};
use crate::util::{Observed, Scope, docker_error, merge_observed};

/// How long an operation waits for the swarm, beyond what the service's own
/// health checks and update policy take.
const SETTLE: Duration = Duration::from_secs(120);
/// Tasks of the current spec that may fail while a new service starts before
/// creation gives up (the swarm would retry them forever).
const FAILURES_TOLERATED: usize = 3;
const POLL: Duration = Duration::from_millis(500);

pub async fn list(docker: &Docker, scope: Scope) -> Result<HashMap<String, Observed>, ProviderError> {
    let options = ListServicesOptions { filters: scope.filters(), status: None };
    let services = docker.list_services(Some(options)).await.map_err(|e| docker_error("listing services", e))?;
    Ok(services
        .into_iter()
        .filter_map(|service| {
            let id = service.id?;
            let spec = service.spec?;
            // `Observed::new` sets `labels` to the spec's non-marker labels: the user's.
            let labels = spec.labels.clone().unwrap_or_default();
            Some((id.clone(), Observed::new(observed(&id, &spec), &labels)))
        })
        .collect())
}

pub async fn create(docker: &Docker, ctx: &OperationContext, planned: &Value) -> Result<Value, ProviderError> {
    let name = planned.text("name").to_string();
    let created = docker
        .create_service(spec(ctx, planned)?, None)
        .await
        .map_err(|e| docker_error(&format!("creating service {name}"), e))?;
    let id = created.id.unwrap_or_default();
    let mut state = planned.clone();
    state.set("id", Value::string(&id));
    if let Err(failed) = settle(docker, &id, None).await {
        // Nothing half-made is left: the service is removed with its tasks.
        let _ = remove(docker, &id).await;
        return Err(failed);
    }
    Ok(state)
}

pub async fn update(
    docker: &Docker,
    ctx: &OperationContext,
    prior: &Value,
    planned: &Value,
) -> Result<Value, ProviderError> {
    let id = prior.recorded_id("Docker")?;
    let current = inspect(docker, &id).await?;
    let version = current.version.as_ref().and_then(|v| v.index).unwrap_or_default();
    let options = UpdateServiceOptions { version: i32::try_from(version).unwrap_or(i32::MAX), ..Default::default() };
    docker
        .update_service(&id, spec(ctx, planned)?, options, None)
        .await
        .map_err(|e| docker_error(&format!("updating service {}", planned.text("name")), e))?;
    settle(docker, &id, Some(status_of(&current))).await?;
    let mut state = crate::util::with_computed(planned, prior);
    state.set("id", Value::string(id));
    Ok(state)
}

pub async fn delete(docker: &Docker, prior: &Value) -> Result<(), ProviderError> {
    let id = prior.recorded_id("Docker")?;
    remove(docker, &id).await
}

/// Removes a service and waits until its tasks' containers are gone, so the
/// networks it used can be removed next.
async fn remove(docker: &Docker, id: &str) -> Result<(), ProviderError> {
    match docker.delete_service(id).await {
        Err(e) if !crate::util::is_not_found(&e) => return Err(docker_error(&format!("removing service {id}"), e)),
        _ => {}
    }
    let started = Instant::now();
    while started.elapsed() < SETTLE {
        // Once the swarm has forgotten the service its tasks are gone from the
        // list (the filter then answers 404); until then they are listed.
        let tasks = match list_tasks(docker, id).await {
            Err(e) if crate::util::is_not_found(&e) => return Ok(()),
            listed => listed.map_err(|e| tasks_error(id, e))?,
        };
        if tasks.iter().all(|t| task_state(t).is_some_and(is_finished)) {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
    Err(ProviderError::failed(format!(
        "service {id} was removed but its tasks were still stopping after {} s",
        SETTLE.as_secs()
    )))
}

pub async fn adopt(docker: &Docker, ctx: &OperationContext, planned: &Value) -> Result<Option<Value>, ProviderError> {
    let address = ctx.address.to_string();
    let found = list(docker, Scope::Ours).await?;
    let Some(ours) = found.into_values().find(|o| o.made_for(&ctx.lineage, &address)) else { return Ok(None) };
    Ok(Some(merge_observed(planned, &ours.value)))
}

async fn inspect(docker: &Docker, id: &str) -> Result<Service, ProviderError> {
    docker
        .inspect_service(id, None::<InspectServiceOptions>)
        .await
        .map_err(|e| docker_error(&format!("inspecting service {id}"), e))
}

async fn tasks(docker: &Docker, service: &str) -> Result<Vec<Task>, ProviderError> {
    list_tasks(docker, service).await.map_err(|e| tasks_error(service, e))
}

async fn list_tasks(docker: &Docker, service: &str) -> Result<Vec<Task>, bollard::errors::Error> {
    let filters = HashMap::from([("service".to_string(), vec![service.to_string()])]);
    docker.list_tasks(Some(ListTasksOptions { filters: Some(filters) })).await
}

fn tasks_error(service: &str, e: bollard::errors::Error) -> ProviderError {
    docker_error(&format!("listing the tasks of service {service}"), e)
}

fn task_state(task: &Task) -> Option<TaskState> {
    task.status.as_ref()?.state
}

pub(crate) fn is_finished(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::COMPLETE
            | TaskState::SHUTDOWN
            | TaskState::FAILED
            | TaskState::REJECTED
            | TaskState::ORPHANED
            | TaskState::REMOVE
    )
}

/// The update status as text, to tell a new rollout from the one before.
fn status_of(service: &Service) -> String {
    format!("{:?}", service.update_status)
}

/// After a node was drained: waits until a service infra made runs all its
/// tasks elsewhere (one it did not make has no revision to wait for).
pub async fn settle_moved(docker: &Docker, id: &str) -> Result<(), ProviderError> {
    let service = inspect(docker, id).await?;
    if revision(service.spec.as_ref().and_then(|s| s.task_template.as_ref())).is_none() {
        return Ok(());
    }
    settle(docker, id, None).await
}

/// Waits until the service's tasks all run its current spec. `before`: the
/// update status before an update, so that a rollback of this update (and not
/// an earlier one) fails it.
async fn settle(docker: &Docker, id: &str, before: Option<String>) -> Result<(), ProviderError> {
    let started = Instant::now();
    loop {
        let service = inspect(docker, id).await?;
        let name = service.spec.as_ref().and_then(|s| s.name.clone()).unwrap_or_else(|| id.to_string());
        // Tasks on a node that is down report nothing more: they would never
        // be seen to stop, and the swarm runs their work elsewhere.
        let ready = ready_nodes(docker).await?;
        let tasks: Vec<Task> = tasks(docker, id)
            .await?
            .into_iter()
            .filter(|t| t.node_id.as_ref().is_none_or(|node| ready.contains(node)))
            .collect();
        let rollout = before.as_ref().filter(|b| **b != status_of(&service)).and(service.update_status.as_ref());
        if let Some(status) = rollout {
            match status.state {
                Some(
                    ServiceUpdateStatusStateEnum::ROLLBACK_STARTED | ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED,
                ) => {
                    let why = status.message.clone().unwrap_or_default();
                    return Err(failed_update(
                        &name,
                        "the swarm rolled the update back, and the old tasks serve",
                        &why,
                        &tasks,
                    ));
                }
                Some(ServiceUpdateStatusStateEnum::PAUSED | ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED) => {
                    let why = status.message.clone().unwrap_or_default();
                    return Err(failed_update(&name, "the swarm paused the update", &why, &tasks));
                }
                Some(ServiceUpdateStatusStateEnum::UPDATING) => {}
                _ if converged(&service, &tasks) => return Ok(()),
                _ => {}
            }
        } else if converged(&service, &tasks) && (before.is_none() || started.elapsed() > POLL * 4) {
            // An update that replaces no task (a change of scale) has no rollout status.
            return Ok(());
        }
        if before.is_none() && failures(&service, &tasks) >= FAILURES_TOLERATED {
            return Err(failed_update(&name, "its tasks keep failing", "", &tasks));
        }
        if started.elapsed() > deadline(&service) {
            let waited = format!("not every task was running after {} s", deadline(&service).as_secs());
            return Err(failed_update(&name, &waited, "", &tasks));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The ids of the swarm's nodes that are up.
async fn ready_nodes(docker: &Docker) -> Result<HashSet<String>, ProviderError> {
    let nodes = docker
        .list_nodes(None::<bollard::query_parameters::ListNodesOptions>)
        .await
        .map_err(|e| docker_error("listing the swarm's nodes", e))?;
    Ok(nodes
        .into_iter()
        .filter(|n| n.status.as_ref().and_then(|s| s.state) == Some(bollard::models::NodeState::READY))
        .filter_map(|n| n.id)
        .collect())
}

/// Whether the tasks the swarm wants running all run the service's spec, as
/// many as the service asks for, and every task it is stopping has stopped
/// (so that after the apply only the new spec serves, and only as many).
fn converged(service: &Service, tasks: &[Task]) -> bool {
    let Some(spec) = service.spec.as_ref() else { return false };
    let stopping =
        |t: &Task| t.desired_state.is_some_and(is_finished) && task_state(t).is_some_and(|s| !is_finished(s));
    if tasks.iter().any(stopping) {
        return false;
    }
    let wanted: Vec<&Task> = tasks.iter().filter(|t| t.desired_state.is_some_and(|d| !is_finished(d))).collect();
    let running = wanted
        .iter()
        .filter(|t| is_current(spec.task_template.as_ref(), t) && task_state(t) == Some(TaskState::RUNNING))
        .count();
    match wanted_replicas(spec) {
        Some(replicas) => running == replicas && wanted.len() == replicas,
        None => running > 0 && running == wanted.len(),
    }
}

/// Whether a task was made from the service's current spec.
fn is_current(template: Option<&bollard::models::TaskSpec>, task: &Task) -> bool {
    let current = revision(template);
    current.is_some() && revision(task.spec.as_ref()) == current
}

/// Tasks of the current spec that failed or were rejected.
fn failures(service: &Service, tasks: &[Task]) -> usize {
    let template = service.spec.as_ref().and_then(|s| s.task_template.as_ref());
    tasks
        .iter()
        .filter(|t| is_current(template, t))
        .filter(|t| matches!(task_state(t), Some(TaskState::FAILED | TaskState::REJECTED)))
        .count()
}

/// The service's update policy and health checks bound how long a rollout can
/// take; beyond that, plus a margin, something is wrong.
fn deadline(service: &Service) -> Duration {
    let Some(spec) = service.spec.as_ref() else { return SETTLE };
    let update = spec.update_config.as_ref();
    let per_batch = |n: Option<i64>| Duration::from_nanos(n.unwrap_or(0).max(0) as u64);
    let batches = wanted_replicas(spec).unwrap_or(1) as u32;
    let batch = per_batch(update.and_then(|u| u.delay)) + per_batch(update.and_then(|u| u.monitor));
    let health = spec
        .task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.health_check.as_ref())
        .map(|h| {
            per_batch(h.start_period)
                + (per_batch(h.interval) + per_batch(h.timeout)) * (h.retries.unwrap_or(3).max(1) as u32 + 1)
        })
        .unwrap_or_default();
    SETTLE + (batch + health) * batches
}

/// "service web: the swarm rolled the update back …" with the errors of its
/// most recent failed tasks, one per line.
fn failed_update(name: &str, what: &str, why: &str, tasks: &[Task]) -> ProviderError {
    let mut message = format!("service {name}: {what}");
    if !why.is_empty() {
        message.push_str(&format!(" ({why})"));
    }
    let mut failed: Vec<String> = tasks
        .iter()
        .filter_map(|t| {
            let status = t.status.as_ref()?;
            let error = status.err.as_deref().filter(|e| !e.is_empty())?;
            Some(format!("  task {}.{}: {error}", name, t.slot.unwrap_or(0)))
        })
        .collect();
    failed.sort();
    failed.dedup();
    if !failed.is_empty() {
        message.push_str(". Task errors:\n");
        message.push_str(&failed.into_iter().take(5).collect::<Vec<_>>().join("\n"));
    }
    ProviderError::failed(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, TaskSpec, TaskStatus};

    fn service(replicas: i64, image: &str) -> Service {
        Service {
            spec: Some(ServiceSpec {
                name: Some("web".into()),
                mode: Some(ServiceSpecMode {
                    replicated: Some(ServiceSpecModeReplicated { replicas: Some(replicas) }),
                    ..Default::default()
                }),
                task_template: Some(template(image)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// A task spec as Docker reports it: its revision label, none of the defaults.
    fn template(image: &str) -> TaskSpec {
        let labels = HashMap::from([(crate::util::REVISION.to_string(), format!("rev-{image}"))]);
        TaskSpec {
            container_spec: Some(bollard::models::TaskSpecContainerSpec {
                image: Some(image.into()),
                labels: Some(labels),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn task(image: &str, desired: TaskState, state: TaskState, err: Option<&str>) -> Task {
        Task {
            spec: Some(template(image)),
            slot: Some(1),
            desired_state: Some(desired),
            status: Some(TaskStatus { state: Some(state), err: err.map(str::to_string), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn a_rollout_is_done_when_every_wanted_task_runs_the_new_spec() {
        let running = |image| task(image, TaskState::RUNNING, TaskState::RUNNING, None);
        let web = service(2, "web:2");
        assert!(converged(&web, &[running("web:2"), running("web:2")]));
        assert!(!converged(&web, &[running("web:2"), running("web:1")]), "an old task still runs");
        assert!(!converged(&web, &[running("web:2")]), "one task short");
        let starting = task("web:2", TaskState::RUNNING, TaskState::STARTING, None);
        assert!(!converged(&web, &[running("web:2"), starting]), "not yet healthy");
        let stopped = task("web:1", TaskState::SHUTDOWN, TaskState::SHUTDOWN, None);
        assert!(converged(&web, &[running("web:2"), running("web:2"), stopped]), "stopped tasks do not count");
        let stopping = task("web:1", TaskState::SHUTDOWN, TaskState::RUNNING, None);
        assert!(!converged(&web, &[running("web:2"), running("web:2"), stopping]), "an old task still stopping");
    }

    #[test]
    fn a_failed_rollout_names_the_service_and_its_tasks_errors() {
        let failed = task("web:2", TaskState::SHUTDOWN, TaskState::FAILED, Some("task: non-zero exit (1)"));
        let error = failed_update("web", "the swarm rolled the update back", "update rolled back", &[failed]);
        assert_eq!(
            error.message,
            "service web: the swarm rolled the update back (update rolled back). Task errors:\n  task web.1: task: non-zero exit (1)"
        );
        let web = service(1, "web:2");
        let failing = task("web:2", TaskState::SHUTDOWN, TaskState::FAILED, Some("no such image"));
        assert_eq!(
            failures(&web, &[failing.clone(), failing, task("web:1", TaskState::SHUTDOWN, TaskState::FAILED, None)]),
            2
        );
    }
}
