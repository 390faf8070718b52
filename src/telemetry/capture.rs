//! Test helper: the JSON log lines events write, captured as the Lambda
//! writes them (flat JSON), with a check that no line repeats a key.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The subscriber the Lambda installs (`lambda::init_json_logging`:
/// `xray::log`'s flat lines), writing into a buffer.
fn subscriber(buf: Buffer) -> impl tracing::Subscriber + Send + Sync {
    crate::xray::log::subscriber(tracing_subscriber::EnvFilter::new("debug"), move || {
        buf.clone()
    })
}

/// Runs `f` with the JSON subscriber; returns each line parsed, after
/// checking it is one JSON object without a repeated key.
pub fn lines(f: impl FnOnce()) -> Vec<Value> {
    let buf = Buffer::default();
    tracing::subscriber::with_default(subscriber(buf.clone()), f);
    parse(&buf)
}

/// As [`lines`], for async code run on a current-thread runtime.
pub fn lines_async<F: std::future::Future>(f: F) -> (F::Output, Vec<Value>) {
    let buf = Buffer::default();
    let out = {
        let _guard = tracing::subscriber::set_default(subscriber(buf.clone()));
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    };
    (out, parse(&buf))
}

fn parse(buf: &Buffer) -> Vec<Value> {
    let text = buf.0.lock().map(|b| b.clone()).unwrap_or_default();
    let text = String::from_utf8(text).expect("UTF-8 logs");
    text.lines()
        .map(|line| {
            let keys: Keys = serde_json::from_str(line).expect("a JSON object");
            let mut seen = std::collections::HashSet::new();
            for k in &keys.0 {
                assert!(seen.insert(k), "key {k:?} twice in {line}");
            }
            serde_json::from_str(line).expect("JSON")
        })
        .collect()
}

/// The keys of a JSON object, repeats included (`serde_json::Value`
/// would keep only the last).
struct Keys(Vec<String>);

impl<'de> Deserialize<'de> for Keys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Keys, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Keys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some((k, _)) = map.next_entry::<String, IgnoredAny>()? {
                    keys.push(k);
                }
                Ok(Keys(keys))
            }
        }
        d.deserialize_map(V)
    }
}

/// Fails when a field's value reads like Rust `Debug` output.
pub fn assert_no_debug(line: &Value) {
    let Value::Object(map) = line else {
        panic!("not an object: {line}");
    };
    for (k, v) in map {
        if let Value::String(s) = v {
            for tell in ["Some(", "None", "{ ", "\")", "[\""] {
                assert!(!s.contains(tell), "{k} = {s:?} looks like Debug in {line}");
            }
        }
    }
}

/// The lines whose message is `message`.
pub fn said<'a>(lines: &'a [Value], message: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["message"] == message).collect()
}

#[test]
fn repeated_keys_are_caught() {
    let dup = std::panic::catch_unwind(|| {
        let buf = Buffer::default();
        buf.clone()
            .write_all(b"{\"target\":\"a\",\"target\":\"b\"}\n")
            .unwrap();
        parse(&buf)
    });
    assert!(dup.is_err());
}
