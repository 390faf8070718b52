//! Where a kdb+ process listens: `host:port`, `tcp://host:port`,
//! `tls://host:port` or `unix:///path/to/socket`.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use super::ClientError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Tcp {
        host: String,
        port: u16,
    },
    /// TLS over TCP; the server name checked against the certificate is
    /// `host`. The webpki roots are trusted, plus `ca_file`'s certificates.
    Tls {
        host: String,
        port: u16,
        ca_file: Option<PathBuf>,
    },
    Unix(PathBuf),
}

impl Target {
    pub fn parse(s: &str) -> Result<Target, ClientError> {
        let s = s.trim();
        if let Some(path) = s.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(ClientError::BadTarget(format!(
                    "{s}: a unix target needs a socket path (unix:///path/to/socket)"
                )));
            }
            return Ok(Target::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = s.strip_prefix("tls://") {
            let (host, port) = host_port(rest, s)?;
            return Ok(Target::Tls {
                host,
                port,
                ca_file: None,
            });
        }
        let rest = s.strip_prefix("tcp://").unwrap_or(s);
        if rest.contains("://") {
            return Err(ClientError::BadTarget(format!(
                "{s}: unknown scheme (use host:port, tcp://, tls:// or unix://)"
            )));
        }
        let (host, port) = host_port(rest, s)?;
        Ok(Target::Tcp { host, port })
    }

    /// The same TLS target trusting the CA certificates in a PEM file; other
    /// targets are returned unchanged.
    pub fn with_ca_file(self, ca: Option<PathBuf>) -> Target {
        match self {
            Target::Tls { host, port, .. } => Target::Tls {
                host,
                port,
                ca_file: ca,
            },
            other => other,
        }
    }

    /// Whether the peer runs on this machine, where kdb+ never compresses.
    /// Whether what is sent (credentials included) is encrypted on the way.
    pub fn is_tls(&self) -> bool {
        matches!(self, Target::Tls { .. })
    }

    pub fn is_local(&self) -> bool {
        match self {
            Target::Unix(_) => true,
            Target::Tcp { host, .. } | Target::Tls { host, .. } => is_loopback_host(host),
        }
    }
}

fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Splits `host:port`, accepting `[v6]:port`.
fn host_port(hp: &str, whole: &str) -> Result<(String, u16), ClientError> {
    let bad = |why: &str| ClientError::BadTarget(format!("{whole}: {why}"));
    let (host, port) = hp
        .rsplit_once(':')
        .ok_or_else(|| bad("expected host:port"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| bad("the port must be a number from 1 to 65535"))?;
    if port == 0 {
        return Err(bad("the port must be a number from 1 to 65535"));
    }
    Ok((host.to_string(), port))
}

impl FromStr for Target {
    type Err = ClientError;
    fn from_str(s: &str) -> Result<Target, ClientError> {
        Target::parse(s)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host_fmt = |f: &mut fmt::Formatter<'_>, host: &str| {
            if host.contains(':') {
                write!(f, "[{host}]")
            } else {
                f.write_str(host)
            }
        };
        match self {
            Target::Tcp { host, port } => {
                host_fmt(f, host)?;
                write!(f, ":{port}")
            }
            Target::Tls { host, port, .. } => {
                f.write_str("tls://")?;
                host_fmt(f, host)?;
                write!(f, ":{port}")
            }
            Target::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            Target::parse("localhost:5010").unwrap(),
            Target::Tcp {
                host: "localhost".into(),
                port: 5010
            }
        );
        assert_eq!(
            Target::parse("tcp://10.0.0.1:5010").unwrap(),
            Target::Tcp {
                host: "10.0.0.1".into(),
                port: 5010
            }
        );
        assert_eq!(
            Target::parse("tls://tp.example.com:5011").unwrap(),
            Target::Tls {
                host: "tp.example.com".into(),
                port: 5011,
                ca_file: None
            }
        );
        assert_eq!(
            Target::parse("unix:///tmp/kx.5010").unwrap(),
            Target::Unix(PathBuf::from("/tmp/kx.5010"))
        );
        assert_eq!(
            Target::parse("[::1]:5010").unwrap(),
            Target::Tcp {
                host: "::1".into(),
                port: 5010
            }
        );
    }

    #[test]
    fn rejects_bad_targets() {
        for bad in [
            "",
            "localhost",
            ":5010",
            "host:0",
            "host:70000",
            "host:x",
            "http://h:1",
            "unix://",
        ] {
            assert!(
                matches!(Target::parse(bad), Err(ClientError::BadTarget(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn displays_as_parsed() {
        for s in ["h:1", "tls://h:2", "unix:///tmp/s", "[::1]:5"] {
            assert_eq!(Target::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn locality() {
        assert!(Target::parse("localhost:1").unwrap().is_local());
        assert!(Target::parse("127.0.0.2:1").unwrap().is_local());
        assert!(Target::parse("[::1]:1").unwrap().is_local());
        assert!(Target::parse("unix:///x").unwrap().is_local());
        assert!(!Target::parse("10.1.2.3:1").unwrap().is_local());
        assert!(!Target::parse("tls://tp.example.com:1").unwrap().is_local());
    }
}
