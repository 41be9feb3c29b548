//! The one error type of saferoot.
//!
//! Every error names the operation that failed and, where there is one, the
//! path inside the root that it was working on. Errors that come from the
//! kernel carry the errno; a missing kernel feature names the feature and the
//! first Linux release that has it.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use rustix::io::Errno;

use crate::features::Feature;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, coarsely: the part a caller matches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A path, a mount or a source does not exist (`ENOENT`).
    NotFound,
    /// The thing to create exists already (`EEXIST`).
    AlreadyExists,
    /// The caller passed something saferoot refuses: a relative path, a NUL
    /// byte, an unknown filesystem or option, a path outside the policy.
    InvalidInput,
    /// The running kernel lacks a feature the operation needs.
    Unsupported,
    /// An attack, or something indistinguishable from one, was detected: a
    /// path escaped the root, an inode was swapped, a device was not what it
    /// claimed to be.
    SafetyViolation,
    /// The kernel refused for lack of privilege (`EPERM`, `EACCES`).
    Permission,
    /// Any other error reported by the kernel.
    Os,
}

/// The entry of a spec or configuration that an error is about: which
/// mount, device, masked path, sysctl, command-line flag or config field.
///
/// An index counts in the list that the failing call was given: for
/// [`plan`](crate::rootfs::plan()) and assembly, `RootfsSpec::mounts` and
/// `RootfsSpec::devices`; for `saferoot::oci`, the OCI configuration's
/// `mounts` and `linux.devices`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Entry {
    /// A mount, by index.
    Mount(usize),
    /// A device, by index.
    Device(usize),
    /// A masked path, by index.
    MaskedPath(usize),
    /// A read-only path, by index.
    ReadonlyPath(usize),
    /// A sysctl, by name.
    Sysctl(String),
    /// The working directory.
    Cwd,
    /// A command-line flag (set by a command, never by the library).
    Flag(String),
    /// Any other configuration field, by its name in the configuration
    /// (`root`, `linux.rootfsPropagation`, `process.user.umask`, ...).
    Config(String),
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Mount(i) => write!(f, "mounts[{i}]"),
            Entry::Device(i) => write!(f, "devices[{i}]"),
            Entry::MaskedPath(i) => write!(f, "maskedPaths[{i}]"),
            Entry::ReadonlyPath(i) => write!(f, "readonlyPaths[{i}]"),
            Entry::Sysctl(k) => write!(f, "sysctl {k:?}"),
            Entry::Cwd => f.write_str("cwd"),
            Entry::Flag(s) | Entry::Config(s) => f.write_str(s),
        }
    }
}

/// The error of every fallible saferoot operation.
///
/// Opaque: read it through [`Error::kind`], [`Error::errno`],
/// [`Error::path`], [`Error::operation`], [`Error::entry`] and
/// [`Error::feature`]. Its `Display` names the operation (and, as part of
/// it, the entry), the path, and what went wrong, ending with the errno
/// text when there is an errno. Resolution errors keep the underlying
/// error as their [`std::error::Error::source`].
pub struct Error(Box<Inner>);

struct Inner {
    repr: Repr,
    entry: Option<Entry>,
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind())
            .field("repr", &self.0.repr)
            .field("entry", &self.0.entry);
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.repr, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.0.repr)
    }
}

impl From<Repr> for Error {
    fn from(repr: Repr) -> Self {
        Error(Box::new(Inner { repr, entry: None }))
    }
}

