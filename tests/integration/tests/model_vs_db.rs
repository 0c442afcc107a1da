//! Random operation sequences run through the reference model and the
//! database: every call must give the same outcome (decision, denial reason,
//! totals, or SQLSTATE), and the stored totals and holds must agree after.

use proptest::prelude::*;
use spendguard_it::model::Model;
use spendguard_it::strategies::{op, CAPS};
use spendguard_it::{connect, hold, run, uniq, usage, verify};

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn database_agrees_with_the_model(ops in prop::collection::vec(op(), 1..40)) {
        // a fresh tenant per case is a fresh, isolated state
        let mut c = connect(&uniq("model"));
        let mut m = Model::default();
        for (i, op) in ops.iter().enumerate() {
            let want = m.apply(op);
            let got = run(&mut c, op);
            prop_assert_eq!(&got, &want, "step {}: {:?}", i, op);
            for cap in CAPS {
                let b = m.budget(cap, 0);
                prop_assert_eq!(usage(&mut c, cap, 0), (b.count, b.exposed, b.realized), "step {} totals of {}", i, cap);
            }
        }
        for (id, h) in &m.holds {
            prop_assert_eq!(
                hold(&mut c, id),
                Some((h.disposition.to_string(), h.authorized, h.remaining, h.realized)),
                "hold {}", id
            );
        }
        let broken = verify(&mut c);
        prop_assert!(broken.is_empty(), "verify() found: {:?}", broken);
    }
}
