/* twine: static files: a directory served under a URL prefix, GET and HEAD.
 *
 * Safety rests on two checks: the decoded rest of the path may not hold a
 * "." or ".." segment, and the file's real path (every symbolic link
 * resolved) must lie inside the directory's, which was resolved once when it
 * was mounted. openat2 with RESOLVE_BENEATH checks that in the kernel as it
 * opens; where it cannot, realpath does, and the resolved path is opened
 * with O_NOFOLLOW.
 *
 * Small files are read whole and sent in one write. Larger ones stream: the
 * request's producer reads 64 KiB blocks on the reactor thread whenever the
 * connection's buffer has drained, so a file of any size takes bounded
 * memory. (sendfile would save the copy, but the transport's buffer is where
 * the bytes must go to keep ordering and flow control for every transport,
 * TLS included.) */
#include "http_server_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__linux__) && defined(__has_include)
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#include <sys/syscall.h>
#define HAVE_OPENAT2 1
#endif
#endif

enum {
    BLOCK = 64 * 1024,
    UNDECIDED = -1,             /* open_beneath: the realpath check decides */
};

/* O_NONBLOCK: opening a FIFO must not block the reactor (it is then refused
 * as not a regular file); reading regular files ignores it. */
#define OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NONBLOCK)

/* One block serves every response: a write copies it into the transport
 * before returning, and only the reactor thread serves files. */
static char block[BLOCK];

typedef struct mount {
    char *root;                 /* realpath of the directory */
    size_t root_len;            /* 0 for "/" itself */
    int dirfd;                  /* the directory, for openat2 */
} mount;

static void mount_free(void *arg)
{
    mount *m = arg;
    close(m->dirfd);
    free(m->root);
    free(m);
}

/* Content types ------------------------------------------------------------------------ */

static const struct {
    const char *ext, *type;
} types[] = {
    { "html", "text/html; charset=utf-8" },
    { "htm", "text/html; charset=utf-8" },
    { "css", "text/css; charset=utf-8" },
    { "js", "text/javascript; charset=utf-8" },
    { "json", "application/json" },
    { "txt", "text/plain; charset=utf-8" },
    { "png", "image/png" },
    { "jpg", "image/jpeg" },
    { "jpeg", "image/jpeg" },
    { "gif", "image/gif" },
    { "svg", "image/svg+xml" },
    { "ico", "image/x-icon" },
    { "wasm", "application/wasm" },
    { "pdf", "application/pdf" },
};

static const char *content_type(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    if (dot)
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (!strcasecmp(dot + 1, types[i].ext))
                return types[i].type;
    return "application/octet-stream";
}

/* Paths -------------------------------------------------------------------------------- */

/* No "." or ".." segment: the rest stays below the directory by name. */
static bool safe_rest(const char *rest)
{
    for (const char *s = rest; *s;) {
        size_t n = strcspn(s, "/");
        if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        s += n;
        s += *s == '/';
    }
    return true;
}

static bool inside(const mount *m, const char *real)
{
    return !strncmp(real, m->root, m->root_len) &&
           (real[m->root_len] == '/' || real[m->root_len] == '\0');
}

/* Fast path: openat2 resolves rel beneath the directory and refuses (EXDEV)
 * any step that would leave it: one system call instead of realpath's
 * readlink per component. Returns the descriptor, the status to answer
 * (negative), or UNDECIDED when the realpath check must decide: the kernel
 * lacks openat2, or a link on the way is absolute or leads out (it may
 * still end up inside). */
static int open_beneath(const mount *m, const char *rel)
{
#ifdef HAVE_OPENAT2
    static bool unavailable;
    if (!unavailable) {
        struct open_how how = {
            .flags = OPEN_FLAGS,
            .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
        };
        int fd = (int)syscall(SYS_openat2, m->dirfd, rel, &how, sizeof how);
        if (fd >= 0)
            return fd;
        if (errno == ENOSYS || errno == EPERM)    /* EPERM: a seccomp filter */
            unavailable = true;
        else if (errno != EXDEV)
            return errno == EACCES ? -403 : -404;
    }
#endif
    return UNDECIDED;
}

