/*
 * A complete libsaferoot example: in a container root directory, create
 * /tmp and /run, mount a read-only, nosuid, nodev tmpfs on /tmp and a
 * private copy of /run, configured before anyone can see them, then list
 * the mounts below the root.
 *
 * Build:  cc -std=c99 -Wall -Wextra $(pkg-config --cflags saferoot) example.c \
 *             $(pkg-config --libs saferoot) -o example
 * Run (as root, in a private mount namespace so the host is untouched):
 *         unshare --mount --propagation private ./example /path/to/rootfs
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <saferoot.h>

/* Prints a failed call's error and frees it. */
static int fail(const char *what, saferoot_error *err)
{
    fprintf(stderr, "%s: %s (errno %d, kind %d)\n", what, saferoot_error_message(err),
            saferoot_error_errno(err), (int)saferoot_error_kind(err));
    saferoot_error_free(err);
    return 1;
}

int main(int argc, char **argv)
{
    saferoot_error *err = NULL;
    saferoot_root *root = NULL;
    saferoot_mount *tmp = NULL, *run = NULL;
    saferoot_mount_table *table = NULL;
    struct saferoot_fs_options opts;
    size_t i, prefix_len;
    int dir_fd = -1, status = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: %s ROOTFS\n", argv[0]);
        return 2;
    }
    printf("libsaferoot %s, statmount: %s\n", saferoot_version(),
           saferoot_has_feature(SAFEROOT_FEATURE_STATMOUNT) == 1 ? "yes" : "no");

    /* Every in-root path below is resolved inside this directory, whatever
     * symlinks the rootfs contains. */
    root = saferoot_root_open(argv[1], &err);
    if (root == NULL)
        return fail("open root", err);

    /* /tmp: a new tmpfs that is read-only, nosuid and nodev from its first
     * moment, attached onto the fd of the directory it goes on. */
    if (saferoot_mkdir_all(root, "/tmp", 01777, &dir_fd, &err) < 0) {
        fail("mkdir /tmp", err);
        goto out;
    }
    memset(&opts, 0, sizeof(opts));
    opts.size = sizeof(opts);
    opts.source = "example-tmp";
    opts.data = "mode=1777,size=1m";
    opts.attrs = SAFEROOT_MOUNT_ATTR_RDONLY | SAFEROOT_MOUNT_ATTR_NOSUID | SAFEROOT_MOUNT_ATTR_NODEV;
    tmp = saferoot_mount_fs("tmpfs", &opts, &err);
    if (tmp == NULL) {
        fail("make tmpfs", err);
        goto out;
    }
    if (saferoot_mount_attach(tmp, dir_fd, &err) < 0) {
        fail("attach /tmp", err);
        goto out;
    }

    /* /run: a recursive bind of the host's /run, made private and noexec
     * while still detached, attached at an in-root path. */
    if (saferoot_mkdir_all(root, "/run", 0755, NULL, &err) < 0) {
        fail("mkdir /run", err);
        goto out;
    }
    run = saferoot_mount_clone("/run", SAFEROOT_CLONE_RECURSIVE, &err);
    if (run == NULL) {
        fail("clone /run", err);
        goto out;
    }
    if (saferoot_mount_set_propagation(run, SAFEROOT_PROPAGATION_PRIVATE, SAFEROOT_ATTR_RECURSIVE,
                                       &err) < 0 ||
        saferoot_mount_set_attr(run, SAFEROOT_MOUNT_ATTR_NOEXEC, 0, SAFEROOT_ATTR_RECURSIVE,
                                &err) < 0) {
        fail("configure /run", err);
        goto out;
    }
    if (saferoot_mount_attach_at(run, root, "/run", &err) < 0) {
        fail("attach /run", err);
        goto out;
    }

    /* The mounts now below the root, from the calling thread's table. */
    table = saferoot_mount_table_read(SAFEROOT_TABLE_AUTO, &err);
    if (table == NULL) {
        fail("read mount table", err);
        goto out;
    }
    prefix_len = strlen(argv[1]);
    for (i = 0; i < saferoot_mount_table_len(table); i++) {
        const struct saferoot_mount_entry *e = saferoot_mount_table_entry(table, i);
        if (strncmp(e->mount_point, argv[1], prefix_len) == 0)
            printf("%s %s%s\n", e->mount_point, e->fs_type,
                   (e->attrs & SAFEROOT_MOUNT_ATTR_RDONLY) ? " ro" : "");
    }

    /* Take the mounts down again, through their own fds. */
    if (saferoot_mount_detach(run, &err) < 0 || saferoot_mount_detach(tmp, &err) < 0) {
        fail("detach", err);
        goto out;
    }
    status = 0;
out:
    saferoot_mount_table_free(table);
    saferoot_mount_free(run);
    saferoot_mount_free(tmp);
    saferoot_root_free(root);
    if (dir_fd >= 0)
        close(dir_fd);
    return status;
}
