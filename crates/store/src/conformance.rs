//! The backend conformance suite: every storage behaviour scenario, written once against `&dyn Store`.
//! Each backend's integration tests call [`run_all`] with a factory that gives a fresh, empty store.
//!
//! Scenarios build their index entries by hand (this crate does not know FHIR search parameters), so
//! they test the storage contract only: what a backend must do with the entries and queries it is
//! given. Scenarios that compare write times sleep a few milliseconds between writes, so the store
//! should run on the wall clock ([`crate::SystemClock`]).

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    Condition, DateBound, HistoryMethod, HistoryQuery, HistoryScope, Include, IndexEntry,
    IndexValue, PageCursor, ParamKind, Prefix, ResourceWrite, SearchPage, SearchQuery, SortKey,
    SortParam, Store, StoreError, StoredResource, StringMode, TokenSystem, TotalMode, UriMode,
    ValueTest, WriteOp, WriteOutcome,
};

/// A running scenario.
pub type ScenarioFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A scenario: takes a fresh, empty store and panics when the store misbehaves.
pub type ScenarioFn = fn(Arc<dyn Store>) -> ScenarioFuture;

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        /// Every scenario with its name, in the order [`run_all`] runs them.
        pub const SCENARIOS: &[(&str, ScenarioFn)] = &[
            $((stringify!($name), |store| Box::pin($name(store))),)*
        ];
    };
}

scenarios![
    create_read_vread,
    versions_increment,
    update_if_match,
    if_match_conflict_names_the_operation,
    create_on_update,
    delete_marks_and_recreate,
    create_existing_id_is_duplicate,
    empty_id_is_invalid,
    failed_call_leaves_nothing_behind,
    operations_in_one_call_see_each_other,
    concurrent_if_match_updates_one_wins,
    concurrent_conditional_creates_make_one,
    conditional_create_returns_existing,
    meta_is_stamped,
    update_replaces_index_entries,
    token_system_variants,
    token_text,
    string_modes,
    date_prefixes,
    number_prefixes,
    quantity_prefixes_and_units,
    reference_forms,
    uri_modes,
    missing,
    not,
    and_of_or_groups,
    chain,
    has,
    id_condition,
    last_updated,
    compartment,
    resource_of_several_patients,
    multiple_types_and_system_search,
    sort_by_id_and_last_updated,
    sort_by_param_with_missing_values,
    sort_on_several_keys,
    paging_forward,
    paging_while_data_changes,
    previous_cursor,
    total_and_count_zero,
    exists_agrees_with_search,
    includes_and_revincludes,
    include_iterate,
    history_instance,
    history_type_and_system,
    history_since_before_and_paging,
    scan_in_storage_order,
    bulk_create_is_like_create,
    bulk_create_refuses_existing_ids,
    resource_types,
    foreign_cursor_is_invalid,
    ping,
];

/// A test's prerequisite (a server URL, a binary): `found` when present. When absent, a loud
/// SKIPPED notice naming `test` and `how` to run it, and None, so that a local run passes; but when
/// `CI` is set, a panic: a suite that needs a server never passes vacuously in CI.
///
/// # Panics
/// When `found` is None and `CI` is set.
pub fn prerequisite<T>(found: Option<T>, missing: &str, test: &str, how: &str) -> Option<T> {
    if found.is_some() {
        return found;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{missing}, but CI is set: {test} must run in CI ({how})"
    );
    // Written to stderr directly: the harness captures `eprintln!` of passing tests, and this
    // notice must be seen.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "\n********************************************************************\n\
             SKIPPED {test}: {missing}.\n{how}\n\
             ********************************************************************\n"
        )
        .as_bytes(),
    );
    None
}

/// A non-empty environment variable, for [`prerequisite`].
pub fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// The names of every scenario, for reporting the count.
pub fn scenario_names() -> Vec<&'static str> {
    SCENARIOS.iter().map(|(name, _)| *name).collect()
}

