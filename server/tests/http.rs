//! The server over real loopback HTTP: answers equal the library's
//! `colsnap query` output, caching, limits, errors, SSE, files.

mod common;

use common::client;

use colsnap::query::{Engine, Paging, Query, Search, SnapshotSource, parse};
use colsnap::{BuildOptions, Snapshot};
use colsnap_server::{AppState, RowStoreMode, ServerConfig};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Server {
    _running: common::Running,
    base: String,
    state: Arc<AppState>,
    file: PathBuf,
    _dir: tempfile::TempDir,
}

/// The 40 GitHub sample issues plus 260 generated ones.
fn rows() -> Vec<Value> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/github-sample.ndjson"
    ))
    .unwrap();
    let mut v: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let opts = colsnap_testdata::GenOptions {
        count: 260,
        ..Default::default()
    };
    v.extend(colsnap_testdata::issues(&opts));
    // Unique ids: the generated issues' ids follow the sample's.
    for (i, r) in v.iter_mut().enumerate() {
        r["id"] = Value::from(1_000_000 + i as u64);
    }
    v
}

fn build(rows: &[Value]) -> Vec<u8> {
    colsnap::build_to_vec(
        &serde_json::to_vec(rows).unwrap()[..],
        &BuildOptions::default(),
    )
    .unwrap()
}

async fn start(tweak: impl FnOnce(&mut ServerConfig)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("issues.colsnap");
    std::fs::write(&file, build(&rows())).unwrap();
    let mut cfg = ServerConfig::new(vec![file.clone()]);
    tweak(&mut cfg);
    let state = AppState::load(cfg).unwrap();
    let running = common::serve(state.clone()).await;
    Server {
        base: running.base.clone(),
        state,
        _running: running,
        file,
        _dir: dir,
    }
}

/// What `colsnap query` prints for these options (the same library calls).
fn expected(
    file: &PathBuf,
    wheres: &[&str],
    sort: Option<&str>,
    search: Option<(&str, Option<&str>)>,
    fields: Option<&str>,
    paging: Paging,
) -> Value {
    let engine = Engine::new(SnapshotSource::new(Snapshot::open(file).unwrap()));
    let mut q = Query::default();
    for w in wheres {
        q.filters.push(parse::parse_where(w).unwrap());
    }
    if let Some(s) = sort {
        q.sort = parse::parse_sort(s).unwrap();
    }
    if let Some((t, i)) = search {
        q.search = Some(Search {
            text: t.into(),
            fields: i
                .map(|f| parse::parse_fields(f).unwrap())
                .unwrap_or_default(),
        });
    }
    let fields = fields.map(|f| parse::parse_fields(f).unwrap());
    let rows = engine.run(&q).unwrap();
    let mut out = Vec::new();
    engine
        .page_json(&rows, paging, fields.as_deref(), false, &mut out)
        .unwrap();
    serde_json::from_slice(&out).unwrap()
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_equal_the_library_answers() {
    // Whole rows from the row store, and written from the snapshot.
    for mode in [RowStoreMode::Startup, RowStoreMode::Off] {
        rows_equal_the_library_answers_with(mode).await;
    }
}

/// Rows written from the row store so far (`/healthz`).
/// The JSON answer to a GET of `url`.
async fn get_json(c: &reqwest::Client, url: String) -> Value {
    c.get(url).send().await.unwrap().json().await.unwrap()
}

async fn rows_served(c: &reqwest::Client, s: &Server) -> u64 {
    let v: Value = get_json(c, format!("{}/healthz", s.base)).await;
    v["rowStore"]["issues"]["rowsServed"].as_u64().unwrap()
}

async fn rows_equal_the_library_answers_with(mode: RowStoreMode) {
    let s = start(|c| c.row_store.mode = mode).await;
    let c = client();
    type Case<'a> = (
        &'a [&'a str],
        Option<&'a str>,
        Option<(&'a str, Option<&'a str>)>,
        Option<&'a str>,
        Option<usize>,
        Option<usize>,
        usize,
    );
    let cases: Vec<Case> = vec![
        (&[], None, None, None, None, None, 50),
        (
            &[],
            Some("title"),
            None,
            Some("id,title"),
            Some(2),
            None,
            20,
        ),
        (
            &["state=open"],
            Some("-created_at,number"),
            None,
            None,
            None,
            None,
            10,
        ),
        (
            &["comments>=2", "state in open,closed"],
            Some("-comments"),
            None,
            Some("number,comments,state"),
            None,
            Some(3),
            7,
        ),
        (
            &["labels[].name^=b"],
            Some("number"),
            None,
            None,
            None,
            None,
            1000,
        ),
        (
            &["milestone=null"],
            None,
            Some(("the", Some("title"))),
            Some("title"),
            None,
            None,
            5,
        ),
        (
            &[],
            Some("-updated_at"),
            Some(("fix", None)),
            Some("number,title"),
            Some(2),
            None,
            3,
        ),
        // Long text (a row-ordered table: its keys do not order like
        // their strings) sorted, compared and searched.
        (
            &[],
            Some("-body,number"),
            None,
            Some("number"),
            None,
            None,
            300,
        ),
        (
            &["body^=A", "body<M"],
            Some("body"),
            None,
            Some("number"),
            None,
            None,
            300,
        ),
        (
            &["body>=T"],
            None,
            Some(("the", Some("body"))),
            Some("number"),
            None,
            None,
            300,
        ),
        (
            &["user.login!=nobody"],
            Some("user.login,-number"),
            None,
            Some("user.login,number"),
            None,
            Some(0),
            25,
        ),
    ];
    for (wheres, sort, search, fields, page, offset, limit) in cases {
        let mut url = format!("{}/api/issues/rows?limit={limit}", s.base);
        for w in wheres {
            url += &format!("&where={}", enc(w));
        }
        if let Some(x) = sort {
            url += &format!("&sort={}", enc(x));
        }
        if let Some((t, i)) = search {
            url += &format!("&search={}", enc(t));
            if let Some(i) = i {
                url += &format!("&in={}", enc(i));
            }
        }
        if let Some(f) = fields {
            url += &format!("&fields={}", enc(f));
        }
        if let Some(p) = page {
            url += &format!("&page={p}");
        }
        if let Some(o) = offset {
            url += &format!("&offset={o}");
        }
        let paging = match offset {
            Some(o) => Paging::new(o, limit).unwrap(),
            None => Paging::page(page.unwrap_or(1), limit).unwrap(),
        };
        let want = expected(&s.file, wheres, sort, search, fields, paging);
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.headers()["cache-control"], "public, no-cache");
        let has_link = r.headers().get("link").is_some();
        let got: Value = r.json().await.unwrap();
        assert_eq!(got["data"], want["data"], "{url}");
        assert_eq!(got["pagination"], want["pagination"], "{url}");
        let more = want["pagination"]["hasMore"].as_bool().unwrap();
        assert_eq!(got["next"].is_string(), more, "{url}");
        assert_eq!(has_link, more, "{url}");
    }
    // One row by key too.
    let r: Value = get_json(&c, format!("{}/api/issues/rows/1000123", s.base)).await;
    assert_eq!(r, rows()[123]);
    let served = rows_served(&c, &s).await;
    match mode {
        // The cases' whole-row pages: 50 + 10 + 1000 matches + 1.
        RowStoreMode::Startup => assert!(served >= 61, "{served} rows from the store"),
        _ => assert_eq!(served, 0),
    }
}

