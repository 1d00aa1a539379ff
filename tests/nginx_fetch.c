/* nginx_fetch: the HTTP client against a real peer, the nginx that
 * tests/nginx.sh starts on 127.0.0.1:PORT to serve DOCROOT. The checks run
 * one after the other from the reactor; each prints a PASS or FAIL line, and
 * the exit status is 1 when one failed.
 *
 *   nginx_fetch [--no-rss] [--timeout SECONDS] PORT DOCROOT ACCESS_LOG WORKDIR
 *
 * DOCROOT holds page-1k.html (1 KiB), text.txt (text that nginx gzips) and
 * big.bin (the large file, streamed); nginx answers /redirect with a 301 to
 * /page-1k.html and /missing with a 404, and writes ACCESS_LOG in the format
 * "$connection $connection_requests $request_uri". Downloads go to WORKDIR.
 * --no-rss skips the memory check: under valgrind the memory measured would
 * be valgrind's. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <twine.h>

#define SMALL_PAGE "page-1k.html"
#define TEXT_PAGE "text.txt"
#define BIG_FILE "big.bin"
#define KEEP_ALIVE_REQUESTS 200
#define KEEP_ALIVE_LOG_WAIT 10.0          /* seconds nginx may take to log them */
#define STREAM_PAUSE_EVERY (5u << 20)     /* bytes between two pauses of the stream */
#define STREAM_PAUSE_SECONDS 0.005
#define RSS_LIMIT_KB (16 * 1024)          /* growth allowed while streaming big.bin */

static struct {
    int port;
    const char *docroot, *access_log, *workdir;
    bool check_rss;
    double timeout;
    tw_delayed_call *watchdog;
    size_t step;
    int failed;

    unsigned char big_sha[EVP_MAX_MD_SIZE];
    size_t big_len;
    long rss_before_kb;

    tw_http_agent *agent;                 /* the gzip and streaming checks' */
    tw_http_agent *ka_agent;              /* the keep-alive check's, fresh */
    int ka_done, ka_bad;
    double ka_log_deadline;

    bool gzip_coded;                      /* the raw answer said Content-Encoding: gzip */
    char download_path[4096];

    struct {
        tw_http_client_response *resp;
        EVP_MD_CTX *md;
        size_t len, next_pause;
        int pauses, data_while_paused;
        bool paused;
    } stream;
} t;

static void next_step(void);

/* Reporting ---------------------------------------------------------------------- */

static void report(bool ok, const char *name, const char *fmt, ...) TW_PRINTF(3, 4);

/* Prints "PASS: name (detail)" or "FAIL: name: detail". */
static void report(bool ok, const char *name, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (ok) {
        printf("PASS: %s (%s)\n", name, detail);
    } else {
        printf("FAIL: %s: %s\n", name, detail);
        t.failed++;
    }
    fflush(stdout);
}

/* The errback of every check: a failure nobody expected. */
static void unexpected(tw_result *r, void *name)
{
    report(false, name, "%s", tw_failure_message(r->failure));
    tw_result_set_value(r, NULL, NULL);
    next_step();
}

/* Files and digests -------------------------------------------------------------- */

static const char *url_of(const char *path)
{
    static char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", t.port, path);
    return url;
}

/* DOCROOT/name in a new buffer (free), or NULL. */
static char *read_doc(const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", t.docroot, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = NULL;
    size_t cap = 0, n;
    *len = 0;
    do {
        if (*len == cap)
            data = realloc(data, cap = cap ? 2 * cap : 4096);
        n = fread(data + *len, 1, cap - *len, f);
        *len += n;
    } while (n > 0);
    fclose(f);
    return data;
}

/* The SHA-256 of the file at path, read in small pieces; false if unreadable. */
static bool sha256_file(const char *path, unsigned char *sha, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    static char buf[65536];
    size_t n;
    *len = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        EVP_DigestUpdate(md, buf, n);
        *len += n;
    }
    EVP_DigestFinal_ex(md, sha, NULL);
    EVP_MD_CTX_free(md);
    fclose(f);
    return true;
}

static long max_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;                  /* kilobytes on Linux */
}

/* Reports whether the len bytes at body are DOCROOT/name. */
static void check_body(const char *name, const char *what, const char *body, size_t len,
                       const char *file)
{
    size_t want_len;
    char *want = read_doc(file, &want_len);
    if (!want)
        report(false, name, "cannot read %s/%s", t.docroot, file);
    else if (len != want_len || memcmp(body, want, len))
        report(false, name, "%s: %zu bytes, not the %zu of %s", what, len, want_len, file);
    else
        report(true, name, "%s: the %zu bytes of %s", what, len, file);
    free(want);
}

