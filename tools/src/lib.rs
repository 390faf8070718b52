//! The tools around the bridge: the `tickbridge` command line (`cli`) and
//! the benchmarks it runs (`bench`, also used by `cargo bench`). They use
//! the `tickbridge` library's public API like any other program would.

pub mod bench;
pub mod cli;