/// Errors from layers (a method an endpoint does not take, a request not
/// answered in time) have the JSON body and `no-store` of every error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_from_layers_have_a_json_body() {
    let s = start(|c| c.timeout = Duration::from_millis(1)).await;
    let c = client();
    let check = |r: reqwest::Response, status: StatusCode| async move {
        assert_eq!(r.status(), status);
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert_eq!(r.headers()["content-type"], "application/json");
        let allow = r.headers().get("allow").cloned();
        let v: Value = r.json().await.unwrap();
        assert!(v["error"]["parameter"].is_null(), "{v}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty(), "{v}");
        allow
    };
    let r = c
        .delete(format!("{}/api/issues/rows", s.base))
        .send()
        .await
        .unwrap();
    let allow = check(r, StatusCode::METHOD_NOT_ALLOWED).await;
    assert!(allow.is_some_and(|a| a.to_str().unwrap().contains("GET")));
    // A whole export of 300 rows takes more than a millisecond.
    let mut timed_out = false;
    for i in 0..20 {
        // Another query each time: nothing cached answers it.
        let r = c
            .get(format!(
                "{}/api/issues/rows?limit=1000&sort=-body&where=id%3E%3D{}",
                s.base,
                1_000_000 + i
            ))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::SERVICE_UNAVAILABLE {
            check(r, StatusCode::SERVICE_UNAVAILABLE).await;
            timed_out = true;
            break;
        }
    }
    assert!(timed_out, "no request took a millisecond");
}

