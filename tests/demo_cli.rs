//! The README's main-job command: `tickbridge demo` runs on nothing but the
//! build and tells the whole story on stdout.

mod common;

use std::process::Command;

#[test]
fn demo_forwards_once_quarantines_the_bad_and_shows_the_tables() {
    let out = Command::new(common::tickbridge_exe())
        .arg("demo")
        .env_remove("TICKBRIDGE_LOG")
        .output()
        .expect("tickbridge demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for want in [
        // The first Kinesis batch: a producer duplicate and a bad record.
        "records 7  forwarded 5  duplicates 1  quarantined 1  failed 0",
        // The redelivery forwards only the new record.
        "records 8  forwarded 1  duplicates 7  quarantined 0  failed 0",
        // SQS FIFO: one bad message quarantined, the rest forwarded; again: all duplicates.
        "records 6  forwarded 5  duplicates 0  quarantined 1  failed 0",
        "records 6  forwarded 0  duplicates 6  quarantined 0  failed 0",
        "expected a number, got \"n/a\"",
        // A KPL aggregate split into its user records.
        "records 5  forwarded 5  duplicates 0  quarantined 0  failed 0",
        "1 KPL aggregate → 4 user records",
        ".u.i = 10 updates",
        "time                 sym  price  size side",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
    // Logs stay on stderr, and by default only what went wrong.
    assert!(!stdout.contains(" WARN "), "{stdout}");
    assert!(!stderr.contains(" INFO "), "{stderr}");
    assert!(stderr.contains("quarantined"), "{stderr}");
}
