/* twine: the reconnecting client, Twisted's ReconnectingClientFactory.
 *
 * After a failed attempt or a lost connection, retry() waits and connects
 * again: the delay grows by `factor` per retry, with normal jitter, up to
 * max_delay, and goes back to the initial delay once a connection is made. */
#include "net_internal.h"

#include <math.h>
#include <stdint.h>
#include <twine/reactor.h>

#define DEFAULT_INITIAL_DELAY 1.0
#define DEFAULT_FACTOR        2.7182818284590451      /* e */
#define DEFAULT_JITTER        0.119626565582
#define DEFAULT_MAX_DELAY     3600.0

struct tw_reconnecting_client {
    unsigned refs;                        /* the owner's, and each attempt's callbacks */
    bool freed;                           /* the owner let go */
    char *host;
    int port;
    tw_factory *factory;
    double timeout;
    tw_clock *clock;
    double initial_delay, factor, jitter, max_delay;
    unsigned max_retries;                 /* 0: no limit */
    double delay;
    unsigned retries;
    bool continue_trying;
    tw_delayed_call *call;                /* the next attempt; borrowed, cleared when it runs */
    tw_deferred *connecting;              /* the attempt in progress */
    tw_transport *connection;             /* the connection up */
    uint64_t rng;                         /* xorshift64* state for the jitter */
};

static void client_unref(void *arg)
{
    tw_reconnecting_client *rc = arg;
    if (--rc->refs > 0)
        return;
    free(rc->host);
    free(rc);
}

/* Jitter ------------------------------------------------------------------------------ */

static double uniform(tw_reconnecting_client *rc)     /* in (0, 1] */
{
    rc->rng ^= rc->rng >> 12;
    rc->rng ^= rc->rng << 25;
    rc->rng ^= rc->rng >> 27;
    return ((rc->rng * 0x2545F4914F6CDD1DULL) >> 11) * 0x1.0p-53 + 0x1.0p-53;
}