/// The forms of [`Error`], inside the crate.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Repr {
    /// A system call failed.
    #[error("{op}{}: {errno}", InPath(path.as_deref()))]
    Os {
        /// The operation, usually the system call and what it was called on.
        op: Cow<'static, str>,
        /// The path inside the root, when the operation had one.
        path: Option<PathBuf>,
        /// The error number the kernel returned.
        errno: Errno,
    },

    /// Resolving or creating a path inside a root failed (through pathrs).
    /// The message ends with the errno text when pathrs reports one (its
    /// own message, such as "openat2 subpath failed", does not say why).
    #[error("{op}{}: {}", InPath(Some(path)), PathrsText(source))]
    Resolve {
        /// The operation that was resolving.
        op: Cow<'static, str>,
        /// The path inside the root.
        path: PathBuf,
        /// What pathrs reported.
        #[source]
        source: pathrs::error::Error,
    },

    /// The kernel lacks a feature.
    #[error("{feature} is not supported by this kernel (needs Linux {} or newer)", feature.min_kernel())]
    Unsupported {
        /// The missing feature.
        feature: Feature,
        /// The first Linux release with the feature, as "major.minor".
        min_kernel: &'static str,
    },

    /// The caller's input was refused before anything was changed.
    #[error("{op}{}: invalid input: {reason}", InPath(path.as_deref()))]
    InvalidInput {
        /// The operation that refused the input.
        op: Cow<'static, str>,
        /// The path the input was about, if any.
        path: Option<PathBuf>,
        /// What was wrong with it.
        reason: Cow<'static, str>,
    },

    /// A check that guards against an attack failed.
    #[error("{op}{}: safety violation: {reason}", InPath(path.as_deref()))]
    SafetyViolation {
        /// The operation that detected it.
        op: Cow<'static, str>,
        /// The path inside the root.
        path: Option<PathBuf>,
        /// What was found.
        reason: Cow<'static, str>,
    },
}

/// Formats " at PATH" when there is a path, nothing otherwise.
struct InPath<'a>(Option<&'a Path>);

impl fmt::Display for InPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, " at {}", p.display()),
            None => Ok(()),
        }
    }
}

/// A pathrs error as one line: its own message, then the errno text when
/// the kernel gave one (`openat2 subpath failed: No such file or directory
/// (os error 2)`), otherwise every cause in its chain that adds something.
/// The raw system call and its arguments, which pathrs keeps as a cause,
/// stay out of the message (they are in the `Debug` form).
struct PathrsText<'a>(&'a pathrs::error::Error);

impl fmt::Display for PathrsText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.0.to_string();
        if let pathrs::error::ErrorKind::OsError(Some(errno)) = self.0.kind() {
            let why = std::io::Error::from_raw_os_error(errno).to_string();
            if !text.contains(&why) {
                text.push_str(": ");
                text.push_str(&why);
            }
            return f.write_str(&text);
        }
        let mut cause = std::error::Error::source(self.0);
        while let Some(c) = cause {
            let more = c.to_string();
            if !more.is_empty() && !text.contains(&more) {
                text.push_str(": ");
                text.push_str(&more);
            }
            cause = c.source();
        }
        f.write_str(&text)
    }
}

fn kind_of_errno(errno: Errno) -> ErrorKind {
    match errno {
        Errno::NOENT => ErrorKind::NotFound,
        Errno::EXIST => ErrorKind::AlreadyExists,
        Errno::PERM | Errno::ACCESS => ErrorKind::Permission,
        Errno::NOSYS => ErrorKind::Unsupported,
        // openat2 RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS reports attempts to
        // leave the root and magic-link games this way.
        Errno::XDEV => ErrorKind::SafetyViolation,
        _ => ErrorKind::Os,
    }
}

impl Error {
    /// A failed system call made by a caller's own code, for errors that
    /// must travel through saferoot (a [`crate::rootfs::BeforeMount`]
    /// callback): the operation, the in-root path if any, the errno.
    pub fn from_os(op: impl Into<String>, path: Option<&Path>, errno: Errno) -> Self {
        Repr::Os {
            op: Cow::Owned(op.into()),
            path: path.map(Path::to_path_buf),
            errno,
        }
        .into()
    }

    /// Refused input found by a caller's own code (see
    /// [`from_os`](Self::from_os)): [`ErrorKind::InvalidInput`].
    pub fn from_invalid(
        op: impl Into<String>,
        path: Option<&Path>,
        reason: impl Into<String>,
    ) -> Self {
        Repr::InvalidInput {
            op: Cow::Owned(op.into()),
            path: path.map(Path::to_path_buf),
            reason: Cow::Owned(reason.into()),
        }
        .into()
    }

    /// A failed system call without a path.
    pub(crate) fn os(op: impl Into<Cow<'static, str>>, errno: Errno) -> Self {
        Repr::Os {
            op: op.into(),
            path: None,
            errno,
        }
        .into()
    }

