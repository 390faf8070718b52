//! The optional user file: one `user:password` per line, as q's `-u` file.

use std::path::Path;

use rustc_hash::FxHashMap;

#[derive(Clone, Debug, Default)]
pub struct Users {
    passwords: FxHashMap<String, Vec<u8>>,
}

impl Users {
    /// Reads `user:password` lines; blank lines and lines starting with `#`
    /// are skipped. A line without a colon is an error naming its number.
    pub fn load(path: &Path) -> Result<Users, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Users::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Users, String> {
        let mut passwords = FxHashMap::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, pass) = line
                .split_once(':')
                .ok_or_else(|| format!("line {}: expected user:password", n + 1))?;
            passwords.insert(user.to_string(), pass.as_bytes().to_vec());
        }
        Ok(Users { passwords })
    }

    /// Checks the credentials of a handshake (`user:password`, bytes).
    pub fn allows(&self, credentials: &[u8]) -> bool {
        let (user, pass) = match credentials.iter().position(|&b| b == b':') {
            Some(i) => (&credentials[..i], &credentials[i + 1..]),
            None => (credentials, &[][..]),
        };
        let Ok(user) = std::str::from_utf8(user) else {
            return false;
        };
        self.passwords
            .get(user)
            .is_some_and(|want| same_secret(want, pass))
    }

    pub fn len(&self) -> usize {
        self.passwords.len()
    }

    pub fn is_empty(&self) -> bool {
        self.passwords.is_empty()
    }
}

/// Compares without stopping at the first difference, so timing says
/// nothing about how much of a guess was right.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_user_and_password() {
        let u = Users::parse("# users\nalice:s3cret\n\nbob:\n").unwrap();
        assert_eq!(u.len(), 2);
        assert!(u.allows(b"alice:s3cret"));
        assert!(!u.allows(b"alice:s3cre"));
        assert!(!u.allows(b"alice"));
        assert!(u.allows(b"bob:"));
        assert!(u.allows(b"bob"));
        assert!(!u.allows(b"carol:x"));
        assert!(Users::parse("nocolon").is_err());
    }
}
