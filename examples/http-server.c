/* http-server: serves a directory over HTTP, with two routes answered by
 * code: /hello at once, /slow a second later through a Deferred.
 *
 *     http-server [-i ADDR] [-p PORT] DIRECTORY
 *
 * Listens on ADDR (default 127.0.0.1) and PORT (default 8080; 0 picks a free
 * one), prints "listening on ADDR:PORT" once it does, and stops cleanly on
 * SIGINT or SIGTERM. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <twine.h>

static tw_http_headers *text_headers(void)
{
    tw_http_headers *h = tw_http_headers_new();
    tw_http_headers_add(h, "Content-Type", "text/plain; charset=utf-8");
    return h;
}

/* Answers through the request, at once. */
static tw_deferred *hello(tw_http_request *req, void *arg)
{
    static const char body[] = "Hello, world!\n";
    tw_http_headers *h = text_headers();
    tw_http_request_respond(req, 200, h, body, sizeof body - 1);
    tw_http_headers_free(h);
    return NULL;
}

static void make_slow_page(tw_result *r, void *arg)
{
    static const char body[] = "Sorry for the wait.\n";
    tw_http_response *resp = tw_http_response_new(200, NULL, text_headers());
    tw_http_response_set_body(resp, body, sizeof body - 1);
    tw_result_set_value(r, resp, (void (*)(void *))tw_http_response_free);
}

/* Answers later: the Deferred fires with the response in one second. If the
 * client leaves first, the server cancels it, which cancels the timer. */
static tw_deferred *slow(tw_http_request *req, void *arg)
{
    return tw_defer_later(1.0, make_slow_page, NULL);
}

static tw_http_site *site;
static tw_port *port;

/* Shutdown, before the reactor stops: stop accepting, then free the site,
 * which aborts the connections still open (a /slow request waiting is
 * cancelled). The reactor finishes closing them while it waits for the
 * port. */
static tw_deferred *stop_serving(void *arg)
{
    tw_deferred *stopped = tw_port_stop_listening(port);
    tw_http_site_free(site);
    return stopped;
}

static int usage(void)
{
    fprintf(stderr, "usage: http-server [-i ADDR] [-p PORT] DIRECTORY\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1";
    int port_number = 8080, opt;
    while ((opt = getopt(argc, argv, "i:p:")) != -1) {
        switch (opt) {
        case 'i': addr = optarg; break;
        case 'p': port_number = atoi(optarg); break;
        default: return usage();
        }
    }
    if (optind != argc - 1)
        return usage();

    site = tw_http_site_new();
    int err = tw_http_site_static(site, "/", argv[optind]);
    if (err < 0) {
        fprintf(stderr, "http-server: %s: %s\n", argv[optind], strerror(-err));
        tw_http_site_free(site);
        return 1;
    }
    tw_http_site_route(site, "GET", "/hello", hello, NULL);
    tw_http_site_route(site, "GET", "/slow", slow, NULL);

    port = tw_http_listen(site, addr, port_number, &err);
    if (!port) {
        fprintf(stderr, "http-server: listening on %s:%d: %s\n", addr, port_number,
                strerror(-err));
        tw_http_site_free(site);
        return 1;
    }
    printf("listening on %s:%d\n", addr, tw_port_number(port));
    fflush(stdout);

    tw_reactor_add_system_event_trigger(TW_SHUTDOWN_BEFORE, stop_serving, NULL);
    return tw_reactor_run() == 0 ? 0 : 1;
}
