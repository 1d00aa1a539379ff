/* bench/getpage-curl: the libcurl side of the page-fetch benchmark
 * (bench/run-getpage.sh): what bench/getpage does with twine, done with
 * libcurl's multi interface. --concurrency easy handles are in flight; each
 * one that ends is added again until --requests pages were asked for. The
 * multi handle allows that many connections in all and to the host, and
 * caches that many; --new-connections forbids reusing them
 * (CURLOPT_FORBID_REUSE) and asks the server to close ("Connection: close",
 * as twine's agent does then).
 *
 * Two ways to drive the multi handle:
 *   default        curl_multi_socket_action on epoll: libcurl reports which
 *                  sockets to watch, and is told which are ready (the way
 *                  to run many transfers)
 *   --multi-poll   curl_multi_perform and curl_multi_poll, the simple loop
 *
 * Prints the same "key value" lines as bench/getpage and exits 1 unless
 * every page came with status 200 and the expected size.
 *
 * Usage: bench/getpage-curl [--requests N] [--concurrency C] [--size BYTES]
 *                           [--new-connections] [--multi-poll] URL */
#define _GNU_SOURCE   /* getopt_long */

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

struct transfer {
    CURL *easy;
    size_t received;
};

static struct {
    const char *url;
    long requests, concurrency;
    long size;                    /* the expected body size; -1: any */
    int new_connections;
    CURLM *multi;
    struct curl_slist *close_header;
    long started, done, ok;
    int epfd;
    double timer_due;             /* libcurl's timer, on now()'s clock; -1: none */
} b;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    t->received += size * n;
    return size * n;
}

static void start_transfer(struct transfer *t)
{
    t->received = 0;
    b.started++;
    curl_multi_add_handle(b.multi, t->easy);
}

static struct transfer *new_transfer(void)
{
    struct transfer *t = calloc(1, sizeof *t);
    t->easy = curl_easy_init();
    curl_easy_setopt(t->easy, CURLOPT_URL, b.url);
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
    curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
    if (b.new_connections) {
        curl_easy_setopt(t->easy, CURLOPT_FORBID_REUSE, 1L);
        curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, b.close_header);
    }
    return t;
}

/* Counts the transfers that ended, and starts the next ones on their handles. */
static void collect(void)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(b.multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        struct transfer *t;
        long status = 0;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        if (result == CURLE_OK && status == 200 && (b.size < 0 || t->received == (size_t)b.size))
            b.ok++;
        else if (b.done - b.ok < 5)   /* the first few tell why */
            fprintf(stderr, "getpage-curl: %s, status %ld, %zu bytes\n", curl_easy_strerror(result),
                    status, t->received);
        b.done++;
        curl_multi_remove_handle(b.multi, easy);
        if (b.started < b.requests)
            start_transfer(t);
    }
}

/* curl_multi_socket_action on epoll ---------------------------------------------------- */

static int on_socket(CURL *easy, curl_socket_t s, int what, void *arg, void *socketp)
{
    struct epoll_event ev = { .data.fd = s };
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(b.epfd, EPOLL_CTL_DEL, s, NULL);
        curl_multi_assign(b.multi, s, NULL);
        return 0;
    }
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    if (socketp) {
        epoll_ctl(b.epfd, EPOLL_CTL_MOD, s, &ev);
    } else {
        epoll_ctl(b.epfd, EPOLL_CTL_ADD, s, &ev);
        curl_multi_assign(b.multi, s, &b);   /* any non-NULL mark: watched */
    }
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *arg)
{
    b.timer_due = timeout_ms < 0 ? -1 : now() + timeout_ms / 1e3;
    return 0;
}

