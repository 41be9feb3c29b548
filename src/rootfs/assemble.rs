//! Putting a root together, with one of two strategies that give the same
//! mount tree:
//!
//! - **detached** (Linux 6.15+): the rootfs is cloned as a detached tree;
//!   every mount is attached inside it while nobody can see it; the finished
//!   tree is attached over the rootfs with one `move_mount`. On failure the
//!   fds are dropped and nothing was ever visible.
//! - **in place** (Linux 5.12+): the clone is attached over the rootfs
//!   first and mounts are attached into it one by one; on failure the clone
//!   is detached, which takes everything below it along.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use linux_raw_sys::general as k;
use rustix::fs::{Mode, OFlags};
use rustix::mount::{open_tree, OpenTreeFlags};

use crate::features::{self, Feature};
use crate::journal::{self, Journal};
use crate::mount::AttachedMount;
use crate::mount::Scope;
use crate::procfs::Procfs;
use crate::rootfs::mask::HostDevNull;
use crate::rootfs::mounts::{self, Made};
use crate::rootfs::plan::{plan, MountKind, Plan};
use crate::rootfs::spec::RootfsSpec;
use crate::rootfs::{dev, mask, policy};
use crate::sys::{self, MountAttrArgs};
use crate::{Error, Mount, MountAttr, Propagation, Result, Root};

/// How the mounts are put together; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Detached when the kernel can, otherwise in place.
    Auto,
    /// Assemble in a detached tree, attach once (Linux 6.15+).
    Detached,
    /// Attach mounts one by one onto an attached clone (Linux 5.12+).
    InPlace,
}

impl Strategy {
    /// The strategy `Auto` stands for on this kernel; an explicit choice
    /// the kernel cannot do is [`crate::ErrorKind::Unsupported`].
    pub fn resolve(self) -> Result<Strategy> {
        match self {
            // Without running the feature's probe where it can be
            // inferred (see `features::detached_targets_expected`).
            Strategy::Auto if features::detached_targets_expected() => Ok(Strategy::Detached),
            Strategy::Auto => Ok(Strategy::InPlace),
            Strategy::Detached => {
                features::require(Feature::DetachedMountTargets)?;
                Ok(Strategy::Detached)
            }
            Strategy::InPlace => Ok(Strategy::InPlace),
        }
    }

    /// `auto`, `detached` or `in-place`.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Auto => "auto",
            Strategy::Detached => "detached",
            Strategy::InPlace => "in-place",
        }
    }
}

/// Choices for [`assemble`].
#[derive(Debug)]
pub struct AssembleOptions {
    /// Which strategy; `Auto` by default.
    pub strategy: Strategy,
    /// The pty peer to bind onto `/dev/console`, if any (borrowed: it is
    /// cloned, and stays the caller's).
    pub console: Option<OwnedFd>,
    /// Refuse to run in the mount namespace of pid 1, where changing the
    /// propagation of `/` would affect the whole host. On by default.
    pub require_private_namespace: bool,
    /// The private procfs to use (for the namespace checks, the mount
    /// label check and sysctls), instead of making one: a caller that
    /// starts many processes for one container makes it once. It must come
    /// from [`Procfs::new`] in the calling thread's pid namespace or an
    /// ancestor of it (assembly looks up only `/proc/thread-self`, global
    /// files, and pid 1 when the thread is in the initial pid namespace).
    /// `None` (the default): a new one.
    pub procfs: Option<Procfs>,
}

impl Default for AssembleOptions {
    fn default() -> Self {
        AssembleOptions {
            strategy: Strategy::Auto,
            console: None,
            require_private_namespace: true,
            procfs: None,
        }
    }
}

/// The tree being built: detached until the end, or attached from the start.
enum Tree {
    Detached(Mount),
    Attached(AttachedMount),
}