/// A value holding what once separated the parts of a query's cached
/// name (NUL) names another query, not the one it spells out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_that_differ_never_share_a_cached_answer() {
    let s = start(|_| {}).await;
    let c = client();
    let total = |v: &Value| v["pagination"]["total"].as_u64().unwrap();
    let odd = format!(
        "{}/api/issues/rows?where=state%3Dopen%00sort%00number&fields=number",
        s.base
    );
    let plain = format!(
        "{}/api/issues/rows?where=state%3Dopen&sort=number&fields=number",
        s.base
    );
    let want = expected(
        &s.file,
        &["state=open"],
        Some("number"),
        None,
        Some("number"),
        Paging::page(1, 50).unwrap(),
    );
    assert!(want["pagination"]["total"].as_u64().unwrap() > 0);
    for _ in 0..2 {
        let a = get_json(&c, odd.clone()).await;
        assert_eq!(total(&a), 0, "{a}");
        let b = get_json(&c, plain.clone()).await;
        assert_eq!(b["data"], want["data"]);
        assert_eq!(b["pagination"], want["pagination"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_walk_every_row_once_and_bad_cursors_are_refused() {
    let s = start(|_| {}).await;
    let c = client();
    let all: Value = get_json(
        &c,
        format!(
            "{}/api/issues/rows?sort=-comments,title&where=state%3Dopen&limit=1000&fields=id",
            s.base
        ),
    )
    .await;
    let all = all["data"].as_array().unwrap().clone();
    assert!(all.len() > 40);
    let mut url = format!(
        "{}/api/issues/rows?sort=-comments,title&where=state%3Dopen&limit=13&fields=id",
        s.base
    );
    let mut got = Vec::new();
    let mut pages = 0;
    loop {
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let link = r
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_string());
        let v: Value = r.json().await.unwrap();
        got.extend(v["data"].as_array().unwrap().iter().cloned());
        pages += 1;
        match link {
            Some(l) => {
                assert!(l.ends_with(">; rel=\"next\""), "{l}");
                let path = &l[1..l.find('>').unwrap()];
                assert!(path.contains(v["next"].as_str().unwrap()));
                url = format!("{}{path}", s.base);
            }
            None => break,
        }
    }
    assert_eq!(got, all);
    assert_eq!(pages, all.len().div_ceil(13));
    // A cursor of this query used with another query, and garbage.
    let first: Value = get_json(&c, format!("{}/api/issues/rows?sort=title&limit=5", s.base)).await;
    let cur = first["next"].as_str().unwrap();
    for bad in [
        format!(
            "{}/api/issues/rows?sort=-title&limit=5&cursor={cur}",
            s.base
        ),
        format!("{}/api/issues/rows?cursor=zz", s.base),
        format!(
            "{}/api/issues/rows?cursor=00000000000000000000000000000000",
            s.base
        ),
        format!("{}/api/issues/rows?sort=title&cursor={cur}&page=2", s.base),
    ] {
        let r = c.get(&bad).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["parameter"], "cursor", "{bad}");
    }
    // The same cursor with another limit is fine (it is a position).
    let r = c
        .get(format!(
            "{}/api/issues/rows?sort=title&limit=2&cursor={cur}",
            s.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["pagination"]["page"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_row_by_key_schema_and_health() {
    let s = start(|_| {}).await;
    let c = client();
    let rows = rows();
    let r = c
        .get(format!("{}/api/issues/rows/1000007", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("etag").is_some());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, rows[7]);
    let v: Value = get_json(
        &c,
        format!("{}/api/issues/rows/1000299?fields=id,title", s.base),
    )
    .await;
    assert_eq!(
        v,
        serde_json::json!({"id": 1000299, "title": rows[299]["title"]})
    );
    // No such key; a key the integer key column cannot hold: no such row.
    for key in ["42", "abc", "1.5"] {
        let r = c
            .get(format!("{}/api/issues/rows/{key}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{key}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["parameter"], "key");
    }

    let v: Value = get_json(&c, format!("{}/api/issues", s.base)).await;
    assert_eq!(v["rows"], 300);
    assert_eq!(v["key"], "id");
    let cols = v["columns"].as_array().unwrap();
    let comments = cols.iter().find(|c| c["path"] == "comments").unwrap();
    let max = rows
        .iter()
        .filter_map(|r| r["comments"].as_i64())
        .max()
        .unwrap();
    assert_eq!(comments["max"], max);
    assert!(
        cols.iter()
            .any(|c| c["path"] == "labels[].name" && c["list"] == true)
    );

    let r = c.get(format!("{}/healthz", s.base)).send().await.unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["snapshots"], serde_json::json!(["issues"]));
    let v: Value = get_json(&c, format!("{}/api", s.base)).await;
    assert_eq!(v["snapshots"][0]["rows"], 300);
    // Like every endpoint, the index and the health check refuse a
    // parameter they do not take, naming it.
    for path in ["/api?x=1", "/healthz?x=1", "/api/issues?limit=1"] {
        let r = c.get(format!("{}{path}", s.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        let v: Value = r.json().await.unwrap();
        let msg = v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(msg.contains("unknown parameter"), "{path}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etags_give_304_and_compression_and_cors_apply() {
    let s = start(|c| c.cors = Some("https://app.example".into())).await;
    let c = client();
    // `If-None-Match: *` names no answer: a bad query or a missing row is
    // still refused, a good one answered.
    for (path, status) in [
        ("/api/issues/rows?page=0", StatusCode::BAD_REQUEST),
        ("/api/issues/rows/123456", StatusCode::NOT_FOUND),
        ("/api/issues/rows?limit=1", StatusCode::OK),
    ] {
        let r = c
            .get(format!("{}{path}", s.base))
            .header("if-none-match", "*")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{path}");
    }
    for path in [
        "/api/issues/rows?sort=title&limit=3",
        "/api/issues",
        "/api/issues/rows/1000001",
    ] {
        let url = format!("{}{path}", s.base);
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        assert!(
            etag.starts_with('"') && etag.ends_with('"'),
            "strong: {etag}"
        );
        let r = c
            .get(&url)
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(r.headers()["etag"], etag.as_str());
        assert_eq!(r.headers()["cache-control"], "public, no-cache");
        assert!(r.bytes().await.unwrap().is_empty());
        let r = c
            .get(&url)
            .header("if-none-match", "\"other\", W/".to_string() + &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        let r = c
            .get(&url)
            .header("if-none-match", "\"other\"")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let a = c
        .get(format!("{}/api/issues/rows?sort=title", s.base))
        .send()
        .await
        .unwrap();
    let b = c
        .get(format!("{}/api/issues/rows?sort=-title", s.base))
        .send()
        .await
        .unwrap();
    assert_ne!(a.headers()["etag"], b.headers()["etag"]);

    let r = c
        .get(format!("{}/api/issues/rows?limit=100", s.base))
        .header("accept-encoding", "gzip")
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    // Another encoding of the answer: the same tag, weak (a strong tag
    // names one sequence of bytes), and it revalidates.
    let plain = c
        .get(format!("{}/api/issues/rows?limit=100", s.base))
        .send()
        .await
        .unwrap();
    let strong = plain.headers()["etag"].to_str().unwrap().to_string();
    assert!(strong.starts_with('"'), "{strong}");
    let weak = r.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(weak, format!("W/{strong}"));
    let again = c
        .get(format!("{}/api/issues/rows?limit=100", s.base))
        .header("accept-encoding", "gzip")
        .header("if-none-match", &weak)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let vary: Vec<String> = r
        .headers()
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .collect();
    assert!(
        vary.iter().any(|v| v.contains("accept-encoding")),
        "{vary:?}"
    );
    assert!(vary.iter().any(|v| v.contains("origin")), "{vary:?}");
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let r = c
        .get(format!("{}/api/issues", s.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    // A fixed origin is always the one named (the browser refuses the others).
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_with_retry_after() {
    // One request a second: twelve in a row meet the limit unless each
    // takes a second (with three, a loaded machine taking a third of a
    // second a request never did).
    let s = start(|c| c.rate_limit = Some(1)).await;
    let c = client();
    let mut statuses = Vec::new();
    let mut retry = None;
    for _ in 0..12 {
        let r = c
            .get(format!("{}/api/issues", s.base))
            .send()
            .await
            .unwrap();
        statuses.push(r.status());
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            retry = Some(
                r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap(),
            );
            let v: Value = r.json().await.unwrap();
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("rate limit")
            );
        }
    }
    assert!(statuses[0].is_success());
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert!(retry.unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_parameter_class_is_a_4xx_naming_it() {
    let s = start(|c| c.max_query_bytes = 2048).await;
    let c = client();
    let long = "a".repeat(3000);
    let cases: Vec<(String, u16, Value)> = vec![
        (
            "/api/issues/rows?where=nosuch%3D1".into(),
            400,
            "where".into(),
        ),
        ("/api/issues/rows?sort=-nosuch".into(), 400, "sort".into()),
        // 33 different fields (the same one repeated is dropped, not counted).
        (
            format!(
                "/api/issues/rows?sort={}",
                (0..33)
                    .map(|i| ["id", "number", "title", "state", "body", "comments"][i % 6])
                    .collect::<Vec<_>>()
                    .join(",")
                    + ",user.login,user.id,locked,created_at,updated_at,closed_at,author_association"
                    + ",url,html_url,node_id,labels_url,comments_url,events_url,repository_url"
                    + ",user.node_id,user.type,user.site_admin,user.url,user.html_url,user.avatar_url"
                    + ",user.gravatar_id,user.followers_url,user.following_url,user.gists_url"
                    + ",user.starred_url,user.repos_url,user.events_url"
            ),
            400,
            "sort".into(),
        ),
        (
            "/api/issues/rows?fields=id,nosuch".into(),
            400,
            "fields".into(),
        ),
        (
            "/api/issues/rows?search=x&in=nosuch".into(),
            400,
            "in".into(),
        ),
        // An empty name in a list names no field: a typo, not ignored.
        (
            "/api/issues/rows?fields=id,,title".into(),
            400,
            "fields".into(),
        ),
        (
            "/api/issues/rows?search=x&in=title,".into(),
            400,
            "in".into(),
        ),
        (
            "/api/issues/rows?search=x&in=comments".into(),
            400,
            "search".into(),
        ),
        ("/api/issues/rows?in=title".into(), 400, "in".into()),
        (
            "/api/issues/rows?where=state~open".into(),
            400,
            "where".into(),
        ),
        (
            "/api/issues/rows?where=comments%3E%3Dlots".into(),
            400,
            "where".into(),
        ),
        ("/api/issues/rows?where=%FF%3D1".into(), 400, "where".into()),
        ("/api/issues/rows?sort=%C3%28".into(), 400, "sort".into()),
        ("/api/issues/rows?page=999".into(), 404, "page".into()),
        ("/api/issues/rows?offset=300".into(), 404, "offset".into()),
        ("/api/issues/rows?page=0".into(), 400, "page".into()),
        ("/api/issues/rows?page=1e99".into(), 400, "page".into()),
        (
            "/api/issues/rows?page=99999999999999999999999999".into(),
            400,
            "page".into(),
        ),
        (
            "/api/issues/rows?page=18446744073709551615&limit=1000".into(),
            400,
            "page".into(),
        ),
        ("/api/issues/rows?offset=-1".into(), 400, "offset".into()),
        ("/api/issues/rows?limit=0".into(), 400, "limit".into()),
        ("/api/issues/rows?limit=1001".into(), 400, "limit".into()),
        ("/api/issues/rows?limit=".into(), 400, "limit".into()),
        (
            "/api/issues/rows?page=1&offset=2".into(),
            400,
            "offset".into(),
        ),
        ("/api/issues/rows?page=1&page=2".into(), 400, "page".into()),
        ("/api/issues/rows?bogus=1".into(), 400, "bogus".into()),
        (
            format!("/api/issues/rows?search={long}"),
            414,
            "query".into(),
        ),
        ("/api/nosuch/rows".into(), 404, "name".into()),
        ("/api/nosuch".into(), 404, "name".into()),
        ("/api/%FF/rows".into(), 400, "path".into()),
        ("/files/..%2F..%2Fetc%2Fpasswd".into(), 404, "file".into()),
        ("/files/issues.colsnap%00.txt".into(), 404, "file".into()),
        ("/files/issues".into(), 404, "file".into()),
        ("/nowhere".into(), 404, Value::Null),
        (
            "/api/issues/stream?chunkSize=0".into(),
            400,
            "chunkSize".into(),
        ),
        (
            "/api/issues/stream?where=nosuch%3D1".into(),
            400,
            "where".into(),
        ),
        ("/api/issues/stream?page=2".into(), 400, "page".into()),
    ];
    for (path, status, param) in cases {
        let r = c.get(format!("{}{path}", s.base)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{path}"
        );
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["parameter"], param, "{path}: {v}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    }
    let r = c
        .get(format!("{}/api/issues/stream", s.base))
        .header("last-event-id", "garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["parameter"], "Last-Event-ID");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_is_served_with_ranges_and_validators() {
    let s = start(|_| {}).await;
    let c = client();
    let bytes = std::fs::read(&s.file).unwrap();
    let url = format!("{}/files/issues.colsnap", s.base);
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert!(r.headers().get("content-encoding").is_none());
    assert_eq!(r.bytes().await.unwrap(), bytes);
    let r = c
        .get(&url)
        .header("range", "bytes=4-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 4-19/{}", bytes.len()).as_str()
    );
    assert_eq!(r.bytes().await.unwrap(), bytes[4..20]);
    let r = c
        .get(&url)
        .header("range", "bytes=-32")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap(), bytes[bytes.len() - 32..]);
    let r = c
        .get(&url)
        .header("range", format!("bytes={}-", bytes.len() + 10))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let r = c
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    // If-Range with a stale tag: the whole (new) file.
    let r = c
        .get(&url)
        .header("range", "bytes=0-9")
        .header("if-range", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().len(), bytes.len());
    let r = c
        .get(&url)
        .header("range", "bytes=0-9")
        .header("if-range", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
}

/// The parts of a `multipart/byteranges` body, each cut by the length its
/// `Content-Range` gives: `(first, last, total, bytes)`. Checks every
/// delimiter and the closing one.
fn multipart_parts(body: &[u8], boundary: &str) -> Vec<(u64, u64, u64, Vec<u8>)> {
    let mut parts = Vec::new();
    let mut at = 0;
    loop {
        let delim = format!("{}--{boundary}", if at == 0 { "" } else { "\r\n" });
        assert_eq!(
            &body[at..at + delim.len()],
            delim.as_bytes(),
            "delimiter at {at}"
        );
        at += delim.len();
        if &body[at..] == b"--\r\n" {
            return parts;
        }
        let end = at
            + body[at..]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .unwrap();
        let head = std::str::from_utf8(&body[at..end])
            .unwrap()
            .to_ascii_lowercase();
        at = end + 4;
        let cr = head
            .lines()
            .find_map(|l| l.strip_prefix("content-range: bytes "))
            .unwrap();
        let (range, total) = cr.split_once('/').unwrap();
        let (a, b) = range.split_once('-').unwrap();
        let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
        let n = (b + 1 - a) as usize;
        parts.push((a, b, total.parse().unwrap(), body[at..at + n].to_vec()));
        at += n;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_ranges_come_in_one_multipart_answer() {
    let s = start(|_| {}).await;
    let c = client();
    let bytes = std::fs::read(&s.file).unwrap();
    let n = bytes.len() as u64;
    assert!(n > 4096, "the test file is {n} bytes");
    let url = format!("{}/files/issues.colsnap", s.base);
    // From a client that takes compressed answers: a file's bytes are
    // never compressed, in one range or several.
    let get = |range: String| {
        c.get(&url)
            .header("range", range)
            .header("accept-encoding", "gzip, br, zstd")
            .send()
    };
    // Three ranges, answered in the order asked.
    let r = get(format!("bytes={}-{}, 0-9,-5", n / 2, n / 2 + 99))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert!(r.headers().get("content-encoding").is_none());
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
    let boundary = ctype
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap()
        .to_string();
    assert!(r.headers().get("content-range").is_none());
    let len = r.content_length().unwrap();
    let body = r.bytes().await.unwrap();
    assert_eq!(body.len() as u64, len);
    let parts = multipart_parts(&body, &boundary);
    let want = [(n / 2, n / 2 + 99), (0, 9), (n - 5, n - 1)];
    assert_eq!(parts.len(), 3);
    for ((a, b, total, got), (wa, wb)) in parts.iter().zip(want) {
        assert_eq!((*a, *b, *total), (wa, wb, n));
        assert_eq!(got[..], bytes[wa as usize..=wb as usize]);
    }
    // Overlapping ranges are merged (never more bytes than the file):
    // here into one, a plain 206.
    let r = get("bytes=0-,0-,0-,10-20".into()).await.unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 0-{}/{n}", n - 1).as_str()
    );
    assert_eq!(r.bytes().await.unwrap(), bytes);
    // Unsatisfiable ranges are left out; none satisfiable: 416.
    let r = get(format!("bytes=0-3,{}-", n + 5)).await.unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap(), bytes[..4]);
    let r = get(format!("bytes={}-,{}-", n, n + 5)).await.unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    // Past 256 ranges the header is ignored: the whole file.
    let many: Vec<String> = (0..257).map(|i| format!("{}-{}", 2 * i, 2 * i)).collect();
    let r = get(format!("bytes={}", many.join(","))).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap(), bytes);

    // The crate's own HTTP reader asks for far-apart ranges in one request
    // and gets only their bytes (before, this server answered the whole file).
    let read = tokio::task::spawn_blocking(move || {
        use colsnap::source::{ByteSource, HttpClient, HttpOptions, HttpSource};
        let http = HttpClient::new(HttpOptions {
            merge_gap: 0,
            ..HttpOptions::default()
        })
        .unwrap();
        let src = HttpSource::open_with(&url, http).unwrap();
        let before = src.stats();
        let got = src.read_ranges(&[0..10, n / 2..n / 2 + 100]).unwrap();
        let after = src.stats();
        (
            got,
            after.requests - before.requests,
            after.bytes - before.bytes,
        )
    })
    .await
    .unwrap();
    assert_eq!(read.0[0], bytes[..10]);
    assert_eq!(read.0[1], bytes[n as usize / 2..n as usize / 2 + 100]);
    assert_eq!(read.1, 1, "one request for both ranges");
    assert!(read.2 < 1000, "{} bytes received for 110", read.2);
}

#[derive(Debug, Clone, PartialEq)]
struct Ev {
    event: String,
    id: Option<String>,
    data: String,
}

/// Read the stream `url` up to its `n`-th data event, then ask it again
/// with that event's id as `Last-Event-ID` and read the rest (a `200`):
/// the events before the stop, and those after the resume.
async fn stop_and_resume(c: &reqwest::Client, url: &str, n: usize) -> (Vec<Ev>, Vec<Ev>) {
    let mut seen = 0;
    let r = c.get(url).send().await.unwrap();
    let (first, _) = read_events(r, |e| {
        seen += usize::from(e.event == "data");
        seen == n
    })
    .await;
    let last = first.last().unwrap().id.clone().unwrap();
    let r = c
        .get(url)
        .header("last-event-id", &last)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (rest, _) = read_events(r, |_| false).await;
    (first, rest)
}

/// Read SSE events from `r` until `stop` says so (or the stream ends).
async fn read_events(r: reqwest::Response, mut stop: impl FnMut(&Ev) -> bool) -> (Vec<Ev>, String) {
    let mut body = r.bytes_stream();
    let mut buf = String::new();
    let mut raw = String::new();
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = String::from_utf8(chunk.unwrap().to_vec()).unwrap();
        raw.push_str(&chunk);
        buf.push_str(&chunk);
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut ev = Ev {
                event: "message".into(),
                id: None,
                data: String::new(),
            };
            let mut any = false;
            for line in block.lines() {
                let (k, v) = line.split_once(':').unwrap_or((line, ""));
                let v = v.strip_prefix(' ').unwrap_or(v);
                match k {
                    "event" => ev.event = v.into(),
                    "id" => ev.id = Some(v.into()),
                    "data" => {
                        ev.data.push_str(v);
                        any = true;
                    }
                    _ => {}
                }
            }
            if any {
                let done = stop(&ev);
                out.push(ev);
                if done {
                    return (out, raw);
                }
            }
        }
    }
    (out, raw)
}

fn data_rows(evs: &[Ev]) -> Vec<Value> {
    evs.iter()
        .filter(|e| e.event == "data")
        .flat_map(|e| serde_json::from_str::<Vec<Value>>(&e.data).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_streams_everything_and_resumes_without_loss_or_repeat() {
    let s = start(|_| {}).await;
    let c = client();
    let q = "chunkSize=7&sort=-number&where=state%3Dopen&fields=id,number";
    let url = format!("{}/api/issues/stream?{q}", s.base);
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let (all, raw) = read_events(r, |_| false).await;
    assert!(
        raw.starts_with("event: metadata") || raw.contains("retry:"),
        "{raw:.200}"
    );
    assert!(raw.contains("retry: 3000") || raw.contains("retry:3000"));
    assert_eq!(all[0].event, "metadata");
    assert_eq!(all.last().unwrap().event, "complete");
    assert!(all.iter().all(|e| e.id.is_some()));
    let want: Value = get_json(
        &c,
        format!(
            "{}/api/issues/rows?limit=1000&sort=-number&where=state%3Dopen&fields=id,number",
            s.base
        ),
    )
    .await;
    let rows = data_rows(&all);
    assert_eq!(Value::from(rows.clone()), want["data"]);
    let total = rows.len();
    let meta: Value = serde_json::from_str(&all[0].data).unwrap();
    assert_eq!(meta["total"], total);
    assert!(
        all.iter()
            .filter(|e| e.event == "data")
            .all(|e| { serde_json::from_str::<Vec<Value>>(&e.data).unwrap().len() <= 7 })
    );

    // Stop after the third data event, resume from its id.
    let (first, rest) = stop_and_resume(&c, &url, 3).await;
    let last = first.last().unwrap().id.clone().unwrap();
    let meta: Value = serde_json::from_str(&rest[0].data).unwrap();
    assert_eq!(meta["from"], 21);
    let mut joined = data_rows(&first);
    joined.extend(data_rows(&rest));
    assert_eq!(joined, rows, "resume lost or repeated rows");
    // Resuming after `complete` ends the stream; another query's id is refused.
    let done = rest.last().unwrap().id.clone().unwrap();
    let r = c
        .get(&url)
        .header("last-event-id", &done)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = c
        .get(format!("{}/api/issues/stream?chunkSize=8", s.base))
        .header("last-event-id", &last)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

/// Whole rows sorted by a string column, strings read ahead a window at a
/// time (windows of one event and of many): exactly what `colsnap query`
/// prints for the same sort, and a client resuming with `Last-Event-ID`
/// in the middle of a window gets the rest, nothing lost or repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_whole_rows_equal_colsnap_query_and_resume_mid_window() {
    let runs = [
        (1, RowStoreMode::Off),
        (64 << 20, RowStoreMode::Off),
        (64 << 20, RowStoreMode::Startup),
    ];
    for (window, mode) in runs {
        let s = start(|c| {
            c.stream_window_bytes = window;
            c.row_store.mode = mode;
        })
        .await;
        let c = client();
        let url = format!("{}/api/issues/stream?chunkSize=9&sort=title,number", s.base);
        let r = c.get(&url).send().await.unwrap();
        let (all, _) = read_events(r, |_| false).await;
        assert_eq!(all.last().unwrap().event, "complete");
        let rows = data_rows(&all);
        let want = expected(
            &s.file,
            &[],
            Some("title,number"),
            None,
            None,
            Paging::new(0, 1000).unwrap(),
        );
        assert_eq!(rows.len(), 300);
        assert_eq!(Value::from(rows.clone()), want["data"], "window {window}");
        // Stop after the fourth data event (inside the first windows of
        // many rows), resume from its id.
        let (first, rest) = stop_and_resume(&c, &url, 4).await;
        let meta: Value = serde_json::from_str(&rest[0].data).unwrap();
        assert_eq!(meta["from"], 36);
        let mut joined = data_rows(&first);
        joined.extend(data_rows(&rest));
        assert_eq!(
            joined, rows,
            "resume lost or repeated rows (window {window})"
        );
        let served = rows_served(&c, &s).await;
        match mode {
            RowStoreMode::Startup => assert!(served >= 300, "{served} rows from the store"),
            _ => assert_eq!(served, 0),
        }
    }
}

/// One event per write (paced) or many per write: the same events, and
/// every row once, in order (heartbeats, here every 1 ms, in between
/// change nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_batches_do_not_change_the_events() {
    let fast = start(|_| {}).await;
    let paced = start(|c| {
        c.stream_pause = Duration::from_millis(1);
        c.heartbeat = Duration::from_millis(1);
    })
    .await;
    let c = client();
    let q = "/api/issues/stream?chunkSize=3&sort=title&fields=id,title";
    let r = c.get(format!("{}{q}", fast.base)).send().await.unwrap();
    let (a, _) = read_events(r, |_| false).await;
    let r = c.get(format!("{}{q}", paced.base)).send().await.unwrap();
    let (b, raw) = read_events(r, |_| false).await;
    let strip = |v: &[Ev]| {
        v.iter()
            .map(|e| {
                (
                    e.event.clone(),
                    e.id.clone().map(|i| i[16..].to_string()),
                    e.data.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&a), strip(&b));
    let rows = data_rows(&a);
    let total: Value = serde_json::from_str(&a[0].data).unwrap();
    assert_eq!(rows.len(), total["total"].as_u64().unwrap() as usize);
    assert!(a.len() > 4, "several data events: {}", a.len());
    let ids: Vec<&str> = a.iter().filter_map(|e| e.id.as_deref()).collect();
    assert!(ids.iter().all(|i| i.len() > 17), "{ids:?}");
    assert!(raw.contains("\n\nevent: data\nid: "), "{raw:.300}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_mid_stream_leaks_nothing() {
    let s = start(|c| c.stream_pause = Duration::from_millis(20)).await;
    let c = client();
    assert_eq!(s.state.streams(), 0);
    let mut clients = Vec::new();
    for _ in 0..3 {
        let r = c
            .get(format!("{}/api/issues/stream?chunkSize=1", s.base))
            .send()
            .await
            .unwrap();
        let mut n = 0;
        let (evs, _) = read_events(r, |e| {
            n += usize::from(e.event == "data");
            n == 2
        })
        .await;
        assert_eq!(evs.len(), 3);
        clients.push(evs);
    }
    // read_events dropped each response: the server must notice.
    let t0 = Instant::now();
    while s.state.streams() != 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "streams still open: {}",
            s.state.streams()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // While one is open the counter shows it.
    let r = c
        .get(format!("{}/api/issues/stream?chunkSize=1", s.base))
        .send()
        .await
        .unwrap();
    let mut body = r.bytes_stream();
    body.next().await.unwrap().unwrap();
    let h: Value = get_json(&c, format!("{}/healthz", s.base)).await;
    assert_eq!(h["activeStreams"], 1);
    drop(body);
    let t0 = Instant::now();
    while s.state.streams() != 0 {
        assert!(t0.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_file_is_swapped_in_whole() {
    let s = start(|c| c.reload_interval = Some(Duration::from_millis(50))).await;
    let c = client();
    let url = format!("{}/api/issues/rows?sort=number&limit=5", s.base);
    let r = c.get(&url).send().await.unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["pagination"]["total"], 300);
    let cursor = v["next"].as_str().unwrap().to_string();
    // A new build, renamed over the served file (as `colsnap build` writes).
    let tmp = s.file.with_extension("tmp");
    std::fs::write(&tmp, build(&rows()[..120])).unwrap();
    std::fs::rename(&tmp, &s.file).unwrap();
    let t0 = Instant::now();
    loop {
        let v: Value = c.get(&url).send().await.unwrap().json().await.unwrap();
        if v["pagination"]["total"] == 120 {
            break;
        }
        // Never a mix: the old total or the new one.
        assert_eq!(v["pagination"]["total"], 300);
        assert!(t0.elapsed() < Duration::from_secs(10), "not reloaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = c
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the old version's tag no longer matches"
    );
    let r = c
        .get(format!("{url}&cursor={cursor}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "an old version's cursor is refused"
    );
    let v: Value = get_json(&c, format!("{}/api/issues", s.base)).await;
    assert_eq!(v["rows"], 120);
    // A file that does not open keeps the last good version served.
    std::fs::write(&tmp, b"not a snapshot").unwrap();
    std::fs::rename(&tmp, &s.file).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v: Value = get_json(&c, format!("{}/api/issues", s.base)).await;
    assert_eq!(v["rows"], 120);
}

/// The log beside a snapshot (`NAME.events.ndjson`) is looked for again
/// at each reload, as at start: one that appears is applied, one that goes
/// (a compacted snapshot put in the old one's place) no longer is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_beside_the_snapshot_is_looked_for_at_each_reload() {
    let s = start(|c| c.reload_interval = None).await;
    let c = client();
    let info = || async { get_json(&c, format!("{}/api/issues", s.base)).await };
    assert_eq!(info().await["eventsApplied"], 0);
    let log = s.file.with_file_name("issues.events.ndjson");
    std::fs::write(
        &log,
        concat!(
            r#"{"seq":1,"op":"create","key":7,"row":{"id":7,"title":"from the log"}}"#,
            "\n"
        ),
    )
    .unwrap();
    assert_eq!(s.state.reload_changed(), vec!["issues".to_string()]);
    let v = info().await;
    assert_eq!(
        (v["eventsApplied"].as_u64(), v["rows"].as_u64()),
        (Some(1), Some(301))
    );
    assert!(s.state.reload_changed().is_empty());
    // Compacted: the new snapshot holds the row, the log is gone.
    let mut rows = rows();
    rows.push(serde_json::json!({"id": 7, "title": "from the log"}));
    let tmp = s.file.with_extension("tmp");
    std::fs::write(&tmp, build(&rows)).unwrap();
    std::fs::rename(&tmp, &s.file).unwrap();
    std::fs::remove_file(&log).unwrap();
    assert_eq!(s.state.reload_changed(), vec!["issues".to_string()]);
    let v = info().await;
    assert_eq!(
        (v["eventsApplied"].as_u64(), v["rows"].as_u64()),
        (Some(0), Some(301))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_served_is_the_version_served() {
    let s = start(|c| c.reload_interval = None).await;
    let c = client();
    let old = std::fs::read(&s.file).unwrap();
    let url = format!("{}/files/issues.colsnap", s.base);
    let etag = c.get(&url).send().await.unwrap().headers()["etag"].clone();
    // A new build renamed over the path: until it is swapped in, the
    // old version's bytes, under the old version's tag.
    let tmp = s.file.with_extension("tmp");
    std::fs::write(&tmp, build(&rows()[..10])).unwrap();
    std::fs::rename(&tmp, &s.file).unwrap();
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.headers()["etag"], etag);
    assert_eq!(r.bytes().await.unwrap(), old);
    let r = c
        .get(&url)
        .header("range", "bytes=-32")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap(), old[old.len() - 32..]);
    assert_eq!(s.state.reload_changed(), vec!["issues".to_string()]);
    let r = c.get(&url).send().await.unwrap();
    assert_ne!(r.headers()["etag"], etag);
    assert_eq!(r.bytes().await.unwrap(), std::fs::read(&s.file).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_log_is_applied_like_colsnap_query_events() {
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("events.ndjson");
    std::fs::write(
        &log,
        concat!(
            r#"{"seq":1,"op":"update","key":1000000,"set":{"title":"zzz from an event"}}"#,
            "\n",
            r#"{"seq":2,"op":"delete","key":1000001}"#,
            "\n",
            r#"{"seq":3,"op":"create","key":5,"row":{"id":5,"title":"new","state":"open","comments":99}}"#,
            "\n",
            r#"{"seq":4,"op":"create","key":6,"at":0,"row":{"id":6,"title":"first","state":"closed"}}"#,
            "\n",
        ),
    )
    .unwrap();
    let l = log.clone();
    let s = start(move |c| {
        c.events = vec![("issues".into(), l)];
        // The test reloads by hand below: no background reload may take
        // the change first.
        c.reload_interval = None;
    })
    .await;
    let c = client();
    let get = |p: String| {
        let c = c.clone();
        async move { c.get(p).send().await.unwrap() }
    };
    let v: Value = get(format!("{}/api/issues", s.base))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            v["rows"].as_u64(),
            v["snapshotRows"].as_u64(),
            v["eventsApplied"].as_u64()
        ),
        (Some(301), Some(300), Some(4))
    );
    let r = get(format!("{}/api/issues/rows/1000001", s.base)).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let v: Value = get(format!(
        "{}/api/issues/rows/5?fields=title,comments",
        s.base
    ))
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v, serde_json::json!({"title": "new", "comments": 99}));
    // The same answers as the engine over the overlay (`colsnap query --events`).
    let engine = Engine::new(colsnap::events::OverlaySource::new(
        colsnap::events::load_overlay(Snapshot::open(&s.file).unwrap(), &log, "id").unwrap(),
    ));
    for (q, sort, wheres, search) in [
        (
            "sort=-comments,title&fields=id,title,comments&limit=20",
            "-comments,title",
            vec![],
            None,
        ),
        (
            "where=title%5E%3Dz&fields=id,title",
            "",
            vec!["title^=z"],
            None,
        ),
        (
            "where=state%3Dclosed&sort=id&fields=id&limit=1000",
            "id",
            vec!["state=closed"],
            None,
        ),
        // Long text over the overlay: ranks, not keys, order it.
        (
            "sort=-body,id&fields=id&limit=1000",
            "-body,id",
            vec![],
            None,
        ),
        (
            "where=body%5E%3DA&where=body%3CM&sort=body&fields=id&limit=1000",
            "body",
            vec!["body^=A", "body<M"],
            None,
        ),
        (
            "search=the&in=body&sort=id&fields=id&limit=1000",
            "id",
            vec![],
            Some("the"),
        ),
    ] {
        let mut query = Query::default();
        for w in &wheres {
            query.filters.push(parse::parse_where(w).unwrap());
        }
        if let Some(t) = search {
            query.search = Some(Search {
                text: t.into(),
                fields: parse::parse_fields("body").unwrap(),
            });
        }
        if !sort.is_empty() {
            query.sort = parse::parse_sort(sort).unwrap();
        }
        let fields = q
            .split("fields=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        let fields = parse::parse_fields(fields).unwrap();
        let limit = q.split("limit=").nth(1).map_or(50, |l| l.parse().unwrap());
        let rows = engine.run(&query).unwrap();
        let mut out = Vec::new();
        engine
            .page_json(
                &rows,
                Paging::page(1, limit).unwrap(),
                Some(&fields),
                false,
                &mut out,
            )
            .unwrap();
        let want: Value = serde_json::from_slice(&out).unwrap();
        let got: Value = get(format!("{}/api/issues/rows?{q}", s.base))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(got["data"], want["data"], "{q}");
        assert_eq!(got["pagination"], want["pagination"], "{q}");
    }
    // A longer log is picked up, with a new tag.
    let url = format!(
        "{}/api/issues/rows?where=title%5E%3Dz&fields=id,title",
        s.base
    );
    let etag = get(url.clone()).await.headers()["etag"].clone();
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str(r#"{"seq":5,"op":"update","key":1000002,"set":{"title":"zz again"}}"#);
    text.push('\n');
    let tmp = log.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &log).unwrap();
    assert_eq!(s.state.reload_changed(), vec!["issues".to_string()]);
    let r = get(url).await;
    assert_ne!(r.headers()["etag"], etag);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["pagination"]["total"], 2);
}

/// A page file with a `.gz` beside it (web/build.sh writes them with
/// zopfli) goes out as that file to a client taking gzip, and as itself to
/// one that does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_files_go_out_as_their_gzip_beside_them() {
    let web = tempfile::tempdir().unwrap();
    std::fs::write(web.path().join("index.html"), "<!doctype html><p>grid</p>").unwrap();
    std::fs::create_dir(web.path().join("pkg")).unwrap();
    let raw: Vec<u8> = b"\0asm\x01\0\0\0"
        .iter()
        .copied()
        .cycle()
        .take(4096)
        .collect();
    std::fs::write(web.path().join("pkg/m.wasm"), &raw).unwrap();
    // Not a real gzip: what goes out is the file as it lies.
    let gz = b"\x1f\x8b precompressed bytes".to_vec();
    std::fs::write(web.path().join("pkg/m.wasm.gz"), &gz).unwrap();
    let dir = web.path().to_path_buf();
    let s = start(move |c| c.web = Some(dir)).await;
    let c = reqwest::Client::new();
    let url = format!("{}/web/pkg/m.wasm", s.base);
    let r = c
        .get(&url)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(r.headers()["content-type"], "application/wasm");
    assert_eq!(r.bytes().await.unwrap().to_vec(), gz);
    let r = c
        .get(&url)
        .header("accept-encoding", "identity")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("content-encoding").is_none());
    assert_eq!(r.bytes().await.unwrap().to_vec(), raw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_page_is_served_under_web_and_the_api_still_answers_404s() {
    let web = tempfile::tempdir().unwrap();
    std::fs::write(web.path().join("index.html"), "<!doctype html><p>grid</p>").unwrap();
    std::fs::create_dir(web.path().join("pkg")).unwrap();
    std::fs::write(web.path().join("pkg/m.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let dir = web.path().to_path_buf();
    let s = start(move |c| c.web = Some(dir)).await;
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = c.get(format!("{}/", s.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(r.headers()["location"], "/web/");
    let r = c.get(format!("{}/web/", s.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("<p>grid</p>"));
    let r = c
        .get(format!("{}/web/pkg/m.wasm", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/wasm");
    // A directory without its slash: redirected under /web/.
    let r = c.get(format!("{}/web/pkg", s.base)).send().await.unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    assert_eq!(r.headers()["location"], "/web/pkg/");
    let r = c
        .get(format!("{}/web/../Cargo.toml", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Never served: dot-files and dot-directories (percent-encoded too),
    // and what a symbolic link leads to outside the directory; a link
    // inside it is followed.
    let secret = tempfile::tempdir().unwrap();
    std::fs::write(secret.path().join("key"), "secret").unwrap();
    std::fs::write(web.path().join(".env"), "secret").unwrap();
    std::fs::create_dir(web.path().join(".git")).unwrap();
    std::fs::write(web.path().join(".git/config"), "secret").unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(secret.path(), web.path().join("out")).unwrap();
        std::os::unix::fs::symlink(web.path().join("pkg"), web.path().join("in")).unwrap();
    }
    for path in [
        "/web/.env",
        "/web/.git/config",
        "/web/%2egit/config",
        "/web/out/key",
    ] {
        let r = c.get(format!("{}{path}", s.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let body = r.text().await.unwrap();
        assert!(!body.contains("secret"), "{path}: {body}");
        assert!(body.contains("\"error\""), "{path}: {body}");
    }
    #[cfg(unix)]
    {
        let r = c
            .get(format!("{}/web/in/m.wasm", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = c
        .get(format!("{}/nothing/here", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(
        r.text().await.unwrap().contains("error"),
        "API 404s stay JSON"
    );
    // Without a directory, no page.
    let plain = start(|_| {}).await;
    let r = c.get(format!("{}/", plain.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// The pointer, manifest and objects served at `base`/published/ for
/// `issues` (their caching headers checked): the objects' count and their
/// bytes in manifest order.
async fn published_objects(c: &reqwest::Client, base: &str) -> (usize, Vec<u8>) {
    let get = |p: String| async move { c.get(format!("{base}{p}")).send().await.unwrap() };
    let r = get("/published/issues.latest.json".into()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "public, no-cache");
    let pointer: Value = r.json().await.unwrap();
    let manifest = pointer["manifest"].as_str().unwrap().to_string();
    assert!(manifest.starts_with("manifests/"), "{manifest}");
    let immutable = "public, max-age=31536000, immutable";
    let r = get(format!("/published/{manifest}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], immutable);
    let m: Value = r.json().await.unwrap();
    let objects = m["objects"].as_array().unwrap();
    let mut bytes = Vec::new();
    for o in objects {
        let r = get(format!(
            "/published/objects/{}",
            o["sha256"].as_str().unwrap()
        ))
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["cache-control"], immutable);
        bytes.extend_from_slice(&r.bytes().await.unwrap());
    }
    (objects.len(), bytes)
}

/// `--publish-dir`: the served snapshot published (SPEC.md section 15) and
/// its objects served at /published/: the pointer revalidated, manifests
/// and objects cached forever, the objects in manifest order the file's
/// bytes. `--publish-min-object` cuts the same bytes into smaller objects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_objects_are_served_immutable() {
    let pubdir = tempfile::tempdir().unwrap();
    let dir = pubdir.path().to_path_buf();
    let s = start(move |c| c.publish_dir = Some(dir)).await;
    let c = client();
    let info: Value = get_json(&c, format!("{}/api/issues", s.base)).await;
    assert_eq!(info["links"]["published"], "/published/issues.latest.json");
    let (objects, bytes) = published_objects(&c, &s.base).await;
    assert_eq!(bytes, std::fs::read(&s.file).unwrap());
    // Only the names of SPEC.md 15.1, as plain files: not another file put
    // there, a directory, a link (which could lead anywhere), a name that
    // is no hash.
    let d = pubdir.path();
    std::fs::write(d.join("notes.txt"), "private").unwrap();
    std::fs::create_dir_all(d.join("sub")).unwrap();
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "secret").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(secret.path(), d.join("linked.latest.json")).unwrap();
    let hash = "ab".repeat(32);
    #[cfg(unix)]
    std::os::unix::fs::symlink(secret.path(), d.join("objects").join(&hash)).unwrap();
    for bad in [
        "/published/objects/0000".to_string(),
        "/published/../issues.colsnap".into(),
        "/published/%2e%2e/issues.colsnap".into(),
        "/published/notes.txt".into(),
        "/published/sub/".into(),
        "/published/objects".into(),
        "/published/objects/".into(),
        "/published/issues.latest.json/".into(),
        "/published/linked.latest.json".into(),
        format!("/published/objects/{hash}"),
        format!("/published/objects/{}", "AB".repeat(32)),
        "/published/.latest.json".into(),
    ] {
        let r = c.get(format!("{}{bad}", s.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{bad}");
        assert_eq!(r.headers()["cache-control"], "no-store", "{bad}");
        assert_eq!(r.headers()["content-type"], "application/json", "{bad}");
    }
    // Ranges as for /files/: several in one answer, a last byte past the
    // end clamped, another unit ignored, If-Range with another tag whole.
    let pointer = format!("{}/published/issues.latest.json", s.base);
    let whole = c.get(&pointer).send().await.unwrap();
    let tag = whole.headers()["etag"].to_str().unwrap().to_string();
    let text = whole.bytes().await.unwrap();
    let ranged = |range: &'static str, if_range: Option<&str>| {
        let mut b = c
            .get(&pointer)
            .header("range", range)
            .header("accept-encoding", "gzip");
        if let Some(t) = if_range {
            b = b.header("if-range", t);
        }
        b.send()
    };
    let r = ranged("bytes=0-3,10-12", None).await.unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("multipart/byteranges")
    );
    let r = ranged("bytes=2-99999999999999999999", None).await.unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert!(r.headers().get("content-encoding").is_none());
    assert_eq!(r.bytes().await.unwrap(), text[2..]);
    let r = ranged("items=0-2", None).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = ranged("bytes=0-3", Some("\"other\"")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = ranged("bytes=0-3", Some(&tag)).await.unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap(), text[..4]);
    let smalldir = tempfile::tempdir().unwrap();
    let dir = smalldir.path().to_path_buf();
    let small = start(move |c| {
        c.publish_dir = Some(dir);
        c.publish_min_object = 1024;
    })
    .await;
    let (small_objects, small_bytes) = published_objects(&c, &small.base).await;
    assert_eq!(small_bytes, std::fs::read(&small.file).unwrap());
    assert!(
        small_objects > objects,
        "1 KiB objects: {small_objects}, 16 KiB: {objects}"
    );
    // Without --publish-dir there is no /published/.
    let plain = start(|_| {}).await;
    let r = c
        .get(format!("{}/published/issues.latest.json", plain.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// A client that sends its headers slowly (or never ends them) is cut off
/// after the header timeout, and others are answered meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_after_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = start(|c| c.header_timeout = Duration::from_millis(400)).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut t = tokio::net::TcpStream::connect(&addr).await.unwrap();
        t.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(t);
    }
    // Served meanwhile.
    let c = client();
    let r = c.get(format!("{}/healthz", s.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // One more header line now and then does not keep a connection open.
    let t0 = Instant::now();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let _ = slow[0].write_all(b"X-Slow: 1\r\n").await;
    }
    for mut t in slow {
        let mut buf = [0u8; 64];
        // Closed by the server: end of stream (or a reset), well before 10 s.
        let n = tokio::time::timeout(Duration::from_secs(10), t.read(&mut buf))
            .await
            .expect("the server kept a connection with unfinished headers");
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    }
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    // An idle keep-alive connection after a whole request.
    let mut t = tokio::net::TcpStream::connect(&addr).await.unwrap();
    t.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = t.read(&mut buf).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200"));
    // Closed too once idle for the header timeout (the next request's
    // headers did not come).
    let idle = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match t.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(idle.is_ok(), "an idle connection stayed open");
}
