//! No N+1: a page of users with their assignment states and error details costs the same, small
//! number of reads whether it holds 10 users or 100.

use std::sync::Arc;

use group_licensing::api::{self, AppState};
use group_licensing::rules::live::{LiveRules, Loaded};
use group_licensing::store;

#[path = "support/tenant.rs"]
mod tenant;

const USERS: usize = 120;

const QUERY: &str = r#"
query ($group: ID!, $first: Int) {
  group(id: $group) {
    displayName licenseErrorCount licenseErrorCounts { error count }
    membersWithLicenseErrors(first: $first) {
      totalCount
      edges { node {
        userPrincipalName effectiveUsageLocation hasLicenseErrors
        memberOf { displayName }
        assignedLicenses { product { skuPartNumber prepaidUnits } enabledPlans { servicePlanName } }
        licenseAssignmentStates {
          product { skuPartNumber consumedUnits availableUnits }
          assignedByGroup { displayName licenseProcessingState }
          state error lastUpdatedDateTime
          errorDetail {
            message resolutions
            violations {
              code message plans { servicePlanName }
              conflictingPlan { servicePlanName }
              conflictingSource { direct group { displayName } product { skuPartNumber } }
            }
          }
        }
      } }
    }
  }
}"#;

#[test]
fn a_page_of_users_with_error_details_costs_the_same_few_reads_whatever_its_size() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tenant::Tenant {
        store,
        table,
        enterprise,
        ..
    } = tenant::conflicted(&dir.path().join("t.db"), USERS, false, 0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let state = AppState {
        store: store.clone(),
        rules: Arc::new(LiveRules::new(
            dir.path(),
            Loaded {
                table,
                loaded_at: store::now(),
                warnings: Vec::new(),
                last_reload_errors: Vec::new(),
            },
        )),
        wake: Arc::new(tokio::sync::Notify::new()),
        webhooks: Default::default(),
        telemetry: Arc::new(group_licensing::telemetry::Telemetry::new().expect("telemetry")),
    };
    let schema = api::schema(state.clone());
    let mut reads = Vec::new();
    for first in [10, 100] {
        let before = store.read_count();
        let request = async_graphql::Request::new(QUERY).variables(
            async_graphql::Variables::from_json(serde_json::json!({
                "group": enterprise.to_string(),
                "first": first,
            })),
        );
        let response = runtime.block_on(schema.execute(api::prepare(request, &state)));
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        let data = response.data.into_json().expect("JSON data");
        let page = &data["group"]["membersWithLicenseErrors"];
        assert_eq!(page["totalCount"], USERS);
        let edges = page["edges"].as_array().expect("edges");
        assert_eq!(edges.len(), first);
        // Every user really carries its error, named after the group the other plans come from.
        for edge in edges {
            let states = edge["node"]["licenseAssignmentStates"]
                .as_array()
                .expect("states");
            let refused = states
                .iter()
                .find(|s| s["error"] == "MUTUALLY_EXCLUSIVE_VIOLATION")
                .expect("the E3 assignment is in error");
            assert_eq!(
                refused["errorDetail"]["violations"][0]["conflictingSource"]["group"]["displayName"],
                "Standard"
            );
            let message = refused["errorDetail"]["violations"][0]["message"]
                .as_str()
                .expect("message");
            assert!(
                message.contains("from group \"Standard\"") && !message.contains("group \"group"),
                "{message}"
            );
        }
        reads.push(store.read_count() - before);
    }
    // The top-level group's own fields may or may not share a batch with the page's, so the
    // two counts can differ by one; an N+1 would add tens of reads for the 90 more users.
    assert!(
        reads[1] <= reads[0] + 1,
        "a page of 100 users costs more reads than a page of 10: {reads:?}"
    );
    assert!(reads[1] <= 12, "a page costs {} reads", reads[1]);
    println!("reads per page: {}", reads[1]);
}