/* Before the first transfer is added: adding one sets the timer. */
static void setup_socket_action(void)
{
    b.epfd = epoll_create1(EPOLL_CLOEXEC);
    curl_multi_setopt(b.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(b.multi, CURLMOPT_TIMERFUNCTION, on_timer);
}

static void run_socket_action(void)
{
    int running;
    while (b.done < b.requests) {
        struct epoll_event events[128];
        int wait_ms = -1;
        if (b.timer_due >= 0) {
            double ms = (b.timer_due - now()) * 1e3;
            wait_ms = ms > 0 ? (int)ms + 1 : 0;
        }
        int n = epoll_wait(b.epfd, events, 128, wait_ms);
        if (n < 0 && errno != EINTR) {
            perror("epoll_wait");
            exit(1);
        }
        for (int i = 0; i < n; i++) {
            int flags = (events[i].events & (EPOLLIN | EPOLLHUP) ? CURL_CSELECT_IN : 0) |
                        (events[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                        (events[i].events & EPOLLERR ? CURL_CSELECT_ERR : 0);
            curl_multi_socket_action(b.multi, events[i].data.fd, flags, &running);
        }
        if (b.timer_due >= 0 && now() >= b.timer_due) {
            b.timer_due = -1;
            curl_multi_socket_action(b.multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        collect();
    }
    close(b.epfd);
}

/* curl_multi_perform and curl_multi_poll ------------------------------------------------ */

static void run_multi_poll(void)
{
    int running;
    while (b.done < b.requests) {
        curl_multi_perform(b.multi, &running);
        collect();
        if (b.done < b.requests)
            curl_multi_poll(b.multi, NULL, 0, 1000, NULL);
    }
}

static void usage(FILE *out, const char *prog)
{
    fprintf(out,
            "usage: %s [--requests N] [--concurrency C] [--size BYTES] [--new-connections]\n"
            "          [--multi-poll] URL\n",
            prog);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "requests", required_argument, NULL, 'n' },
        { "concurrency", required_argument, NULL, 'c' },
        { "size", required_argument, NULL, 's' },
        { "new-connections", no_argument, NULL, 'N' },
        { "multi-poll", no_argument, NULL, 'P' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    b.requests = 10000;
    b.concurrency = 100;
    b.size = -1;
    b.timer_due = -1;
    int multi_poll = 0, opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n': b.requests = atol(optarg); break;
        case 'c': b.concurrency = atol(optarg); break;
        case 's': b.size = atol(optarg); break;
        case 'N': b.new_connections = 1; break;
        case 'P': multi_poll = 1; break;
        case 'h': usage(stdout, argv[0]); return 0;
        default: usage(stderr, argv[0]); return 2;
        }
    }
    if (optind != argc - 1 || b.requests < 1 || b.concurrency < 1) {
        usage(stderr, argv[0]);
        return 2;
    }
    b.url = argv[optind];

    curl_global_init(CURL_GLOBAL_DEFAULT);
    b.multi = curl_multi_init();
    curl_multi_setopt(b.multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, b.concurrency);
    curl_multi_setopt(b.multi, CURLMOPT_MAX_HOST_CONNECTIONS, b.concurrency);
    curl_multi_setopt(b.multi, CURLMOPT_MAXCONNECTS, b.concurrency);
    b.close_header = curl_slist_append(NULL, "Connection: close");

    long n = b.concurrency < b.requests ? b.concurrency : b.requests;
    struct transfer **transfers = calloc((size_t)n, sizeof *transfers);
    for (long i = 0; i < n; i++)
        transfers[i] = new_transfer();
    if (!multi_poll)
        setup_socket_action();
    double t0 = now();
    for (long i = 0; i < n; i++)
        start_transfer(transfers[i]);
    if (multi_poll)
        run_multi_poll();
    else
        run_socket_action();
    double wall = now() - t0;

    for (long i = 0; i < n; i++) {
        curl_easy_cleanup(transfers[i]->easy);
        free(transfers[i]);
    }
    free(transfers);
    curl_multi_cleanup(b.multi);
    curl_slist_free_all(b.close_header);
    curl_global_cleanup();

    printf("requests %ld\nok %ld\nwall_s %.4f\npages_per_s %.1f\n", b.requests, b.ok, wall,
           b.requests / wall);
    return b.ok == b.requests ? 0 : 1;
}
