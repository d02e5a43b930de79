/* modelfile.c — opening the files of a model folder (see modelfile.h). */
#include "common/util/modelfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *mf_kind(unsigned mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: return "a regular file";
    case S_IFDIR: return "a directory";
    case S_IFIFO: return "a FIFO";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFSOCK: return "a socket";
    default: return "not a regular file";
    }
}

int mf_check_dir(const char *dir, const char *flag, struct error *err)
{
    struct stat st;
    if (!*dir)
        return error_set(err, "%s: empty path", flag);
    if (stat(dir, &st) < 0)
        return error_set(err, "%s %s: %s", flag, dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return error_set(err, "%s %s: %s, not a model folder", flag, dir, mf_kind(st.st_mode));
    return 0;
}

FILE *mf_fopen(const char *path, size_t max, const char **why)
{
    static _Thread_local char big[64];
    const char *ignored;
    why = why ? why : &ignored;
    *why = NULL;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        *why = strerror(errno);
        return NULL;
    }
    struct stat st;
    int e = 0;
    if (fstat(fd, &st) < 0) {
        e = errno;
        *why = strerror(e);
    } else if (!S_ISREG(st.st_mode)) {
        e = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        *why = S_ISDIR(st.st_mode) ? "a directory, not a regular file"
               : S_ISFIFO(st.st_mode) ? "a FIFO, not a regular file"
               : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device, not a regular file"
                                                             : "not a regular file";
    } else if ((unsigned long long)st.st_size > max) {
        e = EFBIG;
        snprintf(big, sizeof big, "larger than %zu MiB, the limit for this file", max >> 20);
        *why = big;
    }
    FILE *f = NULL;
    if (!e && fcntl(fd, F_SETFL, 0) == 0)
        f = fdopen(fd, "rb");
    if (!f) {
        e = e ? e : errno;
        if (!*why)
            *why = strerror(e);
        close(fd);
        errno = e;
    }
    return f;
}

json_t *mf_load_json(const char *path, size_t flags, json_error_t *je)
{
    const char *why = NULL;
    FILE *f = mf_fopen(path, MF_MAX_JSON, &why);
    if (!f) {
        int e = errno;
        memset(je, 0, sizeof *je);
        snprintf(je->text, sizeof je->text, "%s", why);
        snprintf(je->source, sizeof je->source, "%s", path);
        errno = e;
        return NULL;
    }
    json_t *j = json_loadf(f, flags, je);
    fclose(f);
    return j;
}

bool mf_name_ok(const char *name, const char *suffix)
{
    size_t n = strlen(name), sl = strlen(suffix);
    if (n == 0 || n > 255 || n < sl || strcmp(name + n - sl, suffix) != 0)
        return false;
    if (!strcmp(name, ".") || !strcmp(name, ".."))
        return false;
    for (size_t i = 0; i < n; i++)
        if (name[i] == '/' || name[i] == '\\' || (unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return false;
    return true;
}