impl Tree {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Tree::Detached(m) => m.as_fd(),
            Tree::Attached(a) => a.as_fd(),
        }
    }

    /// Undoes everything: a detached tree vanishes with its fd; an attached
    /// one is detached with every mount below it (see
    /// [`rollback_in_place`]).
    fn abandon(self, target: &crate::Handle, rootfs: &Path) {
        match self {
            Tree::Detached(m) => drop(m),
            Tree::Attached(a) => rollback_in_place(a, target, rootfs),
        }
    }
}

/// A root filesystem that has been assembled and attached over the rootfs
/// directory, ready to be entered.
#[derive(Debug)]
pub struct AssembledRoot {
    tree: AttachedMount,
    root: Root,
    plan: Plan,
    strategy: Strategy,
    devnull: Option<(u64, u64)>,
    propagated: Propagated,
}

/// Mounts with propagation options of their own (`rshared`, `slave`,
/// ...), with those options: applied again after every tree-wide
/// propagation change, so that per-mount settings win, as runc applies
/// them after the root's propagation.
pub(crate) type Propagated = Vec<(OwnedFd, Vec<crate::rootfs::PropagationSetting>)>;

/// Applies each mount's own propagation settings again, in plan order (a
/// later mount below an earlier `rshared` one keeps its own setting).
pub(crate) fn reapply_propagation(propagated: &Propagated) -> Result<()> {
    for (fd, settings) in propagated {
        for p in settings {
            let scope = Scope::tree_if(p.recursive);
            crate::mount::change_attrs(
                fd,
                MountAttr::empty(),
                MountAttr::empty(),
                Some(p.kind),
                scope,
            )?;
        }
    }
    Ok(())
}

impl AssembledRoot {
    /// The root, for further work inside it.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// The plan that was carried out.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The strategy that was used (never `Auto`).
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The fd of the root mount.
    pub fn mount_fd(&self) -> BorrowedFd<'_> {
        self.tree.as_fd()
    }

    /// Detaches the whole assembled root again.
    pub fn detach(self) -> Result<()> {
        self.tree.detach()
    }

    /// Makes the assembled root the root of the calling process; see
    /// [`super::enter`].
    pub fn enter(self, method: super::enter::EnterMethod) -> Result<()> {
        super::enter::enter(
            self.tree.as_fd(),
            &self.root,
            &self.plan,
            method,
            self.devnull,
            &self.propagated,
        )
    }
}

/// Assembles `spec`. Call it in a private mount namespace (`unshare
/// CLONE_NEWNS`): like runc, it makes `/` a recursive slave (or what the
/// spec's rootfs propagation says) before it starts.
///
/// A spec error is found before anything changes; a failure later leaves
/// no mount behind and no fd open.
pub fn assemble(spec: &RootfsSpec, opts: &AssembleOptions) -> Result<AssembledRoot> {
    let plan = plan(spec)?;
    assemble_plan(plan, opts)
}

/// What [`assemble_with`] calls before it makes mount `i` of the spec
/// (`RootfsSpec::mounts[i]`), with the root as it stands at that moment:
/// every earlier mount is in place, none of the later ones is.
pub type BeforeMount<'a> = dyn FnMut(usize, &Root) -> Result<()> + 'a;

/// [`assemble`], with `before_mount` called before each of the spec's
/// mounts (in order, once per mount; implicit mounts such as the default
/// `/dev` do not count). It lets a caller interleave work of its own with
/// the mounts, as bubblewrap's command line does (`--dir`, `--symlink`,
/// files from fds between binds), while the assembly stays one unit:
/// whatever the callback creates through the [`Root`] it is given is
/// recorded like saferoot's own creations and removed again if the
/// assembly fails, and an error from the callback fails the assembly.
pub fn assemble_with(
    spec: &RootfsSpec,
    opts: &AssembleOptions,
    before_mount: &mut BeforeMount<'_>,
) -> Result<AssembledRoot> {
    let plan = plan(spec)?;
    assemble_plan_with(plan, opts, before_mount)
}

