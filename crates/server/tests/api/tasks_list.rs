//! Listing tasks: filters, sort orders, keyset pagination and bad parameters.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{
    Session, TestApp, assert_envelope_error, assert_ok_envelope, encode_query_value,
};

fn ids(tasks: &[Value]) -> Vec<String> {
    tasks
        .iter()
        .map(|t| t["id"].as_str().expect("an id").to_owned())
        .collect()
}

fn titles(tasks: &[Value]) -> Vec<String> {
    tasks
        .iter()
        .map(|t| t["title"].as_str().expect("a title").to_owned())
        .collect()
}

async fn list(app: &TestApp, session: &Session, query: &str) -> Vec<Value> {
    let reply = assert_ok_envelope(
        app.get(&format!("/api/v1/tasks?{query}"), &session.access)
            .await,
        200,
    )
    .await;
    reply.data().as_array().expect("a list").clone()
}

/// Title, status, priority, due date.
const FIXTURE: [(&str, &str, &str, Option<&str>); 7] = [
    ("a", "todo", "low", Some("2030-01-10T00:00:00Z")),
    ("b", "in_progress", "urgent", Some("2030-01-05T00:00:00Z")),
    ("c", "done", "medium", None),
    ("d", "todo", "high", Some("2030-01-20T00:00:00Z")),
    ("e", "in_progress", "low", None),
    ("f", "done", "urgent", Some("2030-01-01T00:00:00Z")),
    ("g", "todo", "medium", Some("2030-01-15T00:00:00Z")),
];

