/*
 * Tests of saferoot_unpack, saferoot_copy_in and saferoot_copy_out.
 * Included by test_saferoot.c (it uses that file's framework and helpers:
 * CHECK, CHECK_ERR, CHECK_OK, base, new_dir, path_join, write_file,
 * open_root), and run from its main().
 *
 * Escape checks do not trust the library: a host directory beside the
 * root holds a marker file whose contents and directory listing are
 * compared after every call, and the real "/" is checked for the names
 * the hostile archives aim at.
 */

#include <time.h>

/* ---- a hand-made tar stream ------------------------------------------------- */

struct tar_buf {
    unsigned char data[32 * 512];
    size_t len;
};

/* Writes `value` in octal into the `width`-byte field at `f`: width-1
 * digits, zero-padded, then a NUL. */
static void octal(unsigned char *f, size_t width, unsigned long value)
{
    size_t i;
    f[width - 1] = 0;
    for (i = width - 1; i > 0; i--) {
        f[i - 1] = (unsigned char)('0' + (value & 7));
        value >>= 3;
    }
}

/* Appends one ustar entry: `type` '0' file, '2' symlink, '1' hard link,
 * '5' directory. Names and link targets up to 99 bytes. */
static void tar_entry(struct tar_buf *t, const char *name, char type, const char *link,
                      const char *body, unsigned mode)
{
    unsigned char *h = t->data + t->len;
    size_t n = body != NULL ? strlen(body) : 0;
    unsigned sum = 0;
    size_t i;
    if (t->len + 512 + (n + 511) / 512 * 512 + 1024 > sizeof(t->data)) {
        fprintf(stderr, "tar_entry: archive too large\n");
        exit(2);
    }
    memset(h, 0, 512);
    memcpy(h, name, strlen(name) < 99 ? strlen(name) : 99);
    octal(h + 100, 8, mode);
    octal(h + 108, 8, 0);
    octal(h + 116, 8, 0);
    octal(h + 124, 12, (unsigned long)n);
    octal(h + 136, 12, 1700000000ul);
    memset(h + 148, ' ', 8);
    h[156] = (unsigned char)type;
    if (link != NULL)
        memcpy(h + 157, link, strlen(link) < 99 ? strlen(link) : 99);
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    for (i = 0; i < 512; i++)
        sum += h[i];
    octal(h + 148, 7, sum);
    h[155] = ' ';
    t->len += 512;
    if (n > 0) {
        memset(t->data + t->len, 0, (n + 511) / 512 * 512);
        memcpy(t->data + t->len, body, n);
        t->len += (n + 511) / 512 * 512;
    }
}

static void tar_finish(struct tar_buf *t)
{
    memset(t->data + t->len, 0, 1024);
    t->len += 1024;
}

/* A pipe whose read end holds the whole archive (it fits the pipe). */
static int archive_pipe(const struct tar_buf *t)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    if (write(p[1], t->data, t->len) != (ssize_t)t->len) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    close(p[1]);
    return p[0];
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static int file_is(const char *path, const char *text)
{
    char buf[256];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0)
        return 0;
    buf[n] = 0;
    return strcmp(buf, text) == 0;
}

static int is_symlink(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
}

/* The host directory beside the root: one file, MARKER, saying "host\n". */
static const char *make_host_dir(const char *name)
{
    const char *h = new_dir(name);
    if (write_file(path_join(h, "/MARKER"), "host\n") != 0) {
        perror("write marker");
        exit(2);
    }
    return h;
}

static void check_host_unchanged(const char *host)
{
    CHECK(count_entries(host) == 1);
    CHECK(file_is(path_join(host, "/MARKER"), "host\n"));
    CHECK(access("/MARKER_ESCAPE", F_OK) != 0);
    CHECK(access("/abs_escape", F_OK) != 0);
}

/* ---- saferoot_unpack ----------------------------------------------------------- */