/// The magic number of selinuxfs (`SELINUX_MAGIC`).
const SELINUX_MAGIC: u64 = 0xf97c_ff8c;

/// Whether the kernel has SELinux enabled: selinuxfs is mounted at
/// `/sys/fs/selinux`, or at least registered (listed in the private
/// procfs's `filesystems`; with SELinux disabled at boot it is not).
fn selinux_enabled(procfs: &Procfs) -> bool {
    // f_type is 32 bits wide on some architectures (and signed): compare
    // the low 32 bits.
    let magic = |st: rustix::fs::StatFs| (st.f_type as u64) & 0xffff_ffff;
    if rustix::fs::statfs("/sys/fs/selinux").is_ok_and(|st| magic(st) == SELINUX_MAGIC) {
        return true;
    }
    let mut text = String::new();
    procfs
        .open_root("filesystems", OFlags::RDONLY)
        .is_ok_and(|mut f| std::io::Read::read_to_string(&mut f, &mut text).is_ok())
        && text
            .lines()
            .any(|l| l.split_whitespace().last() == Some("selinuxfs"))
}

/// A mount label on a kernel without SELinux: an error when the plan asks
/// for strict labels, otherwise the label is taken out of every mount with
/// a warning (as crun drops it), before anything is mounted.
fn settle_mount_label(plan: &mut Plan, procfs: &Procfs) -> Result<()> {
    let Some(label) = plan.mount_label.clone() else {
        return Ok(());
    };
    if selinux_enabled(procfs) {
        return Ok(());
    }
    if plan.strict_mount_label {
        return Err(Error::invalid(
            "assemble",
            format!(
                "mountLabel {label:?} is set and strict mount labels are asked for, but this \
                 kernel has no SELinux (no selinuxfs), so no mount can carry the label"
            ),
        ));
    }
    log::warn!(
        "mountLabel {label:?} dropped: this kernel has no SELinux (no selinuxfs); the mounts \
         are made without a context= option (set strictMountLabel to fail instead)"
    );
    for m in &mut plan.mounts {
        if let MountKind::Fs { data, .. } = &mut m.kind {
            data.retain(|(k, v)| !(k == "context" && v.as_deref() == Some(label.as_str())));
        }
    }
    plan.mount_label = None;
    Ok(())
}

/// Assembles a plan made by [`plan`](super::plan::plan).
pub fn assemble_plan(plan: Plan, opts: &AssembleOptions) -> Result<AssembledRoot> {
    assemble_plan_with(plan, opts, &mut |_, _| Ok(()))
}

