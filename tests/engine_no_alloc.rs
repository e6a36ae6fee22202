//! The error-free processing path allocates nothing: a counting global allocator wraps
//! `System` and counts the allocations of the current thread while a step runs. Deterministic,
//! not timed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use group_licensing::engine::{
    AssignmentState, Engine, GroupId, LicenseSpec, SeatCounter, UserId, UserLicenses,
    set_group_intent,
};
use group_licensing::rules::{self, Country, RuleTable};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the thread-local may be gone while a thread shuts down.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// How many allocations `f` makes on this thread.
fn allocations<R>(f: impl FnOnce() -> R) -> (usize, R) {
    COUNT.with(|c| c.set(0));
    COUNTING.with(|on| on.set(true));
    let result = f();
    COUNTING.with(|on| on.set(false));
    (COUNT.with(Cell::get), result)
}

const RULES: &str = include_str!("fixtures/scenario-rules/scenario.rules");

struct Fixture {
    table: RuleTable,
    set: Vec<LicenseSpec>,
    seats: SeatCounter,
}

const GROUP: GroupId = GroupId(7);

fn fixture() -> Fixture {
    let table = rules::compile_texts([("t.rules", RULES)])
        .expect("rules compile")
        .table;
    let product = |n| table.product_by_name(n).expect("product");
    let plan = |n| table.plan_by_name(n).expect("plan");
    // A group of three products: E3 with Teams disabled, EMS, and the add-on with its
    // prerequisite in the group.
    let set = vec![
        LicenseSpec::new(product("ENTERPRISEPACK"), [plan("TEAMS1")]),
        LicenseSpec::full(product("EMS")),
        LicenseSpec::full(product("WORKPLACE_ANALYTICS")),
    ];
    let mut seats = SeatCounter::new(table.product_count());
    for p in table.product_ids() {
        seats.set_prepaid(p, u32::MAX);
    }
    Fixture { table, set, seats }
}

fn pending_user(f: &Fixture, id: i64) -> UserLicenses {
    let mut user = UserLicenses::new(UserId(id), Some(Country::parse("US").expect("US")));
    set_group_intent(&mut user, GROUP, &f.set);
    user
}

#[test]
fn p2_applying_three_pending_assignments_does_not_allocate() {
    let mut f = fixture();
    let engine = Engine::new(&f.table, Country::parse("US").expect("US"));
    // Warm up once (nothing lazy should exist, but a first call must not hide one).
    let mut warm = pending_user(&f, 1);
    engine.process_group(&mut warm, GROUP, &mut f.seats);

    let mut user = pending_user(&f, 2);
    let (count, out) = allocations(|| engine.process_group(&mut user, GROUP, &mut f.seats));
    assert_eq!(count, 0, "allocations on the error-free P2 path");
    assert!(out.applied && out.changed && out.error.is_none());
    assert_eq!(out.seats_taken, 3);
    assert!(
        user.assignments
            .iter()
            .all(|a| a.state == AssignmentState::Active)
    );
}

#[test]
fn p4_revalidating_unchanged_active_assignments_does_not_allocate() {
    let mut f = fixture();
    let engine = Engine::new(&f.table, Country::parse("US").expect("US"));
    let mut user = pending_user(&f, 1);
    engine.process_group(&mut user, GROUP, &mut f.seats);
    let snapshot = user.clone();
    let (count, out) = allocations(|| engine.process_group(&mut user, GROUP, &mut f.seats));
    assert_eq!(count, 0, "allocations on the error-free P4 path");
    assert!(!out.changed && !out.applied && out.error.is_none());
    assert_eq!(user, snapshot);
}

#[test]
fn p1_a_batch_of_pending_members_does_not_allocate() {
    let mut f = fixture();
    let engine = Engine::new(&f.table, Country::parse("US").expect("US"));
    let mut users: Vec<UserLicenses> = (0..500).map(|i| pending_user(&f, i)).collect();
    let mut changed = 0;
    let (count, summary) = allocations(|| {
        engine.process_batch(GROUP, users.iter_mut(), &mut f.seats, |_, out| {
            changed += usize::from(out.changed)
        })
    });
    assert_eq!(count, 0, "allocations while processing a batch");
    assert_eq!((summary.users, summary.users_with_errors), (500, 0));
    assert_eq!(changed, 500);
    // And again: re-validating the batch allocates nothing either.
    let (count, summary) =
        allocations(|| engine.process_batch(GROUP, users.iter_mut(), &mut f.seats, |_, _| {}));
    assert_eq!((count, summary.changed_users), (0, 0));
}

#[test]
fn the_counter_counts() {
    let (count, v) = allocations(|| vec![1u8; 16]);
    assert_eq!((count, v.len()), (1, 16));
}
