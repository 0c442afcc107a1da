//! docs/reference.md is the user-facing contract: every function, view,
//! type, table and sequence of the `spendguard` schema has a `###` heading
//! there (`` ### `spendguard.name` ``), and every such heading names an
//! object that exists. A new function without its entry, or an entry left
//! behind by a removed one, fails here.

use spendguard_it::connect;
use std::collections::BTreeSet;

fn documented() -> BTreeSet<String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/reference.md"
    ))
    .unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("### `spendguard."))
        .map(|rest| {
            rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn in_catalog() -> BTreeSet<String> {
    let mut c = connect("reference");
    c.query(
        "SELECT p.proname::text FROM pg_proc p WHERE p.pronamespace = 'spendguard'::regnamespace \
         UNION SELECT c.relname::text FROM pg_class c \
           WHERE c.relnamespace = 'spendguard'::regnamespace AND c.relkind IN ('r', 'v', 'S', 'c') \
         UNION SELECT t.typname::text FROM pg_type t \
           WHERE t.typnamespace = 'spendguard'::regnamespace AND t.typtype IN ('d', 'e')",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[test]
fn the_reference_lists_exactly_what_the_catalog_has() {
    let docs = documented();
    let catalog = in_catalog();
    assert!(catalog.len() > 70, "{catalog:?}");
    let undocumented: Vec<_> = catalog.difference(&docs).collect();
    let stale: Vec<_> = docs.difference(&catalog).collect();
    assert!(
        undocumented.is_empty(),
        "in the catalog, not in docs/reference.md: {undocumented:?}"
    );
    assert!(
        stale.is_empty(),
        "in docs/reference.md, not in the catalog: {stale:?}"
    );
}