/// [`assemble_plan`] with a callback before each mount; see
/// [`assemble_with`].
pub fn assemble_plan_with(
    mut plan: Plan,
    opts: &AssembleOptions,
    before_mount: &mut BeforeMount<'_>,
) -> Result<AssembledRoot> {
    let strategy = opts.strategy.resolve()?;
    features::require(Feature::MountApi)?;
    features::require(Feature::MountSetattr)?;
    features::require(Feature::Openat2)?;
    let procfs = match &opts.procfs {
        Some(p) => p.clone(),
        None => Procfs::new()?,
    };
    if opts.require_private_namespace {
        // Pid 1 stands for the host only in the initial pid namespace (in
        // a new one, it is the container's own init). Without the
        // privilege to look at pid 1's namespace (no CAP_SYS_PTRACE) there
        // is nothing to compare with either. In both cases the check is
        // skipped and the caller's word is taken.
        let init_ns = if procfs.in_initial_pid_ns()? {
            procfs.mount_ns_id(Some(1))
        } else {
            Err(Error::invalid(
                "assemble",
                "not in the initial pid namespace",
            ))
        };
        match init_ns {
            Ok(init) if init == procfs.mount_ns_id(None)? => {
                return Err(Error::invalid(
                    "assemble",
                    "refusing to change mount propagation in the host's mount namespace; unshare(CLONE_NEWNS) first",
                ));
            }
            Ok(_) => {}
            Err(e) => log::debug!("cannot compare with pid 1's mount namespace: {e}"),
        }
    }
    check_own_namespaces(&procfs, &plan)?;
    settle_mount_label(&mut plan, &procfs)?;
    let rootfs_dir = Root::open(&plan.rootfs)?;
    let devnull = if plan.masked_paths.is_empty() {
        None
    } else {
        Some(HostDevNull::open()?)
    };

    set_caller_propagation(&plan)?;
    let target = rootfs_dir.handle()?;
    make_parent_private(&target)?;

    let tree_mount =
        Mount::clone_fd(&rootfs_dir, Scope::Tree).map_err(|e| e.with_path(&plan.rootfs))?;
    let tree = match strategy {
        Strategy::Detached => Tree::Detached(tree_mount),
        _ => Tree::Attached(
            tree_mount
                .attach(&target)
                .map_err(|e| e.with_path(&plan.rootfs))?,
        ),
    };
    let root = match dup(tree.fd()).and_then(Root::from_fd) {
        Ok(mut r) => {
            // Host paths reaching the rootfs directory are recognised by
            // the mount and inode they arrive at: a rootfs that is a bind
            // of a host tree shares its inodes with the host, not its
            // mounts. Attached in place, the tree itself is what a host
            // path reaches there; detached, the rootfs directory is.
            let arrives_at = match &tree {
                Tree::Attached(_) => rustix::fs::statx(
                    tree.fd(),
                    c"",
                    rustix::fs::AtFlags::EMPTY_PATH,
                    rustix::fs::StatxFlags::INO | rustix::fs::StatxFlags::MNT_ID,
                )
                .map(|st| (st.stx_mnt_id, st.stx_ino))
                .ok(),
                Tree::Detached(_) => target.stat().map(|st| (st.mount_id, st.ino)).ok(),
            };
            if let Some(id) = arrives_at {
                r.set_host_identity(id);
            }
            r
        }
        Err(e) => {
            tree.abandon(&target, &plan.rootfs);
            return Err(e);
        }
    };
    log::debug!("assembling {} ({})", plan.rootfs.display(), strategy.name());
    // Everything created in the rootfs from here on (mount points, their
    // parents, files for file binds, nodes, links) is recorded, so that a
    // failure can take it out again; see crate::journal.
    let journal = Journal::new();
    let active = journal::Active::set(Some(journal.clone()));
    let built = build(
        &root,
        &tree,
        &plan,
        opts,
        devnull.as_ref(),
        strategy,
        before_mount,
    );
    drop(active);
    let undo = |what: &str| {
        let n = journal.undo();
        if n > 0 {
            log::debug!("rollback ({what}): removed {n} entries saferoot had created");
        }
    };
    match built {
        Ok((deferred, propagated)) => {
            let tree = match tree {
                Tree::Detached(m) => match m.attach(&target) {
                    Ok(a) => a,
                    Err(e) => {
                        undo("attach");
                        return Err(Error::from(e).with_path(&plan.rootfs));
                    }
                },
                Tree::Attached(a) => a,
            };
            if let Err(e) = finish(&plan, &deferred, &propagated, &procfs) {
                drop(deferred);
                drop(propagated);
                rollback_in_place(tree, &target, &plan.rootfs);
                undo("finish");
                return Err(e);
            }
            journal.commit();
            Ok(AssembledRoot {
                tree,
                root,
                plan,
                strategy,
                devnull: devnull.map(|d| d.id),
                propagated,
            })
        }
        Err(e) => {
            drop(root);
            tree.abandon(&target, &plan.rootfs);
            undo("build");
            if opts.strategy == Strategy::Auto
                && strategy == Strategy::Detached
                && e.errno() == libc::EINVAL
                // The real probe (unless it ran): the refusal is the
                // feature's absence, not the caller's input.
                && !features::has(Feature::DetachedMountTargets)
            {
                // Auto chose detached assembly on the strength of
                // open_tree_attr, and this kernel has one without the
                // other: everything is undone; in place works.
                log::warn!(
                    "this kernel has open_tree_attr but refuses mounts onto a detached tree:                      assemble with --strategy in-place (or SAFEROOT_DISABLE_FEATURES=\
                     detached-mount-targets)"
                );
                return Err(Error::unsupported(Feature::DetachedMountTargets));
            }
            Err(e)
        }
    }
}

