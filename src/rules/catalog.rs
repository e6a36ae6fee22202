//! Microsoft's catalog → a `.rules` file.
//!
//! Microsoft publishes its products and service plans as a CSV, one row per product and plan
//! (`product-names-and-service-plan-identifiers.csv`), and documents the mutually exclusive plans
//! separately (here as a JSON object: label → `[{servicePlanName, servicePlanId}, …]`).
//! [`import_catalog`] turns them into the text of a rules file that declares every plan, every
//! product with its plans, and every exclusive set, and says in [`ImportReport::notes`] what it
//! had to merge, rename, normalise or drop on the way.
//!
//! The CSV is real data with real flaws, and the rules are chosen so that the same input always
//! gives byte-identical output:
//!
//! - every field has each run of Unicode whitespace (tabs, non-breaking spaces, doubled spaces)
//!   turned into one space and is trimmed; GUIDs are also lower-cased and must be 8-4-4-4-12 hex;
//! - a plan is its `Service_Plan_Id`, a product its `GUID`; when the rows of one id disagree on a
//!   name or a display name, the most frequent value wins, and of equally frequent ones the one
//!   seen first;
//! - when two plans (or two products) end up with one name, the one seen first keeps it and each
//!   other becomes `NAME_<first 8 hex digits of its id>`;
//! - plans and products are written in the order the CSV first mentions them, and each product
//!   lists its plans once, in that order.
//!
//! Nothing here prints or touches files: the caller reads the inputs and writes the text.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::Deserialize;

use super::compile::is_guid;
use super::planset::MAX_PLANS;
use serde::de::{Deserializer, MapAccess, Visitor};

use super::parser::{quote_name, quote_string};

/// The generated rules text and what the import did to the data on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportReport {
    /// The contents of a `.rules` file.
    pub text: String,
    /// One sentence each, in the order they were found: what was merged, renamed, normalised or
    /// dropped.
    pub notes: Vec<String>,
}

/// Why the inputs could not be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the catalog CSV cannot be read: {0}")]
    Csv(#[from] csv::Error),
    #[error("the catalog CSV has no `{column}` column (its header row has: {})", found.join(", "))]
    MissingColumn {
        column: &'static str,
        found: Vec<String>,
    },
    #[error("row {row} of the catalog CSV: {column} is empty")]
    EmptyField { row: u64, column: &'static str },
    #[error(
        "row {row} of the catalog CSV: {column} {value:?} is not a GUID (expected 8-4-4-4-12 hexadecimal digits, like 9aaf7827-d63c-4b61-89c3-182f06f82e5c)"
    )]
    BadGuid {
        row: u64,
        column: &'static str,
        value: String,
    },
    #[error(
        "the catalog has {count} service plans{}, more than the {MAX_PLANS} a rule table holds",
        sets_share(*from_sets)
    )]
    TooManyPlans { count: usize, from_sets: usize },
    #[error("the exclusive-sets JSON is not valid JSON: {0}")]
    JsonMalformed(#[source] serde_json::Error),
    #[error(
        "the exclusive-sets JSON does not have the expected shape (an object mapping each label to a list of {{\"servicePlanName\", \"servicePlanId\"}} objects): {0}"
    )]
    JsonShape(String),
}

/// How many of the plans the exclusive sets alone brought in, when any did.
fn sets_share(from_sets: usize) -> String {
    if from_sets == 0 {
        String::new()
    } else {
        format!(" ({from_sets} of them named only by the exclusive sets)")
    }
}

const PRODUCT_DISPLAY_NAME: &str = "Product_Display_Name";
const STRING_ID: &str = "String_Id";
const GUID: &str = "GUID";
const SERVICE_PLAN_NAME: &str = "Service_Plan_Name";
const SERVICE_PLAN_ID: &str = "Service_Plan_Id";
const FRIENDLY_NAME: &str = "Service_Plans_Included_Friendly_Names";

/// The CSV's columns, in the order notes about a row name them.
const COLUMNS: [&str; 6] = [
    PRODUCT_DISPLAY_NAME,
    STRING_ID,
    GUID,
    SERVICE_PLAN_NAME,
    SERVICE_PLAN_ID,
    FRIENDLY_NAME,
];

/// Reads Microsoft's product/service-plan CSV and, when given, the exclusive-sets JSON, and
/// returns the text of a rules file declaring them (see the module documentation for the rules).
pub fn import_catalog(
    csv: &[u8],
    exclusive_json: Option<&[u8]>,
) -> Result<ImportReport, ImportError> {
    let mut notes = Vec::new();
    let rows = read_rows(csv, &mut notes)?;
    let mut catalog = Catalog::build(&rows, &mut notes);
    let sets = match exclusive_json {
        Some(json) => Some(catalog.exclusive_sets(parse_exclusive(json)?, &mut notes)),
        None => None,
    };
    // Refused here rather than written out as rules that the server would refuse to load.
    if catalog.plans.len() > MAX_PLANS {
        return Err(ImportError::TooManyPlans {
            count: catalog.plans.len(),
            from_sets: catalog.extra_plans,
        });
    }
    let text = catalog.render(sets.as_deref());
    Ok(ImportReport { text, notes })
}

/// One CSV row, every field normalised.
struct Row {
    /// In the order of [`COLUMNS`].
    fields: [String; 6],
}

impl Row {
    fn product_display_name(&self) -> &str {
        &self.fields[0]
    }
    fn string_id(&self) -> &str {
        &self.fields[1]
    }
    fn guid(&self) -> &str {
        &self.fields[2]
    }
    fn plan_name(&self) -> &str {
        &self.fields[3]
    }
    fn plan_id(&self) -> &str {
        &self.fields[4]
    }
    fn friendly_name(&self) -> &str {
        &self.fields[5]
    }
}