/* tw_get_page checks ---------------------------------------------------------------- */

static void fetch(const char *path, const tw_page_options *opt, tw_callback ok, tw_callback err,
                  const char *name)
{
    tw_deferred *d = tw_get_page(url_of(path), opt);
    tw_deferred_add_callbacks(d, ok, err ? err : unexpected, (void *)name);
    tw_deferred_unref(d);
}

static void page_ok(tw_result *r, void *name)
{
    const tw_http_response *p = r->value;
    check_body(name, "body", p->body, p->body_len, SMALL_PAGE);
    next_step();
}

static void step_page(void)
{
    fetch("/" SMALL_PAGE, NULL, page_ok, NULL, "1 KiB page");
}

static void gzip_decoded_ok(tw_result *r, void *name)
{
    const tw_http_response *p = r->value;
    const char *coding = tw_http_headers_get(p->headers, "Content-Encoding");
    if (coding)
        report(false, name, "the decoded response still says Content-Encoding: %s", coding);
    else
        check_body(name, "decoded body", p->body, p->body_len, TEXT_PAGE);
    next_step();
}

static void step_gzip_decoded(void)
{
    tw_page_options opt = { .decode_content = 1 };
    fetch("/" TEXT_PAGE, &opt, gzip_decoded_ok, NULL, "gzip page, decode_content=1");
}

static void redirect_ok(tw_result *r, void *name)
{
    const tw_http_response *p = r->value;
    const char *end = "/" SMALL_PAGE;
    size_t n = strlen(p->url), m = strlen(end);
    if (n < m || strcmp(p->url + n - m, end))
        report(false, name, "final URL %s", p->url);
    else
        check_body(name, "followed to the page", p->body, p->body_len, SMALL_PAGE);
    next_step();
}

static void step_redirect(void)
{
    fetch("/redirect", NULL, redirect_ok, NULL, "301 redirect followed");
}

static void not_found_ok(tw_result *r, void *name)
{
    report(false, name, "fired with status %d", ((const tw_http_response *)r->value)->status);
    next_step();
}

static void not_found_failed(tw_result *r, void *name)
{
    const tw_http_response *p = tw_http_failure_response(r->failure);
    bool ok = tw_failure_check(r->failure, TW_ERR_HTTP, 404) && p && p->status == 404;
    report(ok, name, "%s: %s", tw_failure_domain(r->failure), tw_failure_message(r->failure));
    tw_result_set_value(r, NULL, NULL);
    next_step();
}

static void step_not_found(void)
{
    fetch("/missing", NULL, not_found_ok, not_found_failed, "404 errbacks TW_ERR_HTTP 404");
}

/* The agent: a raw gzip answer ---------------------------------------------------------- */

static void gzip_head(tw_result *r, void *name)
{
    tw_http_client_response *resp = tw_result_steal(r);
    const char *coding = tw_http_headers_get(resp->headers, "Content-Encoding");
    t.gzip_coded = coding && !strcmp(coding, "gzip");
    tw_result_wait(r, tw_read_body(resp));
}

static void gzip_body(tw_result *r, void *name)
{
    const tw_http_content *c = r->value;
    size_t plain_len;
    free(read_doc(TEXT_PAGE, &plain_len));
    bool magic = c->len >= 2 && (unsigned char)c->data[0] == 0x1f &&
                 (unsigned char)c->data[1] == 0x8b;
    report(t.gzip_coded && magic && c->len < plain_len, name,
           "Content-Encoding gzip: %s, gzip magic: %s, %zu bytes for %zu", t.gzip_coded ? "yes" : "no",
           magic ? "yes" : "no", c->len, plain_len);
    next_step();
}

static void step_gzip_raw(void)
{
    const char *name = "gzip page through the agent arrives gzipped";
    tw_http_headers *h = tw_http_headers_new();
    tw_http_headers_add(h, "Accept-Encoding", "gzip");
    tw_deferred *d = tw_http_agent_request(t.agent, "GET", url_of("/" TEXT_PAGE), h, NULL, 0);
    tw_http_headers_free(h);
    tw_deferred_add_callbacks(d, gzip_head, NULL, (void *)name);
    tw_deferred_add_callbacks(d, gzip_body, unexpected, (void *)name);
    tw_deferred_unref(d);
}