/// Undoes an attached tree and checks that it is gone: afterwards the
/// rootfs path must reach the same mount and inode as `target` (what was
/// there before the tree was attached). A mount left over the rootfs
/// (the kernel unmounts the topmost mount at a place, which is the tree
/// only if nothing was stacked on its root) is unmounted too, a bounded
/// number of times.
fn rollback_in_place(tree: AttachedMount, target: &crate::Handle, rootfs: &Path) {
    if let Err(e) = tree.detach() {
        log::warn!("rollback: detaching the assembled root failed: {e}");
    }
    let Ok(want) = target.stat() else {
        return;
    };
    for _ in 0..64 {
        let top = match Root::open(rootfs).and_then(|r| r.handle()) {
            Ok(h) => h,
            Err(e) => {
                log::warn!("rollback: cannot reopen {}: {e}", rootfs.display());
                return;
            }
        };
        match top.stat() {
            Ok(st) if (st.mount_id, st.ino) == (want.mount_id, want.ino) => return,
            Ok(_) => {
                log::warn!(
                    "rollback: a mount is still over {}; unmounting it",
                    rootfs.display()
                );
                if let Err(e) = crate::mount::unmount_handle(&top) {
                    log::warn!("rollback: {e}");
                    return;
                }
            }
            Err(e) => {
                log::warn!("rollback: {e}");
                return;
            }
        }
    }
}

/// Refuses to start when the plan relies on a namespace of the
/// container's own (its sysctls, a read-write cgroup mount) and the
/// calling thread is in the host's namespace of that kind: the writes
/// would land on the host. The host's namespace is recognised by the
/// kernel's fixed inode number for initial namespaces, and by pid 1's
/// namespace when it can be read.
fn check_own_namespaces(procfs: &Procfs, plan: &Plan) -> Result<()> {
    for kind in &plan.relies_on {
        let ours = procfs.ns_inode(kind.proc_name(), None)?;
        let pid1 = if procfs.in_initial_pid_ns().unwrap_or(false) {
            procfs.ns_inode(kind.proc_name(), Some(1)).ok()
        } else {
            None
        };
        if ours == kind.initial_inode() || pid1 == Some(ours) {
            return Err(Error::invalid(
                "assemble",
                format!(
                    "the spec gives the container a {} namespace of its own (its sysctls or \
                     cgroup mount rely on it), but the calling thread is in the host's; \
                     unshare({}) before assembling",
                    kind.oci_name(),
                    kind.clone_flag()
                ),
            ));
        }
    }
    Ok(())
}

fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd> {
    crate::sys::dup_cloexec(fd).map_err(|e| Error::os("dup", e))
}

/// `/` of the caller gets [`Plan::caller_propagation`], so that nothing
/// mounted for the container can propagate back to the host.
fn set_caller_propagation(plan: &Plan) -> Result<()> {
    let slash = open_tree(rustix::fs::CWD, c"/", OpenTreeFlags::OPEN_TREE_CLOEXEC)
        .map_err(|e| Error::os_at("open_tree", "/", e))?;
    let p = plan.caller_propagation();
    let mut flags = k::AT_EMPTY_PATH;
    if p.recursive {
        flags |= k::AT_RECURSIVE;
    }
    let args = MountAttrArgs {
        propagation: p.kind.to_kernel(),
        ..Default::default()
    };
    sys::mount_setattr(slash.as_fd(), c"", flags, &args)
        .map_err(|e| Error::os_at(format!("mount_setattr(propagation {})", p.name()), "/", e))
}