async fn with_fixture() -> (TestApp, Session, Vec<Value>) {
    let app = TestApp::spawn().await;
    let session = app.signup("lists@example.com").await;
    let mut created = Vec::new();
    for (title, status, priority, due) in FIXTURE {
        let task = app
            .create_task(
                &session.access,
                &json!({"title": title, "status": status, "priority": priority, "dueDate": due}),
            )
            .await;
        created.push(task);
    }
    // Another user's tasks never show up.
    let other = app.signup("other-lists@example.com").await;
    app.create_task(
        &other.access,
        &json!({"title": "z", "status": "todo", "priority": "urgent"}),
    )
    .await;
    (app, session, created)
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

#[tokio::test]
async fn filters_select_by_status_priority_and_due_date() {
    let (app, session, _) = with_fixture().await;
    let cases: [(&str, &[&str]); 13] = [
        ("", &["a", "b", "c", "d", "e", "f", "g"]),
        ("status=todo", &["a", "d", "g"]),
        ("status=in_progress", &["b", "e"]),
        ("status=done", &["c", "f"]),
        ("priority=urgent", &["b", "f"]),
        ("priority=low", &["a", "e"]),
        ("status=todo&priority=medium", &["g"]),
        ("status=done&priority=low", &[]),
        // Strictly before / after; tasks without a due date never match.
        ("dueBefore=2030-01-10T00:00:00Z", &["b", "f"]),
        ("dueAfter=2030-01-10T00:00:00Z", &["d", "g"]),
        (
            "dueAfter=2030-01-01T00:00:00Z&dueBefore=2030-01-20T00:00:00Z",
            &["a", "b", "g"],
        ),
        (
            "dueAfter=2030-01-05T00:00:00Z&status=todo",
            &["a", "d", "g"],
        ),
        ("dueBefore=2029-01-01T00:00:00Z", &[]),
    ];
    for (query, expected) in cases {
        let got = titles(&list(&app, &session, query).await);
        let expected: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(sorted(got), expected, "?{query}");
    }
    // An offset other than Z names the same instant (`+` encoded).
    let query = format!(
        "dueBefore={}",
        encode_query_value("2030-01-10T02:00:00+02:00")
    );
    let got = titles(&list(&app, &session, &query).await);
    assert_eq!(sorted(got), ["b", "f"], "?{query}");
}

#[tokio::test]
async fn sort_orders_are_right() {
    let (app, session, created) = with_fixture().await;
    let by_title =
        |names: &[&str]| -> Vec<String> { names.iter().map(|s| (*s).to_owned()).collect() };

    // Default: newest first.
    let default = titles(&list(&app, &session, "").await);
    assert_eq!(default, by_title(&["g", "f", "e", "d", "c", "b", "a"]));
    assert_eq!(
        titles(&list(&app, &session, "sort=-createdAt").await),
        default
    );
    assert_eq!(
        titles(&list(&app, &session, "sort=createdAt").await),
        by_title(&["a", "b", "c", "d", "e", "f", "g"])
    );

    // Priority ascending (low < medium < high < urgent), ties by id, which
    // is creation order.
    assert_eq!(
        titles(&list(&app, &session, "sort=priority").await),
        by_title(&["a", "e", "c", "g", "d", "b", "f"])
    );
    assert_eq!(
        titles(&list(&app, &session, "sort=-priority").await),
        by_title(&["f", "b", "d", "g", "c", "e", "a"])
    );

    // Due date ascending puts tasks without one last; descending first.
    assert_eq!(
        titles(&list(&app, &session, "sort=dueDate").await),
        by_title(&["f", "b", "a", "g", "d", "c", "e"])
    );
    assert_eq!(
        titles(&list(&app, &session, "sort=-dueDate").await),
        by_title(&["e", "c", "d", "g", "a", "b", "f"])
    );

    // updatedAt follows changes.
    let first = created[0]["id"].as_str().expect("an id");
    assert_ok_envelope(
        app.patch(
            &format!("/api/v1/tasks/{first}"),
            &session.access,
            &json!({"title": "a2"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        titles(&list(&app, &session, "sort=-updatedAt").await),
        by_title(&["a2", "g", "f", "e", "d", "c", "b"])
    );
    assert_eq!(
        titles(&list(&app, &session, "sort=updatedAt").await),
        by_title(&["b", "c", "d", "e", "f", "g", "a2"])
    );
}

#[tokio::test]
async fn every_sort_paginates_to_the_same_order_as_one_page() {
    let (app, session, created) = with_fixture().await;
    for sort in [
        "createdAt",
        "-createdAt",
        "dueDate",
        "-dueDate",
        "priority",
        "-priority",
        "updatedAt",
        "-updatedAt",
    ] {
        let whole = ids(&list(&app, &session, &format!("sort={sort}&limit=100")).await);
        assert_eq!(whole.len(), created.len(), "sort={sort}");
        for limit in [1, 2, 3] {
            let paged = ids(&app
                .list_all(&session.access, &format!("sort={sort}"), limit)
                .await);
            assert_eq!(paged, whole, "sort={sort} limit={limit}");
        }
        // Filters and pagination together.
        let whole = ids(&list(
            &app,
            &session,
            &format!("sort={sort}&status=todo&limit=100"),
        )
        .await);
        let paged = ids(&app
            .list_all(&session.access, &format!("sort={sort}&status=todo"), 2)
            .await);
        assert_eq!(paged, whole, "sort={sort} status=todo");
        assert_eq!(paged.len(), 3);
    }
}

#[tokio::test]
async fn pages_of_ten_cover_twenty_five_tasks_exactly_once() {
    let app = TestApp::spawn().await;
    let session = app.signup("pages@example.com").await;
    let mut created = BTreeSet::new();
    for i in 0..25 {
        let task = app
            .create_task(&session.access, &json!({"title": format!("Task {i:02}")}))
            .await;
        created.insert(task["id"].as_str().expect("an id").to_owned());
    }

    let mut seen = Vec::new();
    let mut path = "/api/v1/tasks?limit=10".to_owned();
    let mut sizes = Vec::new();
    for page in 0.. {
        let reply = assert_ok_envelope(app.get(&path, &session.access).await, 200).await;
        let items = reply.data().as_array().expect("a list").clone();
        let pagination = &reply.body["meta"]["pagination"];
        sizes.push(items.len());
        seen.extend(ids(&items));
        assert_eq!(pagination["limit"], 10, "{reply:?}");
        if page < 2 {
            assert_eq!(pagination["hasMore"], true, "page {page}: {reply:?}");
            let cursor = pagination["nextCursor"].as_str().expect("a cursor");
            assert!(!cursor.is_empty());
            path = format!(
                "/api/v1/tasks?limit=10&cursor={}",
                encode_query_value(cursor)
            );
        } else {
            assert_eq!(
                pagination,
                &json!({"limit": 10, "nextCursor": null, "hasMore": false}),
                "page {page}: {reply:?}"
            );
            break;
        }
    }
    assert_eq!(sizes, [10, 10, 5]);
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a task was listed twice");
    assert_eq!(unique, created, "every task once");
    // Newest first across the pages.
    let titles: Vec<String> = {
        let all = app.list_all(&session.access, "", 10).await;
        titles(&all)
    };
    let expected: Vec<String> = (0..25).rev().map(|i| format!("Task {i:02}")).collect();
    assert_eq!(titles, expected);

    // Exactly a multiple of the limit: the last full page says no more.
    let reply = assert_ok_envelope(
        app.get("/api/v1/tasks?limit=25", &session.access).await,
        200,
    )
    .await;
    assert_eq!(
        reply.body["meta"]["pagination"],
        json!({"limit": 25, "nextCursor": null, "hasMore": false})
    );
    let reply =
        assert_ok_envelope(app.get("/api/v1/tasks?limit=5", &session.access).await, 200).await;
    assert_eq!(reply.data().as_array().map(Vec::len), Some(5));
    assert_eq!(reply.body["meta"]["pagination"]["hasMore"], true);
    let pages = app.list_all(&session.access, "", 5).await;
    assert_eq!(pages.len(), 25);

    // The default limit is 20, the largest 100.
    let reply = assert_ok_envelope(app.get("/api/v1/tasks", &session.access).await, 200).await;
    assert_eq!(reply.data().as_array().map(Vec::len), Some(20));
    assert_eq!(reply.body["meta"]["pagination"]["limit"], 20);
    let reply = assert_ok_envelope(
        app.get("/api/v1/tasks?limit=100", &session.access).await,
        200,
    )
    .await;
    assert_eq!(reply.data().as_array().map(Vec::len), Some(25));
    assert_eq!(reply.body["meta"]["pagination"]["hasMore"], false);
}

#[tokio::test]
async fn a_deleted_task_does_not_break_its_cursor() {
    let app = TestApp::spawn().await;
    let session = app.signup("cursor@example.com").await;
    for i in 0..5 {
        app.create_task(&session.access, &json!({"title": format!("T{i}")}))
            .await;
    }
    let reply =
        assert_ok_envelope(app.get("/api/v1/tasks?limit=2", &session.access).await, 200).await;
    let first_page = reply.data().as_array().expect("a list").clone();
    let cursor = reply.body["meta"]["pagination"]["nextCursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();
    // Delete the row the cursor points at.
    let last_id = first_page[1]["id"].as_str().expect("an id");
    let response = app
        .delete(&format!("/api/v1/tasks/{last_id}"), &session.access)
        .await;
    assert_eq!(response.status().as_u16(), 204);
    let rest = assert_ok_envelope(
        app.get(
            &format!(
                "/api/v1/tasks?limit=10&cursor={}",
                encode_query_value(&cursor)
            ),
            &session.access,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        titles(rest.data().as_array().expect("a list")),
        ["T2", "T1", "T0"]
    );
}

#[tokio::test]
async fn bad_list_parameters_are_400_naming_the_parameter() {
    let app = TestApp::spawn().await;
    let session = app.signup("badparams@example.com").await;
    for i in 0..3 {
        app.create_task(&session.access, &json!({"title": format!("T{i}")}))
            .await;
    }
    let reply =
        assert_ok_envelope(app.get("/api/v1/tasks?limit=1", &session.access).await, 200).await;
    let created_cursor = reply.body["meta"]["pagination"]["nextCursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();
    let reply = assert_ok_envelope(
        app.get("/api/v1/tasks?limit=1&sort=priority", &session.access)
            .await,
        200,
    )
    .await;
    let priority_cursor = reply.body["meta"]["pagination"]["nextCursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();

    let cases: Vec<(String, &[&str])> = vec![
        ("limit=0".to_owned(), &["limit"]),
        ("limit=101".to_owned(), &["limit"]),
        ("limit=abc".to_owned(), &["limit"]),
        ("limit=-1".to_owned(), &["limit"]),
        ("limit=".to_owned(), &["limit"]),
        ("sort=bogus".to_owned(), &["sort"]),
        ("sort=--createdAt".to_owned(), &["sort"]),
        ("sort=title".to_owned(), &["sort"]),
        ("status=bogus".to_owned(), &["status"]),
        ("status=DONE".to_owned(), &["status"]),
        ("priority=critical".to_owned(), &["priority"]),
        ("cursor=garbage".to_owned(), &["cursor"]),
        ("cursor=".to_owned(), &["cursor"]),
        ("dueBefore=notadate".to_owned(), &["dueBefore"]),
        ("dueAfter=2030-01-01".to_owned(), &["dueAfter"]),
        // A `+` that is not encoded is a space: not a date.
        (
            "dueAfter=2030-01-01T00:00:00+02:00".to_owned(),
            &["dueAfter"],
        ),
        // A cursor of another sort order.
        (
            format!(
                "sort=priority&cursor={}",
                encode_query_value(&created_cursor)
            ),
            &["cursor"],
        ),
        (
            format!("cursor={}", encode_query_value(&priority_cursor)),
            &["cursor"],
        ),
        // Every bad parameter at once is named.
        (
            "limit=0&sort=x&status=y&priority=z&dueBefore=a&dueAfter=b".to_owned(),
            &[
                "limit",
                "sort",
                "status",
                "priority",
                "dueBefore",
                "dueAfter",
            ],
        ),
    ];
    for (query, fields) in &cases {
        let reply = assert_envelope_error(
            app.get(&format!("/api/v1/tasks?{query}"), &session.access)
                .await,
            400,
            "MALFORMED_REQUEST",
        )
        .await;
        for field in *fields {
            assert!(
                reply.details().contains_key(*field),
                "?{query}: expected details.{field}: {reply:?}"
            );
        }
    }
}
