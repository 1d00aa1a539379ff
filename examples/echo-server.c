/* echo-server: sends every byte it receives back, on one or more TCP ports.
 *
 *     echo-server [-i ADDR] PORT...
 *
 * One reactor serves every port given; port 0 lets the kernel pick one. Each
 * port prints "listening on ADDR:PORT" once it listens. ADDR is an IP literal
 * (default 127.0.0.1; 0.0.0.0 or :: for every address). SIGINT or SIGTERM
 * stops the reactor; the ports close on the way out and the program exits 0.
 *
 * Flow control: a connection's reading is registered as the producer of its
 * writes, so when a client sends faster than it reads its echoes, the server
 * stops reading from it until the echoes drain: however fast a client sends,
 * what the server holds for it stays near the write buffer's high watermark. */
#define _POSIX_C_SOURCE 200809L   /* getopt */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <twine.h>
#include <unistd.h>

typedef struct echo {
    tw_protocol proto;
} echo;

static void echo_connection_made(tw_protocol *p)
{
    tw_transport_register_producer(p->transport, &tw_transport_reading_producer, p->transport);
}

static void echo_data_received(tw_protocol *p, const char *data, size_t len)
{
    tw_transport_write(p->transport, data, len);
}

static void echo_free(tw_protocol *p)
{
    free(TW_CONTAINER_OF(p, echo, proto));
}

static const tw_protocol_ops echo_ops = {
    .connection_made = echo_connection_made,
    .data_received = echo_data_received,
    .free = echo_free,
};

static tw_protocol *build_echo(tw_factory *f, const struct sockaddr *peer)
{
    echo *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;                      /* refuses the connection */
    e->proto.ops = &echo_ops;
    return &e->proto;
}

static tw_factory echo_factory = { .build_protocol = build_echo };

/* The ports, closed by a shutdown trigger: the reactor waits for them. */
typedef struct port_list {
    tw_port **ports;
    size_t n;
} port_list;

static tw_deferred *stop_listening(void *arg)
{
    port_list *pl = arg;
    tw_deferred **stopped = malloc(pl->n * sizeof *stopped);
    if (!stopped)
        return NULL;
    for (size_t i = 0; i < pl->n; i++)
        stopped[i] = tw_port_stop_listening(pl->ports[i]);
    tw_deferred *all = tw_deferred_list(stopped, pl->n, 0);   /* copies the array */
    free(stopped);
    return all;
}

static void usage(void)
{
    fprintf(stderr, "usage: echo-server [-i ADDR] PORT...\n");
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
    if (optind == argc)
        usage();

    size_t n = (size_t)(argc - optind);
    port_list ports = { calloc(n, sizeof *ports.ports), 0 };
    if (!ports.ports)
        return 1;
    for (size_t i = 0; i < n; i++) {
        const char *number = argv[optind + (int)i];
        int err;
        tw_port *port = tw_listen_tcp(iface, atoi(number), &echo_factory, &err);
        if (!port) {
            fprintf(stderr, "echo-server: cannot listen on %s port %s: %s\n", iface, number,
                    strerror(-err));
            return 1;
        }
        ports.ports[ports.n++] = port;
        printf(strchr(iface, ':') ? "listening on [%s]:%d\n" : "listening on %s:%d\n", iface,
               tw_port_number(port));
    }
    fflush(stdout);

    tw_reactor_add_system_event_trigger(TW_SHUTDOWN_BEFORE, stop_listening, &ports);
    int rc = tw_reactor_run();
    free(ports.ports);
    return rc == 0 ? 0 : 1;
}