/// The mount the rootfs lives on becomes private, as runc does: the clone
/// attached over the rootfs then propagates nowhere, and pivot_root, which
/// refuses a new root whose parent mount is shared, is satisfied whatever
/// the propagation setting left it as. The mount is found by walking `..`
/// from the rootfs up to the root of its mount (`STATX_ATTR_MOUNT_ROOT`;
/// on a kernel that does not report it, until the mount id changes): the
/// cost is the depth of the path, not the size of the host's mount table.
fn make_parent_private(rootfs: &crate::Handle) -> Result<()> {
    let look = |fd: BorrowedFd<'_>| -> Result<rustix::fs::Statx> {
        rustix::fs::statx(
            fd,
            c"",
            rustix::fs::AtFlags::EMPTY_PATH,
            rustix::fs::StatxFlags::MNT_ID | rustix::fs::StatxFlags::INO,
        )
        .map_err(|e| Error::os("statx", e))
    };
    let mount_root = |st: &rustix::fs::Statx| -> Option<bool> {
        let bit = rustix::fs::StatxAttributes::MOUNT_ROOT;
        st.stx_attributes_mask
            .contains(bit)
            .then_some(st.stx_attributes.contains(bit))
    };
    let mut cur = dup(rootfs.as_fd())?;
    let mut st = look(cur.as_fd())?;
    let id = st.stx_mnt_id;
    for _ in 0..4096 {
        if mount_root(&st) == Some(true) {
            break;
        }
        let up = rustix::fs::openat(
            &cur,
            c"..",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::os("open ..", e))?;
        let up_st = look(up.as_fd())?;
        if mount_root(&st).is_none() && (up_st.stx_mnt_id != id || up_st.stx_ino == st.stx_ino) {
            break;
        }
        cur = up;
        st = up_st;
    }
    let args = MountAttrArgs {
        propagation: Propagation::Private.to_kernel(),
        ..Default::default()
    };
    sys::mount_setattr(cur.as_fd(), c"", k::AT_EMPTY_PATH, &args)
        .map_err(|e| Error::os("mount_setattr(private) on the rootfs parent mount", e))
}

