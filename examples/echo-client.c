/* echo-client: sends lines to an echo server and prints the answers.
 *
 *     echo-client HOST PORT LINE...
 *
 * Connects to HOST:PORT, sends the first LINE, prints the answer, sends the
 * next one, and so on; after the last answer it closes the connection, stops
 * the reactor and exits 0. When the connection cannot be made, or is lost
 * before every answer came, it prints why on stderr and exits 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <twine.h>

/* What to send and how far it got; the factory's data. */
typedef struct script {
    char **lines;
    int n, answered;
} script;

typedef struct echo_client {
    tw_line_receiver lr;
    script *script;
} echo_client;

static void send_next(echo_client *c)
{
    const char *line = c->script->lines[c->script->answered];
    tw_line_receiver_send_line(&c->lr, line, strlen(line));
}

static void client_connection_made(tw_line_receiver *lr)
{
    send_next(TW_CONTAINER_OF(lr, echo_client, lr));
}

static void client_line_received(tw_line_receiver *lr, const char *line, size_t len)
{
    echo_client *c = TW_CONTAINER_OF(lr, echo_client, lr);
    printf("%.*s\n", (int)len, line);
    fflush(stdout);
    if (++c->script->answered < c->script->n)
        send_next(c);
    else
        tw_transport_lose_connection(lr->proto.transport);
}

static void client_connection_lost(tw_line_receiver *lr, tw_failure *reason)
{
    const script *s = TW_CONTAINER_OF(lr, echo_client, lr)->script;
    if (s->answered < s->n)
        fprintf(stderr, "echo-client: %s after %d of %d answers\n", tw_failure_message(reason),
                s->answered, s->n);
    tw_reactor_stop();
}

static void client_free(tw_line_receiver *lr)
{
    free(TW_CONTAINER_OF(lr, echo_client, lr));
}

static const tw_line_receiver_ops client_ops = {
    .connection_made = client_connection_made,
    .line_received = client_line_received,
    .connection_lost = client_connection_lost,
    .free = client_free,
};

static tw_protocol *build_client(tw_factory *f, const struct sockaddr *peer)
{
    echo_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    tw_line_receiver_init(&c->lr, &client_ops);
    c->script = f->data;
    return &c->lr.proto;
}

/* The errback of the connection attempt: there is nothing else to do. */
static void connect_failed(tw_result *r, void *arg)
{
    fprintf(stderr, "echo-client: %s\n", tw_failure_message(r->failure));
    tw_result_set_value(r, NULL, NULL);   /* handled */
    tw_reactor_stop();
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: echo-client HOST PORT LINE...\n");
        return 2;
    }
    script s = { .lines = argv + 3, .n = argc - 3 };
    tw_factory factory = { .build_protocol = build_client, .data = &s };

    tw_deferred *d = tw_connect_tcp(argv[1], atoi(argv[2]), &factory, 10);
    tw_deferred_add_errback(d, connect_failed, NULL);
    tw_deferred_unref(d);
    tw_reactor_run();
    return s.answered == s.n ? 0 : 1;
}
