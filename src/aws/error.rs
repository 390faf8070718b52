//! AWS SDK errors as one line for people: each message in the error's
//! source chain once, without the Rust Debug dump (HTTP headers, `SdkBody`,
//! `Extensions`) that the SDK's `DisplayErrorContext` appends.

use std::error::Error;

/// `e` and its sources joined by ": ", skipping the SDK's generic
/// "service error" and any text already said by an earlier link (service
/// errors repeat their code and message one level down).
pub fn error_text(e: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        let text = text.trim();
        let said = parts.iter().any(|p| p.contains(text));
        if !text.is_empty() && text != "service error" && !said {
            parts.push(text.to_string());
        }
        next = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::error_text;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn each_message_once_without_debug() {
        let e = E(
            "service error",
            Some(Box::new(E(
                "ResourceNotFoundException: Function not found",
                Some(Box::new(E(
                    "ResourceNotFoundException: Function not found",
                    None,
                ))),
            ))),
        );
        assert_eq!(
            error_text(&e),
            "ResourceNotFoundException: Function not found"
        );
        let e = E(
            "dispatch failure",
            Some(Box::new(E("Connection refused", None))),
        );
        assert_eq!(error_text(&e), "dispatch failure: Connection refused");
    }
}
