//! kdb+ IPC: the value model, the wire codec, compression and the fast path
//! for `.u.upd` messages.

pub mod client;
pub mod compress;
pub mod decode;
pub mod encode;
pub mod io;
pub mod message;
pub mod render;
pub mod types;
pub mod upd;
pub mod value;

pub use client::{
    ClientConfig, ClientError, Connection, Credentials, Publisher, RetryPolicy, Target,
};
pub use decode::{decode, decode_prefix, DecodeError};
pub use encode::{encode, encode_message};
pub use message::{decode_message, decode_message_limited, Header, MsgType};
pub use render::render;
pub use upd::{encode_upd, Column, SymbolTable};
pub use value::{Attr, Table, Vector, K};
