#![allow(clippy::unwrap_used)]
use super::*;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn full() -> ListQuery {
    ListQuery {
        filter: Selector {
            state: Some("scheduled,paused".into()),
            app: Some("sms".into()),
            tenant: Some("acme corp".into()),
            label: vec!["team=pay".into(), "expr=a=b&c".into()],
            kind: Some(JobKind::Cron),
            due_after: Some(at("2026-01-01T00:00:00Z")),
            due_before: Some(at("2026-02-01T00:00:00.5Z")),
            payload: Some(r#""to":"+4412 & co""#.into()),
        },
        order: Some(Order::Created),
        limit: Some(50),
        cursor: Some("abc/+=".into()),
    }
}

fn err(raw: &str) -> ErrorDetail {
    ListQuery::from_query_str(raw).unwrap_err()
}

#[test]
fn query_string_round_trips() {
    let q = full();
    let raw = q.to_query_string();
    assert_eq!(
        raw,
        "state=scheduled%2Cpaused&app=sms&tenant=acme+corp&label=team%3Dpay&label=expr%3Da%3Db%26c\
         &kind=cron&due_after=2026-01-01T00%3A00%3A00Z&due_before=2026-02-01T00%3A00%3A00.500Z\
         &payload=%22to%22%3A%22%2B4412+%26+co%22&order=created&limit=50&cursor=abc%2F%2B%3D"
    );
    assert_eq!(ListQuery::from_query_str(&raw).unwrap(), q);
    assert_eq!(ListQuery::default().to_query_string(), "");
    assert_eq!(ListQuery::from_query_str("").unwrap(), ListQuery::default());
}

#[test]
fn query_string_accepts_plain_forms() {
    let q = ListQuery::from_query_str(
        "label=a=1&state=held&label=b=2&state=dead&due_after=2026-01-01T06:00:00%2B06:00",
    )
    .unwrap();
    assert_eq!(q.filter.label, ["a=1", "b=2"]);
    assert_eq!(q.filter.state.as_deref(), Some("held,dead"));
    assert_eq!(q.filter.due_after, Some(at("2026-01-01T00:00:00Z")));
    assert_eq!(q.limit_or_default(), DEFAULT_LIMIT);
    assert_eq!(q.filter.states().unwrap(), [JobState::Held, JobState::Dead]);
    assert_eq!(
        Selector::default().states().unwrap(),
        JobState::PENDING.to_vec()
    );
}

#[test]
fn query_string_errors_name_the_parameter() {
    for (raw, param) in [
        ("app=sms&colour=red", "colour"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("limit=5&limit=6", "limit"),
        ("due_after=yesterday", "due_after"),
        ("due_before=2026-01-01", "due_before"),
        ("state=scheduled,pending", "state"),
        ("kind=weekly", "kind"),
        ("order=random", "order"),
        ("label=team", "label"),
        ("label==x", "label"),
        ("app=a&app=b", "app"),
        ("app=", "app"),
        ("cursor=", "cursor"),
        ("payload=a&payload=b", "payload"),
        (&format!("payload={}", "x".repeat(257)), "payload"),
    ] {
        let e = err(raw);
        assert_eq!(e.code, "invalid_parameter", "{raw}");
        assert_eq!(e.param.as_deref(), Some(param), "{raw}: {e}");
        assert!(e.message.contains(param), "{raw}: {e}");
    }
}

#[test]
fn selector_string_round_trips() {
    let s = full().filter;
    let raw = s.to_selector_string();
    assert_eq!(
        raw,
        concat!(
            "state=scheduled,paused,app=sms,tenant=acme corp,label=team=pay,label=expr=a=b&c,",
            "kind=cron,due_after=2026-01-01T00:00:00Z,due_before=2026-02-01T00:00:00.500Z,",
            r#"payload="to":"+4412 & co""#
        )
    );
    assert_eq!(Selector::parse(&raw).unwrap(), s);
    let s = Selector::parse(" app=sms , label=team=pay,state=scheduled ").unwrap();
    assert_eq!(s.app.as_deref(), Some("sms"));
    assert_eq!(s.label, ["team=pay"]);
    assert_eq!(s.state.as_deref(), Some("scheduled"));
    assert_eq!(Selector::parse("").unwrap(), Selector::default());
}

#[test]
fn selector_string_errors_name_the_term() {
    for (raw, param) in [
        ("sms", "selector"),
        ("app=sms,paused", "selector"),
        ("colour=red", "colour"),
        ("order=due", "order"),
        ("limit=5", "limit"),
        ("state=asleep", "state"),
        ("label=team", "label"),
        ("due_before=soon", "due_before"),
        ("app=a,app=b", "app"),
        ("app=", "app"),
    ] {
        let e = Selector::parse(raw).unwrap_err();
        assert_eq!(e.param.as_deref(), Some(param), "{raw}: {e}");
    }
}

#[test]
fn selector_json_uses_the_query_names() {
    let s: Selector = serde_json::from_str(
        r#"{"state":"scheduled","app":"sms","label":["team=pay"],"kind":"every","due_before":"2026-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    assert_eq!(s.kind, Some(JobKind::Every));
    assert_eq!(
        serde_json::to_string(&s).unwrap(),
        r#"{"state":"scheduled","app":"sms","label":["team=pay"],"kind":"every","due_before":"2026-01-01T00:00:00Z"}"#
    );
    assert!(serde_json::from_str::<Selector>(r#"{"colour":"red"}"#).is_err());
    let bad = Selector {
        label: vec!["x".into()],
        ..Selector::default()
    };
    assert_eq!(bad.validate().unwrap_err().param.as_deref(), Some("label"));
}
