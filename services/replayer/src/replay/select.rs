//! Step 1 of a replay, selection: [`Replays::start`] checks the request, reads the DLQ
//! snapshot, picks the letters to publish and the ones to skip, and hands the replay over to
//! be persisted and published.

use std::collections::{BTreeMap, HashSet};

use chrono::Utc;
use rdkafka::message::{Message, OwnedMessage};
use sked_core::kafka::headers as h;
use tracing::info;

use super::{Error, Progress, Replays, Request, Spec};
use crate::{
    letter,
    scan::{self, Offsets},
};

/// One letter's fate in the selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pick {
    Publish(usize),
    MaxReplays,
    NoTarget,
    Duplicate,
}

/// Where a letter's record was when it failed (`original-topic`, `-partition`, `-offset`).
/// A record fails into the DLQ once; a second letter of the same position is the same failure
/// dead-lettered again (its producer died between the letter's ack and its offset commit).
/// A replayed record that fails again has a new position, so it is not one of these.
type Origin = (String, i32, i64);

fn origin(msg: &OwnedMessage) -> Option<Origin> {
    Some((
        letter::header(msg, h::ORIGINAL_TOPIC)?,
        letter::header(msg, h::ORIGINAL_PARTITION)?
            .trim()
            .parse()
            .ok()?,
        letter::header(msg, h::ORIGINAL_OFFSET)?
            .trim()
            .parse()
            .ok()?,
    ))
}

/// Marks every letter after the first of each origin (in DLQ order) as a duplicate.
fn mark_duplicates(picks: &mut [(i32, i64, Pick, Option<Origin>)]) {
    let mut seen = HashSet::new();
    for (_, _, pick, origin) in picks.iter_mut() {
        if let Some(origin) = origin.take()
            && !seen.insert(origin)
        {
            *pick = Pick::Duplicate;
        }
    }
}

impl Replays {
    /// Selects, persists and starts a replay (or only counts, for a dry run).
    pub async fn start(&self, req: Request) -> Result<Progress, Error> {
        let matcher = letter::Matcher::new(req.filter()).map_err(Error::Invalid)?;
        if let Some(t) = &req.target_topic
            && !valid_topic(t)
        {
            return Err(Error::Invalid(format!(
                "target_topic: `{t}` is not a Kafka topic name"
            )));
        }
        if req.limit == Some(0) {
            return Err(Error::Invalid("limit: must be at least 1".into()));
        }
        let id = uuid::Uuid::now_v7().simple().to_string();
        let all = self.scanner.unbounded(&self.dlq_topic).await?;
        let mut dlq_ends = Offsets::new();
        let mut topics: Vec<String> = Vec::new();
        let mut picks: Vec<(i32, i64, Pick, Option<Origin>)> = Vec::new();
        let mut rx = self.scanner.read(&self.dlq_topic, &Offsets::new(), &all);
        while let Some(msg) = rx.recv().await {
            let msg = msg?;
            let end = dlq_ends.entry(msg.partition()).or_insert(0);
            *end = (*end).max(msg.offset() + 1);
            let l = letter::of(&msg);
            if !matcher.matches(&l) {
                continue;
            }
            let pick = if l.replay_count >= self.max_replays {
                Pick::MaxReplays
            } else {
                match req.target_topic.as_ref().or(l.original_topic.as_ref()) {
                    None => Pick::NoTarget,
                    Some(t) => Pick::Publish(match topics.iter().position(|x| x == t) {
                        Some(i) => i,
                        None => {
                            topics.push(t.clone());
                            topics.len() - 1
                        }
                    }),
                }
            };
            picks.push((l.partition, l.offset, pick, origin(&msg)));
        }
        picks.sort_unstable_by_key(|(p, o, _, _)| (*p, *o));
        mark_duplicates(&mut picks);
        if let Some(limit) = req.limit {
            picks.truncate(limit);
        }
        let mut spec = Spec {
            id: id.clone(),
            filter: matcher.filter().clone(),
            limit: req.limit,
            dry_run: req.dry_run,
            rate: req.rate.unwrap_or(self.default_rate),
            target_topic: req.target_topic.clone(),
            max_replays: self.max_replays,
            created_at: Utc::now().timestamp_millis(),
            dlq_ends,
            targets: BTreeMap::new(),
            selected: 0,
            skipped_max_replays: 0,
            skipped_no_target: 0,
            skipped_duplicates: 0,
            by_target: BTreeMap::new(),
        };
        let mut items = String::new();
        for (p, o, pick, _) in &picks {
            match pick {
                Pick::Publish(t) => {
                    spec.selected += 1;
                    *spec.by_target.entry(topics[*t].clone()).or_default() += 1;
                    items.push_str(&format!("{p}:{o}\n"));
                }
                Pick::MaxReplays => spec.skipped_max_replays += 1,
                Pick::NoTarget => spec.skipped_no_target += 1,
                Pick::Duplicate => spec.skipped_duplicates += 1,
            }
        }
        self.metrics
            .replayed("skipped_max_replays", spec.skipped_max_replays);
        self.metrics
            .replayed("skipped_no_target", spec.skipped_no_target);
        self.metrics
            .replayed("skipped_duplicate", spec.skipped_duplicates);
        if spec.dry_run || spec.selected == 0 {
            if spec.dry_run {
                self.metrics.replayed("dry_run", spec.selected);
            }
            self.save_done(&spec).await?;
            info!(replay.id = %id, dry_run = spec.dry_run, selected = spec.selected, "replay selected nothing to publish");
            return self.progress(&id).await;
        }
        for topic in spec.by_target.keys() {
            let ends = match self.scanner.ends(topic).await {
                Ok(ends) => ends,
                Err(scan::Error::NoTopic(t)) => {
                    return Err(Error::Invalid(format!("target topic {t} not found")));
                }
                Err(e) => return Err(e.into()),
            };
            spec.targets.insert(topic.clone(), ends);
        }
        // Detached, so a client that hangs up cannot cut the persist-then-run sequence short.
        let this = self.clone();
        tokio::spawn(async move { this.persist_and_run(spec, items).await })
            .await
            .map_err(|e| Error::Corrupt {
                id: id.clone(),
                reason: format!("start task failed: {e}"),
            })??;
        self.progress(&id).await
    }
}

fn valid_topic(t: &str) -> bool {
    (1..=249).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_letter_of_an_origin_is_kept() {
        let o = |off| Some(("sked.due".to_owned(), 1, off));
        let mut picks = vec![
            (0, 10, Pick::Publish(0), o(7)),
            (0, 11, Pick::Publish(0), o(8)),
            (0, 12, Pick::Publish(0), o(7)),
            (0, 13, Pick::MaxReplays, o(8)),
            (0, 14, Pick::Publish(0), None),
            (0, 15, Pick::Publish(0), None),
        ];
        mark_duplicates(&mut picks);
        let kinds: Vec<Pick> = picks.iter().map(|p| p.2).collect();
        assert_eq!(
            kinds,
            [
                Pick::Publish(0),
                Pick::Publish(0),
                Pick::Duplicate,
                Pick::Duplicate,
                Pick::Publish(0),
                Pick::Publish(0),
            ],
            "no origin, no duplicate"
        );
    }
}
