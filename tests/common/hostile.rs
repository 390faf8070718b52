//! A kdb+ peer that misbehaves on purpose, for the client's bounds: it
//! completes the handshake like q and then, to every sync request, answers
//! in the way its `Mode` says. Async messages are read and dropped.

use std::net::SocketAddr;

use tickbridge::kdb::io::{read_frame, DEFAULT_MAX_FRAME};
use tickbridge::kdb::{encode_message, MsgType, K};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// A compressed reply that claims `claimed` bytes once decompressed.
    Bomb { claimed: u32 },
    /// Async messages instead of the reply, for ever.
    ChatterAsync,
    /// Sync requests of its own instead of the reply, for ever.
    ChatterSync,
}

pub struct Hostile {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Hostile {
    pub async fn start(mode: Mode) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((sock, _)) = listener.accept().await {
                conns.spawn(serve(sock, mode));
            }
        });
        Hostile { addr, task }
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut sock: TcpStream, mode: Mode) {
    let mut b = [0u8; 1];
    let mut cap = 0u8;
    loop {
        if sock.read_exact(&mut b).await.is_err() {
            return;
        }
        if b[0] == 0 {
            break;
        }
        cap = b[0];
    }
    if sock.write_all(&[cap.min(3)]).await.is_err() {
        return;
    }
    while let Ok((header, _)) = read_frame(&mut sock, DEFAULT_MAX_FRAME).await {
        if header.msg_type != MsgType::Sync {
            continue;
        }
        match mode {
            Mode::Bomb { claimed } => {
                if sock.write_all(&bomb(claimed)).await.is_err() {
                    return;
                }
            }
            Mode::ChatterAsync | Mode::ChatterSync => {
                let kind = match mode {
                    Mode::ChatterAsync => MsgType::Async,
                    _ => MsgType::Sync,
                };
                let noise = encode_message(&K::string("noise"), kind);
                loop {
                    if sock.write_all(&noise).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
        }
    }
}

/// A compressed response: header, the claimed uncompressed length, then
/// 4 KiB of stream. Decompressed honestly it would fill `claimed` bytes.
pub fn bomb(claimed: u32) -> Vec<u8> {
    let body_len = 4 + 4096;
    let mut msg = vec![1u8, MsgType::Response as u8, 1, 0];
    msg.extend_from_slice(&((8 + body_len) as u32).to_le_bytes());
    msg.extend_from_slice(&claimed.to_le_bytes());
    msg.resize(8 + body_len, 0);
    msg
}
