//! The tickerplant stand-in: a server that behaves like kdb+tick's `tick.q`.
