//! The engine's error-free path: one user × one group of three products (ENTERPRISEPACK, EMS,
//! and WORKPLACE_ANALYTICS, an add-on whose prerequisite the group's E3 provides), then batches
//! of 1,000 / 10,000 / 100,000 members against one seat counter (P1). Throughput is reported
//! per user ("elements"), so per-user time can be compared across batch sizes.
//!
//! `cargo bench --bench engine -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use group_licensing::engine::{
    Engine, GroupId, LicenseSpec, SeatCounter, UserId, UserLicenses, set_group_intent,
};
use group_licensing::rules::{self, Country, RuleTable};

const RULES: &str = include_str!("../tests/fixtures/scenario-rules/scenario.rules");

const GROUP: GroupId = GroupId(1);

fn table() -> RuleTable {
    match rules::compile_texts([("bench.rules", RULES)]) {
        Ok(compiled) => compiled.table,
        Err(failure) => panic!("{:?}", failure.errors),
    }
}

fn license_set(table: &RuleTable) -> Vec<LicenseSpec> {
    let product = |n| table.product_by_name(n).expect("product");
    let plan = |n| table.plan_by_name(n).expect("plan");
    vec![
        LicenseSpec::new(product("ENTERPRISEPACK"), [plan("TEAMS1")]),
        LicenseSpec::full(product("EMS")),
        LicenseSpec::full(product("WORKPLACE_ANALYTICS")),
    ]
}

fn seats(table: &RuleTable) -> SeatCounter {
    let mut seats = SeatCounter::new(table.product_count());
    for p in table.product_ids() {
        seats.set_prepaid(p, u32::MAX);
    }
    seats
}

fn pending_user(id: i64, set: &[LicenseSpec]) -> UserLicenses {
    let mut user = UserLicenses::new(UserId(id), Country::parse("US"));
    set_group_intent(&mut user, GROUP, set);
    user
}

fn bench(c: &mut Criterion) {
    let table = table();
    let set = license_set(&table);
    let engine = Engine::new(&table, Country::parse("US").expect("US"));

    let mut one = c.benchmark_group("one_user_three_products");
    one.throughput(Throughput::Elements(1));
    one.bench_function("p2_apply_pending", |b| {
        let mut seats = seats(&table);
        b.iter_batched_ref(
            || pending_user(1, &set),
            |user| black_box(engine.process_group(user, GROUP, &mut seats)),
            BatchSize::SmallInput,
        )
    });
    one.bench_function("p4_revalidate_active", |b| {
        let mut seats = seats(&table);
        let mut user = pending_user(1, &set);
        engine.process_group(&mut user, GROUP, &mut seats);
        b.iter(|| black_box(engine.process_group(&mut user, GROUP, &mut seats)))
    });
    one.finish();

    let mut batch = c.benchmark_group("batch_p2_apply_pending");
    for n in [1_000usize, 10_000, 100_000] {
        batch.throughput(Throughput::Elements(n as u64));
        if n >= 100_000 {
            batch.sample_size(10);
        } else if n >= 10_000 {
            batch.sample_size(20);
        }
        let template: Vec<UserLicenses> = (0..n as i64).map(|i| pending_user(i, &set)).collect();
        batch.bench_function(format!("{n}"), |b| {
            let mut seats = seats(&table);
            b.iter_batched_ref(
                || template.clone(),
                |users| {
                    black_box(engine.process_batch(GROUP, users.iter_mut(), &mut seats, |_, _| {}))
                },
                BatchSize::PerIteration,
            )
        });
    }
    batch.finish();

    let mut again = c.benchmark_group("batch_p4_revalidate_active");
    for n in [1_000usize, 10_000, 100_000] {
        again.throughput(Throughput::Elements(n as u64));
        if n >= 100_000 {
            again.sample_size(10);
        } else if n >= 10_000 {
            again.sample_size(20);
        }
        let mut seats = seats(&table);
        let mut users: Vec<UserLicenses> = (0..n as i64).map(|i| pending_user(i, &set)).collect();
        engine.process_batch(GROUP, users.iter_mut(), &mut seats, |_, _| {});
        again.bench_function(format!("{n}"), |b| {
            b.iter(|| {
                black_box(engine.process_batch(GROUP, users.iter_mut(), &mut seats, |_, _| {}))
            })
        });
    }
    again.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
