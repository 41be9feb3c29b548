/*
 * Tests of the C ABI of libsaferoot, built against the installed header and
 * library through pkg-config (ffi/tests/run-c-tests.sh).
 *
 * Every exported function is called, with good and bad input (NULL, invalid
 * UTF-8, negative and closed fds, unknown flags and enum values, wrong
 * struct sizes), and real mounts are made in a private mount namespace that
 * the process enters first (unshare(CLONE_NEWNS), then "/" made rprivate),
 * so the host's mount table is never touched. Escape checks do not trust
 * the library: they read /proc/self/mountinfo and stat the host side.
 *
 * Prints "ok - NAME" or "FAIL - NAME" per test and a last line
 * "N passed, M failed"; exits non-zero when anything failed. Must run as
 * root; without root it fails, unless SAFEROOT_TEST_ALLOW_SKIP=1 is set.
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <saferoot.h>

/* ---- a tiny test framework ---------------------------------------------- */

static int tests_passed, tests_failed, current_failed;
static const char *current_test;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            current_failed++;                                                           \
            fprintf(stderr, "  %s:%d: %s: check failed: %s\n", __FILE__, __LINE__,      \
                    current_test, #cond);                                               \
        }                                                                               \
    } while (0)

/* A call that must fail with errno `e` and kind `k`, with an error object
 * that has a message; frees the error. */
#define CHECK_ERR(err, e, k)                                                            \
    do {                                                                                \
        CHECK((err) != NULL);                                                           \
        if ((err) != NULL) {                                                            \
            if (saferoot_error_errno(err) != (e) || saferoot_error_kind(err) != (k))    \
                fprintf(stderr, "  got errno %d kind %d: %s\n", saferoot_error_errno(err), \
                        (int)saferoot_error_kind(err), saferoot_error_message(err));   \
            CHECK(saferoot_error_errno(err) == (e));                                    \
            CHECK(saferoot_error_kind(err) == (k));                                     \
            CHECK(strlen(saferoot_error_message(err)) > 0);                             \
            saferoot_error_free(err);                                                   \
            (err) = NULL;                                                               \
        }                                                                               \
    } while (0)

/* A call that must have succeeded; prints the error if not. */
#define CHECK_OK(cond, err)                                                             \
    do {                                                                                \
        int ok_ = (cond);                                                               \
        if (!ok_ && (err) != NULL)                                                      \
            fprintf(stderr, "  error: %s\n", saferoot_error_message(err));              \
        CHECK(ok_);                                                                     \
        CHECK((err) == NULL);                                                           \
        saferoot_error_free(err);                                                       \
        (err) = NULL;                                                                   \
    } while (0)

#define INVALID SAFEROOT_ERRKIND_INVALID_INPUT

static void run_test(const char *name, void (*fn)(void))
{
    current_test = name;
    current_failed = 0;
    fn();
    if (current_failed == 0) {
        tests_passed++;
        printf("ok - %s\n", name);
    } else {
        tests_failed++;
        printf("FAIL - %s\n", name);
    }
    fflush(stdout);
}

#define RUN(fn) run_test(#fn, fn)

/* ---- helpers -------------------------------------------------------------- */

static const char BAD_UTF8[] = "/\xff\xfe";

/* Whether the kernel's mount API (fsopen, open_tree, move_mount,
 * mount_setattr) is usable. It always is on the kernels saferoot supports;
 * only valgrind 3.19, which does not know these system calls and answers
 * ENOSYS, hides it. Outside valgrind its absence is a failure. */
static int mount_api;

static void check_mount_api_unsupported(void);

/* For a test that needs the mount API: without it, check instead that the
 * library reports it as unsupported (and does not fall back), and stop. */
#define NEED_MOUNT_API()                                                                \
    do {                                                                                \
        if (!mount_api) {                                                               \
            check_mount_api_unsupported();                                              \
            return;                                                                     \
        }                                                                               \
    } while (0)
static char base[PATH_MAX]; /* a scratch directory on a private tmpfs */

/* The root mount of the namespace the suite started in, opened before it
 * enters its own: a mount that is attached, but not in this namespace. */
static int outer_root_fd = -1;

static char *path_join(const char *a, const char *b)
{
    static char buf[4][PATH_MAX];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, PATH_MAX, "%s%s", a, b);
    return p;
}

/* A fresh directory under base, for one test; the name stays valid for
 * the whole run. */
static const char *new_dir(const char *name)
{
    static char dirs[64][PATH_MAX];
    static int used;
    char *p;
    if (used == 64) {
        fprintf(stderr, "new_dir: too many directories\n");
        exit(2);
    }
    p = dirs[used++];
    snprintf(p, PATH_MAX, "%s%s", base, name);
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
        perror(p);
        exit(2);
    }
    return p;
}

static int count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own fd */
}

/* Prints every open fd and what it refers to (for a failed leak check). */
static void show_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    char link[300], target[256];
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        ssize_t n;
        if (e->d_name[0] == '.')
            continue;
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        n = readlink(link, target, sizeof target - 1);
        target[n < 0 ? 0 : n] = '\0';
        fprintf(stderr, "  fd %s -> %s\n", e->d_name, target);
    }
    closedir(d);
}

static int is_cloexec(int fd)
{
    int f = fcntl(fd, F_GETFD);
    return f >= 0 && (f & FD_CLOEXEC);
}

static int is_opath(int fd)
{
    int f = fcntl(fd, F_GETFL);
    return f >= 0 && (f & O_PATH) == O_PATH;
}

static int fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static int same_inode_fd_path(int fd, const char *path)
{
    struct stat a, b;
    if (fstat(fd, &a) != 0 || lstat(path, &b) != 0)
        return 0;
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Counts the mounts in /proc/self/mountinfo whose mount point is `path`,
 * and copies the fs type of the last one into `fstype` (when not NULL).
 * Independent of the library under test. */
static int mounts_at(const char *path, char *fstype, size_t fstype_len)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[4096];
    int n = 0;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        char mp[PATH_MAX], type[128];
        char *sep;
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
            continue;
        if (strcmp(mp, path) != 0)
            continue;
        n++;
        sep = strstr(line, " - ");
        if (fstype != NULL && sep != NULL && sscanf(sep + 3, "%127s", type) == 1)
            snprintf(fstype, fstype_len, "%s", type);
    }
    fclose(f);
    return n;
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ssize_t n;
    if (fd < 0)
        return -1;
    n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

static saferoot_root *open_root(const char *dir)
{
    saferoot_error *err = NULL;
    saferoot_root *r = saferoot_root_open(dir, &err);
    if (r == NULL) {
        fprintf(stderr, "open root %s: %s\n", dir, saferoot_error_message(err));
        saferoot_error_free(err);
    }
    return r;
}

static saferoot_mount *make_tmpfs(const char *data, uint64_t attrs)
{
    saferoot_error *err = NULL;
    struct saferoot_fs_options o;
    saferoot_mount *m;
    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    o.source = "saferoot-test";
    o.data = data;
    o.attrs = attrs;
    m = saferoot_mount_fs("tmpfs", &o, &err);
    if (m == NULL) {
        fprintf(stderr, "make tmpfs: %s\n", saferoot_error_message(err));
        saferoot_error_free(err);
    }
    return m;
}

/* ---- version, errors, features ------------------------------------------ */

static void test_version(void)
{
    const char *v = saferoot_version();
    CHECK(v != NULL);
    CHECK(v != NULL && strchr(v, '.') != NULL);
    CHECK(SAFEROOT_ABI_VERSION == 0);
}

static void test_error_accessors_on_null(void)
{
    CHECK(saferoot_error_errno(NULL) == 0);
    CHECK(saferoot_error_kind(NULL) == INVALID);
    CHECK(saferoot_error_message(NULL) != NULL && saferoot_error_message(NULL)[0] == '\0');
    CHECK(saferoot_error_path(NULL) == NULL);
    saferoot_error_free(NULL);
    saferoot_string_free(NULL);
}

static void test_error_carries_path_and_null_err_is_allowed(void)
{
    saferoot_error *err = NULL;
    saferoot_root *r = open_root(new_dir("/errpath"));
    int rc;
    CHECK(r != NULL);
    rc = saferoot_resolve(r, "/missing/file", &err);
    CHECK(rc == -ENOENT);
    CHECK(err != NULL);
    CHECK(saferoot_error_kind(err) == SAFEROOT_ERRKIND_NOT_FOUND);
    CHECK(saferoot_error_path(err) != NULL &&
          strcmp(saferoot_error_path(err), "/missing/file") == 0);
    CHECK(strstr(saferoot_error_message(err), "/missing/file") != NULL);
    saferoot_error_free(err);
    /* err may be NULL: the return value still carries the errno. */
    CHECK(saferoot_resolve(r, "/missing", NULL) == -ENOENT);
    /* *err is reset to NULL on success. */
    err = (saferoot_error *)&rc; /* garbage that must be overwritten, not freed */
    rc = saferoot_mkdir_all(r, "/d", 0755, NULL, &err);
    CHECK(rc == 0 && err == NULL);
    saferoot_root_free(r);
}

static void test_features(void)
{
    int f;
    CHECK(saferoot_has_feature(SAFEROOT_FEATURE_MOUNT_API) == mount_api);
    CHECK(saferoot_has_feature(SAFEROOT_FEATURE_MOUNT_SETATTR) == mount_api);
    if (mount_api)
        CHECK(saferoot_has_feature(SAFEROOT_FEATURE_OPENAT2) == 1);
    CHECK(saferoot_has_feature(0) == -EINVAL);
    CHECK(saferoot_has_feature(-1) == -EINVAL);
    CHECK(saferoot_has_feature(1000) == -EINVAL);
    for (f = SAFEROOT_FEATURE_MOUNT_API; f <= SAFEROOT_FEATURE_OPEN_TREE_ATTR; f++) {
        const char *name = saferoot_feature_name(f);
        int has = saferoot_has_feature(f);
        CHECK(name != NULL);
        CHECK(saferoot_feature_min_kernel(f) != NULL);
        CHECK(has == 0 || has == 1);
        if (name != NULL)
            CHECK(saferoot_feature_from_name(name) == f);
    }
    CHECK(strcmp(saferoot_feature_name(SAFEROOT_FEATURE_STATMOUNT), "statmount") == 0);
    CHECK(strcmp(saferoot_feature_min_kernel(SAFEROOT_FEATURE_MOVE_MOUNT_BENEATH), "6.5") == 0);
    CHECK(saferoot_feature_name(0) == NULL);
    CHECK(saferoot_feature_min_kernel(77) == NULL);
    CHECK(saferoot_feature_from_name("no-such-feature") == -ENOENT);
    CHECK(saferoot_feature_from_name(NULL) == -EINVAL);
    CHECK(saferoot_feature_from_name(BAD_UTF8) == -EINVAL);
}

/* ---- roots and paths ------------------------------------------------------ */

