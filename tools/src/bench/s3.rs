//! `tickbridge bench s3`: one generated CSV object (default 1 GB), put in
//! moto's S3 by multipart upload, streamed through the bridge's object path
//! (`App::ingest_object`: line reader, CSV decode, sync `.u.upd` flushes,
//! checkpoints) to a tickerplant stand-in. Prints rows/s, MB/s and the
//! peak RSS (VmHWM) of this process, which does the bridge's work only:
//! the stand-in runs as a child process (`tickbridge tp`), since it keeps
//! every row in memory, and so does moto.

use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use super::child::{start_moto, Reaped};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use tickbridge::app::App;
use tickbridge::config::Config;
use tickbridge::pipeline::BatchContext;
use tickbridge::s3::ingest::ObjectStatus;
use tickbridge::s3::ObjectRef;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Object size in MB (10^6 bytes).
    #[arg(long, default_value_t = 1000)]
    pub mb: u64,
    /// Gzip the object (`.csv.gz`).
    #[arg(long)]
    pub gzip: bool,
    /// Rows per flush (`TICKBRIDGE_S3_FLUSH_ROWS`).
    #[arg(long, default_value_t = tickbridge::s3::ingest::DEFAULT_FLUSH_ROWS)]
    pub flush_rows: usize,
    /// An S3 endpoint to use instead of starting moto.
    #[arg(long)]
    pub endpoint: Option<String>,
}

const SCHEMA: &str = r#"{"table":"s3bench","route":{"default":true},"csv":{},
  "columns":[{"name":"time","type":"timespan","stamp":"tickerplant"},
    {"name":"sym","type":"symbol"},{"name":"price","type":"float"},
    {"name":"size","type":"long"},{"name":"venue","type":"symbol"}]}"#;

/// Multipart part size: S3's minimum is 5 MiB; 16 MiB keeps the number of
/// parts (and moto's bookkeeping) small for 1 GB.
const PART: usize = 16 << 20;