/* Keep-alive: sequential requests through one agent ---------------------------------------- */

#define KEEP_ALIVE_NAME "keep-alive: 200 requests through one agent"

static void keep_alive_next(void);

static void keep_alive_ok(tw_result *r, void *name)
{
    const tw_http_response *p = r->value;
    if (p->body_len != 1024)
        t.ka_bad++;
    t.ka_done++;
    keep_alive_next();
}

static void keep_alive_next(void)
{
    if (t.ka_done < KEEP_ALIVE_REQUESTS) {
        char path[64];
        snprintf(path, sizeof path, "/" SMALL_PAGE "?keepalive=%d", t.ka_done + 1);
        tw_page_options opt = { .agent = t.ka_agent };
        fetch(path, &opt, keep_alive_ok, NULL, KEEP_ALIVE_NAME);
        return;
    }
    size_t idle = tw_http_agent_idle_count(t.ka_agent);
    report(t.ka_bad == 0 && idle == 1, KEEP_ALIVE_NAME, "%d bodies of a wrong size; %zu idle after",
           t.ka_bad, idle);
    next_step();
}

static void step_keep_alive(void)
{
    keep_alive_next();
}

/* nginx's view: which of its connections served the keep-alive requests. Its
 * log line may follow the response by a moment, so this polls until all are
 * logged, within KEEP_ALIVE_LOG_WAIT. */
static void keep_alive_log(void *arg)
{
    const char *name = "keep-alive: nginx served them on one connection";
    FILE *f = fopen(t.access_log, "r");
    unsigned long conns[KEEP_ALIVE_REQUESTS], conn, requests, max_requests = 0;
    int lines = 0, distinct = 0;
    char uri[256];
    while (f && fscanf(f, "%lu %lu %255s", &conn, &requests, uri) == 3) {
        if (!strstr(uri, "?keepalive=") || lines == KEEP_ALIVE_REQUESTS)
            continue;
        lines++;
        int i = 0;
        while (i < distinct && conns[i] != conn)
            i++;
        if (i == distinct)
            conns[distinct++] = conn;
        if (requests > max_requests)
            max_requests = requests;
    }
    if (f)
        fclose(f);
    if (lines < KEEP_ALIVE_REQUESTS && tw_reactor_now() < t.ka_log_deadline) {
        tw_call_later(0.02, keep_alive_log, NULL);
        return;
    }
    report(lines == KEEP_ALIVE_REQUESTS && distinct == 1, name,
           "%d requests logged on %d connection(s), up to %lu requests on one", lines, distinct,
           max_requests);
    next_step();
}

static void step_keep_alive_log(void)
{
    t.ka_log_deadline = tw_reactor_now() + KEEP_ALIVE_LOG_WAIT;
    keep_alive_log(NULL);
}

/* The big file: tw_download_page, then the agent's stream ----------------------------------- */

static void download_ok(tw_result *r, void *name)
{
    unsigned char sha[EVP_MAX_MD_SIZE];
    size_t len;
    bool read = sha256_file(t.download_path, sha, &len);
    report(read && len == t.big_len && !memcmp(sha, t.big_sha, 32), name,
           "%zu of %zu bytes written, SHA-256 %s", read ? len : 0, t.big_len,
           read && !memcmp(sha, t.big_sha, 32) ? "matches" : "differs");
    unlink(t.download_path);
    next_step();
}

static void step_download(void)
{
    t.rss_before_kb = max_rss_kb();
    snprintf(t.download_path, sizeof t.download_path, "%s/big.download", t.workdir);
    tw_deferred *d = tw_download_page(url_of("/" BIG_FILE), t.download_path, NULL);
    tw_deferred_add_callbacks(d, download_ok, unexpected, "tw_download_page of " BIG_FILE);
    tw_deferred_unref(d);
}

static void stream_resume(void *arg)
{
    t.stream.paused = false;
    tw_http_client_response_resume(t.stream.resp);
}

static void stream_data(void *arg, const char *data, size_t len)
{
    if (t.stream.paused)
        t.stream.data_while_paused++;
    EVP_DigestUpdate(t.stream.md, data, len);
    t.stream.len += len;
    if (t.stream.len >= t.stream.next_pause && t.stream.len < t.big_len) {
        t.stream.next_pause += STREAM_PAUSE_EVERY;
        t.stream.pauses++;
        t.stream.paused = true;
        tw_http_client_response_pause(t.stream.resp);
        tw_call_later(STREAM_PAUSE_SECONDS, stream_resume, NULL);
    }
}