static void test_root_open(void)
{
    saferoot_error *err = NULL;
    saferoot_root *r;
    const char *dir = new_dir("/rootopen");
    CHECK(saferoot_root_open(NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_root_open(BAD_UTF8, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_root_open(path_join(dir, "/missing"), &err) == NULL);
    CHECK_ERR(err, ENOENT, SAFEROOT_ERRKIND_NOT_FOUND);
    CHECK(saferoot_root_open("/nonexistent-dir", NULL) == NULL);

    r = saferoot_root_open(dir, &err);
    CHECK_OK(r != NULL, err);
    CHECK(saferoot_root_fd(r) >= 0);
    CHECK(is_cloexec(saferoot_root_fd(r)));
    CHECK(same_inode_fd_path(saferoot_root_fd(r), dir));
    CHECK(saferoot_root_fd(NULL) == -EINVAL);
    saferoot_root_free(r);
    saferoot_root_free(NULL);
}

static void test_root_from_fd(void)
{
    saferoot_error *err = NULL;
    saferoot_root *r;
    const char *dir = new_dir("/rootfd");
    int dfd, ffd;

    CHECK(saferoot_root_from_fd(-1, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_root_from_fd(-100, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_root_from_fd(987654, &err) == NULL); /* not open */
    CHECK_ERR(err, EBADF, INVALID);

    CHECK(write_file(path_join(dir, "/file"), "x") == 0);
    ffd = open(path_join(dir, "/file"), O_RDONLY | O_CLOEXEC);
    CHECK(ffd >= 0);
    CHECK(saferoot_root_from_fd(ffd, &err) == NULL); /* not a directory */
    CHECK_ERR(err, EINVAL, INVALID);
    close(ffd);

    dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    CHECK(dfd >= 0);
    r = saferoot_root_from_fd(dfd, &err);
    CHECK_OK(r != NULL, err);
    /* The root keeps a duplicate; the caller's fd stays the caller's. */
    CHECK(saferoot_root_fd(r) != dfd);
    CHECK(is_cloexec(saferoot_root_fd(r)));
    saferoot_root_free(r);
    CHECK(fd_is_open(dfd));
    close(dfd);
}

static void test_resolve(void)
{
    saferoot_error *err = NULL;
    const char *dir = new_dir("/resolve");
    saferoot_root *r = open_root(dir);
    struct stat st;
    int fd;

    CHECK(mkdir(path_join(dir, "/etc"), 0755) == 0);
    CHECK(write_file(path_join(dir, "/etc/passwd"), "root:x:0:0::/:/bin/sh\n") == 0);
    CHECK(symlink("/etc/passwd", path_join(dir, "/link")) == 0);
    CHECK(symlink("../../../../etc", path_join(dir, "/up")) == 0);

    fd = saferoot_resolve(r, "/etc/passwd", &err);
    CHECK_OK(fd >= 0, err);
    CHECK(is_cloexec(fd) && is_opath(fd));
    CHECK(same_inode_fd_path(fd, path_join(dir, "/etc/passwd")));
    close(fd);

    /* An absolute symlink is read inside the root. */
    fd = saferoot_resolve(r, "/link", &err);
    CHECK_OK(fd >= 0, err);
    CHECK(same_inode_fd_path(fd, path_join(dir, "/etc/passwd")));
    close(fd);
    /* So are ".." chains, in paths and in link targets. */
    fd = saferoot_resolve(r, "/../../../../etc/passwd", &err);
    CHECK_OK(fd >= 0, err);
    CHECK(same_inode_fd_path(fd, path_join(dir, "/etc/passwd")));
    close(fd);
    fd = saferoot_resolve(r, "/up/passwd", &err);
    CHECK_OK(fd >= 0, err);
    CHECK(same_inode_fd_path(fd, path_join(dir, "/etc/passwd")));
    close(fd);

    fd = saferoot_resolve_nofollow(r, "/link", &err);
    CHECK_OK(fd >= 0, err);
    CHECK(is_cloexec(fd) && is_opath(fd));
    CHECK(fstatat(fd, "", &st, AT_EMPTY_PATH) == 0 && S_ISLNK(st.st_mode));
    close(fd);

    CHECK(saferoot_resolve(r, "relative", &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_resolve(r, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_resolve(NULL, "/etc", &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_resolve(r, BAD_UTF8, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_resolve_nofollow(r, "/missing", &err) == -ENOENT);
    CHECK_ERR(err, ENOENT, SAFEROOT_ERRKIND_NOT_FOUND);
    CHECK(saferoot_resolve_nofollow(NULL, "/", &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_resolve_nofollow(r, BAD_UTF8, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    saferoot_root_free(r);
}

static void test_mkdir_all(void)
{
    saferoot_error *err = NULL;
    const char *dir = new_dir("/mkdir");
    saferoot_root *r = open_root(dir);
    struct stat st;
    int fd = -1;

    CHECK_OK(saferoot_mkdir_all(r, "/a/b/c", 0750, &fd, &err) == 0, err);
    CHECK(fd >= 0 && is_cloexec(fd));
    CHECK(same_inode_fd_path(fd, path_join(dir, "/a/b/c")));
    close(fd);
    CHECK(stat(path_join(dir, "/a/b/c"), &st) == 0 && S_ISDIR(st.st_mode));
    /* Existing directories are fine; no fd wanted. */
    CHECK_OK(saferoot_mkdir_all(r, "/a/b", 0755, NULL, &err) == 0, err);
    /* Through a symlink that points "outside": stays inside. */
    CHECK(symlink("/", path_join(dir, "/escape")) == 0);
    CHECK_OK(saferoot_mkdir_all(r, "/escape/made-inside", 0755, NULL, &err) == 0, err);
    CHECK(stat(path_join(dir, "/made-inside"), &st) == 0);
    CHECK(stat("/made-inside", &st) != 0);

    CHECK(write_file(path_join(dir, "/file"), "") == 0);
    CHECK(saferoot_mkdir_all(r, "/file/sub", 0755, NULL, &err) < 0);
    CHECK(err != NULL);
    saferoot_error_free(err);
    err = NULL;
    CHECK(saferoot_mkdir_all(r, "/x", 010000, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mkdir_all(r, "x", 0755, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mkdir_all(NULL, "/x", 0755, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mkdir_all(r, BAD_UTF8, 0755, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    saferoot_root_free(r);
}

static void test_create_file(void)
{
    NEED_MOUNT_API();
    saferoot_error *err = NULL;
    const char *dir = new_dir("/create");
    saferoot_root *r = open_root(dir);
    struct stat st;
    int fd = -1;

    CHECK_OK(saferoot_create_file(r, "/f", 0640, &fd, &err) == 0, err);
    CHECK(fd >= 0 && is_cloexec(fd) && is_opath(fd));
    close(fd);
    CHECK(stat(path_join(dir, "/f"), &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0);
    /* Existing regular file: fine. */
    CHECK_OK(saferoot_create_file(r, "/f", 0640, NULL, &err) == 0, err);
    /* A directory or a symlink there is refused. */
    CHECK(mkdir(path_join(dir, "/d"), 0755) == 0);
    CHECK(saferoot_create_file(r, "/d", 0644, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(symlink("/f", path_join(dir, "/l")) == 0);
    CHECK(saferoot_create_file(r, "/l", 0644, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_create_file(r, "/missing/f", 0644, NULL, &err) == -ENOENT);
    CHECK_ERR(err, ENOENT, SAFEROOT_ERRKIND_NOT_FOUND);
    CHECK(saferoot_create_file(r, "/", 0644, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_create_file(r, "/g", 070000, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_create_file(NULL, "/g", 0644, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_create_file(r, NULL, 0644, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    saferoot_root_free(r);
}

static void test_mknod(void)
{
    saferoot_error *err = NULL;
    const char *dir = new_dir("/mknod");
    saferoot_root *r = open_root(dir);
    struct stat st;
    int fd = -1;

    CHECK_OK(saferoot_mknod(r, "/null", SAFEROOT_NODE_CHAR, 1, 3, 0666, &fd, &err) == 0, err);
    CHECK(fd >= 0 && is_cloexec(fd));
    close(fd);
    CHECK(lstat(path_join(dir, "/null"), &st) == 0 && S_ISCHR(st.st_mode) &&
          major(st.st_rdev) == 1 && minor(st.st_rdev) == 3);
    CHECK_OK(saferoot_mknod(r, "/loop", SAFEROOT_NODE_BLOCK, 7, 0, 0600, NULL, &err) == 0, err);
    CHECK(lstat(path_join(dir, "/loop"), &st) == 0 && S_ISBLK(st.st_mode));
    CHECK_OK(saferoot_mknod(r, "/fifo", SAFEROOT_NODE_FIFO, 0, 0, 0600, NULL, &err) == 0, err);
    CHECK(lstat(path_join(dir, "/fifo"), &st) == 0 && S_ISFIFO(st.st_mode));

    CHECK(saferoot_mknod(r, "/null", SAFEROOT_NODE_CHAR, 1, 3, 0666, NULL, &err) == -EEXIST);
    CHECK_ERR(err, EEXIST, SAFEROOT_ERRKIND_ALREADY_EXISTS);
    CHECK(saferoot_mknod(r, "/f2", SAFEROOT_NODE_FIFO, 1, 0, 0600, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mknod(r, "/x", 0, 1, 3, 0600, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mknod(r, "/x", 99, 1, 3, 0600, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mknod(r, "/x", SAFEROOT_NODE_CHAR, 1, 3, 0170000, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mknod(NULL, "/x", SAFEROOT_NODE_CHAR, 1, 3, 0600, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mknod(r, BAD_UTF8, SAFEROOT_NODE_CHAR, 1, 3, 0600, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    saferoot_root_free(r);
}

/* Device numbers the kernel cannot encode (major > 12 bits, minor > 20
 * bits) and unknown types are refused before anything is created; the mode
 * given is the mode created, whatever the caller's umask. */
static void test_mknod_checks_before_creating_and_keeps_the_mode(void)
{
    saferoot_error *err = NULL;
    const char *dir = new_dir("/mknod-checks");
    saferoot_root *r = open_root(dir);
    struct stat st;
    mode_t old = umask(022);

    CHECK(saferoot_mknod(r, "/big-major", SAFEROOT_NODE_CHAR, 4096, 0, 0600, NULL, &err) ==
          -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(lstat(path_join(dir, "/big-major"), &st) != 0 && errno == ENOENT);
    CHECK(saferoot_mknod(r, "/big-minor", SAFEROOT_NODE_BLOCK, 7, 1u << 20, 0600, NULL, &err) ==
          -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(lstat(path_join(dir, "/big-minor"), &st) != 0 && errno == ENOENT);
    CHECK(saferoot_mknod(r, "/huge", SAFEROOT_NODE_CHAR, 0xffffffffu, 0xffffffffu, 0600, NULL,
                         &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(lstat(path_join(dir, "/huge"), &st) != 0 && errno == ENOENT);
    CHECK(saferoot_mknod(r, "/no-type", 0, 1, 3, 0600, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(lstat(path_join(dir, "/no-type"), &st) != 0 && errno == ENOENT);

    /* The largest numbers that fit are fine. */
    CHECK_OK(saferoot_mknod(r, "/max", SAFEROOT_NODE_CHAR, 4095, (1u << 20) - 1, 0600, NULL,
                            &err) == 0,
             err);
    CHECK(lstat(path_join(dir, "/max"), &st) == 0 && S_ISCHR(st.st_mode) &&
          major(st.st_rdev) == 4095 && minor(st.st_rdev) == (1u << 20) - 1);

    /* umask 022 would make these 0644 and 0664. */
    CHECK_OK(saferoot_mknod(r, "/null", SAFEROOT_NODE_CHAR, 1, 3, 0666, NULL, &err) == 0, err);
    CHECK(lstat(path_join(dir, "/null"), &st) == 0 && (st.st_mode & 07777) == 0666);
    CHECK_OK(saferoot_mknod(r, "/fifo", SAFEROOT_NODE_FIFO, 0, 0, 0664, NULL, &err) == 0, err);
    CHECK(lstat(path_join(dir, "/fifo"), &st) == 0 && (st.st_mode & 07777) == 0664);
    /* The caller's umask is untouched. */
    CHECK(umask(old) == 022);
    saferoot_root_free(r);
}

static void test_symlink_readlink(void)
{
    saferoot_error *err = NULL;
    const char *dir = new_dir("/links");
    saferoot_root *r = open_root(dir);
    char buf[64], target[PATH_MAX];
    char *s;
    ssize_t n;

    CHECK_OK(saferoot_symlink(r, "/l", "/etc/hostname", &err) == 0, err);
    n = readlink(path_join(dir, "/l"), target, sizeof(target) - 1);
    CHECK(n == 13 && memcmp(target, "/etc/hostname", 13) == 0);

    memset(buf, 'x', sizeof(buf));
    CHECK_OK(saferoot_readlink(r, "/l", buf, sizeof(buf), &err) == 13, err);
    CHECK(strcmp(buf, "/etc/hostname") == 0);
    /* Exactly enough for the target and its NUL. */
    CHECK_OK(saferoot_readlink(r, "/l", buf, 14, &err) == 13, err);
    /* One byte short: ERANGE, buffer untouched. */
    memset(buf, 'x', sizeof(buf));
    CHECK(saferoot_readlink(r, "/l", buf, 13, &err) == -ERANGE);
    CHECK_ERR(err, ERANGE, INVALID);
    CHECK(buf[0] == 'x');
    CHECK(saferoot_readlink(r, "/l", NULL, 0, &err) == -ERANGE);
    CHECK_ERR(err, ERANGE, INVALID);
    CHECK(saferoot_readlink(r, "/l", NULL, 10, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_readlink(NULL, "/l", buf, sizeof(buf), &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_readlink(r, "/missing", buf, sizeof(buf), &err) == -ENOENT);
    CHECK_ERR(err, ENOENT, SAFEROOT_ERRKIND_NOT_FOUND);

    s = saferoot_readlink_alloc(r, "/l", &err);
    CHECK_OK(s != NULL, err);
    CHECK(s != NULL && strcmp(s, "/etc/hostname") == 0);
    saferoot_string_free(s);
    CHECK(saferoot_readlink_alloc(r, NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_readlink_alloc(NULL, "/l", &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_readlink_alloc(r, BAD_UTF8, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);

    CHECK(saferoot_symlink(r, "/l", "/other", &err) == -EEXIST);
    CHECK_ERR(err, EEXIST, SAFEROOT_ERRKIND_ALREADY_EXISTS);
    CHECK(saferoot_symlink(r, "/l2", "", &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_symlink(r, "/l2", NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_symlink(r, "/l2", BAD_UTF8, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_symlink(NULL, "/l2", "/x", &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    saferoot_root_free(r);
}

static void test_remove(void)
{
    saferoot_error *err = NULL;
    const char *dir = new_dir("/remove");
    saferoot_root *r = open_root(dir);
    struct stat st;

    CHECK(mkdir(path_join(dir, "/d"), 0755) == 0);
    CHECK(write_file(path_join(dir, "/d/f"), "x") == 0);
    CHECK(saferoot_remove_dir(r, "/d", &err) == -ENOTEMPTY);
    CHECK_ERR(err, ENOTEMPTY, SAFEROOT_ERRKIND_OS);
    CHECK(saferoot_remove_file(r, "/d", &err) < 0); /* a directory */
    CHECK(err != NULL);
    saferoot_error_free(err);
    err = NULL;
    CHECK_OK(saferoot_remove_file(r, "/d/f", &err) == 0, err);
    CHECK(lstat(path_join(dir, "/d/f"), &st) != 0 && errno == ENOENT);
    CHECK_OK(saferoot_remove_dir(r, "/d", &err) == 0, err);
    CHECK(lstat(path_join(dir, "/d"), &st) != 0 && errno == ENOENT);
    CHECK(saferoot_remove_file(r, "/d/f", &err) == -ENOENT);
    CHECK_ERR(err, ENOENT, SAFEROOT_ERRKIND_NOT_FOUND);
    CHECK(saferoot_remove_file(NULL, "/x", &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_remove_file(r, BAD_UTF8, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_remove_dir(r, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_remove_dir(r, "rel", &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    saferoot_root_free(r);
}

/* ---- mounts ---------------------------------------------------------------- */

static void test_mount_fs_and_options(void)
{
    NEED_MOUNT_API();
    saferoot_error *err = NULL;
    struct saferoot_fs_options o;
    struct {
        struct saferoot_fs_options base;
        uint64_t future_field;
    } bigger;
    saferoot_mount *m;
    uint64_t attrs = 0;

    m = saferoot_mount_fs("tmpfs", NULL, &err);
    CHECK_OK(m != NULL, err);
    CHECK(saferoot_mount_fd(m) >= 0 && is_cloexec(saferoot_mount_fd(m)));
    CHECK_OK(saferoot_mount_get_attr(m, &attrs, &err) == 0, err);
    CHECK((attrs & SAFEROOT_MOUNT_ATTR_RDONLY) == 0);
    saferoot_mount_free(m);

    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    o.source = "mysrc";
    o.data = "size=1m,mode=700";
    o.attrs = SAFEROOT_MOUNT_ATTR_RDONLY | SAFEROOT_MOUNT_ATTR_NOSUID |
              SAFEROOT_MOUNT_ATTR_NODEV | SAFEROOT_MOUNT_ATTR_NOEXEC | SAFEROOT_MOUNT_ATTR_NOATIME;
    m = saferoot_mount_fs("tmpfs", &o, &err);
    CHECK_OK(m != NULL, err);
    CHECK_OK(saferoot_mount_get_attr(m, &attrs, &err) == 0, err);
    CHECK((attrs & o.attrs) == o.attrs);
    CHECK(saferoot_mount_get_attr(m, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    saferoot_mount_free(m);

    /* The smallest version of the struct is accepted. */
    o.size = SAFEROOT_FS_OPTIONS_SIZE_VER0;
    m = saferoot_mount_fs("tmpfs", &o, &err);
    CHECK_OK(m != NULL, err);
    saferoot_mount_free(m);
    /* Smaller: EINVAL. */
    o.size = 8;
    CHECK(saferoot_mount_fs("tmpfs", &o, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    o.size = 0;
    CHECK(saferoot_mount_fs("tmpfs", &o, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    /* Larger, from a newer header: fine while the unknown tail is zero. */
    memset(&bigger, 0, sizeof(bigger));
    bigger.base.size = sizeof(bigger);
    bigger.base.data = "size=1m";
    m = saferoot_mount_fs("tmpfs", &bigger.base, &err);
    CHECK_OK(m != NULL, err);
    saferoot_mount_free(m);
    bigger.future_field = 1;
    CHECK(saferoot_mount_fs("tmpfs", &bigger.base, &err) == NULL);
    CHECK_ERR(err, E2BIG, INVALID);

    o.size = sizeof(o);
    o.attrs = 1ULL << 50; /* unknown attribute bit */
    CHECK(saferoot_mount_fs("tmpfs", &o, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    o.attrs = SAFEROOT_MOUNT_ATTR_NOATIME | SAFEROOT_MOUNT_ATTR_STRICTATIME;
    CHECK(saferoot_mount_fs("tmpfs", &o, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    o.attrs = 0;
    o.data = "no_such_tmpfs_option=1";
    CHECK(saferoot_mount_fs("tmpfs", &o, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    o.data = "a,,b";
    CHECK(saferoot_mount_fs("tmpfs", &o, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    o.data = BAD_UTF8;
    CHECK(saferoot_mount_fs("tmpfs", &o, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    o.data = NULL;
    o.source = BAD_UTF8;
    CHECK(saferoot_mount_fs("tmpfs", &o, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_fs("no-such-filesystem", NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_fs(NULL, NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_fs(BAD_UTF8, NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_fs("", NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
}

static void test_mount_clone(void)
{
    NEED_MOUNT_API();
    saferoot_error *err = NULL;
    const char *dir = new_dir("/clone");
    saferoot_root *r;
    saferoot_mount *m;
    int fd;

    CHECK(mkdir(path_join(dir, "/sub"), 0755) == 0);
    CHECK(symlink("sub", path_join(dir, "/link")) == 0);
    r = open_root(dir);

    m = saferoot_mount_clone(dir, 0, &err);
    CHECK_OK(m != NULL, err);
    saferoot_mount_free(m);
    m = saferoot_mount_clone(dir, SAFEROOT_CLONE_RECURSIVE, &err);
    CHECK_OK(m != NULL, err);
    saferoot_mount_free(m);
    m = saferoot_mount_clone(path_join(dir, "/link"), SAFEROOT_CLONE_NOFOLLOW, &err);
    CHECK_OK(m != NULL, err);
    saferoot_mount_free(m);
    CHECK(saferoot_mount_clone(dir, 0x80, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_clone(path_join(dir, "/missing"), 0, &err) == NULL);
    CHECK_ERR(err, ENOENT, SAFEROOT_ERRKIND_NOT_FOUND);
    CHECK(saferoot_mount_clone(NULL, 0, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_clone(BAD_UTF8, 0, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_clone("", 0, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);

    fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    m = saferoot_mount_clone_fd(fd, SAFEROOT_CLONE_RECURSIVE, &err);
    CHECK_OK(m != NULL, err);
    saferoot_mount_free(m);
    CHECK(fd_is_open(fd));
    CHECK(saferoot_mount_clone_fd(fd, SAFEROOT_CLONE_NOFOLLOW, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_clone_fd(-1, 0, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_clone_fd(987654, 0, &err) == NULL);
    CHECK_ERR(err, EBADF, INVALID);
    close(fd);

    m = saferoot_mount_clone_in_root(r, "/sub", 0, &err);
    CHECK_OK(m != NULL, err);
    saferoot_mount_free(m);
    m = saferoot_mount_clone_in_root(r, "/link", SAFEROOT_CLONE_NOFOLLOW | SAFEROOT_CLONE_RECURSIVE,
                                     &err);
    CHECK_OK(m != NULL, err);
    saferoot_mount_free(m);
    CHECK(saferoot_mount_clone_in_root(r, "sub", 0, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_clone_in_root(r, "/sub", 4, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_clone_in_root(NULL, "/sub", 0, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_clone_in_root(r, NULL, 0, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    saferoot_root_free(r);
}

static void test_mount_set_attr_and_propagation(void)
{
    NEED_MOUNT_API();
    saferoot_error *err = NULL;
    saferoot_mount *m = make_tmpfs("size=1m", 0);
    uint64_t attrs = 0;

    CHECK(m != NULL);
    CHECK_OK(saferoot_mount_set_attr(m, SAFEROOT_MOUNT_ATTR_RDONLY | SAFEROOT_MOUNT_ATTR_NOEXEC, 0, 0,
                                     &err) == 0,
             err);
    CHECK_OK(saferoot_mount_get_attr(m, &attrs, &err) == 0, err);
    CHECK((attrs & SAFEROOT_MOUNT_ATTR_RDONLY) && (attrs & SAFEROOT_MOUNT_ATTR_NOEXEC));
    CHECK_OK(saferoot_mount_set_attr(m, SAFEROOT_MOUNT_ATTR_NOSUID, SAFEROOT_MOUNT_ATTR_RDONLY,
                                     SAFEROOT_ATTR_RECURSIVE, &err) == 0,
             err);
    CHECK_OK(saferoot_mount_get_attr(m, &attrs, &err) == 0, err);
    CHECK(!(attrs & SAFEROOT_MOUNT_ATTR_RDONLY) && (attrs & SAFEROOT_MOUNT_ATTR_NOSUID));
    CHECK_OK(saferoot_mount_set_attr(m, SAFEROOT_MOUNT_ATTR_STRICTATIME, 0, 0, &err) == 0, err);
    CHECK_OK(saferoot_mount_get_attr(m, &attrs, &err) == 0, err);
    CHECK((attrs & SAFEROOT_MOUNT_ATTR_STRICTATIME) && !(attrs & SAFEROOT_MOUNT_ATTR_RELATIME));

    CHECK(saferoot_mount_set_attr(m, SAFEROOT_MOUNT_ATTR_RDONLY, SAFEROOT_MOUNT_ATTR_RDONLY, 0,
                                  &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_set_attr(m, 1ULL << 33, 0, 0, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_set_attr(m, 0, 1ULL << 63, 0, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_set_attr(m, 0, 0, 2, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_set_attr(NULL, 0, 0, 0, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);

    CHECK_OK(saferoot_mount_set_propagation(m, SAFEROOT_PROPAGATION_PRIVATE, 0, &err) == 0, err);
    CHECK_OK(saferoot_mount_set_propagation(m, SAFEROOT_PROPAGATION_UNBINDABLE,
                                            SAFEROOT_ATTR_RECURSIVE, &err) == 0,
             err);
    CHECK_OK(saferoot_mount_set_propagation(m, SAFEROOT_PROPAGATION_PRIVATE, 0, &err) == 0, err);
    CHECK(saferoot_mount_set_propagation(m, 0, 0, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_set_propagation(m, 5, 0, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_set_propagation(m, SAFEROOT_PROPAGATION_PRIVATE, 0x100, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_set_propagation(NULL, SAFEROOT_PROPAGATION_PRIVATE, 0, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_get_attr(NULL, &attrs, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    saferoot_mount_free(m);
}

/* A child in a new user namespace with 0..65535 mapped to 100000..165535;
 * returns an fd to its user namespace, or -1. The child is gone on return. */
static int make_userns_fd(void)
{
    int to_child[2], to_parent[2];
    char path[64], c = 0;
    pid_t pid;
    int fd = -1;

    if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(to_parent, O_CLOEXEC) != 0)
        return -1;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        char x = 0;
        if (unshare(CLONE_NEWUSER) != 0)
            _exit(1);
        if (write(to_parent[1], &x, 1) != 1)
            _exit(1);
        /* Wait until the parent has the namespace open. */
        if (read(to_child[0], &x, 1) < 0)
            _exit(1);
        _exit(0);
    }
    if (read(to_parent[0], &c, 1) == 1) {
        snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
        if (write_file(path, "0 100000 65536\n") == 0) {
            snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
            if (write_file(path, "0 100000 65536\n") == 0) {
                snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
                fd = open(path, O_RDONLY | O_CLOEXEC);
            }
        }
    }
    if (write(to_child[1], &c, 1) != 1)
        kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(to_child[0]);
    close(to_child[1]);
    close(to_parent[0]);
    close(to_parent[1]);
    return fd;
}

static void test_mount_idmap(void)
{
    NEED_MOUNT_API();
    saferoot_error *err = NULL;
    const char *dir = new_dir("/idmap");
    saferoot_root *r = open_root(dir);
    saferoot_mount *src, *m;
    struct stat st;
    int userns, target;

    /* A tmpfs with a root-owned file, mounted idmapped: the file shows as
     * owned by 100000 through the idmapped mount. */
    src = make_tmpfs("size=1m", 0);
    CHECK(src != NULL);
    CHECK_OK(saferoot_mkdir_all(r, "/src", 0755, &target, &err) == 0, err);
    CHECK_OK(saferoot_mount_attach(src, target, &err) == 0, err);
    close(target);
    CHECK(write_file(path_join(dir, "/src/owned-by-root"), "x") == 0);

    userns = make_userns_fd();
    CHECK(userns >= 0);
    m = saferoot_mount_clone_in_root(r, "/src", 0, &err);
    CHECK_OK(m != NULL, err);
    CHECK(saferoot_mount_set_idmap(m, -1, 0, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_set_idmap(m, userns, 0x10, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_set_idmap(NULL, userns, 0, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK_OK(saferoot_mount_set_idmap(m, userns, 0, &err) == 0, err);
    CHECK(fd_is_open(userns));
    /* Only once. */
    CHECK(saferoot_mount_set_idmap(m, userns, 0, &err) < 0);
    CHECK(err != NULL);
    saferoot_error_free(err);
    err = NULL;
    CHECK_OK(saferoot_mkdir_all(r, "/mapped", 0755, NULL, &err) == 0, err);
    CHECK_OK(saferoot_mount_attach_at(m, r, "/mapped", &err) == 0, err);
    CHECK(stat(path_join(dir, "/mapped/owned-by-root"), &st) == 0 && st.st_uid == 100000 &&
          st.st_gid == 100000);
    /* Not on an attached mount. */
    CHECK(saferoot_mount_set_idmap(m, userns, 0, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK_OK(saferoot_mount_detach(m, &err) == 0, err);
    CHECK_OK(saferoot_mount_detach(src, &err) == 0, err);
    saferoot_mount_free(m);
    saferoot_mount_free(src);
    if (userns >= 0)
        close(userns);
    saferoot_root_free(r);
}

static void test_mount_attach_and_detach(void)
{
    NEED_MOUNT_API();
    saferoot_error *err = NULL;
    const char *dir = new_dir("/attach");
    saferoot_root *r = open_root(dir);
    saferoot_mount *m;
    char type[128] = "";
    int target, file_target;

    CHECK_OK(saferoot_mkdir_all(r, "/mnt", 0755, &target, &err) == 0, err);
    CHECK_OK(saferoot_create_file(r, "/file", 0644, &file_target, &err) == 0, err);

    m = make_tmpfs("size=1m", SAFEROOT_MOUNT_ATTR_NODEV);
    CHECK(m != NULL);
    CHECK(mounts_at(path_join(dir, "/mnt"), NULL, 0) == 0);
    /* A failed attach (a directory mount onto a file) leaves the mount
     * detached and usable. */
    CHECK(saferoot_mount_attach(m, file_target, &err) < 0);
    CHECK(err != NULL);
    saferoot_error_free(err);
    err = NULL;
    CHECK(saferoot_mount_attach(m, -1, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_attach(m, 987654, &err) == -EBADF);
    CHECK_ERR(err, EBADF, INVALID);
    CHECK(saferoot_mount_attach(NULL, target, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(mounts_at(path_join(dir, "/mnt"), NULL, 0) == 0);

    CHECK_OK(saferoot_mount_attach(m, target, &err) == 0, err);
    CHECK(fd_is_open(target));
    CHECK(mounts_at(path_join(dir, "/mnt"), type, sizeof(type)) == 1);
    CHECK(strcmp(type, "tmpfs") == 0);
    CHECK(saferoot_mount_fd(m) >= 0);
    /* Attached: attaching again or idmapping is refused; attributes can
     * still change. */
    CHECK(saferoot_mount_attach(m, target, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK_OK(saferoot_mount_set_attr(m, SAFEROOT_MOUNT_ATTR_RDONLY, 0, 0, &err) == 0, err);
    CHECK(write_file(path_join(dir, "/mnt/x"), "x") != 0 && errno == EROFS);
    CHECK_OK(saferoot_mount_set_propagation(m, SAFEROOT_PROPAGATION_PRIVATE, 0, &err) == 0, err);

    CHECK_OK(saferoot_mount_detach(m, &err) == 0, err);
    CHECK(mounts_at(path_join(dir, "/mnt"), NULL, 0) == 0);
    CHECK(saferoot_mount_detach(m, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_fd(m) == -EINVAL);
    CHECK(saferoot_mount_set_attr(m, SAFEROOT_MOUNT_ATTR_RDONLY, 0, 0, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    saferoot_mount_free(m);

    /* A detached mount cannot be detached. */
    m = make_tmpfs(NULL, 0);
    CHECK(saferoot_mount_detach(m, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_detach(NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    /* Freeing a detached mount destroys it; nothing appears. */
    saferoot_mount_free(m);
    saferoot_mount_free(NULL);
    CHECK(mounts_at(path_join(dir, "/mnt"), NULL, 0) == 0);

    /* A file bind mount, attached at an in-root path and detached by its
     * parent and name. */
    CHECK(write_file(path_join(dir, "/source-file"), "bound") == 0);
    m = saferoot_mount_clone(path_join(dir, "/source-file"), 0, &err);
    CHECK_OK(m != NULL, err);
    CHECK_OK(saferoot_mount_attach_at(m, r, "/file", &err) == 0, err);
    CHECK(mounts_at(path_join(dir, "/file"), NULL, 0) == 1);
    CHECK_OK(saferoot_mount_detach(m, &err) == 0, err);
    CHECK(mounts_at(path_join(dir, "/file"), NULL, 0) == 0);
    saferoot_mount_free(m);

    close(target);
    close(file_target);
    saferoot_root_free(r);
}

static void test_mount_attach_at_errors(void)
{
    NEED_MOUNT_API();
    saferoot_error *err = NULL;
    const char *dir = new_dir("/attachat");
    saferoot_root *r = open_root(dir);
    saferoot_mount *m = make_tmpfs(NULL, 0);

    CHECK(saferoot_mount_attach_at(m, r, "/missing", &err) == -ENOENT);
    CHECK_ERR(err, ENOENT, SAFEROOT_ERRKIND_NOT_FOUND);
    CHECK(saferoot_mount_attach_at(m, r, "relative", &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_attach_at(m, r, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_attach_at(m, r, BAD_UTF8, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_attach_at(m, NULL, "/", &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_attach_at(NULL, r, "/", &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    /* Still detached after all that: attach it on the root itself. */
    CHECK_OK(saferoot_mount_attach_at(m, r, "/", &err) == 0, err);
    CHECK(mounts_at(dir, NULL, 0) >= 1);
    CHECK_OK(saferoot_mount_detach(m, &err) == 0, err);
    saferoot_mount_free(m);
    saferoot_root_free(r);
}

static void test_mount_attach_beneath(void)
{
    NEED_MOUNT_API();
    saferoot_error *err = NULL;
    const char *dir = new_dir("/beneath");
    saferoot_root *r = open_root(dir);
    saferoot_mount *top, *under;
    int target = -1;

    if (saferoot_has_feature(SAFEROOT_FEATURE_MOVE_MOUNT_BENEATH) != 1) {
        under = make_tmpfs(NULL, 0);
        CHECK(saferoot_mount_attach_beneath(under, 0, &err) == -ENOSYS);
        CHECK_ERR(err, ENOSYS, SAFEROOT_ERRKIND_UNSUPPORTED);
        saferoot_mount_free(under);
        saferoot_root_free(r);
        return;
    }
    CHECK_OK(saferoot_mkdir_all(r, "/m", 0755, NULL, &err) == 0, err);
    top = make_tmpfs(NULL, 0);
    CHECK_OK(saferoot_mount_attach_at(top, r, "/m", &err) == 0, err);
    CHECK(write_file(path_join(dir, "/m/top"), "") == 0);

    under = make_tmpfs(NULL, 0);
    CHECK(saferoot_mount_attach_beneath(under, -5, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_attach_beneath(NULL, 0, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    target = saferoot_resolve(r, "/m", &err);
    CHECK_OK(target >= 0, err);
    CHECK_OK(saferoot_mount_attach_beneath(under, target, &err) == 0, err);
    CHECK(mounts_at(path_join(dir, "/m"), NULL, 0) == 2);
    /* Take the top away: the one beneath is there, with no gap. */
    CHECK_OK(saferoot_mount_detach(top, &err) == 0, err);
    CHECK(mounts_at(path_join(dir, "/m"), NULL, 0) == 1);
    CHECK(access(path_join(dir, "/m/top"), F_OK) != 0);
    CHECK_OK(saferoot_unmount_in_root(r, "/m", &err) == 0, err);
    CHECK(mounts_at(path_join(dir, "/m"), NULL, 0) == 0);
    saferoot_mount_free(top);
    saferoot_mount_free(under);
    close(target);
    saferoot_root_free(r);
}

static void test_mount_from_and_into_fd(void)
{
    NEED_MOUNT_API();
    saferoot_error *err = NULL;
    const char *dir = new_dir("/intofd");
    saferoot_root *r = open_root(dir);
    saferoot_mount *m = make_tmpfs(NULL, 0), *again;
    int fd;

    fd = saferoot_mount_into_fd(m, &err); /* frees m */
    CHECK_OK(fd >= 0, err);
    CHECK(is_cloexec(fd));
    again = saferoot_mount_from_fd(fd, &err);
    CHECK_OK(again != NULL, err);
    CHECK(saferoot_mount_fd(again) != fd);
    close(fd); /* the handle has its own duplicate: the mount lives on */
    CHECK_OK(saferoot_mkdir_all(r, "/d", 0755, NULL, &err) == 0, err);
    CHECK_OK(saferoot_mount_attach_at(again, r, "/d", &err) == 0, err);
    CHECK(mounts_at(path_join(dir, "/d"), NULL, 0) == 1);
    /* An attached mount gives an fd to its root. */
    fd = saferoot_mount_into_fd(again, &err);
    CHECK_OK(fd >= 0, err);
    CHECK(same_inode_fd_path(fd, path_join(dir, "/d")));
    close(fd);
    CHECK(mounts_at(path_join(dir, "/d"), NULL, 0) == 1);
    CHECK_OK(saferoot_unmount_in_root(r, "/d", &err) == 0, err);

    CHECK(saferoot_mount_into_fd(NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_from_fd(-1, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_fd(NULL) == -EINVAL);
    saferoot_root_free(r);
}

/* saferoot_mount_from_fd takes detached mounts only: the fd of a mount
 * attached in this namespace (here an O_PATH open of its mount point) is
 * refused, so no attribute change can reach the live mount through it. */
static void test_mount_from_fd_refuses_an_attached_mount(void)
{
    NEED_MOUNT_API();
    saferoot_error *err = NULL;
    const char *dir = new_dir("/fromfd-live");
    saferoot_root *r = open_root(dir);
    saferoot_mount *m = make_tmpfs(NULL, 0), *again;
    int live, plain;
    struct statvfs sv;

    CHECK_OK(saferoot_mkdir_all(r, "/live", 0755, NULL, &err) == 0, err);
    CHECK_OK(saferoot_mount_attach_at(m, r, "/live", &err) == 0, err);
    CHECK(mounts_at(path_join(dir, "/live"), NULL, 0) == 1);
    live = open(path_join(dir, "/live"), O_PATH | O_DIRECTORY | O_CLOEXEC);
    CHECK(live >= 0);
    again = saferoot_mount_from_fd(live, &err);
    CHECK(again == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    saferoot_mount_free(again);
    /* The live mount is as it was: writable. */
    CHECK(statvfs(path_join(dir, "/live"), &sv) == 0 && !(sv.f_flag & ST_RDONLY));
    close(live);
    /* Neither is an fd that is not the root of a mount. */
    CHECK_OK(saferoot_mkdir_all(r, "/live/sub", 0755, NULL, &err) == 0, err);
    plain = open(path_join(dir, "/live/sub"), O_PATH | O_DIRECTORY | O_CLOEXEC);
    CHECK(plain >= 0);
    CHECK(saferoot_mount_from_fd(plain, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    close(plain);
    CHECK_OK(saferoot_mount_detach(m, &err) == 0, err);
    CHECK(mounts_at(path_join(dir, "/live"), NULL, 0) == 0);
    saferoot_mount_free(m);
    saferoot_root_free(r);
}

static void test_mount_root_builds_a_detached_tree(void)
{
    NEED_MOUNT_API();
    saferoot_error *err = NULL;
    const char *dir = new_dir("/tree");
    saferoot_root *host = open_root(dir), *inner;
    saferoot_mount *tree = make_tmpfs("size=1m", 0), *sub;

    CHECK(saferoot_mount_root(NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    inner = saferoot_mount_root(tree, &err);
    CHECK_OK(inner != NULL, err);
    CHECK_OK(saferoot_mkdir_all(inner, "/etc/sub", 0755, NULL, &err) == 0, err);
    CHECK_OK(saferoot_create_file(inner, "/etc/hostname", 0644, NULL, &err) == 0, err);
    if (saferoot_has_feature(SAFEROOT_FEATURE_DETACHED_MOUNT_TARGETS) == 1) {
        /* A mount inside a tree nobody can see yet. */
        sub = make_tmpfs(NULL, SAFEROOT_MOUNT_ATTR_RDONLY);
        CHECK_OK(saferoot_mount_attach_at(sub, inner, "/etc/sub", &err) == 0, err);
        saferoot_mount_free(sub);
    }
    CHECK_OK(saferoot_mkdir_all(host, "/rootfs", 0755, NULL, &err) == 0, err);
    CHECK_OK(saferoot_mount_attach_at(tree, host, "/rootfs", &err) == 0, err);
    CHECK(access(path_join(dir, "/rootfs/etc/hostname"), F_OK) == 0);
    CHECK(mounts_at(path_join(dir, "/rootfs"), NULL, 0) == 1);
    if (saferoot_has_feature(SAFEROOT_FEATURE_DETACHED_MOUNT_TARGETS) == 1)
        CHECK(mounts_at(path_join(dir, "/rootfs/etc/sub"), NULL, 0) == 1);
    CHECK_OK(saferoot_mount_detach(tree, &err) == 0, err);
    CHECK(mounts_at(path_join(dir, "/rootfs"), NULL, 0) == 0);
    CHECK(mounts_at(path_join(dir, "/rootfs/etc/sub"), NULL, 0) == 0);
    saferoot_mount_free(tree);
    saferoot_root_free(inner);
    saferoot_root_free(host);
}

static void test_unmount_in_root(void)
{
    NEED_MOUNT_API();
    saferoot_error *err = NULL;
    const char *dir = new_dir("/unmount");
    saferoot_root *r = open_root(dir);
    saferoot_mount *m = make_tmpfs(NULL, 0);

    CHECK_OK(saferoot_mkdir_all(r, "/a", 0755, NULL, &err) == 0, err);
    CHECK_OK(saferoot_mount_attach_at(m, r, "/a", &err) == 0, err);
    saferoot_mount_free(m); /* stays attached */
    CHECK(mounts_at(path_join(dir, "/a"), NULL, 0) == 1);
    CHECK_OK(saferoot_unmount_in_root(r, "/a", &err) == 0, err);
    CHECK(mounts_at(path_join(dir, "/a"), NULL, 0) == 0);
    /* Nothing mounted there any more. */
    CHECK(saferoot_unmount_in_root(r, "/a", &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, SAFEROOT_ERRKIND_OS);
    CHECK(saferoot_unmount_in_root(r, "/missing", &err) == -ENOENT);
    CHECK_ERR(err, ENOENT, SAFEROOT_ERRKIND_NOT_FOUND);
    CHECK(saferoot_unmount_in_root(r, "a", &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_unmount_in_root(NULL, "/a", &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_unmount_in_root(r, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    saferoot_root_free(r);
}

/* ---- escapes ---------------------------------------------------------------- */

static void test_symlink_escape_is_confined(void)
{
    NEED_MOUNT_API();
    saferoot_error *err = NULL;
    const char *dir = new_dir("/escape");
    saferoot_root *r;
    saferoot_mount *m;
    char type[128] = "";
    struct stat st;
    int fd;

    /* The container's rootfs: evil -> /, and deeper -> ../../../.. */
    CHECK(symlink("/", path_join(dir, "/evil")) == 0);
    CHECK(symlink("../../../../../..", path_join(dir, "/deeper")) == 0);
    CHECK(stat("/x", &st) != 0 && errno == ENOENT); /* nothing there on the host */
    r = open_root(dir);

    /* mkdir through the link creates <rootfs>/x, not /x. */
    CHECK_OK(saferoot_mkdir_all(r, "/evil/x", 0755, NULL, &err) == 0, err);
    CHECK(stat(path_join(dir, "/x"), &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(stat("/x", &st) != 0 && errno == ENOENT);

    /* The mount lands inside the root. */
    m = make_tmpfs(NULL, 0);
    CHECK_OK(saferoot_mount_attach_at(m, r, "/evil/x", &err) == 0, err);
    CHECK(mounts_at(path_join(dir, "/x"), type, sizeof(type)) == 1);
    CHECK(strcmp(type, "tmpfs") == 0);
    CHECK(mounts_at("/x", NULL, 0) == 0);
    CHECK(stat("/x", &st) != 0 && errno == ENOENT);
    CHECK(write_file(path_join(dir, "/x/marker"), "inside") == 0);
    CHECK(access("/x/marker", F_OK) != 0);
    CHECK_OK(saferoot_mount_detach(m, &err) == 0, err);
    saferoot_mount_free(m);

    /* Through ".." games and a relative link: the same. */
    fd = saferoot_resolve(r, "/deeper/../../evil/../x", &err);
    CHECK_OK(fd >= 0, err);
    m = make_tmpfs(NULL, 0);
    CHECK_OK(saferoot_mount_attach(m, fd, &err) == 0, err);
    CHECK(mounts_at(path_join(dir, "/x"), NULL, 0) == 1);
    CHECK(mounts_at("/x", NULL, 0) == 0);
    CHECK_OK(saferoot_mount_detach(m, &err) == 0, err);
    saferoot_mount_free(m);
    close(fd);

    /* A magic link is refused outright. */
    CHECK(symlink("/proc/self/root", path_join(dir, "/magic")) == 0);
    CHECK(mkdir(path_join(dir, "/proc"), 0755) == 0);
    m = saferoot_mount_fs("proc", NULL, &err);
    CHECK_OK(m != NULL, err);
    CHECK_OK(saferoot_mount_attach_at(m, r, "/proc", &err) == 0, err);
    fd = saferoot_resolve(r, "/proc/self/root/etc", &err);
    CHECK(fd == -ELOOP || fd == -EXDEV);
    CHECK(err != NULL && (saferoot_error_errno(err) == ELOOP || saferoot_error_errno(err) == EXDEV));
    fd = saferoot_resolve(r, "/magic/etc", NULL);
    CHECK(fd == -ELOOP || fd == -EXDEV);
    if (fd >= 0)
        close(fd);
    saferoot_error_free(err);
    err = NULL;
    CHECK_OK(saferoot_mount_detach(m, &err) == 0, err);
    saferoot_mount_free(m);
    saferoot_root_free(r);
}

/* ---- mount table ------------------------------------------------------------ */

static void check_table(saferoot_mount_table *t, const char *mp)
{
    const struct saferoot_mount_entry *e;
    size_t i, n = saferoot_mount_table_len(t);
    CHECK(n > 0);
    for (i = 0; i < n; i++) {
        e = saferoot_mount_table_entry(t, i);
        CHECK(e != NULL && e->size >= sizeof(*e) && e->mount_point != NULL && e->root != NULL &&
              e->fs_type != NULL);
    }
    CHECK(saferoot_mount_table_entry(t, n) == NULL);
    CHECK(saferoot_mount_table_find(t, "/") != NULL);
    e = saferoot_mount_table_find(t, mp);
    CHECK(e != NULL);
    if (e != NULL) {
        CHECK(strcmp(e->fs_type, "tmpfs") == 0);
        CHECK(e->source != NULL && strcmp(e->source, "saferoot-test") == 0);
        CHECK((e->attrs & SAFEROOT_MOUNT_ATTR_RDONLY) != 0);
        CHECK(e->super_options != NULL && strstr(e->super_options, "size=") != NULL);
        CHECK(e->shared_group == 0 && e->master_group == 0);
    }
    CHECK(saferoot_mount_table_find(t, "/no/such/mount/point") == NULL);
    CHECK(saferoot_mount_table_find(t, NULL) == NULL);
    CHECK(saferoot_mount_table_find(t, BAD_UTF8) == NULL);
}

static void test_mount_table_sees_attached_mounts(void)
{
    NEED_MOUNT_API();
    saferoot_error *err = NULL;
    const char *dir = new_dir("/table");
    saferoot_root *r = open_root(dir);
    saferoot_mount *m = make_tmpfs("size=1m", SAFEROOT_MOUNT_ATTR_RDONLY);
    saferoot_mount_table *t;

    CHECK_OK(saferoot_mkdir_all(r, "/m", 0755, NULL, &err) == 0, err);
    CHECK_OK(saferoot_mount_attach_at(m, r, "/m", &err) == 0, err);

    t = saferoot_mount_table_read(SAFEROOT_TABLE_AUTO, &err);
    CHECK_OK(t != NULL, err);
    if (t != NULL)
        check_table(t, path_join(dir, "/m"));
    saferoot_mount_table_free(t);

    t = saferoot_mount_table_read(SAFEROOT_TABLE_MOUNTINFO, &err);
    CHECK_OK(t != NULL, err);
    if (t != NULL)
        check_table(t, path_join(dir, "/m"));
    saferoot_mount_table_free(t);

    if (saferoot_has_feature(SAFEROOT_FEATURE_STATMOUNT) == 1) {
        t = saferoot_mount_table_read(SAFEROOT_TABLE_STATMOUNT, &err);
        CHECK_OK(t != NULL, err);
        if (t != NULL) {
            check_table(t, path_join(dir, "/m"));
            CHECK(saferoot_mount_table_entry(t, 0)->unique_id != 0);
        }
        saferoot_mount_table_free(t);
    }

    t = saferoot_mount_table_read_pid((int)getpid(), SAFEROOT_TABLE_MOUNTINFO, &err);
    CHECK_OK(t != NULL, err);
    if (t != NULL)
        check_table(t, path_join(dir, "/m"));
    saferoot_mount_table_free(t);

    CHECK_OK(saferoot_mount_detach(m, &err) == 0, err);
    saferoot_mount_free(m);
    saferoot_root_free(r);
}

static void test_mount_table_read_and_parse(void)
{
    saferoot_error *err = NULL;
    saferoot_mount_table *t;
    static const char text[] = "22 1 0:21 / / rw,relatime shared:1 - tmpfs none rw\n";
    int b;

    t = saferoot_mount_table_read(SAFEROOT_TABLE_AUTO, &err);
    CHECK_OK(t != NULL, err);
    b = saferoot_mount_table_backend(t);
    CHECK(b == SAFEROOT_TABLE_STATMOUNT || b == SAFEROOT_TABLE_MOUNTINFO);
    CHECK(saferoot_mount_table_len(t) > 0);
    CHECK(saferoot_mount_table_find(t, "/") != NULL);
    saferoot_mount_table_free(t);

    t = saferoot_mount_table_read(SAFEROOT_TABLE_MOUNTINFO, &err);
    CHECK_OK(t != NULL, err);
    CHECK(saferoot_mount_table_backend(t) == SAFEROOT_TABLE_MOUNTINFO);
    CHECK(saferoot_mount_table_find(t, "/") != NULL);
    CHECK(saferoot_mount_table_find(t, base) != NULL); /* the scratch tmpfs */
    saferoot_mount_table_free(t);

    t = saferoot_mount_table_read(SAFEROOT_TABLE_STATMOUNT, &err);
    if (saferoot_has_feature(SAFEROOT_FEATURE_STATMOUNT) == 1) {
        CHECK_OK(t != NULL, err);
        CHECK(saferoot_mount_table_backend(t) == SAFEROOT_TABLE_STATMOUNT);
        CHECK(saferoot_mount_table_find(t, base) != NULL);
    } else {
        /* No silent fallback when statmount was asked for. */
        CHECK(t == NULL);
        CHECK_ERR(err, ENOSYS, SAFEROOT_ERRKIND_UNSUPPORTED);
    }
    saferoot_mount_table_free(t);

    t = saferoot_mount_table_read_pid((int)getpid(), SAFEROOT_TABLE_AUTO, &err);
    CHECK_OK(t != NULL && saferoot_mount_table_len(t) > 0, err);
    saferoot_mount_table_free(t);

    CHECK(saferoot_mount_table_read(3, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_table_read_pid(0, SAFEROOT_TABLE_AUTO, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_table_read_pid(-4, SAFEROOT_TABLE_AUTO, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_table_read_pid(1, 42, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);

    t = saferoot_mount_table_parse_mountinfo(text, strlen(text), &err);
    CHECK_OK(t != NULL, err);
    CHECK(saferoot_mount_table_len(t) == 1);
    CHECK(saferoot_mount_table_entry(t, 0) != NULL && saferoot_mount_table_entry(t, 0)->id == 22 &&
          saferoot_mount_table_entry(t, 0)->shared_group == 1);
    saferoot_mount_table_free(t);
    t = saferoot_mount_table_parse_mountinfo(NULL, 0, &err);
    CHECK_OK(t != NULL && saferoot_mount_table_len(t) == 0, err);
    saferoot_mount_table_free(t);
    CHECK(saferoot_mount_table_parse_mountinfo("garbage line\n", 13, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_table_parse_mountinfo(NULL, 10, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);

    CHECK(saferoot_mount_table_len(NULL) == 0);
    CHECK(saferoot_mount_table_backend(NULL) == -EINVAL);
    CHECK(saferoot_mount_table_entry(NULL, 0) == NULL);
    CHECK(saferoot_mount_table_find(NULL, "/") == NULL);
    saferoot_mount_table_free(NULL);
}

/* Argument checking of every mount function, which happens before any
 * system call and so also runs without the mount API. */
static void test_mount_bad_input(void)
{
    saferoot_error *err = NULL;
    const char *dir = new_dir("/badinput");
    saferoot_root *r = open_root(dir);
    struct saferoot_fs_options o;
    struct {
        struct saferoot_fs_options base;
        uint64_t future_field;
    } bigger;
    uint64_t attrs = 0;
    saferoot_mount *m;
    int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

    CHECK(dfd >= 0);
    /* Only a detached mount can be adopted; a plain directory fd is refused
     * (statx, which needs no mount API, tells it is not a mount's root). */
    m = saferoot_mount_from_fd(dfd, &err);
    CHECK(m == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    if (mount_api) {
        m = make_tmpfs(NULL, 0);
    } else {
        /* Without the mount API (valgrind) a handle for the argument checks
         * below: the root mount of the namespace the suite started in is
         * accepted, as it is not attached in this one; the kernel would
         * refuse any change made through it. */
        m = saferoot_mount_from_fd(outer_root_fd, &err);
        CHECK_OK(m != NULL, err);
    }
    CHECK(saferoot_mount_from_fd(-1, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_from_fd(987654, &err) == NULL);
    CHECK_ERR(err, EBADF, INVALID);

    /* saferoot_mount_fs: strings, struct sizes, attributes. */
    CHECK(saferoot_mount_fs(NULL, NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_fs(BAD_UTF8, NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_fs("", NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_fs("tmp/fs", NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    memset(&o, 0, sizeof(o));
    o.size = 0;
    CHECK(saferoot_mount_fs("tmpfs", &o, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    o.size = SAFEROOT_FS_OPTIONS_SIZE_VER0 - 1;
    CHECK(saferoot_mount_fs("tmpfs", &o, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    memset(&bigger, 0, sizeof(bigger));
    bigger.base.size = sizeof(bigger);
    bigger.future_field = 0xff;
    CHECK(saferoot_mount_fs("tmpfs", &bigger.base, &err) == NULL);
    CHECK_ERR(err, E2BIG, INVALID);
    o.size = sizeof(o);
    o.attrs = 1ULL << 50;
    CHECK(saferoot_mount_fs("tmpfs", &o, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    o.attrs = SAFEROOT_MOUNT_ATTR_NOATIME | SAFEROOT_MOUNT_ATTR_RELATIME;
    CHECK(saferoot_mount_fs("tmpfs", &o, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    o.attrs = 0;
    o.data = "a,,b";
    CHECK(saferoot_mount_fs("tmpfs", &o, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    o.data = BAD_UTF8;
    CHECK(saferoot_mount_fs("tmpfs", &o, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    o.data = NULL;
    o.source = BAD_UTF8;
    CHECK(saferoot_mount_fs("tmpfs", &o, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);

    /* Clones. */
    CHECK(saferoot_mount_clone(NULL, 0, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_clone(BAD_UTF8, 0, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_clone("", 0, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_clone(dir, 0x80, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_clone_fd(-1, 0, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_clone_fd(987654, 0, &err) == NULL);
    CHECK_ERR(err, EBADF, INVALID);
    CHECK(saferoot_mount_clone_fd(dfd, SAFEROOT_CLONE_NOFOLLOW, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_clone_in_root(NULL, "/", 0, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_clone_in_root(r, NULL, 0, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_clone_in_root(r, BAD_UTF8, 0, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_clone_in_root(r, "relative", 0, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_clone_in_root(r, "/", 0x10, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);

    /* Attributes, propagation, idmap. */
    CHECK(saferoot_mount_set_attr(NULL, 0, 0, 0, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_set_attr(m, 1ULL << 33, 0, 0, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_set_attr(m, 0, 1ULL << 63, 0, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_set_attr(m, 0, 0, 0x2, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_set_attr(m, SAFEROOT_MOUNT_ATTR_NODEV, SAFEROOT_MOUNT_ATTR_NODEV, 0, &err) ==
          -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_set_attr(m, SAFEROOT_MOUNT_ATTR_NOATIME | SAFEROOT_MOUNT_ATTR_STRICTATIME, 0,
                                  0, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_set_propagation(NULL, SAFEROOT_PROPAGATION_PRIVATE, 0, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_set_propagation(m, 0, 0, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_set_propagation(m, 5, 0, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_set_propagation(m, SAFEROOT_PROPAGATION_SLAVE, 0x100, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_set_idmap(NULL, 0, 0, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_set_idmap(m, -1, 0, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_set_idmap(m, dfd, 0x8, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_get_attr(NULL, &attrs, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_get_attr(m, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);

    /* Attaching. */
    CHECK(saferoot_mount_attach(NULL, dfd, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_attach(m, -1, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_attach(m, 987654, &err) == -EBADF);
    CHECK_ERR(err, EBADF, INVALID);
    CHECK(saferoot_mount_attach_beneath(NULL, dfd, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_attach_beneath(m, -3, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_attach_at(NULL, r, "/", &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_attach_at(m, NULL, "/", &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_attach_at(m, r, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_attach_at(m, r, BAD_UTF8, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_attach_at(m, r, "relative", &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_detach(NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_detach(m, &err) == -EINVAL); /* not attached */
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_root(NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_into_fd(NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_mount_fd(NULL) == -EINVAL);
    CHECK(saferoot_mount_fd(m) >= 0 && saferoot_mount_fd(m) != dfd);
    CHECK(saferoot_unmount_in_root(NULL, "/", &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_unmount_in_root(r, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_unmount_in_root(r, BAD_UTF8, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_unmount_in_root(r, "relative", &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);

    saferoot_mount_free(m);
    CHECK(fd_is_open(dfd));
    close(dfd);
    saferoot_root_free(r);
}

static void check_mount_api_unsupported(void)
{
    saferoot_error *err = NULL;
    CHECK(saferoot_mount_fs("tmpfs", NULL, &err) == NULL);
    CHECK_ERR(err, ENOSYS, SAFEROOT_ERRKIND_UNSUPPORTED);
    CHECK(saferoot_mount_clone("/", SAFEROOT_CLONE_RECURSIVE, &err) == NULL);
    CHECK_ERR(err, ENOSYS, SAFEROOT_ERRKIND_UNSUPPORTED);
    CHECK(saferoot_mount_clone_fd(0, 0, &err) == NULL);
    CHECK_ERR(err, ENOSYS, SAFEROOT_ERRKIND_UNSUPPORTED);
}

/* ---- assembled roots ------------------------------------------------------- */

/* A small OCI config: root "rootfs" in the bundle, read-only, with proc,
 * a tmpfs /dev (saferoot adds the default devices) and /tmp, masked paths
 * (one that exists, one that may not), a read-only path, and a working
 * directory. */
static const char CONFIG_JSON[] =
    "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\",\"readonly\":true},"
    "\"process\":{\"cwd\":\"/work\",\"args\":[\"sh\"],\"user\":{\"uid\":0,\"gid\":0}},"
    "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
    "{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\","
    "\"options\":[\"nosuid\",\"strictatime\",\"mode=755\",\"size=65536k\"]},"
    "{\"destination\":\"/tmp\",\"type\":\"tmpfs\",\"source\":\"tmpfs\","
    "\"options\":[\"nosuid\",\"nodev\",\"size=1m\"]}],"
    "\"linux\":{\"maskedPaths\":[\"/etc/secret\",\"/proc/kcore\"],\"readonlyPaths\":[\"/proc/sys\"]}}";

/* A bundle directory: config.json and a rootfs with a few directories. */
static const char *make_bundle(const char *name)
{
    const char *b = new_dir(name);
    static const char *dirs[] = {"/rootfs", "/rootfs/proc", "/rootfs/dev", "/rootfs/tmp",
                                 "/rootfs/etc", "/rootfs/work"};
    size_t i;
    for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
        if (mkdir(path_join(b, dirs[i]), 0755) != 0 && errno != EEXIST)
            perror(dirs[i]);
    if (write_file(path_join(b, "/rootfs/etc/hostname"), "container\n") != 0 ||
        write_file(path_join(b, "/rootfs/etc/secret"), "secret\n") != 0 ||
        write_file(path_join(b, "/config.json"), CONFIG_JSON) != 0)
        perror("bundle files");
    return b;
}

static void test_oci_validate(void)
{
    saferoot_error *err = NULL;
    const char *b = make_bundle("/validate");
    static const char relative_dest[] =
        "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"},"
        "\"mounts\":[{\"destination\":\"proc\",\"type\":\"proc\",\"source\":\"proc\"}]}";

    CHECK_OK(saferoot_oci_validate(CONFIG_JSON, b, &err) == 0, err);
    CHECK(saferoot_oci_validate("{", b, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_oci_validate("[1,2]", b, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_oci_validate(relative_dest, b, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_oci_validate(NULL, b, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_oci_validate(CONFIG_JSON, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_oci_validate(BAD_UTF8, b, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_oci_validate(CONFIG_JSON, BAD_UTF8, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
}

/* Argument checking of the assembled-root functions; nothing is mounted. */
static void test_rootfs_bad_input(void)
{
    saferoot_error *err = NULL;
    const char *b = make_bundle("/rootfs-bad");
    struct saferoot_assemble_options o;
    struct {
        struct saferoot_assemble_options base;
        uint64_t future_field;
    } bigger;

    memset(&o, 0, sizeof(o));
    o.size = 8;
    CHECK(saferoot_rootfs_assemble_bundle(b, &o, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    memset(&bigger, 0, sizeof(bigger));
    bigger.base.size = sizeof(bigger);
    bigger.future_field = 1;
    CHECK(saferoot_rootfs_assemble_bundle(b, &bigger.base, &err) == NULL);
    CHECK_ERR(err, E2BIG, INVALID);
    o.size = sizeof(o);
    o.flags = 0x40;
    CHECK(saferoot_rootfs_assemble_oci(CONFIG_JSON, b, &o, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    o.flags = 0;
    o.strategy = 7;
    CHECK(saferoot_rootfs_assemble_oci(CONFIG_JSON, b, &o, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    o.strategy = 0;
    o.reserved = 1;
    CHECK(saferoot_rootfs_assemble_oci(CONFIG_JSON, b, &o, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    o.reserved = 0;
    o.flags = SAFEROOT_ASSEMBLE_CONSOLE;
    o.console_fd = -1;
    CHECK(saferoot_rootfs_assemble_oci(CONFIG_JSON, b, &o, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_rootfs_assemble_oci("{", b, NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_rootfs_assemble_oci(NULL, b, NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_rootfs_assemble_oci(CONFIG_JSON, NULL, NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_rootfs_assemble_oci(BAD_UTF8, b, NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_rootfs_assemble_bundle(NULL, NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_rootfs_assemble_bundle(BAD_UTF8, NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_rootfs_assemble_bundle(path_join(b, "/rootfs"), NULL, &err) == NULL);
    if (mount_api) {
        CHECK_ERR(err, ENOENT, SAFEROOT_ERRKIND_NOT_FOUND); /* no config.json there */
    } else {
        /* Under valgrind openat2, which finds config.json inside the
         * bundle, is hidden too: the missing feature is what is reported. */
        CHECK_ERR(err, ENOSYS, SAFEROOT_ERRKIND_UNSUPPORTED);
    }
    CHECK(mounts_at(path_join(b, "/rootfs"), NULL, 0) == 0);
    CHECK(mounts_at(path_join(b, "/rootfs/proc"), NULL, 0) == 0);

    CHECK(saferoot_rootfs_root(NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_rootfs_fd(NULL) == -EINVAL);
    CHECK(saferoot_rootfs_strategy(NULL) == -EINVAL);
    CHECK(saferoot_rootfs_detach(NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_rootfs_enter(NULL, SAFEROOT_ENTER_CHROOT, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    saferoot_rootfs_free(NULL);
}

static void test_rootfs_assemble_and_detach(void)
{
    NEED_MOUNT_API();
    saferoot_error *err = NULL;
    const char *b = make_bundle("/assemble");
    const char *rootfs = path_join(b, "/rootfs");
    struct saferoot_assemble_options o;
    saferoot_rootfs *rf;
    saferoot_root *inner;
    char type[128] = "";
    int fd, strategy;

    rf = saferoot_rootfs_assemble_bundle(b, NULL, &err);
    CHECK_OK(rf != NULL, err);
    strategy = saferoot_rootfs_strategy(rf);
    CHECK(strategy == SAFEROOT_STRATEGY_DETACHED || strategy == SAFEROOT_STRATEGY_IN_PLACE);
    if (saferoot_has_feature(SAFEROOT_FEATURE_DETACHED_MOUNT_TARGETS) == 1)
        CHECK(strategy == SAFEROOT_STRATEGY_DETACHED);
    CHECK(saferoot_rootfs_fd(rf) >= 0);
    CHECK(mounts_at(path_join(b, "/rootfs"), NULL, 0) >= 1);
    CHECK(mounts_at(path_join(b, "/rootfs/proc"), type, sizeof(type)) == 1 &&
          strcmp(type, "proc") == 0);
    CHECK(mounts_at(path_join(b, "/rootfs/dev"), type, sizeof(type)) == 1 &&
          strcmp(type, "tmpfs") == 0);
    CHECK(mounts_at(path_join(b, "/rootfs/tmp"), NULL, 0) == 1);
    /* Masked and read-only paths. */
    CHECK(mounts_at(path_join(b, "/rootfs/etc/secret"), NULL, 0) == 1);
    {
        struct stat st;
        CHECK(stat(path_join(b, "/rootfs/etc/secret"), &st) == 0 && S_ISCHR(st.st_mode) &&
              st.st_rdev == makedev(1, 3));
    }
    CHECK(mounts_at(path_join(b, "/rootfs/proc/sys"), NULL, 0) >= 1);
    /* The root is read-only; /tmp is not. */
    CHECK(write_file(path_join(b, "/rootfs/etc/new"), "x") != 0 && errno == EROFS);
    CHECK(write_file(path_join(b, "/rootfs/tmp/new"), "x") == 0);
    /* Default devices. */
    CHECK(access(path_join(b, "/rootfs/dev/null"), F_OK) == 0);

    inner = saferoot_rootfs_root(rf, &err);
    CHECK_OK(inner != NULL, err);
    fd = saferoot_resolve(inner, "/etc/hostname", &err);
    CHECK_OK(fd >= 0, err);
    close(fd);
    saferoot_root_free(inner);

    CHECK_OK(saferoot_rootfs_detach(rf, &err) == 0, err);
    CHECK(mounts_at(path_join(b, "/rootfs/proc"), NULL, 0) == 0);
    CHECK(mounts_at(path_join(b, "/rootfs"), NULL, 0) == 0);
    /* Detached: only free is left. */
    CHECK(saferoot_rootfs_detach(rf, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_rootfs_enter(rf, SAFEROOT_ENTER_CHROOT, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_rootfs_root(rf, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_rootfs_fd(rf) == -EINVAL);
    CHECK(saferoot_rootfs_strategy(rf) == -EINVAL);
    saferoot_rootfs_free(rf);

    /* From config text, in place. */
    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    o.strategy = SAFEROOT_STRATEGY_IN_PLACE;
    rf = saferoot_rootfs_assemble_oci(CONFIG_JSON, b, &o, &err);
    CHECK_OK(rf != NULL, err);
    CHECK(saferoot_rootfs_strategy(rf) == SAFEROOT_STRATEGY_IN_PLACE);
    CHECK(mounts_at(path_join(b, "/rootfs/tmp"), NULL, 0) == 1);
    CHECK(saferoot_rootfs_enter(rf, 0, &err) == -EINVAL); /* unknown method */
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_rootfs_enter(rf, 4, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK_OK(saferoot_rootfs_detach(rf, &err) == 0, err);
    saferoot_rootfs_free(rf);
    CHECK(mounts_at(rootfs, NULL, 0) == 0);

    /* A spec error changes nothing. */
    CHECK(saferoot_rootfs_assemble_oci(
              "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"},\"mounts\":"
              "[{\"destination\":\"/tmp\",\"type\":\"tmpfs\",\"options\":[\"bogus-option=1\"]}]}",
              b, NULL, &err) == NULL);
    CHECK(err != NULL);
    saferoot_error_free(err);
    err = NULL;
    CHECK(mounts_at(rootfs, NULL, 0) == 0);
    CHECK(mounts_at(path_join(b, "/rootfs/tmp"), NULL, 0) == 0);
}

/* In a child (entering changes the process's root): a mount namespace of
 * its own, assemble, enter with `method`, then look around. Exit codes
 * name the step that failed. */
static int enter_child(const char *bundle, int method)
{
    saferoot_error *err = NULL;
    saferoot_rootfs *rf;
    char buf[64];
    int fd;
    ssize_t n;

    if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0)
        return 10;
    rf = saferoot_rootfs_assemble_bundle(bundle, NULL, &err);
    if (rf == NULL) {
        fprintf(stderr, "  child: assemble: %s\n", saferoot_error_message(err));
        return 11;
    }
    if (saferoot_rootfs_enter(rf, (uint32_t)method, &err) != 0) {
        fprintf(stderr, "  child: enter: %s\n", saferoot_error_message(err));
        return 12;
    }
    saferoot_rootfs_free(rf);
    fd = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 13;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n != 10 || memcmp(buf, "container\n", 10) != 0)
        return 14;
    if (getcwd(buf, sizeof(buf)) == NULL || strcmp(buf, "/work") != 0)
        return 15;
    /* The host's side is out of reach by path. */
    if (access(bundle, F_OK) == 0)
        return 16;
    if (mounts_at("/proc", buf, sizeof(buf)) != 1 || strcmp(buf, "proc") != 0)
        return 17;
    if (access("/dev/null", W_OK) != 0)
        return 18;
    return 0;
}

static void test_rootfs_enter(void)
{
    NEED_MOUNT_API();
    const char *b = make_bundle("/enter");
    static const int methods[] = {SAFEROOT_ENTER_PIVOT_ROOT, SAFEROOT_ENTER_MOVE_ROOT,
                                  SAFEROOT_ENTER_CHROOT};
    size_t i;

    for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        int status = -1;
        pid_t pid;
        fflush(NULL);
        pid = fork();
        if (pid == 0)
            _exit(enter_child(b, methods[i]));
        CHECK(pid > 0);
        CHECK(waitpid(pid, &status, 0) == pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fprintf(stderr, "  enter method %d: child status %#x\n", methods[i], status);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    /* The children's namespaces are gone; nothing is left here. */
    CHECK(mounts_at(path_join(b, "/rootfs"), NULL, 0) == 0);
}

/* In a child: assemble the bundle, make the lock namespace, enter, lock
 * (unless `lock` is 0), then try to undo what saferoot set. Returns 0 when
 * every attempt failed as it must (lock = 1), or when the remount worked
 * (lock = 0: the checks can tell). Other codes name the failing step. */
static int lock_child(const char *bundle, int lock)
{
    saferoot_error *err = NULL;
    saferoot_rootfs *rf;
    int userns;

    if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0)
        return 10;
    rf = saferoot_rootfs_assemble_bundle(bundle, NULL, &err);
    if (rf == NULL)
        return 11;
    userns = saferoot_lock_userns_new(&err);
    if (userns < 0) {
        fprintf(stderr, "  child: lock userns: %s\n", saferoot_error_message(err));
        return 12;
    }
    if (!is_cloexec(userns))
        return 13;
    if (saferoot_rootfs_enter(rf, SAFEROOT_ENTER_PIVOT_ROOT, &err) != 0)
        return 14;
    saferoot_rootfs_free(rf);
    if (!lock)
        return mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND, NULL) == 0 ? 0 : 15;
    if (saferoot_lock_mounts(userns, &err) != 0) {
        fprintf(stderr, "  child: lock: %s\n", saferoot_error_message(err));
        return 16;
    }
    close(userns);
    /* Still CAP_SYS_ADMIN over the (new) mount namespace: mounting works. */
    if (mount("t", "/tmp", "tmpfs", 0, NULL) != 0)
        return 17;
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND, NULL) == 0)
        return 18; /* the read-only root became writable */
    if (umount2("/etc/secret", MNT_DETACH) == 0)
        return 19; /* a mask came off */
    if (umount2("/proc/sys", MNT_DETACH) == 0)
        return 20; /* the read-only /proc/sys came off */
    if (mount(NULL, "/proc/sys", NULL, MS_REMOUNT | MS_BIND, NULL) == 0)
        return 21;
    if (access("/etc/hostname", W_OK) == 0)
        return 22;
    return 0;
}

static void test_lock_mounts(void)
{
    NEED_MOUNT_API();
    const char *b = make_bundle("/lock");
    saferoot_error *err = NULL;
    int lock, fd;

    for (lock = 1; lock >= 0; lock--) {
        int status = -1;
        pid_t pid;
        fflush(NULL);
        pid = fork();
        if (pid == 0)
            _exit(lock_child(b, lock));
        CHECK(pid > 0);
        CHECK(waitpid(pid, &status, 0) == pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fprintf(stderr, "  lock=%d: child status %#x\n", lock, status);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    /* The caller's own user namespace is not its child: refused, and this
     * process stays where it is. */
    fd = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK(saferoot_lock_mounts(fd, &err) == -EINVAL);
    CHECK(saferoot_error_kind(err) == SAFEROOT_ERRKIND_INVALID_INPUT);
    saferoot_error_free(err);
    err = NULL;
    close(fd);
    CHECK(saferoot_lock_mounts(-1, &err) == -EINVAL);
    saferoot_error_free(err);
    CHECK(mounts_at(path_join(b, "/rootfs"), NULL, 0) == 0);
}

/* ---- minimal mount namespaces and host views ------------------------------ */

/* A new minimal namespace pinned at `pin`. The kernel refuses (ELOOP) to
 * pin a namespace whose id is not above the id of the pinning thread's
 * namespace, and Linux 6.18 hands out namespace ids from per-CPU batches:
 * a namespace made on one CPU can get a lower id than one made earlier on
 * another. So the namespace is made with this thread (and the library's
 * helper thread, which inherits it) bound to one CPU after the other until
 * one can be pinned: on the CPU whose batch gave this namespace its id,
 * later ids are higher. Returns NULL (after reporting) when none could be
 * pinned. */
static saferoot_minimal_ns *create_pinned(const char *pin)
{
    cpu_set_t allowed, one;
    int cpu, round;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
        perror("  sched_getaffinity");
        return NULL;
    }
    for (round = 0; round < 2; round++) {
        for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
            saferoot_error *err = NULL;
            saferoot_minimal_ns *ns;
            if (!CPU_ISSET(cpu, &allowed))
                continue;
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            if (sched_setaffinity(0, sizeof(one), &one) != 0) {
                perror("  sched_setaffinity");
                return NULL;
            }
            ns = saferoot_minimal_ns_create(&err);
            if (sched_setaffinity(0, sizeof(allowed), &allowed) != 0)
                perror("  sched_setaffinity (restore)");
            if (ns == NULL) {
                fprintf(stderr, "  create: %s\n", saferoot_error_message(err));
                saferoot_error_free(err);
                return NULL;
            }
            if (saferoot_minimal_ns_pin(ns, pin, &err) == 0)
                return ns;
            if (saferoot_error_errno(err) != ELOOP) {
                fprintf(stderr, "  pin: %s\n", saferoot_error_message(err));
                saferoot_error_free(err);
                saferoot_minimal_ns_free(ns);
                return NULL;
            }
            /* A failed pin leaves nothing behind. */
            CHECK(access(pin, F_OK) != 0 && errno == ENOENT);
            saferoot_error_free(err);
            saferoot_minimal_ns_free(ns);
        }
    }
    fprintf(stderr, "  pin: ELOOP on every CPU\n");
    return NULL;
}

static void unpin(const char *pin)
{
    CHECK(umount2(pin, MNT_DETACH) == 0);
    CHECK(unlink(pin) == 0);
}

/* The inode of the mount namespace behind an nsfs fd. */
static ino_t ns_inode(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

static int count_mounts(void)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[4096];
    int n = 0;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        n++;
    fclose(f);
    return n;
}

static void test_minimal_ns_bad_input(void)
{
    saferoot_error *err = NULL;
    const char *paths[2] = {"/proc", NULL};
    uint32_t scopes[2] = {SAFEROOT_SCOPE_MOUNT, SAFEROOT_SCOPE_TREE};
    int fd;

    CHECK(saferoot_minimal_ns_open(NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_minimal_ns_open(BAD_UTF8, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_minimal_ns_from_fd(-1, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_minimal_ns_pin(NULL, "/x", &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_minimal_ns_enter(NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_minimal_ns_fd(NULL) == -EINVAL);
    CHECK(saferoot_host_view_open(NULL, paths, scopes, 1, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_host_view_open("/", NULL, scopes, 1, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_host_view_install(NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    saferoot_minimal_ns_free(NULL);
    saferoot_host_view_free(NULL);

    NEED_MOUNT_API();
    {
        const char *d = new_dir("/mns-bad");
        const char *missing[1];
        const char *relative[1] = {"proc"};
        const char *bad_utf8[1] = {BAD_UTF8};
        uint32_t unknown[1] = {3};
        int before = count_mounts();
        saferoot_minimal_ns *ns;

        missing[0] = path_join(d, "/missing");
        /* Not there; not a namespace; not a mount namespace. */
        CHECK(saferoot_minimal_ns_open(missing[0], &err) == NULL);
        CHECK_ERR(err, ENOENT, SAFEROOT_ERRKIND_NOT_FOUND);
        CHECK(saferoot_minimal_ns_open("/proc/self/ns/net", &err) == NULL);
        CHECK_ERR(err, EINVAL, INVALID);
        fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0);
        CHECK(saferoot_minimal_ns_from_fd(fd, &err) == NULL);
        CHECK_ERR(err, EINVAL, INVALID);
        CHECK(fd_is_open(fd)); /* borrowed, never closed */
        close(fd);
        CHECK(saferoot_minimal_ns_from_fd(fd, &err) == NULL); /* closed now */
        CHECK_ERR(err, EBADF, INVALID);
        CHECK(saferoot_minimal_ns_open(d, &err) == NULL);
        CHECK(err != NULL && saferoot_error_kind(err) != SAFEROOT_ERRKIND_NOT_FOUND);
        saferoot_error_free(err);
        err = NULL;

        /* Host views: bad paths and scopes are refused before anything is
         * opened. */
        CHECK(saferoot_host_view_open(d, paths, scopes, 2, &err) == NULL); /* paths[1] NULL */
        CHECK_ERR(err, EINVAL, INVALID);
        CHECK(saferoot_host_view_open(d, bad_utf8, NULL, 1, &err) == NULL);
        CHECK_ERR(err, EINVAL, INVALID);
        CHECK(saferoot_host_view_open(d, paths, unknown, 1, &err) == NULL);
        CHECK_ERR(err, EINVAL, INVALID);
        CHECK(saferoot_host_view_open(d, relative, NULL, 1, &err) == NULL);
        CHECK_ERR(err, EINVAL, INVALID);
        CHECK(saferoot_host_view_open(d, missing, NULL, 1, &err) == NULL);
        CHECK_ERR(err, ENOENT, SAFEROOT_ERRKIND_NOT_FOUND);
        CHECK(saferoot_host_view_open(missing[0], paths, scopes, 1, &err) == NULL);
        CHECK_ERR(err, ENOENT, SAFEROOT_ERRKIND_NOT_FOUND);

        /* Entering needs a thread whose fs context is its own; this
         * process is single-threaded, so that is not tested here. Pinning
         * onto an existing file is refused and leaves the file alone. */
        ns = saferoot_minimal_ns_create(&err);
        CHECK_OK(ns != NULL, err);
        if (ns != NULL) {
            const char *file = path_join(d, "/exists");
            CHECK(write_file(file, "keep\n") == 0);
            CHECK(saferoot_minimal_ns_pin(ns, file, &err) == -EEXIST);
            CHECK_ERR(err, EEXIST, SAFEROOT_ERRKIND_ALREADY_EXISTS);
            CHECK(access(file, F_OK) == 0);
            CHECK(mounts_at(file, NULL, 0) == 0);
            saferoot_minimal_ns_free(ns);
        }
        CHECK(count_mounts() == before);
    }
}

static void test_minimal_ns_pin_and_open(void)
{
    NEED_MOUNT_API();
    const char *d = new_dir("/mns-pin");
    char pin[PATH_MAX], type[64] = "";
    saferoot_error *err = NULL;
    saferoot_minimal_ns *ns, *again, *copy;
    int fd;

    snprintf(pin, sizeof(pin), "%s/ns", d);
    ns = create_pinned(pin);
    CHECK(ns != NULL);
    if (ns == NULL)
        return;
    fd = saferoot_minimal_ns_fd(ns);
    CHECK(fd >= 0 && is_cloexec(fd));
    /* The pin is an nsfs mount on a new file. */
    CHECK(mounts_at(pin, type, sizeof(type)) == 1);
    CHECK(strcmp(type, "nsfs") == 0);

    /* Opened again by path and from the fd: the same namespace. */
    again = saferoot_minimal_ns_open(pin, &err);
    CHECK_OK(again != NULL, err);
    copy = saferoot_minimal_ns_from_fd(fd, &err);
    CHECK_OK(copy != NULL, err);
    if (again != NULL && copy != NULL) {
        CHECK(ns_inode(saferoot_minimal_ns_fd(again)) == ns_inode(fd));
        CHECK(ns_inode(saferoot_minimal_ns_fd(copy)) == ns_inode(fd));
        CHECK(saferoot_minimal_ns_fd(copy) != fd); /* its own duplicate */
    }
    /* Not the namespace this process is in. */
    {
        int self = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
        CHECK(self >= 0 && ns_inode(self) != ns_inode(fd));
        if (self >= 0)
            close(self);
    }
    /* A second pin at the same path is refused. */
    CHECK(saferoot_minimal_ns_pin(ns, pin, &err) == -EEXIST);
    CHECK_ERR(err, EEXIST, SAFEROOT_ERRKIND_ALREADY_EXISTS);
    CHECK(fd_is_open(fd));
    saferoot_minimal_ns_free(copy);
    saferoot_minimal_ns_free(again);
    saferoot_minimal_ns_free(ns);
    /* Freed handles; the pin keeps the namespace. */
    again = saferoot_minimal_ns_open(pin, &err);
    CHECK_OK(again != NULL, err);
    saferoot_minimal_ns_free(again);
    unpin(pin);
}

/* In a child: opens a host view of `dir` (recursively) and /proc (its one
 * mount), enters a private copy of `ns` (or of the namespace pinned at
 * `pin` when ns is NULL) and installs the view; then checks from inside
 * that the mount table holds exactly "/", "/proc" and `dir`. Returns 0, or
 * a code naming the failing step. */
static int host_view_child(saferoot_minimal_ns *ns, const char *pin, const char *dir)
{
    saferoot_error *err = NULL;
    const char *paths[2];
    uint32_t scopes[2] = {SAFEROOT_SCOPE_TREE, SAFEROOT_SCOPE_MOUNT};
    saferoot_host_view *view;
    char line[4096], cwd[PATH_MAX], marker[PATH_MAX];
    FILE *f;
    int n = 0, seen_root = 0, seen_proc = 0, seen_dir = 0, fd;

    paths[0] = dir;
    paths[1] = "/proc";
    if (ns == NULL) {
        ns = saferoot_minimal_ns_open(pin, &err);
        if (ns == NULL) {
            fprintf(stderr, "  child: open %s: %s\n", pin, saferoot_error_message(err));
            return 10;
        }
    }
    view = saferoot_host_view_open(dir, paths, scopes, 2, &err);
    if (view == NULL) {
        fprintf(stderr, "  child: host view: %s\n", saferoot_error_message(err));
        return 11;
    }
    if (saferoot_minimal_ns_enter(ns, &err) != 0) {
        fprintf(stderr, "  child: enter: %s\n", saferoot_error_message(err));
        return 12;
    }
    /* The minimal namespace alone: no procfs, no host paths. */
    if (access(dir, F_OK) == 0)
        return 13;
    if (saferoot_host_view_install(view, &err) != 0) {
        fprintf(stderr, "  child: install: %s\n", saferoot_error_message(err));
        return 14;
    }
    /* Used up. */
    if (saferoot_host_view_install(view, &err) != -EINVAL)
        return 15;
    saferoot_error_free(err);
    saferoot_host_view_free(view);

    f = fopen("/proc/self/mountinfo", "r");
    if (f == NULL)
        return 16;
    while (fgets(line, sizeof(line), f) != NULL) {
        char mp[PATH_MAX];
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
            return 17;
        n++;
        if (strcmp(mp, "/") == 0)
            seen_root++;
        else if (strcmp(mp, "/proc") == 0)
            seen_proc++;
        else if (strcmp(mp, dir) == 0)
            seen_dir++;
        else
            fprintf(stderr, "  child: unexpected mount %s\n", mp);
    }
    fclose(f);
    if (n != 3 || seen_root != 1 || seen_proc != 1 || seen_dir != 1) {
        fprintf(stderr, "  child: %d mounts (/ %d, /proc %d, %s %d)\n", n, seen_root, seen_proc,
                dir, seen_dir);
        return 18;
    }
    /* The host directory itself, with its files; nothing else of the host. */
    snprintf(marker, sizeof(marker), "%s/marker", dir);
    fd = open(marker, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 19;
    {
        char buf[16] = "";
        ssize_t r = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (r != 5 || strncmp(buf, "here\n", 5) != 0)
            return 20;
    }
    if (access("/etc/passwd", F_OK) == 0 || access("/usr", F_OK) == 0)
        return 21;
    if (getcwd(cwd, sizeof(cwd)) == NULL || strcmp(cwd, "/") != 0)
        return 22;
    return 0;
}

static void run_host_view_child(saferoot_minimal_ns *ns, const char *pin, const char *dir)
{
    int status = -1;
    pid_t pid;
    fflush(NULL);
    pid = fork();
    if (pid == 0)
        _exit(host_view_child(ns, pin, dir));
    CHECK(pid > 0);
    CHECK(waitpid(pid, &status, 0) == pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "  host view child (%s): status %#x\n", ns != NULL ? "handle" : "pin",
                status);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_minimal_ns_enter_with_host_view(void)
{
    NEED_MOUNT_API();
    const char *d = new_dir("/mns-enter");
    const char *view_dir = new_dir("/mns-enter/view");
    char pin[PATH_MAX];
    saferoot_minimal_ns *ns;
    int before;

    snprintf(pin, sizeof(pin), "%s/ns", d);
    CHECK(write_file(path_join(view_dir, "/marker"), "here\n") == 0);
    /* Clutter that the container must not get. */
    CHECK(mount("saferoot-clutter", new_dir("/mns-enter/clutter"), "tmpfs", 0, "size=16k") == 0);
    ns = create_pinned(pin);
    CHECK(ns != NULL);
    if (ns == NULL)
        return;
    before = count_mounts();
    /* Through the handle made here, then through the pin. */
    run_host_view_child(ns, NULL, view_dir);
    run_host_view_child(NULL, pin, view_dir);
    /* This namespace did not change. */
    CHECK(count_mounts() == before);
    saferoot_minimal_ns_free(ns);
    unpin(pin);
    CHECK(umount2(path_join(d, "/clutter"), MNT_DETACH) == 0);
}

/* ---- native specs and plans ------------------------------------------------- */

/* A saferoot RootfsSpec (not OCI) for the root "<b>/rootfs" of a bundle made
 * by make_bundle: proc, a small tmpfs /tmp, a read-only bind of the host
 * directory `data` onto /data, no /dev (saferoot adds /dev, /dev/pts and
 * /dev/shm), a masked file, a read-only root. Written into `buf`. */
static const char *native_spec(char *buf, size_t len, const char *b, const char *data)
{
    snprintf(buf, len,
             "{\"rootfs\":\"%s/rootfs\",\n"
             " \"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},\n"
             "  {\"destination\":\"/tmp\",\"type\":\"tmpfs\",\"source\":\"tmpfs\","
             "\"options\":[\"nosuid\",\"nodev\",\"size=1m\"]},\n"
             "  {\"destination\":\"/data\",\"type\":\"bind\",\"source\":\"%s\","
             "\"options\":[\"rbind\",\"ro\"]}],\n"
             " \"maskedPaths\":[\"/etc/secret\"],\"readonlyPaths\":[\"/proc/sys\"],\n"
             " \"readonlyRoot\":true,\"cwd\":\"/work\","
             "\"rootfsPropagation\":\"rprivate\"}",
             b, data);
    return buf;
}

/* Whether the options of the last mount at `path` in /proc/self/mountinfo
 * (the sixth field, the per-mount ones) start with "ro". */
static int mount_is_ro(const char *path)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[4096];
    int ro = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        char mp[PATH_MAX], opts[1024];
        if (sscanf(line, "%*s %*s %*s %*s %4095s %1023s", mp, opts) != 2)
            continue;
        if (strcmp(mp, path) == 0)
            ro = strncmp(opts, "ro", 2) == 0 && (opts[2] == '\0' || opts[2] == ',');
    }
    fclose(f);
    return ro;
}

/* The "destination" members of a plan's JSON text, in order, as one
 * space-separated string: a minimal reading that does not trust the
 * library (the test has no JSON parser). Returns the count. */
static int plan_destinations(const char *json, char *out, size_t len)
{
    static const char key[] = "\"destination\":\"";
    const char *p = json;
    size_t used = 0;
    int n = 0;
    out[0] = '\0';
    while ((p = strstr(p, key)) != NULL) {
        const char *start = p + strlen(key);
        const char *end = strchr(start, '"');
        if (end == NULL)
            return -1;
        if (used + (size_t)(end - start) + 2 > len)
            return -1;
        if (n > 0)
            out[used++] = ' ';
        memcpy(out + used, start, (size_t)(end - start));
        used += (size_t)(end - start);
        out[used] = '\0';
        n++;
        p = end;
    }
    return n;
}

/* Whether the message of `err` contains `needle`; prints it when not. */
static int message_has(const saferoot_error *err, const char *needle)
{
    if (err == NULL)
        return 0;
    if (strstr(saferoot_error_message(err), needle) != NULL)
        return 1;
    fprintf(stderr, "  message without \"%s\": %s\n", needle, saferoot_error_message(err));
    return 0;
}

/* Argument checking of saferoot_rootfs_assemble_spec and
 * saferoot_plan_json, bad JSON and refused specs; nothing is mounted. */
static void test_spec_bad_input(void)
{
    saferoot_error *err = NULL;
    const char *b = make_bundle("/spec-bad");
    char spec[4096];
    struct saferoot_assemble_options o;
    static const char syntax_error[] = "{\"rootfs\":\"/x\",\n  \"mounts\": }";
    static const char type_error[] = "{\"rootfs\":\"/x\",\n\n  \"readonlyRoot\": \"yes\"}";
    static const char unknown_field[] = "{\"rootfs\":\"/x\",\"readOnlyRoot\":true}";
    static const char relative_dest[] =
        "{\"rootfs\":\"/x\",\"mounts\":[{\"destination\":\"proc\",\"type\":\"proc\"}]}";
    char *s;

    native_spec(spec, sizeof(spec), b, b);

    /* NULL and invalid UTF-8. */
    CHECK(saferoot_rootfs_assemble_spec(NULL, NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_rootfs_assemble_spec(BAD_UTF8, NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_rootfs_assemble_spec(NULL, NULL, NULL) == NULL); /* NULL err is fine */
    CHECK(saferoot_plan_json(NULL, 0, NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_plan_json(BAD_UTF8, 0, NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_plan_json(NULL, 1, b, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_plan_json(CONFIG_JSON, 1, NULL, &err) == NULL); /* OCI needs a bundle */
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_plan_json(CONFIG_JSON, 1, BAD_UTF8, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_plan_json(spec, 0, b, &err) == NULL); /* a native spec takes no bundle */
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_plan_json(spec, 2, NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_plan_json(spec, -1, NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_plan_json(NULL, 0, NULL, NULL) == NULL);

    /* Bad options, checked like the other assemble entries. */
    memset(&o, 0, sizeof(o));
    o.size = 8;
    CHECK(saferoot_rootfs_assemble_spec(spec, &o, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    o.size = sizeof(o);
    o.strategy = 9;
    CHECK(saferoot_rootfs_assemble_spec(spec, &o, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);

    /* JSON errors give serde's line and column. */
    CHECK(saferoot_rootfs_assemble_spec(syntax_error, NULL, &err) == NULL);
    CHECK(message_has(err, "line 2 column 13"));
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_plan_json(syntax_error, 0, NULL, &err) == NULL);
    CHECK(message_has(err, "line 2 column 13"));
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_rootfs_assemble_spec(type_error, NULL, &err) == NULL);
    CHECK(message_has(err, "line 3 column"));
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_rootfs_assemble_spec("", NULL, &err) == NULL);
    CHECK(message_has(err, "line 1 column 0"));
    CHECK_ERR(err, EINVAL, INVALID);
    /* A misspelt field is refused, not ignored. */
    CHECK(saferoot_rootfs_assemble_spec(unknown_field, NULL, &err) == NULL);
    CHECK(message_has(err, "readOnlyRoot"));
    CHECK_ERR(err, EINVAL, INVALID);
    /* A spec that parses but does not plan. */
    CHECK(saferoot_rootfs_assemble_spec(relative_dest, NULL, &err) == NULL);
    CHECK(message_has(err, "mounts[0]"));
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_plan_json(relative_dest, 0, NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_plan_json("{\"rootfs\":\"relative\"}", 0, NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    /* An OCI config is not a RootfsSpec, and the other way round. */
    CHECK(saferoot_plan_json(CONFIG_JSON, 0, NULL, &err) == NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    s = saferoot_plan_json(spec, 1, b, &err);
    CHECK(s == NULL);
    saferoot_string_free(s);
    CHECK_ERR(err, EINVAL, INVALID);

    CHECK(mounts_at(path_join(b, "/rootfs"), NULL, 0) == 0);
    CHECK(mounts_at(path_join(b, "/rootfs/proc"), NULL, 0) == 0);
}

/* Plans as JSON, from a native spec and from an OCI config. Works without
 * the mount API (under valgrind too): planning changes nothing. */
static void test_plan_json(void)
{
    saferoot_error *err = NULL;
    const char *b = make_bundle("/plan");
    char spec[4096], dests[1024], want[PATH_MAX + 32];
    char *plan;

    native_spec(spec, sizeof(spec), b, b);
    plan = saferoot_plan_json(spec, 0, NULL, &err);
    CHECK_OK(plan != NULL, err);
    if (plan != NULL) {
        size_t n = strlen(plan);
        CHECK(n > 2 && plan[0] == '{' && plan[n - 1] == '}' && strchr(plan, '\n') == NULL);
        CHECK(plan_destinations(plan, dests, sizeof(dests)) == 6);
        if (strcmp(dests, "/dev /dev/pts /dev/shm /proc /tmp /data") != 0)
            fprintf(stderr, "  destinations: %s\n", dests);
        CHECK(strcmp(dests, "/dev /dev/pts /dev/shm /proc /tmp /data") == 0);
        snprintf(want, sizeof(want), "\"rootfs\":\"%s/rootfs\"", b);
        CHECK(strstr(plan, want) != NULL);
        CHECK(strstr(plan, "\"readonlyRoot\":true") != NULL);
        CHECK(strstr(plan, "\"rootfsPropagation\":\"rprivate\"") != NULL);
        CHECK(strstr(plan, "\"maskedPaths\":[\"/etc/secret\"]") != NULL);
        CHECK(strstr(plan, "\"kind\":\"bind\"") != NULL);
        saferoot_string_free(plan);
    }

    plan = saferoot_plan_json(CONFIG_JSON, 1, b, &err);
    CHECK_OK(plan != NULL, err);
    if (plan != NULL) {
        /* The config mounts /dev itself: nothing is added. */
        CHECK(plan_destinations(plan, dests, sizeof(dests)) == 3);
        CHECK(strcmp(dests, "/proc /dev /tmp") == 0);
        snprintf(want, sizeof(want), "\"rootfs\":\"%s/rootfs\"", b);
        CHECK(strstr(plan, want) != NULL);
        CHECK(strstr(plan, "\"cwd\":\"/work\"") != NULL);
        saferoot_string_free(plan);
    }
    saferoot_string_free(NULL);

    /* Nothing changed. */
    CHECK(mounts_at(path_join(b, "/rootfs"), NULL, 0) == 0);
    CHECK(mounts_at(path_join(b, "/rootfs/proc"), NULL, 0) == 0);
    CHECK(access(path_join(b, "/rootfs/data"), F_OK) != 0 && errno == ENOENT);
}

static void test_rootfs_assemble_spec(void)
{
    NEED_MOUNT_API();
    saferoot_error *err = NULL;
    const char *b = make_bundle("/spec");
    const char *data = new_dir("/spec-data");
    char spec[4096], type[128] = "", buf[32];
    struct saferoot_assemble_options o;
    saferoot_rootfs *rf;
    saferoot_root *inner;
    struct stat st;
    int fd;
    ssize_t n;

    CHECK(write_file(path_join(data, "/hello"), "hello\n") == 0);
    native_spec(spec, sizeof(spec), b, data);
    rf = saferoot_rootfs_assemble_spec(spec, NULL, &err);
    CHECK_OK(rf != NULL, err);
    if (rf == NULL)
        return;
    CHECK(saferoot_rootfs_fd(rf) >= 0);
    CHECK(mounts_at(path_join(b, "/rootfs"), NULL, 0) >= 1);
    CHECK(mounts_at(path_join(b, "/rootfs/proc"), type, sizeof(type)) == 1 &&
          strcmp(type, "proc") == 0);
    CHECK(mounts_at(path_join(b, "/rootfs/tmp"), type, sizeof(type)) == 1 &&
          strcmp(type, "tmpfs") == 0);
    /* The /dev saferoot adds, with its devpts and shm. */
    CHECK(mounts_at(path_join(b, "/rootfs/dev"), type, sizeof(type)) == 1 &&
          strcmp(type, "tmpfs") == 0);
    CHECK(mounts_at(path_join(b, "/rootfs/dev/pts"), type, sizeof(type)) == 1 &&
          strcmp(type, "devpts") == 0);
    CHECK(mounts_at(path_join(b, "/rootfs/dev/shm"), NULL, 0) == 1);
    CHECK(stat(path_join(b, "/rootfs/dev/null"), &st) == 0 && S_ISCHR(st.st_mode) &&
          st.st_rdev == makedev(1, 3));
    /* The bind: created in the root, read-only, the host directory's content. */
    CHECK(mounts_at(path_join(b, "/rootfs/data"), NULL, 0) == 1);
    CHECK(mount_is_ro(path_join(b, "/rootfs/data")) == 1);
    fd = open(path_join(b, "/rootfs/data/hello"), O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    if (fd >= 0) {
        n = read(fd, buf, sizeof(buf));
        CHECK(n == 6 && memcmp(buf, "hello\n", 6) == 0);
        close(fd);
    }
    CHECK(write_file(path_join(b, "/rootfs/data/new"), "x") != 0 && errno == EROFS);
    /* Masked, read-only paths and root. */
    CHECK(mounts_at(path_join(b, "/rootfs/etc/secret"), NULL, 0) == 1);
    CHECK(stat(path_join(b, "/rootfs/etc/secret"), &st) == 0 && S_ISCHR(st.st_mode));
    CHECK(mounts_at(path_join(b, "/rootfs/proc/sys"), NULL, 0) >= 1);
    CHECK(mount_is_ro(path_join(b, "/rootfs")) == 1);
    CHECK(write_file(path_join(b, "/rootfs/etc/new"), "x") != 0 && errno == EROFS);
    CHECK(mount_is_ro(path_join(b, "/rootfs/tmp")) == 0);
    CHECK(write_file(path_join(b, "/rootfs/tmp/new"), "x") == 0);

    inner = saferoot_rootfs_root(rf, &err);
    CHECK_OK(inner != NULL, err);
    fd = saferoot_resolve(inner, "/data/hello", &err);
    CHECK_OK(fd >= 0, err);
    if (fd >= 0)
        close(fd);
    saferoot_root_free(inner);
    CHECK_OK(saferoot_rootfs_detach(rf, &err) == 0, err);
    saferoot_rootfs_free(rf);
    CHECK(mounts_at(path_join(b, "/rootfs"), NULL, 0) == 0);
    CHECK(mounts_at(path_join(b, "/rootfs/data"), NULL, 0) == 0);

    /* In place, with options. */
    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    o.strategy = SAFEROOT_STRATEGY_IN_PLACE;
    rf = saferoot_rootfs_assemble_spec(spec, &o, &err);
    CHECK_OK(rf != NULL, err);
    CHECK(saferoot_rootfs_strategy(rf) == SAFEROOT_STRATEGY_IN_PLACE);
    CHECK(mounts_at(path_join(b, "/rootfs/data"), NULL, 0) == 1);
    CHECK_OK(saferoot_rootfs_detach(rf, &err) == 0, err);
    saferoot_rootfs_free(rf);
    CHECK(mounts_at(path_join(b, "/rootfs"), NULL, 0) == 0);

    /* A bind whose source is missing fails during assembly: nothing stays. */
    {
        char missing[PATH_MAX];
        snprintf(missing, sizeof(missing), "%s/no-such-dir", data);
        native_spec(spec, sizeof(spec), b, missing);
        CHECK(saferoot_rootfs_assemble_spec(spec, NULL, &err) == NULL);
        CHECK_ERR(err, ENOENT, SAFEROOT_ERRKIND_NOT_FOUND);
        CHECK(mounts_at(path_join(b, "/rootfs"), NULL, 0) == 0);
        CHECK(mounts_at(path_join(b, "/rootfs/proc"), NULL, 0) == 0);
    }
}

/* ---- archives and copies (in their own file) ----------------------------------- */

#include "test_archive.c"

/* ---- main ------------------------------------------------------------------- */

static int enter_private_namespace(void)
{
    char tmpl[] = "/tmp/saferoot-ctest-XXXXXX";
    outer_root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (outer_root_fd < 0) {
        perror("open /");
        return -1;
    }
    if (unshare(CLONE_NEWNS) != 0) {
        perror("unshare(CLONE_NEWNS)");
        return -1;
    }
    if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0) {
        perror("make / rprivate");
        return -1;
    }
    if (mkdtemp(tmpl) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    /* A private tmpfs as scratch space: gone with the namespace. */
    if (mount("saferoot-ctest", tmpl, "tmpfs", 0, "size=16m") != 0) {
        perror("mount scratch tmpfs");
        return -1;
    }
    snprintf(base, sizeof(base), "%s", tmpl);
    return 0;
}

int main(void)
{
    int fds_before, fds_after;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (geteuid() != 0) {
        const char *allow = getenv("SAFEROOT_TEST_ALLOW_SKIP");
        if (allow != NULL && strcmp(allow, "1") == 0) {
            printf("SKIPPED: not root (SAFEROOT_TEST_ALLOW_SKIP=1)\n0 passed, 0 failed\n");
            return 0;
        }
        fprintf(stderr, "the C tests need root (set SAFEROOT_TEST_ALLOW_SKIP=1 to skip)\n");
        printf("0 passed, 1 failed\n");
        return 1;
    }
    if (enter_private_namespace() != 0) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    mount_api = saferoot_has_feature(SAFEROOT_FEATURE_MOUNT_API) == 1 &&
                saferoot_has_feature(SAFEROOT_FEATURE_MOUNT_SETATTR) == 1;
    if (!mount_api) {
        const char *vg = getenv("SAFEROOT_TEST_UNDER_VALGRIND");
        if (vg == NULL || strcmp(vg, "1") != 0) {
            printf("FAIL - the kernel's mount API is not available\n0 passed, 1 failed\n");
            return 1;
        }
        printf("# under valgrind: the mount API is hidden (valgrind does not know fsopen,\n"
               "# open_tree, move_mount, mount_setattr); mount tests check the unsupported\n"
               "# errors instead. The LeakSanitizer run covers them with real mounts.\n");
    }

    /* The library keeps one process-wide fd (the private procfs of its
     * path resolver, opened at the first reopen of a handle, as when a
     * bundle's config.json is a symlink: a config.json that is the file
     * itself is opened again by name): warm it up before counting. */
    {
        saferoot_root *r = open_root(base);
        saferoot_mount_table *t = saferoot_mount_table_read(SAFEROOT_TABLE_AUTO, NULL);
        saferoot_error *werr = NULL;
        int fd = -1;
        FILE *cfg;
        saferoot_mkdir_all(r, "/warm-up", 0755, &fd, NULL);
        if (fd >= 0)
            close(fd);
        cfg = fopen(path_join(base, "/warm-up/real.json"), "w");
        if (cfg != NULL) {
            fputs("{}", cfg);
            fclose(cfg);
        }
        if (symlink("real.json", path_join(base, "/warm-up/config.json")) != 0)
            perror("symlink config.json");
        /* Read, then refused (no ociVersion, no root). */
        saferoot_rootfs_free(
            saferoot_rootfs_assemble_bundle(path_join(base, "/warm-up"), NULL, &werr));
        saferoot_error_free(werr);
        saferoot_mount_table_free(t);
        saferoot_root_free(r);
    }
    fds_before = count_open_fds();

    RUN(test_version);
    RUN(test_error_accessors_on_null);
    RUN(test_error_carries_path_and_null_err_is_allowed);
    RUN(test_features);
    RUN(test_root_open);
    RUN(test_root_from_fd);
    RUN(test_resolve);
    RUN(test_mkdir_all);
    RUN(test_create_file);
    RUN(test_mknod);
    RUN(test_mknod_checks_before_creating_and_keeps_the_mode);
    RUN(test_symlink_readlink);
    RUN(test_remove);
    RUN(test_mount_fs_and_options);
    RUN(test_mount_clone);
    RUN(test_mount_set_attr_and_propagation);
    RUN(test_mount_idmap);
    RUN(test_mount_attach_and_detach);
    RUN(test_mount_attach_at_errors);
    RUN(test_mount_attach_beneath);
    RUN(test_mount_from_and_into_fd);
    RUN(test_mount_from_fd_refuses_an_attached_mount);
    RUN(test_mount_root_builds_a_detached_tree);
    RUN(test_unmount_in_root);
    RUN(test_symlink_escape_is_confined);
    RUN(test_mount_bad_input);
    RUN(test_mount_table_read_and_parse);
    RUN(test_mount_table_sees_attached_mounts);
    RUN(test_oci_validate);
    RUN(test_rootfs_bad_input);
    RUN(test_rootfs_assemble_and_detach);
    RUN(test_rootfs_enter);
    RUN(test_lock_mounts);
    RUN(test_minimal_ns_bad_input);
    RUN(test_minimal_ns_pin_and_open);
    RUN(test_minimal_ns_enter_with_host_view);
    RUN(test_spec_bad_input);
    RUN(test_plan_json);
    RUN(test_rootfs_assemble_spec);
    RUN(test_unpack_hostile_archives_stay_inside);
    RUN(test_unpack_options_and_bad_input);
    RUN(test_copy_in_and_out);
    RUN(test_copy_bad_input);

    /* Invariant 5: no fd left behind by the library. */
    fds_after = count_open_fds();
    current_test = "no_fd_leaks";
    current_failed = 0;
    if (fds_after != fds_before) {
        fprintf(stderr, "  fds before: %d, after: %d\n", fds_before, fds_after);
        show_open_fds();
    }
    CHECK(fds_after == fds_before);
    if (current_failed == 0) {
        tests_passed++;
        printf("ok - no_fd_leaks\n");
    } else {
        tests_failed++;
        printf("FAIL - no_fd_leaks\n");
    }

    /* The scratch tmpfs goes with the namespace; its mount point on the
     * host's /tmp is removed here. */
    if (umount2(base, MNT_DETACH) != 0 || rmdir(base) != 0)
        perror(base);

    printf("%d passed, %d failed\n", tests_passed, tests_failed);
    return tests_failed == 0 ? 0 : 1;
}
