//! One step of processing (P1–P6), run by the processing worker inside one write transaction:
//! the oldest queued work item, or the next chunk of it. A crash between steps loses nothing:
//! the item and how far it got are stored (P8).

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::engine::{self, Engine, GroupId, LicenseSpec};
use crate::rules::RuleTable;

use super::Result;
use super::audited::license_change;
use super::events::{self, Notice, Progress};
use super::history::{Activity, Actor, Category, Event, Journal, Target};
use super::ops::{
    LoadedUser, Writer, default_usage_location, group_licenses, load_seats, load_users,
    memberships, save_seats,
};
use super::webhooks;

/// What one step did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// The group the work was for, if any.
    pub group: Option<i64>,
    /// Users processed in this step.
    pub users: u32,
    pub users_with_errors: u32,
    pub seats_taken: u32,
    pub seats_freed: u32,
    /// Whether the work item is finished (its group may still have other items queued).
    pub finished: bool,
}

struct Item {
    id: i64,
    group: Option<i64>,
    user: Option<i64>,
    after_seq: i64,
    started: bool,
    /// The correlation of a started group run's events, and its counts so far (H4).
    correlation: Option<i64>,
    licensed: i64,
    failed: i64,
}

/// Runs one step. `Ok(None)`: nothing is queued.
pub fn step(
    tx: &Transaction<'_>,
    table: &RuleTable,
    chunk: usize,
    now: &str,
) -> Result<Option<Step>> {
    let item = tx
        .query_row(
            "SELECT id, group_id, user_id, after_seq, started, correlation, licensed, failed
               FROM work ORDER BY id LIMIT 1",
            [],
            |r| {
                Ok(Item {
                    id: r.get(0)?,
                    group: r.get(1)?,
                    user: r.get(2)?,
                    after_seq: r.get(3)?,
                    started: r.get::<_, i64>(4)? != 0,
                    correlation: r.get(5)?,
                    licensed: r.get(6)?,
                    failed: r.get(7)?,
                })
            },
        )
        .optional()?;
    let Some(item) = item else {
        return Ok(None);
    };
    let engine = Engine::new(table, default_usage_location(tx)?);
    let mut seats = load_seats(tx, table)?;
    let mut writer = Writer::new(tx, table, now)?;
    let mut journal = Journal::open(tx, &Actor::system(), item.correlation, now)?;
    let mut step = Step {
        group: item.group,
        ..Step::default()
    };
    match (item.group, item.user) {
        (Some(group), None) => {
            let mut tally = Tally {
                seats: &mut seats,
                writer: &mut writer,
                journal: &mut journal,
                step: &mut step,
            };
            group_chunk(tx, &engine, &mut tally, &item, group, chunk)?
        }
        (Some(group), Some(user)) => {
            let licenses = group_licenses(tx, table, group)?;
            let mut users = load_users(tx, table, &[user])?;
            let mut tally = Tally {
                seats: &mut seats,
                writer: &mut writer,
                journal: &mut journal,
                step: &mut step,
            };
            apply_group(
                tx,
                &engine,
                &mut tally,
                group,
                &licenses,
                &mut users,
                Membership::Check,
            )?;
            finish(tx, &item, &mut step)?;
        }
        (None, Some(user)) => {
            let mut tally = Tally {
                seats: &mut seats,
                writer: &mut writer,
                journal: &mut journal,
                step: &mut step,
            };
            user_all_groups(tx, &engine, &mut tally, user)?;
            finish(tx, &item, &mut step)?;
        }
        (None, None) => finish(tx, &item, &mut step)?,
    }
    writer.finish()?;
    save_seats(tx, table, &mut seats)?;
    if let Some(group) = item.group {
        tx.execute(
            "UPDATE groups SET processed_members = min(processed_members + ?1, members_to_process) WHERE id = ?2",
            params![step.users, group],
        )?;
        announce_progress(tx, group, &journal)?;
    }
    // Last: the alerts it settles read the seats and error counts written above.
    journal.finish()?;
    Ok(Some(step))
}