    /// A failed system call on a path inside the root.
    pub(crate) fn os_at(
        op: impl Into<Cow<'static, str>>,
        path: impl AsRef<Path>,
        errno: Errno,
    ) -> Self {
        Repr::Os {
            op: op.into(),
            path: Some(path.as_ref().to_path_buf()),
            errno,
        }
        .into()
    }

    /// Refused input, without a path.
    pub(crate) fn invalid(
        op: impl Into<Cow<'static, str>>,
        reason: impl Into<Cow<'static, str>>,
    ) -> Self {
        Repr::InvalidInput {
            op: op.into(),
            path: None,
            reason: reason.into(),
        }
        .into()
    }

    /// Refused input about a path.
    pub(crate) fn invalid_at(
        op: impl Into<Cow<'static, str>>,
        path: impl AsRef<Path>,
        reason: impl Into<Cow<'static, str>>,
    ) -> Self {
        Repr::InvalidInput {
            op: op.into(),
            path: Some(path.as_ref().to_path_buf()),
            reason: reason.into(),
        }
        .into()
    }

    /// A failed safety check about a path.
    pub(crate) fn unsafe_at(
        op: impl Into<Cow<'static, str>>,
        path: impl AsRef<Path>,
        reason: impl Into<Cow<'static, str>>,
    ) -> Self {
        Repr::SafetyViolation {
            op: op.into(),
            path: Some(path.as_ref().to_path_buf()),
            reason: reason.into(),
        }
        .into()
    }

    /// A missing kernel feature.
    pub(crate) fn unsupported(feature: Feature) -> Self {
        Repr::Unsupported {
            feature,
            min_kernel: feature.min_kernel(),
        }
        .into()
    }

    /// A pathrs error while working on `path`.
    pub(crate) fn resolve(
        op: impl Into<Cow<'static, str>>,
        path: impl AsRef<Path>,
        source: pathrs::error::Error,
    ) -> Self {
        Repr::Resolve {
            op: op.into(),
            path: path.as_ref().to_path_buf(),
            source,
        }
        .into()
    }

