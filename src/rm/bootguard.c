/* The read model's boot marker; see bootguard.h. */
#include "rm/bootguard.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "obs/log.h"

#define BOOT_ID_BYTES 37 /* a UUID and the NUL */
#define MARKER_PATH_BYTES 4200

static const char boot_id_path[] = "/proc/sys/kernel/random/boot_id";

static bool read_boot_id(char out[BOOT_ID_BYTES])
{
    FILE *f = fopen(boot_id_path, "r");
    if (f == NULL)
        return false;
    bool ok = fscanf(f, "%36s", out) == 1 && strlen(out) == BOOT_ID_BYTES - 1;
    fclose(f);
    return ok;
}

static int marker_path(const char *db_path, char out[MARKER_PATH_BYTES])
{
    int n = snprintf(out, MARKER_PATH_BYTES, "%s.boot", db_path);
    return n > 0 && n < MARKER_PATH_BYTES ? 0 : WX_ERR_TOO_LARGE;
}

/* Syncs the directory holding path, so a rename in it is durable. */
static int sync_dir_of(const char *path)
{
    char dir[MARKER_PATH_BYTES];
    snprintf(dir, sizeof(dir), "%s", path);
    int fd = open(dirname(dir), O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return WX_ERR_IO;
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? 0 : WX_ERR_IO;
}

/* Writes "<boot id> <state>" durably: a temporary file, fsync, rename. */
static int write_marker(const char *path, const char *boot_id, const char *state)
{
    char tmp[MARKER_PATH_BYTES + 4];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return WX_ERR_IO;
    char line[BOOT_ID_BYTES + 16];
    int n = snprintf(line, sizeof(line), "%s %s\n", boot_id, state);
    bool ok = write(fd, line, (size_t)n) == n && fsync(fd) == 0;
    ok &= close(fd) == 0;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return WX_ERR_IO;
    }
    return sync_dir_of(path);
}

static void remove_file(const char *db_path, const char *suffix)
{
    char path[MARKER_PATH_BYTES];
    snprintf(path, sizeof(path), "%s%s", db_path, suffix);
    if (unlink(path) != 0 && errno != ENOENT)
        wx_logf(WX_LOG_WARN, "projector: removing %s: %s", path, strerror(errno));
}

int boot_guard_open(const char *db_path, bool *unsynced_out)
{
    *unsynced_out = false;
    char boot_id[BOOT_ID_BYTES], path[MARKER_PATH_BYTES];
    if (strncmp(db_path, "file:", 5) == 0)
        return 0; /* a URI (an in-memory database for tests): nothing to guard */
    if (!read_boot_id(boot_id) || marker_path(db_path, path) != 0)
        return 0; /* no way to tell a reboot: keep fsync */
    char was_boot[BOOT_ID_BYTES] = "", was_state[8] = "";
    FILE *f = fopen(path, "r");
    bool had_marker = f != NULL;
    if (had_marker) {
        if (fscanf(f, "%36s %7s", was_boot, was_state) != 2)
            was_state[0] = '\0';
        fclose(f);
    }
    /* Open when the machine stopped: what the OS had not written is lost,
     * and the file may be torn. A marker that cannot be read counts as
     * that too. No marker at all is a read model from before the marker,
     * written with fsync. */
    bool torn = had_marker && strcmp(was_state, "clean") != 0 && strcmp(was_boot, boot_id) != 0;
    if (torn) {
        wx_logf(WX_LOG_WARN,
                "projector: %s was open when the machine stopped; rebuilding it from the log",
                db_path);
        remove_file(db_path, "-wal");
        remove_file(db_path, "-shm");
        remove_file(db_path, "");
    }
    int err = write_marker(path, boot_id, "open");
    if (err)
        return err;
    *unsynced_out = true;
    return 0;
}

int boot_guard_clean(const char *db_path)
{
    char boot_id[BOOT_ID_BYTES], path[MARKER_PATH_BYTES];
    if (!read_boot_id(boot_id) || marker_path(db_path, path) != 0)
        return WX_ERR_IO;
    return write_marker(path, boot_id, "clean");
}
