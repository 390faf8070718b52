//! The example schemas compiled into the binary: the embedded default for
//! `tickbridge demo`, `invoke` and a Lambda deployed without a schema
//! directory.

use super::model::Schema;

const FILES: &[(&str, &str)] = &[
    (
        "all_types.json",
        include_str!("../../schemas/all_types.json"),
    ),
    (
        "option_input.json",
        include_str!("../../schemas/option_input.json"),
    ),
    ("quote.json", include_str!("../../schemas/quote.json")),
    ("trade.json", include_str!("../../schemas/trade.json")),
];

/// The embedded schemas, in file-name order as `load_dir` reads them.
pub fn schemas() -> Result<Vec<Schema>, String> {
    FILES
        .iter()
        .map(|(name, text)| serde_json::from_str(text).map_err(|e| format!("embedded {name}: {e}")))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_schemas_match_the_schema_directory() {
        let embedded = super::schemas().expect("parse");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let on_disk = crate::schema::load_dir(&dir).expect("load");
        let names =
            |v: &[crate::schema::Schema]| v.iter().map(|s| s.table.clone()).collect::<Vec<_>>();
        assert_eq!(names(&embedded), names(&on_disk));
    }
}
