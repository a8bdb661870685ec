//! Where `run` gets each inventory from: collected in this process
//! (`InventorySource::InProcess`: the demo, library tests), or by a
//! short-lived child process of the agent binary, `census-agent
//! collect-inventory`, that writes the wire `Inventory` to its standard
//! output (`InventorySource::ChildProcess`: what `census-agent run` uses).
//!
//! Why a child: the section collectors and parsers, and the heap they grow
//! while reading package databases and apt lists, are most of what a
//! long-running agent would otherwise keep resident between inventories
//! (SPEC §8: idle RSS). Page tables are per process, so code and heap
//! touched only by the child never count toward the agent's memory, and the
//! child gives everything back when it exits. The child is the same binary
//! with the same privileges; it gets what it needs (root, certificate
//! paths, the state directory for the remembered apt answer, the log
//! format) as arguments, never from the agent's config file.
//!
//! Invariants: the parent reads at most `max_output_bytes` of the child's
//! output and waits at most `timeout`; past either it kills the child's
//! whole process group (the commands the child runs too). A child that
//! fails in any way (cannot start, killed, non-zero exit, output that is no
//! inventory) is one failed inventory round, an `Error::Command` the
//! caller logs before trying again at the next interval; health and
//! heartbeats never wait for it. A dropped collection kills its child
//! (`kill_on_drop`). The child's stderr is the agent's own, so its section
//! warnings land in the same log.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use census_proto::v1 as pb;
use prost::Message;

use crate::config::{Config, LogFormat};
use crate::error::{Error, Result};

/// How long a child may take: far above a normal inventory (well under a
/// second), and room for a few section commands that each run into their
/// own 120 s timeout (`collect::command`) before the round is given up.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(600);

/// Largest child output read: a wire inventory of a host with tens of
/// thousands of packages is a few MiB, and the collector refuses reports
/// far smaller than this anyway.
pub const MAX_CHILD_OUTPUT_BYTES: usize = 32 * 1024 * 1024;

/// How `run` obtains an inventory.
#[derive(Debug, Clone)]
pub enum InventorySource {
    /// On a blocking thread of this process.
    InProcess,
    /// From a child process writing the protobuf-encoded `Inventory` to
    /// its standard output.
    ChildProcess(ChildCommand),
}

/// The child process to run for one inventory, with its bounds.
#[derive(Debug, Clone)]
pub struct ChildCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub timeout: Duration,
    pub max_output_bytes: usize,
}

impl ChildCommand {
    /// `exe collect-inventory` with what the child needs from `config`.
    pub fn collect_inventory(exe: PathBuf, config: &Config) -> ChildCommand {
        let log_format = match config.log_format {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        };
        let mut args: Vec<OsString> = vec![
            "--state-dir".into(),
            config.state_dir.clone().into(),
            "--log-format".into(),
            log_format.into(),
            "collect-inventory".into(),
            "--root".into(),
            config.root.clone().into(),
        ];
        for path in &config.certificate_paths {
            args.push("--certificate-path".into());
            args.push(path.clone().into());
        }
        ChildCommand { program: exe, args, timeout: CHILD_TIMEOUT, max_output_bytes: MAX_CHILD_OUTPUT_BYTES }
    }

