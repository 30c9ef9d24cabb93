//! A cgroup below the test's own, in every hierarchy, as the `cgroup_parent` of the pods the
//! test runs: runc creates the containers' cgroups there and nowhere else, and the test
//! removes the whole subtree (plus any parent directory runc had to create) afterwards.

use std::path::{Path, PathBuf};

const PREFIX: &str = "cvm-operator-runtime-";

pub struct TestCgroup {
    /// The path inside each hierarchy, e.g. `/a/b/cvm-operator-runtime-123-0`.
    pub path: String,
    mounts: Vec<PathBuf>,
    /// Directories above `path` that did not exist before (runc creates them).
    missing_before: Vec<PathBuf>,
}

impl TestCgroup {
    pub fn new(tag: &str) -> TestCgroup {
        let own = own_cgroup_path();
        let mounts = cgroup_mounts();
        for mount in &mounts {
            remove_abandoned(&mount.join(own.trim_start_matches('/')));
        }
        let path = format!(
            "{}/{PREFIX}{}-{tag}",
            own.trim_end_matches('/'),
            std::process::id()
        );
        let mut missing_before = Vec::new();
        for mount in &mounts {
            let mut dir = mount.clone();
            for component in own.split('/').filter(|c| !c.is_empty()) {
                dir.push(component);
                if !dir.exists() {
                    missing_before.push(dir.clone());
                }
            }
        }
        TestCgroup {
            path,
            mounts,
            missing_before,
        }
    }

    /// The host PIDs of a container (or sandbox) `id` created under this cgroup.
    pub fn pids(&self, id: &str) -> Vec<u32> {
        self.mounts
            .iter()
            .find_map(|m| {
                std::fs::read_to_string(self.dir_in(m).join(id).join("cgroup.procs")).ok()
            })
            .map(|procs| procs.lines().filter_map(|l| l.parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Removes the subtree and the parents runc created; retries while the killed
    /// processes are still leaving their cgroups.
    pub fn remove(&self) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            for mount in &self.mounts {
                remove_tree(&self.dir_in(mount));
            }
            for dir in self.missing_before.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
            let left = self.leftovers();
            if left.is_empty() || std::time::Instant::now() >= deadline {
                return left;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Directories of this cgroup that still exist.
    pub fn leftovers(&self) -> Vec<String> {
        self.mounts
            .iter()
            .map(|m| self.dir_in(m))
            .chain(self.missing_before.iter().cloned())
            .filter(|d| d.exists())
            .map(|d| d.display().to_string())
            .collect()
    }

    fn dir_in(&self, mount: &Path) -> PathBuf {
        mount.join(self.path.trim_start_matches('/'))
    }
}

/// The deepest of this process's cgroup paths; every other hierarchy must hold it at one
/// of its ancestors, so that a child of it is inside the test's own cgroup everywhere.
fn own_cgroup_path() -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").expect("/proc/self/cgroup");
    let paths: Vec<&str> = text
        .lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .collect();
    let deepest = paths.iter().max_by_key(|p| p.len()).copied().unwrap_or("/");
    for path in &paths {
        let inside = *path == "/" || deepest == *path || deepest.starts_with(&format!("{path}/"));
        assert!(
            inside,
            "cannot pick one cgroup below the test's own in every hierarchy: {text}"
        );
    }
    deepest.to_string()
}

/// Mount points of cgroup v1 hierarchies and of cgroup v2.
fn cgroup_mounts() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").expect("/proc/self/mountinfo");
    text.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fstype = after.split(' ').next()?;
            let mount_point = before.split(' ').nth(4)?;
            matches!(fstype, "cgroup" | "cgroup2").then(|| PathBuf::from(mount_point))
        })
        .collect()
}

/// cgroup directories can only be rmdir'ed, children first.
fn remove_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Subtrees left by a test binary that was killed before it could clean up.
fn remove_abandoned(parent: &Path) {
    for dir in crate::support::abandoned_entries(parent, PREFIX) {
        remove_tree(&dir);
    }
}
