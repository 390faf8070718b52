//! Operations on the deployed function (`tickbridge ctl`): list its event
//! source mappings, pause and resume them around tickerplant maintenance,
//! and set its reserved concurrency. Works against AWS or any endpoint the
//! SDK configuration names (LocalStack, moto).
//!
//! Pausing disables every mapping, so Lambda stops polling the stream and
//! the queue; records wait in the source (Kinesis keeps them for its
//! retention, SQS for the queue's retention) and nothing is lost. With
//! `throttle`, reserved concurrency also goes to 0, which stops even an
//! invocation Lambda has already decided to make; the earlier value is kept
//! in a function tag so `resume` puts it back.

use std::time::{Duration, Instant};

use crate::aws::error::error_text;
use aws_sdk_lambda::types::EventSourceMappingConfiguration;
use serde::Serialize;

/// The function tag holding the reserved concurrency from before a
/// throttled pause: a number, or [`UNRESERVED`].
pub const PAUSE_TAG: &str = "tickbridge:reserved-concurrency-before-pause";
/// The tag value for a function that had no reserved concurrency.
pub const UNRESERVED: &str = "unreserved";

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("{op} for function {function}: {message}")]
    Aws {
        op: &'static str,
        function: String,
        message: String,
    },
    #[error("function {0} has no event source mappings{hint}", hint = alias_hint(.0))]
    NoMappings(String),
    #[error("mappings not {want} after {waited:?}: {pending}")]
    Timeout {
        want: &'static str,
        waited: Duration,
        pending: String,
    },
    #[error(
        "function {0} has reserved concurrency 0 and no value recorded by a throttled pause; \
         set one with `tickbridge ctl concurrency N` (or `none`), then resume"
    )]
    Throttled(String),
    #[error(
        "tag {PAUSE_TAG} on function {function} holds {value:?}, not a number or {UNRESERVED}"
    )]
    BadTag { function: String, value: String },
}

/// Mappings invoke an alias or version; a bare name finds none of them.
fn alias_hint(function: &str) -> String {
    if function.contains(':') {
        String::new()
    } else {
        format!(" (mappings invoke an alias: the template's is `live`, so try --function {function}:live)")
    }
}

/// One event source mapping as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mapping {
    pub uuid: String,
    pub state: String,
    pub source: String,
    pub batch_size: Option<i32>,
    pub batching_window_s: Option<i32>,
    pub parallelization_factor: Option<i32>,
    pub maximum_concurrency: Option<i32>,
    pub report_batch_item_failures: bool,
    pub last_result: Option<String>,
}

impl Mapping {
    fn from_sdk(m: &EventSourceMappingConfiguration) -> Mapping {
        Mapping {
            uuid: m.uuid().unwrap_or_default().to_string(),
            state: m.state().unwrap_or("Unknown").to_string(),
            source: m.event_source_arn().unwrap_or_default().to_string(),
            batch_size: m.batch_size(),
            batching_window_s: m.maximum_batching_window_in_seconds(),
            parallelization_factor: m.parallelization_factor(),
            maximum_concurrency: m.scaling_config().and_then(|s| s.maximum_concurrency()),
            report_batch_item_failures: m
                .function_response_types()
                .iter()
                .any(|t| t.as_str() == "ReportBatchItemFailures"),
            last_result: m.last_processing_result().map(str::to_string),
        }
    }

    pub fn enabled(&self) -> bool {
        matches!(self.state.as_str(), "Enabled" | "Enabling" | "Creating")
    }
}

/// The function's mappings and concurrency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub function: String,
    /// `None`: the function uses the account's unreserved pool.
    pub reserved_concurrency: Option<i32>,
    /// What a throttled pause recorded, while one is in force.
    pub concurrency_before_pause: Option<String>,
    pub mappings: Vec<Mapping>,
}

impl Status {
    /// A table for people; `--json` prints the struct instead.
    pub fn render(&self) -> String {
        let concurrency = match self.reserved_concurrency {
            Some(n) => n.to_string(),
            None => UNRESERVED.to_string(),
        };
        let mut out = format!(
            "function {}  reserved concurrency: {concurrency}",
            self.function
        );
        if let Some(before) = &self.concurrency_before_pause {
            out.push_str(&format!("  (paused; was {before})"));
        }
        out.push('\n');
        if self.mappings.is_empty() {
            out.push_str("no event source mappings\n");
            return out;
        }
        out.push_str(&format!(
            "{:<36}  {:<9}  {:>5}  {:>6}  {:>4}  {:>7}  SOURCE\n",
            "UUID", "STATE", "BATCH", "WINDOW", "PAR", "MAXCONC"
        ));
        let opt = |v: Option<i32>| v.map_or_else(|| "-".to_string(), |n| n.to_string());
        for m in &self.mappings {
            out.push_str(&format!(
                "{:<36}  {:<9}  {:>5}  {:>6}  {:>4}  {:>7}  {}\n",
                m.uuid,
                m.state,
                opt(m.batch_size),
                opt(m.batching_window_s),
                opt(m.parallelization_factor),
                opt(m.maximum_concurrency),
                m.source
            ));
        }
        out
    }
}