    /// The coarse kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match &self.0.repr {
            Repr::Os { errno, .. } => kind_of_errno(*errno),
            Repr::Resolve { source, .. } => match source.kind() {
                pathrs::error::ErrorKind::SafetyViolation => ErrorKind::SafetyViolation,
                pathrs::error::ErrorKind::InvalidArgument => ErrorKind::InvalidInput,
                pathrs::error::ErrorKind::NotSupported
                | pathrs::error::ErrorKind::NotImplemented => ErrorKind::Unsupported,
                pathrs::error::ErrorKind::OsError(Some(e)) => {
                    kind_of_errno(Errno::from_raw_os_error(e))
                }
                _ => ErrorKind::Os,
            },
            Repr::Unsupported { .. } => ErrorKind::Unsupported,
            Repr::InvalidInput { .. } => ErrorKind::InvalidInput,
            Repr::SafetyViolation { .. } => ErrorKind::SafetyViolation,
        }
    }

    /// The errno that best describes this error, as a C caller would see it.
    pub fn errno(&self) -> i32 {
        match &self.0.repr {
            Repr::Os { errno, .. } => errno.raw_os_error(),
            Repr::Resolve { source, .. } => match source.kind() {
                pathrs::error::ErrorKind::OsError(Some(e)) => e,
                pathrs::error::ErrorKind::SafetyViolation => libc::EXDEV,
                pathrs::error::ErrorKind::InvalidArgument => libc::EINVAL,
                pathrs::error::ErrorKind::NotSupported
                | pathrs::error::ErrorKind::NotImplemented => libc::ENOSYS,
                _ => libc::EIO,
            },
            Repr::Unsupported { .. } => libc::ENOSYS,
            Repr::InvalidInput { .. } => libc::EINVAL,
            Repr::SafetyViolation { .. } => libc::EXDEV,
        }
    }

    /// The path inside the root that the operation was working on, if any.
    pub fn path(&self) -> Option<&Path> {
        match &self.0.repr {
            Repr::Os { path, .. }
            | Repr::InvalidInput { path, .. }
            | Repr::SafetyViolation { path, .. } => path.as_deref(),
            Repr::Resolve { path, .. } => Some(path),
            Repr::Unsupported { .. } => None,
        }
    }

    /// The operation that failed.
    pub fn operation(&self) -> &str {
        match &self.0.repr {
            Repr::Os { op, .. }
            | Repr::Resolve { op, .. }
            | Repr::InvalidInput { op, .. }
            | Repr::SafetyViolation { op, .. } => op,
            Repr::Unsupported { feature, .. } => feature.name(),
        }
    }

    /// The entry of the spec or configuration that this error is about,
    /// when the failing call knew it (see [`Entry`]).
    pub fn entry(&self) -> Option<&Entry> {
        self.0.entry.as_ref()
    }

    /// The missing kernel feature, for an [`ErrorKind::Unsupported`] error
    /// that names one.
    pub fn feature(&self) -> Option<Feature> {
        match &self.0.repr {
            Repr::Unsupported { feature, .. } => Some(*feature),
            _ => None,
        }
    }

    /// The first Linux release with [`Error::feature`], as "major.minor".
    pub fn min_kernel(&self) -> Option<&'static str> {
        match &self.0.repr {
            Repr::Unsupported { min_kernel, .. } => Some(min_kernel),
            _ => None,
        }
    }

    /// Why the input was refused or the safety check failed (the part of
    /// the message after the operation and path), for
    /// [`ErrorKind::InvalidInput`] and [`ErrorKind::SafetyViolation`].
    pub fn reason(&self) -> Option<&str> {
        match &self.0.repr {
            Repr::InvalidInput { reason, .. } | Repr::SafetyViolation { reason, .. } => {
                Some(reason)
            }
            _ => None,
        }
    }

    /// Returns this error about `entry`, replacing an entry it had unless
    /// that one was more precise (a [`Entry::Config`] field name is
    /// replaced; any other entry is kept).
    pub(crate) fn with_entry(mut self, entry: Entry) -> Self {
        match self.0.entry {
            None | Some(Entry::Config(_)) => self.0.entry = Some(entry),
            Some(_) => {}
        }
        self
    }

    /// The form of this error, for code in the crate that rewrites it.
    pub(crate) fn repr_mut(&mut self) -> &mut Repr {
        &mut self.0.repr
    }

    /// Rewrites the operation with `f` (to prefix it with the entry, as
    /// messages have always shown it).
    pub(crate) fn map_op(mut self, f: impl FnOnce(Cow<'static, str>) -> Cow<'static, str>) -> Self {
        let op = match &mut self.0.repr {
            Repr::Os { op, .. }
            | Repr::Resolve { op, .. }
            | Repr::InvalidInput { op, .. }
            | Repr::SafetyViolation { op, .. } => op,
            Repr::Unsupported { .. } => return self,
        };
        *op = f(std::mem::take(op));
        self
    }

    /// Replaces the path with `p` if there was none (`or`) or always.
    pub(crate) fn set_path(mut self, p: impl AsRef<Path>, replace: bool) -> Self {
        match &mut self.0.repr {
            Repr::Os { path, .. }
            | Repr::InvalidInput { path, .. }
            | Repr::SafetyViolation { path, .. }
                if replace || path.is_none() =>
            {
                *path = Some(p.as_ref().to_path_buf())
            }
            Repr::Resolve { path, .. } if replace => *path = p.as_ref().to_path_buf(),
            _ => {}
        }
        self
    }

    /// Returns this error with `path` recorded, when it had none.
    pub(crate) fn with_path(mut self, p: impl AsRef<Path>) -> Self {
        match &mut self.0.repr {
            Repr::Os { path, .. }
            | Repr::InvalidInput { path, .. }
            | Repr::SafetyViolation { path, .. }
                if path.is_none() =>
            {
                *path = Some(p.as_ref().to_path_buf())
            }
            _ => {}
        }
        self
    }
}

/// Runs a pathrs call. Its error becomes a resolution error; a panic inside
/// it (pathrs 0.2 panics while describing an error when the process has no
/// `/proc`, as after entering a root without one) becomes an `EIO` error
/// naming the operation, instead of unwinding into the caller.
pub(crate) fn pathrs_call<T>(
    op: impl Into<Cow<'static, str>>,
    path: impl AsRef<Path>,
    f: impl FnOnce() -> std::result::Result<T, pathrs::error::Error>,
) -> Result<T> {
    let op = op.into();
    match catch_pathrs(&op, path.as_ref(), f)? {
        Ok(v) => Ok(v),
        Err(e) => Err(Error::resolve(op, path, e)),
    }
}