/// Every run of Unicode whitespace becomes one space; leading and trailing whitespace goes.
fn normalise(text: &str) -> String {
    text.split(char::is_whitespace)
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A normalised GUID: lower case, checked.
fn normalise_guid(text: &str) -> Option<String> {
    let guid = normalise(text).to_ascii_lowercase();
    is_guid(&guid).then_some(guid)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn rows_word(n: usize) -> String {
    plural(n, "row", "rows")
}

/// The whitespace a raw value lost, told once per distinct raw value of a column.
struct NormalisationNote {
    column: &'static str,
    raw: String,
    normalised: String,
    first_line: u64,
    count: usize,
}

fn read_rows(csv: &[u8], notes: &mut Vec<String>) -> Result<Vec<Row>, ImportError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(csv);
    let headers: Vec<String> = reader
        .headers()?
        .iter()
        .map(|h| normalise(h.trim_start_matches('\u{feff}')))
        .collect();
    let mut index = [0usize; 6];
    for (slot, column) in index.iter_mut().zip(COLUMNS) {
        *slot = headers
            .iter()
            .position(|h| h == column)
            .or_else(|| headers.iter().position(|h| h.eq_ignore_ascii_case(column)))
            .ok_or_else(|| ImportError::MissingColumn {
                column,
                found: headers.iter().map(|h| format!("`{h}`")).collect(),
            })?;
    }

    let mut rows = Vec::new();
    let mut normalisations: Vec<NormalisationNote> = Vec::new();
    let mut seen: HashMap<(&'static str, String), usize> = HashMap::new();
    let mut lines = LineCounter::new(csv);
    for (n, record) in reader.records().enumerate() {
        let record = record?;
        // Row numbers as a person counts them in a text editor: the header is line 1.
        let line = record
            .position()
            .map_or(n as u64 + 2, |p| lines.line_at(p.byte()));
        let mut fields: [String; 6] = Default::default();
        for ((field, column), at) in fields.iter_mut().zip(COLUMNS).zip(index) {
            let raw = record.get(at).unwrap_or("");
            let mut value = normalise(raw);
            let is_id = column == GUID || column == SERVICE_PLAN_ID;
            if is_id {
                value.make_ascii_lowercase();
            }
            let required = matches!(
                column,
                STRING_ID | GUID | SERVICE_PLAN_NAME | SERVICE_PLAN_ID
            );
            if required && value.is_empty() {
                return Err(ImportError::EmptyField { row: line, column });
            }
            if is_id && !is_guid(&value) {
                return Err(ImportError::BadGuid {
                    row: line,
                    column,
                    value: raw.to_string(),
                });
            }
            if value != raw {
                match seen.get(&(column, raw.to_string())) {
                    Some(&i) => normalisations[i].count += 1,
                    None => {
                        seen.insert((column, raw.to_string()), normalisations.len());
                        normalisations.push(NormalisationNote {
                            column,
                            raw: raw.to_string(),
                            normalised: value.clone(),
                            first_line: line,
                            count: 1,
                        });
                    }
                }
            }
            *field = value;
        }
        rows.push(Row { fields });
    }
    for n in normalisations {
        notes.push(format!(
            "{} {:?} normalised to {:?} ({}, first at row {})",
            n.column,
            n.raw,
            n.normalised,
            rows_word(n.count),
            n.first_line
        ));
    }
    Ok(rows)
}

/// Line numbers of byte offsets, counted as an editor does: after `\n`, `\r\n` or a lone `\r`.
///
/// The `csv` crate's own `Position::line` counts only `\n` and stops one short after a `\r\n`
/// (Microsoft's CSV ends its lines so), and a record's `Position::byte` is where the reader
/// started on it: at the line break before it, or at the blank lines it skipped.
struct LineCounter<'a> {
    text: &'a [u8],
    /// Counted up to here.
    at: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a [u8]) -> Self {
        LineCounter {
            text,
            at: 0,
            line: 1,
        }
    }

    /// The line of the first character at or after `byte` that is not a line break. Offsets must
    /// come in increasing order (records do), so that the whole file is counted once.
    fn line_at(&mut self, byte: u64) -> u64 {
        let mut start = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .clamp(self.at, self.text.len());
        while self
            .text
            .get(start)
            .is_some_and(|b| matches!(b, b'\r' | b'\n'))
        {
            start += 1;
        }
        let span = &self.text[self.at..start];
        let breaks = span
            .iter()
            .enumerate()
            .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && span.get(i + 1) != Some(&b'\n')))
            .count();
        self.line += breaks as u64;
        self.at = start;
        self.line
    }
}

/// Values seen for one field of one plan or product, in order of first appearance.
#[derive(Default)]
struct Tally {
    values: Vec<(String, usize)>,
}

impl Tally {
    fn add(&mut self, value: &str) {
        if value.is_empty() {
            return;
        }
        match self.values.iter_mut().find(|(v, _)| v == value) {
            Some((_, count)) => *count += 1,
            None => self.values.push((value.to_string(), 1)),
        }
    }

    /// The index of the most frequent value; of equally frequent ones, the first seen.
    fn winner(&self) -> Option<usize> {
        let mut best: Option<(usize, usize)> = None;
        for (i, (_, count)) in self.values.iter().enumerate() {
            if best.is_none_or(|(_, c)| *count > c) {
                best = Some((i, *count));
            }
        }
        best.map(|(i, _)| i)
    }

    /// The winning value, and the others with their row counts.
    fn resolve(&self) -> Option<(String, Vec<(String, usize)>)> {
        let w = self.winner()?;
        let others = self
            .values
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != w)
            .map(|(_, v)| v.clone())
            .collect();
        Some((self.values[w].0.clone(), others))
    }
}

struct Plan {
    id: String,
    name: String,
    display_name: String,
}

struct Product {
    guid: String,
    name: String,
    display_name: String,
    /// Indices into [`Catalog::plans`], in first-appearance order.
    plans: Vec<usize>,
}

/// One exclusive set, resolved to plans.
struct ExclusiveSet {
    label: String,
    plans: Vec<usize>,
}

struct Catalog {
    plans: Vec<Plan>,
    /// Plans named by the exclusive sets only; indices continue after the CSV's plans.
    extra_plans: usize,
    products: Vec<Product>,
    plan_by_id: HashMap<String, usize>,
    /// Every plan name in use, for renaming without collisions.
    plan_names: HashSet<String>,
}

/// Gathers the rows of one id.
struct Accumulated {
    id: String,
    names: Tally,
    display_names: Tally,
    /// Products only: plan index → how many rows list it, in first-appearance order.
    plans: Vec<(usize, usize)>,
}

impl Accumulated {
    fn new(id: &str) -> Self {
        Accumulated {
            id: id.to_string(),
            names: Tally::default(),
            display_names: Tally::default(),
            plans: Vec::new(),
        }
    }
}

/// Chooses a name and a display name for one id, with notes on what was merged.
fn choose_names(acc: &Accumulated, kind: &str, notes: &mut Vec<String>) -> (String, String) {
    let Some((name, others)) = acc.names.resolve() else {
        // Unreachable in practice: the name column is required, so every id has one.
        return (acc.id.clone(), acc.id.clone());
    };
    for (other, count) in others {
        notes.push(format!(
            "{kind} id {}: kept name `{name}`, merged `{other}` ({})",
            acc.id,
            rows_word(count)
        ));
    }
    let display_name = match acc.display_names.resolve() {
        Some((display_name, others)) => {
            for (other, count) in others {
                notes.push(format!(
                    "{kind} id {} (`{name}`): kept display name {display_name:?}, merged {other:?} ({})",
                    acc.id,
                    rows_word(count)
                ));
            }
            display_name
        }
        None => {
            notes.push(format!(
                "{kind} id {} (`{name}`) has no display name in the catalog: used its name",
                acc.id
            ));
            name.clone()
        }
    };
    (name, display_name)
}

/// Makes names unique: the first holder of a name keeps it, each later one gets
/// `NAME_<8 hex of its id>`. `items` are (name, id) in first-appearance order; `taken` starts as
/// the names already in use elsewhere and ends holding every name given out.
fn make_unique(
    items: &mut [(&mut String, &str)],
    taken: &mut HashSet<String>,
    kind: &str,
    notes: &mut Vec<String>,
) {
    // Every name wanted by someone is reserved, so that a suffixed name never takes a real one.
    let wanted: HashSet<String> = items.iter().map(|(name, _)| (**name).clone()).collect();
    let mut holder: HashMap<String, String> = HashMap::new();
    for (name, id) in items.iter_mut() {
        if let Some(first) = holder.get(name.as_str()) {
            let renamed = unique_name(name, id, |n| {
                wanted.contains(n) || taken.contains(n) || holder.contains_key(n)
            });
            notes.push(format!(
                "{kind} id {id}: the name `{name}` is already used by {kind} id {first}, renamed to `{renamed}`"
            ));
            **name = renamed;
        }
        holder.insert((**name).clone(), id.to_string());
    }
    taken.extend(holder.into_keys());
}

