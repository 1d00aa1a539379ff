/* twine: small socket helpers shared by streams, listeners and connectors. */
#include "net_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0                    /* SO_NOSIGPIPE is set on the socket instead */
#endif

int tw_socket(int family, int type)
{
#ifdef SOCK_NONBLOCK
    int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
#else
    int fd = socket(family, type, 0);
    if (fd < 0)
        return -errno;
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
#endif
#ifdef SO_NOSIGPIPE
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    return fd;
}

ssize_t tw_send_iov(int fd, const struct iovec *iov, int n)
{
    struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
    ssize_t r;
    /* One buffer, the usual case, goes through send(): the kernel then has no
     * msghdr and iovec to copy in, which is measurable per small write. */
    do
        r = n == 1 ? send(fd, iov->iov_base, iov->iov_len, MSG_NOSIGNAL)
                   : sendmsg(fd, &msg, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

int tw_parse_ip(const char *host, int port, struct sockaddr_storage *addr, socklen_t *len)
{
    memset(addr, 0, sizeof *addr);
    struct sockaddr_in *sin = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)addr;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        *len = sizeof *sin;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *len = sizeof *sin6;
        return 0;
    }
    return -EINVAL;
}

int tw_unix_address(const char *path, struct sockaddr_storage *addr, socklen_t *len)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)addr;
    size_t n = strlen(path);
    if (n == 0)
        return -EINVAL;
    if (n >= sizeof sun->sun_path)
        return -ENAMETOOLONG;
    memset(addr, 0, sizeof *addr);
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, n + 1);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

char *tw_format_address(const struct sockaddr *addr, socklen_t len, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN];
    const struct sockaddr_in *sin = (const struct sockaddr_in *)addr;
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)addr;
    const struct sockaddr_un *sun = (const struct sockaddr_un *)addr;
    size_t path_offset = offsetof(struct sockaddr_un, sun_path);

    if (len >= sizeof *sin && addr->sa_family == AF_INET) {
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip);
        snprintf(buf, size, "%s:%d", ip, ntohs(sin->sin_port));
    } else if (len >= sizeof *sin6 && addr->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof ip);
        snprintf(buf, size, "[%s]:%d", ip, ntohs(sin6->sin6_port));
    } else if (len > path_offset && addr->sa_family == AF_UNIX) {
        snprintf(buf, size, "%.*s", (int)(len - path_offset), sun->sun_path);
    } else {
        snprintf(buf, size, "(unnamed)");
    }
    return buf;
}