/// Tells subscribers of the group's progress (N4), and the webhooks of a run that completed
/// (N3).
fn announce_progress(tx: &Transaction<'_>, group: i64, journal: &Journal<'_>) -> Result<()> {
    let Some(view) = super::read::groups(tx, &[group])?.remove(&group) else {
        return Ok(());
    };
    let progress = Progress {
        group,
        state: view.processing_state,
        processed: view.processed_members,
        to_process: view.members_to_process,
        errors: view.error_users,
    };
    if progress.state == "COMPLETE" {
        let data = serde_json::json!({
            "group": { "id": group.to_string(), "displayName": view.display_name },
            "licenseProcessingState": progress.state,
            "processedMembers": progress.processed,
            "membersToProcess": progress.to_process,
            "licenseErrorCount": progress.errors,
        });
        webhooks::enqueue(
            tx,
            webhooks::EventType::GroupProcessingComplete,
            &data.to_string(),
            journal.at(),
        )?;
    }
    events::stage(Notice::Progress(progress));
    Ok(())
}

/// What a step's parts share: the seat counter and the writer, both written once at the end of
/// the step, and the step's figures.
struct Tally<'a, 't> {
    seats: &'a mut engine::SeatCounter,
    writer: &'a mut Writer<'t>,
    journal: &'a mut Journal<'t>,
    step: &'a mut Step,
}

fn finish(tx: &Transaction<'_>, item: &Item, step: &mut Step) -> Result<()> {
    tx.execute("DELETE FROM work WHERE id = ?1", [item.id])?;
    step.finished = true;
    Ok(())
}

/// A group-wide item: a first step marks the run started and handles the former members whose
/// withdrawal is pending (so that the seats they free go to members in the same run); then the
/// members in join order, `chunk` at a time.
fn group_chunk(
    tx: &Transaction<'_>,
    engine: &Engine<'_>,
    tally: &mut Tally<'_, '_>,
    item: &Item,
    group: i64,
    chunk: usize,
) -> Result<()> {
    let table = engine.table;
    let licenses = group_licenses(tx, table, group)?;
    if !item.started {
        let name: Option<String> = tx
            .query_row(
                "SELECT display_name FROM groups WHERE id = ?1",
                [group],
                |r| r.get(0),
            )
            .optional()?;
        let start = Event::new(Activity::StartApplying, vec![Target::group(group, name)]);
        tally.journal.record(&start)?;
        tx.execute(
            "UPDATE work SET started = 1, correlation = ?2 WHERE id = ?1",
            params![item.id, tally.journal.correlation()],
        )?;
        let former = former_members(tx, group)?;
        if !former.is_empty() {
            tx.execute(
                "UPDATE groups SET members_to_process = members_to_process + ?1 WHERE id = ?2",
                params![former.len() as i64, group],
            )?;
            let mut users = load_users(tx, table, &former)?;
            let check = Membership::Check;
            apply_group(tx, engine, tally, group, &licenses, &mut users, check)?;
        }
        // The run shows as IN_PROGRESS (P9) from here on, before its first chunk of members.
        return Ok(());
    }
    let members = members_after(tx, group, item.after_seq, chunk)?;
    let Some(&(_, last_seq)) = members.last() else {
        return finish_run(tx, item, group, tally);
    };
    let ids: Vec<i64> = members.iter().map(|(u, _)| *u).collect();
    let mut users = load_users(tx, table, &ids)?;
    let known = Membership::Known;
    apply_group(tx, engine, tally, group, &licenses, &mut users, known)?;
    if members.len() < chunk {
        finish_run(tx, item, group, tally)
    } else {
        let step = &tally.step;
        tx.execute(
            "UPDATE work SET after_seq = ?1, licensed = licensed + ?3, failed = failed + ?4 WHERE id = ?2",
            params![
                last_seq,
                item.id,
                step.users - step.users_with_errors,
                step.users_with_errors
            ],
        )?;
        Ok(())
    }
}

/// The end of a group's run: its finish event with the run's counts (H4), then the item goes.
fn finish_run(
    tx: &Transaction<'_>,
    item: &Item,
    group: i64,
    tally: &mut Tally<'_, '_>,
) -> Result<()> {
    let step = &tally.step;
    let licensed = item.licensed + i64::from(step.users - step.users_with_errors);
    let failed = item.failed + i64::from(step.users_with_errors);
    let name: Option<String> = tx
        .query_row(
            "SELECT display_name FROM groups WHERE id = ?1",
            [group],
            |r| r.get(0),
        )
        .optional()?;
    let mut event = Event::new(Activity::FinishApplying, vec![Target::group(group, name)]);
    event.reason = Some(format!(
        "Users successfully assigned licenses: {licensed}, Users for whom license assignment failed: {failed}."
    ));
    tally.journal.record(&event)?;
    finish(tx, item, tally.step)
}

