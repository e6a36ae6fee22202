//! The counts the writer keeps (seats consumed, members, users in error per group and code) stay
//! equal to a recount from the rows through errors, fixes, removals and deletions.

#[path = "support/tenant.rs"]
mod tenant;

use group_licensing::store::{self, ops, read};

#[test]
fn kept_counts_equal_a_recount_through_changes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let t = tenant::conflicted(&dir.path().join("t.db"), 60, true, 5);
    let audit = |when: &str| {
        let problems = t.store.write_blocking(|tx| read::audit(tx)).expect("audit");
        assert!(problems.is_empty(), "{when}:\n{}", problems.join("\n"));
    };
    audit("after the first processing");
    let (table, standard, enterprise, users) =
        (t.table.clone(), t.standard, t.enterprise, t.users.clone());
    t.store
        .write_blocking(move |tx| {
            let now = store::now();
            // Leaving "Standard" fixes the conflict for some; leaving "Enterprise" withdraws.
            ops::remove_group_members(tx, standard, &users[0..10], &now)?;
            ops::remove_group_members(tx, enterprise, &users[10..20], &now)?;
            ops::delete_user(tx, &table, users[20])?;
            ops::delete_user(tx, &table, users[30])?;
            ops::reprocess_group(tx, enterprise, &now)?;
            Ok(())
        })
        .expect("changes");
    tenant::drain(&t.store, &t.table);
    audit("after removals, deletions and a reprocess");
    let (table, enterprise) = (t.table.clone(), t.enterprise);
    t.store
        .write_blocking(move |tx| {
            let now = store::now();
            ops::assign_group_license(
                tx,
                &table,
                enterprise,
                &[],
                &["ENTERPRISEPACK".into()],
                &now,
            )
        })
        .expect("remove the group's license");
    tenant::drain(&t.store, &t.table);
    audit("after the group's license was removed");
    let errors: i64 = t
        .store
        .write_blocking(|tx| {
            Ok(tx.query_row(
                "SELECT coalesce(sum(users), 0) FROM group_errors",
                [],
                |r| r.get(0),
            )?)
        })
        .expect("count");
    assert!(
        errors > 0,
        "C1 errors from the shared addresses remain in \"Standard\""
    );
}

/// The audit is not a test that cannot fail: every kind of kept count it checks, once wrong,
/// is reported.
#[test]
fn the_audit_reports_each_kind_of_wrong_count() {
    let dir = tempfile::tempdir().expect("temp dir");
    let t = tenant::conflicted(&dir.path().join("t.db"), 10, true, 0);
    let problems = t
        .store
        .write_blocking(|tx| {
            tx.execute_batch(
                "UPDATE products SET consumed_units = consumed_units + 1 WHERE sku = 'STANDARDPACK';
                 UPDATE groups SET member_count = 3 WHERE display_name = 'Standard';
                 UPDATE group_errors SET users = users + 2 WHERE error_code = '';
                 DELETE FROM assignment_errors WHERE user_id = (SELECT min(user_id) FROM assignment_errors);",
            )?;
            // User 1 (bit 1 of chunk 0) holds EMS in the bitmaps only.
            let mut bits = vec![0u8; 512];
            bits[0] = 0b10;
            tx.execute(
                "INSERT INTO holders (sku, chunk, bits) VALUES ('EMS', 0, ?1)",
                [bits],
            )?;
            let problems = read::audit(tx)?;
            // Nothing of this is kept.
            Err::<(), _>(store::StoreError::BadInput(problems.join("\n")))
        })
        .expect_err("rolled back on purpose")
        .to_string();
    assert!(
        problems
            .contains("product STANDARDPACK consumedUnits: 1 kept by the writer, 0 in the rows"),
        "{problems}"
    );
    assert!(
        problems.contains("memberCount: 3 kept by the writer, 10 in the rows"),
        "{problems}"
    );
    assert!(problems.contains("users in error \"\": "), "{problems}");
    assert!(
        problems.contains("user 1 holds EMS in the holders but not in its sets"),
        "{problems}"
    );
    assert!(
        problems.contains(": true in its sets, false in assignment_errors"),
        "{problems}"
    );
}
