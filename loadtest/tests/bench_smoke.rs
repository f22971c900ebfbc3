//! The benchmark's smoke run (issue 13): `loadtest bench`'s three runs — overhead (at two
//! client counts, pinned when the machine has a core to spare), soak and idle streams — with
//! tiny counts against the debug switchyard build. Asserts only that each completes with
//! zero errors and measured what it should; no timing is asserted. nginx rows are skipped
//! with a note when nginx is not installed.

use std::path::PathBuf;
use std::time::Duration;

use loadtest::bench::report::Latency;
use loadtest::bench::soak::SoakSettings;
use loadtest::bench::{self, idle, soak, Settings, Target};
use loadtest::proxy_process::switchyard_binary;

fn settings() -> anyhow::Result<Settings> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Ok(Settings {
        concurrency: vec![4, 1],
        requests: 200,
        duration: None,
        warmup: 20,
        ttft: Duration::ZERO,
        tokens: 4,
        inter_token: Duration::ZERO,
        timeout: Duration::from_secs(30),
        switchyard: switchyard_binary()?,
        loadtest: PathBuf::from(env!("CARGO_BIN_EXE_loadtest")),
        proxy_cpus: (cores >= 2).then_some(1),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_runs_complete_without_errors() -> anyhow::Result<()> {
    let settings = settings()?;

    let overhead = bench::run(settings.clone()).await?;
    println!("{}", overhead.markdown());
    assert!(
        overhead.rows.iter().all(|row| row.errors == 0),
        "{:?}",
        overhead.notes
    );
    let totals = overhead
        .rows
        .iter()
        .filter(|row| row.latency == Latency::Total);
    for row in totals {
        assert_eq!(row.requests, 200, "{row:?}");
        assert_eq!(row.proxy_cpu_us.is_some(), row.path != Target::Direct);
    }
    let switchyard_totals = overhead
        .rows
        .iter()
        .filter(|row| row.path == Target::Switchyard && row.latency == Latency::Total)
        .count();
    assert_eq!(switchyard_totals, 4, "chat and stream at 4 and 1 clients");
    assert_eq!(overhead.side_by_side.len(), 4);
    assert!(overhead
        .memory
        .iter()
        .any(|memory| memory.path == Target::Switchyard && memory.peak_rss_kib > 0));

    let mut soak_settings = SoakSettings::new(Duration::from_secs(5), 60.0, 4);
    soak_settings.reload_every = Duration::from_secs(1);
    let soaked = soak::run(&settings, soak_settings).await?;
    println!("{}", soaked.markdown());
    assert_eq!(soaked.errors(), 0, "{soaked:?}");
    assert!(soaked.chat.ok > 0 && soaked.stream.ok > 0);
    assert!(soaked.failovers >= 1.0, "faults must have caused failovers");
    assert!(soaked.reloads_ok >= 1.0, "rewrites must have been reloaded");
    assert!(soaked.samples.len() >= 2 && soaked.last_rss_kib > 0);

    let idle = idle::run(&settings, 50).await?;
    println!("{}", idle.markdown());
    assert_eq!(idle.errors(), 0, "{idle:?}");
    assert_eq!(idle.opened, 50);
    assert!(idle.rss_held_kib > 0);
    Ok(())
}
