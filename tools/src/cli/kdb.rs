//! `tickbridge kdb …`: decode captured IPC bytes, query a kdb+ process.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};

use tickbridge::kdb::client::{ClientError, Connection};
use tickbridge::kdb::message::{parse_header, HEADER_LEN};
use tickbridge::kdb::render::{render_with, DEFAULT_PRECISION, MAX_ROWS};
use tickbridge::kdb::{decode, decode_message, encode, encode_message, K};

#[derive(clap::Subcommand, Debug)]
pub enum KdbCommand {
    /// Decode IPC bytes (hex text, or raw bytes from a file) and print the value.
    Decode(DecodeArgs),
    /// Send a q expression synchronously and print the reply.
    Query(QueryArgs),
}

#[derive(clap::Args, Debug)]
pub struct DecodeArgs {
    /// Hex text (whitespace and a leading 0x allowed); `-` reads hex from stdin.
    #[arg(conflicts_with = "file")]
    pub hex: Option<String>,
    /// Raw bytes from this file (`-` for stdin) instead of hex text.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Print the decoded value re-encoded as hex instead of rendering it
    /// (a whole uncompressed message if the input was a message, else a body).
    #[arg(long)]
    pub hex_out: bool,
    #[command(flatten)]
    pub float: FloatArgs,
}

/// How floats print: as q's console shows them.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct FloatArgs {
    /// Significant digits of floats, as q's `\P` (default 7, so
    /// 153.42000000000002 prints 153.42); 0 prints 17, q's maximum.
    #[arg(long, default_value_t = DEFAULT_PRECISION as u8, value_parser = clap::value_parser!(u8).range(0..=17))]
    pub precision: u8,
}

#[derive(clap::Args, Debug)]
pub struct QueryArgs {
    /// host:port, tcp://host:port, tls://host:port or unix:///path.
    pub target: String,
    /// The q expression, sent as a string.
    pub expr: String,
    /// Rows of a table (or entries of a dictionary) to print; the rest are
    /// counted in a last line.
    #[arg(long, default_value_t = MAX_ROWS, conflicts_with = "all")]
    pub rows: usize,
    /// Print every row.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub float: FloatArgs,
    #[command(flatten)]
    pub conn: super::ConnArgs,
}

pub fn run(cmd: KdbCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KdbCommand::Decode(a) => run_decode(a),
        KdbCommand::Query(a) => run_query(a),
    }
}

/// Parses hex text; whitespace anywhere and one leading `0x` are allowed.
/// Errors name the offset in the text.
pub fn parse_hex(text: &str) -> anyhow::Result<Vec<u8>> {
    let trimmed = text.trim_start();
    let mut start = text.len() - trimmed.len();
    if trimmed.starts_with("0x") || trimmed.starts_with("0X") {
        start += 2;
    }
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut high: Option<(usize, u8)> = None;
    for (i, c) in text.char_indices().skip_while(|(i, _)| *i < start) {
        if c.is_whitespace() {
            continue;
        }
        let nibble = c
            .to_digit(16)
            .ok_or_else(|| anyhow!("bad hex at offset {i}: {c:?} is not a hex digit"))?
            as u8;
        high = match high {
            None => Some((i, nibble)),
            Some((_, h)) => {
                out.push(h << 4 | nibble);
                None
            }
        };
    }
    if let Some((i, _)) = high {
        bail!("bad hex at offset {i}: odd number of hex digits");
    }
    if out.is_empty() {
        bail!("no bytes to decode");
    }
    Ok(out)
}

fn read_input(a: &DecodeArgs) -> anyhow::Result<Vec<u8>> {
    match (&a.file, &a.hex) {
        (Some(path), _) if path.as_os_str() == "-" => {
            let mut b = Vec::new();
            std::io::stdin()
                .read_to_end(&mut b)
                .context("reading stdin")?;
            Ok(b)
        }
        (Some(path), _) => {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))
        }
        (None, Some(h)) if h == "-" => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading hex from stdin")?;
            parse_hex(&s)
        }
        (None, Some(h)) => parse_hex(h),
        (None, None) => bail!("give HEX, `-` (hex on stdin) or --file PATH"),
    }
}