/// `NAME_<first 8 hex of id>`, or with a counter after it in the unlikely case that is taken too.
fn unique_name(name: &str, id: &str, is_taken: impl Fn(&str) -> bool) -> String {
    let hex: String = id.chars().filter(char::is_ascii_hexdigit).take(8).collect();
    let base = format!("{name}_{hex}");
    let mut candidate = base.clone();
    let mut n = 2;
    while is_taken(&candidate) {
        candidate = format!("{base}_{n}");
        n += 1;
    }
    candidate
}

impl Catalog {
    fn build(rows: &[Row], notes: &mut Vec<String>) -> Catalog {
        let mut plan_accs: Vec<Accumulated> = Vec::new();
        let mut plan_by_id: HashMap<String, usize> = HashMap::new();
        let mut product_accs: Vec<Accumulated> = Vec::new();
        let mut product_by_id: HashMap<String, usize> = HashMap::new();
        for row in rows {
            let plan = *plan_by_id
                .entry(row.plan_id().to_string())
                .or_insert_with(|| {
                    plan_accs.push(Accumulated::new(row.plan_id()));
                    plan_accs.len() - 1
                });
            plan_accs[plan].names.add(row.plan_name());
            plan_accs[plan].display_names.add(row.friendly_name());

            let product = *product_by_id
                .entry(row.guid().to_string())
                .or_insert_with(|| {
                    product_accs.push(Accumulated::new(row.guid()));
                    product_accs.len() - 1
                });
            let acc = &mut product_accs[product];
            acc.names.add(row.string_id());
            acc.display_names.add(row.product_display_name());
            match acc.plans.iter_mut().find(|(p, _)| *p == plan) {
                Some((_, count)) => *count += 1,
                None => acc.plans.push((plan, 1)),
            }
        }

        let mut plans: Vec<Plan> = plan_accs
            .iter()
            .map(|acc| {
                let (name, display_name) = choose_names(acc, "plan", notes);
                Plan {
                    id: acc.id.clone(),
                    name,
                    display_name,
                }
            })
            .collect();
        let mut plan_names = HashSet::new();
        {
            let mut items: Vec<(&mut String, &str)> = plans
                .iter_mut()
                .map(|p| (&mut p.name, p.id.as_str()))
                .collect();
            make_unique(&mut items, &mut plan_names, "plan", notes);
        }

        let mut products: Vec<Product> = Vec::with_capacity(product_accs.len());
        for acc in &product_accs {
            let (name, display_name) = choose_names(acc, "product", notes);
            for &(plan, count) in &acc.plans {
                if count > 1 {
                    notes.push(format!(
                        "product id {} (`{name}`): plan `{}` is listed on {}, kept once",
                        acc.id,
                        plans[plan].name,
                        rows_word(count)
                    ));
                }
            }
            products.push(Product {
                guid: acc.id.clone(),
                name,
                display_name,
                plans: acc.plans.iter().map(|(p, _)| *p).collect(),
            });
        }
        {
            let mut items: Vec<(&mut String, &str)> = products
                .iter_mut()
                .map(|p| (&mut p.name, p.guid.as_str()))
                .collect();
            make_unique(&mut items, &mut HashSet::new(), "product", notes);
        }

        Catalog {
            plans,
            extra_plans: 0,
            products,
            plan_by_id,
            plan_names,
        }
    }

    /// Resolves the JSON's sets to plans, declaring the plans the CSV lacks and dropping the sets
    /// that could not be used.
    fn exclusive_sets(
        &mut self,
        sets: Vec<(String, Vec<JsonPlan>)>,
        notes: &mut Vec<String>,
    ) -> Vec<ExclusiveSet> {
        let mut kept = Vec::new();
        for (label, entries) in sets {
            // The distinct plans, each as a catalog plan or a plan to declare (id, name).
            enum Member {
                Known(usize),
                Missing(String, String),
            }
            let mut members: Vec<Member> = Vec::new();
            let mut ids: Vec<String> = Vec::new();
            for entry in entries {
                if ids.contains(&entry.id) {
                    notes.push(format!(
                        "exclusive set {label:?}: plan id {} is listed twice, kept once",
                        entry.id
                    ));
                    continue;
                }
                ids.push(entry.id.clone());
                match self.plan_by_id.get(&entry.id) {
                    Some(&plan) => {
                        let catalog_name = &self.plans[plan].name;
                        if !entry.name.is_empty() && entry.name != *catalog_name {
                            notes.push(format!(
                                "exclusive set {label:?}: plan id {} is `{}` in the JSON and `{catalog_name}` in the catalog, used `{catalog_name}`",
                                entry.id, entry.name
                            ));
                        }
                        members.push(Member::Known(plan));
                    }
                    None => members.push(Member::Missing(entry.id, entry.name)),
                }
            }
            if members.len() < 2 {
                notes.push(format!(
                    "exclusive set {label:?} dropped: it names fewer than two distinct plans"
                ));
                continue;
            }
            // A product holding two plans of the set could never be assigned: the rules compiler
            // refuses that, so the set is dropped rather than the product.
            let known: Vec<usize> = members
                .iter()
                .filter_map(|m| match m {
                    Member::Known(p) => Some(*p),
                    Member::Missing(..) => None,
                })
                .collect();
            let clash = self.products.iter().find_map(|product| {
                let mut both = product.plans.iter().filter(|p| known.contains(p));
                match (both.next(), both.next()) {
                    (Some(a), Some(b)) => Some((product, *a, *b)),
                    _ => None,
                }
            });
            if let Some((product, a, b)) = clash {
                notes.push(format!(
                    "exclusive set {label:?} dropped: product `{}` holds both `{}` and `{}`, so the set would make it impossible to assign",
                    product.name, self.plans[a].name, self.plans[b].name
                ));
                continue;
            }
            let mut plans = Vec::with_capacity(members.len());
            for member in members {
                match member {
                    Member::Known(plan) => plans.push(plan),
                    Member::Missing(id, name) => {
                        plans.push(self.declare_missing(&label, id, name, notes));
                    }
                }
            }
            kept.push(ExclusiveSet { label, plans });
        }
        // A set whose plans another set holds adds no rule and would draw a warning from the
        // compiler in a file that must not be edited by hand.
        let members: Vec<Vec<usize>> = kept
            .iter()
            .map(|set| {
                let mut plans = set.plans.clone();
                plans.sort_unstable();
                plans.dedup();
                plans
            })
            .collect();
        let implied = super::compile::implied_sets(&members);
        let labels: Vec<String> = kept.iter().map(|set| set.label.clone()).collect();
        kept.into_iter()
            .zip(implied)
            .filter_map(|(set, by)| match by {
                None => Some(set),
                Some(by) => {
                    notes.push(format!(
                        "exclusive set {:?} dropped: exclusive set {:?} already makes all its plans mutually exclusive",
                        set.label, labels[by]
                    ));
                    None
                }
            })
            .collect()
    }

    /// Declares a plan that the exclusive sets name but the CSV does not list.
    fn declare_missing(
        &mut self,
        label: &str,
        id: String,
        name: String,
        notes: &mut Vec<String>,
    ) -> usize {
        if let Some(&plan) = self.plan_by_id.get(&id) {
            // Declared already, for an earlier set.
            return plan;
        }
        let mut final_name = name.clone();
        if self.plan_names.contains(&name) {
            final_name = unique_name(&name, &id, |n| self.plan_names.contains(n));
            notes.push(format!(
                "plan id {id}: the name `{name}` (from exclusive set {label:?}) is already used by another plan, renamed to `{final_name}`"
            ));
        }
        notes.push(format!(
            "exclusive set {label:?}: plan `{final_name}` (id {id}) is not in the catalog CSV, declared it with no product"
        ));
        self.plan_names.insert(final_name.clone());
        self.plan_by_id.insert(id.clone(), self.plans.len());
        self.plans.push(Plan {
            id,
            display_name: final_name.clone(),
            name: final_name,
        });
        self.extra_plans += 1;
        self.plans.len() - 1
    }