/// How long `pause`/`resume` wait for the mappings to reach their state.
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    pub limit: Duration,
    pub every: Duration,
}

impl Wait {
    pub const NONE: Wait = Wait {
        limit: Duration::ZERO,
        every: Duration::from_secs(1),
    };
}

/// The function without a version or alias qualifier: reserved
/// concurrency and tags belong to the function, mappings to what they
/// invoke (the template's mappings invoke the `live` alias).
pub fn unqualified(function: &str) -> &str {
    const MARK: &str = ":function:";
    match function.find(MARK) {
        Some(at) => {
            let name_start = at + MARK.len();
            match function[name_start..].find(':') {
                Some(q) => &function[..name_start + q],
                None => function,
            }
        }
        None => function.split(':').next().unwrap_or(function),
    }
}

pub struct Ctl {
    client: aws_sdk_lambda::Client,
    /// As given: a name or ARN, possibly qualified (`tickbridge:live`).
    function: String,
}

impl Ctl {
    pub fn new(sdk: &aws_config::SdkConfig, function: impl Into<String>) -> Ctl {
        Ctl {
            client: aws_sdk_lambda::Client::new(sdk),
            function: function.into(),
        }
    }

    fn base(&self) -> &str {
        unqualified(&self.function)
    }

    fn aws<E: std::error::Error + 'static>(&self, op: &'static str, e: E) -> CtlError {
        CtlError::Aws {
            op,
            function: self.function.clone(),
            message: error_text(&e),
        }
    }

    pub async fn mappings(&self) -> Result<Vec<Mapping>, CtlError> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .client
                .list_event_source_mappings()
                .function_name(&self.function)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| self.aws("ListEventSourceMappings", e))?;
            out.extend(page.event_source_mappings().iter().map(Mapping::from_sdk));
            match page.next_marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.source.cmp(&b.source).then(a.uuid.cmp(&b.uuid)));
        Ok(out)
    }

    pub async fn reserved_concurrency(&self) -> Result<Option<i32>, CtlError> {
        let out = self
            .client
            .get_function_concurrency()
            .function_name(self.base())
            .send()
            .await
            .map_err(|e| self.aws("GetFunctionConcurrency", e))?;
        Ok(out.reserved_concurrent_executions())
    }

    async fn function_arn(&self) -> Result<String, CtlError> {
        let out = self
            .client
            .get_function()
            .function_name(self.base())
            .send()
            .await
            .map_err(|e| self.aws("GetFunction", e))?;
        Ok(out
            .configuration()
            .and_then(|c| c.function_arn())
            .unwrap_or(self.base())
            .to_string())
    }

    async fn pause_tag(&self, arn: &str) -> Result<Option<String>, CtlError> {
        let out = self
            .client
            .list_tags()
            .resource(arn)
            .send()
            .await
            .map_err(|e| self.aws("ListTags", e))?;
        Ok(out.tags().and_then(|t| t.get(PAUSE_TAG)).cloned())
    }

    pub async fn status(&self) -> Result<Status, CtlError> {
        let arn = self.function_arn().await?;
        Ok(Status {
            function: self.function.clone(),
            reserved_concurrency: self.reserved_concurrency().await?,
            concurrency_before_pause: self.pause_tag(&arn).await?,
            mappings: self.mappings().await?,
        })
    }

    /// Sets reserved concurrency; `None` removes the reservation.
    pub async fn set_concurrency(&self, value: Option<i32>) -> Result<(), CtlError> {
        match value {
            Some(n) => {
                self.client
                    .put_function_concurrency()
                    .function_name(self.base())
                    .reserved_concurrent_executions(n)
                    .send()
                    .await
                    .map_err(|e| self.aws("PutFunctionConcurrency", e))?;
            }
            None => {
                self.client
                    .delete_function_concurrency()
                    .function_name(self.base())
                    .send()
                    .await
                    .map_err(|e| self.aws("DeleteFunctionConcurrency", e))?;
            }
        }
        tracing::info!(function = %self.function, concurrency = ?value, "reserved concurrency set");
        Ok(())
    }

    async fn set_enabled(&self, uuid: &str, enabled: bool) -> Result<(), CtlError> {
        self.client
            .update_event_source_mapping()
            .uuid(uuid)
            .enabled(enabled)
            .send()
            .await
            .map_err(|e| self.aws("UpdateEventSourceMapping", e))?;
        tracing::info!(function = %self.function, uuid, enabled, "event source mapping updated");
        Ok(())
    }

    /// Disables every mapping (and with `throttle` sets reserved
    /// concurrency to 0, recording the earlier value), then waits for the
    /// mappings to report `Disabled`.
    pub async fn pause(&self, throttle: bool, wait: Wait) -> Result<Status, CtlError> {
        let mappings = self.mappings().await?;
        if mappings.is_empty() && !throttle {
            return Err(CtlError::NoMappings(self.function.clone()));
        }
        if throttle {
            let arn = self.function_arn().await?;
            let current = self.reserved_concurrency().await?;
            // A second throttled pause must not overwrite the real earlier value with 0.
            if current != Some(0) || self.pause_tag(&arn).await?.is_none() {
                let before = current.map_or_else(|| UNRESERVED.to_string(), |n| n.to_string());
                self.client
                    .tag_resource()
                    .resource(&arn)
                    .tags(PAUSE_TAG, before)
                    .send()
                    .await
                    .map_err(|e| self.aws("TagResource", e))?;
            }
            self.set_concurrency(Some(0)).await?;
        }
        for m in mappings.iter().filter(|m| m.state != "Disabled") {
            self.set_enabled(&m.uuid, false).await?;
        }
        self.wait_for("Disabled", wait).await?;
        self.status().await
    }

    /// Restores what a throttled pause recorded, then enables every mapping
    /// and waits for `Enabled`. Refuses while reserved concurrency is 0 with
    /// nothing recorded: enabled mappings would only be throttled.
    pub async fn resume(&self, wait: Wait) -> Result<Status, CtlError> {
        let arn = self.function_arn().await?;
        match self.pause_tag(&arn).await? {
            Some(before) => {
                let value = if before == UNRESERVED {
                    None
                } else {
                    Some(before.parse::<i32>().map_err(|_| CtlError::BadTag {
                        function: self.function.clone(),
                        value: before.clone(),
                    })?)
                };
                self.set_concurrency(value).await?;
                self.client
                    .untag_resource()
                    .resource(&arn)
                    .tag_keys(PAUSE_TAG)
                    .send()
                    .await
                    .map_err(|e| self.aws("UntagResource", e))?;
            }
            None if self.reserved_concurrency().await? == Some(0) => {
                return Err(CtlError::Throttled(self.function.clone()));
            }
            None => {}
        }
        let mappings = self.mappings().await?;
        if mappings.is_empty() {
            return Err(CtlError::NoMappings(self.function.clone()));
        }
        for m in mappings.iter().filter(|m| !m.enabled()) {
            self.set_enabled(&m.uuid, true).await?;
        }
        self.wait_for("Enabled", wait).await?;
        self.status().await
    }

    async fn wait_for(&self, want: &'static str, wait: Wait) -> Result<(), CtlError> {
        let start = Instant::now();
        loop {
            let mappings = self.mappings().await?;
            let pending: Vec<String> = mappings
                .iter()
                .filter(|m| m.state != want)
                .map(|m| format!("{} is {}", m.uuid, m.state))
                .collect();
            if pending.is_empty() {
                return Ok(());
            }
            if start.elapsed() >= wait.limit {
                if wait.limit.is_zero() {
                    // Not asked to wait: the change is requested, Lambda finishes it.
                    return Ok(());
                }
                return Err(CtlError::Timeout {
                    want,
                    waited: start.elapsed(),
                    pending: pending.join(", "),
                });
            }
            tokio::time::sleep(wait.every).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::unqualified;

    #[test]
    fn qualifiers_are_dropped_for_function_level_calls() {
        assert_eq!(unqualified("tickbridge"), "tickbridge");
        assert_eq!(unqualified("tickbridge:live"), "tickbridge");
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:tickbridge";
        assert_eq!(unqualified(arn), arn);
        assert_eq!(unqualified(&format!("{arn}:live")), arn);
        assert_eq!(unqualified(&format!("{arn}:7")), arn);
    }
}
