/* twine: tw_download_page, a body streamed into a file: a temporary file
 * beside the target, renamed over it once the body is whole. A body that
 * fails part way is kept as "PATH.part", so that what was received is not
 * lost and PATH never holds a partial body. */
#include "http_client_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

typedef struct download {
    char *path;
    char *tmp;                        /* the temporary file, until renamed */
    int fd;
    size_t written;                   /* bytes of the body in tmp */
} download;

/* "PATH.part", malloc'd. */
static char *part_path(const download *dl)
{
    size_t size = strlen(dl->path) + sizeof ".part";
    char *p = tw_xmalloc(size);
    snprintf(p, size, "%s.part", dl->path);
    return p;
}

static tw_failure *file_failure(int err, const char *what, const char *path)
{
    return tw_failure_new(TW_ERR_SYS, err, NULL, "%s %s: %s", what, path, strerror(err));
}

static tw_failure *download_open(void *arg)
{
    download *dl = arg;
    static unsigned counter;
    size_t size = strlen(dl->path) + 16;
    dl->tmp = tw_xmalloc(size);
    for (int tries = 0; tries < 100; tries++) {
        unsigned r = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL) ^ ++counter * 40503u;
        snprintf(dl->tmp, size, "%s.%06x", dl->path, r & 0xffffff);
        /* open applies the umask to 0666, as for any new file. */
        dl->fd = open(dl->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (dl->fd >= 0)
            return NULL;
        if (errno != EEXIST)
            break;
    }
    tw_failure *f = file_failure(errno, "cannot create", dl->tmp);
    free(dl->tmp);
    dl->tmp = NULL;
    return f;
}

static tw_failure *download_write(void *arg, const char *data, size_t len)
{
    download *dl = arg;
    while (len > 0) {
        ssize_t n = write(dl->fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return file_failure(errno, "cannot write", dl->tmp);
        data += n;
        len -= (size_t)n;
        dl->written += (size_t)n;
    }
    return NULL;
}

static tw_failure *download_close(void *arg)
{
    download *dl = arg;
    int fd = dl->fd;
    dl->fd = -1;
    if (close(fd) < 0)
        return file_failure(errno, "cannot write", dl->tmp);
    if (rename(dl->tmp, dl->path) < 0)
        return file_failure(errno, "cannot rename to", dl->path);
    free(dl->tmp);
    dl->tmp = NULL;
    char *part = part_path(dl);
    unlink(part);                     /* an earlier attempt's, now superseded */
    free(part);
    return NULL;
}

static void download_free(void *arg)
{
    download *dl = arg;
    if (dl->fd >= 0)
        close(dl->fd);
    if (dl->tmp) {                    /* the body did not end well */
        char *part = dl->written ? part_path(dl) : NULL;
        if (!part || rename(dl->tmp, part) < 0)
            unlink(dl->tmp);
        free(part);
    }
    free(dl->tmp);
    free(dl->path);
    free(dl);
}

static const tw_http_sink download_sink = {
    .open = download_open,
    .write = download_write,
    .close = download_close,
    .free = download_free,
};

static void set_usage_failure(tw_result *r, void *arg)
{
    tw_result_set_failure(r, tw_failure_new(TW_ERR_USAGE, EINVAL, NULL,
                                            "tw_download_page: no path to write to"));
}

tw_deferred *tw_download_page(const char *url, const char *path, const tw_page_options *opt)
{
    if (!path || !*path)
        return tw_defer_later(0, set_usage_failure, NULL);
    download *dl = tw_xcalloc(1, sizeof *dl);
    dl->path = tw_xstrdup(path);
    dl->fd = -1;
    return tw_http_fetch(url, opt, &download_sink, dl);
}