    fn render(&self, sets: Option<&[ExclusiveSet]>) -> String {
        let csv_plans = self.plans.len() - self.extra_plans;
        let mut out = String::new();
        out.push_str(
            "# Microsoft's catalog of products and service plans, in the rules language.\n",
        );
        out.push_str(
            "# Generated by `group-licensing import-catalog` from Microsoft's product and service-plan CSV",
        );
        if sets.is_some() {
            out.push_str("\n# and its mutually exclusive service plans");
        }
        out.push_str(".\n");
        out.push_str(
            "# Do not edit by hand: re-run the import instead, and keep your own rules in other files.\n",
        );
        out.push_str(&format!(
            "# {}, {}",
            plural(self.products.len(), "product", "products"),
            plural(self.plans.len(), "plan", "plans")
        ));
        if self.extra_plans > 0 {
            out.push_str(&format!(
                " ({} of them named only by the exclusive sets)",
                self.extra_plans
            ));
        }
        if let Some(sets) = sets {
            out.push_str(&format!(
                ", {}",
                plural(sets.len(), "exclusive set", "exclusive sets")
            ));
        }
        out.push_str(".\n\n");

        for plan in &self.plans[..csv_plans] {
            self.render_plan(plan, &mut out);
        }
        for product in &self.products {
            out.push('\n');
            out.push_str(&format!(
                "product {} = {} id {} {{\n",
                quote_name(&product.name),
                quote_string(&product.display_name),
                product.guid
            ));
            for &plan in &product.plans {
                out.push_str(&format!("    {},\n", quote_name(&self.plans[plan].name)));
            }
            out.push_str("}\n");
        }

        if let Some(sets) = sets {
            if self.extra_plans > 0 {
                out.push_str(
                    "\n# Plans that the exclusive sets name but the catalog CSV does not list.\n",
                );
                for plan in &self.plans[csv_plans..] {
                    self.render_plan(plan, &mut out);
                }
            }
            if !sets.is_empty() {
                out.push_str(
                    "\n# Mutually exclusive plans: no one may hold two plans of one set.\n",
                );
                for set in sets {
                    let names: Vec<String> = set
                        .plans
                        .iter()
                        .map(|&p| quote_name(&self.plans[p].name))
                        .collect();
                    out.push_str(&format!(
                        "exclusive {} {{ {} }}\n",
                        quote_string(&set.label),
                        names.join(", ")
                    ));
                }
            }
        }
        out
    }

    fn render_plan(&self, plan: &Plan, out: &mut String) {
        out.push_str(&format!(
            "plan {} = {}",
            quote_name(&plan.name),
            quote_string(&plan.display_name)
        ));
        out.push_str(&format!(" id {}\n", plan.id));
    }
}

/// One plan of an exclusive set, as the JSON gives it (normalised once parsed).
#[derive(Deserialize)]
struct JsonPlan {
    #[serde(rename = "servicePlanName")]
    name: String,
    #[serde(rename = "servicePlanId")]
    id: String,
}

/// The JSON's sets in the order the file lists them (serde_json's own map would sort them).
struct JsonSets(Vec<(String, Vec<JsonPlan>)>);

impl<'de> Deserialize<'de> for JsonSets {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SetsVisitor;
        impl<'de> Visitor<'de> for SetsVisitor {
            type Value = JsonSets;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object mapping each label to a list of plans")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonSets, A::Error> {
                let mut sets = Vec::new();
                while let Some(entry) = map.next_entry::<String, Vec<JsonPlan>>()? {
                    sets.push(entry);
                }
                Ok(JsonSets(sets))
            }
        }
        deserializer.deserialize_map(SetsVisitor)
    }
}

