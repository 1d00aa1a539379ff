/* Tests for include/twine/http_server.h: sites, routes, handlers, static
 * files and the connection's HTTP/1.1 behaviour, over real sockets on
 * 127.0.0.1 (port picked by the kernel).
 *
 * The server runs in the reactor on the main thread. The client is a raw
 * HTTP client on blocking sockets in a helper thread, so each test sends
 * exact bytes and checks exact responses; it records what it saw and the
 * test asserts on that once the reactor has stopped. Date headers are
 * normalised to "Date: X" before comparing.
 *
 * TWINE_VALGRIND (set by `make check-valgrind`) scales the 50 MB static
 * file down to 5 MB. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#define SAFETY_SECONDS 60.0
#include "testutil.h"


#define SERVER "Server: twine/" PACKAGE_VERSION "\r\nDate: X\r\n"
#define TEXT "Content-Type: text/plain; charset=utf-8\r\n"
/* Sun, 06 Nov 1994 08:49:37 GMT */
#define MTIME 784111777
#define MTIME_TEXT "Sun, 06 Nov 1994 08:49:37 GMT"
#define DATE_LEN 29

/* Running the reactor ------------------------------------------------------------------ */


static size_t bulk_size(size_t full)
{
    return getenv("TWINE_VALGRIND") ? full / 10 : full;
}

/* Heap in use, every arena and mmapped block included. */
static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* The byte at offset i of the bulk bodies: not periodic at any block size. */
static unsigned char pattern(uint64_t i)
{
    return (unsigned char)(i + (i >> 8) * 3 + (i >> 16) * 7);
}

/* The files served --------------------------------------------------------------------- */

static char root[128];          /* the test's temporary directory */
static char www[160];           /* mounted at /static/ */
static size_t big_file_size;

static void write_file(const char *dir, const char *name, const char *content)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    struct utimbuf t = { MTIME, MTIME };
    utime(path, &t);
}

static void make_big_file(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/big.bin", www);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    static unsigned char chunk[1 << 20];
    for (uint64_t off = 0; off < big_file_size; off += sizeof chunk) {
        size_t n = big_file_size - off < sizeof chunk ? (size_t)(big_file_size - off)
                                                      : sizeof chunk;
        for (size_t i = 0; i < n; i++)
            chunk[i] = pattern(off + i);
        assert_int_equal(write(fd, chunk, n), (ssize_t)n);
    }
    close(fd);
}