    /// The command line, for messages.
    fn display(&self) -> String {
        std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(|a| a.as_os_str()))
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs the child once and decodes its output.
    pub async fn run(&self) -> Result<pb::Inventory> {
        use tokio::io::AsyncReadExt;
        let failed = |reason: String| Error::Command { command: self.display(), reason };
        let started = Instant::now();
        let mut command = tokio::process::Command::new(&self.program);
        command.args(&self.args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).kill_on_drop(true);
        // Its own process group, so a timeout also ends the commands it runs.
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command.spawn().map_err(|e| failed(format!("cannot start it: {e}")))?;
        let mut stdout = child.stdout.take().ok_or_else(|| failed("its standard output is not a pipe".into()))?;
        let limit = self.max_output_bytes;
        let finished = tokio::time::timeout(self.timeout, async {
            let mut bytes = Vec::new();
            (&mut stdout).take(limit as u64 + 1).read_to_end(&mut bytes).await?;
            if bytes.len() > limit {
                return Ok(Err(bytes.len()));
            }
            child.wait().await.map(|status| Ok((bytes, status)))
        })
        .await;
        let (bytes, status) = match finished {
            Ok(Ok(Ok(done))) => done,
            Ok(Ok(Err(_))) => {
                kill(&mut child).await;
                return Err(failed(format!("more than {limit} bytes of output; killed")));
            }
            Ok(Err(e)) => {
                kill(&mut child).await;
                return Err(failed(format!("reading its output: {e}; killed")));
            }
            Err(_) => {
                kill(&mut child).await;
                return Err(failed(format!("no answer after {}; killed", humantime::format_duration(self.timeout))));
            }
        };
        if !status.success() {
            return Err(failed(format!("{status} (its own messages, if any, are logged just before)")));
        }
        // An empty message decodes as an empty inventory, which would
        // replace the host's whole inventory with nothing.
        if bytes.is_empty() {
            return Err(failed("it exited without writing an inventory".into()));
        }
        let inventory = pb::Inventory::decode(bytes.as_slice()).map_err(|e| failed(format!("its output is not an inventory: {e}")))?;
        tracing::debug!(bytes = bytes.len(), elapsed_ms = started.elapsed().as_millis() as u64, "inventory collected by a child process");
        Ok(inventory)
    }
}

/// Kills the child and the commands it started, and reaps it.
async fn kill(child: &mut tokio::process::Child) {
    #[cfg(unix)]
    if let Some(group) = child.id().and_then(|id| i32::try_from(id).ok()).filter(|&id| id > 1).and_then(rustix::process::Pid::from_raw) {
        // The group may be gone already; the kill below still reaps.
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
    let _ = child.kill().await;
}

impl InventorySource {
    /// One inventory of the host at `root`, as it goes on the wire. The
    /// future owns what it needs; dropping it abandons the collection.
    pub fn collect(
        &self,
        root: &Path,
        certificate_paths: &[PathBuf],
    ) -> impl std::future::Future<Output = Result<pb::Inventory>> + Send + 'static {
        let source = self.clone();
        let (root, certificate_paths) = (root.to_path_buf(), certificate_paths.to_vec());
        async move {
            match source {
                InventorySource::InProcess => {
                    tokio::task::spawn_blocking(move || crate::wire::inventory(&crate::collect::inventory(&root, &certificate_paths).0))
                        .await
                        .map_err(|e| Error::Collector(format!("inventory task failed: {e}")))
                }
                InventorySource::ChildProcess(command) => command.run().await,
            }
        }
    }
}

