#![allow(clippy::unwrap_used)]

use chrono::DateTime;

use super::*;

fn letter(tenant: Option<&str>) -> Letter {
    Letter {
        partition: 3,
        offset: 42,
        at: DateTime::from_timestamp_millis(1_700_000_000_123),
        app: Some("sms".into()),
        stage: Some("execute".into()),
        reason: Some("handler_failed".into()),
        job_id: Some("j1".into()),
        tenant: tenant.map(Into::into),
        error: Some("é".repeat(ERROR_BYTES)),
        original_topic: Some("sked.due".into()),
        attempts: Some(3),
        replay_count: 0,
    }
}

#[test]
fn ids_and_members_sort_as_partition_offset_and_time() {
    assert_eq!(id(3, 42), "00003:0000000000000000042");
    assert!(id(2, 999) < id(3, 0));
    assert!(id(3, 99) < id(3, 100));
    assert_eq!(time(-5), "000000000000000");
    assert!(time(999) < time(1000));
}

#[test]
fn an_entry_cuts_the_error_at_a_char_boundary_and_reads_back() {
    let index = Layout::new("sked");
    let e = index.entry(&letter(Some("acme")));
    assert_eq!(e.id, "00003:0000000000000000042");
    assert_eq!(e.member, format!("001700000000123:{}", e.id));
    let back = summary(&e.value).unwrap();
    let err = back.error.clone().unwrap();
    assert!(err.len() <= ERROR_BYTES && err.len() > ERROR_BYTES - 2);
    assert_eq!(
        index.entry(&back),
        e,
        "an entry is the same from its own summary"
    );
    assert_eq!(
        e.sets,
        [
            "sked:{dlq}:f:a:sms",
            "sked:{dlq}:f:r:handler_failed",
            "sked:{dlq}:f:t:acme",
            "sked:{dlq}:f:j:j1"
        ]
    );
}

#[test]
fn counters_answer_overall_and_per_tenant() {
    let mut raw: BTreeMap<String, u64> = BTreeMap::new();
    for (tenant, n) in [(Some("acme"), 2), (Some("beta"), 1), (None, 4)] {
        for c in counters(&letter(tenant)) {
            *raw.entry(c).or_default() += n;
        }
    }
    let all = counts_of(&raw, None);
    assert_eq!(all.total, 7);
    assert_eq!(all.by_app["sms"], 7);
    let acme = counts_of(&raw, Some("acme"));
    assert_eq!(acme.total, 2);
    assert_eq!(acme.by_reason["handler_failed"], 2);
    assert_eq!(acme.by_stage["execute"], 2);
    assert_eq!(counts_of(&raw, Some("none")), Counts::default());
}
