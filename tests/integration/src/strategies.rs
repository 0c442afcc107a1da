//! proptest strategies for the calls of SPEC §1: the operations the
//! model-vs-database tests draw (small id spaces, so that holds and event
//! ids collide, and amounts near the bigint edge).

use crate::model::{LONG_TTL, SHORT_TTL};
use crate::{Auth, Kind, Op};
use proptest::prelude::*;

pub const CAPS: [&str; 2] = ["a", "b"];

fn amount() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => 0i64..40,
        1 => Just(i64::MAX),
        1 => (i64::MAX - 50)..=i64::MAX,
        1 => Just(-1i64),
    ]
}

fn opt<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Option<T>> {
    prop_oneof![1 => Just(None), 2 => s.prop_map(Some)]
}

fn limit() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![2 => Just(None), 3 => (0i64..120).prop_map(Some), 1 => Just(Some(i64::MAX))]
}

fn id(prefix: &'static str, n: u8) -> impl Strategy<Value = String> {
    (0..n).prop_map(move |i| format!("{prefix}{i}"))
}

fn auth() -> impl Strategy<Value = Option<Auth>> {
    prop_oneof![
        4 => Just(None),
        1 => (0i64..3).prop_map(|epoch| Some(Auth { id: "node".into(), lease: "l1".into(), epoch })),
    ]
}

fn ttl() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        8 => Just(None),
        3 => Just(Some(SHORT_TTL.to_string())),
        2 => Just(Some(LONG_TTL.to_string())),
        1 => prop::sample::select(vec!["0", "-1 hour", "-1 month 29 days"]).prop_map(|t| Some(t.to_string())),
    ]
}

pub fn op() -> impl Strategy<Value = Op> {
    let cap = prop::sample::select(CAPS.to_vec()).prop_map(String::from);
    let authorize = (
        cap.clone(),
        amount(),
        limit(),
        limit(),
        limit(),
        opt(id("h", 6)),
        opt(id("e", 6)),
        auth(),
        ttl(),
    )
        .prop_map(
            |(cap, amount, mi, mc, mt, hold, event, auth, ttl)| Op::Authorize {
                cap: Some(cap),
                grant: Some(0),
                amount: Some(amount),
                max_inv: mi,
                max_cpi: mc,
                max_total: mt,
                hold,
                event,
                auth,
                ttl,
            },
        );
    let kind = prop_oneof![
        Just(Kind::Release),
        Just(Kind::Reverse),
        Just(Kind::Reconcile),
        Just(Kind::Capture)
    ];
    let on_hold = (
        kind.clone(),
        id("h", 6),
        opt(0i64..40),
        0i64..40,
        opt(id("e", 6)),
        auth(),
        prop::option::weighted(0.15, cap.clone()),
    )
        .prop_map(
            |(kind, hold, amount, realized, event, auth, cap)| Op::Mutate {
                kind,
                grant: cap.as_ref().map(|_| 0),
                cap,
                amount,
                realized: matches!(kind, Kind::Reconcile | Kind::Capture).then_some(realized),
                hold: Some(hold),
                event,
                auth,
            },
        );
    let on_budget = (kind, cap.clone(), amount(), 0i64..40, opt(id("e", 6))).prop_map(
        |(kind, cap, amount, realized, event)| Op::Mutate {
            kind,
            cap: Some(cap),
            grant: Some(0),
            amount: Some(amount),
            realized: matches!(kind, Kind::Reconcile | Kind::Capture).then_some(realized),
            hold: None,
            event,
            auth: None,
        },
    );
    let increment = (cap, limit(), opt(id("e", 6))).prop_map(|(cap, max, event)| Op::Increment {
        cap: Some(cap),
        grant: Some(0),
        max,
        event,
    });
    let expire = (
        prop::sample::select(vec![0i64, 2]),
        prop_oneof![6 => Just(Some(10000)), 2 => Just(Some(1)), 1 => Just(Some(0)), 1 => Just(Some(-1)), 1 => Just(None)],
    )
        .prop_map(|(hours_ahead, lim)| Op::Expire { hours_ahead, lim });
    prop_oneof![5 => authorize, 5 => on_hold, 2 => on_budget, 2 => increment, 1 => expire]
}
