/* bench/getpage: the twine side of the page-fetch benchmark
 * (bench/run-getpage.sh). Fetches URL --requests times with tw_get_page
 * through one agent, keeping --concurrency fetches in flight (a window: each
 * one that ends starts the next), and checks every page's size. By default
 * the agent keeps its connections alive (as many idle as fetches in flight);
 * --new-connections makes one connection per request ("Connection: close").
 * bench/getpage-curl does the same with libcurl.
 *
 * Prints "key value" lines:
 *
 *     requests 10000     pages asked for
 *     ok 10000           pages that came with status 200 and the expected size
 *     wall_s 0.8123      from the first request to the last page
 *     pages_per_s 12310.9
 *
 * Exits 1 unless every page was ok.
 *
 * Usage: bench/getpage [--requests N] [--concurrency C] [--size BYTES]
 *                      [--new-connections] URL */
#define _GNU_SOURCE   /* getopt_long */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <twine.h>

static struct {
    const char *url;
    long requests, concurrency;
    long size;                    /* the expected body size; -1: any */
    tw_page_options options;
    long started, done, ok;
    double t0, wall;
} b;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void start_fetch(void);

static void stop(tw_result *r, void *arg)
{
    tw_reactor_stop();
}

static void fetched(void)
{
    if (++b.done == b.requests) {
        b.wall = now() - b.t0;
        tw_deferred *d = tw_http_agent_close(b.options.agent);
        tw_deferred_add_both(d, stop, NULL);
        tw_deferred_unref(d);
    } else if (b.started < b.requests) {
        start_fetch();
    }
}

static void page(tw_result *r, void *arg)
{
    const tw_http_response *p = r->value;
    if (p->status == 200 && (b.size < 0 || p->body_len == (size_t)b.size))
        b.ok++;
    fetched();
}

static void page_failed(tw_result *r, void *arg)
{
    if (b.done - b.ok < 5)        /* the first few tell why */
        fprintf(stderr, "getpage: %s\n", tw_failure_message(r->failure));
    tw_result_set_value(r, NULL, NULL);
    fetched();
}

static void start_fetch(void)
{
    b.started++;
    tw_deferred *d = tw_get_page(b.url, &b.options);
    tw_deferred_add_callbacks(d, page, page_failed, NULL);
    tw_deferred_unref(d);
}

static void start(void *arg)
{
    b.t0 = now();
    while (b.started < b.concurrency && b.started < b.requests)
        start_fetch();
}

static void usage(FILE *out, const char *prog)
{
    fprintf(out, "usage: %s [--requests N] [--concurrency C] [--size BYTES] [--new-connections] URL\n",
            prog);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "requests", required_argument, NULL, 'n' },
        { "concurrency", required_argument, NULL, 'c' },
        { "size", required_argument, NULL, 's' },
        { "new-connections", no_argument, NULL, 'N' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    b.requests = 10000;
    b.concurrency = 100;
    b.size = -1;
    int new_connections = 0, opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n': b.requests = atol(optarg); break;
        case 'c': b.concurrency = atol(optarg); break;
        case 's': b.size = atol(optarg); break;
        case 'N': new_connections = 1; break;
        case 'h': usage(stdout, argv[0]); return 0;
        default: usage(stderr, argv[0]); return 2;
        }
    }
    if (optind != argc - 1 || b.requests < 1 || b.concurrency < 1) {
        usage(stderr, argv[0]);
        return 2;
    }
    b.url = argv[optind];

    tw_http_agent_options agent_options = {
        .max_idle_per_host = (int)b.concurrency,
        .no_keep_alive = new_connections,
    };
    b.options.agent = tw_http_agent_new(&agent_options);
    tw_call_when_running(start, NULL);
    tw_reactor_run();

    printf("requests %ld\nok %ld\nwall_s %.4f\npages_per_s %.1f\n", b.requests, b.ok, b.wall,
           b.requests / b.wall);
    return b.ok == b.requests ? 0 : 1;
}
