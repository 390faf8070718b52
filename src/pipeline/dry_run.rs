//! The two edges a dry run swaps out, so that a dry run is the pipeline
//! itself (`App::dry_run_records`): a tickerplant link that sends nothing,
//! and a quarantine that only notes what it would send. The third edge,
//! the store, is `dedupe::ReadOnly`.

use std::sync::Mutex;
use std::time::Instant;

use super::{LinkError, QuarantineError, QuarantineItem, QuarantineSink, TickerplantLink};

/// Accepts every update without any I/O: a dry run answers what the
/// bridge would decide, not whether the tickerplant would take it.
pub struct DryLink;

impl TickerplantLink for DryLink {
    async fn ensure_connected(&mut self, _until: Instant) -> Result<(), LinkError> {
        Ok(())
    }

    async fn send_async(&mut self, _msg: &[u8]) -> Result<(), LinkError> {
        Ok(())
    }

    async fn send_sync(&mut self, _msg: &[u8]) -> Result<(), LinkError> {
        Ok(())
    }

    async fn chase(&mut self) -> Result<(), LinkError> {
        Ok(())
    }
}

/// Takes every bad record and sends it nowhere; keeps the items.
#[derive(Default)]
pub struct DryQuarantine {
    items: Mutex<Vec<QuarantineItem>>,
}

impl DryQuarantine {
    /// What a real run would have sent to the quarantine queue.
    pub fn items(&self) -> Vec<QuarantineItem> {
        self.items.lock().map(|i| i.clone()).unwrap_or_default()
    }
}

impl QuarantineSink for DryQuarantine {
    async fn send(&self, items: &[QuarantineItem]) -> Vec<Result<(), QuarantineError>> {
        if let Ok(mut kept) = self.items.lock() {
            kept.extend_from_slice(items);
        }
        items.iter().map(|_| Ok(())).collect()
    }
}
