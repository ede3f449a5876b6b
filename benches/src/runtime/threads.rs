//! Where threads run: pinning the benchmark's own threads, and placing shard threads.
//!
//! `Runtime::start` pins shard `k` to the `k`-th core the *calling thread* may run on (it reads the
//! caller's affinity once, before anything is pinned), and offers no way to name a core. The
//! headline measurements want the shard on core 1 and the producer on core 0, so [`start`] calls
//! `Runtime::start` from a short-lived thread whose affinity has been narrowed to the shard's core
//! first: the shard thread inherits that affinity and pins to it, and the caller's own affinity is
//! untouched. With no core named, the starting thread keeps the full affinity and shards land on
//! cores 0, 1, ... as the runtime decides.

use simex::runtime::{Runtime, RuntimeConfig, Started};
use simex_engine::InstrumentTable;

/// Cores this process may run on.
pub fn available_cores() -> usize {
    core_affinity::get_core_ids().map_or(1, |cores| cores.len().max(1))
}

/// Pins the calling thread to `core`; warns (once per call) if the system refuses.
pub fn pin(core: usize) -> bool {
    let pinned = core_affinity::set_for_current(core_affinity::CoreId { id: core });
    if !pinned {
        eprintln!("warning: could not pin a benchmark thread to core {core}");
    }
    pinned
}

/// Starts a runtime; with `shard_core`, its shard threads are confined to that core (meant for one
/// shard: every shard would share it).
pub fn start(config: RuntimeConfig, instruments: InstrumentTable, shard_core: Option<usize>) -> Started {
    std::thread::Builder::new()
        .name("simex-bench-start".into())
        .spawn(move || {
            if let Some(core) = shard_core {
                pin(core);
            }
            Runtime::start(config, instruments).expect("a valid runtime configuration")
        })
        .expect("spawning the starting thread")
        .join()
        .expect("starting the runtime")
}

/// CPU time of the whole machine and of this process, to tell how much of a measurement other
/// processes shared the cores with (the machine the results come from is shared).
#[derive(Clone, Debug, Default)]
pub struct CpuSample {
    /// Jiffies the machine spent busy (everything but idle and iowait), all cores.
    busy: u64,
    /// All jiffies, all cores.
    total: u64,
    /// Jiffies this process spent on a CPU (user and system).
    own: u64,
    /// Jiffies the hypervisor ran something else while this machine's CPUs wanted to run.
    steal: u64,
    /// Interrupts taken so far, per CPU (every line of `/proc/interrupts`, IPIs included).
    interrupts: Vec<u64>,
}

impl CpuSample {
    /// Reads `/proc/stat` and `/proc/self/stat`; zeros where they cannot be read.
    pub fn now() -> CpuSample {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let fields: Vec<u64> =
            stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
        let total: u64 = fields.iter().take(8).sum();
        let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
        let own = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|text| {
                // Fields after the command name (which may hold spaces) start after the last ')'.
                let rest = &text[text.rfind(')')? + 2..];
                let fields: Vec<&str> = rest.split_whitespace().collect();
                // That is field 3 (the state); utime and stime are fields 14 and 15.
                let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
                Some(field(14)? + field(15)?)
            })
            .unwrap_or(0);
        let steal = fields.get(7).copied().unwrap_or(0);
        CpuSample {
            busy: total.saturating_sub(idle).saturating_sub(steal),
            total,
            own,
            steal,
            interrupts: interrupts(),
        }
    }

    /// Share of the machine's CPU time, since `earlier`, used by other processes (steal aside).
    pub fn others_since(&self, earlier: &CpuSample) -> f64 {
        let others = self.busy.saturating_sub(earlier.busy).saturating_sub(self.own.saturating_sub(earlier.own));
        self.share(others, earlier)
    }

    /// Share of the machine's CPU time, since `earlier`, stolen by the hypervisor.
    pub fn steal_since(&self, earlier: &CpuSample) -> f64 {
        self.share(self.steal.saturating_sub(earlier.steal), earlier)
    }

    /// Interrupts per CPU since `earlier`.
    pub fn interrupts_since(&self, earlier: &CpuSample) -> Vec<u64> {
        self.interrupts.iter().zip(earlier.interrupts.iter().chain(std::iter::repeat(&0))).map(|(a, b)| a - b).collect()
    }

    fn share(&self, jiffies: u64, earlier: &CpuSample) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        if total == 0 {
            0.0
        } else {
            jiffies as f64 / total as f64
        }
    }
}

/// Interrupt counts per CPU, summed over every source in `/proc/interrupts`.
fn interrupts() -> Vec<u64> {
    let text = std::fs::read_to_string("/proc/interrupts").unwrap_or_default();
    let mut lines = text.lines();
    let cpus = lines.next().map_or(0, |header| header.split_whitespace().count());
    let mut totals = vec![0u64; cpus];
    for line in lines {
        let counts = line.split_whitespace().skip(1).take(cpus).map_while(|field| field.parse::<u64>().ok());
        for (total, count) in totals.iter_mut().zip(counts) {
            *total += count;
        }
    }
    totals
}

/// How often one thread was preempted and how long it waited, runnable, for a CPU: the kernel's
/// per-thread `nonvoluntary_ctxt_switches` and run-queue wait (`schedstat`). A pinned, spinning
/// thread never sleeps, so every switch away from it is a preemption, and its run-queue wait is the
/// time something else ran on its core instead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Preemption {
    pub count: u64,
    pub waited_ns: u64,
}

impl Preemption {
    /// The calling thread's totals so far.
    pub fn current_thread() -> Option<Preemption> {
        Preemption::read("/proc/thread-self")
    }

    /// The totals of this process's thread named `name` (the first one found).
    pub fn thread_named(name: &str) -> Option<Preemption> {
        let tasks = std::fs::read_dir("/proc/self/task").ok()?;
        for task in tasks.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim_end() == name {
                return Preemption::read(&task.path().to_string_lossy());
            }
        }
        None
    }

    fn read(dir: &str) -> Option<Preemption> {
        let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
        let count = status
            .lines()
            .find_map(|line| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            .and_then(|value| value.trim().parse().ok())?;
        let schedstat = std::fs::read_to_string(format!("{dir}/schedstat")).ok()?;
        let waited_ns = schedstat.split_whitespace().nth(1).and_then(|value| value.parse().ok())?;
        Some(Preemption { count, waited_ns })
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Preemption) -> Preemption {
        Preemption {
            count: self.count.saturating_sub(earlier.count),
            waited_ns: self.waited_ns.saturating_sub(earlier.waited_ns),
        }
    }

    /// `a + b` when both were read.
    pub fn sum(a: Option<Preemption>, b: Option<Preemption>) -> Option<Preemption> {
        let (a, b) = (a?, b?);
        Some(Preemption { count: a.count + b.count, waited_ns: a.waited_ns + b.waited_ns })
    }

    /// `later - earlier` when both were read.
    pub fn between(earlier: Option<Preemption>, later: Option<Preemption>) -> Option<Preemption> {
        Some(later?.since(&earlier?))
    }
}