/* Opens rel (relative to the directory) if its real path lies inside it.
 * Returns the descriptor, or the status to answer (negative). */
static int open_inside(const mount *m, const char *rel)
{
    rel += strspn(rel, "/");
    if (!*rel)
        rel = ".";
    int fd = open_beneath(m, rel);
    if (fd != UNDECIDED)
        return fd;
    char path[PATH_MAX], real[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", m->root, rel) >= sizeof path)
        return -404;
    if (!realpath(path, real))
        return errno == EACCES ? -403 : -404;
    if (!inside(m, real))
        return -403;
    fd = open(real, OPEN_FLAGS | O_NOFOLLOW);
    if (fd < 0)
        return errno == EACCES ? -403 : -404;
    return fd;
}

/* Answers ------------------------------------------------------------------------------ */

static void respond_plain(tw_http_request *req, int status, const char *location)
{
    char body[80];
    int n = snprintf(body, sizeof body, "%d %s\n", status, tw_http_reason_phrase(status));
    tw_http_headers *h = tw_http_headers_new();
    tw_http_headers_add(h, "Content-Type", "text/plain; charset=utf-8");
    if (location)
        tw_http_headers_add(h, "Location", location);
    tw_http_request_respond(req, status, h, body, (size_t)n);
    tw_http_headers_free(h);
}

/* A directory asked for without its final '/': relative links in its index
 * need it. */
static void redirect_to_directory(tw_http_request *req)
{
    const char *path = tw_http_request_path(req), *query = tw_http_request_query(req);
    /* "//host/dir" would send the client to another host. */
    while (path[0] == '/' && path[1] == '/')
        path++;
    size_t len = strlen(path) + (query ? strlen(query) + 1 : 0) + 2;
    char *location = tw_xmalloc(len);
    snprintf(location, len, "%s/%s%s", path, query ? "?" : "", query ? query : "");
    respond_plain(req, 301, location);
    free(location);
}

static bool not_modified(const tw_http_request *req, const struct stat *st)
{
    const char *since = tw_http_headers_get(tw_http_request_headers(req), "If-Modified-Since");
    time_t t;
    return since && tw_http_date_parse(since, &t) == 0 && st->st_mtime <= t;
}

/* Streaming ---------------------------------------------------------------------------- */

typedef struct file_stream {
    tw_http_request *req;
    int fd;
    uint64_t left;
    bool paused;
} file_stream;

static void stream_end(file_stream *fs)
{
    tw_http_request *req = fs->req;
    tw_http_request_unregister_producer(req);
    close(fs->fd);
    free(fs);
    /* A file cut short leaves the body short: finish aborts the connection. */
    tw_http_request_finish(req);
}

static void stream_more(file_stream *fs)
{
    while (!fs->paused && fs->left > 0) {
        ssize_t n = read(fs->fd, block, fs->left < BLOCK ? (size_t)fs->left : BLOCK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0)
                tw_log(TW_LOG_WARN, "%s: read: %s", tw_http_request_path(fs->req),
                       strerror(errno));
            break;
        }
        fs->left -= (uint64_t)n;
        /* The client is gone: stop comes from the connection's loss. */
        if (tw_http_request_write(fs->req, block, (size_t)n) == -ENOTCONN)
            return;
    }
    if (!fs->paused)
        stream_end(fs);
}

static void stream_pause(void *arg)
{
    ((file_stream *)arg)->paused = true;
}

static void stream_resume(void *arg)
{
    file_stream *fs = arg;
    fs->paused = false;
    stream_more(fs);
}

static void stream_stop(void *arg)
{
    stream_end(arg);
}

static const tw_producer_ops stream_ops = {
    .pause = stream_pause,
    .resume = stream_resume,
    .stop = stream_stop,
};

/* Serving ------------------------------------------------------------------------------ */

