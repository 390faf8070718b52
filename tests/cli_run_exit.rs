//! `tickbridge run` exits 1 when records were left pending at the stop:
//! with the tickerplant down every batch leaves its records for
//! redelivery, and a SIGTERM then ends a run that got nothing through.
//! (The graceful stop with everything through exits 0: runner_e2e.)
//! Its stderr is a file: progress comes as log lines, with no bar.

// Shared with the runner tests; this one uses part of it.
#[allow(unused_imports)]
mod runner_support;

use std::time::Duration;

use runner_support::bridge::closed_addr;
use runner_support::{emulators, queue, runner, total, trade, unique_name, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_records_pending_exits_1_and_counts_them() {
    let emu = emulators().await;
    let url = queue(&emu.sqs, &unique_name("pending"), &[]).await;
    for n in 1..=3 {
        emu.sqs
            .send_message()
            .queue_url(&url)
            .message_body(trade(n, "P"))
            .send()
            .await
            .unwrap();
    }
    // Nothing listens there: every batch fails as a whole.
    let r = runner(
        &emu,
        closed_addr(),
        &[("TICKBRIDGE_STORE", "memory")],
        &[
            "sqs",
            "--queue",
            &url,
            "--wait-secs",
            "1",
            "--batch-size",
            "10",
            "--progress-secs",
            "1",
        ],
    );
    let left = wait_until(Duration::from_secs(60), || {
        let logs = r.logs();
        logs.lines()
            .any(|l| l.contains("poll done") && l.contains("left=3"))
            && logs.lines().any(|l| l.contains(" progress "))
    })
    .await;
    assert!(left, "no batch left its records:\n{}", r.logs());
    let (status, summary, logs) = r.terminate();
    assert_eq!(status.code(), Some(1), "{summary}\n{logs}");
    assert_eq!(total(&summary, "left_pending"), 3, "{summary}");
    assert_eq!(total(&summary, "forwarded"), 0, "{summary}");
    assert!(
        logs.contains("left_pending=3"),
        "the summary line says so:\n{logs}"
    );
    // stderr is a file, not a terminal: progress as log lines, no bar, no
    // escape codes (no colours either).
    assert!(!logs.contains('\x1b'), "escape codes:\n{logs}");
    assert!(!logs.contains('\r'), "a redrawn line:\n{logs}");
}
