//! saferoot's own executable image in memory.
//!
//! A start faults in code and read-only data all over the binary, and the
//! kernel maps the cached pages around each fault too (64 KiB at a time):
//! by the time the sandbox runs, saferoot's page tables hold about 600
//! entries for its file-backed image, and its exit unmaps each of them
//! (`exit_mmap`, about 40 µs) between the program's end and the caller
//! hearing of it. [`drop_read_only_pages`] unmaps them while saferoot has
//! nothing else to do (the sandbox is starting on another CPU); the few
//! pages the wait itself needs come back on their first use.

use std::mem::size_of;

/// Drops this process's page-table entries for the segments of its own
/// executable that are never written (code and read-only data): the next
/// access maps the page again from the page cache, with the same content.
/// Writable segments (data, relocated read-only data) are left alone: their
/// private copies would be lost. Best effort: without the program headers
/// (no `AT_PHDR`, no `PT_PHDR`), nothing is done.
///
/// A breakpoint a debugger wrote into the code is a private copy too, and
/// would be dropped: this runs only in the shipped build's waiting parent.
pub fn drop_read_only_pages() {
    // SAFETY: getauxval reads the auxiliary vector the kernel gave this
    // process; it takes a constant and returns a number (0 if absent).
    let (phdr, phnum, phent, page) = unsafe {
        (
            libc::getauxval(libc::AT_PHDR) as usize,
            libc::getauxval(libc::AT_PHNUM) as usize,
            libc::getauxval(libc::AT_PHENT) as usize,
            libc::getauxval(libc::AT_PAGESZ) as usize,
        )
    };
    if phdr == 0 || phnum == 0 || page == 0 || phent != size_of::<libc::Elf64_Phdr>() {
        return;
    }
    // SAFETY: AT_PHDR and AT_PHNUM describe the program header table the
    // kernel mapped with the executable, which stays mapped (read-only)
    // for the life of the process; entries are AT_PHENT bytes each, checked
    // above to be Elf64_Phdr's size, and the table is suitably aligned.
    let headers = unsafe { std::slice::from_raw_parts(phdr as *const libc::Elf64_Phdr, phnum) };
    let Some(own) = headers.iter().find(|h| h.p_type == libc::PT_PHDR) else {
        return;
    };
    let bias = phdr.wrapping_sub(own.p_vaddr as usize);
    for h in headers {
        if h.p_type != libc::PT_LOAD || h.p_flags & libc::PF_W != 0 {
            continue;
        }
        // Only whole pages inside the file-backed part of the segment: a
        // page shared with a neighbouring (writable) segment is kept.
        let start = (bias + h.p_vaddr as usize).next_multiple_of(page);
        let end = (bias + (h.p_vaddr + h.p_filesz) as usize) / page * page;
        if end <= start {
            continue;
        }
        // SAFETY: [start, end) lies inside a read-only, file-backed
        // segment of this process's own executable, mapped for the life
        // of the process; MADV_DONTNEED only removes the page-table
        // entries, and every later access faults the same file content
        // back in. No Rust reference can observe a difference.
        let r =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        if r != 0 {
            log::debug!(
                "madvise(MADV_DONTNEED) of the image: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Written at run time: lives in a writable segment.
    static WRITTEN: AtomicU32 = AtomicU32::new(1);
    /// Pointers the loader relocates: read-only data in a segment that is
    /// writable until relocated (`.data.rel.ro`).
    static RELOCATED: &[&str] = &["first", "second"];

    /// Resident kilobytes of this executable's mappings without write
    /// permission, from `/proc/self/smaps`.
    fn read_only_image_kb() -> u64 {
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let exe = exe.to_str().unwrap().to_string();
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut ours = false;
        let mut kb = 0;
        for line in smaps.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() >= 5 && fields[0].contains('-') && fields[1].len() == 4 {
                ours = fields.last() == Some(&exe.as_str()) && !fields[1].contains('w');
            } else if ours && fields.first() == Some(&"Rss:") {
                kb += fields[1].parse::<u64>().unwrap();
            }
        }
        kb
    }

    #[test]
    fn read_only_pages_go_and_writable_ones_stay() {
        WRITTEN.store(7, Ordering::SeqCst);
        let before = read_only_image_kb();
        drop_read_only_pages();
        let after = read_only_image_kb();
        assert!(
            after < before,
            "{before} kB resident before, {after} kB after"
        );
        // Written data keeps what was written (dropping its private copy
        // would bring back the file's 1), relocated pointers still point
        // where they should, and the code runs on.
        assert_eq!(WRITTEN.load(Ordering::SeqCst), 7);
        assert_eq!(RELOCATED.concat(), "firstsecond");
        assert_eq!(format!("{}", 6 * 7), "42");
    }
}
