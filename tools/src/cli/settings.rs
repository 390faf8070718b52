//! The bridge's settings for a command: the `TICKBRIDGE_*` variables as
//! the Lambda reads them, with the command's flags on top. Errors name
//! what the user typed: a flag when the value came from a flag, the
//! variable when it came from the environment.

use tickbridge::config::Config;

/// One flag that stands for one variable.
struct Flag {
    var: &'static str,
    flag: &'static str,
    value: Option<String>,
}

#[derive(Default)]
pub struct Settings {
    flags: Vec<Flag>,
}

impl Settings {
    pub fn new() -> Settings {
        Settings::default()
    }

    /// `--flag` (spelled as in `--help`) gives `var` when `value` is set;
    /// the flag is known either way, so errors can suggest it.
    pub fn flag(mut self, var: &'static str, flag: &'static str, value: Option<String>) -> Self {
        self.flags.push(Flag { var, flag, value });
        self
    }

    /// Whether a flag, not the environment, set `var`.
    pub fn was_given(&self, var: &str) -> bool {
        self.given(var).is_some()
    }

    fn given(&self, var: &str) -> Option<&Flag> {
        self.flags
            .iter()
            .rev()
            .find(|f| f.var == var && f.value.is_some())
    }

    fn known(&self, var: &str) -> Option<&Flag> {
        self.flags.iter().find(|f| f.var == var)
    }

    /// The settings, or an error in the user's words.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut vars: Vec<(String, String)> = std::env::vars().collect();
        for f in &self.flags {
            if let Some(v) = &f.value {
                vars.push((f.var.to_string(), v.clone()));
            }
        }
        Config::from_vars(vars).map_err(|e| super::errors::usage(self.blame(anyhow::Error::new(e))))
    }

    /// Rewrites an error that names a variable the user set with a flag so
    /// it names the flag instead (a library error knows only variables).
    pub fn blame(&self, e: anyhow::Error) -> anyhow::Error {
        let text = super::errors::render(&e);
        // The store needs a table; both ways out are flags of this command.
        if text.starts_with("TICKBRIDGE_DEDUPE_TABLE: required") {
            if let (Some(table), Some(store)) = (
                self.known("TICKBRIDGE_DEDUPE_TABLE"),
                self.known("TICKBRIDGE_STORE"),
            ) {
                let how = if self.given("TICKBRIDGE_STORE").is_some() {
                    format!("{} dynamodb", store.flag)
                } else {
                    "the dynamodb store (TICKBRIDGE_STORE or the default)".to_string()
                };
                return anyhow::anyhow!(
                    "{} is required with {how}: name the DynamoDB table, or pass {} memory to keep dedupe state in this process only",
                    table.flag,
                    store.flag
                );
            }
        }
        let mut out = text.clone();
        for f in &self.flags {
            if let Some(v) = &f.value {
                if out.starts_with(&format!("{}:", f.var)) {
                    out = format!("{} {v}{}", f.flag, &out[f.var.len()..]);
                }
                out = out.replace(f.var, f.flag);
            }
        }
        if out == text {
            e
        } else {
            anyhow::anyhow!(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_flag_the_user_typed() {
        let s = Settings::new()
            .flag("TICKBRIDGE_TP", "--tp", Some("5010".into()))
            .flag("TICKBRIDGE_STORE", "--store", None);
        let e = s.blame(anyhow::anyhow!(
            "TICKBRIDGE_TP: bad target 5010: expected host:port"
        ));
        assert_eq!(
            e.to_string(),
            "--tp 5010: bad target 5010: expected host:port"
        );
        // A variable the user set in the environment keeps its name.
        let e = s.blame(anyhow::anyhow!(
            "TICKBRIDGE_PUBLISH: \"x\" is not one of sync"
        ));
        assert_eq!(
            e.to_string(),
            "TICKBRIDGE_PUBLISH: \"x\" is not one of sync"
        );
    }

    #[test]
    fn a_missing_table_suggests_both_flags() {
        let s = Settings::new()
            .flag("TICKBRIDGE_STORE", "--store", None)
            .flag("TICKBRIDGE_DEDUPE_TABLE", "--dedupe-table", None);
        let e = s.blame(anyhow::anyhow!(
            "TICKBRIDGE_DEDUPE_TABLE: required when TICKBRIDGE_STORE is dynamodb"
        ));
        let text = e.to_string();
        assert!(text.starts_with("--dedupe-table is required"), "{text}");
        assert!(text.contains("--store memory"), "{text}");
    }
}
