//! A small tmpfs mount for disk-full tests.
//!
//! [`Tmpfs::mount`] creates a temporary directory and mounts a tmpfs of the
//! given size on it (`mount -t tmpfs -o size=N tmpfs DIR`; needs root or
//! `CAP_SYS_ADMIN`). [`Tmpfs::fill`] writes a filler file until only about
//! the requested number of bytes are free, so the code under test runs out
//! of space (`ENOSPC`) on its next writes; [`Tmpfs::free_filler`] deletes
//! it again. Dropping the value unmounts (`umount -l`) and removes the
//! directory.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::postgres::{euid_is_root, make_temp_dir};

/// Name of the filler file inside the mount.
pub const FILLER_NAME: &str = ".tmpfs-filler";

/// Allocation granularity assumed when filling (the usual page size).
const BLOCK: u64 = 4096;

/// Largest single write while filling.
const MAX_CHUNK: u64 = 1 << 20;

/// A mounted tmpfs. See the [module documentation](self).
#[derive(Debug)]
pub struct Tmpfs {
    dir: PathBuf,
    size: u64,
    mounted: bool,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size_bytes` (the kernel rounds up to whole
    /// pages) on a fresh temporary directory.
    ///
    /// # Errors
    ///
    /// When not running as root, or when `mount` fails (its stderr is
    /// quoted).
    pub fn mount(size_bytes: u64) -> Result<Self, String> {
        if size_bytes == 0 {
            // size=0 would mean "unlimited" to tmpfs.
            return Err("Tmpfs::mount: size must be > 0".to_owned());
        }
        if !euid_is_root()? {
            return Err(
                "Tmpfs::mount needs root (mount -t tmpfs); run the test as root or skip it"
                    .to_owned(),
            );
        }
        let dir = make_temp_dir("trawl-tmpfs")?;
        let mut t = Self {
            dir,
            size: size_bytes,
            mounted: false,
        };
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size_bytes}"))
            .arg("tmpfs")
            .arg(&t.dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("Tmpfs::mount: cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "Tmpfs::mount: `mount -t tmpfs -o size={size_bytes} tmpfs {}` failed ({}): {}",
                t.dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        t.mounted = true;
        Ok(t)
    }

    /// The mount point.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The size asked for at mount time.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes currently available on the mount (`df -B1 --output=avail`).
    ///
    /// # Errors
    ///
    /// If `df` fails or prints something unexpected.
    pub fn available(&self) -> Result<u64, String> {
        let out = Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("Tmpfs: cannot run df: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "Tmpfs: df {} failed ({}): {}",
                self.dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| format!("Tmpfs: unexpected df output: {text:?}"))
    }

    /// Writes (or extends) the filler file until at most about
    /// `leave_free` bytes are free (within one page), and returns its
    /// path.
    ///
    /// # Errors
    ///
    /// If writing fails other than by running out of space, or `df` fails.
    pub fn fill(&self, leave_free: u64) -> Result<PathBuf, String> {
        let path = self.filler_path();
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("Tmpfs::fill: cannot open {}: {e}", path.display()))?;
        let zeros = vec![0u8; usize::try_from(MAX_CHUNK).unwrap_or(1 << 20)];
        // Each round writes whole blocks, at most what is over the target,
        // so this converges without overshooting (bar page sizes > 4 KiB).
        loop {
            let avail = self.available()?;
            let excess = avail.saturating_sub(leave_free) / BLOCK * BLOCK;
            if excess == 0 {
                break;
            }
            let n = usize::try_from(excess.min(MAX_CHUNK)).unwrap_or(zeros.len());
            match f.write_all(&zeros[..n]) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(ENOSPC) => break,
                Err(e) => {
                    return Err(format!("Tmpfs::fill: writing {}: {e}", path.display()));
                }
            }
        }
        Ok(path)
    }

    /// Deletes the filler file (no error if there is none).
    ///
    /// # Errors
    ///
    /// If the file exists and cannot be removed.
    pub fn free_filler(&self) -> Result<(), String> {
        let path = self.filler_path();
        // Truncate first: that frees the pages at once even if some other
        // process still holds the file open (e.g. a child forked by another
        // test thread while `fill` had it open, not yet at its `exec`),
        // which a bare unlink would not.
        match OpenOptions::new().write(true).open(&path) {
            Ok(f) => f
                .set_len(0)
                .map_err(|e| format!("Tmpfs::free_filler: truncating {}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(format!(
                    "Tmpfs::free_filler: opening {}: {e}",
                    path.display()
                ));
            }
        }
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("Tmpfs::free_filler: {}: {e}", path.display())),
        }
    }

    fn filler_path(&self) -> PathBuf {
        self.dir.join(FILLER_NAME)
    }
}

/// `ENOSPC` on Linux.
const ENOSPC: i32 = 28;

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&self.dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // Only ever an empty directory once unmounted: never recurse, so a
        // failed unmount cannot delete anything.
        let _ = fs::remove_dir(&self.dir);
    }
}

/// Whether `path` is a mount point, by `/proc/self/mountinfo`.
#[cfg(test)]
fn is_mount_point(path: &Path) -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    // Field 5 is the mount point (spaces etc. octal-escaped, absent here).
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| mp == want)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::fs::File;

    const KIB: u64 = 1024;

    fn write_64k(path: &Path) -> std::io::Result<()> {
        let mut f = File::create(path)?;
        f.write_all(&[7u8; 64 * 1024])?;
        f.sync_all()
    }

    #[test]
    fn fill_causes_enospc_until_freed_and_drop_unmounts() {
        if !euid_is_root().unwrap() {
            eprintln!("skipping: Tmpfs needs root");
            return;
        }
        let t = Tmpfs::mount(256 * KIB).unwrap();
        let dir = t.path().to_path_buf();
        assert!(is_mount_point(&dir));
        let total = t.available().unwrap();
        assert!((256 * KIB..=260 * KIB).contains(&total), "{total}");

        let filler = t.fill(8 * KIB).unwrap();
        assert_eq!(filler, dir.join(FILLER_NAME));
        let left = t.available().unwrap();
        assert!(left <= 8 * KIB + BLOCK, "{left} bytes left");
        assert!(left + 2 * BLOCK >= 8 * KIB, "{left} bytes left");

        let victim = dir.join("victim");
        let err = write_64k(&victim).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(28), "{err}");

        t.free_filler().unwrap();
        assert!(!filler.exists());
        if let Err(e) = write_64k(&victim) {
            panic!(
                "write after free_filler failed: {e} (available: {:?})",
                t.available()
            );
        }
        assert_eq!(fs::metadata(&victim).unwrap().len(), 64 * KIB);
        // Freeing twice is fine.
        t.free_filler().unwrap();

        drop(t);
        assert!(!is_mount_point(&dir));
        assert!(!dir.exists());
    }

    #[test]
    fn zero_size_is_rejected() {
        assert!(Tmpfs::mount(0).is_err());
    }
}