/// Parses the exclusive-sets JSON, normalising labels, names and ids.
fn parse_exclusive(json: &[u8]) -> Result<Vec<(String, Vec<JsonPlan>)>, ImportError> {
    let json = json.strip_prefix(b"\xef\xbb\xbf").unwrap_or(json);
    let JsonSets(raw) = serde_json::from_slice(json).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ImportError::JsonShape(e.to_string()),
        _ => ImportError::JsonMalformed(e),
    })?;
    let mut sets: Vec<(String, Vec<JsonPlan>)> = Vec::with_capacity(raw.len());
    for (label, plans) in raw {
        let label = normalise(&label);
        if label.is_empty() {
            return Err(ImportError::JsonShape("a set's label is empty".into()));
        }
        if sets.iter().any(|(l, _)| *l == label) {
            return Err(ImportError::JsonShape(format!(
                "the label {label:?} appears twice"
            )));
        }
        let mut normalised = Vec::with_capacity(plans.len());
        for plan in plans {
            let id = normalise_guid(&plan.id).ok_or_else(|| {
                ImportError::JsonShape(format!(
                    "in set {label:?}, servicePlanId {:?} is not a GUID (expected 8-4-4-4-12 hexadecimal digits)",
                    plan.id
                ))
            })?;
            let name = normalise(&plan.name);
            if name.is_empty() {
                return Err(ImportError::JsonShape(format!(
                    "in set {label:?}, the servicePlanName of plan id {id} is empty"
                )));
            }
            normalised.push(JsonPlan { name, id });
        }
        sets.push((label, normalised));
    }
    Ok(sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "Product_Display_Name,String_Id,GUID,Service_Plan_Name,Service_Plan_Id,Service_Plans_Included_Friendly_Names";

    const P1: &str = "11111111-1111-4111-8111-111111111111";
    const P2: &str = "22222222-2222-4222-8222-222222222222";
    const A: &str = "aaaaaaaa-0000-4000-8000-00000000000a";
    const B: &str = "bbbbbbbb-0000-4000-8000-00000000000b";
    const C: &str = "cccccccc-0000-4000-8000-00000000000c";

    /// A CSV with the header and `rows` (each already comma-separated), LF line ends.
    fn csv(rows: &[String]) -> String {
        let mut text = format!("{HEADER}\n");
        for row in rows {
            text.push_str(row);
            text.push('\n');
        }
        text
    }

    fn row(product: &str, sku: &str, guid: &str, plan: &str, id: &str, friendly: &str) -> String {
        format!("{product},{sku},{guid},{plan},{id},{friendly}")
    }

    fn import(text: &str) -> ImportReport {
        import_catalog(text.as_bytes(), None).unwrap()
    }

    fn compiles(text: &str) -> crate::rules::Compiled {
        match crate::rules::compile_texts([("catalog.rules", text)]) {
            Ok(compiled) => compiled,
            Err(failure) => panic!(
                "the generated rules do not compile:\n{}\n--- text ---\n{text}",
                failure
                    .errors
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        }
    }

    fn has_note(report: &ImportReport, needle: &str) -> bool {
        report.notes.iter().any(|n| n.contains(needle))
    }

    fn lines_starting<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        text.lines().filter(|l| l.starts_with(prefix)).collect()
    }

    #[test]
    fn bom_and_crlf_are_read() {
        let text = format!(
            "\u{feff}{HEADER}\r\n{}\r\n{}\r\n",
            row(
                "Office 365 E1",
                "STANDARDPACK",
                P1,
                "EXCHANGE_S_STANDARD",
                A,
                "Exchange Online (Plan 1)"
            ),
            row(
                "Office 365 E1",
                "STANDARDPACK",
                P1,
                "TEAMS1",
                B,
                "Microsoft Teams"
            ),
        );
        let report = import(&text);
        assert!(!report.text.contains('\r'), "{}", report.text);
        assert!(report.text.contains(&format!(
            "plan EXCHANGE_S_STANDARD = \"Exchange Online (Plan 1)\" id {A}\n"
        )));
        assert!(report.text.contains(&format!(
            "product STANDARDPACK = \"Office 365 E1\" id {P1} {{\n    EXCHANGE_S_STANDARD,\n    TEAMS1,\n}}\n"
        )));
        assert!(report.notes.is_empty(), "{:?}", report.notes);
        let compiled = compiles(&report.text);
        assert_eq!(compiled.table.plan_count(), 2);
        assert_eq!(compiled.table.product_count(), 1);
    }

    #[test]
    fn whitespace_is_normalised_and_guids_lower_cased() {
        let guid_nbsp = format!("{}\u{a0}", P1.to_uppercase());
        let text = csv(&[
            row(
                "Office\t365  E1 ",
                "O365_w/o\u{a0}Teams\u{a0}Bundle_M3",
                &guid_nbsp,
                "ATP_ENTERPRISE ",
                A,
                "Defender\u{a0}for Office",
            ),
            row(
                "Office 365 E1",
                "O365_w/o Teams Bundle_M3",
                P1,
                "Virtualization \tRights \tfor\tWindows",
                B,
                " Rights ",
            ),
        ]);
        let report = import(&text);
        assert!(report.text.contains(&format!(
            "plan ATP_ENTERPRISE = \"Defender for Office\" id {A}\n"
        )));
        assert!(report.text.contains(&format!(
            "plan \"Virtualization Rights for Windows\" = \"Rights\" id {B}\n"
        )));
        assert!(report.text.contains(&format!(
            "product \"O365_w/o Teams Bundle_M3\" = \"Office 365 E1\" id {P1} {{\n"
        )));
        // One product, not two: the GUID with a non-breaking space is the same GUID.
        assert_eq!(lines_starting(&report.text, "product ").len(), 1);
        assert!(
            has_note(
                &report,
                "String_Id \"O365_w/o\\u{a0}Teams\\u{a0}Bundle_M3\" normalised to \"O365_w/o Teams Bundle_M3\" (1 row, first at row 2)"
            ),
            "{:#?}",
            report.notes
        );
        assert!(
            has_note(
                &report,
                "GUID \"11111111-1111-4111-8111-111111111111\\u{a0}\" normalised"
            ),
            "{:#?}",
            report.notes
        );
        assert!(has_note(
            &report,
            "Service_Plan_Name \"ATP_ENTERPRISE \" normalised to \"ATP_ENTERPRISE\""
        ));
        assert!(has_note(
            &report,
            "Product_Display_Name \"Office\\t365  E1 \""
        ));
        compiles(&report.text);
    }

    #[test]
    fn the_most_frequent_name_of_a_plan_id_wins() {
        let text = csv(&[
            row("One", "ONE", P1, "RMS_S_ENTERPRISE)", A, "Azure RMS"),
            row("Two", "TWO", P2, "RMS_S_ENTERPRISE", A, "AZURE RMS"),
            row("Three", "THREE", C, "RMS_S_ENTERPRISE", A, "AZURE RMS"),
        ]);
        let report = import(&text);
        assert_eq!(
            lines_starting(&report.text, "plan "),
            [format!("plan RMS_S_ENTERPRISE = \"AZURE RMS\" id {A}").as_str()]
        );
        assert!(
            report.notes.contains(&format!(
                "plan id {A}: kept name `RMS_S_ENTERPRISE`, merged `RMS_S_ENTERPRISE)` (1 row)"
            )),
            "{:#?}",
            report.notes
        );
        assert!(report.notes.contains(&format!(
            "plan id {A} (`RMS_S_ENTERPRISE`): kept display name \"AZURE RMS\", merged \"Azure RMS\" (1 row)"
        )), "{:#?}", report.notes);
        let compiled = compiles(&report.text);
        for product in compiled.table.product_ids() {
            let plans = &compiled.table.product(product).plan_list;
            assert_eq!(plans.len(), 1);
        }
    }

    #[test]
    fn a_tie_goes_to_the_name_seen_first() {
        let text = csv(&[
            row("One", "ONE", P1, "Deskless", A, "Staff Hub"),
            row("Two", "TWO", P2, "DESKLESS", A, "STAFF HUB"),
        ]);
        let report = import(&text);
        assert!(
            report
                .text
                .contains(&format!("plan Deskless = \"Staff Hub\" id {A}\n"))
        );
        assert!(report.text.contains("    Deskless,\n"));
        assert!(!report.text.contains("DESKLESS"));
        assert!(has_note(
            &report,
            "kept name `Deskless`, merged `DESKLESS` (1 row)"
        ));
        compiles(&report.text);
    }

    #[test]
    fn a_name_under_two_ids_is_renamed_for_the_later_id() {
        let text = csv(&[
            row(
                "One",
                "ONE",
                P1,
                "PROJECT_ESSENTIALS",
                B,
                "Project Online Essentials",
            ),
            row(
                "Two",
                "TWO",
                P2,
                "PROJECT_ESSENTIALS",
                A,
                "Project Online Essentials",
            ),
        ]);
        let report = import(&text);
        assert_eq!(
            lines_starting(&report.text, "plan "),
            [
                format!("plan PROJECT_ESSENTIALS = \"Project Online Essentials\" id {B}").as_str(),
                format!("plan PROJECT_ESSENTIALS_aaaaaaaa = \"Project Online Essentials\" id {A}")
                    .as_str(),
            ]
        );
        assert!(report.text.contains(&format!(
            "product TWO = \"Two\" id {P2} {{\n    PROJECT_ESSENTIALS_aaaaaaaa,\n}}"
        )));
        assert!(report.notes.contains(&format!(
            "plan id {A}: the name `PROJECT_ESSENTIALS` is already used by plan id {B}, renamed to `PROJECT_ESSENTIALS_aaaaaaaa`"
        )), "{:#?}", report.notes);
        compiles(&report.text);
    }

    #[test]
    fn a_suffixed_name_never_takes_a_name_in_use() {
        // The third plan's own name is what the second would be renamed to.
        let text = csv(&[
            row("One", "ONE", P1, "X", B, "X"),
            row("One", "ONE", P1, "X", A, "X"),
            row("One", "ONE", P1, "X_aaaaaaaa", C, "X"),
        ]);
        let report = import(&text);
        assert!(report.text.contains(&format!("plan X = \"X\" id {B}\n")));
        assert!(
            report
                .text
                .contains(&format!("plan X_aaaaaaaa_2 = \"X\" id {A}\n"))
        );
        assert!(
            report
                .text
                .contains(&format!("plan X_aaaaaaaa = \"X\" id {C}\n"))
        );
        compiles(&report.text);
    }

    #[test]
    fn a_string_id_under_two_guids_is_renamed_for_the_later_guid() {
        let text = csv(&[
            row(
                "Calling Small",
                "MCOPSTN5",
                P2,
                "MCOPSTN_SMALL",
                A,
                "Calling Small",
            ),
            row(
                "Calling 120",
                "MCOPSTN5",
                P1,
                "MCOPSTN5",
                B,
                "DOMESTIC CALLING PLAN",
            ),
        ]);
        let report = import(&text);
        assert_eq!(
            lines_starting(&report.text, "product "),
            [
                format!("product MCOPSTN5 = \"Calling Small\" id {P2} {{").as_str(),
                format!("product MCOPSTN5_11111111 = \"Calling 120\" id {P1} {{").as_str(),
            ]
        );
        assert!(report.notes.contains(&format!(
            "product id {P1}: the name `MCOPSTN5` is already used by product id {P2}, renamed to `MCOPSTN5_11111111`"
        )), "{:#?}", report.notes);
        // Plans and products are two namespaces: the plan MCOPSTN5 keeps its name.
        assert!(report.text.contains(&format!(
            "plan MCOPSTN5 = \"DOMESTIC CALLING PLAN\" id {B}\n"
        )));
        compiles(&report.text);
    }

    #[test]
    fn a_plan_id_that_is_also_a_product_guid_is_kept_on_both() {
        // Plan ids and product ids are separate namespaces (MCOPSTN5 in the real catalog).
        let text = csv(&[row(
            "Calling 120",
            "MCOPSTN5",
            P1,
            "MCOPSTN5",
            P1,
            "DOMESTIC CALLING PLAN",
        )]);
        let report = import(&text);
        assert!(
            report.text.contains(&format!(
                "plan MCOPSTN5 = \"DOMESTIC CALLING PLAN\" id {P1}\n"
            )),
            "{}",
            report.text
        );
        assert!(
            report
                .text
                .contains(&format!("product MCOPSTN5 = \"Calling 120\" id {P1} {{"))
        );
        compiles(&report.text);
    }

    #[test]
    fn a_plan_repeated_in_a_product_is_listed_once() {
        let text = csv(&[
            row(
                "One",
                "ONE",
                P1,
                "EXCHANGE_S_FOUNDATION",
                A,
                "Exchange Foundation",
            ),
            row("One", "ONE", P1, "TEAMS1", B, "Teams"),
            row(
                "One",
                "ONE",
                P1,
                "EXCHANGE_S_FOUNDATION",
                A,
                "Exchange Foundation",
            ),
        ]);
        let report = import(&text);
        assert!(report.text.contains(&format!(
            "product ONE = \"One\" id {P1} {{\n    EXCHANGE_S_FOUNDATION,\n    TEAMS1,\n}}\n"
        )));
        assert!(report.notes.contains(&format!(
            "product id {P1} (`ONE`): plan `EXCHANGE_S_FOUNDATION` is listed on 2 rows, kept once"
        )), "{:#?}", report.notes);
        let compiled = compiles(&report.text);
        assert!(compiled.warnings.is_empty(), "{:?}", compiled.warnings);
    }

    #[test]
    fn names_and_display_names_are_quoted_when_needed() {
        let text = csv(&[
            row(
                "\"Teams \"\"Premium\"\" (trial)\"",
                "Microsoft_365_E3_(no_Teams)",
                P1,
                "Virtualization Rights for Windows 10 (E3/E5+VDA)",
                A,
                "\"Say \"\"hi\"\" \\ bye\"",
            ),
            row(
                "Plain",
                "O365_w/o Teams Bundle_M3",
                P2,
                "EXCHANGE_S_FOUNDATION PBI_PREMIUM_EM1_ADDON",
                B,
                "Exchange",
            ),
        ]);
        let report = import(&text);
        assert!(report.text.contains(&format!(
            "plan \"Virtualization Rights for Windows 10 (E3/E5+VDA)\" = \"Say \\\"hi\\\" \\\\ bye\" id {A}\n"
        )), "{}", report.text);
        assert!(report.text.contains(&format!(
            "product \"Microsoft_365_E3_(no_Teams)\" = \"Teams \\\"Premium\\\" (trial)\" id {P1} {{\n    \"Virtualization Rights for Windows 10 (E3/E5+VDA)\",\n}}"
        )), "{}", report.text);
        assert!(
            report
                .text
                .contains("    \"EXCHANGE_S_FOUNDATION PBI_PREMIUM_EM1_ADDON\",\n")
        );
        let compiled = compiles(&report.text);
        let t = &compiled.table;
        let plan = t
            .plan_by_name("Virtualization Rights for Windows 10 (E3/E5+VDA)")
            .unwrap();
        assert_eq!(t.plan(plan).display_name, "Say \"hi\" \\ bye");
        let product = t.product_by_name("Microsoft_365_E3_(no_Teams)").unwrap();
        assert_eq!(t.product(product).display_name, "Teams \"Premium\" (trial)");
        assert!(t.product_by_name("O365_w/o Teams Bundle_M3").is_some());
    }

    #[test]
    fn a_missing_display_name_falls_back_to_the_name() {
        let text = csv(&[row("", "ONE", P1, "TEAMS1", A, "")]);
        let report = import(&text);
        assert!(
            report
                .text
                .contains(&format!("plan TEAMS1 = \"TEAMS1\" id {A}\n"))
        );
        assert!(
            report
                .text
                .contains(&format!("product ONE = \"ONE\" id {P1} {{"))
        );
        assert!(has_note(
            &report,
            &format!("plan id {A} (`TEAMS1`) has no display name in the catalog: used its name")
        ));
        assert!(has_note(
            &report,
            &format!("product id {P1} (`ONE`) has no display name")
        ));
        compiles(&report.text);
    }

    #[test]
    fn a_missing_column_is_named() {
        let text = "Product_Display_Name,String_Id,GUID,Service_Plan_Name,Service_Plans_Included_Friendly_Names\nA,B,C,D,E\n";
        let error = import_catalog(text.as_bytes(), None).unwrap_err();
        assert!(
            matches!(
                error,
                ImportError::MissingColumn {
                    column: "Service_Plan_Id",
                    ..
                }
            ),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains("no `Service_Plan_Id` column"), "{message}");
        assert!(message.contains("`Service_Plan_Name`"), "{message}");

        let error = import_catalog(b"", None).unwrap_err();
        assert!(
            matches!(
                error,
                ImportError::MissingColumn {
                    column: "Product_Display_Name",
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn a_bad_guid_names_its_row() {
        let text = csv(&[
            row("One", "ONE", P1, "TEAMS1", A, "Teams"),
            "\"Two\nlines\",TWO,P2,TEAMS1,aaaa,Teams".to_string(),
            row("Three", "THREE", "not-a-guid", "TEAMS1", A, "Teams"),
        ]);
        let error = import_catalog(text.as_bytes(), None).unwrap_err();
        // The second record starts on line 3 and spans two lines.
        assert!(
            matches!(&error, ImportError::BadGuid { row: 3, column: "GUID", value } if value == "P2"),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .starts_with("row 3 of the catalog CSV: GUID \"P2\" is not a GUID"),
            "{error}"
        );

        let text = csv(&[row("One", "ONE", P1, "TEAMS1", &format!("{A}0"), "Teams")]);
        let error = import_catalog(text.as_bytes(), None).unwrap_err();
        assert!(
            matches!(
                error,
                ImportError::BadGuid {
                    row: 2,
                    column: "Service_Plan_Id",
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn an_empty_required_field_names_its_row() {
        let text = csv(&[
            row("One", "ONE", P1, "TEAMS1", A, "Teams"),
            row("Two", "\u{a0} \t", P2, "TEAMS1", A, "Teams"),
        ]);
        let error = import_catalog(text.as_bytes(), None).unwrap_err();
        assert!(
            matches!(
                error,
                ImportError::EmptyField {
                    row: 3,
                    column: "String_Id"
                }
            ),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "row 3 of the catalog CSV: String_Id is empty"
        );
    }

    #[test]
    fn an_unreadable_csv_is_an_error() {
        let text = format!("{HEADER}\nA,B,C\n");
        let error = import_catalog(text.as_bytes(), None).unwrap_err();
        assert!(matches!(error, ImportError::Csv(_)), "{error:?}");
        assert!(
            error
                .to_string()
                .starts_with("the catalog CSV cannot be read: "),
            "{error}"
        );

        let mut bytes = csv(&[row("One", "ONE", P1, "TEAMS1", A, "Teams")]).into_bytes();
        bytes.extend_from_slice(b"Two,\xff\xfe,");
        bytes.extend_from_slice(format!("{P2},TEAMS1,{A},Teams\n").as_bytes());
        let error = import_catalog(&bytes, None).unwrap_err();
        assert!(matches!(error, ImportError::Csv(_)), "{error:?}");
    }

    fn exclusive_csv() -> String {
        csv(&[
            row(
                "One",
                "ONE",
                P1,
                "SHAREPOINTSTANDARD",
                A,
                "SharePoint (Plan 1)",
            ),
            row(
                "Two",
                "TWO",
                P2,
                "SHAREPOINTENTERPRISE",
                B,
                "SharePoint (Plan 2)",
            ),
        ])
    }

    #[test]
    fn exclusive_sets_keep_the_json_order_and_declare_missing_plans() {
        let json = format!(
            r#"{{
                "Zeta": [
                    {{"servicePlanName": "SHAREPOINTSTANDARD", "servicePlanId": "{A}"}},
                    {{"servicePlanName": "SHAREPOINTSTANDARD_YAMMERSHADOW", "servicePlanId": "{}"}}
                ],
                "Alpha \"quoted\"": [
                    {{"servicePlanName": "SP2", "servicePlanId": "{B}"}},
                    {{"servicePlanName": "SHAREPOINTSTANDARD_YAMMERSHADOW", "servicePlanId": "{C}"}}
                ]
            }}"#,
            C.to_uppercase()
        );
        let report = import_catalog(exclusive_csv().as_bytes(), Some(json.as_bytes())).unwrap();
        let text = &report.text;
        let extra = text.find(&format!("plan SHAREPOINTSTANDARD_YAMMERSHADOW = \"SHAREPOINTSTANDARD_YAMMERSHADOW\" id {C}\n")).unwrap();
        let zeta = text
            .find("exclusive \"Zeta\" { SHAREPOINTSTANDARD, SHAREPOINTSTANDARD_YAMMERSHADOW }\n")
            .unwrap();
        let alpha = text.find("exclusive \"Alpha \\\"quoted\\\"\" { SHAREPOINTENTERPRISE, SHAREPOINTSTANDARD_YAMMERSHADOW }\n").unwrap();
        let last_product = text.rfind("product ").unwrap();
        assert!(
            last_product < extra && extra < zeta && zeta < alpha,
            "{text}"
        );
        assert_eq!(
            lines_starting(text, "plan SHAREPOINTSTANDARD_YAMMERSHADOW").len(),
            1
        );
        assert!(text.contains("# 2 products, 3 plans (1 of them named only by the exclusive sets), 2 exclusive sets.\n"), "{text}");
        assert_eq!(
            report.notes,
            [
                format!(
                    "exclusive set \"Zeta\": plan `SHAREPOINTSTANDARD_YAMMERSHADOW` (id {C}) is not in the catalog CSV, declared it with no product"
                ),
                format!(
                    "exclusive set \"Alpha \\\"quoted\\\"\": plan id {B} is `SP2` in the JSON and `SHAREPOINTENTERPRISE` in the catalog, used `SHAREPOINTENTERPRISE`"
                ),
            ]
        );
        let compiled = compiles(text);
        let sets = compiled.table.exclusive_sets();
        assert_eq!(sets.len(), 2);
        assert_eq!(sets[0].label, "Zeta");
        assert_eq!(sets[1].label, "Alpha \"quoted\"");
    }

    #[test]
    fn sets_of_fewer_than_two_plans_or_that_a_product_breaks_are_dropped() {
        let csv = csv(&[
            row(
                "One",
                "ONE",
                P1,
                "SHAREPOINTSTANDARD",
                A,
                "SharePoint (Plan 1)",
            ),
            row(
                "One",
                "ONE",
                P1,
                "SHAREPOINTENTERPRISE",
                B,
                "SharePoint (Plan 2)",
            ),
        ]);
        let json = format!(
            r#"{{"Lonely": [{{"servicePlanName": "A", "servicePlanId": "{A}"}}, {{"servicePlanName": "A", "servicePlanId": "{A}"}}],
                "Empty": [],
                "Broken": [{{"servicePlanName": "SHAREPOINTSTANDARD", "servicePlanId": "{A}"}}, {{"servicePlanName": "SHAREPOINTENTERPRISE", "servicePlanId": "{B}"}}]}}"#
        );
        let report = import_catalog(csv.as_bytes(), Some(json.as_bytes())).unwrap();
        assert!(
            lines_starting(&report.text, "exclusive").is_empty(),
            "{}",
            report.text
        );
        assert!(
            report
                .text
                .contains("# 1 product, 2 plans, 0 exclusive sets.\n"),
            "{}",
            report.text
        );
        assert_eq!(
            report.notes,
            [
                format!("exclusive set \"Lonely\": plan id {A} is `A` in the JSON and `SHAREPOINTSTANDARD` in the catalog, used `SHAREPOINTSTANDARD`"),
                format!("exclusive set \"Lonely\": plan id {A} is listed twice, kept once"),
                "exclusive set \"Lonely\" dropped: it names fewer than two distinct plans".to_string(),
                "exclusive set \"Empty\" dropped: it names fewer than two distinct plans".to_string(),
                "exclusive set \"Broken\" dropped: product `ONE` holds both `SHAREPOINTSTANDARD` and `SHAREPOINTENTERPRISE`, so the set would make it impossible to assign".to_string(),
            ]
        );
        compiles(&report.text);
    }

    /// A set whose plans another set holds adds no rule, and the compiler warns about it: the
    /// import drops it, so that the file it writes checks clean.
    #[test]
    fn a_set_whose_plans_another_set_holds_is_dropped() {
        let plan = |name: &str, id: &str| {
            format!(r#"{{"servicePlanName": "{name}", "servicePlanId": "{id}"}}"#)
        };
        let (a, b, c) = (
            plan("SHAREPOINTSTANDARD", A),
            plan("SHAREPOINTENTERPRISE", B),
            plan("SHAREPOINTSTANDARD_YAMMERSHADOW", C),
        );
        let json = format!(
            r#"{{"Pair": [{b}, {a}], "All": [{a}, {b}, {c}], "All again": [{c}, {b}, {a}]}}"#
        );
        let report = import_catalog(exclusive_csv().as_bytes(), Some(json.as_bytes())).unwrap();
        assert_eq!(
            lines_starting(&report.text, "exclusive"),
            [
                "exclusive \"All\" { SHAREPOINTSTANDARD, SHAREPOINTENTERPRISE, SHAREPOINTSTANDARD_YAMMERSHADOW }"
            ]
        );
        assert!(
            report.text.contains(", 1 exclusive set.\n"),
            "{}",
            report.text
        );
        assert_eq!(
            report.notes[1..],
            [
                "exclusive set \"Pair\" dropped: exclusive set \"All\" already makes all its plans mutually exclusive",
                "exclusive set \"All again\" dropped: exclusive set \"All\" already makes all its plans mutually exclusive",
            ],
            "{:?}",
            report.notes
        );
        let compiled = compiles(&report.text);
        assert!(
            compiled
                .warnings
                .iter()
                .all(|w| w.message.ends_with("is not in any product")),
            "{:?}",
            compiled.warnings
        );
    }

    #[test]
    fn a_missing_plan_whose_name_is_taken_is_renamed() {
        let json = format!(
            r#"{{"S": [{{"servicePlanName": "SHAREPOINTSTANDARD", "servicePlanId": "{C}"}}, {{"servicePlanName": "SHAREPOINTENTERPRISE", "servicePlanId": "{B}"}}]}}"#
        );
        let report = import_catalog(exclusive_csv().as_bytes(), Some(json.as_bytes())).unwrap();
        assert!(report.text.contains(&format!(
            "plan SHAREPOINTSTANDARD_cccccccc = \"SHAREPOINTSTANDARD_cccccccc\" id {C}\n"
        )));
        assert!(
            report.text.contains(
                "exclusive \"S\" { SHAREPOINTSTANDARD_cccccccc, SHAREPOINTENTERPRISE }\n"
            )
        );
        assert!(has_note(
            &report,
            "renamed to `SHAREPOINTSTANDARD_cccccccc`"
        ));
        compiles(&report.text);
    }

    #[test]
    fn json_errors_say_what_is_wrong() {
        let csv = exclusive_csv();
        let import =
            |json: &str| import_catalog(csv.as_bytes(), Some(json.as_bytes())).unwrap_err();

        let error = import(r#"{"S": [}"#);
        assert!(matches!(error, ImportError::JsonMalformed(_)), "{error:?}");
        assert!(
            error
                .to_string()
                .starts_with("the exclusive-sets JSON is not valid JSON: "),
            "{error}"
        );
        assert!(matches!(
            import(r#"{"S": []"#),
            ImportError::JsonMalformed(_)
        ));

        for (json, says) in [
            (r#"[1, 2]"#, "invalid type: sequence"),
            (
                r#"{"S": [{"servicePlanName": "X"}]}"#,
                "missing field `servicePlanId`",
            ),
            (r#"{"S": {"servicePlanName": "X"}}"#, "invalid type: map"),
            (
                r#"{"S": [{"servicePlanName": "X", "servicePlanId": "nope"}]}"#,
                "in set \"S\", servicePlanId \"nope\" is not a GUID",
            ),
            (r#"{"S": [], "S ": []}"#, "the label \"S\" appears twice"),
        ] {
            let error = import(json);
            assert!(
                matches!(error, ImportError::JsonShape(_)),
                "{json}: {error:?}"
            );
            let message = error.to_string();
            assert!(
                message.starts_with("the exclusive-sets JSON does not have the expected shape"),
                "{message}"
            );
            assert!(message.contains(says), "{json}: {message}");
        }
    }

    #[test]
    fn the_json_may_start_with_a_byte_order_mark() {
        let json = format!(
            "\u{feff}{{\"S\": [{{\"servicePlanName\": \"X\", \"servicePlanId\": \"{A}\"}}, {{\"servicePlanName\": \"Y\", \"servicePlanId\": \"{B}\"}}]}}"
        );
        let report = import_catalog(exclusive_csv().as_bytes(), Some(json.as_bytes())).unwrap();
        assert!(
            report
                .text
                .contains("exclusive \"S\" { SHAREPOINTSTANDARD, SHAREPOINTENTERPRISE }\n")
        );
    }

    fn shared_data(file: &str) -> Vec<u8> {
        let path = format!("{}/../shared/data/{file}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| {
            panic!("the real catalog test needs {path}, which cannot be read: {e}")
        })
    }

    #[test]
    fn the_real_catalog_imports_and_compiles() {
        let csv = shared_data("product-names-and-service-plan-identifiers.csv");
        let report = import_catalog(&csv, None).unwrap();
        let again = import_catalog(&csv, None).unwrap();
        assert_eq!(report, again, "two imports of one CSV differ");

        let compiled = compiles(&report.text);
        let t = &compiled.table;
        assert_eq!(t.product_count(), 569);
        assert_eq!(t.plan_count(), 723);
        assert!(report.text.contains("# 569 products, 723 plans.\n"));

        let small = t.product_by_name("MCOPSTN5").unwrap();
        assert_eq!(
            t.product(small).id.as_deref(),
            Some("d43177b5-475b-4880-92d4-d54c27b5efbd")
        );
        let renamed = t.product_by_name("MCOPSTN5_54a152dc").unwrap();
        assert_eq!(
            t.product(renamed).id.as_deref(),
            Some("54a152dc-90de-4996-93d2-bc47e670fc06")
        );
        assert!(has_note(&report, "renamed to `MCOPSTN5_54a152dc`"));

        // The flaws the catalog is known for.
        assert!(t.plan_by_name("RMS_S_ENTERPRISE").is_some());
        assert!(t.plan_by_name("RMS_S_ENTERPRISE)").is_none());
        assert!(t.plan_by_name("ATP_ENTERPRISE").is_some());
        assert!(t.plan_by_name("ATP_ENTERPRISE ").is_none());
        assert!(
            t.plan_by_name("Virtualization Rights for Windows 10 (E3/E5+VDA)")
                .is_some()
        );
        assert!(t.product_by_name("O365_w/o Teams Bundle_M3").is_some());
        assert!(t.product_by_name("MCOCAP_FACULTY").is_some());
        assert!(
            report
                .text
                .contains("id 420c7602-7f70-4895-9394-d3d679ea36fb {")
        );
        assert!(!report.text.contains('\u{a0}'));
        assert!(!report.text.contains('\t'));
        assert!(!report.text.contains('\r'));
    }

    #[test]
    fn the_real_catalog_with_its_exclusive_sets_compiles() {
        let csv = shared_data("product-names-and-service-plan-identifiers.csv");
        let json = shared_data("mutually-exclusive-service-plans.json");
        let report = import_catalog(&csv, Some(&json)).unwrap();
        assert_eq!(report, import_catalog(&csv, Some(&json)).unwrap());
        let compiled = compiles(&report.text);
        let t = &compiled.table;
        assert_eq!(t.product_count(), 569);
        assert_eq!(t.plan_count(), 727);
        for missing in [
            "CRMPLAN1",
            "EMPLOYEE_SELF_SERVICE",
            "INTUNE_B",
            "SHAREPOINTSTANDARD_YAMMERSHADOW",
        ] {
            assert!(t.plan_by_name(missing).is_some(), "{missing}");
            assert!(
                has_note(&report, &format!("plan `{missing}` (id ")),
                "{missing}: {:#?}",
                report.notes
            );
        }
        let labels: Vec<&str> = t
            .exclusive_sets()
            .iter()
            .map(|s| s.label.as_str())
            .collect();
        assert_eq!(labels.first(), Some(&"Dynamics CRM"));
        assert!(labels.contains(&"Exchange Online"));
    }
}
