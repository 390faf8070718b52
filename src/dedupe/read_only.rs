//! A store seen through a dry run: reads go to the real store, writes go
//! nowhere. Claims are answered by `peek`, so the pipeline decides
//! duplicates and cuts exactly as it would, and the store is left as it was.

use super::{Claim, DedupeStore, StoreError};

pub struct ReadOnly<'s, S> {
    inner: &'s S,
}

impl<'s, S: DedupeStore> ReadOnly<'s, S> {
    pub fn new(inner: &'s S) -> Self {
        ReadOnly { inner }
    }
}

impl<S: DedupeStore> DedupeStore for ReadOnly<'_, S> {
    async fn checkpoint(&self, lane: &str) -> Result<Option<String>, StoreError> {
        self.inner.checkpoint(lane).await
    }

    async fn advance_checkpoint(
        &self,
        _lane: &str,
        _old: Option<&str>,
        _new: &str,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// What a claim would find now; nothing is taken.
    async fn claim(
        &self,
        keys: &[String],
        now_ms: i64,
        _in_progress_until_ms: i64,
    ) -> Result<Vec<Claim>, StoreError> {
        self.inner.peek(keys, now_ms).await
    }

    async fn complete(&self, _keys: &[String], _expires_at_s: i64) -> Result<(), StoreError> {
        Ok(())
    }

    async fn release(&self, _keys: &[String], _claimed_until_ms: i64) -> Result<(), StoreError> {
        Ok(())
    }

    async fn peek(&self, keys: &[String], now_ms: i64) -> Result<Vec<Claim>, StoreError> {
        self.inner.peek(keys, now_ms).await
    }

    fn requests(&self) -> u64 {
        self.inner.requests()
    }
}