/* Sends the open file fd (taken) with its status st. */
static void send_file(tw_http_request *req, int fd, const struct stat *st, const char *name)
{
    char date[TW_HTTP_DATE_LEN + 1];
    tw_http_date_format(st->st_mtime, date);
    tw_http_headers *h = tw_http_headers_new();
    if (not_modified(req, st)) {
        tw_http_headers_add(h, "Last-Modified", date);
        tw_http_request_respond(req, 304, h, NULL, 0);
        tw_http_headers_free(h);
        close(fd);
        return;
    }
    tw_http_headers_add(h, "Content-Type", content_type(name));
    tw_http_headers_add(h, "Last-Modified", date);
    uint64_t size = (uint64_t)st->st_size;

    bool head = !strcmp(tw_http_request_method(req), "HEAD");
    if (!head && size <= BLOCK) {
        size_t got = 0;
        while (got < size) {
            ssize_t n = read(fd, block + got, (size_t)size - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        close(fd);
        tw_http_request_respond(req, 200, h, block, got);
        tw_http_headers_free(h);
        return;
    }

    char length[24];
    snprintf(length, sizeof length, "%llu", (unsigned long long)size);
    tw_http_headers_add(h, "Content-Length", length);
    int rc = tw_http_request_start(req, 200, h);
    tw_http_headers_free(h);
    if (head || rc < 0) {
        close(fd);
        tw_http_request_finish(req);
        return;
    }
    file_stream *fs = tw_xcalloc(1, sizeof *fs);
    fs->req = req;
    fs->fd = fd;
    fs->left = size;
    tw_http_request_register_producer(req, &stream_ops, fs);
    stream_more(fs);
}

static tw_deferred *serve(tw_http_request *req, void *arg)
{
    const mount *m = arg;
    const char *rest = tw_http_request_param(req, "*");
    if (!safe_rest(rest)) {
        respond_plain(req, 400, NULL);
        return NULL;
    }
    int fd = open_inside(m, rest);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) < 0) {
        close(fd);
        fd = -404;
    }
    const char *name = rest;
    if (fd >= 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        const char *path = tw_http_request_path(req);
        if (path[strlen(path) - 1] != '/') {
            redirect_to_directory(req);
            return NULL;
        }
        char index[PATH_MAX];
        snprintf(index, sizeof index, "%sindex.html", rest);
        name = "index.html";
        fd = open_inside(m, index);
        if (fd == -404)
            fd = -403;                    /* no listing of directories */
        if (fd >= 0 && fstat(fd, &st) < 0) {
            close(fd);
            fd = -403;
        }
    }
    if (fd >= 0 && !S_ISREG(st.st_mode)) {
        close(fd);
        fd = -404;
    }
    if (fd < 0)
        respond_plain(req, -fd, NULL);
    else
        send_file(req, fd, &st, name);
    return NULL;
}

int tw_http_site_static(tw_http_site *s, const char *prefix, const char *directory)
{
    if (!prefix || prefix[0] != '/' || !directory)
        return -EINVAL;
    char *root = realpath(directory, NULL);
    if (!root)
        return -errno;
    struct stat st;
    if (stat(root, &st) < 0 || !S_ISDIR(st.st_mode)) {
        free(root);
        return -ENOTDIR;
    }
    int dirfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        int err = -errno;
        free(root);
        return err;
    }
    mount *m = tw_xcalloc(1, sizeof *m);
    m->root = root;
    m->root_len = strcmp(root, "/") ? strlen(root) : 0;
    m->dirfd = dirfd;

    size_t len = strlen(prefix);
    char *pattern = tw_xmalloc(len + 3);
    snprintf(pattern, len + 3, "%s%s*", prefix, prefix[len - 1] == '/' ? "" : "/");
    int rc = tw_http_site_route_full(s, "GET", pattern, serve, m, mount_free);
    free(pattern);
    if (rc < 0)
        mount_free(m);
    return rc;
}
