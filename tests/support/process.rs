//! Child processes that cannot outlive the test binary, with their output kept in a file.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::thread;

/// A running child whose stdout and stderr go to `log_path`.
pub struct ManagedProcess {
    pub name: String,
    pub log_path: PathBuf,
    child: Mutex<Child>,
}

impl ManagedProcess {
    pub fn spawn(name: &str, mut command: Command, log_path: PathBuf) -> io::Result<Self> {
        let log = File::create(&log_path)?;
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = spawn_from_keeper_thread(command)?;
        Ok(ManagedProcess {
            name: name.to_string(),
            log_path,
            child: Mutex::new(child),
        })
    }

    pub fn pid(&self) -> u32 {
        self.lock().id()
    }

    /// `Some(description)` once the process has exited.
    pub fn exit_status(&self) -> Option<String> {
        match self.lock().try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(error) => Some(format!("unknown ({error})")),
        }
    }

    /// SIGKILL and reap. The control plane's state is disposable, so a graceful shutdown
    /// (several seconds for kube-apiserver) would only slow every test binary down.
    pub fn kill(&self) {
        let mut child = self.lock();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`: for processes whose
    /// graceful shutdown is under test (the operator).
    pub fn terminate(&self, grace: std::time::Duration) {
        let mut child = self.lock();
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SAFETY: kill(2) on our own child, which has not been reaped yet.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The last `lines` lines of the process's output.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_path, lines).unwrap_or_else(|error| format!("<cannot read log: {error}>"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Child> {
        self.child
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `command` from one thread that lives as long as the process.
///
/// PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process.
/// Test threads come and go, so children are forked from a dedicated thread that never
/// returns; the signal then arrives exactly when the test binary dies, however it dies.
fn spawn_from_keeper_thread(command: Command) -> io::Result<Child> {
    static KEEPER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let sender = KEEPER.get_or_init(|| {
        let (sender, requests) = mpsc::channel::<SpawnRequest>();
        thread::Builder::new()
            .name("control-plane-process-keeper".into())
            .spawn(move || {
                for (mut command, reply) in requests {
                    let _ = reply.send(spawn_dying_with_parent(&mut command));
                }
                // The sender lives in a static, so the loop above never ends.
            })
            .expect("start process keeper thread");
        Mutex::new(sender)
    });
    let (reply, response) = mpsc::channel();
    sender
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .send((command, reply))
        .map_err(|_| io::Error::other("process keeper thread is gone"))?;
    response
        .recv()
        .map_err(|_| io::Error::other("process keeper thread is gone"))?
}

fn spawn_dying_with_parent(command: &mut Command) -> io::Result<Child> {
    // SAFETY: getpid is async-signal-safe and has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs between fork and exec and only calls async-signal-safe
    // functions (prctl, getppid, _exit).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    command.spawn()
}

/// A TCP port on 127.0.0.1 that was free a moment ago. Ports are held until all are
/// picked so one call never returns the same port twice.
pub fn free_loopback_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a loopback port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("local address").port())
}

fn tail(path: &Path, lines: usize) -> io::Result<String> {
    const MAX_BYTES: u64 = 256 * 1024;
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(MAX_BYTES)))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    Ok(all[all.len().saturating_sub(lines)..].join("\n"))
}
