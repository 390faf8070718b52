//! The Lambda function's binary (`provided.al2023` runs `bootstrap`): all of
//! it is the library's Lambda adapter.

// src/allocator.rs says why this one and how it is set up.
#[global_allocator]
static ALLOCATOR: tickbridge::allocator::Allocator = tickbridge::allocator::Allocator {};

// One thread: Lambda hands a process one invocation at a time, so worker
// threads only add hand-offs. Measured with `tickbridge bench bridge` on
// the shared 2-core VM: the process's CPU time per 10,000-record event was
// ~5% above the in-process handler's with this flavour, ~11% with the
// multi-thread default.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    tickbridge::allocator::configure();
    tickbridge::lambda::run().await
}
