//! Section 7, opt-in (`--only idle`): `hermetic run` right after another run and after the
//! machine sat idle, with the allocator options `hermetic` ships against transparent huge
//! pages (`thp:always,metadata_thp:always`, which sessions 15 to 21 shipped; see
//! `runtime/src/allocator.rs`).
//!
//! A run "after idle" starts `--idle-secs` seconds after anything else of the bench ran, as
//! `hermetic run` starts in CI or for a developer; "back to back" runs twice in a row and
//! times the second, as every other section of the bench does. The two options alternate
//! within each round, and which goes first alternates between rounds. The huge-page runs set
//! `_RJEM_MALLOC_CONF`, which jemalloc reads after the options compiled in.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::procs;
use crate::report::{Figure, Table, count};

/// `--jobs` of every run of the section.
const JOBS: usize = 2;

/// What `_RJEM_MALLOC_CONF` adds for the huge-page runs.
const HUGE_PAGES: &str = "thp:always,metadata_thp:always";

/// Every figure of the section, one value per round: `[shipped, huge pages]`.
#[derive(Debug, Default)]
pub struct Figures {
    one_idle: [Figure; 2],
    one_hot: [Figure; 2],
    wide_idle: [Figure; 2],
    wide_hot: [Figure; 2],
}

/// The section's workflows and settings.
#[derive(Debug)]
pub struct Bench {
    hermetic: PathBuf,
    cache: PathBuf,
    one: PathBuf,
    wide: PathBuf,
    wide_steps: usize,
    idle: Duration,
}

impl Bench {
    /// Writes a one-step workflow and the pool section's wide DAG of `steps` no-op steps under
    /// `work`, and runs each once.
    pub fn new(
        hermetic: &Path,
        noop: &Path,
        work: &Path,
        cache: &Path,
        steps: usize,
        idle: Duration,
    ) -> anyhow::Result<Self> {
        let one = procs::write_workflow(&work.join("one"), 1, noop)?;
        let (wide, wide_steps) = crate::pool::write_wide_dag(&work.join("wide"), noop, steps)?;
        let bench = Self {
            hermetic: hermetic.to_path_buf(),
            cache: cache.to_path_buf(),
            one,
            wide,
            wide_steps,
            idle,
        };
        for wf in [&bench.one, &bench.wide] {
            bench.run(wf, false)?;
        }
        Ok(bench)
    }

    /// Wall time of one `hermetic run --no-cache` of `workflow`, with huge pages or not.
    fn run(&self, workflow: &Path, huge_pages: bool) -> anyhow::Result<Duration> {
        let mut cmd = procs::hermetic_command(&self.hermetic, &self.cache, workflow, JOBS);
        cmd.arg("--no-cache");
        if huge_pages {
            cmd.env("_RJEM_MALLOC_CONF", HUGE_PAGES);
        } else {
            cmd.env_remove("_RJEM_MALLOC_CONF");
        }
        procs::run_quiet(cmd)
    }

    /// One round: each workflow after idle and back to back, with each option.
    pub fn round(&self, round: usize, f: &mut Figures) -> anyhow::Result<()> {
        let order: [usize; 2] = if round.is_multiple_of(2) {
            [1, 0]
        } else {
            [0, 1]
        };
        let workloads = [
            (&self.one, &mut f.one_idle, &mut f.one_hot),
            (&self.wide, &mut f.wide_idle, &mut f.wide_hot),
        ];
        for (workflow, idle, hot) in workloads {
            for k in order {
                std::thread::sleep(self.idle);
                idle[k].push(self.run(workflow, k == 1)?.as_secs_f64());
                hot[k].push(self.run(workflow, k == 1)?.as_secs_f64());
            }
        }
        Ok(())
    }

    /// Adds the section's rows to `t`.
    pub fn print(&self, t: &mut Table, f: &Figures) {
        t.heading(format!(
            "7. hermetic run --jobs {JOBS} --no-cache after {} s idle and back to back: the \
             shipped allocator options against transparent huge pages; ratio = ÷ shipped",
            self.idle.as_secs()
        ));
        let n = count(self.wide_steps);
        let rows = [
            ("1 step, after idle".to_owned(), &f.one_idle),
            ("1 step, back to back".to_owned(), &f.one_hot),
            (format!("{n} steps, after idle"), &f.wide_idle),
            (format!("{n} steps, back to back"), &f.wide_hot),
        ];
        for (what, figs) in rows {
            let shipped = figs[0].median();
            t.time(format!("{what}: shipped"), &figs[0], Some(shipped));
            t.time(format!("{what}: {HUGE_PAGES}"), &figs[1], Some(shipped));
        }
        t.note(
            "after idle = the run starts --idle-secs after the bench's last process ended; back \
             to back = the second of two runs in a row. The wide DAG is section 5's.",
        );
    }
}