/// Attaches every mount, populates /dev, applies read-only and masked
/// paths and the root's own flags. Returns the mounts whose read-only flag
/// waits until /dev is populated, and the mounts with propagation settings
/// of their own (see [`Propagated`]).
fn build(
    root: &Root,
    tree: &Tree,
    plan: &Plan,
    opts: &AssembleOptions,
    devnull: Option<&HostDevNull>,
    strategy: Strategy,
    before_mount: &mut BeforeMount<'_>,
) -> Result<(Vec<AttachedMount>, Propagated)> {
    let mut deferred_ro = Vec::new();
    let mut propagated = Propagated::new();
    // What /dev setup may write to: the rootfs mount, and the tmpfs mounts
    // made below (see dev.rs).
    let mut dev_scope = dev::DevScope::new(root)?;
    for pm in &plan.mounts {
        if let Some(i) = pm.index {
            before_mount(i, root)?;
        }
        // /dev is filled after it is mounted; a read-only /dev gets its flag
        // once the nodes exist.
        let defer = plan.setup_dev
            && policy::clean(&pm.destination) == Path::new("/dev")
            && pm.set.contains(MountAttr::RDONLY)
            && matches!(pm.kind, MountKind::Fs { .. });
        let mut pm2;
        let pm = if defer {
            pm2 = pm.clone();
            pm2.set -= MountAttr::RDONLY;
            &pm2
        } else {
            pm
        };
        // When saferoot sets up /dev, /dev and everything below it are
        // reached without following a symlink and never on a volume.
        let entry = |e: Error| match pm.index {
            Some(i) => e.with_entry(crate::error::Entry::Mount(i)),
            None => e,
        };
        let made = if plan.setup_dev && dev::is_dev_path(&pm.destination) {
            dev::make_mount(root, &dev_scope, pm, plan.user_namespace, &plan.namespaces)
                .map_err(entry)?
        } else {
            mounts::make(root, pm, plan.user_namespace, &plan.namespaces).map_err(entry)?
        };
        if let Made::Mount(m) = &made {
            dev_scope.made(pm, m)?;
            if !pm.propagation.is_empty() {
                propagated.push((dup(m.as_fd())?, pm.propagation.clone()));
            }
        }
        match made {
            Made::Mount(m) if defer => deferred_ro.push(m),
            Made::Mount(m) => m.forget(),
            Made::Nothing => {}
        }
    }
    if plan.setup_dev {
        if plan.default_devices {
            dev_scope.check_dev(root)?;
        }
        for m in dev::create_devices(
            root,
            &dev_scope,
            &plan.devices,
            &plan.device_index,
            plan.user_namespace,
        )? {
            m.forget();
        }
        if plan.default_devices {
            dev::setup_links(root, &dev_scope)?;
        }
    }
    if let Some(console) = &opts.console {
        let scope = plan.setup_dev.then_some(&dev_scope);
        dev::setup_console(root, scope, console.as_fd())?.forget();
    }
    for m in mask::readonly_paths(root, &plan.readonly_paths)? {
        m.forget();
    }
    if let Some(devnull) = devnull {
        for m in mask::mask_paths(root, &plan.masked_paths, devnull)? {
            m.forget();
        }
    }
    if strategy == Strategy::InPlace {
        apply_deferred(&deferred_ro)?;
        deferred_ro.clear();
    }
    // The tree's root mount is changed through the tree's fd: attached
    // or not, mount_setattr acts on the mount the fd is on.
    let change = |set, propagation| {
        crate::mount::change_attrs(
            tree.fd(),
            set,
            MountAttr::empty(),
            propagation,
            Scope::Mount,
        )
    };
    if plan.readonly_root {
        change(MountAttr::RDONLY, None)?;
    }
    // The root propagation goes on the tree's root mount only. The mounts
    // below it already have it: the clones of host mounts are copies of
    // the caller's `/`, which got it before anything was cloned, and new
    // filesystems are private. A recursive change here would flatten the
    // mounts' own settings (an `rshared` bind would become a slave, an
    // `unbindable` one bindable) and break the master links of `slave`
    // binds. Each mount's own settings are applied once more after the
    // tree is attached (see `finish`), as runc applies them after mounting.
    let p = plan.caller_propagation();
    change(MountAttr::empty(), Some(p.kind))?;
    Ok((deferred_ro, propagated))
}

fn apply_deferred(mounts: &[AttachedMount]) -> Result<()> {
    for m in mounts {
        m.set_attr(MountAttr::RDONLY, MountAttr::empty())?;
    }
    Ok(())
}

/// The steps that need the tree attached: deferred read-only flags and
/// each mount's own propagation settings (a detached tree only lets its
/// root be changed) and, last of all, once
/// everything else succeeded, sysctls. They are written by the calling
/// thread, which is in the container's namespaces
/// ([`check_own_namespaces`] made sure of that for each namespace they
/// rely on), through a private procfs: what a sysctl file shows depends on
/// the namespaces of the thread that opens it, never on the container's
/// `/proc`.
fn finish(
    plan: &Plan,
    deferred: &[AttachedMount],
    propagated: &Propagated,
    procfs: &Procfs,
) -> Result<()> {
    apply_deferred(deferred)?;
    reapply_propagation(propagated)?;
    if !plan.sysctls.is_empty() {
        for (k, v) in &plan.sysctls {
            procfs.write_sysctl(k, v)?;
        }
    }
    Ok(())
}
