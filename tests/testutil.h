/* twine tests: helpers shared by the cmocka suites. */
#ifndef TWINE_TESTUTIL_H
#define TWINE_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <twine.h>

/* Captures log messages so a test can assert on them. */
typedef struct tw_test_log {
    int count;
    int last_level;
    char last[1024];
    char all[8192];          /* every message, one per line, truncated */
} tw_test_log;

static tw_test_log tw_test_captured;

static void tw_test_log_handler(int level, const char *msg, void *arg)
{
    tw_test_log *l = arg;
    l->count++;
    l->last_level = level;
    snprintf(l->last, sizeof l->last, "%s", msg);
    size_t used = strlen(l->all);
    if (used + 1 < sizeof l->all)
        snprintf(l->all + used, sizeof l->all - used, "%s\n", msg);
}

/* Starts capturing into tw_test_captured (cleared). */
static inline void tw_test_capture_log(void)
{
    memset(&tw_test_captured, 0, sizeof tw_test_captured);
    tw_log_set_handler(tw_test_log_handler, &tw_test_captured);
}

static inline void tw_test_restore_log(void)
{
    tw_log_set_handler(NULL, NULL);
}

/* A value whose destructor counts its calls: assert that destructors run
 * exactly once. */
typedef struct tw_test_value {
    int id;
    int freed;               /* how many times the destructor ran */
} tw_test_value;

static inline void tw_test_value_dtor(void *p)
{
    ((tw_test_value *)p)->freed++;
}

/* A heap value freed by its destructor, with a global count of live ones. */
static int tw_test_live_boxes;

static inline int *tw_test_box(int v)
{
    int *p = malloc(sizeof *p);
    *p = v;
    tw_test_live_boxes++;
    return p;
}

static inline void tw_test_box_free(void *p)
{
    tw_test_live_boxes--;
    free(p);
}


/* Runs a shell command made like printf's; returns system()'s status. */
static inline int tw_test_run(const char *fmt, ...) TW_PRINTF(1, 2);
static inline int tw_test_run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

/* Makes, in dir, a self-signed CA <name>.key and <name>.pem with the openssl
 * command (EC P-256 keys: fast). The first call in a dir writes the request
 * configuration the commands share, so the system's cannot add to it. */
static inline int tw_test_make_ca(const char *dir, const char *name, const char *cn)
{
    return tw_test_run("cd %s && { [ -f req.cnf ] || "
                       "printf '[req]\\ndistinguished_name = dn\\n[dn]\\n' > req.cnf; } && "
                       "openssl req -config req.cnf -x509 -newkey ec "
                       "-pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj '/CN=%s' "
                       "-addext basicConstraints=critical,CA:TRUE "
                       "-addext keyUsage=critical,keyCertSign,cRLSign "
                       "-keyout %s.key -out %s.pem 2>/dev/null", dir, cn, name, name);
}

/* Makes, in dir, a certificate <name>.pem and its key <name>.key, signed by
 * the CA already there (ca.key, ca.pem, from tw_test_make_certificates or
 * tw_test_make_ca(dir, "ca", ...)), for the subjectAltName `san`, with
 * serial number `serial` (distinct for each certificate of the CA). */
static inline int tw_test_make_signed_certificate(const char *dir, const char *name,
                                                  const char *san, int serial)
{
    return tw_test_run("cd %s && "
                       "printf 'subjectAltName = %s\\nbasicConstraints = CA:FALSE\\n' > %s.cnf && "
                       "openssl req -config req.cnf -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                       "-nodes -subj '/CN=twine test server' -keyout %s.key -out %s.csr "
                       "2>/dev/null && "
                       "openssl x509 -req -in %s.csr -CA ca.pem -CAkey ca.key -set_serial %d "
                       "-days 2 -extfile %s.cnf -out %s.pem 2>/dev/null",
                       dir, san, name, name, name, name, serial, name, name);
}

/* Makes, in dir, a CA (ca.key, ca.pem) and a server certificate it signs
 * (server.key, server.pem) for the subjectAltName `san`, such as
 * "DNS:localhost, IP:127.0.0.1". Returns 0, or non-zero when the openssl
 * command failed or is missing. */
static inline int tw_test_make_certificates(const char *dir, const char *san)
{
    if (tw_test_make_ca(dir, "ca", "twine test CA") != 0)
        return -1;
    return tw_test_make_signed_certificate(dir, "server", san, 2);
}

/* Running the reactor in a test. A suite that defines SAFETY_SECONDS before
 * including this header sets `waiting` to the events it expects, calls
 * count_down() as each comes, and run_reactor() runs the reactor until the
 * last one; if they have not all come after SAFETY_SECONDS, the reactor is
 * stopped and the test fails instead of hanging. */
#ifdef SAFETY_SECONDS
#include <time.h>
#include <twine/reactor.h>

static int waiting;             /* events the running test still expects */
static int hung;

static inline void count_down(void)
{
    if (--waiting == 0)
        tw_reactor_stop();
}

static inline void on_safety(void *arg)
{
    (void)arg;
    hung = 1;
    tw_reactor_stop();
}

static inline void run_reactor(void)
{
    hung = 0;
    tw_delayed_call *safety = tw_call_later(SAFETY_SECONDS, on_safety, NULL);
    assert_int_equal(tw_reactor_run(), 0);
    if (!hung)
        tw_delayed_call_cancel(safety);
    assert_false(hung);
    assert_int_equal(waiting, 0);
}

static inline double monotonic_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}
#endif

#endif
