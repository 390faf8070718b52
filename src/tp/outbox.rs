//! A connection's outgoing queue (answers and publications), bounded in
//! bytes rather than messages: one message may be 60 bytes or 200 MB, so a
//! count says nothing about the memory a client that stops reading can pin.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

/// Bytes queued for one connection; publications share one buffer.
pub type Outbound = Arc<Vec<u8>>;

/// What a queued message costs beyond its bytes (the `Arc`, the `Vec`, the
/// channel slot, allocator rounding), so that a flood of tiny messages is
/// bounded too.
pub const PER_MESSAGE: usize = 64;

/// Charged for `msg` while it waits or is being written.
pub fn cost(msg: &[u8]) -> usize {
    msg.len().saturating_add(PER_MESSAGE)
}

#[derive(Debug, Default)]
struct Meter {
    queued: AtomicUsize,
    /// Set once the bound was exceeded: later pushes fail quietly, so the
    /// connection is reported once.
    over: AtomicBool,
}

/// The producers' end (the state's publisher, the reader's answers).
#[derive(Clone, Debug)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Outbound>,
    meter: Arc<Meter>,
    limit: usize,
}

/// The writer's end.
#[derive(Debug)]
pub struct Inbox {
    rx: mpsc::UnboundedReceiver<Outbound>,
    meter: Arc<Meter>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Queuing the message would pass the bound; the caller drops the
    /// connection and says why. Returned once per connection.
    Full { queued: usize, limit: usize },
    /// The connection is closing (or was already found over its bound).
    Closed,
}

/// A queue holding at most `limit` bytes, except that a single message is
/// always taken by an empty queue: an answer larger than the bound can still
/// reach a client that reads.
pub fn outbox(limit: usize) -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    let meter = Arc::new(Meter::default());
    (
        Outbox {
            tx,
            meter: meter.clone(),
            limit,
        },
        Inbox { rx, meter },
    )
}

impl Outbox {
    pub fn push(&self, msg: Outbound) -> Result<(), Refused> {
        if self.meter.over.load(Ordering::Relaxed) {
            return Err(Refused::Closed);
        }
        let c = cost(&msg);
        let taken = self
            .meter
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q == 0 || q.saturating_add(c) <= self.limit).then_some(q + c)
            });
        if let Err(queued) = taken {
            return if self.meter.over.swap(true, Ordering::AcqRel) {
                Err(Refused::Closed)
            } else {
                Err(Refused::Full {
                    queued,
                    limit: self.limit,
                })
            };
        }
        if self.tx.send(msg).is_err() {
            self.meter.queued.fetch_sub(c, Ordering::AcqRel);
            return Err(Refused::Closed);
        }
        Ok(())
    }

    /// Bytes charged now (queued or being written).
    pub fn queued(&self) -> usize {
        self.meter.queued.load(Ordering::Acquire)
    }
}

impl Inbox {
    pub async fn recv(&mut self) -> Option<Outbound> {
        self.rx.recv().await
    }

    pub fn try_recv(&mut self) -> Option<Outbound> {
        self.rx.try_recv().ok()
    }

    /// `msg` has been handed to the socket: it no longer counts.
    pub fn written(&self, msg: &[u8]) {
        self.meter.queued.fetch_sub(cost(msg), Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: usize) -> Outbound {
        Arc::new(vec![0u8; n])
    }

    #[test]
    fn bound_in_bytes_with_one_oversized_message_let_through_an_empty_queue() {
        let (out, mut inbox) = outbox(1000);
        // Larger than the bound, but the queue is empty.
        assert_eq!(out.push(msg(5000)), Ok(()));
        assert_eq!(out.queued(), 5000 + PER_MESSAGE);
        assert_eq!(
            out.push(msg(1)),
            Err(Refused::Full {
                queued: 5000 + PER_MESSAGE,
                limit: 1000
            })
        );
        // Reported once; the connection is on its way out.
        assert_eq!(out.push(msg(1)), Err(Refused::Closed));
        let m = inbox.try_recv().expect("the first message");
        inbox.written(&m);
        assert_eq!(out.queued(), 0);
        assert!(inbox.try_recv().is_none());
    }

    #[test]
    fn written_messages_make_room() {
        let (out, mut inbox) = outbox(3 * (100 + PER_MESSAGE));
        for _ in 0..3 {
            out.push(msg(100)).unwrap();
        }
        let m = inbox.try_recv().unwrap();
        inbox.written(&m);
        assert_eq!(out.push(msg(100)), Ok(()));
        assert!(matches!(out.push(msg(100)), Err(Refused::Full { .. })));
    }

    #[test]
    fn tiny_messages_are_bounded_by_their_overhead() {
        let (out, _inbox) = outbox(10 * PER_MESSAGE);
        let taken = (0..1000).take_while(|_| out.push(msg(0)).is_ok()).count();
        assert_eq!(taken, 10);
    }

    #[test]
    fn a_closed_writer_refuses_quietly() {
        let (out, inbox) = outbox(1000);
        drop(inbox);
        assert_eq!(out.push(msg(1)), Err(Refused::Closed));
        assert_eq!(out.queued(), 0);
    }
}
