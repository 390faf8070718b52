//! AWS SDK setup shared by every client the bridge makes (DynamoDB, SQS,
//! Kinesis): one HTTPS stack (hyper + rustls with the ring provider, the
//! only TLS code in the binary), the latest behaviour version, and a region
//! from `AWS_REGION` / the profile that defaults to us-east-1 so local runs
//! against emulators need no profile.

pub mod error;
pub mod sqs;

use aws_config::environment::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_http_client::Builder as HttpClientBuilder;

/// The region used when neither the environment nor a profile names one.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The shared configuration from the environment (credentials chain,
/// `AWS_REGION`, `AWS_ENDPOINT_URL[_SERVICE]`), with `endpoint` overriding
/// any configured endpoint URL (for emulators such as moto).
pub async fn sdk_config(endpoint: Option<&str>) -> SdkConfig {
    sdk_config_for(endpoint, None).await
}

/// Like [`sdk_config`], with fixed credentials when given (tests and
/// emulators, which accept any key) instead of the default chain.
pub async fn sdk_config_for(endpoint: Option<&str>, credentials: Option<Credentials>) -> SdkConfig {
    // Environment, then profile, then us-east-1. No instance-metadata probe:
    // Lambda and ECS always set AWS_REGION, and off AWS the probe would only
    // add seconds of timeouts to start-up.
    let region = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
        .or_else(ProfileFileRegionProvider::new())
        .or_else(Region::new(DEFAULT_REGION));
    // The one HTTP client: rustls with ring and native roots; plain
    // `http://` endpoints (emulators) go through the same connector.
    let http = HttpClientBuilder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .region(region);
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
    }
    if let Some(creds) = credentials {
        loader = loader.credentials_provider(creds);
    }
    loader.load().await
}

/// Configuration for a local emulator: the given endpoint, dummy static
/// credentials and us-east-1, whatever the environment says.
pub async fn local_config(endpoint: &str) -> SdkConfig {
    let creds = Credentials::new("test", "test", None, None, "tickbridge-local");
    sdk_config_for(Some(endpoint), Some(creds))
        .await
        .into_builder()
        .region(Region::new(DEFAULT_REGION))
        .build()
}

pub fn dynamodb_client(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

pub fn sqs_client(config: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(config)
}

pub fn kinesis_client(config: &SdkConfig) -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::new(config)
}

/// FNV-1a (64-bit) of `parts` joined by a zero byte, as 16 hex digits: a
/// stable, dependency-free digest for identifiers AWS limits in length
/// (SQS deduplication ids, over-long DynamoDB keys). Not cryptographic.
pub fn fnv1a64_hex(parts: &[&[u8]]) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            // A zero separator byte: the xor with 0 vanishes, the multiply stays.
            h = h.wrapping_mul(PRIME);
        }
        for &b in part.iter() {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::fnv1a64_hex;

    #[test]
    fn fnv1a64_matches_published_vectors() {
        // Reference values of FNV-1a 64 for "" and "a".
        assert_eq!(fnv1a64_hex(&[b""]), "cbf29ce484222325");
        assert_eq!(fnv1a64_hex(&[b"a"]), "af63dc4c8601ec8c");
        assert_eq!(fnv1a64_hex(&[b"foobar"]), "85944171f73967e8");
    }

    #[test]
    fn parts_are_separated() {
        assert_ne!(fnv1a64_hex(&[b"ab", b"c"]), fnv1a64_hex(&[b"a", b"bc"]));
    }
}
