//! Graceful shutdown: SIGTERM or SIGINT flips a watch channel; pollers stop
//! starting new work, let the batch in flight finish (or fail, leaving it
//! for redelivery), and return.

use std::time::Duration;

use tokio::sync::watch;

/// A cheap, cloneable view of the stop request.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// The sending side: `trigger` asks every poller to stop.
pub struct Trigger(watch::Sender<bool>);

pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }

    /// Triggers on the first SIGTERM or SIGINT (Ctrl-C).
    pub fn on_signals(self) {
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("stop requested: finishing the batches in flight");
            self.trigger();
        });
    }
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

impl Shutdown {
    pub fn requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once a stop is requested.
    pub async fn wait(&mut self) {
        while !*self.0.borrow_and_update() {
            if self.0.changed().await.is_err() {
                // Sender gone without a request: never stop on that account.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Sleeps for `d` unless a stop comes first; true when it slept fully.
    pub async fn sleep(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.wait() => false,
        }
    }
}
