/* bench/echo: the echo benchmark's load generator, for any echo server;
 * bench/run-echo.sh runs it against twine's examples/echo-server and against
 * bench/epoll-echo, the ceiling. One thread on epoll drives every connection;
 * each one sends a stream of known bytes, keeps at most `window` bytes
 * unanswered, and checks every byte that comes back.
 *
 *   --mode rtt     round trips: each connection sends one message of --size
 *                  bytes and waits for its echo before the next (defaults:
 *                  50 connections, 64 bytes)
 *   --mode stream  throughput: each connection streams blocks of --size bytes
 *                  with up to --window bytes in flight (defaults: 4
 *                  connections, 64 KiB blocks, a 1 MiB window)
 *
 * It runs --warmup seconds (0.5) unmeasured, then --seconds (3) measured, and
 * prints "key value" lines ("#" lines are for people):
 *
 *     rtt_per_s 123456.7     round trips per second (rtt mode)
 *     mb_per_s 1234.5        echoed MB (10^6 bytes) per second (stream mode)
 *     echoed_bytes 123456    every byte that came back (and was checked),
 *                            warmup included
 *
 * Exits 1 when a connection fails or an echoed byte differs from the one sent.
 *
 * Usage: bench/echo --port PORT [--host 127.0.0.1] [--mode rtt|stream]
 *                   [--conns N] [--size BYTES] [--window BYTES]
 *                   [--seconds S] [--warmup S] */
#define _GNU_SOURCE   /* getopt_long */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
    READ_SIZE = 64 * 1024,
    PERIOD = 251,                 /* the byte at stream offset o is pattern[o % PERIOD] */
};

struct conn {
    int fd;
    unsigned phase;               /* shifts the pattern per connection */
    uint64_t sent, received;      /* stream offsets */
    int want_out;                 /* EPOLLOUT is on */
};

static struct {
    size_t size, window;
} cfg;
static uint64_t received_total;   /* over every connection */
static char *pattern;             /* PERIOD bytes repeated, long enough for any slice */
static int epfd;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *expected(const struct conn *c, uint64_t offset)
{
    return pattern + (offset + c->phase) % PERIOD;
}

static void set_out(struct conn *c, int on)
{
    if (c->want_out == on)
        return;
    c->want_out = on;
    struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl");
}

/* Sends while the window has room, message by message. */
static void send_more(struct conn *c)
{
    for (;;) {
        /* A message that went out in part is finished first. */
        size_t len = cfg.size - (size_t)(c->sent % cfg.size);
        if (len == cfg.size && c->sent - c->received + cfg.size > cfg.window) {
            set_out(c, 0);
            return;
        }
        ssize_t n = send(c->fd, expected(c, c->sent), len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                die("send");
            set_out(c, 1);
            return;
        }
        c->sent += (size_t)n;
    }
}

static void receive(struct conn *c)
{
    static char buf[READ_SIZE];
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < 0)
        die("read");
    if (n == 0) {
        fprintf(stderr, "bench/echo: the server closed a connection\n");
        exit(1);
    }
    if ((uint64_t)n > c->sent - c->received || memcmp(buf, expected(c, c->received), (size_t)n)) {
        fprintf(stderr, "bench/echo: the echo differs from what was sent, at byte %llu\n",
                (unsigned long long)c->received);
        exit(1);
    }
    c->received += (uint64_t)n;
    received_total += (uint64_t)n;
}

static int connect_to(const char *host, int port)
{
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "bench/echo: %s is not an IPv4 address\n", host);
        exit(2);
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
        die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
        die("fcntl");
    return fd;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench/echo --port PORT [--host 127.0.0.1] [--mode rtt|stream]\n"
                    "                  [--conns N] [--size BYTES] [--window BYTES]\n"
                    "                  [--seconds S] [--warmup S]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "host", required_argument, NULL, 'h' },   { "port", required_argument, NULL, 'p' },
        { "mode", required_argument, NULL, 'm' },   { "conns", required_argument, NULL, 'c' },
        { "size", required_argument, NULL, 's' },   { "window", required_argument, NULL, 'w' },
        { "seconds", required_argument, NULL, 't' }, { "warmup", required_argument, NULL, 'u' },
        { NULL, 0, NULL, 0 },
    };
    const char *host = "127.0.0.1", *mode = "rtt";
    int port = -1;
    long conns = 0, size = 0, window = 0;
    double seconds = 3, warmup = 0.5;
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'm': mode = optarg; break;
        case 'c': conns = atol(optarg); break;
        case 's': size = atol(optarg); break;
        case 'w': window = atol(optarg); break;
        case 't': seconds = atof(optarg); break;
        case 'u': warmup = atof(optarg); break;
        default: usage();
        }
    }
    int rtt = strcmp(mode, "rtt") == 0;
    if (optind != argc || port < 0 || (!rtt && strcmp(mode, "stream") != 0))
        usage();
    if (conns == 0)
        conns = rtt ? 50 : 4;
    if (size == 0)
        size = rtt ? 64 : 64 * 1024;
    if (window == 0)
        window = rtt ? size : 1024 * 1024;
    if (conns < 0 || size < 0 || window < size || seconds <= 0 || warmup < 0)
        usage();
    cfg.size = (size_t)size;
    cfg.window = (size_t)window;

    size_t longest = cfg.size > READ_SIZE ? cfg.size : READ_SIZE;
    pattern = malloc(longest + PERIOD);
    struct conn *cs = calloc((size_t)conns, sizeof *cs);
    struct epoll_event *events = calloc((size_t)conns, sizeof *events);
    if (!pattern || !cs || !events)
        die("malloc");
    for (size_t i = 0; i < longest + PERIOD; i++)
        pattern[i] = (char)((i % PERIOD) * 97 + 11);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1");
    for (long i = 0; i < conns; i++) {
        struct conn *c = &cs[i];
        c->fd = connect_to(host, port);
        c->phase = (unsigned)(i % PERIOD);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            die("epoll_ctl");
    }
    for (long i = 0; i < conns; i++)
        send_more(&cs[i]);

    double start = now() + warmup, end = start + seconds, measured_from = 0;
    uint64_t base = 0;
    for (;;) {
        int n = epoll_wait(epfd, events, (int)conns, 10);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                receive(c);
            send_more(c);
        }
        double t = now();
        if (measured_from == 0 && t >= start) {
            measured_from = t;
            base = received_total;
        } else if (measured_from > 0 && t >= end) {
            double elapsed = t - measured_from;
            double bytes = (double)(received_total - base);
            printf("# bench/echo: %s, %ld connections, %ld-byte %s, window %ld, %.2f s measured\n",
                   mode, conns, size, rtt ? "messages" : "blocks", window, elapsed);
            printf("echoed_bytes %llu\n", (unsigned long long)received_total);
            if (rtt)
                printf("rtt_per_s %.1f\n", bytes / (double)size / elapsed);
            else
                printf("mb_per_s %.1f\n", bytes / 1e6 / elapsed);
            return 0;
        }
    }
}
