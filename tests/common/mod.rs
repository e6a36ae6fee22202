//! A miniature store around the engine, for the integration tests: users, groups with their
//! license sets and members in join order, proxy addresses, seats. It calls the engine exactly
//! as the server's store will (P5 triggers, P6 reprocessing), through the public API only.
#![allow(dead_code)]

use std::collections::BTreeMap;

use group_licensing::engine::{
    self, Assignment, AssignmentState, DirectError, DirectOutcome, DuplicateProxy, Engine,
    ErrorCode, GroupId, GroupLicenseError, LicenseChange, LicenseError, LicenseSpec, SeatCounter,
    Source, UserId, UserLicenses,
};
use group_licensing::rules::{self, Country, PlanId, PlanSet, ProductId, RuleTable};

pub const SCENARIO_RULES: &str = include_str!("../fixtures/scenario-rules/scenario.rules");

pub fn compile(text: &str) -> RuleTable {
    match rules::compile_texts([("t.rules", text)]) {
        Ok(compiled) => compiled.table,
        Err(failure) => panic!("rules do not compile: {:#?}", failure.errors),
    }
}

pub fn country(code: &str) -> Country {
    Country::parse(code).expect("country code")
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Group {
    pub name: String,
    pub licenses: Vec<LicenseSpec>,
    /// In join order.
    pub members: Vec<UserId>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct User {
    pub name: String,
    pub proxies: Vec<String>,
    /// Groups in the order the user joined them.
    pub groups: Vec<GroupId>,
    pub licenses: UserLicenses,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Tenant {
    pub table: RuleTable,
    pub default_location: Country,
    pub users: BTreeMap<UserId, User>,
    pub groups: BTreeMap<GroupId, Group>,
    pub seats: SeatCounter,
    next_id: i64,
}

impl Tenant {
    pub fn new(table: RuleTable) -> Tenant {
        let seats = SeatCounter::new(table.product_count());
        Tenant {
            table,
            default_location: country("US"),
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            seats,
            next_id: 1,
        }
    }

    pub fn scenario() -> Tenant {
        Tenant::new(compile(SCENARIO_RULES))
    }

    fn engine(&self) -> Engine<'_> {
        Engine::new(&self.table, self.default_location)
    }

    // ---- names

    pub fn product(&self, name: &str) -> ProductId {
        self.table.product_by_name(name).expect("product name")
    }

    pub fn plan(&self, name: &str) -> PlanId {
        self.table.plan_by_name(name).expect("plan name")
    }

    pub fn spec(&self, product: &str, disabled: &[&str]) -> LicenseSpec {
        LicenseSpec::new(self.product(product), disabled.iter().map(|p| self.plan(p)))
    }

    pub fn add(&self, specs: &[(&str, &[&str])]) -> LicenseChange {
        LicenseChange {
            add: specs.iter().map(|(p, d)| self.spec(p, d)).collect(),
            remove: Vec::new(),
        }
    }

    pub fn remove(&self, products: &[&str]) -> LicenseChange {
        LicenseChange {
            add: Vec::new(),
            remove: products.iter().map(|p| self.product(p)).collect(),
        }
    }

    pub fn plans(&self, names: &[&str]) -> PlanSet {
        names.iter().map(|n| self.plan(n)).collect()
    }

    pub fn group_name(&self, group: GroupId) -> String {
        self.groups
            .get(&group)
            .map_or_else(|| format!("group {}", group.0), |g| g.name.clone())
    }

    // ---- tenant data

    pub fn set_seats(&mut self, product: &str, prepaid: u32) {
        let p = self.product(product);
        self.seats.set_prepaid(p, prepaid);
    }

    pub fn create_user(&mut self, name: &str, location: Option<&str>) -> UserId {
        let id = UserId(self.next_id);
        self.next_id += 1;
        self.users.insert(
            id,
            User {
                name: name.to_string(),
                proxies: Vec::new(),
                groups: Vec::new(),
                licenses: UserLicenses::new(id, location.map(country)),
            },
        );
        id
    }

    pub fn create_group(&mut self, name: &str) -> GroupId {
        let id = GroupId(self.next_id);
        self.next_id += 1;
        self.groups.insert(
            id,
            Group {
                name: name.to_string(),
                licenses: Vec::new(),
                members: Vec::new(),
            },
        );
        id
    }

    pub fn user(&self, u: UserId) -> &UserLicenses {
        &self.users[&u].licenses
    }

    pub fn assignment(&self, u: UserId, source: Source, product: &str) -> &Assignment {
        self.user(u)
            .assignment(source, self.product(product))
            .unwrap_or_else(|| panic!("no {product} from {source:?} for {u:?}"))
    }

    pub fn state(
        &self,
        u: UserId,
        g: GroupId,
        product: &str,
    ) -> (AssignmentState, Option<ErrorCode>) {
        let a = self.assignment(u, Source::Group(g), product);
        (a.state, a.error_code())
    }

    pub fn error(&self, u: UserId, g: GroupId, product: &str) -> LicenseError {
        self.assignment(u, Source::Group(g), product)
            .error
            .clone()
            .expect("an error")
    }

    pub fn consumed(&self, product: &str) -> u32 {
        self.seats.consumed(self.product(product))
    }

    pub fn holders(&self, product: ProductId) -> u32 {
        self.users
            .values()
            .filter(|u| u.licenses.holds(product))
            .count() as u32
    }

    /// C1 as the store computes it: the first of u's addresses that another user also has,
    /// compared after an optional `smtp:` prefix, case-insensitively.
    fn refresh_duplicate(&mut self, u: UserId) {
        let norm = |a: &str| {
            let lower = a.to_ascii_lowercase();
            lower
                .strip_prefix("smtp:")
                .map(str::to_string)
                .unwrap_or(lower)
        };
        let Some(user) = self.users.get(&u) else {
            return;
        };
        let mut found = None;
        'outer: for address in &user.proxies {
            for (other, o) in &self.users {
                if *other != u && o.proxies.iter().any(|b| norm(b) == norm(address)) {
                    found = Some(DuplicateProxy {
                        address: address.clone(),
                        other_user: *other,
                    });
                    break 'outer;
                }
            }
        }
        if let Some(user) = self.users.get_mut(&u) {
            user.licenses.duplicate_proxy = found;
        }
    }

    // ---- processing (P1, P5, P6)

    fn process(&mut self, u: UserId, g: GroupId) {
        self.refresh_duplicate(u);
        let engine = Engine::new(&self.table, self.default_location);
        if let Some(user) = self.users.get_mut(&u) {
            engine.process_group(&mut user.licenses, g, &mut self.seats);
        }
    }

    /// Former members whose withdrawal is pending first (P6: the seats they free go to the
    /// members), then members in join order (P1).
    pub fn reprocess_group(&mut self, g: GroupId) {
        let members = self.groups[&g].members.clone();
        let former: Vec<UserId> = self
            .users
            .iter()
            .filter(|(u, user)| {
                !members.contains(u)
                    && user
                        .licenses
                        .assignments
                        .iter()
                        .any(|a| a.source == Source::Group(g))
            })
            .map(|(u, _)| *u)
            .collect();
        for u in former {
            self.process(u, g);
        }
        for u in &members {
            self.refresh_duplicate(*u);
        }
        let engine = Engine::new(&self.table, self.default_location);
        let mut batch: Vec<UserLicenses> = members
            .iter()
            .map(|u| self.users[u].licenses.clone())
            .collect();
        engine.process_batch(g, batch.iter_mut(), &mut self.seats, |_, _| {});
        for (u, licenses) in members.iter().zip(batch) {
            if let Some(user) = self.users.get_mut(u) {
                user.licenses = licenses;
            }
        }
    }

    pub fn reprocess_user(&mut self, u: UserId) {
        self.refresh_duplicate(u);
        let engine = Engine::new(&self.table, self.default_location);
        if let Some(user) = self.users.get_mut(&u) {
            let groups = user.groups.clone();
            engine.process_user(&mut user.licenses, &groups, &mut self.seats);
        }
    }

    // ---- mutations

    pub fn join(&mut self, g: GroupId, u: UserId) {
        let group = self.groups.get_mut(&g).expect("group");
        if group.members.contains(&u) {
            return;
        }
        group.members.push(u);
        let licenses = group.licenses.clone();
        let user = self.users.get_mut(&u).expect("user");
        user.groups.push(g);
        engine::set_group_intent(&mut user.licenses, g, &licenses);
        self.process(u, g);
    }

    pub fn leave(&mut self, g: GroupId, u: UserId) {
        let Some(group) = self.groups.get_mut(&g) else {
            return;
        };
        if !group.members.contains(&u) {
            return;
        }
        group.members.retain(|m| *m != u);
        let user = self.users.get_mut(&u).expect("user");
        user.groups.retain(|x| *x != g);
        engine::withdraw_group(&mut user.licenses, g);
        self.process(u, g);
    }

    /// `assignGroupLicense`: G3 + G1, then G2 and P5 (every member processed, join order).
    pub fn assign_group_license(
        &mut self,
        g: GroupId,
        change: &LicenseChange,
    ) -> Result<(), GroupLicenseError> {
        let current = self.groups[&g].licenses.clone();
        let set = engine::change_group_licenses(&self.table, g, &current, change)?;
        let group = self.groups.get_mut(&g).expect("group");
        group.licenses = set.clone();
        for u in group.members.clone() {
            if let Some(user) = self.users.get_mut(&u) {
                engine::set_group_intent(&mut user.licenses, g, &set);
            }
        }
        self.reprocess_group(g);
        Ok(())
    }

    pub fn assign_direct(
        &mut self,
        u: UserId,
        change: &LicenseChange,
    ) -> Result<DirectOutcome, DirectError> {
        self.refresh_duplicate(u);
        let engine = Engine::new(&self.table, self.default_location);
        let user = self.users.get_mut(&u).expect("user");
        engine.assign_direct(&mut user.licenses, change, &mut self.seats)
    }

    /// `updateUser(usageLocation)`: processes all of the user's group assignments (P5).
    pub fn set_location(&mut self, u: UserId, location: Option<&str>) {
        if let Some(user) = self.users.get_mut(&u) {
            user.licenses.usage_location = location.map(country);
        }
        self.reprocess_user(u);
    }

    /// `updateUser(proxyAddresses)`: processes that user only (P5).
    pub fn set_proxies(&mut self, u: UserId, proxies: &[&str]) {
        self.set_proxies_quietly(u, proxies);
        self.reprocess_user(u);
    }

    /// Sets proxies without processing anyone. C1's input is derived data: it is refreshed
    /// for every user (states change only when a user is processed).
    pub fn set_proxies_quietly(&mut self, u: UserId, proxies: &[&str]) {
        if let Some(user) = self.users.get_mut(&u) {
            user.proxies = proxies.iter().map(|s| s.to_string()).collect();
        }
        self.refresh_all_duplicates();
    }

    fn refresh_all_duplicates(&mut self) {
        let ids: Vec<UserId> = self.users.keys().copied().collect();
        for id in ids {
            self.refresh_duplicate(id);
        }
    }

    /// P7.
    pub fn delete_user(&mut self, u: UserId) {
        let Some(mut user) = self.users.remove(&u) else {
            return;
        };
        engine::delete_user(&mut user.licenses, &mut self.seats);
        for group in self.groups.values_mut() {
            group.members.retain(|m| *m != u);
        }
        self.refresh_all_duplicates();
    }
}