static int group_setup(void **state)
{
    snprintf(root, sizeof root, "/tmp/twine-http-server-XXXXXX");
    if (!mkdtemp(root))
        return -1;
    snprintf(www, sizeof www, "%s/www", root);
    mkdir(www, 0755);
    write_file(root, "secret.txt", "TOP SECRET\n");
    write_file(www, "hello.txt", "hello\n");
    char path[512], target[512];
    snprintf(path, sizeof path, "%s/sub", www);
    mkdir(path, 0755);
    write_file(path, "index.html", "<h1>sub</h1>\n");
    snprintf(path, sizeof path, "%s/empty", www);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/fifo", www);
    if (mkfifo(path, 0644) < 0)
        return -1;
    static const char *const typed[] = { "a.html", "a.css", "a.js", "a.json", "a.txt", "a.png",
                                         "a.jpg", "a.gif", "a.svg", "a.ico", "a.wasm", "a.pdf",
                                         "a.bin", "noext", "UPPER.PNG" };
    for (size_t i = 0; i < sizeof typed / sizeof typed[0]; i++)
        write_file(www, typed[i], "x");
    /* A link out of the directory, and one that stays inside. */
    snprintf(path, sizeof path, "%s/link", www);
    snprintf(target, sizeof target, "%s/secret.txt", root);
    if (symlink(target, path) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/inner", www);
    if (symlink("hello.txt", path) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/absolute", www);
    snprintf(target, sizeof target, "%s/hello.txt", www);
    if (symlink(target, path) < 0)
        return -1;
    big_file_size = bulk_size(50u << 20);
    make_big_file();
    return 0;
}

static int group_teardown(void **state)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

/* Handlers ----------------------------------------------------------------------------- */

static tw_http_headers *text_headers(void)
{
    tw_http_headers *h = tw_http_headers_new();
    tw_http_headers_add(h, "Content-Type", "text/plain; charset=utf-8");
    return h;
}

static void respond_text(tw_http_request *req, int status, const char *text)
{
    tw_http_headers *h = text_headers();
    assert_int_equal(tw_http_request_respond(req, status, h, text, strlen(text)), 0);
    tw_http_headers_free(h);
}

static tw_http_response *text_response(const char *text)
{
    tw_http_response *resp = tw_http_response_new(200, NULL, text_headers());
    tw_http_response_set_body(resp, text, strlen(text));
    return resp;
}

static void free_response(void *r)
{
    tw_http_response_free(r);
}

static tw_deferred *hello(tw_http_request *req, void *arg)
{
    respond_text(req, 200, "Hello, world!\n");
    return NULL;
}

static tw_deferred *user(tw_http_request *req, void *arg)
{
    struct sockaddr_storage peer;
    socklen_t peer_len;
    assert_int_equal(tw_http_request_peer(req, &peer, &peer_len), 0);
    assert_int_equal(peer.ss_family, AF_INET);
    int major, minor;
    tw_http_request_version(req, &major, &minor);
    assert_int_equal(major, 1);
    assert_int_equal(minor, 1);
    assert_string_equal(tw_http_request_method(req), "GET");
    assert_string_equal(tw_http_request_target(req), "/users/42?x=1&y=2");
    assert_string_equal(tw_http_headers_get(tw_http_request_headers(req), "host"), "x");
    size_t len = 1;
    assert_string_equal(tw_http_request_body(req, &len), "");
    assert_int_equal(len, 0);

    char text[256];
    const char *q = tw_http_request_query(req);
    snprintf(text, sizeof text, "user %s q=%s\n", tw_http_request_param(req, "id"), q ? q : "-");
    respond_text(req, 200, text);
    return NULL;
}

static tw_deferred *me(tw_http_request *req, void *arg)
{
    respond_text(req, 200, "It's me\n");
    return NULL;
}

static tw_deferred *files(tw_http_request *req, void *arg)
{
    char text[256];
    snprintf(text, sizeof text, "rest=[%s] path=%s decoded=%s\n", tw_http_request_param(req, "*"),
             tw_http_request_path(req), tw_http_request_decoded_path(req));
    respond_text(req, 200, text);
    return NULL;
}

static void make_delay_page(tw_result *r, void *arg)
{
    tw_http_request *req = arg;   /* valid until the Deferred has fired */
    char text[64];
    snprintf(text, sizeof text, "delay %s\n", tw_http_request_param(req, "ms"));
    tw_result_set_value(r, text_response(text), free_response);
}

static tw_deferred *delay(tw_http_request *req, void *arg)
{
    return tw_defer_later(atoi(tw_http_request_param(req, "ms")) / 1000.0, make_delay_page, req);
}

static void answer_now(void *arg)
{
    respond_text(arg, 200, "answered later\n");
}

/* Answers through the request, from a timer. */
static tw_deferred *answer_later(tw_http_request *req, void *arg)
{
    tw_call_later(0.01, answer_now, req);
    return NULL;
}

static tw_deferred *fail_handler(tw_http_request *req, void *arg)
{
    return tw_fail(tw_failure_new(TW_ERR_SYS, EIO, NULL, "secret detail 1234"));
}

static tw_deferred *echo(tw_http_request *req, void *arg)
{
    size_t len;
    const void *body = tw_http_request_body(req, &len);
    tw_http_headers *h = tw_http_headers_new();
    tw_http_headers_add(h, "Content-Type", "application/octet-stream");
    tw_http_request_respond(req, 200, h, body, len);
    tw_http_headers_free(h);
    return NULL;
}

static tw_deferred *posted(tw_http_request *req, void *arg)
{
    respond_text(req, 200, "posted\n");
    return NULL;
}

static int finished_ok;

static void on_finished(tw_result *r, void *arg)
{
    finished_ok++;
}

static tw_deferred *stream_small(tw_http_request *req, void *arg)
{
    tw_deferred *finished = tw_http_request_notify_finish(req);
    tw_deferred_add_callback(finished, on_finished, NULL);
    tw_deferred_unref(finished);
    tw_http_headers *h = text_headers();
    assert_int_equal(tw_http_request_start(req, 200, h), 0);
    tw_http_headers_free(h);
    assert_int_equal(tw_http_request_respond(req, 200, NULL, "", 0), -EALREADY);
    assert_int_equal(tw_http_request_write(req, "hello ", 6), 0);
    assert_int_equal(tw_http_request_write(req, "world\n", 6), 0);
    assert_int_equal(tw_http_request_finish(req), 0);
    return NULL;
}

/* A handler whose Deferred never fires by itself, watching for the client
 * going away. */
static struct {
    atomic_int started;
    int lost, cancelled;
} hang_state;

static void on_hang_lost(tw_result *r, void *arg)
{
    if (tw_result_trap(r, TW_ERR_CONNECTION_LOST, -1))
        hang_state.lost++;
    count_down();
}

static void hang_cancel(tw_deferred *d, void *arg)
{
    hang_state.cancelled++;
    count_down();
}

static tw_deferred *hang(tw_http_request *req, void *arg)
{
    tw_deferred *finished = tw_http_request_notify_finish(req);
    tw_deferred_add_errback(finished, on_hang_lost, NULL);
    tw_deferred_unref(finished);
    atomic_store(&hang_state.started, 1);
    return tw_deferred_new(hang_cancel, NULL);
}

/* Streams a big chunked body with a producer, sampling the heap. */
typedef struct big_stream {
    tw_http_request *req;
    uint64_t sent, total;
    bool paused;
    int pauses;
} big_stream;

static struct {
    uint64_t total;             /* what to send */
    size_t heap_base, heap_max;
    int pauses;
    int finished;
    atomic_int done;            /* for the client thread */
} big_state;

static void big_end(big_stream *bs)
{
    tw_http_request *req = bs->req;
    big_state.pauses = bs->pauses;
    free(bs);
    big_state.finished++;
    atomic_store(&big_state.done, 1);
    tw_http_request_finish(req);
}

static void big_more(big_stream *bs)
{
    static unsigned char block[64 * 1024];
    while (!bs->paused && bs->sent < bs->total) {
        size_t n = bs->total - bs->sent < sizeof block ? (size_t)(bs->total - bs->sent)
                                                       : sizeof block;
        for (size_t i = 0; i < n; i++)
            block[i] = pattern(bs->sent + i);
        bs->sent += n;
        if (tw_http_request_write(bs->req, block, n) < 0)
            return;                       /* gone: stop follows */
        size_t heap = heap_in_use();
        if (heap > big_state.heap_max)
            big_state.heap_max = heap;
    }
    if (!bs->paused)
        big_end(bs);
}

static void big_pause(void *arg)
{
    big_stream *bs = arg;
    bs->paused = true;
    bs->pauses++;
}

static void big_resume(void *arg)
{
    big_stream *bs = arg;
    bs->paused = false;
    big_more(bs);
}

static void big_stop(void *arg)
{
    big_end(arg);
}

static const tw_producer_ops big_ops = { big_pause, big_resume, big_stop };

static tw_deferred *stream_big(tw_http_request *req, void *arg)
{
    big_stream *bs = calloc(1, sizeof *bs);
    bs->req = req;
    bs->total = big_state.total;
    tw_http_headers *h = tw_http_headers_new();
    tw_http_headers_add(h, "Content-Type", "application/octet-stream");
    tw_http_request_start(req, 200, h);
    tw_http_headers_free(h);
    big_state.heap_base = big_state.heap_max = heap_in_use();
    assert_int_equal(tw_http_request_register_producer(req, &big_ops, bs), 0);
    assert_int_equal(tw_http_request_register_producer(req, &big_ops, bs), -EBUSY);
    big_more(bs);
    return NULL;
}

/* The server --------------------------------------------------------------------------- */

static tw_http_site *site;
static tw_port *port;
static int port_no;

static int setup(void **state)
{
    site = tw_http_site_new();
    assert_int_equal(tw_http_site_static(site, "/static/", www), 0);
    assert_int_equal(tw_http_site_route(site, "GET", "/hello", hello, NULL), 0);
    assert_int_equal(tw_http_site_route(site, "GET", "/users/:id", user, NULL), 0);
    assert_int_equal(tw_http_site_route(site, "GET", "/users/me", me, NULL), 0);
    assert_int_equal(tw_http_site_route(site, "GET", "/files*", files, NULL), 0);
    assert_int_equal(tw_http_site_route(site, "GET", "/delay/:ms", delay, NULL), 0);
    assert_int_equal(tw_http_site_route(site, "GET", "/answer-later", answer_later, NULL), 0);
    assert_int_equal(tw_http_site_route(site, "GET", "/fail", fail_handler, NULL), 0);
    assert_int_equal(tw_http_site_route(site, "POST", "/echo", echo, NULL), 0);
    assert_int_equal(tw_http_site_route(site, "POST", "/only-post", posted, NULL), 0);
    assert_int_equal(tw_http_site_route(site, "PUT", "/only-post", posted, NULL), 0);
    assert_int_equal(tw_http_site_route(site, "GET", "/stream/small", stream_small, NULL), 0);
    assert_int_equal(tw_http_site_route(site, "GET", "/stream/big", stream_big, NULL), 0);
    assert_int_equal(tw_http_site_route(site, "GET", "/hang", hang, NULL), 0);
    int err = 0;
    port = tw_http_listen(site, "127.0.0.1", 0, &err);
    assert_non_null(port);
    port_no = tw_port_number(port);
    memset(&hang_state, 0, sizeof hang_state);
    memset(&big_state, 0, sizeof big_state);
    /* Not scaled down: it has to be well over what the kernel buffers. */
    big_state.total = 20u << 20;
    finished_ok = 0;
    return 0;
}

static void on_settled(tw_result *r, void *arg)
{
    count_down();
}

/* Stops the port and frees the site (unless the test did), then lets the
 * connections that are closing finish. */
static int teardown(void **state)
{
    if (site) {
        tw_deferred_unref(tw_port_stop_listening(port));
        tw_http_site_free(site);
        site = NULL;
    }
    waiting = 1;
    tw_deferred *d = tw_defer_later(0.02, NULL, NULL);
    tw_deferred_add_both(d, on_settled, NULL);
    tw_deferred_unref(d);
    run_reactor();
    return 0;
}

/* The client --------------------------------------------------------------------------- */

typedef struct client client;
struct client {
    void (*fn)(client *c);
    char *resp[8];              /* responses read, Date normalised */
    int closed;                 /* the server closed the connection at the end */
    double elapsed;
    long long n;                /* for the bulk tests */
    uint64_t bytes;
    int bad;                    /* mismatches seen */
};

static void client_finished(void *arg)
{
    count_down();
}

static void *client_thread(void *arg)
{
    client *c = arg;
    c->fn(c);
    tw_call_from_thread(client_finished, NULL);
    return NULL;
}

/* Runs c->fn in a thread while the reactor runs, until it and `events`
 * server-side events are done. */
static void run_client_with(client *c, int events)
{
    pthread_t th;
    waiting = 1 + events;
    assert_int_equal(pthread_create(&th, NULL, client_thread, c), 0);
    run_reactor();
    pthread_join(th, NULL);
}

static void run_client(client *c)
{
    run_client_with(c, 0);
}

static void client_free(client *c)
{
    for (int i = 0; i < 8; i++)
        free(c->resp[i]);
}

/* rcvbuf > 0 makes the kernel's receive buffer that small. */
static int cl_connect_rcvbuf(int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct timeval tv = { 10, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port_no) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int cl_connect(void)
{
    return cl_connect_rcvbuf(0);
}

static void cl_send_n(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void cl_send(int fd, const char *s)
{
    cl_send_n(fd, s, strlen(s));
}

typedef struct reader {
    int fd;
    size_t off, len;
    char buf[64 * 1024];
} reader;

static reader *rd_new(int fd)
{
    reader *r = calloc(1, sizeof *r);
    r->fd = fd;
    return r;
}

/* Reads more; returns what recv returned (0 at EOF). */
static ssize_t rd_fill(reader *r)
{
    if (r->off) {
        memmove(r->buf, r->buf + r->off, r->len);
        r->off = 0;
    }
    if (r->len == sizeof r->buf)
        return -1;
    ssize_t n;
    do
        n = recv(r->fd, r->buf + r->len, sizeof r->buf - r->len, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        r->len += (size_t)n;
    return n;
}

static void rd_consume(reader *r, size_t n)
{
    r->off += n;
    r->len -= n;
}

/* A growing string. */
typedef struct str {
    char *s;
    size_t len, cap;
} str;

static void str_add(str *s, const char *p, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        s->cap = (s->len + n + 1) * 2;
        s->s = realloc(s->s, s->cap);
    }
    memcpy(s->s + s->len, p, n);
    s->len += n;
    s->s[s->len] = '\0';
}

/* Appends n bytes from the stream to out (or drops them with out NULL). */
static int rd_take(reader *r, str *out, size_t n)
{
    while (n) {
        if (r->len == 0 && rd_fill(r) <= 0)
            return -1;
        size_t k = r->len < n ? r->len : n;
        if (out)
            str_add(out, r->buf + r->off, k);
        rd_consume(r, k);
        n -= k;
    }
    return 0;
}

/* Appends a line with its CRLF to out; returns its start there. */
static long rd_line(reader *r, str *out)
{
    char *end;
    while (!(end = memmem(r->buf + r->off, r->len, "\r\n", 2)))
        if (rd_fill(r) <= 0)
            return -1;
    long start = (long)out->len;
    size_t n = (size_t)(end + 2 - (r->buf + r->off));
    str_add(out, r->buf + r->off, n);
    rd_consume(r, n);
    return start;
}

/* The value of header `name` in a response head, or NULL (static storage). */
static const char *header_value(const char *head, const char *name)
{
    static char value[256];
    size_t n = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p && p[2] != '\r'; p = strstr(p + 2, "\r\n")) {
        if (!strncasecmp(p + 2, name, n) && p[2 + n] == ':') {
            const char *v = p + 3 + n;
            v += strspn(v, " ");
            size_t len = strcspn(v, "\r");
            snprintf(value, sizeof value, "%.*s", (int)len, v);
            return value;
        }
    }
    return NULL;
}

static void normalise_date(char *resp)
{
    char *d = strstr(resp, "\r\nDate: ");
    if (!d)
        return;
    d += 8;
    size_t n = strcspn(d, "\r");
    d[0] = 'X';
    memmove(d + 1, d + n, strlen(d + n) + 1);
}

/* Reads one whole response as sent (the chunk framing kept). NULL when the
 * connection ends or times out first. */
static char *rd_response(reader *r, int head_request)
{
    char *end;
    while (!(end = memmem(r->buf + r->off, r->len, "\r\n\r\n", 4)))
        if (rd_fill(r) <= 0)
            return NULL;
    str out = { 0 };
    str_add(&out, r->buf + r->off, (size_t)(end + 4 - (r->buf + r->off)));
    rd_consume(r, out.len);
    int status = atoi(out.s + 9);
    const char *te = header_value(out.s, "Transfer-Encoding");
    const char *cl = header_value(out.s, "Content-Length");
    long long length = cl ? atoll(cl) : -1;
    int ok = 0;
    if (head_request || status < 200 || status == 204 || status == 304) {
        ok = 1;
    } else if (te && !strcmp(te, "chunked")) {
        for (;;) {
            long at = rd_line(r, &out);
            if (at < 0)
                break;
            size_t size = strtoul(out.s + at, NULL, 16);
            if (rd_take(r, &out, size + 2) < 0)
                break;
            if (size == 0) {
                ok = 1;
                break;
            }
        }
    } else if (length >= 0) {
        ok = rd_take(r, &out, (size_t)length) == 0;
    } else {
        do {
            str_add(&out, r->buf + r->off, r->len);
            rd_consume(r, r->len);
        } while (rd_fill(r) > 0);
        ok = 1;
    }
    if (!ok) {
        free(out.s);
        return NULL;
    }
    normalise_date(out.s);
    return out.s;
}

/* 1 when the server has closed the connection (and sent nothing more). */
static int rd_eof(reader *r)
{
    return r->len == 0 && rd_fill(r) == 0;
}

/* One request on a new connection: the response and whether the server
 * closed after it. */
static char *exchange(const char *request, int head_request, int *closed)
{
    int fd = cl_connect();
    if (fd < 0)
        return NULL;
    reader *r = rd_new(fd);
    cl_send(fd, request);
    char *resp = rd_response(r, head_request);
    if (closed)
        *closed = rd_eof(r);
    free(r);
    close(fd);
    return resp;
}

/* A client running a list of single requests, each on its own connection. */
static const char *const *script;

static void run_script(client *c)
{
    for (int i = 0; script[i] && i < 8; i++)
        c->resp[i] = exchange(script[i], !strncmp(script[i], "HEAD", 4), NULL);
}

static void run_requests(client *c, const char *const *requests)
{
    script = requests;
    c->fn = run_script;
    run_client(c);
}

/* Static files ------------------------------------------------------------------------- */

static void cl_get_and_head(client *c)
{
    int fd = cl_connect();
    reader *r = rd_new(fd);
    cl_send(fd, "GET /static/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    c->resp[0] = rd_response(r, 0);
    cl_send(fd, "HEAD /static/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    c->resp[1] = rd_response(r, 1);
    cl_send(fd, "GET /static/absolute HTTP/1.1\r\nHost: x\r\n\r\n");
    c->resp[3] = rd_response(r, 0);
    cl_send(fd, "GET /static/inner HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    c->resp[2] = rd_response(r, 0);
    c->closed = rd_eof(r);
    free(r);
    close(fd);
}

static void test_static_get_and_head(void **state)
{
    client c = { .fn = cl_get_and_head };
    run_client(&c);
    assert_string_equal(c.resp[0], "HTTP/1.1 200 OK\r\n" SERVER TEXT
                                   "Last-Modified: " MTIME_TEXT "\r\n"
                                   "Content-Length: 6\r\n\r\nhello\n");
    assert_string_equal(c.resp[1], "HTTP/1.1 200 OK\r\n" SERVER TEXT
                                   "Last-Modified: " MTIME_TEXT "\r\n"
                                   "Content-Length: 6\r\n\r\n");
    /* Links that stay inside the directory are followed; no extension. */
    assert_string_equal(c.resp[2], "HTTP/1.1 200 OK\r\n" SERVER
                                   "Content-Type: application/octet-stream\r\n"
                                   "Last-Modified: " MTIME_TEXT "\r\n"
                                   "Content-Length: 6\r\nConnection: close\r\n\r\nhello\n");
    assert_string_equal(c.resp[3], "HTTP/1.1 200 OK\r\n" SERVER
                                   "Content-Type: application/octet-stream\r\n"
                                   "Last-Modified: " MTIME_TEXT "\r\n"
                                   "Content-Length: 6\r\n\r\nhello\n");
    assert_true(c.closed);
    client_free(&c);
}

static void test_static_not_modified(void **state)
{
    static const char *const requests[] = {
        "GET /static/hello.txt HTTP/1.1\r\nIf-Modified-Since: " MTIME_TEXT "\r\n\r\n",
        "GET /static/hello.txt HTTP/1.1\r\n"
        "If-Modified-Since: Sunday, 06-Nov-94 08:49:37 GMT\r\n\r\n",
        "GET /static/hello.txt HTTP/1.1\r\nIf-Modified-Since: Sun Nov  6 08:49:37 1994\r\n\r\n",
        "GET /static/hello.txt HTTP/1.1\r\n"
        "If-Modified-Since: Sun, 06 Nov 1994 08:49:36 GMT\r\n\r\n",
        "GET /static/hello.txt HTTP/1.1\r\nIf-Modified-Since: yesterday\r\n\r\n",
        NULL,
    };
    client c = { 0 };
    run_requests(&c, requests);
    const char *not_modified = "HTTP/1.1 304 Not Modified\r\n" SERVER
                               "Last-Modified: " MTIME_TEXT "\r\n\r\n";
    assert_string_equal(c.resp[0], not_modified);
    assert_string_equal(c.resp[1], not_modified);
    assert_string_equal(c.resp[2], not_modified);
    /* Modified since (a second later), or a date that does not parse. */
    assert_true(!strncmp(c.resp[3], "HTTP/1.1 200 OK\r\n", 17));
    assert_true(!strncmp(c.resp[4], "HTTP/1.1 200 OK\r\n", 17));
    client_free(&c);
}

static void test_not_found_and_not_allowed(void **state)
{
    static const char *const requests[] = {
        "GET /nothing/here HTTP/1.1\r\n\r\n",
        "GET /static/missing.txt HTTP/1.1\r\n\r\n",
        "POST /static/hello.txt HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        "GET /only-post HTTP/1.1\r\n\r\n",
        "HEAD /nothing HTTP/1.1\r\n\r\n",
        "GET /users/me HTTP/1.1\r\n\r\n",
        "GET /users/ HTTP/1.1\r\n\r\n",
        NULL,
    };
    client c = { 0 };
    run_requests(&c, requests);
    const char *not_found = "HTTP/1.1 404 Not Found\r\n" SERVER TEXT
                            "Content-Length: 14\r\n\r\n404 Not Found\n";
    assert_string_equal(c.resp[0], not_found);
    assert_string_equal(c.resp[1], not_found);
    assert_string_equal(c.resp[2], "HTTP/1.1 405 Method Not Allowed\r\n" SERVER TEXT
                                   "Allow: GET, HEAD\r\n"
                                   "Content-Length: 23\r\n\r\n405 Method Not Allowed\n");
    assert_string_equal(c.resp[3], "HTTP/1.1 405 Method Not Allowed\r\n" SERVER TEXT
                                   "Allow: POST, PUT\r\n"
                                   "Content-Length: 23\r\n\r\n405 Method Not Allowed\n");
    assert_string_equal(c.resp[4], "HTTP/1.1 404 Not Found\r\n" SERVER TEXT
                                   "Content-Length: 14\r\n\r\n");
    /* An exact pattern beats a ":name" one, added first or not; ":name"
     * needs a segment. */
    assert_string_equal(c.resp[5], "HTTP/1.1 200 OK\r\n" SERVER TEXT
                                   "Content-Length: 8\r\n\r\nIt's me\n");
    assert_string_equal(c.resp[6], not_found);
    client_free(&c);
}

static void test_path_traversal_refused(void **state)
{
    static const char *const requests[] = {
        "GET /static/../secret.txt HTTP/1.1\r\n\r\n",
        "GET /static/%2e%2e/secret.txt HTTP/1.1\r\n\r\n",
        "GET /static/%2E%2E%2Fsecret.txt HTTP/1.1\r\n\r\n",
        "GET /static/sub/../../secret.txt HTTP/1.1\r\n\r\n",
        "GET http://example.com/static/../secret.txt HTTP/1.1\r\n\r\n",
        "GET /static//etc/passwd HTTP/1.1\r\n\r\n",
        "GET /static/link HTTP/1.1\r\n\r\n",
        "GET /static/hello.txt%00.png HTTP/1.1\r\n\r\n",
        NULL,
    };
    client c = { 0 };
    run_requests(&c, requests);
    const char *bad = "HTTP/1.1 400 Bad Request\r\n" SERVER TEXT
                      "Content-Length: 16\r\n\r\n400 Bad Request\n";
    for (int i = 0; i < 5; i++)
        assert_string_equal(c.resp[i], bad);
    assert_string_equal(c.resp[5], "HTTP/1.1 404 Not Found\r\n" SERVER TEXT
                                   "Content-Length: 14\r\n\r\n404 Not Found\n");
    assert_string_equal(c.resp[6], "HTTP/1.1 403 Forbidden\r\n" SERVER TEXT
                                   "Content-Length: 14\r\n\r\n403 Forbidden\n");
    assert_string_equal(c.resp[7], bad);
    for (int i = 0; i < 8; i++)
        assert_null(strstr(c.resp[i], "SECRET"));
    client_free(&c);
}

static void test_directory_index(void **state)
{
    static const char *const requests[] = {
        "GET /static/sub/ HTTP/1.1\r\n\r\n",
        "GET /static/sub?x=1 HTTP/1.1\r\n\r\n",
        "GET /static/empty/ HTTP/1.1\r\n\r\n",
        "GET /static/ HTTP/1.1\r\n\r\n",
        "GET /static/fifo HTTP/1.1\r\n\r\n",
        NULL,
    };
    client c = { 0 };
    run_requests(&c, requests);
    assert_string_equal(c.resp[0], "HTTP/1.1 200 OK\r\n" SERVER
                                   "Content-Type: text/html; charset=utf-8\r\n"
                                   "Last-Modified: " MTIME_TEXT "\r\n"
                                   "Content-Length: 13\r\n\r\n<h1>sub</h1>\n");
    assert_string_equal(c.resp[1], "HTTP/1.1 301 Moved Permanently\r\n" SERVER TEXT
                                   "Location: /static/sub/?x=1\r\n"
                                   "Content-Length: 22\r\n\r\n301 Moved Permanently\n");
    const char *forbidden = "HTTP/1.1 403 Forbidden\r\n" SERVER TEXT
                            "Content-Length: 14\r\n\r\n403 Forbidden\n";
    assert_string_equal(c.resp[2], forbidden);
    assert_string_equal(c.resp[3], forbidden);
    /* Not a regular file (and opening it does not block). */
    assert_string_equal(c.resp[4], "HTTP/1.1 404 Not Found\r\n" SERVER TEXT
                                   "Content-Length: 14\r\n\r\n404 Not Found\n");
    client_free(&c);
}

/* A directory mounted at "/": the redirect never leaves the host. */
static void test_static_at_root(void **state)
{
    tw_http_site *root_site = tw_http_site_new();
    assert_int_equal(tw_http_site_static(root_site, "/", www), 0);
    int err = 0, main_port = port_no;
    tw_port *p = tw_http_listen(root_site, "127.0.0.1", 0, &err);
    assert_non_null(p);
    port_no = tw_port_number(p);
    static const char *const requests[] = {
        "GET //sub HTTP/1.1\r\n\r\n",
        "GET /hello.txt HTTP/1.1\r\n\r\n",
        NULL,
    };
    client c = { 0 };
    run_requests(&c, requests);
    port_no = main_port;
    tw_deferred_unref(tw_port_stop_listening(p));
    tw_http_site_free(root_site);
    assert_string_equal(c.resp[0], "HTTP/1.1 301 Moved Permanently\r\n" SERVER TEXT
                                   "Location: /sub/\r\n"
                                   "Content-Length: 22\r\n\r\n301 Moved Permanently\n");
    assert_true(!strncmp(c.resp[1], "HTTP/1.1 200 OK\r\n", 17));
    client_free(&c);
}

static const char *const mime_files[][2] = {
    { "a.html", "text/html; charset=utf-8" },
    { "a.css", "text/css; charset=utf-8" },
    { "a.js", "text/javascript; charset=utf-8" },
    { "a.json", "application/json" },
    { "a.txt", "text/plain; charset=utf-8" },
    { "a.png", "image/png" },
    { "a.jpg", "image/jpeg" },
    { "a.gif", "image/gif" },
    { "a.svg", "image/svg+xml" },
    { "a.ico", "image/x-icon" },
    { "a.wasm", "application/wasm" },
    { "a.pdf", "application/pdf" },
    { "a.bin", "application/octet-stream" },
    { "noext", "application/octet-stream" },
    { "UPPER.PNG", "image/png" },
};
#define N_MIME (sizeof mime_files / sizeof mime_files[0])

static void cl_mime(client *c)
{
    int fd = cl_connect();
    reader *r = rd_new(fd);
    for (size_t i = 0; i < N_MIME; i++) {
        char req[128];
        snprintf(req, sizeof req, "GET /static/%s HTTP/1.1\r\n\r\n", mime_files[i][0]);
        cl_send(fd, req);
        char *resp = rd_response(r, 0);
        const char *type = resp ? header_value(resp, "Content-Type") : NULL;
        if (type && !strcmp(type, mime_files[i][1]))
            c->n++;
        else
            fprintf(stderr, "%s: %s\n", mime_files[i][0], type ? type : "(none)");
        free(resp);
    }
    free(r);
    close(fd);
}

static void test_mime_types(void **state)
{
    client c = { .fn = cl_mime };
    run_client(&c);
    assert_int_equal(c.n, N_MIME);
}

/* Connections -------------------------------------------------------------------------- */

static void cl_keep_alive(client *c)
{
    int fd = cl_connect();
    reader *r = rd_new(fd);
    cl_send(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    c->resp[0] = rd_response(r, 0);
    cl_send(fd, "GET /users/42?x=1&y=2 HTTP/1.1\r\nHost: x\r\n\r\n");
    c->resp[1] = rd_response(r, 0);
    /* HTTP/1.0 asking for keep-alive gets it. */
    cl_send(fd, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    c->resp[2] = rd_response(r, 0);
    cl_send(fd, "GET /files/a%20b/c HTTP/1.0\r\n\r\n");
    c->resp[3] = rd_response(r, 0);
    c->closed = rd_eof(r);
    free(r);
    close(fd);
}

static void test_keep_alive_and_http10(void **state)
{
    client c = { .fn = cl_keep_alive };
    run_client(&c);
    assert_string_equal(c.resp[0], "HTTP/1.1 200 OK\r\n" SERVER TEXT
                                   "Content-Length: 14\r\n\r\nHello, world!\n");
    assert_string_equal(c.resp[1], "HTTP/1.1 200 OK\r\n" SERVER TEXT
                                   "Content-Length: 18\r\n\r\nuser 42 q=x=1&y=2\n");
    assert_string_equal(c.resp[2], "HTTP/1.1 200 OK\r\n" SERVER TEXT
                                   "Content-Length: 14\r\nConnection: keep-alive\r\n\r\n"
                                   "Hello, world!\n");
    /* Without keep-alive, HTTP/1.0 closes after the response. */
    assert_string_equal(c.resp[3], "HTTP/1.1 200 OK\r\n" SERVER TEXT
                                   "Content-Length: 55\r\nConnection: close\r\n\r\n"
                                   "rest=[/a b/c] path=/files/a%20b/c decoded=/files/a b/c\n");
    assert_true(c.closed);
    client_free(&c);
}

static void cl_pipelined(client *c)
{
    int fd = cl_connect();
    reader *r = rd_new(fd);
    /* The first answer is the slowest: the order must hold anyway. */
    cl_send(fd, "GET /delay/80 HTTP/1.1\r\n\r\n"
                "GET /hello HTTP/1.1\r\n\r\n"
                "HEAD /delay/10 HTTP/1.1\r\n\r\n"
                "GET /answer-later HTTP/1.1\r\n\r\n"
                "POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcde"
                "GET /delay/0 HTTP/1.1\r\nConnection: close\r\n\r\n");
    c->resp[0] = rd_response(r, 0);
    c->resp[1] = rd_response(r, 0);
    c->resp[2] = rd_response(r, 1);
    c->resp[3] = rd_response(r, 0);
    c->resp[4] = rd_response(r, 0);
    c->resp[5] = rd_response(r, 0);
    c->closed = rd_eof(r);
    free(r);
    close(fd);
}

static void test_pipelined_in_order(void **state)
{
    client c = { .fn = cl_pipelined };
    run_client(&c);
    assert_string_equal(c.resp[0], "HTTP/1.1 200 OK\r\n" SERVER TEXT
                                   "Content-Length: 9\r\n\r\ndelay 80\n");
    assert_string_equal(c.resp[1], "HTTP/1.1 200 OK\r\n" SERVER TEXT
                                   "Content-Length: 14\r\n\r\nHello, world!\n");
    assert_string_equal(c.resp[2], "HTTP/1.1 200 OK\r\n" SERVER TEXT
                                   "Content-Length: 9\r\n\r\n");
    assert_string_equal(c.resp[3], "HTTP/1.1 200 OK\r\n" SERVER TEXT
                                   "Content-Length: 15\r\n\r\nanswered later\n");
    assert_string_equal(c.resp[4], "HTTP/1.1 200 OK\r\n" SERVER
                                   "Content-Type: application/octet-stream\r\n"
                                   "Content-Length: 5\r\n\r\nabcde");
    assert_string_equal(c.resp[5], "HTTP/1.1 200 OK\r\n" SERVER TEXT
                                   "Content-Length: 8\r\nConnection: close\r\n\r\ndelay 0\n");
    assert_true(c.closed);
    client_free(&c);
}

/* Handlers ----------------------------------------------------------------------------- */

static void test_handler_failure_is_500(void **state)
{
    static const char *const requests[] = { "GET /fail HTTP/1.1\r\n\r\n", NULL };
    client c = { 0 };
    tw_test_capture_log();
    run_requests(&c, requests);
    tw_test_restore_log();
    assert_string_equal(c.resp[0], "HTTP/1.1 500 Internal Server Error\r\n" SERVER TEXT
                                   "Content-Length: 26\r\n\r\n500 Internal Server Error\n");
    assert_null(strstr(c.resp[0], "secret"));
    assert_non_null(strstr(tw_test_captured.all, "GET /fail: the handler failed"));
    assert_non_null(strstr(tw_test_captured.all, "secret detail 1234"));
    assert_null(strstr(tw_test_captured.all, "Unhandled"));
    client_free(&c);
}

static void cl_disconnect(client *c)
{
    int fd = cl_connect();
    cl_send(fd, "GET /hang HTTP/1.1\r\n\r\n");
    for (int i = 0; i < 1000 && !atomic_load(&hang_state.started); i++)
        usleep(1000);
    close(fd);
}

static void test_notify_finish_on_disconnect(void **state)
{
    client c = { .fn = cl_disconnect };
    run_client_with(&c, 2);
    assert_int_equal(hang_state.lost, 1);
    assert_int_equal(hang_state.cancelled, 1);
}

static void cl_streams(client *c)
{
    c->resp[0] = exchange("GET /stream/small HTTP/1.1\r\n\r\n", 0, NULL);
    c->resp[1] = exchange("GET /stream/small HTTP/1.0\r\n\r\n", 0, &c->closed);
    c->resp[2] = exchange("HEAD /stream/small HTTP/1.1\r\n\r\n", 1, NULL);
}

static void test_streamed_response(void **state)
{
    client c = { .fn = cl_streams };
    run_client(&c);
    assert_string_equal(c.resp[0], "HTTP/1.1 200 OK\r\n" SERVER TEXT
                                   "Transfer-Encoding: chunked\r\n\r\n"
                                   "6\r\nhello \r\n6\r\nworld\n\r\n0\r\n\r\n");
    /* HTTP/1.0 cannot chunk: the body runs to the close. */
    assert_string_equal(c.resp[1], "HTTP/1.1 200 OK\r\n" SERVER TEXT
                                   "Connection: close\r\n\r\nhello world\n");
    assert_true(c.closed);
    assert_string_equal(c.resp[2], "HTTP/1.1 200 OK\r\n" SERVER TEXT
                                   "Transfer-Encoding: chunked\r\n\r\n");
    assert_int_equal(finished_ok, 3);
    client_free(&c);
}

/* A client that stops reading: the send timeout aborts the connection, and
 * the response's producer is stopped. */
static void cl_not_reading(client *c)
{
    int fd = cl_connect_rcvbuf(64 * 1024);
    cl_send(fd, "GET /stream/big HTTP/1.1\r\n\r\n");
    for (int i = 0; i < 10000 && !atomic_load(&big_state.done); i++)
        usleep(1000);
    char buf[65536];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
        c->bytes += (uint64_t)n;
    close(fd);
}

static void test_send_timeout(void **state)
{
    assert_int_equal(tw_http_site_set_idle_timeout(site, 0.3), 0);
    big_state.total = (uint64_t)1 << 40;
    client c = { .fn = cl_not_reading };
    run_client(&c);
    assert_int_equal(big_state.finished, 1);
    assert_true(big_state.pauses > 0);
    assert_true(c.bytes < 1u << 30);
}

/* Freeing the site aborts its connections: a request being handled hears
 * of it, and its handler's Deferred is cancelled. */
static void free_site_now(void *arg)
{
    tw_deferred_unref(tw_port_stop_listening(port));
    tw_http_site_free(site);
    site = NULL;
    count_down();
}

static void cl_site_freed(client *c)
{
    int idle = cl_connect(), busy = cl_connect();
    reader *r = rd_new(idle);
    cl_send(idle, "GET /hello HTTP/1.1\r\n\r\n");
    c->resp[0] = rd_response(r, 0);
    cl_send(busy, "GET /hang HTTP/1.1\r\n\r\n");
    for (int i = 0; i < 1000 && !atomic_load(&hang_state.started); i++)
        usleep(1000);
    tw_call_from_thread(free_site_now, NULL);
    c->n += rd_eof(r);
    r->fd = busy;
    c->n += rd_fill(r) <= 0;
    free(r);
    close(idle);
    close(busy);
}

static void test_site_free_aborts_connections(void **state)
{
    client c = { .fn = cl_site_freed };
    run_client_with(&c, 3);
    assert_non_null(c.resp[0]);
    assert_int_equal(c.n, 2);
    assert_int_equal(hang_state.lost, 1);
    assert_int_equal(hang_state.cancelled, 1);
    client_free(&c);
}

/* Request bodies ----------------------------------------------------------------------- */

static void cl_bodies(client *c)
{
    int fd = cl_connect();
    reader *r = rd_new(fd);
    cl_send(fd, "POST /echo HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello");
    usleep(20000);
    cl_send(fd, " world");
    c->resp[0] = rd_response(r, 0);
    cl_send(fd, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                "5\r\nhello\r\n");
    usleep(20000);
    cl_send(fd, "7\r\n, chunk\r\n0\r\nX-Trailer: yes\r\n\r\n");
    c->resp[1] = rd_response(r, 0);
    /* Expect: 100-continue: the server invites the body first. */
    cl_send(fd, "POST /echo HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    c->resp[2] = rd_response(r, 0);
    cl_send(fd, "body");
    c->resp[3] = rd_response(r, 0);
    free(r);
    close(fd);
}

static void test_request_bodies(void **state)
{
    client c = { .fn = cl_bodies };
    run_client(&c);
    const char *head = "HTTP/1.1 200 OK\r\n" SERVER "Content-Type: application/octet-stream\r\n";
    char want[256];
    snprintf(want, sizeof want, "%sContent-Length: 11\r\n\r\nhello world", head);
    assert_string_equal(c.resp[0], want);
    snprintf(want, sizeof want, "%sContent-Length: 12\r\n\r\nhello, chunk", head);
    assert_string_equal(c.resp[1], want);
    assert_string_equal(c.resp[2], "HTTP/1.1 100 Continue\r\n\r\n");
    snprintf(want, sizeof want, "%sContent-Length: 4\r\n\r\nbody", head);
    assert_string_equal(c.resp[3], want);
    client_free(&c);
}

static void cl_too_large(client *c)
{
    static char body[5000];
    memset(body, 'b', sizeof body);
    /* Announced too large: answered before the body, which is drained. */
    int fd = cl_connect();
    reader *r = rd_new(fd);
    cl_send(fd, "POST /echo HTTP/1.1\r\nContent-Length: 5000\r\n\r\n");
    cl_send_n(fd, body, sizeof body);
    c->resp[0] = rd_response(r, 0);
    c->n += rd_eof(r);
    free(r);
    close(fd);
    /* Chunked, growing over the limit. */
    fd = cl_connect();
    r = rd_new(fd);
    cl_send(fd, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 5; i++) {
        cl_send(fd, "3e8\r\n");
        cl_send_n(fd, body, 1000);
        cl_send(fd, "\r\n");
    }
    c->resp[1] = rd_response(r, 0);
    c->n += rd_eof(r);
    free(r);
    close(fd);
    /* With Expect: 100-continue, no invitation, the refusal at once. */
    fd = cl_connect();
    r = rd_new(fd);
    cl_send(fd, "POST /echo HTTP/1.1\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n");
    c->resp[2] = rd_response(r, 0);
    c->n += rd_eof(r);
    free(r);
    close(fd);
}

static void test_body_too_large(void **state)
{
    tw_http_site_set_max_body(site, 4096);
    client c = { .fn = cl_too_large };
    run_client(&c);
    const char *too_large = "HTTP/1.1 413 Content Too Large\r\n" SERVER TEXT
                            "Content-Length: 22\r\nConnection: close\r\n\r\n"
                            "413 Content Too Large\n";
    assert_string_equal(c.resp[0], too_large);
    assert_string_equal(c.resp[1], too_large);
    assert_string_equal(c.resp[2], too_large);
    assert_int_equal(c.n, 3);
    client_free(&c);
}

static void cl_bad_requests(client *c)
{
    c->resp[0] = exchange("HELLO WORLD\r\n\r\n", 0, &c->closed);
    int closed = 0;
    c->resp[1] = exchange("GET / HTTP/1.1\r\nBad Header\r\n\r\n", 0, &closed);
    c->closed += closed;
    c->resp[2] = exchange("GET / HTTP/2.0\r\n\r\n", 0, &closed);
    c->closed += closed;
    /* A head over the limit (64 KiB). */
    size_t n = 100 * 1024;
    char *big = malloc(n + 64);
    int k = snprintf(big, n + 64, "GET / HTTP/1.1\r\nX-Big: ");
    memset(big + k, 'a', n);
    strcpy(big + k + n, "\r\n\r\n");
    c->resp[3] = exchange(big, 0, &closed);
    c->closed += closed;
    free(big);
}

static void test_bad_requests(void **state)
{
    client c = { .fn = cl_bad_requests };
    run_client(&c);
    const char *bad = "HTTP/1.1 400 Bad Request\r\n" SERVER TEXT
                      "Content-Length: 16\r\nConnection: close\r\n\r\n400 Bad Request\n";
    assert_string_equal(c.resp[0], bad);
    assert_string_equal(c.resp[1], bad);
    assert_string_equal(c.resp[2], "HTTP/1.1 505 HTTP Version Not Supported\r\n" SERVER TEXT
                                   "Content-Length: 31\r\nConnection: close\r\n\r\n"
                                   "505 HTTP Version Not Supported\n");
    assert_string_equal(c.resp[3], "HTTP/1.1 431 Request Header Fields Too Large\r\n" SERVER
                                   TEXT "Content-Length: 36\r\nConnection: close\r\n\r\n"
                                   "431 Request Header Fields Too Large\n");
    assert_int_equal(c.closed, 4);
    client_free(&c);
}

/* Timeouts ----------------------------------------------------------------------------- */

static void cl_timeouts(client *c)
{
    /* Idle after a response. */
    int fd = cl_connect();
    reader *r = rd_new(fd);
    cl_send(fd, "GET /hello HTTP/1.1\r\n\r\n");
    c->resp[0] = rd_response(r, 0);
    double t0 = monotonic_now();
    c->n += rd_eof(r);
    c->elapsed = monotonic_now() - t0;
    free(r);
    close(fd);
    /* Idle from the start. */
    fd = cl_connect();
    r = rd_new(fd);
    c->n += rd_eof(r);
    free(r);
    close(fd);
    /* A head that never ends (slowloris). */
    fd = cl_connect();
    r = rd_new(fd);
    cl_send(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n");
    usleep(100000);
    cl_send(fd, "X-Slow: 1\r\n");
    c->resp[1] = rd_response(r, 0);
    c->n += rd_eof(r);
    free(r);
    close(fd);
    /* A body that stops. */
    fd = cl_connect();
    r = rd_new(fd);
    cl_send(fd, "POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nhalf");
    c->resp[2] = rd_response(r, 0);
    c->n += rd_eof(r);
    free(r);
    close(fd);
}

static void test_timeouts(void **state)
{
    assert_int_equal(tw_http_site_set_idle_timeout(site, 0.3), 0);
    assert_int_equal(tw_http_site_set_head_timeout(site, 0.3), 0);
    assert_int_equal(tw_http_site_set_idle_timeout(site, 0), -EINVAL);
    client c = { .fn = cl_timeouts };
    run_client(&c);
    assert_string_equal(c.resp[0], "HTTP/1.1 200 OK\r\n" SERVER TEXT
                                   "Content-Length: 14\r\n\r\nHello, world!\n");
    assert_int_equal(c.n, 4);
    assert_true(c.elapsed > 0.2 && c.elapsed < 5);
    const char *timeout = "HTTP/1.1 408 Request Timeout\r\n" SERVER TEXT
                          "Content-Length: 20\r\nConnection: close\r\n\r\n408 Request Timeout\n";
    assert_string_equal(c.resp[1], timeout);
    assert_string_equal(c.resp[2], timeout);
    client_free(&c);
}

/* Bulk --------------------------------------------------------------------------------- */

/* Reads a chunked body, checking it against the pattern, slowly at first. */
static void cl_big_stream(client *c)
{
    int fd = cl_connect_rcvbuf(64 * 1024);
    reader *r = rd_new(fd);
    cl_send(fd, "GET /stream/big HTTP/1.1\r\n\r\n");
    str head = { 0 };
    char *end;
    while (!(end = memmem(r->buf + r->off, r->len, "\r\n\r\n", 4)))
        if (rd_fill(r) <= 0)
            goto out;
    rd_consume(r, (size_t)(end + 4 - (r->buf + r->off)));
    for (;;) {
        head.len = 0;
        long at = rd_line(r, &head);
        if (at < 0)
            break;
        size_t size = strtoul(head.s + at, NULL, 16);
        if (size == 0) {
            c->n = 1;
            break;
        }
        while (size) {
            if (r->len == 0 && rd_fill(r) <= 0)
                goto out;
            size_t k = r->len < size ? r->len : size;
            for (size_t i = 0; i < k; i++)
                c->bad += (unsigned char)r->buf[r->off + i] != pattern(c->bytes + i);
            c->bytes += k;
            rd_consume(r, k);
            size -= k;
            if (c->bytes < (4u << 20))
                usleep(300);              /* a slow reader */
        }
        if (rd_take(r, NULL, 2) < 0)
            break;
    }
out:
    free(head.s);
    free(r);
    close(fd);
}

static void test_stream_to_slow_reader(void **state)
{
    client c = { .fn = cl_big_stream };
    run_client(&c);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.bad, 0);
    assert_int_equal(c.bytes, big_state.total);
    assert_int_equal(big_state.finished, 1);
    assert_true(big_state.pauses > 0);
    /* The server never held more than a few blocks of it. */
    assert_true(big_state.heap_max - big_state.heap_base < 2u << 20);
}

static struct {
    size_t base, max;
} file_heap;

static void sample_heap(tw_result *r, void *arg)
{
    size_t heap = heap_in_use();
    if (heap > file_heap.max)
        file_heap.max = heap;
}

static void cl_big_file(client *c)
{
    int fd = cl_connect();
    reader *r = rd_new(fd);
    cl_send(fd, "GET /static/big.bin HTTP/1.1\r\n\r\n");
    char *end;
    while (!(end = memmem(r->buf + r->off, r->len, "\r\n\r\n", 4)))
        if (rd_fill(r) <= 0)
            goto out;
    *end = '\0';
    const char *cl = header_value(r->buf + r->off, "Content-Length");
    uint64_t length = cl ? strtoull(cl, NULL, 10) : 0;
    c->n = atoi(r->buf + r->off + 9);
    rd_consume(r, (size_t)(end + 4 - (r->buf + r->off)));
    /* A checksum of the body (FNV-1a), and the pattern byte by byte. */
    uint64_t hash = 1469598103934665603ull;
    while (c->bytes < length) {
        if (r->len == 0 && rd_fill(r) <= 0)
            break;
        for (size_t i = 0; i < r->len; i++) {
            unsigned char b = (unsigned char)r->buf[r->off + i];
            c->bad += b != pattern(c->bytes + i);
            hash = (hash ^ b) * 1099511628211ull;
        }
        c->bytes += r->len;
        rd_consume(r, r->len);
    }
    uint64_t want = 1469598103934665603ull;
    for (uint64_t i = 0; i < length; i++)
        want = (want ^ pattern(i)) * 1099511628211ull;
    c->bad += hash != want;
    /* The connection goes on after a streamed file. */
    cl_send(fd, "HEAD /static/big.bin HTTP/1.1\r\n\r\n");
    c->resp[0] = rd_response(r, 1);
out:
    free(r);
    close(fd);
}

static void test_big_static_file(void **state)
{
    client c = { .fn = cl_big_file };
    file_heap.base = file_heap.max = heap_in_use();
    tw_looping_call *lc = tw_looping_call_new(sample_heap, NULL);
    tw_deferred *d = tw_looping_call_start(lc, 0.002, 1);
    run_client(&c);
    tw_looping_call_free(lc);
    tw_deferred_unref(d);
    assert_int_equal(c.n, 200);
    assert_int_equal(c.bytes, big_file_size);
    assert_int_equal(c.bad, 0);
    assert_true(file_heap.max - file_heap.base < 2u << 20);
    char want[256];
    snprintf(want, sizeof want, "HTTP/1.1 200 OK\r\n" SERVER
             "Content-Type: application/octet-stream\r\nLast-Modified: X\r\n"
             "Content-Length: %zu\r\n\r\n", big_file_size);
    assert_non_null(c.resp[0]);
    char *lm = strstr(c.resp[0], "Last-Modified: ");
    assert_non_null(lm);
    memmove(lm + 15, "X", 1);
    memmove(lm + 16, lm + 15 + DATE_LEN, strlen(lm + 15 + DATE_LEN) + 1);
    assert_string_equal(c.resp[0], want);
    client_free(&c);
}

enum { CONCURRENT = 200 };

static void cl_concurrent(client *c)
{
    static int fds[CONCURRENT];
    for (int i = 0; i < CONCURRENT; i++)
        fds[i] = cl_connect();
    for (int i = 0; i < CONCURRENT; i++)
        if (fds[i] >= 0)
            cl_send(fds[i], i % 2 ? "GET /static/hello.txt HTTP/1.1\r\n\r\n"
                                  : "GET /delay/20 HTTP/1.1\r\n\r\n");
    for (int i = 0; i < CONCURRENT; i++) {
        if (fds[i] < 0)
            continue;
        reader *r = rd_new(fds[i]);
        char *resp = rd_response(r, 0);
        const char *want = i % 2 ? "\r\n\r\nhello\n" : "\r\n\r\ndelay 20\n";
        if (resp && !strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) && strstr(resp, want))
            c->n++;
        free(resp);
        free(r);
        close(fds[i]);
    }
}

static void test_concurrent_clients(void **state)
{
    client c = { .fn = cl_concurrent };
    run_client(&c);
    assert_int_equal(c.n, CONCURRENT);
}

/* The API without a network ------------------------------------------------------------ */

static tw_deferred *unused(tw_http_request *req, void *arg)
{
    return NULL;
}

static void test_route_patterns_and_limits(void **state)
{
    tw_http_site *s = tw_http_site_new();
    assert_int_equal(tw_http_site_route(s, "GET", "/ok", unused, NULL), 0);
    assert_int_equal(tw_http_site_route(s, NULL, "/any/:x/y", unused, NULL), 0);
    assert_int_equal(tw_http_site_route(s, "*", "/*", unused, NULL), 0);
    assert_int_equal(tw_http_site_route(s, "GET", "relative", unused, NULL), -EINVAL);
    assert_int_equal(tw_http_site_route(s, "GET", "/a*b", unused, NULL), -EINVAL);
    assert_int_equal(tw_http_site_route(s, "GET", "/a/:/b", unused, NULL), -EINVAL);
    assert_int_equal(tw_http_site_route(s, "G T", "/a", unused, NULL), -EINVAL);
    assert_int_equal(tw_http_site_static(s, "static", www), -EINVAL);
    assert_int_equal(tw_http_site_static(s, "/x/", "/nonexistent/dir"), -ENOENT);
    char file[256];
    snprintf(file, sizeof file, "%s/hello.txt", www);
    assert_int_equal(tw_http_site_static(s, "/x/", file), -ENOTDIR);
    assert_int_equal(tw_http_site_set_max_head(s, 0), -EINVAL);
    assert_int_equal(tw_http_site_set_max_head(s, 1 << 20), -EINVAL);
    assert_int_equal(tw_http_site_set_max_head(s, 8192), 0);
    assert_int_equal(tw_http_site_set_head_timeout(s, -1), -EINVAL);
    assert_string_equal(tw_http_reason_phrase(404), "Not Found");
    assert_string_equal(tw_http_reason_phrase(299), "");
    tw_http_site_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_static_get_and_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_static_not_modified, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found_and_not_allowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_traversal_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_static_at_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mime_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive_and_http10, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_failure_is_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_finish_on_disconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streamed_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_site_free_aborts_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_to_slow_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_static_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_clients, setup, teardown),
        cmocka_unit_test(test_route_patterns_and_limits),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