static void test_unpack_hostile_archives_stay_inside(void)
{
    const char *host = make_host_dir("/unpack-host");
    const char *rootdir = new_dir("/unpack-root");
    saferoot_root *r = open_root(rootdir);
    saferoot_error *err = NULL;
    struct saferoot_unpack_summary s;
    static struct tar_buf t;
    int fd, rc;
    char hostmarker[PATH_MAX];
    if (r == NULL) {
        CHECK(0);
        return;
    }
    snprintf(hostmarker, sizeof(hostmarker), "%s/MARKER", host);

    /* Climbing and absolute names are confined; a symlink to "/" and a
     * write through it lands in the root. From a pipe. */
    memset(&t, 0, sizeof(t));
    tar_entry(&t, "../../../../../../../../MARKER_ESCAPE", '0', NULL, "pwned\n", 0644);
    tar_entry(&t, "/abs_escape", '0', NULL, "pwned\n", 0644);
    tar_entry(&t, "up", '2', "/", NULL, 0777);
    tar_entry(&t, "up/through", '0', NULL, "inside\n", 0600);
    tar_entry(&t, "dir", '5', NULL, NULL, 0750);
    tar_entry(&t, "dir/f", '0', NULL, "f\n", 0640);
    tar_finish(&t);
    fd = archive_pipe(&t);
    CHECK(fd >= 0);
    memset(&s, 0, sizeof(s));
    s.size = sizeof(s);
    rc = saferoot_unpack(r, fd, NULL, &s, &err);
    CHECK_OK(rc == 0, err);
    close(fd);
    CHECK(s.entries == 6);
    CHECK(s.files == 4);
    CHECK(s.dirs == 1);
    CHECK(s.symlinks == 1);
    CHECK(s.bytes == 6 + 6 + 7 + 2);
    CHECK(s.size == sizeof(s));
    CHECK(file_is(path_join(rootdir, "/MARKER_ESCAPE"), "pwned\n"));
    CHECK(file_is(path_join(rootdir, "/abs_escape"), "pwned\n"));
    CHECK(file_is(path_join(rootdir, "/through"), "inside\n"));
    CHECK(file_is(path_join(rootdir, "/dir/f"), "f\n"));
    check_host_unchanged(host);

    /* A symlink to the host directory's absolute path, then writes
     * through it; a hard link to the host marker. From a file. Each entry
     * either lands inside the root or is refused. */
    memset(&t, 0, sizeof(t));
    tar_entry(&t, "hostlink", '2', host, NULL, 0777);
    tar_entry(&t, "markerlink", '2', hostmarker, NULL, 0777);
    tar_entry(&t, "markerlink", '0', NULL, "replaced\n", 0644);
    tar_entry(&t, "hard", '1', hostmarker, NULL, 0644);
    tar_entry(&t, "hostlink/MARKER", '0', NULL, "pwned\n", 0644);
    tar_finish(&t);
    if (write_file(path_join(base, "/hostile.tar"), "") != 0)
        CHECK(0);
    fd = open(path_join(base, "/hostile.tar"), O_RDWR | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK(write(fd, t.data, t.len) == (ssize_t)t.len);
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    rc = saferoot_unpack(r, fd, NULL, NULL, &err);
    CHECK(rc < 0);
    CHECK(err != NULL);
    if (err != NULL) {
        /* The hard link's target does not exist in the root. */
        CHECK(rc == -ENOENT);
        CHECK(strstr(saferoot_error_message(err), "hard") != NULL);
        saferoot_error_free(err);
        err = NULL;
    }
    CHECK(fd_is_open(fd));
    close(fd);
    CHECK(is_symlink(path_join(rootdir, "/hostlink")));
    CHECK(file_is(path_join(rootdir, "/markerlink"), "replaced\n"));
    check_host_unchanged(host);

    /* Once the host's path exists inside the root, writes through the
     * link go there. */
    {
        char inroot[PATH_MAX];
        int wfd;
        snprintf(inroot, sizeof(inroot), "%s", host);
        wfd = -1;
        CHECK_OK(saferoot_mkdir_all(r, inroot, 0755, &wfd, &err) == 0, err);
        if (wfd >= 0)
            close(wfd);
        memset(&t, 0, sizeof(t));
        tar_entry(&t, "hostlink/MARKER", '0', NULL, "pwned\n", 0644);
        tar_finish(&t);
        fd = archive_pipe(&t);
        CHECK_OK(saferoot_unpack(r, fd, NULL, NULL, &err) == 0, err);
        close(fd);
        CHECK(file_is(path_join(path_join(rootdir, inroot), "/MARKER"), "pwned\n"));
    }
    check_host_unchanged(host);
    saferoot_root_free(r);
}

static void test_unpack_options_and_bad_input(void)
{
    const char *rootdir = new_dir("/unpack-opts");
    saferoot_root *r = open_root(rootdir);
    saferoot_error *err = NULL;
    struct saferoot_unpack_options o;
    struct saferoot_unpack_summary s;
    static struct tar_buf t;
    int fd, closed_fd;
    if (r == NULL) {
        CHECK(0);
        return;
    }
    memset(&t, 0, sizeof(t));
    tar_entry(&t, "d/gone", '0', NULL, "x\n", 0644);
    tar_entry(&t, "d/kept", '0', NULL, "x\n", 0644);
    tar_finish(&t);

    /* Bad input is refused before the archive is read. */
    fd = archive_pipe(&t);
    CHECK(saferoot_unpack(NULL, fd, NULL, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_unpack(r, -1, NULL, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    closed_fd = dup(fd);
    close(closed_fd);
    CHECK(saferoot_unpack(r, closed_fd, NULL, NULL, &err) == -EBADF);
    CHECK_ERR(err, EBADF, INVALID);
    memset(&o, 0, sizeof(o));
    o.size = 8;
    CHECK(saferoot_unpack(r, fd, &o, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    o.size = sizeof(o);
    o.flags = 0x100;
    CHECK(saferoot_unpack(r, fd, &o, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    o.flags = SAFEROOT_UNPACK_SAME_OWNER | SAFEROOT_UNPACK_NO_SAME_OWNER;
    CHECK(saferoot_unpack(r, fd, &o, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    o.flags = 0;
    o.whiteouts = 7;
    CHECK(saferoot_unpack(r, fd, &o, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    o.whiteouts = SAFEROOT_WHITEOUTS_NONE;
    memset(&s, 0, sizeof(s));
    s.size = 4;
    CHECK(saferoot_unpack(r, fd, &o, &s, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(count_entries(rootdir) == 0);

    /* Limits: a typed error naming the limit. */
    o.max_entries = 1;
    CHECK(saferoot_unpack(r, fd, &o, NULL, &err) == -EINVAL);
    CHECK(err != NULL && strstr(saferoot_error_message(err), "limit") != NULL);
    CHECK_ERR(err, EINVAL, INVALID);
    close(fd);

    /* The defaults, then an OCI whiteout layer removing one file. */
    fd = archive_pipe(&t);
    memset(&s, 0, sizeof(s));
    s.size = sizeof(s);
    CHECK_OK(saferoot_unpack(r, fd, NULL, &s, &err) == 0, err);
    CHECK(s.files == 2);
    close(fd);
    memset(&t, 0, sizeof(t));
    tar_entry(&t, "d/.wh.gone", '0', NULL, NULL, 0644);
    tar_finish(&t);
    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    o.whiteouts = SAFEROOT_WHITEOUTS_OCI;
    o.flags = SAFEROOT_UNPACK_NO_SAME_OWNER;
    fd = archive_pipe(&t);
    CHECK_OK(saferoot_unpack(r, fd, &o, &s, &err) == 0, err);
    close(fd);
    CHECK(s.whiteouts == 1);
    CHECK(access(path_join(rootdir, "/d/gone"), F_OK) != 0);
    CHECK(access(path_join(rootdir, "/d/.wh.gone"), F_OK) != 0);
    CHECK(file_is(path_join(rootdir, "/d/kept"), "x\n"));

    /* A non-blocking pipe whose writer is slow: waited on, not EAGAIN. */
    {
        int p[2], status = 0;
        pid_t pid;
        memset(&t, 0, sizeof(t));
        tar_entry(&t, "slow", '0', NULL, "slow\n", 0644);
        tar_finish(&t);
        CHECK(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
        pid = fork();
        if (pid == 0) {
            /* Only async-signal-safe calls in the child. */
            struct timespec ts = {0, 200 * 1000 * 1000};
            size_t half = t.len / 2;
            close(p[0]);
            nanosleep(&ts, NULL);
            if (write(p[1], t.data, half) != (ssize_t)half)
                _exit(1);
            nanosleep(&ts, NULL);
            if (write(p[1], t.data + half, t.len - half) != (ssize_t)(t.len - half))
                _exit(1);
            _exit(0);
        }
        CHECK(pid > 0);
        close(p[1]);
        CHECK_OK(saferoot_unpack(r, p[0], NULL, NULL, &err) == 0, err);
        close(p[0]);
        CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CHECK(file_is(path_join(rootdir, "/slow"), "slow\n"));
    }
    saferoot_root_free(r);
}

/* ---- saferoot_copy_in / saferoot_copy_out -------------------------------------- */

static void test_copy_in_and_out(void)
{
    const char *host = make_host_dir("/copy-host");
    const char *rootdir = new_dir("/copy-root");
    const char *src = new_dir("/copy-src");
    const char *out = new_dir("/copy-out");
    saferoot_root *r = open_root(rootdir);
    saferoot_error *err = NULL;
    struct saferoot_copy_summary s;
    char buf[PATH_MAX];
    if (r == NULL) {
        CHECK(0);
        return;
    }
    CHECK(mkdir(path_join(src, "/d"), 0750) == 0);
    CHECK(write_file(path_join(src, "/d/g"), "g\n") == 0);
    CHECK(write_file(path_join(src, "/f"), "f\n") == 0);
    CHECK(symlink("/", path_join(rootdir, "/up")) == 0);
    CHECK(symlink(host, path_join(rootdir, "/hostlink")) == 0);
    snprintf(buf, sizeof(buf), "%s/MARKER", host);
    CHECK(symlink(buf, path_join(rootdir, "/markerlink")) == 0);

    /* In, through a parent that is a symlink to "/": lands in the root. */
    memset(&s, 0, sizeof(s));
    s.size = sizeof(s);
    CHECK_OK(saferoot_copy_in(r, path_join(src, "/d"), "/up/d2", NULL, &s, &err) == 0, err);
    CHECK(s.files == 1 && s.dirs == 1 && s.bytes == 2);
    CHECK(file_is(path_join(rootdir, "/d2/g"), "g\n"));
    /* Into an existing directory, under the source's name. */
    CHECK_OK(saferoot_copy_in(r, path_join(src, "/f"), "/d2", NULL, NULL, &err) == 0, err);
    CHECK(file_is(path_join(rootdir, "/d2/f"), "f\n"));
    /* The destination an outward symlink: never followed. A directory
     * cannot replace it; a file replaces the link itself. */
    CHECK(saferoot_copy_in(r, path_join(src, "/d"), "/hostlink", NULL, NULL, &err) ==
          -ENOTDIR);
    CHECK_ERR(err, ENOTDIR, SAFEROOT_ERRKIND_OS);
    CHECK(is_symlink(path_join(rootdir, "/hostlink")));
    CHECK_OK(saferoot_copy_in(r, path_join(src, "/f"), "/markerlink", NULL, NULL, &err) == 0,
             err);
    CHECK(file_is(path_join(rootdir, "/markerlink"), "f\n"));
    /* A missing parent. */
    CHECK(saferoot_copy_in(r, path_join(src, "/f"), "/no/such", NULL, NULL, &err) == -ENOENT);
    CHECK_ERR(err, ENOENT, SAFEROOT_ERRKIND_NOT_FOUND);
    check_host_unchanged(host);

    /* Out: symlinks come out as symlinks; the contents of a directory. */
    memset(&s, 0, sizeof(s));
    s.size = sizeof(s);
    CHECK_OK(saferoot_copy_out(r, "/.", path_join(out, "/all"), NULL, &s, &err) == 0, err);
    CHECK(s.symlinks == 2);
    CHECK(is_symlink(path_join(out, "/all/up")));
    CHECK(is_symlink(path_join(out, "/all/hostlink")));
    CHECK(file_is(path_join(out, "/all/d2/g"), "g\n"));
    /* Following the source link resolves it inside the root. */
    CHECK(symlink(buf, path_join(rootdir, "/ml")) == 0);
    {
        struct saferoot_copy_options o;
        memset(&o, 0, sizeof(o));
        o.size = sizeof(o);
        o.flags = SAFEROOT_COPY_FOLLOW_LINK;
        CHECK(saferoot_copy_out(r, "/ml", path_join(out, "/ml"), &o, NULL, &err) == -ENOENT);
        CHECK_ERR(err, ENOENT, SAFEROOT_ERRKIND_NOT_FOUND);
        CHECK(access(path_join(out, "/ml"), F_OK) != 0);
        o.flags = 0;
        CHECK_OK(saferoot_copy_out(r, "/ml", path_join(out, "/ml"), &o, NULL, &err) == 0, err);
        CHECK(is_symlink(path_join(out, "/ml")));
    }
    /* The host destination's last component is a symlink: not followed. */
    CHECK(symlink(host, path_join(out, "/trap")) == 0);
    CHECK(saferoot_copy_out(r, "/d2", path_join(out, "/trap"), NULL, NULL, &err) == -ENOTDIR);
    CHECK_ERR(err, ENOTDIR, SAFEROOT_ERRKIND_OS);
    check_host_unchanged(host);
    saferoot_root_free(r);
}

static void test_copy_bad_input(void)
{
    const char *rootdir = new_dir("/copy-bad");
    const char *src = new_dir("/copy-bad-src");
    saferoot_root *r = open_root(rootdir);
    saferoot_error *err = NULL;
    struct saferoot_copy_options o;
    struct saferoot_copy_summary s;
    const char *f;
    if (r == NULL) {
        CHECK(0);
        return;
    }
    f = path_join(src, "/f");
    CHECK(write_file(f, "f\n") == 0);
    CHECK(saferoot_copy_in(NULL, f, "/x", NULL, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_copy_in(r, NULL, "/x", NULL, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_copy_in(r, f, NULL, NULL, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_copy_in(r, f, BAD_UTF8, NULL, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_copy_in(r, f, "relative", NULL, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_copy_out(r, "relative", src, NULL, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    CHECK(saferoot_copy_out(r, "/x", "", NULL, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    o.flags = 0x80;
    CHECK(saferoot_copy_in(r, f, "/x", &o, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    o.flags = 0;
    o.reserved = 1;
    CHECK(saferoot_copy_in(r, f, "/x", &o, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    o.reserved = 0;
    o.size = 4;
    CHECK(saferoot_copy_out(r, "/x", src, &o, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    memset(&s, 0, sizeof(s));
    CHECK(saferoot_copy_in(r, f, "/x", NULL, &s, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    /* Nothing was copied by any of them. */
    CHECK(count_entries(rootdir) == 0);
    /* A limit. */
    o.size = sizeof(o);
    o.max_bytes = 1;
    CHECK(saferoot_copy_in(r, f, "/x", &o, NULL, &err) == -EINVAL);
    CHECK_ERR(err, EINVAL, INVALID);
    saferoot_root_free(r);
}