static void stream_end(void *name, tw_failure *reason)
{
    unsigned char sha[EVP_MAX_MD_SIZE];
    EVP_DigestFinal_ex(t.stream.md, sha, NULL);
    EVP_MD_CTX_free(t.stream.md);
    tw_http_client_response_free(t.stream.resp);
    if (reason) {
        report(false, name, "%s after %zu bytes", tw_failure_message(reason), t.stream.len);
    } else {
        bool same = t.stream.len == t.big_len && !memcmp(sha, t.big_sha, 32);
        report(same && t.stream.data_while_paused == 0, name,
               "%zu of %zu bytes, SHA-256 %s, %d pauses, %d deliveries while paused",
               t.stream.len, t.big_len, same ? "matches" : "differs", t.stream.pauses,
               t.stream.data_while_paused);
    }
    next_step();
}

static void stream_head(tw_result *r, void *name)
{
    t.stream.resp = tw_result_steal(r);
    t.stream.md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(t.stream.md, EVP_sha256(), NULL);
    t.stream.next_pause = STREAM_PAUSE_EVERY;
    tw_http_client_response_deliver_body(t.stream.resp, stream_data, stream_end, name);
}

static void step_stream(void)
{
    tw_deferred *d = tw_http_agent_request(t.agent, "GET", url_of("/" BIG_FILE), NULL, NULL, 0);
    tw_deferred_add_callbacks(d, stream_head, unexpected,
                              "agent stream of " BIG_FILE ", paused and resumed");
    tw_deferred_unref(d);
}

static void step_rss(void)
{
    const char *name = "memory stays bounded while streaming " BIG_FILE " twice";
    long after = max_rss_kb(), grew = after - t.rss_before_kb;
    if (t.check_rss)
        report(grew < RSS_LIMIT_KB, name,
               "peak RSS %ld KiB before, %ld KiB after: %ld KiB more, limit %d KiB", t.rss_before_kb,
               after, grew, RSS_LIMIT_KB);
    else
        printf("SKIP: %s (--no-rss)\n", name);
    next_step();
}

/* The end ------------------------------------------------------------------------------ */

static void stop(tw_result *r, void *arg)
{
    tw_reactor_stop();
}

/* Closes the agents and stops once their connections are gone. */
static void step_finish(void)
{
    tw_delayed_call_cancel(t.watchdog);
    tw_deferred *closed[2] = { tw_http_agent_close(t.agent), tw_http_agent_close(t.ka_agent) };
    tw_deferred *d = tw_deferred_list(closed, 2, 0);
    tw_deferred_add_both(d, stop, NULL);
    tw_deferred_unref(d);
}

static void (*const steps[])(void) = {
    step_page,       step_gzip_decoded, step_gzip_raw, step_redirect, step_not_found,
    step_keep_alive, step_keep_alive_log, step_download, step_stream,   step_rss,
    step_finish,
};

static void next_step(void)
{
    steps[t.step++]();
}

static void first_step(void *arg)
{
    next_step();
}

static void time_out(void *arg)
{
    printf("FAIL: timed out after %g s in step %zu\n", t.timeout, t.step);
    t.failed++;
    tw_reactor_stop();
}

static void usage(const char *prog)
{
    fprintf(stderr, "usage: %s [--no-rss] [--timeout SECONDS] PORT DOCROOT ACCESS_LOG WORKDIR\n",
            prog);
    exit(2);
}

int main(int argc, char **argv)
{
    t.check_rss = true;
    t.timeout = 60;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--no-rss"))
            t.check_rss = false;
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            t.timeout = atof(argv[++i]);
        else
            usage(argv[0]);
    }
    if (argc - i != 4 || (t.port = atoi(argv[i])) <= 0)
        usage(argv[0]);
    t.docroot = argv[i + 1];
    t.access_log = argv[i + 2];
    t.workdir = argv[i + 3];

    char big[4096];
    snprintf(big, sizeof big, "%s/%s", t.docroot, BIG_FILE);
    if (!sha256_file(big, t.big_sha, &t.big_len)) {
        fprintf(stderr, "%s: cannot read %s: %s\n", argv[0], big, strerror(errno));
        return 2;
    }
    t.agent = tw_http_agent_new(NULL);
    t.ka_agent = tw_http_agent_new(NULL);
    t.watchdog = tw_call_later(t.timeout, time_out, NULL);
    tw_call_when_running(first_step, NULL);
    tw_reactor_run();
    return t.failed ? 1 : 0;
}