/// What the input bytes turned out to be.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    /// A whole message (header included; it may have been compressed).
    Message {
        msg_type: tickbridge::kdb::MsgType,
        value: K,
    },
    /// A bare body without a header.
    Body(K),
}

/// A whole message when the bytes start with a valid header announcing
/// exactly their length; otherwise a bare body.
pub fn decode_input(bytes: &[u8]) -> anyhow::Result<Decoded> {
    let is_message = parse_header(bytes).is_ok_and(|h| h.len == bytes.len());
    if is_message {
        let (h, value) = decode_message(bytes).map_err(|e| {
            anyhow!(
                "undecodable message (offsets count from after the {HEADER_LEN}-byte header): {e}"
            )
        })?;
        Ok(Decoded::Message {
            msg_type: h.msg_type,
            value,
        })
    } else {
        let value = decode(bytes).map_err(|e| anyhow!("undecodable body: {e}"))?;
        Ok(Decoded::Body(value))
    }
}

fn run_decode(a: DecodeArgs) -> anyhow::Result<ExitCode> {
    let bytes = read_input(&a)?;
    let decoded = decode_input(&bytes)?;
    let text = match (&decoded, a.hex_out) {
        (Decoded::Message { msg_type, value }, true) => {
            hex::encode_upper(encode_message(value, *msg_type))
        }
        (Decoded::Body(value), true) => hex::encode_upper(encode(value)),
        (Decoded::Message { value, .. } | Decoded::Body(value), false) => {
            render_with(value, MAX_ROWS, usize::from(a.float.precision))
        }
    };
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn run_query(a: QueryArgs) -> anyhow::Result<ExitCode> {
    let config = a.conn.client_config(&a.target)?;
    let rt = super::runtime()?;
    let reply = rt.block_on(async {
        let mut conn = Connection::connect(&config).await?;
        let reply = conn.query_str(&a.expr).await;
        conn.close().await;
        reply
    });
    match reply {
        Ok(v) => {
            let rows = if a.all { usize::MAX } else { a.rows };
            println!("{}", render_with(&v, rows, usize::from(a.float.precision)));
            Ok(ExitCode::SUCCESS)
        }
        Err(ClientError::Remote(e)) => {
            eprintln!("'{e}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(anyhow!("query to {} failed: {e}", config.target)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickbridge::kdb::MsgType;

    #[test]
    fn hex_forms() {
        assert_eq!(parse_hex("0A00").unwrap(), vec![0x0a, 0]);
        assert_eq!(parse_hex("  0x0a 00\n").unwrap(), vec![0x0a, 0]);
        assert_eq!(parse_hex("0a\t0 0").unwrap(), vec![0x0a, 0]);
    }

    #[test]
    fn hex_errors_name_the_offset() {
        let e = parse_hex("0A0G").unwrap_err().to_string();
        assert!(e.contains("offset 3"), "{e}");
        let e = parse_hex("0A0").unwrap_err().to_string();
        assert!(e.contains("odd") && e.contains("offset 2"), "{e}");
        assert!(parse_hex("  ").is_err());
    }

    #[test]
    fn detects_messages_and_bodies() {
        let v = K::Long(1);
        let body = encode(&v);
        assert_eq!(decode_input(&body).unwrap(), Decoded::Body(v.clone()));
        let msg = encode_message(&v, MsgType::Sync);
        assert_eq!(
            decode_input(&msg).unwrap(),
            Decoded::Message {
                msg_type: MsgType::Sync,
                value: v
            }
        );
    }

    #[test]
    fn undecodable_bytes_name_the_offset() {
        let e = decode_input(&[0x0a, 0, 5, 0, 0, 0, b'a'])
            .unwrap_err()
            .to_string();
        assert!(e.contains("offset"), "{e}");
    }
}