/* Box-Muller: a normal variate of mean mu and standard deviation sigma. */
static double normal_variate(tw_reconnecting_client *rc, double mu, double sigma)
{
    double u1 = uniform(rc), u2 = uniform(rc);
    return mu + sigma * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Attempts ------------------------------------------------------------------------------ */

static void retry(tw_reconnecting_client *rc);

static void on_lost(void *arg, tw_failure *reason)
{
    tw_reconnecting_client *rc = arg;
    rc->connection = NULL;
    retry(rc);
}

static void on_connected(tw_result *r, void *arg)
{
    tw_reconnecting_client *rc = arg;
    tw_protocol *p = r->value;
    if (rc->freed) {
        tw_transport_abort_connection(p->transport);
        return;
    }
    tw_deferred_unref(rc->connecting);
    rc->connecting = NULL;
    rc->connection = p->transport;
    tw_stream_set_lost_hook(p->transport, on_lost, rc);
    rc->delay = rc->initial_delay;
    rc->retries = 0;
}

static void on_failed(tw_result *r, void *arg)
{
    tw_reconnecting_client *rc = arg;
    tw_result_set_value(r, NULL, NULL);   /* the factory has heard of it */
    if (rc->freed)
        return;
    tw_deferred_unref(rc->connecting);
    rc->connecting = NULL;
    retry(rc);
}

static void attempt(tw_reconnecting_client *rc)
{
    tw_deferred *d = tw_connect_tcp(rc->host, rc->port, rc->factory, rc->timeout);
    rc->connecting = d;
    rc->refs++;
    tw_deferred_add_callbacks_full(d, on_connected, on_failed, rc, client_unref);
}

static void on_retry_due(void *arg)
{
    tw_reconnecting_client *rc = arg;
    rc->call = NULL;
    attempt(rc);
}

static void retry(tw_reconnecting_client *rc)
{
    if (!rc->continue_trying)
        return;
    rc->retries++;
    if (rc->max_retries && rc->retries > rc->max_retries) {
        tw_log(TW_LOG_INFO, "abandoning %s:%d after %u retries", rc->host, rc->port,
               rc->retries);
        return;
    }
    rc->delay = fmin(rc->delay * rc->factor, rc->max_delay);
    if (rc->jitter != 0)
        rc->delay = normal_variate(rc, rc->delay, rc->delay * rc->jitter);
    tw_log(TW_LOG_DEBUG, "%s:%d: retrying in %g seconds", rc->host, rc->port, rc->delay);
    rc->call = tw_clock_call_later(rc->clock, rc->delay, on_retry_due, rc);
}

/* The public functions ----------------------------------------------------------------------- */

tw_reconnecting_client *tw_reconnecting_client_new(const char *host, int port, tw_factory *f,
                                                   double timeout)
{
    tw_reconnecting_client *rc = tw_xcalloc(1, sizeof *rc);
    rc->refs = 1;
    rc->host = tw_xstrdup(host ? host : "");
    rc->port = port;
    rc->factory = f;
    rc->timeout = timeout;
    rc->clock = tw_reactor_clock();
    rc->initial_delay = rc->delay = DEFAULT_INITIAL_DELAY;
    rc->factor = DEFAULT_FACTOR;
    rc->jitter = DEFAULT_JITTER;
    rc->max_delay = DEFAULT_MAX_DELAY;
    rc->continue_trying = true;
    tw_reconnecting_client_set_seed(rc, (uint64_t)(uintptr_t)rc ^ (uint64_t)(tw_reactor_now() * 1e6));
    attempt(rc);
    return rc;
}

void tw_reconnecting_client_set_backoff(tw_reconnecting_client *rc, double initial_delay,
                                        double factor, double jitter, double max_delay,
                                        unsigned max_retries)
{
    rc->initial_delay = rc->delay = initial_delay;
    rc->factor = factor;
    rc->jitter = jitter;
    rc->max_delay = max_delay;
    rc->max_retries = max_retries;
}

void tw_reconnecting_client_set_clock(tw_reconnecting_client *rc, tw_clock *clock)
{
    rc->clock = clock ? clock : tw_reactor_clock();
    if (rc->call) {
        /* Move the waiting retry over, due after the same delay. */
        tw_delayed_call_cancel(rc->call);
        rc->call = tw_clock_call_later(rc->clock, rc->delay, on_retry_due, rc);
    }
}

void tw_reconnecting_client_set_seed(tw_reconnecting_client *rc, uint64_t seed)
{
    rc->rng = seed ? seed : 0x9E3779B97F4A7C15ULL;   /* xorshift must not start at 0 */
}

double tw_reconnecting_client_delay(const tw_reconnecting_client *rc) { return rc->delay; }
unsigned tw_reconnecting_client_retries(const tw_reconnecting_client *rc) { return rc->retries; }

tw_protocol *tw_reconnecting_client_protocol(const tw_reconnecting_client *rc)
{
    return rc->connection ? tw_transport_protocol(rc->connection) : NULL;
}

void tw_reconnecting_client_stop_trying(tw_reconnecting_client *rc)
{
    if (rc->call) {
        tw_delayed_call_cancel(rc->call);
        rc->call = NULL;
    }
    rc->continue_trying = false;
    if (rc->connecting)
        tw_deferred_cancel(rc->connecting);   /* on_failed clears it */
}

void tw_reconnecting_client_free(tw_reconnecting_client *rc)
{
    if (!rc)
        return;
    tw_reconnecting_client_stop_trying(rc);
    rc->freed = true;
    if (rc->connection) {
        tw_stream_set_lost_hook(rc->connection, NULL, NULL);
        tw_transport_abort_connection(rc->connection);
    }
    tw_deferred_unref(rc->connecting);    /* still set when cancelled from connection_made */
    client_unref(rc);
}