/// The former members of `group` whose withdrawal is pending, by id: a run handles them first
/// (P3, P6).
pub fn former_members(conn: &Connection, group: i64) -> Result<Vec<i64>> {
    Ok(conn
        .prepare_cached(
            // A former member's pending withdrawal is either queued as its own work item or was
            // blocked, and so is in error (P3): the error index finds them all.
            "SELECT DISTINCT e.user_id FROM assignment_errors e
              WHERE e.group_id = ?1
                AND NOT EXISTS (SELECT 1 FROM members m WHERE m.group_id = ?1 AND m.user_id = e.user_id)
              ORDER BY e.user_id",
        )?
        .query_map([group], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

/// The next `chunk` members of `group` after join position `after_seq`, in join order (P1),
/// with their positions.
pub fn members_after(
    conn: &Connection,
    group: i64,
    after_seq: i64,
    chunk: usize,
) -> Result<Vec<(i64, i64)>> {
    Ok(conn
        .prepare_cached(
            "SELECT user_id, seq FROM members WHERE group_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?
        .query_map(params![group, after_seq, chunk as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?)
}

/// Whether the users handed to [`apply_group`] are known members (a chunk of the member list)
/// or must be looked up.
#[derive(Clone, Copy)]
enum Membership {
    Known,
    Check,
}

/// P2–P4 for `users` (in the order given) and one group, against one seat counter (P1).
fn apply_group(
    tx: &Transaction<'_>,
    engine: &Engine<'_>,
    tally: &mut Tally<'_, '_>,
    group: i64,
    licenses: &[LicenseSpec],
    users: &mut [LoadedUser],
    membership: Membership,
) -> Result<()> {
    let g = GroupId(group);
    let mut is_member =
        tx.prepare_cached("SELECT 1 FROM members WHERE group_id = ?1 AND user_id = ?2")?;
    let mut members = Vec::with_capacity(users.len());
    for user in users.iter() {
        members.push(match membership {
            Membership::Known => true,
            Membership::Check => is_member.exists(params![group, user.licenses.id.0])?,
        });
    }
    let mut changed = Vec::new();
    let mut index = 0;
    let summary = engine.process_members(
        g,
        licenses,
        users.iter_mut().map(|u| &mut u.licenses).zip(members),
        tally.seats,
        |_, out| {
            if out.changed {
                changed.push(index);
            }
            index += 1;
        },
    );
    for i in changed {
        let changes = tally.writer.write(&users[i])?;
        if !changes.is_empty() {
            let user = &users[i];
            let name = &user.principal_name;
            tally
                .journal
                .record_change(user.licenses.id.0, name, &changes, group)?;
        }
    }
    let step = &mut *tally.step;
    step.users += summary.users;
    step.users_with_errors += summary.users_with_errors;
    step.seats_taken += summary.seats_taken;
    step.seats_freed += summary.seats_freed;
    Ok(())
}

/// P5/P6 (`reprocessUser`, a new location or proxy addresses): every group of the user, in the
/// order the user joined them, then former groups with pending withdrawals.
fn user_all_groups(
    tx: &Transaction<'_>,
    engine: &Engine<'_>,
    tally: &mut Tally<'_, '_>,
    user: i64,
) -> Result<()> {
    let table = engine.table;
    let mut users = load_users(tx, table, &[user])?;
    let Some(loaded) = users.first_mut() else {
        return Ok(());
    };
    let groups = memberships(tx, user)?;
    for group in &groups {
        let licenses = group_licenses(tx, table, *group)?;
        engine::set_group_intent(&mut loaded.licenses, GroupId(*group), &licenses);
    }
    let former: Vec<GroupId> = loaded
        .licenses
        .assignments
        .iter()
        .filter_map(|a| a.source.group())
        .filter(|g| !groups.contains(&g.0))
        .collect();
    for group in former {
        engine::withdraw_group(&mut loaded.licenses, group);
    }
    let order: Vec<GroupId> = groups.iter().map(|g| GroupId(*g)).collect();
    let out = engine.process_user(&mut loaded.licenses, &order, tally.seats);
    if out.changed {
        let changes = tally.writer.write(loaded)?;
        if !changes.is_empty() {
            let mut event = license_change(
                Activity::ChangeUserLicense,
                user,
                Some(loaded.principal_name.clone()),
                &changes,
                None,
            );
            event.category = Category::LicenseProcessing;
            tally.journal.record(&event)?;
        }
    }
    let step = &mut *tally.step;
    step.users = 1;
    step.users_with_errors = u32::from(out.error.is_some());
    step.seats_taken = out.seats_taken;
    step.seats_freed = out.seats_freed;
    Ok(())
}
