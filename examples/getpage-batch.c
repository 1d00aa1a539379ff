/* getpage-batch: fetch a batch of pages concurrently, installed as twine-getpage.
 *
 *   getpage-batch [-c CONCURRENCY] [-t TIMEOUT] [-f URLFILE] [URL...]
 *
 * Every URL becomes one Deferred from tw_get_page, started through a
 * semaphore so at most CONCURRENCY fetches run at once. A callback prints
 * each page's status, size and time as it arrives, an errback each failure,
 * and a DeferredList over the whole batch prints the summary and stops the
 * reactor. While it runs, stderr shows progress when it is a terminal.
 * Exits 0 only if every page was fetched. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <twine.h>

struct job {
    const char *url;
    double started, elapsed;      /* seconds */
    int status;                   /* 0: no answer */
    size_t size;                  /* body bytes */
    char error[160];              /* empty on success */
};

struct batch {
    struct job *jobs;
    size_t n, done, failed, bytes;
    tw_page_options options;
    double started;
    int progress;                 /* stderr is a terminal */
};

static struct batch batch;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Starts one fetch; runs when the semaphore grants a slot. */
static void fetch(tw_result *r, void *arg)
{
    struct job *job = arg;
    job->started = now();
    tw_result_wait(r, tw_get_page(job->url, &batch.options));
}

static void finish_job(struct job *job)
{
    job->elapsed = now() - job->started;
    batch.done++;
    batch.bytes += job->size;
}

static void print_page(tw_result *r, void *arg)
{
    struct job *job = arg;
    const tw_http_response *page = r->value;
    job->status = page->status;
    job->size = page->body_len;
    finish_job(job);
    printf("%3d %10zu B %9.1f ms  %s\n", job->status, job->size, job->elapsed * 1e3, job->url);
}

static void print_error(tw_result *r, void *arg)
{
    struct job *job = arg;
    const tw_http_response *page = tw_http_failure_response(r->failure);
    if (page) {
        job->status = page->status;
        job->size = page->body_len;
    }
    snprintf(job->error, sizeof job->error, "%s", tw_failure_message(r->failure));
    batch.failed++;
    finish_job(job);
    printf("ERR %10zu B %9.1f ms  %s: %s\n", job->size, job->elapsed * 1e3, job->url, job->error);
}

static void show_progress(tw_result *r, void *arg)
{
    (void)r;
    (void)arg;
    double t = now() - batch.started;
    fprintf(stderr, "\r%zu/%zu pages, %zu bytes, %.1f pages/s   ", batch.done, batch.n,
            batch.bytes, t > 0 ? batch.done / t : 0.0);
}

static void summarize(tw_result *r, void *arg)
{
    (void)r;
    (void)arg;
    double wall = now() - batch.started;
    if (batch.progress)
        fprintf(stderr, "\r%*s\r", 60, "");
    printf("\n%-6s %12s %10s  %s\n", "status", "bytes", "ms", "url");
    for (size_t i = 0; i < batch.n; i++) {
        const struct job *job = &batch.jobs[i];
        char status[8];
        snprintf(status, sizeof status, job->error[0] ? "ERR" : "%d", job->status);
        printf("%-6s %12zu %10.1f  %s\n", status, job->size, job->elapsed * 1e3, job->url);
    }
    printf("\n%zu pages: %zu ok, %zu failed; %zu bytes in %.3f s (%.1f pages/s)\n",
           batch.n, batch.n - batch.failed, batch.failed, batch.bytes, wall,
           wall > 0 ? batch.n / wall : 0.0);
    tw_reactor_stop();
}

/* Reads one URL per line; blank lines and lines starting with '#' are skipped.
 * Appends to *urls (grown with realloc). Returns 0 or a negative errno. */
static int read_url_file(const char *path, char ***urls, size_t *n)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f)
        return -errno;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        *urls = realloc(*urls, (*n + 1) * sizeof **urls);
        (*urls)[(*n)++] = strdup(line);
    }
    free(line);
    if (f != stdin)
        fclose(f);
    return 0;
}

static void usage(const char *prog)
{
    fprintf(stderr, "usage: %s [-c CONCURRENCY] [-t TIMEOUT] [-f URLFILE] [URL...]\n"
                    "  -c  fetches at once (default 10)\n"
                    "  -t  seconds allowed for each page (default 30; 0: none)\n"
                    "  -f  a file of URLs, one per line (- for stdin)\n", prog);
}

int main(int argc, char **argv)
{
    unsigned concurrency = 10;
    double timeout = 30;
    char **urls = NULL;
    size_t nurls = 0;
    int opt;

    while ((opt = getopt(argc, argv, "c:t:f:h")) != -1) {
        switch (opt) {
        case 'c': concurrency = (unsigned)strtoul(optarg, NULL, 10); break;
        case 't': timeout = strtod(optarg, NULL); break;
        case 'f':
            if (read_url_file(optarg, &urls, &nurls) < 0) {
                fprintf(stderr, "%s: %s: %s\n", argv[0], optarg, strerror(errno));
                return 2;
            }
            break;
        default: usage(argv[0]); return 2;
        }
    }
    for (int i = optind; i < argc; i++) {
        urls = realloc(urls, (nurls + 1) * sizeof *urls);
        urls[nurls++] = strdup(argv[i]);
    }
    if (nurls == 0 || concurrency == 0 || timeout < 0) {
        usage(argv[0]);
        return 2;
    }

    batch.n = nurls;
    batch.jobs = calloc(nurls, sizeof *batch.jobs);
    batch.options.timeout = timeout;
    batch.progress = isatty(STDERR_FILENO);
    batch.started = now();

    tw_semaphore *slots = tw_semaphore_new(concurrency);
    tw_deferred **ds = malloc(nurls * sizeof *ds);
    for (size_t i = 0; i < nurls; i++) {
        batch.jobs[i].url = urls[i];
        ds[i] = tw_semaphore_run(slots, fetch, &batch.jobs[i]);
        tw_deferred_add_callbacks(ds[i], print_page, print_error, &batch.jobs[i]);
    }
    /* The list takes the references in ds; the inputs keep it alive. */
    tw_deferred *all = tw_deferred_list(ds, nurls, TW_DL_CONSUME_ERRORS);
    tw_deferred_add_callback(all, summarize, NULL);
    tw_deferred_unref(all);

    tw_looping_call *progress = NULL;
    if (batch.progress) {
        progress = tw_looping_call_new(show_progress, NULL);
        tw_deferred_unref(tw_looping_call_start(progress, 0.2, 0));
    }

    int rc = tw_reactor_run();
    tw_looping_call_free(progress);
    tw_semaphore_free(slots);
    free(ds);
    for (size_t i = 0; i < nurls; i++)
        free(urls[i]);
    free(urls);
    free(batch.jobs);
    return rc == 0 && batch.failed == 0 && batch.done == batch.n ? 0 : 1;
}
