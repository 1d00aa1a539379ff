/* chat-server: a line-based chat room over TCP.
 *
 *     chat-server [-i ADDR] PORT
 *
 * The first line a client sends is its name; the others hear "NAME has
 * joined". Every later line goes to every other client as "<NAME> line".
 * When a client goes, the others hear "NAME has left". Lines end in "\r\n".
 *
 * Prints "listening on ADDR:PORT" once it listens (port 0 lets the kernel
 * pick one; ADDR defaults to 127.0.0.1), then each join and leave as the
 * others hear it. SIGINT or SIGTERM stops it; the port closes on the way out
 * and the program exits 0. */
#define _POSIX_C_SOURCE 200809L   /* getopt, strndup */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <twine.h>
#include <unistd.h>

/* The room (the factory's data) lists the clients that have given a name. */
typedef struct client client;
typedef struct room {
    client *first;
} room;

struct client {
    tw_line_receiver lr;
    room *room;
    char *name;                           /* NULL until the first line */
    client *prev, *next;                  /* in the room, once named */
};

/* Sends a formatted line to everyone in the room but `from`. */
TW_PRINTF(3, 4)
static void broadcast(room *r, const client *from, const char *fmt, ...)
{
    char line[TW_LINE_MAX_LENGTH + 64];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (len < 0)
        return;
    if ((size_t)len >= sizeof line)
        len = sizeof line - 1;
    for (client *c = r->first; c; c = c->next)
        if (c != from)
            tw_line_receiver_send_line(&c->lr, line, (size_t)len);
}

static void join(client *c, const char *name, size_t len)
{
    room *r = c->room;
    c->name = strndup(name, len);
    if (!c->name) {
        tw_transport_lose_connection(c->lr.proto.transport);
        return;
    }
    c->next = r->first;
    if (r->first)
        r->first->prev = c;
    r->first = c;
    broadcast(r, c, "%s has joined", c->name);
    printf("%s has joined\n", c->name);
    fflush(stdout);
}

static void chat_line_received(tw_line_receiver *lr, const char *line, size_t len)
{
    client *c = TW_CONTAINER_OF(lr, client, lr);
    if (!c->name)
        join(c, line, len);
    else
        broadcast(c->room, c, "<%s> %.*s", c->name, (int)len, line);
}

static void chat_connection_lost(tw_line_receiver *lr, tw_failure *reason)
{
    client *c = TW_CONTAINER_OF(lr, client, lr);
    room *r = c->room;
    if (!c->name)
        return;                           /* never joined */
    if (c->prev)
        c->prev->next = c->next;
    else
        r->first = c->next;
    if (c->next)
        c->next->prev = c->prev;
    broadcast(r, c, "%s has left", c->name);
    printf("%s has left\n", c->name);
    fflush(stdout);
}

static void chat_free(tw_line_receiver *lr)
{
    client *c = TW_CONTAINER_OF(lr, client, lr);
    free(c->name);
    free(c);
}

static const tw_line_receiver_ops chat_ops = {
    .line_received = chat_line_received,
    .connection_lost = chat_connection_lost,
    .free = chat_free,
};

static tw_protocol *build_client(tw_factory *f, const struct sockaddr *peer)
{
    client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;                      /* refuses the connection */
    tw_line_receiver_init(&c->lr, &chat_ops);
    c->room = f->data;
    return &c->lr.proto;
}

/* A shutdown trigger: the reactor waits for the port to close. */
static tw_deferred *stop_listening(void *port)
{
    return tw_port_stop_listening(port);
}

static void usage(void)
{
    fprintf(stderr, "usage: chat-server [-i ADDR] PORT\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *iface = "127.0.0.1";
    int opt;
    while ((opt = getopt(argc, argv, "i:")) != -1) {
        if (opt != 'i')
            usage();
        iface = optarg;
    }
    if (optind != argc - 1)
        usage();

    room r = { NULL };
    tw_factory factory = { .build_protocol = build_client, .data = &r };
    int err;
    tw_port *port = tw_listen_tcp(iface, atoi(argv[optind]), &factory, &err);
    if (!port) {
        fprintf(stderr, "chat-server: cannot listen on %s port %s: %s\n", iface, argv[optind],
                strerror(-err));
        return 1;
    }
    printf(strchr(iface, ':') ? "listening on [%s]:%d\n" : "listening on %s:%d\n", iface,
           tw_port_number(port));
    fflush(stdout);

    tw_reactor_add_system_event_trigger(TW_SHUTDOWN_BEFORE, stop_listening, port);
    return tw_reactor_run() == 0 ? 0 : 1;
}
