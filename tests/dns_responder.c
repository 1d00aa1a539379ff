/* twine tests: a small UDP DNS server on 127.0.0.1; see dns_responder.h.
 *
 * Only what the resolver's tests need: one question per message, class IN,
 * types A and AAAA, answers that repeat the question and point back at its
 * name. Anything it cannot parse is dropped. */
#include "dns_responder.h"

#include <arpa/inet.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
    MAX_RECORDS = 32,
    MAX_NAME = 256,
    MAX_MESSAGE = 512,          /* plain DNS over UDP, no EDNS */
    HEADER_LEN = 12,
    TYPE_A = 1,
    TYPE_AAAA = 28,
    CLASS_IN = 1,
    RCODE_NXDOMAIN = 3,
    TTL = 60
};

struct record {
    char name[MAX_NAME];
    int type;
    unsigned char data[16];
    size_t len;
};

struct dns_responder {
    ev_io io;                   /* first: the watcher is the responder */
    struct ev_loop *loop;
    int fd;
    int port;
    int silent;
    unsigned queries;
    size_t n;
    struct record records[MAX_RECORDS];
};

static unsigned get16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static unsigned char *put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
    return p + 2;
}

/* Reads the question's name at msg[off] into `name` as "a.b.c" (no final
 * dot). Returns the offset just past it, or 0 when it is malformed. */
static size_t read_name(const unsigned char *msg, size_t len, size_t off, char *name)
{
    size_t out = 0;
    for (;;) {
        if (off >= len)
            return 0;
        size_t label = msg[off++];
        if (label == 0)
            break;
        if (label > 63 || off + label > len || out + label + 1 >= MAX_NAME)
            return 0;           /* compression pointers have no place in a question */
        if (out > 0)
            name[out++] = '.';
        memcpy(name + out, msg + off, label);
        out += label;
        off += label;
    }
    name[out] = '\0';
    return off;
}

static int name_known(const dns_responder *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcasecmp(r->records[i].name, name) == 0)
            return 1;
    return 0;
}

/* Builds the answer to `query` (question ending at qend) in `out`; returns its
 * length. */
static size_t build_answer(const dns_responder *r, const unsigned char *query, size_t qend,
                           const char *name, unsigned qtype, unsigned char *out)
{
    memcpy(out, query, qend);                        /* id, flags, counts, question */
    unsigned rd = query[2] & 0x01;
    out[2] = (unsigned char)(0x80 | (query[2] & 0x78) | 0x04 | rd);  /* QR, opcode, AA, RD */
    out[3] = 0x80;                                   /* RA, rcode 0 */
    put16(out + 4, 1);
    put16(out + 6, 0);
    put16(out + 8, 0);
    put16(out + 10, 0);

    if (!name_known(r, name)) {
        out[3] |= RCODE_NXDOMAIN;
        return qend;
    }
    unsigned char *p = out + qend;
    unsigned answers = 0;
    for (size_t i = 0; i < r->n; i++) {
        const struct record *rec = &r->records[i];
        if ((unsigned)rec->type != qtype || strcasecmp(rec->name, name) != 0)
            continue;
        if ((size_t)(p - out) + 12 + rec->len > MAX_MESSAGE)
            break;
        p = put16(p, 0xC000 | HEADER_LEN);           /* the question's name */
        p = put16(p, qtype);
        p = put16(p, CLASS_IN);
        p = put16(p, 0);
        p = put16(p, TTL);
        p = put16(p, (unsigned)rec->len);
        memcpy(p, rec->data, rec->len);
        p += rec->len;
        answers++;
    }
    put16(out + 6, answers);                         /* none: the name has no such type */
    return (size_t)(p - out);
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    dns_responder *r = (dns_responder *)w;
    unsigned char query[MAX_MESSAGE], answer[MAX_MESSAGE];
    struct sockaddr_storage peer;
    socklen_t peer_len = sizeof peer;
    ssize_t got = recvfrom(r->fd, query, sizeof query, 0, (struct sockaddr *)&peer, &peer_len);
    if (got < HEADER_LEN)
        return;
    size_t len = (size_t)got;
    if ((query[2] & 0x80) || get16(query + 4) != 1)
        return;                                      /* not a query with one question */
    char name[MAX_NAME];
    size_t qend = read_name(query, len, HEADER_LEN, name);
    if (qend == 0 || qend + 4 > len)
        return;
    unsigned qtype = get16(query + qend);
    qend += 4;                                       /* QTYPE, QCLASS */
    r->queries++;
    if (r->silent)
        return;
    size_t n = build_answer(r, query, qend, name, qtype, answer);
    sendto(r->fd, answer, n, 0, (struct sockaddr *)&peer, peer_len);
}

dns_responder *dns_responder_new(struct ev_loop *loop)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = 0 };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sin;
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0
        || getsockname(fd, (struct sockaddr *)&sin, &sl) < 0) {
        close(fd);
        return NULL;
    }
    dns_responder *r = calloc(1, sizeof *r);
    if (!r) {
        close(fd);
        return NULL;
    }
    r->loop = loop;
    r->fd = fd;
    r->port = ntohs(sin.sin_port);
    ev_io_init(&r->io, on_readable, fd, EV_READ);
    ev_io_start(loop, &r->io);
    return r;
}

void dns_responder_free(dns_responder *r)
{
    if (!r)
        return;
    ev_io_stop(r->loop, &r->io);
    close(r->fd);
    free(r);
}

int dns_responder_port(const dns_responder *r)
{
    return r->port;
}

int dns_responder_add(dns_responder *r, const char *name, const char *addr)
{
    if (r->n == MAX_RECORDS || strlen(name) >= MAX_NAME)
        return -1;
    struct record *rec = &r->records[r->n];
    if (inet_pton(AF_INET, addr, rec->data) == 1) {
        rec->type = TYPE_A;
        rec->len = 4;
    } else if (inet_pton(AF_INET6, addr, rec->data) == 1) {
        rec->type = TYPE_AAAA;
        rec->len = 16;
    } else {
        return -1;
    }
    strcpy(rec->name, name);
    r->n++;
    return 0;
}

void dns_responder_set_silent(dns_responder *r, int silent)
{
    r->silent = silent;
}

unsigned dns_responder_queries(const dns_responder *r)
{
    return r->queries;
}