/// The child's side (`census-agent collect-inventory`): collects the
/// inventory of `root` and writes it, protobuf-encoded, to `out`. Section
/// timings go to the debug log; section errors travel in the inventory.
pub fn write_inventory(root: &Path, certificate_paths: &[PathBuf], out: &mut impl Write) -> Result<()> {
    let (inventory, timings) = crate::collect::inventory(root, certificate_paths);
    for t in &timings {
        tracing::debug!(section = t.section, wall_micros = t.wall_micros, "inventory section collected");
    }
    let bytes = crate::wire::inventory(&inventory).encode_to_vec();
    out.write_all(&bytes).and_then(|()| out.flush()).map_err(|e| Error::io("writing the inventory to", "standard output", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sh -c script` as the child, with small bounds.
    fn shell(script: &str, timeout: Duration, max_output_bytes: usize) -> ChildCommand {
        ChildCommand { program: "/bin/sh".into(), args: vec!["-c".into(), script.into()], timeout, max_output_bytes }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a test runtime")
    }

    fn reason(result: Result<pb::Inventory>) -> String {
        match result {
            Err(Error::Command { reason, .. }) => reason,
            other => panic!("expected a command error, got {other:?}"),
        }
    }

    fn alive(pid: &str) -> bool {
        // A zombie still has a /proc entry; only a running one counts.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
    }

    #[test]
    fn the_childs_inventory_is_decoded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let expected = pb::Inventory {
            collected_at_unix_ms: 1234,
            errors: vec![pb::SectionError { section: "users".into(), message: "unreadable".into() }],
            ..Default::default()
        };
        let file = dir.path().join("inventory.pb");
        std::fs::write(&file, expected.encode_to_vec()).expect("fixture written");
        let command = shell(&format!("cat '{}'", file.display()), Duration::from_secs(30), 1024);
        assert_eq!(runtime().block_on(command.run()).expect("decoded"), expected);
    }

    #[test]
    fn write_inventory_output_reads_back_with_its_section_errors() {
        // An empty root: most sections fail, and each failure must survive
        // the trip through the child's output.
        let root = tempfile::tempdir().expect("temp dir");
        let mut out = Vec::new();
        write_inventory(root.path(), &[], &mut out).expect("written");
        let inventory = pb::Inventory::decode(out.as_slice()).expect("a wire inventory");
        assert!(inventory.collected_at_unix_ms > 0);
        assert!(inventory.errors.iter().any(|e| e.section == "os"), "{:?}", inventory.errors);
    }

    #[test]
    fn a_child_exiting_non_zero_fails_the_round() {
        let r = reason(runtime().block_on(shell("echo partial; exit 3", Duration::from_secs(30), 1024).run()));
        assert!(r.contains("exit status: 3"), "{r}");
    }

    #[test]
    fn a_child_that_writes_nothing_fails_the_round() {
        let r = reason(runtime().block_on(shell("exit 0", Duration::from_secs(30), 1024).run()));
        assert!(r.contains("without writing an inventory"), "{r}");
    }

    #[test]
    fn output_that_is_no_inventory_fails_the_round() {
        // 0xff is an invalid protobuf tag.
        let r = reason(runtime().block_on(shell("printf '\\377\\377\\377'", Duration::from_secs(30), 1024).run()));
        assert!(r.contains("not an inventory"), "{r}");
    }

    #[test]
    fn too_much_output_kills_the_child() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pid_file = dir.path().join("pid");
        // Writes forever: only the limit can end it.
        let script = format!("echo $$ > '{}'; exec yes", pid_file.display());
        let r = reason(runtime().block_on(shell(&script, Duration::from_secs(60), 64 * 1024).run()));
        assert!(r.contains("more than 65536 bytes of output; killed"), "{r}");
        let pid = std::fs::read_to_string(&pid_file).expect("pid written");
        assert!(!alive(pid.trim()), "the child {pid} still runs");
    }

    #[test]
    fn a_hung_child_and_its_commands_are_killed_at_the_timeout() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pids = dir.path().join("pids");
        // The shell and a command it waits for, as a section command would hang.
        let script = format!("sleep 300 & echo $$ $! > '{}'; wait", pids.display());
        let started = Instant::now();
        let r = reason(runtime().block_on(shell(&script, Duration::from_millis(500), 1024).run()));
        assert!(r.contains("no answer after 500ms; killed"), "{r}");
        assert!(started.elapsed() < Duration::from_secs(60), "returned only after {:?}", started.elapsed());
        let pids = std::fs::read_to_string(&pids).expect("pids written");
        for pid in pids.split_whitespace() {
            // The grandchild is reaped by init, which may take a moment.
            let gone = (0..200).any(|_| {
                let dead = !alive(pid);
                if !dead {
                    std::thread::sleep(Duration::from_millis(10));
                }
                dead
            });
            assert!(gone, "process {pid} survived the timeout");
        }
    }

    #[test]
    fn a_child_that_cannot_start_fails_the_round() {
        let command = ChildCommand {
            program: "/nonexistent/census-agent".into(),
            args: Vec::new(),
            timeout: Duration::from_secs(5),
            max_output_bytes: 1024,
        };
        let r = reason(runtime().block_on(command.run()));
        assert!(r.contains("cannot start it"), "{r}");
    }

    #[test]
    fn the_child_gets_root_state_dir_log_format_and_certificate_paths() {
        let config = Config {
            state_dir: "/var/lib/census-agent".into(),
            root: "/srv/root".into(),
            certificate_paths: vec!["/etc/extra".into(), "/opt/certs".into()],
            log_format: LogFormat::Json,
            ..Config::default()
        };
        let command = ChildCommand::collect_inventory("/usr/bin/census-agent".into(), &config);
        assert_eq!(
            command.display(),
            "/usr/bin/census-agent --state-dir /var/lib/census-agent --log-format json collect-inventory --root /srv/root --certificate-path /etc/extra --certificate-path /opt/certs"
        );
        assert_eq!((command.timeout, command.max_output_bytes), (CHILD_TIMEOUT, MAX_CHILD_OUTPUT_BYTES));
    }
}
