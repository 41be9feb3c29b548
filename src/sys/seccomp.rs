//! A seccomp filter that makes chosen system calls fail with `ENOSYS`, as on
//! a kernel that lacks them.
//!
//! This exists so that the code paths for older kernels can be tested on a
//! new one: install the filter in a child process (or a thread of its own),
//! then run the operation and check that it takes its fallback or reports
//! [`crate::ErrorKind::Unsupported`]. The filter applies to the calling thread
//! and to the processes it starts; it cannot be removed.

#![allow(unsafe_code)]

use rustix::io::Errno;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64

const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
// Offsets into `struct seccomp_data`.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// Makes each system call number in `syscalls` fail with `ENOSYS` for the
/// calling thread and its future children. Sets `no_new_privs` on the
/// thread, as seccomp requires without `CAP_SYS_ADMIN`.
pub fn deny_with_enosys(syscalls: &[u32]) -> Result<(), Errno> {
    if syscalls.len() > 200 {
        return Err(Errno::INVAL);
    }
    let bpf_ld_w_abs = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let bpf_jeq_k = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let bpf_ret_k = libc::BPF_RET | libc::BPF_K;

    let mut prog = vec![
        stmt(bpf_ld_w_abs, OFFSET_ARCH),
        jump(bpf_jeq_k, AUDIT_ARCH, 1, 0),
        stmt(bpf_ret_k, SECCOMP_RET_KILL_PROCESS),
        stmt(bpf_ld_w_abs, OFFSET_NR),
    ];
    let n = syscalls.len();
    for (i, nr) in syscalls.iter().enumerate() {
        // On a match jump to the ERRNO return that follows all the checks:
        // the remaining checks, then the ALLOW return, lie in between.
        let skip = (n - i - 1 + 1) as u8;
        prog.push(jump(bpf_jeq_k, *nr, skip, 0));
    }
    prog.push(stmt(bpf_ret_k, SECCOMP_RET_ALLOW));
    prog.push(stmt(
        bpf_ret_k,
        SECCOMP_RET_ERRNO | (libc::ENOSYS as u32 & 0xffff),
    ));

    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) takes plain integers.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if r < 0 {
        return Err(Errno::from_raw_os_error(super::last_errno()));
    }
    // SAFETY: `fprog` points at `prog`, a valid BPF program that lives until
    // the call returns; the kernel copies it.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &fprog as *const libc::sock_fprog,
            0,
            0,
        )
    };
    if r < 0 {
        return Err(Errno::from_raw_os_error(super::last_errno()));
    }
    Ok(())
}

/// Makes the system call `nr` fail with `errno` when its argument `arg`
/// (0 to 5) has any of `bits` set in its low 32 bits, for the calling
/// thread and its future children: an older kernel's refusal of a flag
/// (`linkat(AT_EMPTY_PATH)` without `CAP_DAC_READ_SEARCH` before Linux
/// 6.10, say). Sets `no_new_privs`, like [`deny_with_enosys`].
pub fn fail_when_flagged(nr: u32, arg: u32, bits: u32, errno: i32) -> Result<(), Errno> {
    if arg > 5 {
        return Err(Errno::INVAL);
    }
    let bpf_ld_w_abs = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let bpf_jeq_k = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let bpf_jset_k = libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K;
    let bpf_ret_k = libc::BPF_RET | libc::BPF_K;
    // `args[arg]` of `struct seccomp_data`, low half (both supported
    // architectures are little-endian).
    let offset_arg = 16 + 8 * arg;
    let mut prog = [
        stmt(bpf_ld_w_abs, OFFSET_ARCH),
        jump(bpf_jeq_k, AUDIT_ARCH, 1, 0),
        stmt(bpf_ret_k, SECCOMP_RET_KILL_PROCESS),
        stmt(bpf_ld_w_abs, OFFSET_NR),
        jump(bpf_jeq_k, nr, 0, 2),
        stmt(bpf_ld_w_abs, offset_arg),
        jump(bpf_jset_k, bits, 1, 0),
        stmt(bpf_ret_k, SECCOMP_RET_ALLOW),
        stmt(bpf_ret_k, SECCOMP_RET_ERRNO | (errno as u32 & 0xffff)),
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) takes plain integers.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if r < 0 {
        return Err(Errno::from_raw_os_error(super::last_errno()));
    }
    // SAFETY: `fprog` points at `prog`, a valid BPF program that lives until
    // the call returns; the kernel copies it.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &fprog as *const libc::sock_fprog,
            0,
            0,
        )
    };
    if r < 0 {
        return Err(Errno::from_raw_os_error(super::last_errno()));
    }
    Ok(())
}
