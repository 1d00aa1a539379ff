/* epoll-echo: the ceiling for bench/run-echo.sh, a plain echo server written
 * straight on epoll: one thread, non-blocking sockets, level-triggered, no
 * library. It does what examples/echo-server does (TCP_NODELAY, reads of up
 * to 64 KiB, each answered at once, the reading of a connection paused while
 * its echo waits for the kernel) with nothing around it.
 *
 * Usage: epoll-echo [PORT]     (0, the default, lets the kernel pick one)
 *
 * Prints "listening on 127.0.0.1:PORT", as the example does, and runs until
 * killed. */
#define _GNU_SOURCE   /* accept4 */

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
    BUF_SIZE = 64 * 1024,
    READS_PER_WAKEUP = 16,        /* as twine: then other connections get their turn */
    MAX_EVENTS = 256,
};

struct conn {
    int fd;
    size_t start, end;            /* buf[start, end) waits for the kernel */
    char buf[BUF_SIZE];
};

static int epfd;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void watch(struct conn *c, int op, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.ptr = c };
    if (epoll_ctl(epfd, op, c->fd, &ev) < 0)
        die("epoll_ctl");
}

static void drop(struct conn *c)
{
    close(c->fd);                 /* also leaves the epoll set */
    free(c);
}

/* Sends what waits. 1 when all of it went, 0 when the kernel is full, -1 on
 * an error (the connection is gone). */
static int send_pending(struct conn *c)
{
    while (c->start < c->end) {
        ssize_t n = send(c->fd, c->buf + c->start, c->end - c->start, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 0 : -1;
        }
        c->start += (size_t)n;
    }
    c->start = c->end = 0;
    return 1;
}

static void on_readable(struct conn *c)
{
    for (int i = 0; i < READS_PER_WAKEUP; i++) {
        ssize_t n = read(c->fd, c->buf, BUF_SIZE);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            drop(c);
            return;
        }
        if (n < 0)
            return;
        c->start = 0;
        c->end = (size_t)n;
        int sent = send_pending(c);
        if (sent < 0) {
            drop(c);
            return;
        }
        if (sent == 0) {          /* stop reading until the echo has gone */
            watch(c, EPOLL_CTL_MOD, EPOLLOUT);
            return;
        }
        if (n < BUF_SIZE)
            return;               /* a short read emptied the socket */
    }
}

static void on_writable(struct conn *c)
{
    int sent = send_pending(c);
    if (sent < 0)
        drop(c);
    else if (sent > 0)
        watch(c, EPOLL_CTL_MOD, EPOLLIN);
}

static void accept_all(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN)
                perror("accept4");
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = malloc(sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->start = c->end = 0;
        watch(c, EPOLL_CTL_ADD, EPOLLIN);
    }
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    if (bind(fd, (struct sockaddr *)&addr, len) < 0 || listen(fd, 511) < 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) < 0)
        die("listen");
    printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
    fflush(stdout);
    return fd;
}

int main(int argc, char **argv)
{
    int lfd = listen_on(argc > 1 ? atoi(argv[1]) : 0);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1");
    /* The listening socket is told apart by its NULL pointer. */
    struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) < 0)
        die("epoll_ctl");

    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (!c)
                accept_all(lfd);
            else if (events[i].events & EPOLLOUT)
                on_writable(c);
            else
                on_readable(c);
        }
    }
}
