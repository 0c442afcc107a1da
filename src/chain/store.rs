//! The SQL of the chain's readers: the heads of a tenant's chains (kept on
//! their budget rows, written with every link by budget/store.rs and by
//! history retirement; `verify()` checks them against the links).

use crate::spi::{spi, with_db, Stmt, TEXT};
use spendguard_core::chain;
use spendguard_core::Result;

/// Every chain head of the tenant, in key order (capability id bytes, then
/// grant index: the "C" collation is byte order).
static HEADS: Stmt = Stmt {
    sql: "SELECT capability_id, grant_index, chain_n, chain_hash FROM spendguard.budget_usage \
          WHERE tenant_id = $1 AND chain_n > 0 \
          ORDER BY capability_id COLLATE \"C\", grant_index",
    types: &[TEXT],
};

/// (how many heads, hex of chain_root over them).
pub fn root(tenant: &str) -> Result<(i64, String)> {
    with_db(tenant, |db| {
        let t = db.run(&HEADS, &[db.tenant.into()]);
        let mut heads: Vec<(String, i32, i64, Vec<u8>)> = Vec::new();
        for r in t {
            heads.push((
                spi(r.get::<String>(1)).unwrap_or_default(),
                spi(r.get::<i32>(2)).unwrap_or_default(),
                spi(r.get::<i64>(3)).unwrap_or_default(),
                spi(r.get::<Vec<u8>>(4)).unwrap_or_default(),
            ));
        }
        // byte order, whatever the database's collation did
        heads.sort_by(|a, b| (a.0.as_bytes(), a.1).cmp(&(b.0.as_bytes(), b.1)));
        let root = chain::root(
            heads
                .iter()
                .map(|(c, g, n, h)| (c.as_str(), *g, *n, h.as_slice())),
        );
        Ok((heads.len() as i64, chain::hex(&root)))
    })
}
