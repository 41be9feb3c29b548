// Package saferoot builds container root filesystems race-free on the new
// Linux mount API, through libsaferoot's C ABI (cgo, pkg-config "saferoot").
//
// Every in-root path is resolved from a Root with
// openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS); every mount is a file
// descriptor (fsopen/fsmount or open_tree) configured while detached and
// attached with move_mount onto a resolved fd. No path the container could
// swap for a symlink is ever handed to the kernel.
//
// # Errors
//
// Every fallible function returns an *Error, which carries the errno, a
// kind and a message naming the operation and the in-root path. It unwraps
// to its syscall.Errno and matches its ErrorKind:
//
//	if errors.Is(err, syscall.ENOENT) { ... }          // or fs.ErrNotExist
//	if errors.Is(err, saferoot.KindSafetyViolation) { ... }
//
// Errors travel with each call (the C library keeps no thread-local "last
// error"), so goroutines moving between OS threads are no problem.
//
// # Files
//
// Files returned (Root.Resolve, the *Handle variants, Mount.IntoFile) are
// close-on-exec and the caller's to close. Files passed in (Attach
// targets, RootFromFile, SetIdmap, AssembleOptions.Console) are borrowed:
// the library duplicates what it keeps and never closes them.
//
// # Threads and mount namespaces
//
// Mount namespaces, and the root and working directory, belong to OS
// threads, not goroutines. Attaching, unmounting, reading the mount table
// and assembling act in the namespace of the OS thread that makes the
// call. A program that gives one goroutine a namespace of its own locks it
// to its thread first and keeps it locked, so the thread dies with the
// goroutine instead of going back to the pool with a changed namespace:
//
//	go func() {
//		runtime.LockOSThread() // never unlocked on purpose
//		syscall.Unshare(syscall.CLONE_FS | syscall.CLONE_NEWNS)
//		// ... saferoot calls, all on this thread ...
//	}()
//
// Rootfs.Enter changes the root of every thread sharing the calling
// thread's fs context: the whole process, unless the thread unshared
// CLONE_FS. Root, Mount and Rootfs values may be shared between
// goroutines; their methods are safe to call concurrently.
package saferoot