/// Runs every scenario, each on a fresh store from `make`, and panics naming every failed one.
///
/// Needs a Tokio runtime (scenarios spawn concurrent tasks); a multi-thread runtime exercises real
/// concurrency.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    let mut failures = Vec::new();
    for (name, scenario) in SCENARIOS {
        let store = make().await;
        if let Err(error) = tokio::spawn(scenario(store)).await {
            let message = match error.try_into_panic() {
                Ok(panic) => panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "panicked".to_owned()),
                Err(error) => error.to_string(),
            };
            failures.push(format!("{name}: {message}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} conformance scenarios failed:\n{}",
        failures.len(),
        SCENARIOS.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Builders.

fn resource(resource_type: &str, id: &str, index: Vec<IndexEntry>) -> ResourceWrite {
    ResourceWrite {
        resource_type: resource_type.to_owned(),
        id: id.to_owned(),
        body: json!({ "resourceType": resource_type, "id": id }),
        index,
        compartments: Vec::new(),
    }
}

fn patient(id: &str, index: Vec<IndexEntry>) -> ResourceWrite {
    resource("Patient", id, index)
}

fn observation(id: &str, index: Vec<IndexEntry>) -> ResourceWrite {
    resource("Observation", id, index)
}

fn entry(param: &str, value: IndexValue) -> IndexEntry {
    IndexEntry {
        param: param.to_owned(),
        value,
    }
}

fn token(param: &str, system: Option<&str>, code: &str) -> IndexEntry {
    entry(
        param,
        IndexValue::Token {
            system: system.map(str::to_owned),
            code: Some(code.to_owned()),
            text: None,
        },
    )
}

fn string(param: &str, exact: &str) -> IndexEntry {
    entry(
        param,
        IndexValue::String {
            normalized: exact.to_lowercase(),
            exact: exact.to_owned(),
        },
    )
}

fn date(param: &str, low: i64, high: i64) -> IndexEntry {
    entry(param, IndexValue::Date { low, high })
}

fn reference(param: &str, target_type: &str, target_id: &str) -> IndexEntry {
    entry(
        param,
        IndexValue::Reference {
            target_type: Some(target_type.to_owned()),
            target_id: Some(target_id.to_owned()),
            url: None,
        },
    )
}

fn create(write: ResourceWrite) -> WriteOp {
    WriteOp::Create {
        write,
        if_none_exist: None,
    }
}

fn update(write: ResourceWrite, if_match: Option<u64>) -> WriteOp {
    WriteOp::Update { write, if_match }
}

fn delete(resource_type: &str, id: &str, if_match: Option<u64>) -> WriteOp {
    WriteOp::Delete {
        resource_type: resource_type.to_owned(),
        id: id.to_owned(),
        if_match,
    }
}

fn matching(param: &str, test: ValueTest) -> Condition {
    Condition::Match {
        param: param.to_owned(),
        test,
    }
}

fn code_is(param: &str, code: &str) -> Condition {
    matching(
        param,
        ValueTest::Token {
            system: TokenSystem::Any,
            code: Some(code.to_owned()),
        },
    )
}

fn starts_with(param: &str, value: &str) -> Condition {
    matching(
        param,
        ValueTest::String {
            value: value.to_owned(),
            mode: StringMode::StartsWith,
        },
    )
}

/// A search of `types` with the given filter groups and a page size of 100.
fn query(types: &[&str], filters: Vec<Vec<Condition>>) -> SearchQuery {
    SearchQuery {
        types: types.iter().map(|t| (*t).to_owned()).collect(),
        filters,
        count: 100,
        ..SearchQuery::default()
    }
}

fn sorted_by(mut query: SearchQuery, keys: &[(SortParam, bool)]) -> SearchQuery {
    query.sort = keys
        .iter()
        .map(|(param, descending)| SortKey {
            param: param.clone(),
            descending: *descending,
        })
        .collect();
    query
}

fn param_key(code: &str, kind: ParamKind) -> SortParam {
    SortParam::Param {
        code: code.to_owned(),
        kind,
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers that run store calls and fail the scenario on errors.

async fn write(store: &dyn Store, ops: Vec<WriteOp>) -> Vec<WriteOutcome> {
    match store.write(ops).await {
        Ok(outcomes) => outcomes,
        Err(error) => panic!("write failed: {error:?}"),
    }
}

async fn write_one(store: &dyn Store, op: WriteOp) -> WriteOutcome {
    let mut outcomes = write(store, vec![op]).await;
    assert_eq!(outcomes.len(), 1, "one outcome per operation");
    outcomes.remove(0)
}

async fn create_all(store: &dyn Store, writes: Vec<ResourceWrite>) -> Vec<StoredResource> {
    write(store, writes.into_iter().map(create).collect())
        .await
        .into_iter()
        .map(|outcome| match outcome {
            WriteOutcome::Created(resource) => resource,
            other => panic!("expected Created, got {other:?}"),
        })
        .collect()
}

async fn search(store: &dyn Store, query: &SearchQuery) -> SearchPage {
    match store.search(query).await {
        Ok(page) => page,
        Err(error) => panic!("search failed: {error:?}\nquery: {query:?}"),
    }
}

/// The ids of the matches of one page, in order.
async fn ids(store: &dyn Store, query: &SearchQuery) -> Vec<String> {
    ids_of(&search(store, query).await.matches)
}

fn ids_of(resources: &[StoredResource]) -> Vec<String> {
    resources.iter().map(|r| r.id.clone()).collect()
}

/// The ids of the matches, sorted: for searches whose order is not the point.
async fn id_set(store: &dyn Store, query: &SearchQuery) -> Vec<String> {
    let mut ids = ids(store, query).await;
    ids.sort();
    ids
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Follows `next` links from the first page and returns every page's ids.
async fn all_pages(store: &dyn Store, mut query: SearchQuery) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    loop {
        let page = search(store, &query).await;
        pages.push(ids_of(&page.matches));
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => return pages,
        }
        assert!(pages.len() < 1000, "paging does not end");
    }
}

fn body(resource: &StoredResource) -> Value {
    serde_json::from_str(&resource.json)
        .unwrap_or_else(|error| panic!("stored JSON does not parse: {error}: {}", resource.json))
}

/// Lets the wall clock move, so the next write gets a later `last_updated`.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(3)).await;
}

// ---------------------------------------------------------------------------------------------
// Writes and reads.

async fn create_read_vread(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let outcome = write_one(store, create(patient("p1", vec![]))).await;
    let WriteOutcome::Created(created) = outcome else {
        panic!("expected Created, got {outcome:?}");
    };
    assert_eq!(
        (
            created.resource_type.as_str(),
            created.id.as_str(),
            created.version,
            created.deleted
        ),
        ("Patient", "p1", 1, false)
    );
    assert_eq!(body(&created)["id"], "p1");

    let read = store.read("Patient", "p1").await.expect("read");
    assert_eq!(read.as_ref(), Some(&created));
    let vread = store.vread("Patient", "p1", 1).await.expect("vread");
    assert_eq!(vread.as_ref(), Some(&created));

    assert_eq!(store.vread("Patient", "p1", 2).await.expect("vread"), None);
    assert_eq!(store.read("Patient", "absent").await.expect("read"), None);
    assert_eq!(store.read("Observation", "p1").await.expect("read"), None);
}

async fn versions_increment(store: Arc<dyn Store>) {
    let store = store.as_ref();
    write_one(store, create(patient("p1", vec![]))).await;
    for expected in 2..=4 {
        let outcome = write_one(store, update(patient("p1", vec![]), None)).await;
        let WriteOutcome::Updated(updated) = outcome else {
            panic!("expected Updated, got {outcome:?}");
        };
        assert_eq!(updated.version, expected);
    }
    let current = store
        .read("Patient", "p1")
        .await
        .expect("read")
        .expect("present");
    assert_eq!(current.version, 4);
    for version in 1..=4u64 {
        let old = store
            .vread("Patient", "p1", version)
            .await
            .expect("vread")
            .unwrap_or_else(|| panic!("version {version} missing"));
        assert_eq!(old.version, version);
        assert_eq!(body(&old)["meta"]["versionId"], version.to_string());
    }
}

async fn update_if_match(store: Arc<dyn Store>) {
    let store = store.as_ref();
    write_one(store, create(patient("p1", vec![]))).await;
    let outcome = write_one(store, update(patient("p1", vec![]), Some(1))).await;
    assert!(
        matches!(&outcome, WriteOutcome::Updated(r) if r.version == 2),
        "{outcome:?}"
    );

    let stale = store
        .write(vec![update(patient("p1", vec![]), Some(1))])
        .await;
    assert!(
        matches!(
            stale,
            Err(StoreError::VersionConflict {
                op: 0,
                expected: 1,
                actual: Some(2)
            })
        ),
        "{stale:?}"
    );
    let absent = store
        .write(vec![update(patient("absent", vec![]), Some(1))])
        .await;
    assert!(
        matches!(
            absent,
            Err(StoreError::VersionConflict {
                op: 0,
                expected: 1,
                actual: None
            })
        ),
        "{absent:?}"
    );
    let current = store
        .read("Patient", "p1")
        .await
        .expect("read")
        .expect("present");
    assert_eq!(current.version, 2, "a failed if-match writes nothing");

    // A delete with a stale If-Match fails the same way; a fresh one succeeds.
    let stale_delete = store.write(vec![delete("Patient", "p1", Some(1))]).await;
    assert!(
        matches!(stale_delete, Err(StoreError::VersionConflict { .. })),
        "{stale_delete:?}"
    );
    let outcome = write_one(store, delete("Patient", "p1", Some(2))).await;
    assert!(
        matches!(outcome, WriteOutcome::Deleted { version: 3, .. }),
        "{outcome:?}"
    );
}

async fn if_match_conflict_names_the_operation(store: Arc<dyn Store>) {
    let store = store.as_ref();
    create_all(store, vec![patient("a", vec![]), patient("b", vec![])]).await;
    let result = store
        .write(vec![
            update(patient("a", vec![]), Some(1)),
            update(patient("b", vec![]), Some(7)),
        ])
        .await;
    assert!(
        matches!(
            result,
            Err(StoreError::VersionConflict {
                op: 1,
                expected: 7,
                actual: Some(1)
            })
        ),
        "{result:?}"
    );
    let a = store
        .read("Patient", "a")
        .await
        .expect("read")
        .expect("present");
    assert_eq!(a.version, 1, "the whole call rolled back");
}

async fn create_on_update(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let outcome = write_one(store, update(patient("new", vec![]), None)).await;
    assert!(
        matches!(&outcome, WriteOutcome::Created(r) if r.version == 1 && r.id == "new"),
        "{outcome:?}"
    );
    assert!(store.read("Patient", "new").await.expect("read").is_some());
}

async fn delete_marks_and_recreate(store: Arc<dyn Store>) {
    let store = store.as_ref();
    write_one(store, create(patient("p1", vec![]))).await;
    let outcome = write_one(store, delete("Patient", "p1", None)).await;
    let WriteOutcome::Deleted {
        version,
        last_updated,
    } = outcome
    else {
        panic!("expected Deleted, got {outcome:?}");
    };
    assert_eq!(version, 2);

    let marker = store
        .read("Patient", "p1")
        .await
        .expect("read")
        .expect("marker");
    assert!(marker.deleted);
    assert_eq!(
        (marker.version, marker.last_updated, marker.json.as_str()),
        (2, last_updated, "")
    );
    let deleted_version = store.vread("Patient", "p1", 2).await.expect("vread");
    assert!(deleted_version.is_some_and(|r| r.deleted));
    let first = store.vread("Patient", "p1", 1).await.expect("vread");
    assert!(first.is_some_and(|r| !r.deleted && body(&r)["id"] == "p1"));

    assert_eq!(
        write_one(store, delete("Patient", "p1", None)).await,
        WriteOutcome::NotFound,
        "deleting a deleted resource"
    );
    assert_eq!(
        write_one(store, delete("Patient", "absent", None)).await,
        WriteOutcome::NotFound,
        "deleting an absent resource"
    );
    assert_eq!(
        store.read("Patient", "absent").await.expect("read"),
        None,
        "a NotFound delete writes nothing"
    );

    let outcome = write_one(store, create(patient("p1", vec![]))).await;
    assert!(
        matches!(&outcome, WriteOutcome::Created(r) if r.version == 3 && !r.deleted),
        "re-create continues the version sequence: {outcome:?}"
    );

    write_one(store, create(patient("p2", vec![]))).await;
    write_one(store, delete("Patient", "p2", None)).await;
    let outcome = write_one(store, update(patient("p2", vec![]), None)).await;
    assert!(
        matches!(&outcome, WriteOutcome::Created(r) if r.version == 3),
        "update after delete creates: {outcome:?}"
    );
}

async fn create_existing_id_is_duplicate(store: Arc<dyn Store>) {
    let store = store.as_ref();
    write_one(store, create(patient("p1", vec![]))).await;
    let again = store.write(vec![create(patient("p1", vec![]))]).await;
    assert!(matches!(again, Err(StoreError::Duplicate(_))), "{again:?}");

    let twice = store
        .write(vec![
            create(patient("p2", vec![])),
            create(patient("p2", vec![])),
        ])
        .await;
    assert!(matches!(twice, Err(StoreError::Duplicate(_))), "{twice:?}");
    assert_eq!(store.read("Patient", "p2").await.expect("read"), None);
}

async fn empty_id_is_invalid(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let result = store.write(vec![create(patient("", vec![]))]).await;
    assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
}

async fn failed_call_leaves_nothing_behind(store: Arc<dyn Store>) {
    let store = store.as_ref();
    write_one(
        store,
        create(patient("existing", vec![token("tag", None, "old")])),
    )
    .await;
    let result = store
        .write(vec![
            create(patient("a", vec![token("tag", None, "t")])),
            update(patient("existing", vec![token("tag", None, "t")]), None),
            delete("Patient", "existing", None),
            update(patient("c", vec![]), Some(5)),
        ])
        .await;
    assert!(
        matches!(result, Err(StoreError::VersionConflict { op: 3, .. })),
        "{result:?}"
    );
    assert_eq!(store.read("Patient", "a").await.expect("read"), None);
    let existing = store
        .read("Patient", "existing")
        .await
        .expect("read")
        .expect("present");
    assert_eq!((existing.version, existing.deleted), (1, false));
    let tagged = query(&["Patient"], vec![vec![code_is("tag", "t")]]);
    assert_eq!(ids(store, &tagged).await, Vec::<String>::new());
    let old = query(&["Patient"], vec![vec![code_is("tag", "old")]]);
    assert_eq!(ids(store, &old).await, strings(&["existing"]));
    let history = store
        .history(&HistoryQuery {
            scope: HistoryScope::System,
            since: None,
            before: None,
            count: 100,
            cursor: None,
            with_total: true,
        })
        .await
        .expect("history");
    assert_eq!(history.total, Some(1));

    // The next call works normally.
    let outcomes = write(
        store,
        vec![
            create(patient("a", vec![token("tag", None, "t")])),
            create(patient("b", vec![token("tag", None, "t")])),
        ],
    )
    .await;
    assert_eq!(outcomes.len(), 2);
    assert_eq!(id_set(store, &tagged).await, strings(&["a", "b"]));
}

async fn operations_in_one_call_see_each_other(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let outcomes = write(
        store,
        vec![
            create(patient("x", vec![token("identifier", None, "42")])),
            update(patient("x", vec![]), Some(1)),
            WriteOp::Create {
                write: patient("y", vec![]),
                if_none_exist: Some(Box::new(query(
                    &["Patient"],
                    vec![vec![code_is("identifier", "7")]],
                ))),
            },
            create(patient("z", vec![token("identifier", None, "7")])),
            WriteOp::Create {
                write: patient("w", vec![]),
                if_none_exist: Some(Box::new(query(
                    &["Patient"],
                    vec![vec![code_is("identifier", "7")]],
                ))),
            },
        ],
    )
    .await;
    assert!(matches!(&outcomes[0], WriteOutcome::Created(r) if r.version == 1));
    assert!(matches!(&outcomes[1], WriteOutcome::Updated(r) if r.version == 2));
    assert!(matches!(&outcomes[2], WriteOutcome::Created(r) if r.id == "y"));
    assert!(
        matches!(&outcomes[4], WriteOutcome::Existing(r) if r.id == "z"),
        "a conditional create sees a resource created earlier in the call: {:?}",
        outcomes[4]
    );
    assert_eq!(store.read("Patient", "w").await.expect("read"), None);
}

async fn concurrent_if_match_updates_one_wins(store: Arc<dyn Store>) {
    write_one(store.as_ref(), create(patient("p1", vec![]))).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            store
                .write(vec![update(patient("p1", vec![]), Some(1))])
                .await
        });
    }
    let (mut won, mut conflicts) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        match result.expect("task") {
            Ok(_) => won += 1,
            Err(StoreError::VersionConflict {
                expected: 1,
                actual: Some(2),
                ..
            }) => conflicts += 1,
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!((won, conflicts), (1, 9));
    let current = store
        .read("Patient", "p1")
        .await
        .expect("read")
        .expect("present");
    assert_eq!(current.version, 2);
}

async fn concurrent_conditional_creates_make_one(store: Arc<dyn Store>) {
    let condition = query(&["Patient"], vec![vec![code_is("identifier", "mrn-1")]]);
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..20 {
        let store = Arc::clone(&store);
        let condition = condition.clone();
        tasks.spawn(async move {
            store
                .write(vec![WriteOp::Create {
                    write: patient(
                        &format!("p{task}"),
                        vec![token("identifier", None, "mrn-1")],
                    ),
                    if_none_exist: Some(Box::new(condition)),
                }])
                .await
        });
    }
    let mut created = Vec::new();
    let mut existing = Vec::new();
    while let Some(result) = tasks.join_next().await {
        let outcomes = result.expect("task").expect("write");
        match outcomes.into_iter().next() {
            Some(WriteOutcome::Created(resource)) => created.push(resource.id),
            Some(WriteOutcome::Existing(resource)) => existing.push(resource.id),
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(created.len(), 1, "exactly one create wins: {created:?}");
    assert_eq!(existing.len(), 19);
    assert!(existing.iter().all(|id| *id == created[0]));
    assert_eq!(ids(store.as_ref(), &condition).await, created);
}

async fn conditional_create_returns_existing(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let first = create_all(
        store,
        vec![patient(
            "p1",
            vec![token("identifier", Some("urn:mrn"), "1")],
        )],
    )
    .await;
    let condition = query(
        &["Observation"], // The store searches the created resource's type whatever is given.
        vec![vec![matching(
            "identifier",
            ValueTest::Token {
                system: TokenSystem::Is("urn:mrn".to_owned()),
                code: Some("1".to_owned()),
            },
        )]],
    );
    let outcome = write_one(
        store,
        WriteOp::Create {
            write: patient("p2", vec![token("identifier", Some("urn:mrn"), "1")]),
            if_none_exist: Some(Box::new(condition.clone())),
        },
    )
    .await;
    assert_eq!(outcome, WriteOutcome::Existing(first[0].clone()));
    assert_eq!(store.read("Patient", "p2").await.expect("read"), None);

    let no_match = query(&["Patient"], vec![vec![code_is("identifier", "2")]]);
    let outcome = write_one(
        store,
        WriteOp::Create {
            write: patient("p3", vec![]),
            if_none_exist: Some(Box::new(no_match)),
        },
    )
    .await;
    assert!(matches!(outcome, WriteOutcome::Created(_)), "{outcome:?}");
}

async fn meta_is_stamped(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let mut without_meta = patient("p1", vec![]);
    without_meta.body = json!({ "resourceType": "Patient", "id": "p1", "active": true });
    let mut with_meta = patient("p2", vec![]);
    with_meta.body = json!({
        "resourceType": "Patient",
        "id": "p2",
        "meta": { "profile": ["http://example.org/p"], "versionId": "99" },
        "active": false
    });
    let created = create_all(store, vec![without_meta, with_meta]).await;

    let first = body(&created[0]);
    let keys: Vec<&str> = first
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["resourceType", "id", "meta", "active"]);
    assert_eq!(first["meta"]["versionId"], "1");
    assert_eq!(
        first["meta"]["lastUpdated"],
        created[0].last_updated.to_fhir_instant()
    );

    let second = body(&created[1]);
    let meta_keys: Vec<&str> = second["meta"]
        .as_object()
        .expect("meta object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(meta_keys, ["profile", "versionId", "lastUpdated"]);
    assert_eq!(second["meta"]["versionId"], "1");
    assert_eq!(second["meta"]["profile"][0], "http://example.org/p");
    assert_eq!(second["active"], false);

    let outcome = write_one(store, update(patient("p1", vec![]), None)).await;
    let WriteOutcome::Updated(updated) = outcome else {
        panic!("expected Updated, got {outcome:?}");
    };
    assert_eq!(body(&updated)["meta"]["versionId"], "2");
    let read = store
        .read("Patient", "p1")
        .await
        .expect("read")
        .expect("present");
    assert_eq!(
        read.json, updated.json,
        "the stored JSON is the stamped one"
    );
}

async fn update_replaces_index_entries(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let mut first = patient(
        "p1",
        vec![token("code", None, "old"), string("name", "Ann")],
    );
    first.compartments = vec!["p1".to_owned()];
    write_one(store, create(first)).await;
    write_one(
        store,
        update(patient("p1", vec![token("code", None, "new")]), None),
    )
    .await;
    let old = query(&["Patient"], vec![vec![code_is("code", "old")]]);
    let new = query(&["Patient"], vec![vec![code_is("code", "new")]]);
    let name = query(&["Patient"], vec![vec![starts_with("name", "ann")]]);
    assert_eq!(ids(store, &old).await, Vec::<String>::new());
    assert_eq!(ids(store, &name).await, Vec::<String>::new());
    assert_eq!(ids(store, &new).await, strings(&["p1"]));
    let mut in_compartment = query(&["Patient"], vec![]);
    in_compartment.compartment = Some("p1".to_owned());
    assert_eq!(ids(store, &in_compartment).await, Vec::<String>::new());

    write_one(store, delete("Patient", "p1", None)).await;
    assert_eq!(ids(store, &new).await, Vec::<String>::new());
    assert_eq!(
        ids(store, &query(&["Patient"], vec![])).await,
        Vec::<String>::new()
    );
    let missing = query(
        &["Patient"],
        vec![vec![Condition::Missing {
            param: "code".to_owned(),
            kind: ParamKind::Token,
            missing: true,
        }]],
    );
    assert_eq!(
        ids(store, &missing).await,
        Vec::<String>::new(),
        "deleted resources match nothing"
    );
}

// ---------------------------------------------------------------------------------------------
// Value tests.

async fn token_system_variants(store: Arc<dyn Store>) {
    let store = store.as_ref();
    create_all(
        store,
        vec![
            patient("a", vec![token("identifier", Some("http://a"), "1")]),
            patient("b", vec![token("identifier", Some("http://b"), "1")]),
            patient("c", vec![token("identifier", None, "1")]),
            patient("d", vec![token("identifier", Some("http://a"), "2")]),
            patient("e", vec![token("other", Some("http://a"), "1")]),
        ],
    )
    .await;
    let check = |system: TokenSystem, code: Option<&str>| {
        query(
            &["Patient"],
            vec![vec![matching(
                "identifier",
                ValueTest::Token {
                    system,
                    code: code.map(str::to_owned),
                },
            )]],
        )
    };
    let is = |system: &str| TokenSystem::Is(system.to_owned());
    assert_eq!(
        id_set(store, &check(TokenSystem::Any, Some("1"))).await,
        strings(&["a", "b", "c"])
    );
    assert_eq!(
        id_set(store, &check(TokenSystem::None, Some("1"))).await,
        strings(&["c"])
    );
    assert_eq!(
        id_set(store, &check(is("http://a"), Some("1"))).await,
        strings(&["a"])
    );
    assert_eq!(
        id_set(store, &check(is("http://a"), None)).await,
        strings(&["a", "d"])
    );
    assert_eq!(
        id_set(store, &check(is("http://c"), Some("1"))).await,
        Vec::<String>::new()
    );
    assert_eq!(
        id_set(store, &check(TokenSystem::Any, Some("3"))).await,
        Vec::<String>::new()
    );
}

async fn token_text(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let with_text = |id: &str, text: &str| {
        patient(
            id,
            vec![entry(
                "code",
                IndexValue::Token {
                    system: Some("http://snomed.info/sct".to_owned()),
                    code: Some(format!("c-{id}")),
                    text: Some(text.to_owned()),
                },
            )],
        )
    };
    create_all(
        store,
        vec![
            with_text("a", "hypertension"),
            with_text("b", "hyperlipidaemia"),
            with_text("c", "essential hypertension"),
        ],
    )
    .await;
    let text = |value: &str| {
        query(
            &["Patient"],
            vec![vec![matching(
                "code",
                ValueTest::TokenText(value.to_owned()),
            )]],
        )
    };
    assert_eq!(id_set(store, &text("hyper")).await, strings(&["a", "b"]));
    assert_eq!(id_set(store, &text("hypert")).await, strings(&["a"]));
    assert_eq!(id_set(store, &text("tension")).await, Vec::<String>::new());
}

async fn string_modes(store: Arc<dyn Store>) {
    let store = store.as_ref();
    create_all(
        store,
        vec![
            patient("a", vec![string("family", "Smith")]),
            patient("b", vec![string("family", "Smithson")]),
            patient("c", vec![string("family", "Blacksmith")]),
            patient("d", vec![string("given", "Smith")]),
            patient("e", vec![string("family", "smith")]),
        ],
    )
    .await;
    let family = |value: &str, mode: StringMode| {
        query(
            &["Patient"],
            vec![vec![matching(
                "family",
                ValueTest::String {
                    value: value.to_owned(),
                    mode,
                },
            )]],
        )
    };
    assert_eq!(
        id_set(store, &family("smith", StringMode::StartsWith)).await,
        strings(&["a", "b", "e"])
    );
    assert_eq!(
        id_set(store, &family("Smith", StringMode::Exact)).await,
        strings(&["a"])
    );
    assert_eq!(
        id_set(store, &family("smith", StringMode::Exact)).await,
        strings(&["e"])
    );
    assert_eq!(
        id_set(store, &family("smith", StringMode::Contains)).await,
        strings(&["a", "b", "c", "e"])
    );
    assert_eq!(
        id_set(store, &family("ackSm", StringMode::Contains)).await,
        Vec::<String>::new(),
        "contains compares the normalised value"
    );
    assert_eq!(
        id_set(store, &family("%", StringMode::Contains)).await,
        Vec::<String>::new(),
        "wildcard characters are literal"
    );
}

/// Resources with one `date` range each, for the prefix tables.
async fn date_prefixes(store: Arc<dyn Store>) {
    let store = store.as_ref();
    create_all(
        store,
        vec![
            patient("d1", vec![date("birthdate", 100, 199)]),
            patient("d2", vec![date("birthdate", 200, 299)]),
            patient("d3", vec![date("birthdate", 300, 399)]),
            patient("d4", vec![date("birthdate", 150, 349)]),
        ],
    )
    .await;
    let cases: [(Prefix, &[&str]); 9] = [
        (Prefix::Eq, &["d2"]),
        (Prefix::Ne, &["d1", "d3", "d4"]),
        (Prefix::Gt, &["d3", "d4"]),
        (Prefix::Lt, &["d1", "d4"]),
        (Prefix::Ge, &["d2", "d3", "d4"]),
        (Prefix::Le, &["d1", "d2", "d4"]),
        (Prefix::Sa, &["d3"]),
        (Prefix::Eb, &["d1"]),
        (Prefix::Ap, &["d2", "d4"]),
    ];
    for (prefix, expected) in cases {
        let search = query(
            &["Patient"],
            vec![vec![matching(
                "birthdate",
                ValueTest::Date {
                    prefix,
                    range: DateBound {
                        low: 200,
                        high: 299,
                    },
                },
            )]],
        );
        assert_eq!(
            id_set(store, &search).await,
            strings(expected),
            "date {prefix:?}"
        );
    }
}

async fn number_prefixes(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let number = |id: &str, value: f64| {
        resource(
            "RiskAssessment",
            id,
            vec![entry("probability", IndexValue::Number { value })],
        )
    };
    create_all(
        store,
        vec![number("n1", 1.0), number("n2", 5.4), number("n3", 10.0)],
    )
    .await;
    let cases: [(Prefix, &[&str]); 9] = [
        (Prefix::Eq, &["n2"]),
        (Prefix::Ne, &["n1", "n3"]),
        (Prefix::Gt, &["n3"]),
        (Prefix::Lt, &["n1"]),
        (Prefix::Ge, &["n2", "n3"]),
        (Prefix::Le, &["n1", "n2"]),
        (Prefix::Sa, &["n3"]),
        (Prefix::Eb, &["n1"]),
        (Prefix::Ap, &["n2"]),
    ];
    for (prefix, expected) in cases {
        let search = query(
            &["RiskAssessment"],
            vec![vec![matching(
                "probability",
                ValueTest::Number {
                    prefix,
                    low: 5.35,
                    high: 5.449_999,
                },
            )]],
        );
        assert_eq!(
            id_set(store, &search).await,
            strings(expected),
            "number {prefix:?}"
        );
    }
}

async fn quantity_prefixes_and_units(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let quantity = |id: &str, value: f64, system: Option<&str>, code: Option<&str>, unit: &str| {
        observation(
            id,
            vec![entry(
                "value-quantity",
                IndexValue::Quantity {
                    value,
                    system: system.map(str::to_owned),
                    code: code.map(str::to_owned),
                    unit: Some(unit.to_owned()),
                },
            )],
        )
    };
    let ucum = Some("http://unitsofmeasure.org");
    create_all(
        store,
        vec![
            quantity("q1", 5.4, ucum, Some("mg"), "mg"),
            quantity("q2", 5.4, ucum, Some("g"), "gram"),
            quantity("q3", 5.4, None, None, "mg"),
            quantity("q4", 10.0, ucum, Some("mg"), "mg"),
        ],
    )
    .await;
    let search = |prefix: Prefix, system: Option<&str>, code: Option<&str>| {
        query(
            &["Observation"],
            vec![vec![matching(
                "value-quantity",
                ValueTest::Quantity {
                    prefix,
                    low: 5.35,
                    high: 5.449_999,
                    system: system.map(str::to_owned),
                    code: code.map(str::to_owned),
                },
            )]],
        )
    };
    assert_eq!(
        id_set(store, &search(Prefix::Eq, None, None)).await,
        strings(&["q1", "q2", "q3"])
    );
    assert_eq!(
        id_set(store, &search(Prefix::Eq, ucum, Some("mg"))).await,
        strings(&["q1"])
    );
    assert_eq!(
        id_set(store, &search(Prefix::Eq, None, Some("mg"))).await,
        strings(&["q1", "q3"]),
        "a code without a system matches the coded unit or the unit text"
    );
    assert_eq!(
        id_set(store, &search(Prefix::Gt, ucum, Some("mg"))).await,
        strings(&["q4"])
    );
    assert_eq!(
        id_set(store, &search(Prefix::Ge, None, None)).await,
        strings(&["q1", "q2", "q3", "q4"])
    );
    assert_eq!(
        id_set(store, &search(Prefix::Lt, None, None)).await,
        Vec::<String>::new()
    );
}

async fn reference_forms(store: Arc<dyn Store>) {
    let store = store.as_ref();
    create_all(
        store,
        vec![
            observation("o1", vec![reference("subject", "Patient", "p1")]),
            observation("o2", vec![reference("subject", "Group", "p1")]),
            observation(
                "o3",
                vec![entry(
                    "subject",
                    IndexValue::Reference {
                        target_type: None,
                        target_id: None,
                        url: Some("http://elsewhere.org/fhir/Patient/9".to_owned()),
                    },
                )],
            ),
            observation("o4", vec![reference("performer", "Patient", "p1")]),
        ],
    )
    .await;
    let subject = |target_type: Option<&str>, id: Option<&str>, url: Option<&str>| {
        query(
            &["Observation"],
            vec![vec![matching(
                "subject",
                ValueTest::Reference {
                    target_type: target_type.map(str::to_owned),
                    id: id.map(str::to_owned),
                    url: url.map(str::to_owned),
                },
            )]],
        )
    };
    assert_eq!(
        id_set(store, &subject(Some("Patient"), Some("p1"), None)).await,
        strings(&["o1"])
    );
    assert_eq!(
        id_set(store, &subject(None, Some("p1"), None)).await,
        strings(&["o1", "o2"])
    );
    assert_eq!(
        id_set(store, &subject(Some("Group"), Some("p1"), None)).await,
        strings(&["o2"])
    );
    assert_eq!(
        id_set(
            store,
            &subject(None, None, Some("http://elsewhere.org/fhir/Patient/9"))
        )
        .await,
        strings(&["o3"])
    );
    assert_eq!(
        id_set(store, &subject(Some("Patient"), Some("p2"), None)).await,
        Vec::<String>::new()
    );
}

async fn uri_modes(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let with_url = |id: &str, url: &str| {
        resource(
            "ValueSet",
            id,
            vec![entry(
                "url",
                IndexValue::Uri {
                    value: url.to_owned(),
                },
            )],
        )
    };
    create_all(
        store,
        vec![
            with_url("a", "http://acme.org/fhir/ValueSet/a"),
            with_url("b", "http://acme.org/fhir/ValueSet/b"),
            with_url("c", "http://acme.org/other"),
            with_url("root", "http://acme.org"),
        ],
    )
    .await;
    let url = |value: &str, mode: UriMode| {
        query(
            &["ValueSet"],
            vec![vec![matching(
                "url",
                ValueTest::Uri {
                    value: value.to_owned(),
                    mode,
                },
            )]],
        )
    };
    assert_eq!(
        id_set(
            store,
            &url("http://acme.org/fhir/ValueSet/a", UriMode::Exact)
        )
        .await,
        strings(&["a"])
    );
    assert_eq!(
        id_set(store, &url("http://acme.org/fhir", UriMode::Exact)).await,
        Vec::<String>::new()
    );
    assert_eq!(
        id_set(store, &url("http://acme.org/fhir", UriMode::Below)).await,
        strings(&["a", "b"])
    );
    assert_eq!(
        id_set(
            store,
            &url("http://acme.org/fhir/ValueSet/a/_history/2", UriMode::Above)
        )
        .await,
        strings(&["a", "root"])
    );
}

async fn missing(store: Arc<dyn Store>) {
    let store = store.as_ref();
    create_all(
        store,
        vec![
            patient("with", vec![date("birthdate", 1, 2)]),
            patient("without", vec![token("gender", None, "male")]),
            patient("other-param", vec![date("deathdate", 1, 2)]),
        ],
    )
    .await;
    let missing = |missing: bool| {
        query(
            &["Patient"],
            vec![vec![Condition::Missing {
                param: "birthdate".to_owned(),
                kind: ParamKind::Date,
                missing,
            }]],
        )
    };
    assert_eq!(
        id_set(store, &missing(true)).await,
        strings(&["other-param", "without"])
    );
    assert_eq!(id_set(store, &missing(false)).await, strings(&["with"]));
}

async fn not(store: Arc<dyn Store>) {
    let store = store.as_ref();
    create_all(
        store,
        vec![
            patient("m", vec![token("gender", None, "male")]),
            patient("f", vec![token("gender", None, "female")]),
            patient("none", vec![]),
            patient(
                "both",
                vec![
                    token("gender", None, "male"),
                    token("gender", None, "other"),
                ],
            ),
        ],
    )
    .await;
    let not_male = query(
        &["Patient"],
        vec![vec![Condition::Not(Box::new(code_is("gender", "male")))]],
    );
    assert_eq!(id_set(store, &not_male).await, strings(&["f", "none"]));
}

async fn and_of_or_groups(store: Arc<dyn Store>) {
    let store = store.as_ref();
    create_all(
        store,
        vec![
            patient(
                "af",
                vec![token("gender", None, "female"), string("name", "Alice")],
            ),
            patient(
                "am",
                vec![token("gender", None, "male"), string("name", "Adam")],
            ),
            patient(
                "ao",
                vec![token("gender", None, "other"), string("name", "Avery")],
            ),
            patient(
                "bf",
                vec![token("gender", None, "female"), string("name", "Beth")],
            ),
        ],
    )
    .await;
    let search = query(
        &["Patient"],
        vec![
            vec![code_is("gender", "female"), code_is("gender", "male")],
            vec![starts_with("name", "a")],
        ],
    );
    assert_eq!(id_set(store, &search).await, strings(&["af", "am"]));
    let nothing = query(
        &["Patient"],
        vec![
            vec![code_is("gender", "female")],
            vec![code_is("gender", "male")],
        ],
    );
    assert_eq!(id_set(store, &nothing).await, Vec::<String>::new());
}

async fn chain(store: Arc<dyn Store>) {
    let store = store.as_ref();
    create_all(
        store,
        vec![
            patient("p1", vec![string("name", "Alice")]),
            patient("p2", vec![string("name", "Bob")]),
            patient("p3", vec![string("name", "Alicia")]),
            resource("Group", "g1", vec![string("name", "Alice club")]),
            observation("o1", vec![reference("subject", "Patient", "p1")]),
            observation("o2", vec![reference("subject", "Patient", "p2")]),
            observation("o3", vec![reference("subject", "Patient", "p3")]),
            observation("o4", vec![reference("subject", "Group", "g1")]),
            observation("o5", vec![reference("subject", "Patient", "nowhere")]),
        ],
    )
    .await;
    write_one(store, delete("Patient", "p3", None)).await;
    let chained = |target_types: &[&str]| {
        query(
            &["Observation"],
            vec![vec![Condition::Chain {
                reference: "subject".to_owned(),
                target_types: target_types.iter().map(|t| (*t).to_owned()).collect(),
                inner: Box::new(starts_with("name", "ali")),
            }]],
        )
    };
    assert_eq!(
        id_set(store, &chained(&["Patient"])).await,
        strings(&["o1"]),
        "deleted targets do not match"
    );
    assert_eq!(
        id_set(store, &chained(&["Patient", "Group"])).await,
        strings(&["o1", "o4"])
    );
}

async fn has(store: Arc<dyn Store>) {
    let store = store.as_ref();
    create_all(
        store,
        vec![
            patient("p1", vec![]),
            patient("p2", vec![]),
            patient("p3", vec![]),
            observation(
                "o1",
                vec![
                    reference("subject", "Patient", "p1"),
                    token("code", None, "1234"),
                ],
            ),
            observation(
                "o2",
                vec![
                    reference("subject", "Patient", "p2"),
                    token("code", None, "9999"),
                ],
            ),
            observation(
                "o3",
                vec![
                    reference("performer", "Patient", "p3"),
                    token("code", None, "1234"),
                ],
            ),
            observation(
                "o4",
                vec![
                    reference("subject", "Patient", "p3"),
                    token("code", None, "1234"),
                ],
            ),
        ],
    )
    .await;
    write_one(store, delete("Observation", "o4", None)).await;
    let search = query(
        &["Patient"],
        vec![vec![Condition::Has {
            source_type: "Observation".to_owned(),
            reference_param: "subject".to_owned(),
            inner: Box::new(code_is("code", "1234")),
        }]],
    );
    assert_eq!(id_set(store, &search).await, strings(&["p1"]));
}

async fn id_condition(store: Arc<dyn Store>) {
    let store = store.as_ref();
    create_all(
        store,
        vec![
            patient("a", vec![]),
            patient("b", vec![]),
            patient("c", vec![]),
            observation("a", vec![]),
        ],
    )
    .await;
    let search = query(
        &["Patient"],
        vec![vec![
            Condition::Id("a".to_owned()),
            Condition::Id("c".to_owned()),
        ]],
    );
    assert_eq!(id_set(store, &search).await, strings(&["a", "c"]));
}

async fn last_updated(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let first = create_all(store, vec![patient("early", vec![])]).await;
    tick().await;
    let second = create_all(store, vec![patient("late", vec![])]).await;
    let (t1, t2) = (first[0].last_updated.0, second[0].last_updated.0);
    assert!(t1 < t2, "the clock moved between the writes");
    let search = |prefix: Prefix, low: i64, high: i64| {
        query(
            &["Patient"],
            vec![vec![Condition::LastUpdated {
                prefix,
                range: DateBound { low, high },
            }]],
        )
    };
    assert_eq!(
        id_set(store, &search(Prefix::Ge, t2, t2)).await,
        strings(&["late"])
    );
    assert_eq!(
        id_set(store, &search(Prefix::Lt, t2, t2)).await,
        strings(&["early"])
    );
    assert_eq!(
        id_set(store, &search(Prefix::Eq, t1, t1)).await,
        strings(&["early"])
    );
    assert_eq!(
        id_set(store, &search(Prefix::Eq, t1, t2)).await,
        strings(&["early", "late"])
    );
    assert_eq!(
        id_set(store, &search(Prefix::Gt, t2, t2)).await,
        Vec::<String>::new()
    );
}

async fn compartment(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let in_compartments = |write: ResourceWrite, patients: &[&str]| ResourceWrite {
        compartments: patients.iter().map(|p| (*p).to_owned()).collect(),
        ..write
    };
    create_all(
        store,
        vec![
            in_compartments(patient("p1", vec![]), &["p1"]),
            in_compartments(patient("p2", vec![]), &["p2"]),
            in_compartments(observation("o1", vec![token("code", None, "x")]), &["p1"]),
            in_compartments(observation("o2", vec![token("code", None, "x")]), &["p2"]),
            in_compartments(
                observation("o3", vec![token("code", None, "y")]),
                &["p1", "p2"],
            ),
            observation("o4", vec![token("code", None, "x")]),
        ],
    )
    .await;
    let everything_of = |patient: &str, types: &[&str], filters: Vec<Vec<Condition>>| {
        let mut search = query(types, filters);
        search.compartment = Some(patient.to_owned());
        search
    };
    assert_eq!(
        id_set(store, &everything_of("p1", &["Observation"], vec![])).await,
        strings(&["o1", "o3"])
    );
    assert_eq!(
        id_set(
            store,
            &everything_of("p1", &["Observation"], vec![vec![code_is("code", "x")]])
        )
        .await,
        strings(&["o1"])
    );
    assert_eq!(
        id_set(store, &everything_of("p1", &[], vec![])).await,
        strings(&["o1", "o3", "p1"])
    );
    write_one(
        store,
        update(in_compartments(observation("o1", vec![]), &["p2"]), None),
    )
    .await;
    assert_eq!(
        id_set(store, &everything_of("p1", &["Observation"], vec![])).await,
        strings(&["o3"]),
        "an update replaces compartment membership"
    );
}

/// A resource in two patients' compartments: every kind of condition, sort and include works the
/// same from either patient's compartment and across patients, where it counts once.
async fn resource_of_several_patients(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let in_compartments = |write: ResourceWrite, patients: &[&str]| ResourceWrite {
        compartments: patients.iter().map(|p| (*p).to_owned()).collect(),
        ..write
    };
    create_all(
        store,
        vec![
            in_compartments(patient("p1", vec![string("name", "Alice")]), &["p1"]),
            in_compartments(patient("p2", vec![string("name", "Bob")]), &["p2"]),
            in_compartments(
                observation(
                    "shared",
                    vec![
                        token("code", None, "x"),
                        date("date", 20, 30),
                        reference("subject", "Patient", "p1"),
                        reference("performer", "Patient", "p2"),
                    ],
                ),
                &["p1", "p2"],
            ),
            in_compartments(
                observation(
                    "own",
                    vec![
                        token("code", None, "x"),
                        date("date", 10, 10),
                        reference("subject", "Patient", "p2"),
                    ],
                ),
                &["p2"],
            ),
        ],
    )
    .await;
    let within = |patient: Option<&str>, filters: Vec<Vec<Condition>>| {
        let mut search = query(&["Observation"], filters);
        search.compartment = patient.map(str::to_owned);
        search
    };
    for patient in [Some("p1"), Some("p2"), None] {
        let expected: &[&str] = if patient == Some("p1") {
            &["shared"]
        } else {
            &["own", "shared"]
        };
        assert_eq!(
            id_set(store, &within(patient, vec![vec![code_is("code", "x")]])).await,
            strings(expected),
            "token condition within {patient:?}"
        );
        assert_eq!(
            id_set(
                store,
                &within(
                    patient,
                    vec![vec![Condition::Not(Box::new(code_is("code", "y")))]]
                )
            )
            .await,
            strings(expected),
            ":not within {patient:?}"
        );
        assert_eq!(
            id_set(
                store,
                &within(
                    patient,
                    vec![vec![Condition::Missing {
                        param: "date".to_owned(),
                        kind: ParamKind::Date,
                        missing: false,
                    }]]
                )
            )
            .await,
            strings(expected),
            ":missing within {patient:?}"
        );
        let chained = within(
            patient,
            vec![vec![Condition::Chain {
                reference: "performer".to_owned(),
                target_types: vec!["Patient".to_owned()],
                inner: Box::new(starts_with("name", "bo")),
            }]],
        );
        assert_eq!(
            id_set(store, &chained).await,
            strings(&["shared"]),
            "chain within {patient:?}"
        );
        let mut counted = within(patient, vec![vec![code_is("code", "x")]]);
        counted.total = TotalMode::Accurate;
        assert_eq!(
            search(store, &counted).await.total,
            Some(expected.len() as u64),
            "each resource counts once within {patient:?}"
        );
        let by_date = sorted_by(
            within(patient, vec![]),
            &[(param_key("date", ParamKind::Date), true)],
        );
        assert_eq!(
            ids(store, &by_date).await,
            strings(
                expected
                    .iter()
                    .rev()
                    .copied()
                    .collect::<Vec<_>>()
                    .as_slice()
            ),
            "sorted by date, newest first, within {patient:?}"
        );
        let mut with_subjects = within(patient, vec![vec![Condition::Id("shared".to_owned())]]);
        with_subjects.includes = vec![Include {
            source_type: "Observation".to_owned(),
            param: "subject".to_owned(),
            target_type: None,
            iterate: false,
        }];
        let page = search(store, &with_subjects).await;
        assert_eq!(ids_of(&page.matches), strings(&["shared"]));
        assert_eq!(
            ids_of(&page.included),
            strings(&["p1"]),
            "included once within {patient:?}"
        );
    }
    write_one(
        store,
        update(
            in_compartments(
                observation("shared", vec![token("code", None, "y")]),
                &["p2"],
            ),
            None,
        ),
    )
    .await;
    assert_eq!(
        id_set(store, &within(Some("p1"), vec![vec![code_is("code", "y")]])).await,
        Vec::<String>::new(),
        "an update that leaves a compartment leaves nothing behind in it"
    );
    assert_eq!(
        id_set(store, &within(None, vec![vec![code_is("code", "y")]])).await,
        strings(&["shared"])
    );
    assert_eq!(
        id_set(store, &within(Some("p2"), vec![vec![code_is("code", "x")]])).await,
        strings(&["own"])
    );
}

async fn multiple_types_and_system_search(store: Arc<dyn Store>) {
    let store = store.as_ref();
    create_all(
        store,
        vec![
            patient("p", vec![token("_tag", Some("urn:t"), "demo")]),
            observation("o", vec![token("_tag", Some("urn:t"), "demo")]),
            resource("Encounter", "e", vec![token("_tag", Some("urn:t"), "demo")]),
            resource("Encounter", "e2", vec![]),
        ],
    )
    .await;
    let tagged = |types: &[&str]| query(types, vec![vec![code_is("_tag", "demo")]]);
    assert_eq!(
        id_set(store, &tagged(&["Patient", "Observation"])).await,
        strings(&["o", "p"])
    );
    assert_eq!(id_set(store, &tagged(&[])).await, strings(&["e", "o", "p"]));
    assert_eq!(
        id_set(store, &query(&[], vec![])).await,
        strings(&["e", "e2", "o", "p"])
    );
    let page = search(store, &query(&["Patient", "Encounter"], vec![])).await;
    let mut found: Vec<(String, String)> = page
        .matches
        .iter()
        .map(|r| (r.resource_type.clone(), r.id.clone()))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("Encounter".to_owned(), "e".to_owned()),
            ("Encounter".to_owned(), "e2".to_owned()),
            ("Patient".to_owned(), "p".to_owned())
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Sorting and paging.

async fn sort_by_id_and_last_updated(store: Arc<dyn Store>) {
    let store = store.as_ref();
    for id in ["b", "c", "a"] {
        create_all(store, vec![patient(id, vec![])]).await;
        tick().await;
    }
    let all = query(&["Patient"], vec![]);
    assert_eq!(
        ids(store, &all).await,
        strings(&["b", "c", "a"]),
        "storage order"
    );
    assert_eq!(
        ids(store, &sorted_by(all.clone(), &[(SortParam::Id, false)])).await,
        strings(&["a", "b", "c"])
    );
    assert_eq!(
        ids(store, &sorted_by(all.clone(), &[(SortParam::Id, true)])).await,
        strings(&["c", "b", "a"])
    );
    assert_eq!(
        ids(
            store,
            &sorted_by(all.clone(), &[(SortParam::LastUpdated, false)])
        )
        .await,
        strings(&["b", "c", "a"])
    );
    assert_eq!(
        ids(
            store,
            &sorted_by(all.clone(), &[(SortParam::LastUpdated, true)])
        )
        .await,
        strings(&["a", "c", "b"])
    );
    write_one(store, update(patient("b", vec![]), None)).await;
    assert_eq!(
        ids(store, &sorted_by(all, &[(SortParam::LastUpdated, true)])).await,
        strings(&["b", "a", "c"])
    );
}

async fn sort_by_param_with_missing_values(store: Arc<dyn Store>) {
    let store = store.as_ref();
    create_all(
        store,
        vec![
            patient("a", vec![date("birthdate", 300, 309)]),
            patient("b", vec![date("birthdate", 100, 109)]),
            patient("c", vec![]),
            patient("d", vec![date("birthdate", 200, 209)]),
            patient(
                "e",
                vec![date("birthdate", 50, 59), date("birthdate", 400, 409)],
            ),
            patient("f", vec![token("gender", None, "x")]),
        ],
    )
    .await;
    let by_birthdate = |descending: bool| {
        sorted_by(
            query(&["Patient"], vec![]),
            &[(param_key("birthdate", ParamKind::Date), descending)],
        )
    };
    assert_eq!(
        ids(store, &by_birthdate(false)).await,
        strings(&["e", "b", "d", "a", "c", "f"]),
        "ascending by the smallest value, missing last in storage order"
    );
    assert_eq!(
        ids(store, &by_birthdate(true)).await,
        strings(&["e", "a", "d", "b", "c", "f"]),
        "descending by the largest value, missing still last"
    );
    let by_gender = sorted_by(
        query(&["Patient"], vec![]),
        &[(param_key("gender", ParamKind::Token), false)],
    );
    assert_eq!(
        ids(store, &by_gender).await,
        strings(&["f", "a", "b", "c", "d", "e"])
    );
}

async fn sort_on_several_keys(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let person = |id: &str, family: &str, birth: i64| {
        patient(
            id,
            vec![string("family", family), date("birthdate", birth, birth)],
        )
    };
    create_all(
        store,
        vec![
            person("1", "Sato", 10),
            person("2", "Abe", 30),
            person("3", "Sato", 30),
            person("4", "Abe", 10),
            person("5", "Sato", 30),
            patient("6", vec![string("family", "Abe")]),
        ],
    )
    .await;
    let search = sorted_by(
        query(&["Patient"], vec![]),
        &[
            (param_key("family", ParamKind::String), false),
            (param_key("birthdate", ParamKind::Date), true),
        ],
    );
    assert_eq!(
        ids(store, &search).await,
        strings(&["2", "4", "6", "3", "5", "1"])
    );
    // The same order survives paging one row at a time.
    let mut one_by_one = search.clone();
    one_by_one.count = 1;
    let pages: Vec<String> = all_pages(store, one_by_one).await.concat();
    assert_eq!(pages, strings(&["2", "4", "6", "3", "5", "1"]));
    let mut two = search;
    two.count = 2;
    let pages = all_pages(store, two).await;
    assert_eq!(pages.len(), 3, "{pages:?}");
}

async fn paging_forward(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let writes = (0..25)
        .map(|n| patient(&format!("p{n:02}"), vec![token("active", None, "true")]))
        .collect();
    create_all(store, writes).await;
    let mut search = query(&["Patient"], vec![vec![code_is("active", "true")]]);
    search.count = 10;
    let first = store.search(&search).await.expect("search");
    assert_eq!(first.matches.len(), 10);
    assert!(first.previous.is_none(), "the first page has no previous");
    let pages = all_pages(store, search).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
    let expected: Vec<String> = (0..25).map(|n| format!("p{n:02}")).collect();
    assert_eq!(pages.concat(), expected);
}

/// Pages stay correct while rows are inserted, deleted and updated between fetches: no row appears
/// twice, and every row that did not change appears once.
async fn paging_while_data_changes(store: Arc<dyn Store>) {
    let store = store.as_ref();
    // Names n00..n38 (even numbers), created in a shuffled order so that storage order differs
    // from name order.
    let mut numbers: Vec<u32> = (0..20).map(|n| n * 2).collect();
    numbers.sort_by_key(|n| (n * 7) % 20);
    let writes = numbers
        .iter()
        .map(|n| {
            patient(
                &format!("id{n:02}"),
                vec![string("name", &format!("n{n:02}"))],
            )
        })
        .collect();
    create_all(store, writes).await;

    for (sort, descending) in [
        (None, false),
        (Some(param_key("name", ParamKind::String)), false),
        (Some(param_key("name", ParamKind::String)), true),
        (Some(SortParam::Id), true),
    ] {
        let mut search = query(&["Patient"], vec![]);
        if let Some(sort) = &sort {
            search = sorted_by(search, &[(sort.clone(), descending)]);
        }
        search.count = 4;
        let mut seen: Vec<String> = Vec::new();
        let mut changed: HashSet<String> = HashSet::new();
        let mut round = 0u32;
        loop {
            let page = search_or_panic(store, &search).await;
            seen.extend(ids_of(&page.matches));
            round += 1;
            // Between pages: insert rows on both sides of the cursor, delete one and update one
            // that are not seen yet.
            let fresh = [format!("new{round}a"), format!("new{round}b")];
            create_all(
                store,
                vec![
                    patient(&fresh[0], vec![string("name", &format!("n{:02}a", round))]),
                    patient(
                        &fresh[1],
                        vec![string("name", &format!("n{:02}z", 40 - round))],
                    ),
                ],
            )
            .await;
            changed.extend(fresh);
            let unseen: Vec<String> = current_ids(store)
                .await
                .into_iter()
                .filter(|id| id.starts_with("id") && !seen.contains(id) && !changed.contains(id))
                .collect();
            if let Some(victim) = unseen.first() {
                write_one(store, delete("Patient", victim, None)).await;
                changed.insert(victim.clone());
            }
            if let Some(touched) = unseen.get(1) {
                let number = &touched[2..];
                write_one(
                    store,
                    update(
                        patient(touched, vec![string("name", &format!("n{number}"))]),
                        None,
                    ),
                )
                .await;
                changed.insert(touched.clone());
            }
            match page.next {
                Some(next) => search.cursor = Some(next),
                None => break,
            }
            assert!(round < 100, "paging does not end");
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "duplicates with sort {sort:?}: {seen:?}"
        );
        for n in &numbers {
            let id = format!("id{n:02}");
            if !changed.contains(&id) {
                assert!(
                    seen.contains(&id),
                    "{id} skipped with sort {sort:?}: {seen:?}"
                );
            }
        }
        // Reset for the next sort order: remove what this round added or deleted.
        for id in current_ids(store).await {
            if id.starts_with("new") {
                write_one(store, delete("Patient", &id, None)).await;
            }
        }
        for id in &changed {
            if let Some(n) = id.strip_prefix("id") {
                write_one(
                    store,
                    update(patient(id, vec![string("name", &format!("n{n}"))]), None),
                )
                .await;
            }
        }
    }
}

async fn search_or_panic(store: &dyn Store, query: &SearchQuery) -> SearchPage {
    search(store, query).await
}

/// Ids of every current Patient.
async fn current_ids(store: &dyn Store) -> Vec<String> {
    let mut all = query(&["Patient"], vec![]);
    all.count = 1000;
    ids(store, &all).await
}

async fn previous_cursor(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let writes = (0..25)
        .map(|n| {
            patient(
                &format!("p{n:02}"),
                vec![string("name", &format!("{}", 99 - n))],
            )
        })
        .collect();
    create_all(store, writes).await;
    for sort in [
        vec![],
        vec![(param_key("name", ParamKind::String), false)],
        vec![(SortParam::Id, true)],
    ] {
        let mut search = sorted_by(query(&["Patient"], vec![]), &sort);
        search.count = 10;
        let first = search_or_panic(store, &search).await;
        search.cursor = first.next.clone();
        let second = search_or_panic(store, &search).await;
        search.cursor = second.next.clone();
        let third = search_or_panic(store, &search).await;
        assert_eq!(third.matches.len(), 5);
        assert!(third.next.is_none());

        search.cursor = third.previous.clone();
        assert!(search.cursor.is_some(), "the last page links back");
        let back_to_second = search_or_panic(store, &search).await;
        assert_eq!(
            ids_of(&back_to_second.matches),
            ids_of(&second.matches),
            "{sort:?}"
        );
        search.cursor = back_to_second.previous.clone();
        let back_to_first = search_or_panic(store, &search).await;
        assert_eq!(
            ids_of(&back_to_first.matches),
            ids_of(&first.matches),
            "{sort:?}"
        );
        assert!(
            back_to_first.previous.is_none(),
            "back at the start: {sort:?}"
        );
        search.cursor = back_to_first.next.clone();
        let forward_again = search_or_panic(store, &search).await;
        assert_eq!(ids_of(&forward_again.matches), ids_of(&second.matches));
    }
}

async fn total_and_count_zero(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let writes = (0..7)
        .map(|n| patient(&format!("p{n}"), vec![token("active", None, "true")]))
        .chain([patient("other", vec![])])
        .collect();
    create_all(store, writes).await;
    let mut search = query(&["Patient"], vec![vec![code_is("active", "true")]]);
    search.count = 3;
    let page = search_or_panic(store, &search).await;
    assert_eq!(page.total, None, "no total unless asked");

    search.total = TotalMode::Accurate;
    let page = search_or_panic(store, &search).await;
    assert_eq!((page.matches.len(), page.total), (3, Some(7)));
    search.cursor = page.next;
    let second = search_or_panic(store, &search).await;
    assert_eq!(second.total, Some(7), "the total covers every page");

    search.cursor = None;
    search.count = 0;
    let only_total = search_or_panic(store, &search).await;
    assert!(only_total.matches.is_empty());
    assert_eq!(only_total.total, Some(7));
    assert!(only_total.next.is_none() && only_total.previous.is_none());
}

// ---------------------------------------------------------------------------------------------
// Includes.

/// Patients p1, p2 with general practitioner pr1; observations about them; a Patient link p1 -> p2.
async fn include_fixture(store: &dyn Store) {
    create_all(
        store,
        vec![
            resource("Practitioner", "pr1", vec![]),
            patient(
                "p1",
                vec![
                    reference("general-practitioner", "Practitioner", "pr1"),
                    reference("link", "Patient", "p2"),
                ],
            ),
            patient(
                "p2",
                vec![reference("general-practitioner", "Practitioner", "pr1")],
            ),
            observation(
                "o1",
                vec![
                    reference("subject", "Patient", "p1"),
                    token("code", None, "x"),
                ],
            ),
            observation(
                "o2",
                vec![
                    reference("subject", "Patient", "p1"),
                    token("code", None, "x"),
                ],
            ),
            observation(
                "o3",
                vec![
                    reference("subject", "Patient", "p2"),
                    token("code", None, "x"),
                ],
            ),
            observation("o4", vec![reference("subject", "Patient", "gone")]),
            patient("gone", vec![]),
        ],
    )
    .await;
    write_one(store, delete("Patient", "gone", None)).await;
}

fn include(source_type: &str, param: &str, target_type: Option<&str>, iterate: bool) -> Include {
    Include {
        source_type: source_type.to_owned(),
        param: param.to_owned(),
        target_type: target_type.map(str::to_owned),
        iterate,
    }
}

fn type_ids(resources: &[StoredResource]) -> Vec<String> {
    let mut ids: Vec<String> = resources
        .iter()
        .map(|r| format!("{}/{}", r.resource_type, r.id))
        .collect();
    ids.sort();
    ids
}

/// `Store::exists` answers whether the search would find anything: live resources only, current
/// index entries only, whatever the query's page size, sort, cursor, includes and total.
async fn exists_agrees_with_search(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let consent = |id: &str, patient: &str, actor: &str, status: &str, low: i64, high: i64| {
        resource(
            "Consent",
            id,
            vec![
                reference("patient", "Patient", patient),
                reference("actor", "Organization", actor),
                token("status", None, status),
                date("period", low, high),
            ],
        )
    };
    create_all(
        store,
        vec![
            consent("c1", "p1", "o1", "active", 100, 200),
            consent("c2", "p1", "o2", "inactive", 100, 200),
            consent("c3", "p2", "o1", "active", 300, 400),
            consent("c4", "p3", "o1", "active", 100, 200),
        ],
    )
    .await;
    let in_force = |patient: &str, actor: &str, at: i64| {
        let at = DateBound { low: at, high: at };
        let mut search = query(
            &["Consent"],
            vec![
                vec![matching(
                    "patient",
                    ValueTest::Reference {
                        target_type: Some("Patient".to_owned()),
                        id: Some(patient.to_owned()),
                        url: None,
                    },
                )],
                vec![matching(
                    "actor",
                    ValueTest::Reference {
                        target_type: Some("Organization".to_owned()),
                        id: Some(actor.to_owned()),
                        url: None,
                    },
                )],
                vec![code_is("status", "active")],
                vec![matching(
                    "period",
                    ValueTest::Date {
                        prefix: Prefix::Le,
                        range: at,
                    },
                )],
                vec![matching(
                    "period",
                    ValueTest::Date {
                        prefix: Prefix::Ge,
                        range: at,
                    },
                )],
            ],
        );
        // What the caller's query may carry besides its conditions does not change the answer.
        search.count = 0;
        search.total = TotalMode::Accurate;
        search.sort = vec![SortKey {
            param: SortParam::Id,
            descending: true,
        }];
        search
    };
    let cases = [
        ("p1", "o1", 150, true),
        ("p1", "o1", 250, false),
        ("p1", "o2", 150, false),
        ("p2", "o1", 150, false),
        ("p2", "o1", 350, true),
        ("p9", "o1", 150, false),
    ];
    for (patient, actor, at, expected) in cases {
        let search = in_force(patient, actor, at);
        let mut page = search.clone();
        page.count = 100;
        page.total = TotalMode::None;
        assert_eq!(
            !ids(store, &page).await.is_empty(),
            expected,
            "search {patient} {actor} {at}"
        );
        assert_eq!(
            store.exists(&search).await.expect("exists"),
            expected,
            "exists {patient} {actor} {at}"
        );
    }
    // A revoked consent (its status updated) and a deleted one are not found any more.
    write_one(
        store,
        update(consent("c1", "p1", "o1", "inactive", 100, 200), None),
    )
    .await;
    write_one(store, delete("Consent", "c3", None)).await;
    for (patient, at) in [("p1", 150), ("p2", 350)] {
        assert!(
            !store
                .exists(&in_force(patient, "o1", at))
                .await
                .expect("exists"),
            "{patient} after revoke or delete"
        );
    }
    assert!(
        store
            .exists(&in_force("p3", "o1", 150))
            .await
            .expect("exists")
    );
    // Without conditions: any live resource of the types.
    assert!(
        store
            .exists(&query(&["Consent"], Vec::new()))
            .await
            .expect("exists")
    );
    assert!(
        !store
            .exists(&query(&["Observation"], Vec::new()))
            .await
            .expect("exists")
    );
}

async fn includes_and_revincludes(store: Arc<dyn Store>) {
    let store = store.as_ref();
    include_fixture(store).await;

    let mut observations = query(&["Observation"], vec![]);
    observations.includes = vec![include("Observation", "subject", None, false)];
    let page = search_or_panic(store, &observations).await;
    assert_eq!(
        type_ids(&page.included),
        strings(&["Patient/p1", "Patient/p2"]),
        "each target once; deleted targets left out"
    );

    observations.includes = vec![include("Observation", "subject", Some("Group"), false)];
    let page = search_or_panic(store, &observations).await;
    assert!(page.included.is_empty(), "the target type restricts");

    let mut patients = query(&["Patient"], vec![]);
    patients.revincludes = vec![include("Observation", "subject", None, false)];
    let page = search_or_panic(store, &patients).await;
    assert_eq!(
        type_ids(&page.included),
        strings(&["Observation/o1", "Observation/o2", "Observation/o3"])
    );

    patients.revincludes = vec![];
    patients.includes = vec![
        include("Patient", "link", None, false),
        include("Patient", "general-practitioner", None, false),
    ];
    let page = search_or_panic(store, &patients).await;
    assert_eq!(
        type_ids(&page.included),
        strings(&["Practitioner/pr1"]),
        "a match is never repeated as an include"
    );

    // Includes apply to the current page only.
    let mut first_patient = query(&["Patient"], vec![vec![Condition::Id("p2".to_owned())]]);
    first_patient.revincludes = vec![include("Observation", "subject", None, false)];
    let page = search_or_panic(store, &first_patient).await;
    assert_eq!(type_ids(&page.included), strings(&["Observation/o3"]));
}

async fn include_iterate(store: Arc<dyn Store>) {
    let store = store.as_ref();
    include_fixture(store).await;
    let mut observations = query(&["Observation"], vec![vec![Condition::Id("o1".to_owned())]]);
    observations.includes = vec![
        include("Observation", "subject", None, false),
        include("Patient", "general-practitioner", None, false),
    ];
    let page = search_or_panic(store, &observations).await;
    assert_eq!(
        type_ids(&page.included),
        strings(&["Patient/p1"]),
        "without iterate, includes apply to the matches only"
    );

    observations.includes = vec![
        include("Observation", "subject", None, false),
        include("Patient", "general-practitioner", None, true),
    ];
    let page = search_or_panic(store, &observations).await;
    assert_eq!(
        type_ids(&page.included),
        strings(&["Patient/p1", "Practitioner/pr1"])
    );

    // Revinclude iterate: from an observation, its patient, then the patient's other observations.
    observations.includes = vec![include("Observation", "subject", None, false)];
    observations.revincludes = vec![include("Observation", "subject", None, true)];
    let page = search_or_panic(store, &observations).await;
    assert_eq!(
        type_ids(&page.included),
        strings(&["Observation/o2", "Patient/p1"]),
        "the match o1 is not repeated"
    );
}

// ---------------------------------------------------------------------------------------------
// History, scan, types.

fn history_query(scope: HistoryScope) -> HistoryQuery {
    HistoryQuery {
        scope,
        since: None,
        before: None,
        count: 100,
        cursor: None,
        with_total: false,
    }
}

fn instance(resource_type: &str, id: &str) -> HistoryScope {
    HistoryScope::Instance {
        resource_type: resource_type.to_owned(),
        id: id.to_owned(),
    }
}

async fn history_instance(store: Arc<dyn Store>) {
    let store = store.as_ref();
    write_one(store, create(patient("p1", vec![]))).await;
    write_one(store, update(patient("p1", vec![]), None)).await;
    write_one(store, create(patient("p2", vec![]))).await;
    write_one(store, delete("Patient", "p1", None)).await;
    write_one(store, create(patient("p1", vec![]))).await;

    let mut listing = history_query(instance("Patient", "p1"));
    listing.with_total = true;
    let page = store.history(&listing).await.expect("history");
    let summary: Vec<(u64, HistoryMethod, bool)> = page
        .entries
        .iter()
        .map(|e| (e.resource.version, e.method, e.resource.deleted))
        .collect();
    assert_eq!(
        summary,
        [
            (4, HistoryMethod::Create, false),
            (3, HistoryMethod::Delete, true),
            (2, HistoryMethod::Update, false),
            (1, HistoryMethod::Create, false),
        ]
    );
    assert_eq!(page.total, Some(4));
    assert!(page.next.is_none());
    assert!(page.entries.iter().all(|e| e.resource.id == "p1"));
    assert_eq!(page.entries[1].resource.json, "");
    assert_eq!(body(&page.entries[2].resource)["meta"]["versionId"], "2");

    let absent = store
        .history(&history_query(instance("Patient", "nobody")))
        .await
        .expect("history");
    assert!(absent.entries.is_empty());
}

async fn history_type_and_system(store: Arc<dyn Store>) {
    let store = store.as_ref();
    write_one(store, create(patient("p1", vec![]))).await;
    write_one(store, create(observation("o1", vec![]))).await;
    write_one(store, update(patient("p1", vec![]), None)).await;
    write_one(store, create(patient("p2", vec![]))).await;

    let patients = store
        .history(&history_query(HistoryScope::Type("Patient".to_owned())))
        .await
        .expect("history");
    let listed: Vec<(String, u64)> = patients
        .entries
        .iter()
        .map(|e| (e.resource.id.clone(), e.resource.version))
        .collect();
    assert_eq!(
        listed,
        [
            ("p2".to_owned(), 1),
            ("p1".to_owned(), 2),
            ("p1".to_owned(), 1)
        ]
    );

    let mut system = history_query(HistoryScope::System);
    system.with_total = true;
    let everything = store.history(&system).await.expect("history");
    let listed: Vec<String> = everything
        .entries
        .iter()
        .map(|e| {
            format!(
                "{}/{}/{}",
                e.resource.resource_type, e.resource.id, e.resource.version
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            "Patient/p2/1",
            "Patient/p1/2",
            "Observation/o1/1",
            "Patient/p1/1"
        ]
    );
    assert_eq!(everything.total, Some(4));
}

async fn history_since_before_and_paging(store: Arc<dyn Store>) {
    let store = store.as_ref();
    for n in 0..3 {
        write_one(store, create(patient(&format!("old{n}"), vec![]))).await;
    }
    tick().await;
    let written = write_one(store, create(patient("new0", vec![]))).await;
    let WriteOutcome::Created(boundary) = written else {
        panic!("expected Created, got {written:?}");
    };
    for n in 1..5 {
        write_one(store, create(patient(&format!("new{n}"), vec![]))).await;
    }

    let mut since = history_query(HistoryScope::Type("Patient".to_owned()));
    since.since = Some(boundary.last_updated);
    since.with_total = true;
    since.count = 2;
    let mut listed = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.history(&since).await.expect("history");
        assert_eq!(page.total, Some(5));
        assert!(page.entries.len() <= 2);
        listed.extend(page.entries.into_iter().map(|e| e.resource.id));
        pages += 1;
        match page.next {
            Some(next) => since.cursor = Some(next),
            None => break,
        }
        // A write after the first page does not disturb the listing (newer entries come first).
        write_one(store, create(observation(&format!("later{pages}"), vec![]))).await;
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(listed, strings(&["new4", "new3", "new2", "new1", "new0"]));

    let mut before = history_query(HistoryScope::System);
    before.before = Some(boundary.last_updated);
    let page = store.history(&before).await.expect("history");
    let ids: Vec<String> = page.entries.into_iter().map(|e| e.resource.id).collect();
    assert_eq!(ids, strings(&["old2", "old1", "old0"]));

    let mut nothing = history_query(HistoryScope::System);
    nothing.count = 0;
    nothing.with_total = true;
    let page = store.history(&nothing).await.expect("history");
    assert!(page.entries.is_empty());
    assert!(page.total.is_some_and(|total| total >= 8));
}

async fn scan_in_storage_order(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let writes = ["e", "a", "d", "b", "c"]
        .iter()
        .map(|id| patient(id, vec![]))
        .chain([observation("o", vec![])])
        .collect();
    create_all(store, writes).await;
    write_one(store, delete("Patient", "d", None)).await;

    let mut scanned = Vec::new();
    let mut after = None;
    let mut chunks = 0;
    loop {
        let (chunk, next) = store.scan("Patient", after, 2).await.expect("scan");
        assert!(chunk.len() <= 2);
        assert!(
            chunk
                .iter()
                .all(|r| !r.deleted && r.resource_type == "Patient")
        );
        scanned.extend(ids_of(&chunk));
        chunks += 1;
        match next {
            Some(next) => after = Some(next),
            None => break,
        }
        assert!(chunks < 10, "scan does not end");
    }
    assert_eq!(scanned, strings(&["e", "a", "b", "c"]));
    let (all, next) = store.scan("Patient", None, 10).await.expect("scan");
    assert_eq!((ids_of(&all), next), (strings(&["e", "a", "b", "c"]), None));
    let (none, next) = store.scan("Encounter", None, 10).await.expect("scan");
    assert!(none.is_empty() && next.is_none());
}

// ---------------------------------------------------------------------------------------------
// Bulk creation.

/// The resources of the bulk scenarios: two patients and resources in none, one and both of their
/// compartments, with an index entry of every value kind.
fn bulk_fixture() -> Vec<ResourceWrite> {
    let in_compartments = |write: ResourceWrite, patients: &[&str]| ResourceWrite {
        compartments: patients.iter().map(|p| (*p).to_owned()).collect(),
        ..write
    };
    vec![
        in_compartments(
            patient(
                "p1",
                vec![
                    string("name", "Alice"),
                    token("identifier", Some("urn:id"), "1"),
                ],
            ),
            &["p1"],
        ),
        in_compartments(
            patient(
                "p2",
                vec![
                    string("name", "Bob"),
                    token("identifier", Some("urn:id"), "2"),
                ],
            ),
            &["p2"],
        ),
        in_compartments(
            observation(
                "o1",
                vec![
                    token("code", None, "x"),
                    date("date", 100, 199),
                    reference("subject", "Patient", "p1"),
                    entry(
                        "value-quantity",
                        IndexValue::Quantity {
                            value: 5.4,
                            system: Some("http://unitsofmeasure.org".to_owned()),
                            code: Some("mg".to_owned()),
                            unit: Some("mg".to_owned()),
                        },
                    ),
                ],
            ),
            &["p1"],
        ),
        in_compartments(
            observation(
                "o2",
                vec![
                    token("code", None, "x"),
                    date("date", 300, 399),
                    reference("subject", "Patient", "p2"),
                    reference("performer", "Patient", "p1"),
                ],
            ),
            // Listed twice: a backend writes one compartment row per patient all the same.
            &["p2", "p1", "p2"],
        ),
        resource(
            "RiskAssessment",
            "r1",
            vec![entry("probability", IndexValue::Number { value: 0.25 })],
        ),
        resource(
            "ValueSet",
            "v1",
            vec![entry(
                "url",
                IndexValue::Uri {
                    value: "http://example.org/vs/1".to_owned(),
                },
            )],
        ),
    ]
}

/// What `bulk_create` stores is what plain creates store: read, vread, every kind of search, the
/// compartments, history, scan, and a later update all behave the same.
async fn bulk_create_is_like_create(store: Arc<dyn Store>) {
    let store = store.as_ref();
    assert_eq!(
        store.bulk_create(Vec::new()).await.expect("empty bulk"),
        Vec::new()
    );
    write_one(store, create(patient("before", vec![]))).await;
    let created = store
        .bulk_create(bulk_fixture())
        .await
        .expect("bulk_create");
    assert_eq!(
        created
            .iter()
            .map(|r| format!("{}/{}", r.resource_type, r.id))
            .collect::<Vec<_>>(),
        strings(&[
            "Patient/p1",
            "Patient/p2",
            "Observation/o1",
            "Observation/o2",
            "RiskAssessment/r1",
            "ValueSet/v1"
        ]),
        "one stored resource per write, in order"
    );
    for resource in &created {
        assert_eq!((resource.version, resource.deleted), (1, false));
        assert_eq!(
            resource.last_updated, created[0].last_updated,
            "one transaction"
        );
        assert_eq!(
            resource.json,
            format!(
                r#"{{"resourceType":"{}","id":"{}","meta":{{"versionId":"1","lastUpdated":"{}"}}}}"#,
                resource.resource_type,
                resource.id,
                resource.last_updated.to_fhir_instant()
            ),
            "stamped like a create"
        );
        let read = store.read(&resource.resource_type, &resource.id).await;
        assert_eq!(read.expect("read").as_ref(), Some(resource));
        let vread = store.vread(&resource.resource_type, &resource.id, 1).await;
        assert_eq!(vread.expect("vread").as_ref(), Some(resource));
        let history = store
            .history(&history_query(instance(
                &resource.resource_type,
                &resource.id,
            )))
            .await
            .expect("history");
        assert_eq!(
            history
                .entries
                .iter()
                .map(|e| (e.method, &e.resource))
                .collect::<Vec<_>>(),
            [(HistoryMethod::Create, resource)]
        );
    }

    // Every value kind is searchable.
    assert_eq!(
        id_set(
            store,
            &query(&["Observation"], vec![vec![code_is("code", "x")]])
        )
        .await,
        strings(&["o1", "o2"])
    );
    assert_eq!(
        ids(
            store,
            &query(&["Patient"], vec![vec![starts_with("name", "al")]])
        )
        .await,
        strings(&["p1"])
    );
    let on_date = |low, high| {
        query(
            &["Observation"],
            vec![vec![matching(
                "date",
                ValueTest::Date {
                    prefix: Prefix::Eq,
                    range: DateBound { low, high },
                },
            )]],
        )
    };
    assert_eq!(ids(store, &on_date(300, 399)).await, strings(&["o2"]));
    let referring = |param: &str, id: &str| {
        query(
            &["Observation"],
            vec![vec![matching(
                param,
                ValueTest::Reference {
                    target_type: Some("Patient".to_owned()),
                    id: Some(id.to_owned()),
                    url: None,
                },
            )]],
        )
    };
    assert_eq!(
        ids(store, &referring("subject", "p1")).await,
        strings(&["o1"])
    );
    assert_eq!(
        ids(store, &referring("performer", "p1")).await,
        strings(&["o2"])
    );
    let quantity = query(
        &["Observation"],
        vec![vec![matching(
            "value-quantity",
            ValueTest::Quantity {
                prefix: Prefix::Eq,
                low: 5.35,
                high: 5.449_999,
                system: None,
                code: Some("mg".to_owned()),
            },
        )]],
    );
    assert_eq!(ids(store, &quantity).await, strings(&["o1"]));
    let probability = query(
        &["RiskAssessment"],
        vec![vec![matching(
            "probability",
            ValueTest::Number {
                prefix: Prefix::Lt,
                low: 0.5,
                high: 0.5,
            },
        )]],
    );
    assert_eq!(ids(store, &probability).await, strings(&["r1"]));
    let url = query(
        &["ValueSet"],
        vec![vec![matching(
            "url",
            ValueTest::Uri {
                value: "http://example.org/vs".to_owned(),
                mode: UriMode::Below,
            },
        )]],
    );
    assert_eq!(ids(store, &url).await, strings(&["v1"]));

    // Compartments, each resource once.
    let within = |patient: &str, types: &[&str], filters| {
        let mut search = query(types, filters);
        search.compartment = Some(patient.to_owned());
        search.total = TotalMode::Accurate;
        search
    };
    let page = search(store, &within("p1", &["Observation"], vec![])).await;
    assert_eq!(
        (ids_of(&page.matches), page.total),
        (strings(&["o1", "o2"]), Some(2))
    );
    assert_eq!(
        id_set(store, &within("p2", &[], vec![])).await,
        strings(&["o2", "p2"])
    );
    assert_eq!(
        id_set(
            store,
            &within("p2", &["Observation"], vec![vec![code_is("code", "x")]])
        )
        .await,
        strings(&["o2"])
    );

    // Storage order: after what was there, in the order of the call.
    let (scanned, _) = store.scan("Patient", None, 10).await.expect("scan");
    assert_eq!(ids_of(&scanned), strings(&["before", "p1", "p2"]));
    let (scanned, _) = store.scan("Observation", None, 10).await.expect("scan");
    assert_eq!(ids_of(&scanned), strings(&["o1", "o2"]));
    let mut system = history_query(HistoryScope::System);
    system.with_total = true;
    let history = store.history(&system).await.expect("history");
    assert_eq!(history.total, Some(7));
    assert!(
        history
            .entries
            .iter()
            .all(|e| e.method == HistoryMethod::Create)
    );

    // A later update replaces the bulk-written index and compartment rows.
    let moved = ResourceWrite {
        compartments: strings(&["p2"]),
        ..observation("o1", vec![token("code", None, "z")])
    };
    let outcome = write_one(store, update(moved, Some(1))).await;
    assert!(
        matches!(&outcome, WriteOutcome::Updated(r) if r.version == 2),
        "{outcome:?}"
    );
    assert_eq!(
        id_set(
            store,
            &query(&["Observation"], vec![vec![code_is("code", "x")]])
        )
        .await,
        strings(&["o2"])
    );
    assert_eq!(
        ids(
            store,
            &query(&["Observation"], vec![vec![code_is("code", "z")]])
        )
        .await,
        strings(&["o1"])
    );
    assert_eq!(ids(store, &on_date(100, 199)).await, Vec::<String>::new());
    assert_eq!(
        id_set(store, &within("p1", &["Observation"], vec![])).await,
        strings(&["o2"])
    );
    assert_eq!(
        id_set(store, &within("p2", &["Observation"], vec![])).await,
        strings(&["o1", "o2"])
    );
    let outcome = write_one(store, delete("Observation", "o2", Some(1))).await;
    assert!(
        matches!(outcome, WriteOutcome::Deleted { version: 2, .. }),
        "{outcome:?}"
    );
    assert_eq!(
        ids(store, &within("p1", &[], vec![])).await,
        strings(&["p1"]),
        "a delete removes the bulk-written rows"
    );
}

/// A bulk call that names a resource that exists (live or deleted), or the same resource twice,
/// fails as `Duplicate` and writes nothing at all.
async fn bulk_create_refuses_existing_ids(store: Arc<dyn Store>) {
    let store = store.as_ref();
    write_one(
        store,
        create(patient("live", vec![token("code", None, "x")])),
    )
    .await;
    write_one(store, create(patient("gone", vec![]))).await;
    write_one(store, delete("Patient", "gone", None)).await;
    let system_history = || async {
        let mut system = history_query(HistoryScope::System);
        system.with_total = true;
        store.history(&system).await.expect("history").total
    };
    let before = system_history().await;

    let with = |clashing: ResourceWrite| {
        let mut writes = bulk_fixture();
        writes.insert(3, clashing);
        writes
    };
    for (case, writes) in [
        ("a live resource", with(patient("live", vec![]))),
        ("a deleted resource", with(patient("gone", vec![]))),
        ("the same resource twice", with(observation("o1", vec![]))),
    ] {
        let result = store.bulk_create(writes).await;
        assert!(
            matches!(result, Err(StoreError::Duplicate(_))),
            "{case}: {result:?}"
        );
        assert_eq!(system_history().await, before, "{case}: nothing written");
        for (resource_type, id) in [("Patient", "p1"), ("Observation", "o1"), ("ValueSet", "v1")] {
            assert_eq!(
                store.read(resource_type, id).await.expect("read"),
                None,
                "{case}: nothing written"
            );
        }
        assert_eq!(
            ids(
                store,
                &query(
                    &["Patient", "Observation"],
                    vec![vec![code_is("code", "x")]]
                )
            )
            .await,
            strings(&["live"]),
            "{case}: no index rows written"
        );
    }
    let live = store.read("Patient", "live").await.expect("read");
    assert!(live.is_some_and(|r| r.version == 1 && !r.deleted));
    let gone = store.read("Patient", "gone").await.expect("read");
    assert!(gone.is_some_and(|r| r.version == 2 && r.deleted));

    let empty_id = store.bulk_create(vec![patient("", vec![])]).await;
    assert!(
        matches!(empty_id, Err(StoreError::Invalid(_))),
        "{empty_id:?}"
    );

    // The same call without the clash goes through.
    let created = store
        .bulk_create(bulk_fixture())
        .await
        .expect("bulk_create");
    assert_eq!(created.len(), 6);
    assert_eq!(
        id_set(
            store,
            &query(
                &["Patient", "Observation"],
                vec![vec![code_is("code", "x")]]
            )
        )
        .await,
        strings(&["live", "o1", "o2"])
    );
}

async fn resource_types(store: Arc<dyn Store>) {
    let store = store.as_ref();
    assert!(store.resource_types().await.expect("types").is_empty());
    create_all(
        store,
        vec![
            patient("p", vec![]),
            observation("o1", vec![]),
            observation("o2", vec![]),
            resource("Encounter", "e", vec![]),
        ],
    )
    .await;
    write_one(store, delete("Encounter", "e", None)).await;
    let mut types = store.resource_types().await.expect("types");
    types.sort();
    assert_eq!(types, strings(&["Observation", "Patient"]));
}

async fn foreign_cursor_is_invalid(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let writes = (0..5).map(|n| patient(&format!("p{n}"), vec![])).collect();
    create_all(store, writes).await;
    let mut search = query(&["Patient"], vec![]);
    search.count = 2;
    let page = search_or_panic(store, &search).await;
    let issued = page.next.expect("a next page");

    for foreign in [
        PageCursor("garbage".to_owned()),
        PageCursor(String::new()),
        PageCursor(format!("{}0", issued.0)),
    ] {
        search.cursor = Some(foreign.clone());
        let result = store.search(&search).await;
        assert!(
            matches!(result, Err(StoreError::Invalid(_))),
            "{foreign:?}: {result:?}"
        );
    }

    let mut other_query = query(&["Patient"], vec![vec![Condition::Id("p1".to_owned())]]);
    other_query.cursor = Some(issued.clone());
    let result = store.search(&other_query).await;
    assert!(
        matches!(result, Err(StoreError::Invalid(_))),
        "a cursor of another query: {result:?}"
    );

    let mut history = history_query(HistoryScope::System);
    history.cursor = Some(issued);
    let result = store.history(&history).await;
    assert!(
        matches!(result, Err(StoreError::Invalid(_))),
        "a search cursor used for history: {result:?}"
    );
}

async fn ping(store: Arc<dyn Store>) {
    store.ping().await.expect("ping");
}
