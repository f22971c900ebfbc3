//! What a process under test costs, read from `/proc`: CPU time (user + system, in clock
//! ticks of `_SC_CLK_TCK`) from `/proc/<pid>/stat`, resident memory now (`VmRSS`) and at its
//! peak (`VmHWM`) from `/proc/<pid>/status`, and a process's children (nginx's workers).

use std::time::Duration;

use anyhow::{bail, Context};
use nix::unistd::{sysconf, SysconfVar};
use serde::Serialize;

/// CPU time (user + system) of `pid`'s threads so far.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let ticks = cpu_ticks(&stat)?;
    Ok(ticks_to_duration(ticks, clock_ticks_per_second()?))
}

/// The sum of [`cpu_time`] over `pids`.
pub fn cpu_time_of(pids: &[u32]) -> anyhow::Result<Duration> {
    pids.iter().map(|&pid| cpu_time(pid)).sum()
}

/// `utime + stime` of a `/proc/<pid>/stat` line. The command name (field 2) is in
/// parentheses and may hold spaces or parentheses, so fields are counted after the last `)`.
pub fn cpu_ticks(stat: &str) -> anyhow::Result<u64> {
    let Some((_, after_name)) = stat.rsplit_once(')') else {
        bail!("no `)` in a /proc stat line: {stat:?}");
    };
    // After the name: state (field 3) … utime is field 14, stime field 15.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |index: usize, name: &str| -> anyhow::Result<u64> {
        fields
            .get(index)
            .with_context(|| format!("no {name} in {stat:?}"))?
            .parse::<u64>()
            .with_context(|| format!("parsing {name} of {stat:?}"))
    };
    Ok(field(11, "utime")? + field(12, "stime")?)
}

/// The parent pid (field 4) of a `/proc/<pid>/stat` line.
pub fn parent_pid(stat: &str) -> Option<u32> {
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(1)?.parse().ok()
}

fn clock_ticks_per_second() -> anyhow::Result<u64> {
    let ticks = sysconf(SysconfVar::CLK_TCK)
        .context("sysconf(_SC_CLK_TCK)")?
        .context("_SC_CLK_TCK is not defined")?;
    u64::try_from(ticks)
        .ok()
        .filter(|&ticks| ticks > 0)
        .with_context(|| format!("_SC_CLK_TCK is {ticks}"))
}

fn ticks_to_duration(ticks: u64, per_second: u64) -> Duration {
    Duration::from_secs(ticks / per_second)
        + Duration::from_nanos((ticks % per_second) * 1_000_000_000 / per_second)
}

/// Resident memory of a process, in KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the peak resident size so far.
    pub peak_kib: u64,
}

impl std::ops::Add for Memory {
    type Output = Memory;

    fn add(self, other: Memory) -> Memory {
        Memory {
            rss_kib: self.rss_kib + other.rss_kib,
            peak_kib: self.peak_kib + other.peak_kib,
        }
    }
}

/// `pid`'s [`Memory`].
pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    parse_memory(&status).with_context(|| format!("no VmRSS/VmHWM in /proc/{pid}/status"))
}

/// The sum of [`memory`] over `pids` (nginx: master and workers; the peak is then an upper
/// bound, as the processes need not have peaked at once).
pub fn memory_of(pids: &[u32]) -> anyhow::Result<Memory> {
    pids.iter()
        .try_fold(Memory::default(), |sum, &pid| Ok(sum + memory(pid)?))
}

/// `VmRSS` and `VmHWM` of a `/proc/<pid>/status` text.
pub fn parse_memory(status: &str) -> Option<Memory> {
    let kib = |key: &str| -> Option<u64> {
        status.lines().find_map(|line| {
            let value = line.strip_prefix(key)?.strip_prefix(':')?;
            value.trim().strip_suffix("kB")?.trim().parse().ok()
        })
    };
    Some(Memory {
        rss_kib: kib("VmRSS")?,
        peak_kib: kib("VmHWM")?,
    })
}

/// The pids whose parent is `parent` (nginx's workers under its master).
pub fn children(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children: Vec<u32> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| parent_pid(&stat))
                == Some(parent)
        })
        .collect();
    children.sort_unstable();
    children
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (nginx: worker (x)) S 4200 4200 4200 0 -1 4194624 1000 0 0 0 \
                        250 75 0 0 20 0 1 0 12345 10000000 800 18446744073709551615";

    #[test]
    fn cpu_ticks_are_utime_plus_stime_after_the_name() -> anyhow::Result<()> {
        assert_eq!(cpu_ticks(STAT)?, 325);
        assert_eq!(parent_pid(STAT), Some(4200));
        assert!(cpu_ticks("4242 (cut").is_err());
        assert!(cpu_ticks("4242 (short) S 1 2").is_err());
        Ok(())
    }

    #[test]
    fn ticks_become_durations() {
        assert_eq!(ticks_to_duration(325, 100), Duration::from_millis(3250));
        assert_eq!(ticks_to_duration(1, 1000), Duration::from_millis(1));
    }

    #[test]
    fn memory_comes_from_vmrss_and_vmhwm() {
        let status =
            "Name:\tswitchyard\nVmPeak:\t  900000 kB\nVmHWM:\t   52000 kB\nVmRSS:\t   48000 kB\n";
        assert_eq!(
            parse_memory(status),
            Some(Memory {
                rss_kib: 48_000,
                peak_kib: 52_000
            })
        );
        assert_eq!(parse_memory("Name:\tx\nVmRSS:\t 1 kB\n"), None);
    }

    #[test]
    fn this_process_can_be_read() -> anyhow::Result<()> {
        let me = std::process::id();
        let before = cpu_time(me)?;
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(cpu_time(me)? >= before);
        let memory = memory(me)?;
        assert!(memory.rss_kib > 0 && memory.peak_kib >= memory.rss_kib);
        Ok(())
    }
}
