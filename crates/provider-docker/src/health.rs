//! Health-gated creation: a container with a `healthcheck` is created only once
//! Docker reports it healthy; one that never gets there fails the apply with its
//! last log lines, and is removed so nothing is left half-made.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{HealthConfig, HealthStatusEnum};
use bollard::query_parameters::{InspectContainerOptions, LogsOptions};
use futures_util::StreamExt;
use infra_core::{ProviderError, Type, Value};

use crate::util::{docker_error, str_list};

const LOG_TAIL: &str = "20";

pub fn schema_type() -> Type {
    Type::Object(BTreeMap::from([
        ("cmd".to_string(), Type::list(Type::String)),
        ("interval".to_string(), Type::String),
        ("timeout".to_string(), Type::String),
        ("retries".to_string(), Type::Number),
        ("start_period".to_string(), Type::String),
    ]))
}

/// `500ms`, `2s`, `1m`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration such as 2s or 500ms"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "s" | "" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("{text:?} is not a duration such as 2s or 500ms")),
    })
}

pub struct Check {
    pub config: HealthConfig,
    /// How long creation waits for "healthy" before giving up.
    pub deadline: Duration,
}

pub fn check(container: &Value) -> Result<Option<Check>, String> {
    let Some(health) = container.get("healthcheck").filter(|h| !h.is_null()) else { return Ok(None) };
    let cmd =
        str_list(health, "cmd").filter(|c| !c.is_empty()).ok_or("a healthcheck needs `cmd`, the command to run")?;
    let duration =
        |key: &str, default: &str| parse_duration(health.get(key).and_then(Value::as_str).unwrap_or(default));
    let interval = duration("interval", "5s")?;
    let timeout = duration("timeout", "5s")?;
    let start_period = duration("start_period", "0s")?;
    let retries = health.get("retries").and_then(Value::as_number).unwrap_or(3.0).max(1.0) as u32;
    let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    let mut test = vec!["CMD".to_string()];
    test.extend(cmd);
    Ok(Some(Check {
        config: HealthConfig {
            test: Some(test),
            interval: Some(nanos(interval)),
            timeout: Some(nanos(timeout)),
            retries: Some(i64::from(retries)),
            start_period: Some(nanos(start_period)),
            start_interval: None,
        },
        deadline: start_period + (interval + timeout) * (retries + 1) + Duration::from_secs(5),
    }))
}

/// Waits until Docker reports the container healthy.
pub async fn wait_healthy(docker: &Docker, id: &str, name: &str, deadline: Duration) -> Result<(), ProviderError> {
    let started = Instant::now();
    loop {
        let inspected = docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(|e| docker_error(&format!("inspecting container {name}"), e))?;
        let state = inspected.state.unwrap_or_default();
        let status = state.health.and_then(|h| h.status);
        if status == Some(HealthStatusEnum::HEALTHY) {
            return Ok(());
        }
        let why = if state.running == Some(false) {
            Some("it exited".to_string())
        } else if status == Some(HealthStatusEnum::UNHEALTHY) {
            Some("its healthcheck failed".to_string())
        } else if started.elapsed() > deadline {
            Some(format!("it was not healthy after {} s", deadline.as_secs()))
        } else {
            None
        };
        if let Some(why) = why {
            let logs = last_logs(docker, id).await;
            return Err(ProviderError::failed(format!(
                "container {name} did not become healthy: {why}. Last log lines:\n{logs}"
            )));
        }
        // Docker marks a container healthy within its own interval; look often, so a
        // dependent starts at once (an inspect is cheap).
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn last_logs(docker: &Docker, id: &str) -> String {
    match logs(docker, id, LOG_TAIL).await {
        Ok(out) if !out.trim().is_empty() => out.trim_end().to_string(),
        Ok(_) => "(no output)".to_string(),
        Err(e) => format!("(logs unavailable: {e})"),
    }
}

/// The last `tail` lines a container wrote to stdout and stderr.
pub async fn logs(docker: &Docker, id: &str, tail: &str) -> Result<String, ProviderError> {
    let options = LogsOptions { stdout: true, stderr: true, tail: tail.to_string(), ..Default::default() };
    let mut stream = docker.logs(id, Some(options));
    let mut out = String::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| docker_error(&format!("reading the logs of container {id}"), e))?;
        out.push_str(&chunk.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_deadline() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("soon").is_err());
        let container = Value::object([(
            "healthcheck",
            Value::object([("cmd", Value::List(vec![Value::string("true")])), ("interval", Value::string("1s"))]),
        )]);
        let check = check(&container).expect("valid").expect("present");
        assert_eq!(check.config.test, Some(vec!["CMD".to_string(), "true".to_string()]));
        assert_eq!(check.deadline, Duration::from_secs(1 + 5) * 4 + Duration::from_secs(5));
    }
}