/// Like [`pathrs_call`], but hands pathrs' own error back for the caller to
/// inspect; only a panic becomes an [`Error`].
pub(crate) fn catch_pathrs<T>(
    op: &str,
    path: &Path,
    f: impl FnOnce() -> std::result::Result<T, pathrs::error::Error>,
) -> Result<std::result::Result<T, pathrs::error::Error>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Error::from(Repr::Os {
            op: format!("{op} (pathrs panicked: {msg})").into(),
            path: Some(path.to_path_buf()),
            errno: Errno::IO,
        })
    })
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        std::io::Error::new(std::io::Error::from_raw_os_error(e.errno()).kind(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_operation_path_and_errno() {
        let e = Error::os_at("mount_setattr", "/proc/sys", Errno::PERM);
        let s = e.to_string();
        assert!(s.contains("mount_setattr"), "{s}");
        assert!(s.contains("/proc/sys"), "{s}");
        assert_eq!(e.kind(), ErrorKind::Permission);
        assert_eq!(e.errno(), libc::EPERM);
        assert_eq!(e.path(), Some(Path::new("/proc/sys")));
        assert_eq!(e.operation(), "mount_setattr");
    }

    #[test]
    fn pathrs_errors_end_with_the_errno_text() {
        let dir = std::env::temp_dir();
        let root = pathrs::Root::open(&dir).unwrap();
        let missing = "/saferoot-no-such-dir-for-this-test/x";
        let e = pathrs_call("resolve", missing, || root.resolve(missing)).unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("resolve at /saferoot-no-such-dir-for-this-test/x: "),
            "{s}"
        );
        assert!(
            s.ends_with(": No such file or directory (os error 2)"),
            "{s}"
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn unsupported_names_feature_and_kernel() {
        let e = Error::unsupported(Feature::Statmount);
        let s = e.to_string();
        assert!(s.contains("statmount"), "{s}");
        assert!(s.contains("6.8"), "{s}");
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert_eq!(e.errno(), libc::ENOSYS);
    }

    #[test]
    fn entry_is_data_and_the_text_does_not_change() {
        let e = Error::invalid_at("mounts[3]: plan", "/x", "bad").with_entry(Entry::Mount(3));
        assert_eq!(e.entry(), Some(&Entry::Mount(3)));
        assert_eq!(e.to_string(), "mounts[3]: plan at /x: invalid input: bad");
        // A field name is replaced by the entry it belongs to, nothing else.
        let e = Error::invalid("mounts[1].type", "bad")
            .with_entry(Entry::Config("mounts[1].type".into()))
            .with_entry(Entry::Mount(1))
            .with_entry(Entry::Device(0));
        assert_eq!(e.entry(), Some(&Entry::Mount(1)));
        assert_eq!(e.reason(), Some("bad"));
        assert_eq!(Error::os("x", Errno::IO).entry(), None);
    }

    #[test]
    fn os_errors_end_with_the_errno_text() {
        let s = Error::os_at("mkdirat", "/a", Errno::NOENT).to_string();
        assert!(s.ends_with("No such file or directory (os error 2)"), "{s}");
    }

    #[test]
    fn errno_kinds() {
        assert_eq!(Error::os("x", Errno::NOENT).kind(), ErrorKind::NotFound);
        assert_eq!(
            Error::os("x", Errno::EXIST).kind(),
            ErrorKind::AlreadyExists
        );
        assert_eq!(Error::os("x", Errno::ACCESS).kind(), ErrorKind::Permission);
        assert_eq!(
            Error::os("x", Errno::XDEV).kind(),
            ErrorKind::SafetyViolation
        );
        assert_eq!(Error::os("x", Errno::BUSY).kind(), ErrorKind::Os);
        let e = Error::invalid("x", "bad").with_path("/a");
        assert_eq!(e.path(), Some(Path::new("/a")));
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
}
