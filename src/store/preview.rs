//! W: what-if previews, read from one consistent snapshot of the database. Each preview asks
//! the mutation's own validation (`ops::group_license_change`, `ops::members_to_add`, …) so that
//! it refuses what the mutation refuses with the same error (W3), then loads the users that the
//! resulting processing would touch, in the order it would touch them, and hands them to the
//! engine's preview steps chunk by chunk (W1). Nothing is written (W2): the connection is a
//! reader's.

use rusqlite::Connection;

use crate::engine::preview::Preview;
use crate::engine::{Engine, GroupId, LicenseSpec, SeatCounter, Source};
use crate::rules::RuleTable;

use super::ops::{self, LicenseInput, LoadedUser, default_usage_location, load_seats, load_users};
use super::process::{former_members, members_after};
use super::{Result, StoreError};

/// Users loaded and previewed at a time: as processing's steps, so a big group never sits in
/// memory whole.
pub const CHUNK: usize = 5_000;

/// A change to preview, with the mutation's arguments.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Change {
    AssignGroupLicense {
        group: i64,
        add: Vec<LicenseInput>,
        remove: Vec<String>,
    },
    AddGroupMembers {
        group: i64,
        users: Vec<i64>,
    },
    RemoveGroupMembers {
        group: i64,
        users: Vec<i64>,
    },
    AssignLicense {
        user: i64,
        add: Vec<LicenseInput>,
        remove: Vec<String>,
    },
    ReprocessGroup {
        group: i64,
    },
}

/// A finished preview and what it was computed on.
pub struct Previewed {
    pub preview: Preview,
    /// Work items already queued when the preview was read: processing them first may change
    /// what it shows. 0 when processing is idle, and then the preview is exact (W4).
    pub queued_before: i64,
}

/// Computes the preview of `change` on `conn`, which the caller holds in one read transaction.
pub fn preview(conn: &Connection, table: &RuleTable, change: &Change) -> Result<Previewed> {
    let engine = Engine::new(table, default_usage_location(conn)?);
    let mut seats = load_seats(conn, table)?;
    let queued_before: i64 = conn.query_row("SELECT count(*) FROM work", [], |r| r.get(0))?;
    let preview = match change {
        Change::AssignGroupLicense { group, add, remove } => {
            let (_, licenses) = ops::group_license_change(conn, table, *group, add, remove)?;
            group_run(conn, &engine, *group, &licenses, &mut seats)?
        }
        Change::ReprocessGroup { group } => {
            ops::require_group(conn, *group)?;
            let licenses = ops::group_licenses(conn, table, *group)?;
            group_run(conn, &engine, *group, &licenses, &mut seats)?
        }
        Change::AddGroupMembers { group, users } => {
            let joining = ops::members_to_add(conn, *group, users)?;
            member_items(conn, &engine, *group, &joining, true, &mut seats)?
        }
        Change::RemoveGroupMembers { group, users } => {
            let leaving = ops::members_to_remove(conn, *group, users)?;
            member_items(conn, &engine, *group, &leaving, false, &mut seats)?
        }
        Change::AssignLicense { user, add, remove } => {
            let change = ops::direct_change(conn, table, *user, add, remove)?;
            let mut preview = Preview::new(Source::Direct, &seats);
            let mut loaded = load_users(conn, table, &[*user])?;
            let Some(target) = loaded.first_mut() else {
                return Err(StoreError::NotFound(format!("no user with id {user}")));
            };
            engine.preview_direct(&mut preview, &mut target.licenses, &change, &mut seats)?;
            preview.finish(&seats);
            preview
        }
    };
    Ok(Previewed {
        preview,
        queued_before,
    })
}

/// A group-wide run, as processing makes it: former members with a pending withdrawal first,
/// then the members in join order (P1, P3, P6).
fn group_run(
    conn: &Connection,
    engine: &Engine<'_>,
    group: i64,
    licenses: &[LicenseSpec],
    seats: &mut SeatCounter,
) -> Result<Preview> {
    let g = GroupId(group);
    let mut preview = Preview::new(Source::Group(g), seats);
    let former = former_members(conn, group)?;
    let mut former_chunks = former.chunks(CHUNK);
    let mut after = 0;
    let mut members_done = false;
    pipeline(engine, g, licenses, &mut preview, seats, || {
        if let Some(ids) = former_chunks.next() {
            return Ok(Some((load_users(conn, engine.table, ids)?, false)));
        }
        if members_done {
            return Ok(None);
        }
        let members = members_after(conn, group, after, CHUNK)?;
        let Some(&(_, last)) = members.last() else {
            return Ok(None);
        };
        after = last;
        members_done = members.len() < CHUNK;
        let ids: Vec<i64> = members.iter().map(|(u, _)| *u).collect();
        Ok(Some((load_users(conn, engine.table, &ids)?, true)))
    })?;
    preview.finish(seats);
    Ok(preview)
}

/// Work items of one user each (`addGroupMembers`, `removeGroupMembers`): the `listed` users
/// that the mutation queues, run in the order they are queued against one seat counter.
fn member_items(
    conn: &Connection,
    engine: &Engine<'_>,
    group: i64,
    listed: &[(i64, bool)],
    member: bool,
    seats: &mut SeatCounter,
) -> Result<Preview> {
    let licenses = ops::group_licenses(conn, engine.table, group)?;
    let users: Vec<i64> = listed
        .iter()
        .filter(|(_, queued)| *queued)
        .map(|(u, _)| *u)
        .collect();
    let g = GroupId(group);
    let mut preview = Preview::new(Source::Group(g), seats);
    let mut chunks = users.chunks(CHUNK);
    pipeline(engine, g, &licenses, &mut preview, seats, || {
        chunks
            .next()
            .map(|ids| Ok((load_users(conn, engine.table, ids)?, member)))
            .transpose()
    })?;
    preview.finish(seats);
    Ok(preview)
}

/// Runs the engine's preview steps on the chunks `next` loads, in order, on a thread of its
/// own: the next chunk is read from the snapshot while the engine works on this one (reading is
/// most of a preview's time, and the two take about the same). `next` gives each chunk with
/// whether its users are members.
fn pipeline(
    engine: &Engine<'_>,
    group: GroupId,
    licenses: &[LicenseSpec],
    preview: &mut Preview,
    seats: &mut SeatCounter,
    mut next: impl FnMut() -> Result<Option<(Vec<LoadedUser>, bool)>>,
) -> Result<()> {
    std::thread::scope(|scope| {
        let (send, receive) = std::sync::mpsc::sync_channel::<(Vec<LoadedUser>, bool)>(1);
        let worker = std::thread::Builder::new()
            .name("preview".into())
            .spawn_scoped(scope, move || {
                for (mut users, member) in receive {
                    let users = users.iter_mut().map(|u| (&mut u.licenses, member));
                    engine.preview_members(preview, group, licenses, users, seats);
                }
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start a preview thread: {e}")))?;
        let mut result = Ok(());
        loop {
            match next() {
                Ok(Some(chunk)) => {
                    if send.send(chunk).is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        drop(send);
        worker
            .join()
            .map_err(|_| StoreError::Corrupt("a preview thread stopped".into()))?;
        result
    })
}