/// The stand-in as a child process on a free port, with the bench schema.
fn start_tp(schemas: &std::path::Path) -> anyhow::Result<(Reaped, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(std::env::current_exe()?)
        .args(["tp", "--port", &port.to_string(), "--schemas"])
        .arg(schemas)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let tp = Reaped(child);
    let addr = format!("127.0.0.1:{port}");
    let until = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() {
        if Instant::now() > until {
            anyhow::bail!("the stand-in did not listen on {addr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((tp, addr))
}

/// Row `i` of the generated object.
fn row(i: u64, out: &mut Vec<u8>) {
    use std::io::Write;
    const SYMS: [&str; 8] = ["AAPL", "MSFT", "IBM", "GOOG", "AMZN", "KX", "NVDA", "TSLA"];
    const VENUES: [&str; 3] = ["XNAS", "XNYS", "BATS"];
    let _ = writeln!(
        out,
        "{},{}.{:02},{},{}",
        SYMS[(i % 8) as usize],
        100 + i % 900,
        i % 100,
        1 + i % 5000,
        VENUES[(i % 3) as usize]
    );
}

/// Generates and uploads the object part by part; returns (rows, bytes).
async fn upload(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    target: u64,
    gzip: bool,
) -> anyhow::Result<(u64, u64)> {
    let up = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await?;
    let id = up
        .upload_id()
        .ok_or_else(|| anyhow::anyhow!("no upload id"))?
        .to_string();
    let mut parts = Vec::new();
    let mut rows = 0u64;
    let mut written = 0u64;
    let mut enc =
        gzip.then(|| flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    let mut plain = Vec::with_capacity(PART + 256);
    plain.extend_from_slice(b"sym,price,size,venue\n");
    let mut done = false;
    while !done {
        let mut body: Vec<u8> = Vec::with_capacity(PART + 256);
        // Fill one part (of compressed bytes when gzip).
        loop {
            while plain.len() < (1 << 20) && written < target {
                let before = plain.len();
                row(rows, &mut plain);
                rows += 1;
                written += (plain.len() - before) as u64;
            }
            let last = written >= target;
            match &mut enc {
                Some(e) => {
                    use std::io::Write;
                    e.write_all(&plain)?;
                    plain.clear();
                    if last {
                        let e = enc.take().ok_or_else(|| anyhow::anyhow!("encoder"))?;
                        body.extend_from_slice(&e.finish()?);
                    } else {
                        body.append(e.get_mut());
                    }
                }
                None => body.append(&mut plain),
            }
            if last {
                done = true;
                break;
            }
            if body.len() >= PART {
                break;
            }
        }
        let n = parts.len() as i32 + 1;
        let out = s3
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(body))
            .send()
            .await?;
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .set_e_tag(out.e_tag().map(str::to_string))
                .build(),
        );
    }
    let completed = s3
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await;
    // Some moto versions answer with a root element the SDK does not
    // parse (`CompleteMultipartUploadResponse`): the object is what says
    // whether the upload completed.
    if let Err(e) = completed {
        s3.head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|_| anyhow::anyhow!("completing the upload: {e}"))?;
    }
    Ok((rows, written))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dir = std::env::temp_dir().join(format!("tickbridge-bench-s3-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("s3bench.json"), SCHEMA)?;
    let (moto, endpoint) = match &args.endpoint {
        Some(e) => (None, e.clone()),
        None => {
            let (m, e) = start_moto()?;
            (Some(m), e)
        }
    };
    let (tp, tp_addr) = start_tp(&dir)?;
    let result = crate::cli::runtime()?.block_on(measure(&args, &endpoint, &tp_addr, &dir));
    drop(tp);
    drop(moto);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn measure(
    args: &Args,
    endpoint: &str,
    tp: &str,
    schemas: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let sdk = tickbridge::aws::local_config(endpoint).await;
    let s3 = tickbridge::s3::claim_check::s3_client(&sdk);
    let bucket = format!("bench-s3-{}", std::process::id());
    s3.create_bucket().bucket(&bucket).send().await?;
    let key = if args.gzip {
        "bench.csv.gz"
    } else {
        "bench.csv"
    };
    let target = args.mb * 1_000_000;
    let t = Instant::now();
    let (rows, bytes) = upload(&s3, &bucket, key, target, args.gzip).await?;
    println!(
        "generated and uploaded s3://{bucket}/{key}: {rows} rows, {:.1} MB of CSV{} in {:.1} s",
        bytes as f64 / 1e6,
        if args.gzip { " (gzip)" } else { "" },
        t.elapsed().as_secs_f64()
    );
    let rss_before = super::tp::peak_rss_kb();
    // Linux: writing 5 to clear_refs resets VmHWM, so the peak below is
    // the ingestion's, not the upload's buffers.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let config = Config::from_vars([
        ("TICKBRIDGE_TP".to_string(), tp.to_string()),
        ("TICKBRIDGE_STORE".to_string(), "memory".to_string()),
        (
            "TICKBRIDGE_SCHEMAS".to_string(),
            schemas.display().to_string(),
        ),
        (
            "TICKBRIDGE_S3_FLUSH_ROWS".to_string(),
            args.flush_rows.to_string(),
        ),
    ])?;
    let app = App::init(config).await?.with_s3_client(s3.clone());
    let head = s3.head_object().bucket(&bucket).key(key).send().await?;
    let mut object = ObjectRef::new(&bucket, key);
    object.etag = head.e_tag().map(|e| e.trim_matches('"').to_string());
    let ctx = BatchContext::with_budget("bench-s3", Duration::from_secs(24 * 3600));
    let t = Instant::now();
    let report = app.ingest_object(&object, &ctx, false, &mut |_| {}).await;
    let secs = t.elapsed().as_secs_f64();
    if report.status != ObjectStatus::Done {
        anyhow::bail!("object not ingested: {:?}", report.status);
    }
    if report.rows as u64 != rows {
        anyhow::bail!("{} rows sent, {rows} generated", report.rows);
    }
    let peak = super::tp::peak_rss_kb();
    println!(
        "streamed {} rows ({:.1} MB of CSV) from moto S3 to the stand-in in {:.2} s, {} .u.upd messages",
        report.rows,
        bytes as f64 / 1e6,
        secs,
        report.messages_sent
    );
    println!(
        "  {:.0} rows/s, {:.1} MB/s",
        report.rows as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
    let mb =
        |kb: Option<u64>| kb.map_or("?".to_string(), |k| format!("{:.1} MB", k as f64 / 1024.0));
    println!(
        "  peak RSS of this process (VmHWM{}): {} (peak before: {}); issue 14 bound: 128 MB",
        if reset {
            ", reset before ingesting"
        } else {
            ", whole run"
        },
        mb(peak),
        mb(rss_before)
    );
    Ok(ExitCode::SUCCESS)
}
