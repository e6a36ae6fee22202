//! `group-licensing generate`: the tenant it writes has the promised shape, its kept counts agree
//! with its rows, and an existing tenant is never overwritten.

use std::path::Path;
use std::process::Command;

use group_licensing::store::read;

const BIN: &str = env!("CARGO_BIN_EXE_group-licensing");

fn generate(db: &Path, users: &str) -> std::process::Output {
    Command::new(BIN)
        .args(["generate", "--db"])
        .arg(db)
        .args(["--users", users, "--rules"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"))
        .output()
        .expect("run generate")
}

#[test]
fn generate_writes_the_promised_tenant_and_refuses_to_overwrite_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("t.db");
    let out = generate(&db, "3000");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("3000 users, 4 groups"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The file alone holds the tenant (checkpointed): read it without its log.
    assert!(
        std::fs::metadata(dir.path().join("t.db-wal")).map_or(true, |m| m.len() == 0),
        "the write-ahead log still holds data"
    );
    let conn = rusqlite::Connection::open(&db).expect("open");
    let one = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect(sql) };
    assert_eq!(one("SELECT count(*) FROM users"), 3000);
    assert_eq!(
        one("SELECT count(*) FROM users WHERE usage_location IS NULL"),
        30
    );
    assert_eq!(
        one("SELECT count(*) FROM users WHERE usage_location = 'CN'"),
        30
    );
    assert_eq!(
        one("SELECT count(DISTINCT usage_location) FROM users WHERE usage_location <> 'CN'"),
        30
    );
    // 0.1% of the addresses are another user's too.
    assert_eq!(
        one(
            "SELECT count(*) FROM (SELECT normalized FROM proxy_addresses GROUP BY normalized HAVING count(*) > 1)"
        ),
        3
    );
    // 1% hold Office 365 E1 directly, and use its seats.
    assert_eq!(
        one(
            "SELECT count(*) FROM assignment_sets s, json_each(s.products) p
              WHERE s.group_id = 0 AND json_extract(p.value, '$.sku') = 'STANDARDPACK'
                AND json_extract(p.value, '$.state') = 'ACTIVE'"
        ),
        30
    );
    assert_eq!(
        one("SELECT consumed_units FROM products WHERE sku = 'STANDARDPACK'"),
        30
    );
    let sizes: Vec<(String, i64)> = conn
        .prepare("SELECT display_name, member_count FROM groups ORDER BY id")
        .expect("groups")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("groups")
        .collect::<Result<_, _>>()
        .expect("groups");
    assert_eq!(
        sizes,
        [
            ("All users".to_string(), 3000),
            ("Group of 10".to_string(), 10),
            ("Group of 100".to_string(), 100),
            ("Group of 1000".to_string(), 1000),
        ]
    );
    assert_eq!(read::audit(&conn).expect("audit"), Vec::<String>::new());
    drop(conn);

    let again = generate(&db, "10");
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already has users or groups"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let conn = rusqlite::Connection::open(&db).expect("open");
    let users: i64 = conn
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .expect("count");
    assert_eq!(users, 3000, "nothing was overwritten");
}
