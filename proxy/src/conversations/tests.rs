//! The store against both backends: every check runs on a SQLite file and on PostgreSQL (a
//! database of its own per test; skipped on a workstation without `SWITCHYARD_TEST_POSTGRES`,
//! a failure in CI, see `metering/test_services.rs`).

use std::sync::Arc;
use std::time::Duration;

use super::record::turn;
use super::store::now_secs;
use super::sweep::Sweeper;
use super::*;
use crate::metering::ledger::postgres::tests::{drop_database, fresh_database};
use crate::metering::ledger::Store;

const DAY: i64 = 86_400;

/// A database for one test: a fresh SQLite file or a fresh PostgreSQL database.
struct TestDb {
    url: String,
    dir: Option<std::path::PathBuf>,
}

impl TestDb {
    fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(format!("sy-responses-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        TestDb {
            url: format!("sqlite://{}/ledger.db", dir.display()),
            dir: Some(dir),
        }
    }

    async fn postgres(test: &str) -> Option<TestDb> {
        Some(TestDb {
            url: fresh_database(test).await?,
            dir: None,
        })
    }

    /// A new store over this database, as a (re)started replica opens it.
    async fn open(&self, settings: &ConversationSettings) -> ConversationStore {
        let store = Store::open(&self.url).await.unwrap();
        ConversationStore::new(store, None, settings, ResponsesMetrics::unregistered())
    }

