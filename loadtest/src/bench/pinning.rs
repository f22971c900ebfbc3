//! Pinning a run's processes to CPUs (`--proxy-cpus N`): the proxy under test alone on its
//! own cores, the load generator and the simulators on the others, so that what the proxy
//! costs is not mixed with what drives it (docs/benchmarks.md, "Side by side, pinned").

use std::io;
use std::process::Command as StdCommand;

use anyhow::{ensure, Context};
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use serde::Serialize;

/// Which CPUs the proxy under test gets and which everything else gets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Layout {
    /// Switchyard, and nginx's master and its workers (one per CPU here).
    pub proxy: Vec<usize>,
    /// The load generator (this process) and the simulators.
    pub rest: Vec<usize>,
}

impl Layout {
    /// Splits the CPUs this process may use: the last `proxy_cpus` for the proxy, the
    /// others for the rest. At least one CPU must be left for the rest.
    pub fn split(proxy_cpus: usize) -> anyhow::Result<Self> {
        let allowed = allowed_cpus().context("reading this process's CPU affinity")?;
        Self::from_allowed(&allowed, proxy_cpus)
    }

    pub fn from_allowed(allowed: &[usize], proxy_cpus: usize) -> anyhow::Result<Self> {
        ensure!(proxy_cpus > 0, "--proxy-cpus must be at least 1");
        ensure!(
            proxy_cpus < allowed.len(),
            "--proxy-cpus {proxy_cpus} leaves no CPU for the load generator: this process may \
             use {} CPU(s) ({allowed:?})",
            allowed.len()
        );
        let (rest, proxy) = allowed.split_at(allowed.len() - proxy_cpus);
        Ok(Self {
            proxy: proxy.to_vec(),
            rest: rest.to_vec(),
        })
    }

    /// `proxy under test on CPU 1; load generator and simulators on CPU 0`.
    pub fn describe(&self) -> String {
        format!(
            "proxy under test on CPU {}; load generator and simulators on CPU {}",
            list(&self.proxy),
            list(&self.rest)
        )
    }
}

fn list(cpus: &[usize]) -> String {
    let names: Vec<String> = cpus.iter().map(usize::to_string).collect();
    names.join(",")
}

/// The CPUs this process may run on, ascending.
pub fn allowed_cpus() -> nix::Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0))?;
    Ok((0..CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .collect())
}

fn cpu_set(cpus: &[usize]) -> anyhow::Result<CpuSet> {
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu)
            .with_context(|| format!("CPU {cpu} is out of range"))?;
    }
    Ok(set)
}

/// Makes a child started by `command` run on `cpus` only, from its first instruction on
/// (the affinity is set between fork and exec, so every thread it starts inherits it).
pub fn pin_std_command(command: &mut StdCommand, cpus: &[usize]) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let set = cpu_set(cpus)?;
    // SAFETY: only sched_setaffinity, a plain system call, runs between fork and exec.
    unsafe {
        command
            .pre_exec(move || sched_setaffinity(Pid::from_raw(0), &set).map_err(io::Error::from));
    }
    Ok(())
}

/// [`pin_std_command`] for a tokio command.
pub fn pin_tokio_command(
    command: &mut tokio::process::Command,
    cpus: &[usize],
) -> anyhow::Result<()> {
    let set = cpu_set(cpus)?;
    // SAFETY: only sched_setaffinity, a plain system call, runs between fork and exec.
    unsafe {
        command
            .pre_exec(move || sched_setaffinity(Pid::from_raw(0), &set).map_err(io::Error::from));
    }
    Ok(())
}

/// Moves every thread of this process (the runtime's workers included) onto `cpus`; threads
/// started later inherit it from the thread that starts them.
pub fn pin_this_process(cpus: &[usize]) -> anyhow::Result<()> {
    let set = cpu_set(cpus)?;
    let tasks = std::fs::read_dir("/proc/self/task").context("listing /proc/self/task")?;
    for task in tasks {
        let name = task.context("reading /proc/self/task")?.file_name();
        let Some(tid) = name.to_str().and_then(|name| name.parse::<i32>().ok()) else {
            continue;
        };
        // A thread that ended since the listing is fine to miss.
        match sched_setaffinity(Pid::from_raw(tid), &set) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(error) => {
                return Err(error).with_context(|| format!("pinning thread {tid} to {cpus:?}"))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_gets_the_last_cpus_and_the_rest_the_others() -> anyhow::Result<()> {
        let layout = Layout::from_allowed(&[0, 1], 1)?;
        assert_eq!(layout.proxy, vec![1]);
        assert_eq!(layout.rest, vec![0]);
        assert_eq!(
            layout.describe(),
            "proxy under test on CPU 1; load generator and simulators on CPU 0"
        );
        let wide = Layout::from_allowed(&[0, 2, 4, 6], 2)?;
        assert_eq!(wide.proxy, vec![4, 6]);
        assert_eq!(wide.rest, vec![0, 2]);
        Ok(())
    }

    #[test]
    fn refuses_a_layout_without_a_cpu_for_the_rest() {
        assert!(Layout::from_allowed(&[0, 1], 2).is_err());
        assert!(Layout::from_allowed(&[0], 1).is_err());
        assert!(Layout::from_allowed(&[0, 1], 0).is_err());
    }

    #[test]
    fn this_process_runs_somewhere() -> anyhow::Result<()> {
        assert!(!allowed_cpus()?.is_empty());
        Ok(())
    }
}
