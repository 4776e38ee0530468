#![allow(clippy::unwrap_used)]
//! The wire format of the DLQ API, byte for byte as the replayer has always written it.

use super::*;

fn letter() -> Letter {
    Letter {
        partition: 0,
        offset: 7,
        at: DateTime::from_timestamp_millis(1_800_000_000_123),
        app: Some("sms".into()),
        stage: Some("execute".into()),
        reason: Some("timeout".into()),
        job_id: Some("a1".into()),
        tenant: None,
        error: None,
        original_topic: Some("sked.due".into()),
        attempts: Some(3),
        replay_count: 0,
    }
}

#[test]
fn base64_matches_the_standard_alphabet() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(&[0xff, 0xfe, 0x00, 0x80]), "//4AgA==");
    assert_eq!(Bytes::of(b"k"), Bytes::Text("k".into()));
}

#[test]
fn letter_and_detail_json_is_unchanged() {
    let l = letter();
    let json = serde_json::to_string(&l).unwrap();
    assert_eq!(
        json,
        r#"{"partition":0,"offset":7,"at":"2027-01-15T08:00:00.123Z","app":"sms","stage":"execute","reason":"timeout","job_id":"a1","error":null,"original_topic":"sked.due","attempts":3,"replay_count":0}"#
    );
    let detail = LetterDetail {
        letter: l,
        timestamp: None,
        headers: BTreeMap::from([
            ("a".to_owned(), Some(Bytes::of(&[0xff]))),
            ("b".to_owned(), None),
        ]),
        key: Some(Bytes::of(b"a1")),
        value: None,
    };
    let json = serde_json::to_string(&detail).unwrap();
    assert!(
        json.ends_with(
            r#""replay_count":0,"timestamp":null,"headers":{"a":{"base64":"/w=="},"b":null},"key":{"text":"a1"},"value":null}"#
        ),
        "{json}"
    );
    assert_eq!(serde_json::from_str::<LetterDetail>(&json).unwrap(), detail);
}

#[test]
fn list_and_stats_json_is_unchanged() {
    let list = LetterList {
        letters: vec![],
        matched: 3,
        scanned: 9,
        order: Order::Newest,
        index: None,
    };
    assert_eq!(
        serde_json::to_string(&list).unwrap(),
        r#"{"letters":[],"matched":3,"scanned":9,"order":"newest"}"#
    );
    let mut counts = Counts::default();
    counts.add(&letter());
    let stats = DlqStats {
        counts,
        scanned: 4,
        index: None,
    };
    assert_eq!(
        serde_json::to_string(&stats).unwrap(),
        r#"{"total":1,"by_app":{"sms":1},"by_reason":{"timeout":1},"by_stage":{"execute":1},"scanned":4}"#
    );
}

#[test]
fn query_and_replay_request_reject_unknown_fields() {
    let q: LetterQuery = serde_json::from_str(r#"{"app":"sms","order":"offset"}"#).unwrap();
    assert_eq!(
        (q.order, q.filter().app.as_deref()),
        (Order::Offset, Some("sms"))
    );
    assert_eq!(
        serde_json::from_str::<LetterQuery>("{}").unwrap().order,
        Order::Newest
    );
    assert!(serde_json::from_str::<LetterQuery>(r#"{"colour":"red"}"#).is_err());
    let r: ReplayRequest = serde_json::from_str(r#"{"app":"sms","dry_run":true}"#).unwrap();
    assert!(r.dry_run);
    assert_eq!(
        serde_json::to_string(&r).unwrap(),
        r#"{"app":"sms","dry_run":true}"#
    );
    assert!(serde_json::from_str::<ReplayRequest>(r#"{"apps":"sms"}"#).is_err());
}

#[test]
fn progress_flattens_the_spec() {
    let spec = ReplaySpec {
        id: "r".into(),
        filter: Filter {
            app: Some("sms".into()),
            ..Filter::default()
        },
        limit: None,
        dry_run: false,
        rate: 0,
        target_topic: None,
        max_replays: 2,
        created_at: 5,
        dlq_ends: Offsets::from([(0, 3)]),
        targets: BTreeMap::new(),
        selected: 1,
        skipped_max_replays: 0,
        skipped_no_target: 0,
        skipped_duplicates: 0,
        by_target: BTreeMap::from([("sked.due".to_owned(), 1)]),
    };
    let stored = serde_json::to_string(&spec).unwrap();
    assert_eq!(
        stored,
        r#"{"id":"r","filter":{"app":"sms"},"limit":null,"dry_run":false,"rate":0,"target_topic":null,"max_replays":2,"created_at":5,"dlq_ends":{"0":3},"targets":{},"selected":1,"skipped_max_replays":0,"skipped_no_target":0,"skipped_duplicates":0,"by_target":{"sked.due":1}}"#
    );
    // Replays stored before `skipped_duplicates` existed still read.
    let old = stored.replace(r#""skipped_duplicates":0,"#, "");
    assert_eq!(serde_json::from_str::<ReplaySpec>(&old).unwrap(), spec);
    let progress = ReplayProgress {
        spec,
        status: "done".into(),
        published: 1,
        already_published: 0,
        missing: 0,
        resumes: 0,
        finished_at: Some(9),
        last_error: None,
    };
    let json = serde_json::to_string(&progress).unwrap();
    assert!(json.starts_with(r#"{"id":"r","filter""#), "{json}");
    assert!(
        json.ends_with(r#""by_target":{"sked.due":1},"status":"done","published":1,"already_published":0,"missing":0,"resumes":0,"finished_at":9,"last_error":null}"#),
        "{json}"
    );
    assert_eq!(
        serde_json::from_str::<ReplayProgress>(&json).unwrap(),
        progress
    );
}