    async fn cleanup(self) {
        match self.dir {
            Some(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            None => drop_database(&self.url).await,
        }
    }
}

/// Runs `$check` (an async fn taking `&TestDb`) on SQLite and on PostgreSQL.
macro_rules! on_both_backends {
    ($sqlite:ident, $postgres:ident, $check:ident) => {
        #[tokio::test]
        async fn $sqlite() {
            let db = TestDb::sqlite();
            $check(&db).await;
            db.cleanup().await;
        }

        #[tokio::test]
        async fn $postgres() {
            let Some(db) = TestDb::postgres(stringify!($postgres)).await else {
                return;
            };
            $check(&db).await;
            db.cleanup().await;
        }
    };
}

fn ids(turns: &[Arc<StoredResponse>]) -> Vec<&str> {
    turns.iter().map(|turn| turn.id.as_str()).collect()
}

async fn put_then_get_returns_the_turn(db: &TestDb) {
    let store = db.open(&ConversationSettings::default()).await;
    let stored = turn("resp_1", "team-a", None);
    store.put(stored.clone()).await.unwrap();
    let got = store.get("team-a", "resp_1").await.unwrap().unwrap();
    assert_eq!(*got, stored);
    assert_eq!(store.metrics().stored.get(), 1);
    assert_eq!(store.metrics().cache_hits.get(), 1, "put fills the cache");
    // Straight from the database too.
    let current = store
        .get_current("team-a", "resp_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*current, stored);
    assert!(store.get("team-a", "resp_none").await.unwrap().is_none());
    // A second put of the same id by the same team replaces the turn.
    let mut replaced = stored.clone();
    replaced.output_items = "[]".to_owned();
    store.put(replaced.clone()).await.unwrap();
    let fresh = db.open(&ConversationSettings::default()).await;
    assert_eq!(
        *fresh.get("team-a", "resp_1").await.unwrap().unwrap(),
        replaced
    );
}
on_both_backends!(
    sqlite_put_then_get,
    postgres_put_then_get,
    put_then_get_returns_the_turn
);

async fn another_teams_turn_is_absent(db: &TestDb) {
    let store = db.open(&ConversationSettings::default()).await;
    store.put(turn("resp_a", "team-a", None)).await.unwrap();
    // Cached, and from the database (a store with an empty cache).
    assert!(store.get("team-b", "resp_a").await.unwrap().is_none());
    let cold = db.open(&ConversationSettings::default()).await;
    assert!(cold.get("team-b", "resp_a").await.unwrap().is_none());
    assert!(cold
        .get_current("team-b", "resp_a")
        .await
        .unwrap()
        .is_none());
    assert!(cold.chain("team-b", "resp_a", 10).await.unwrap().is_none());
    assert!(!cold.delete("team-b", "resp_a").await.unwrap());
    // Team b cannot overwrite it either.
    let err = cold.put(turn("resp_a", "team-b", None)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    let kept = cold.get("team-a", "resp_a").await.unwrap().unwrap();
    assert_eq!(kept.team, "team-a");
    // A chain does not cross into another team's turn.
    store
        .put(turn("resp_b", "team-b", Some("resp_a")))
        .await
        .unwrap();
    let chain = store.chain("team-b", "resp_b", 10).await.unwrap().unwrap();
    assert_eq!(ids(&chain), ["resp_b"]);
}
on_both_backends!(
    sqlite_team_isolation,
    postgres_team_isolation,
    another_teams_turn_is_absent
);

async fn deleted_turns_are_gone(db: &TestDb) {
    let store = db.open(&ConversationSettings::default()).await;
    store.put(turn("resp_d", "t", None)).await.unwrap();
    assert!(store.get("t", "resp_d").await.unwrap().is_some());
    assert!(store.delete("t", "resp_d").await.unwrap());
    assert!(store.get("t", "resp_d").await.unwrap().is_none());
    assert!(!store.delete("t", "resp_d").await.unwrap());
    assert_eq!(store.database().count_rows().await.unwrap(), 0);
}
on_both_backends!(sqlite_delete, postgres_delete, deleted_turns_are_gone);

async fn chains_run_oldest_first_and_are_bounded(db: &TestDb) {
    let store = db.open(&ConversationSettings::default()).await;
    store.put(turn("r1", "t", None)).await.unwrap();
    store.put(turn("r2", "t", Some("r1"))).await.unwrap();
    store.put(turn("r3", "t", Some("r2"))).await.unwrap();
    let cold = db.open(&ConversationSettings::default()).await;
    for store in [&store, &cold] {
        let chain = store.chain("t", "r3", 10).await.unwrap().unwrap();
        assert_eq!(ids(&chain), ["r1", "r2", "r3"]);
        let newest = store.chain("t", "r3", 2).await.unwrap().unwrap();
        assert_eq!(ids(&newest), ["r2", "r3"]);
        let middle = store.chain("t", "r2", 10).await.unwrap().unwrap();
        assert_eq!(ids(&middle), ["r1", "r2"]);
        assert!(store.chain("t", "r4", 10).await.unwrap().is_none());
    }
    // A missing turn cuts the chain there.
    store.delete("t", "r1").await.unwrap();
    let cut = store.chain("t", "r3", 10).await.unwrap().unwrap();
    assert_eq!(ids(&cut), ["r2", "r3"]);
    // A cycle (never made by the proxy, but rows can be edited) ends the walk.
    store.put(turn("c1", "t", Some("c2"))).await.unwrap();
    store.put(turn("c2", "t", Some("c1"))).await.unwrap();
    let cycle = store.chain("t", "c2", 10).await.unwrap().unwrap();
    assert_eq!(ids(&cycle), ["c1", "c2"]);
}
on_both_backends!(
    sqlite_chain,
    postgres_chain,
    chains_run_oldest_first_and_are_bounded
);

async fn expired_turns_are_invisible_then_swept(db: &TestDb) {
    let settings = ConversationSettings {
        retention: Retention::For(Duration::from_secs(30 * DAY as u64)),
        cache_entries: 100,
    };
    let store = db.open(&settings).await;
    let mut old = turn("resp_old", "t", None);
    old.created_at = now_secs() - 31 * DAY;
    store.put(old).await.unwrap();
    let mut recent = turn("resp_recent", "t", Some("resp_old"));
    recent.created_at = now_secs() - 29 * DAY;
    store.put(recent).await.unwrap();
    // Invisible from the cache (put filled it) and from the database, before any sweep.
    assert!(store.get("t", "resp_old").await.unwrap().is_none());
    let cold = db.open(&settings).await;
    assert!(cold.get("t", "resp_old").await.unwrap().is_none());
    assert!(cold.get_current("t", "resp_old").await.unwrap().is_none());
    assert!(!cold.delete("t", "resp_old").await.unwrap());
    let chain = cold.chain("t", "resp_recent", 10).await.unwrap().unwrap();
    assert_eq!(ids(&chain), ["resp_recent"]);
    assert_eq!(store.database().count_rows().await.unwrap(), 2);
    // The sweeper's step deletes only the expired row.
    assert_eq!(store.sweep_batch(now_secs(), 1_000).await.unwrap(), 1);
    assert_eq!(store.metrics().expired.get(), 1);
    assert_eq!(store.database().count_rows().await.unwrap(), 1);
    assert!(store.get("t", "resp_recent").await.unwrap().is_some());
    // `keep` stores without an expiry: nothing is ever swept.
    let keep = db
        .open(&ConversationSettings {
            retention: Retention::Keep,
            cache_entries: 100,
        })
        .await;
    let mut ancient = turn("resp_ancient", "t", None);
    ancient.created_at = 0;
    keep.put(ancient).await.unwrap();
    assert_eq!(keep.sweep_batch(now_secs(), 1_000).await.unwrap(), 0);
    assert!(cold.get("t", "resp_ancient").await.unwrap().is_some());
}
on_both_backends!(
    sqlite_expiry,
    postgres_expiry,
    expired_turns_are_invisible_then_swept
);

async fn a_restarted_store_sees_old_turns(db: &TestDb) {
    let first = db.open(&ConversationSettings::default()).await;
    first.put(turn("resp_r1", "t", None)).await.unwrap();
    first
        .put(turn("resp_r2", "t", Some("resp_r1")))
        .await
        .unwrap();
    drop(first);
    let restarted = db.open(&ConversationSettings::default()).await;
    let chain = restarted.chain("t", "resp_r2", 10).await.unwrap().unwrap();
    assert_eq!(ids(&chain), ["resp_r1", "resp_r2"]);
}
on_both_backends!(
    sqlite_restart,
    postgres_restart,
    a_restarted_store_sees_old_turns
);

/// Two replicas on one PostgreSQL: each sees the other's turns, and a delete on one is seen
/// by the other's endpoints at once (they read the database).
#[tokio::test]
async fn postgres_two_stores_share_turns() {
    let Some(db) = TestDb::postgres("postgres_two_stores_share_turns").await else {
        return;
    };
    let a = db.open(&ConversationSettings::default()).await;
    let b = db.open(&ConversationSettings::default()).await;
    a.put(turn("resp_x1", "t", None)).await.unwrap();
    b.put(turn("resp_x2", "t", Some("resp_x1"))).await.unwrap();
    let from_a = a.chain("t", "resp_x2", 10).await.unwrap().unwrap();
    let from_b = b.chain("t", "resp_x2", 10).await.unwrap().unwrap();
    assert_eq!(ids(&from_a), ["resp_x1", "resp_x2"]);
    assert_eq!(ids(&from_b), ["resp_x1", "resp_x2"]);
    assert!(b.delete("t", "resp_x1").await.unwrap());
    assert!(a.get_current("t", "resp_x1").await.unwrap().is_none());
    db.cleanup().await;
}

#[tokio::test]
async fn the_cache_is_bounded_and_can_be_off() {
    let db = TestDb::sqlite();
    let small = db
        .open(&ConversationSettings {
            retention: Retention::Keep,
            cache_entries: 2,
        })
        .await;
    for i in 0..20 {
        small
            .put(turn(&format!("resp_{i}"), "t", None))
            .await
            .unwrap();
    }
    assert!(small.cache().len().await <= 2);
    // Every turn is still there, from the database.
    for i in 0..20 {
        assert!(small
            .get("t", &format!("resp_{i}"))
            .await
            .unwrap()
            .is_some());
    }
    let off = db
        .open(&ConversationSettings {
            retention: Retention::Keep,
            cache_entries: 0,
        })
        .await;
    off.put(turn("resp_off", "t", None)).await.unwrap();
    assert!(off.get("t", "resp_off").await.unwrap().is_some());
    assert_eq!(off.metrics().cache_hits.get(), 0);
    assert_eq!(off.metrics().cache_misses.get(), 1);
    db.cleanup().await;
}

#[tokio::test]
async fn a_reloaded_retention_applies_to_new_turns() {
    let db = TestDb::sqlite();
    let store = db.open(&ConversationSettings::default()).await;
    let mut before = turn("resp_before", "t", None);
    before.created_at = now_secs() - 2 * DAY;
    store.put(before.clone()).await.unwrap();
    store.set_retention(Retention::For(Duration::from_secs(DAY as u64)));
    let mut after = turn("resp_after", "t", None);
    after.created_at = before.created_at;
    store.put(after).await.unwrap();
    assert!(store.get("t", "resp_before").await.unwrap().is_some());
    assert!(store.get("t", "resp_after").await.unwrap().is_none());
    db.cleanup().await;
}

#[tokio::test]
async fn invalid_turns_are_refused_before_the_database() {
    let store = ConversationStore::in_memory(
        &ConversationSettings::default(),
        ResponsesMetrics::unregistered(),
    );
    let mut bad = turn("resp_bad", "t", None);
    bad.response = "not json".to_owned();
    assert!(matches!(
        store.put(bad).await,
        Err(StoreError::Invalid {
            field: "response",
            ..
        })
    ));
    store.put(turn("resp_ok", "t", None)).await.unwrap();
    assert!(store.get_current("t", "resp_ok").await.unwrap().is_some());
    assert_eq!(store.metrics().stored.get(), 1);
}

/// The sweeper deletes every expired row in batches of [`sweep::SWEEP_BATCH`], keeps live
/// ones, and stops when asked.
#[tokio::test]
async fn the_sweeper_deletes_expired_rows_in_batches_and_stops() {
    let db = TestDb::sqlite();
    let store = db.open(&ConversationSettings::default()).await;
    let expired_count = sweep::SWEEP_BATCH as usize * 2 + 10;
    for i in 0..expired_count {
        let mut old = turn(&format!("resp_old_{i}"), "t", None);
        old.created_at = now_secs() - 40 * DAY;
        store.put(old).await.unwrap();
    }
    store.put(turn("resp_live", "t", None)).await.unwrap();
    let sweeper = Sweeper::start(
        store.clone(),
        &tokio::runtime::Handle::current(),
        Duration::from_millis(20),
    );
    // Bounded wait: the first sweep runs at once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while store.database().count_rows().await.unwrap() > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sweeper did not delete the expired rows"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.metrics().expired.get(), expired_count as u64);
    tokio::time::timeout(Duration::from_secs(10), sweeper.stop())
        .await
        .expect("the sweeper stops");
    // Stopped: a row expiring now stays.
    let mut late = turn("resp_late", "t", None);
    late.created_at = now_secs() - 40 * DAY;
    store.put(late).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.database().count_rows().await.unwrap(), 2);
    assert!(store.get("t", "resp_live").await.unwrap().is_some());
    db.cleanup().await;
}
