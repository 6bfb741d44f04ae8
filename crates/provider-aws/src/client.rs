//! The AWS clients (EC2, and DLM for snapshot schedules): built from the provider block over the standard AWS chain
//! (environment, profile, instance role), with retries on throttling, and the
//! translation of AWS errors into provider errors that carry AWS's code.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use infra_core::{ProviderError, ProviderErrorKind, Value};

/// Attempts per call, throttling and 5xx included, before the error is reported.
const MAX_ATTEMPTS: u32 = 6;

/// One client per AWS service the provider speaks to, sharing one configuration.
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    /// Data Lifecycle Manager: EBS snapshot schedules.
    pub dlm: aws_sdk_dlm::Client,
}

pub async fn connect(config: &Value) -> Result<Clients, ProviderError> {
    let text = |key: &str| config.get(key).and_then(|v| v.peel().as_str()).map(str::to_string);
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(
        RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_initial_backoff(Duration::from_millis(200))
            .with_max_backoff(Duration::from_secs(10)),
    );
    if let Some(region) = text("region") {
        loader = loader.region(Region::new(region));
    }
    if let Some(profile) = text("profile") {
        loader = loader.profile_name(profile);
    }
    if let Some(endpoint) = text("endpoint") {
        loader = loader.endpoint_url(endpoint);
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(ProviderError::invalid(
            "region",
            "no AWS region: set `region` in the provider block, AWS_REGION, or a profile's region",
        ));
    }
    check_credentials(&sdk).await?;
    Ok(Clients { ec2: aws_sdk_ec2::Client::new(&sdk), dlm: aws_sdk_dlm::Client::new(&sdk) })
}

/// Asks the credential chain once, so a missing key is one clear error at
/// configure time rather than a transport failure on every call.
async fn check_credentials(sdk: &aws_config::SdkConfig) -> Result<(), ProviderError> {
    use aws_credential_types::provider::ProvideCredentials;
    let Some(provider) = sdk.credentials_provider() else {
        return Err(ProviderError::invalid("", "no AWS credentials provider is configured"));
    };
    provider.provide_credentials().await.map(|_| ()).map_err(|e| {
        ProviderError::invalid(
            "profile",
            format!(
                "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, name a `profile`, \
                 or run where an instance role is available ({})",
                causes(&e)
            ),
        )
    })
}

/// An error and its causes, one line: `a: b: c`, each said once.
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// An SDK error as a provider error: `ACTION: AWS CODE: message`. Throttling
/// and unreachable endpoints that outlasted the retries are `Unavailable`.
pub fn aws_error<E, R>(action: &str, e: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match (e.code(), e.message()) {
        (Some(code), message) => {
            let kind = if is_throttling(code) || code.starts_with("ServiceUnavailable") || code == "InternalError" {
                ProviderErrorKind::Unavailable
            } else if code.ends_with(".Duplicate") {
                // The name is taken: maybe by this state's own object, made by
                // a run killed before it could record it.
                ProviderErrorKind::Conflict
            } else if code.starts_with("Invalid") || code.ends_with("Malformed") || code == "UnauthorizedOperation" {
                ProviderErrorKind::Invalid
            } else {
                ProviderErrorKind::Failed
            };
            ProviderError {
                kind,
                message: format!("{action}: AWS {code}: {}", message.unwrap_or("no message")),
                attribute: None,
            }
        }
        (None, _) => ProviderError::unavailable(format!("{action}: {}", causes(&e))),
    }
}

fn is_throttling(code: &str) -> bool {
    matches!(code, "RequestLimitExceeded" | "Throttling" | "ThrottlingException" | "RequestThrottled")
}

/// Whether an error says the object does not exist (`InvalidVpcID.NotFound`,
/// `InvalidInstanceID.NotFound`, `InvalidGroup.NotFound`, ...; DLM's
/// `ResourceNotFoundException`).
pub fn is_not_found<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.code().is_some_and(|c| c.ends_with("NotFound") || c == "ResourceNotFoundException")
}
