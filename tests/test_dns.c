/* twine tests: the resolver, against a DNS responder of the test's own on
 * 127.0.0.1 (tests/dns_responder.c), so no test needs a network. */
#define SAFETY_SECONDS 10.0
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <time.h>
#include <twine/reactor.h>

#include "dns_responder.h"

/* Every test stops the reactor itself; this timer fails one that would hang. */

static dns_responder *responder;

/* What a lookup's Deferred fired with. */
typedef struct outcome {
    int fired;
    tw_addresses *addrs;        /* owned by the outcome */
    tw_failure *failure;        /* a reference */
} outcome;

static void outcome_clear(outcome *o)
{
    free(o->addrs);
    tw_failure_unref(o->failure);
    memset(o, 0, sizeof *o);
}

/* Records the outcome; for lookups the test does not wait for. */
static void record_addresses(tw_result *r, void *arg)
{
    outcome *o = arg;
    o->fired++;
    o->addrs = tw_result_steal(r);
}

static void record_failure(tw_result *r, void *arg)
{
    outcome *o = arg;
    o->fired++;
    o->failure = tw_failure_ref(r->failure);
    tw_result_set_value(r, NULL, NULL);
}

static void on_addresses(tw_result *r, void *arg)
{
    record_addresses(r, arg);
    count_down();
}

static void on_failure(tw_result *r, void *arg)
{
    record_failure(r, arg);
    count_down();
}

/* Starts a lookup whose outcome lands in o. */
static void resolve_into(outcome *o, const char *host, int port, int family)
{
    tw_deferred *d = tw_resolve(host, port, family);
    assert_non_null(d);
    tw_deferred_add_callbacks(d, on_addresses, on_failure, o);
    tw_deferred_unref(d);
    waiting++;
}

static void use_responder(dns_responder *r)
{
    char servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", dns_responder_port(r));
    assert_int_equal(tw_dns_set_servers(servers), 0);
}

static int setup(void **state)
{
    responder = dns_responder_new(tw_reactor_loop());
    assert_non_null(responder);
    assert_int_equal(dns_responder_add(responder, "www.example.test", "192.0.2.1"), 0);
    assert_int_equal(dns_responder_add(responder, "www.example.test", "2001:db8::1"), 0);
    assert_int_equal(dns_responder_add(responder, "two.example.test", "192.0.2.7"), 0);
    assert_int_equal(dns_responder_add(responder, "two.example.test", "192.0.2.8"), 0);
    assert_int_equal(dns_responder_add(responder, "v6only.example.test", "2001:db8::6"), 0);
    use_responder(responder);
    assert_int_equal(tw_dns_set_timeout(2.0, 1), 0);
    waiting = 0;
    return 0;
}

static int teardown(void **state)
{
    assert_int_equal(tw_dns_set_servers(NULL), 0);
    assert_int_equal(tw_dns_set_timeout(0, 0), 0);
    dns_responder_free(responder);
    responder = NULL;
    return 0;
}

/* Assertions on addresses ---------------------------------------------------- */

static void assert_ipv4(const tw_address *a, const char *ip, int port)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->addr;
    char text[INET_ADDRSTRLEN];
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(a->len, sizeof *sin);
    assert_int_equal(ntohs(sin->sin_port), port);
    assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text));
    assert_string_equal(text, ip);
}

static void assert_ipv6(const tw_address *a, const char *ip, int port)
{
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->addr;
    char text[INET6_ADDRSTRLEN];
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_int_equal(a->len, sizeof *sin6);
    assert_int_equal(ntohs(sin6->sin6_port), port);
    assert_non_null(inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text));
    assert_string_equal(text, ip);
}

static void assert_dns_failure(const outcome *o, int code)
{
    assert_int_equal(o->fired, 1);
    assert_null(o->addrs);
    assert_non_null(o->failure);
    assert_ptr_equal(tw_failure_domain(o->failure), TW_ERR_DNS);
    assert_int_equal(tw_failure_code(o->failure), code);
}

/* IP literals ------------------------------------------------------------------ */

static void test_ipv4_literal_resolves_from_the_loop(void **state)
{
    outcome o = { 0 };
    resolve_into(&o, "192.0.2.55", 8080, AF_UNSPEC);
    assert_int_equal(o.fired, 0);           /* never before tw_resolve returns */
    run_reactor();
    assert_int_equal(o.fired, 1);
    assert_null(o.failure);
    assert_int_equal(o.addrs->n, 1);
    assert_ipv4(&o.addrs->addrs[0], "192.0.2.55", 8080);
    assert_int_equal(dns_responder_queries(responder), 0);
    outcome_clear(&o);
}

static void test_ipv6_literal_resolves_without_a_server(void **state)
{
    dns_responder_set_silent(responder, 1);
    outcome o = { 0 };
    resolve_into(&o, "2001:db8::42", 443, AF_INET6);
    assert_int_equal(o.fired, 0);
    run_reactor();
    assert_int_equal(o.addrs->n, 1);
    assert_ipv6(&o.addrs->addrs[0], "2001:db8::42", 443);
    assert_int_equal(dns_responder_queries(responder), 0);
    outcome_clear(&o);
}

static void test_literal_of_the_other_family_is_not_found(void **state)
{
    outcome o = { 0 };
    resolve_into(&o, "127.0.0.1", 80, AF_INET6);
    run_reactor();
    assert_dns_failure(&o, TW_DNS_ENOTFOUND);
    assert_int_equal(dns_responder_queries(responder), 0);
    outcome_clear(&o);
}

/* Names the responder answers ------------------------------------------------- */

static void test_name_resolves_to_its_a_record(void **state)
{
    outcome o = { 0 };
    resolve_into(&o, "www.example.test", 80, AF_INET);
    assert_int_equal(o.fired, 0);
    run_reactor();
    assert_null(o.failure);
    assert_int_equal(o.addrs->n, 1);
    assert_ipv4(&o.addrs->addrs[0], "192.0.2.1", 80);
    assert_int_equal(dns_responder_queries(responder), 1);
    outcome_clear(&o);
}

static void test_name_resolves_to_its_aaaa_record(void **state)
{
    outcome o = { 0 };
    resolve_into(&o, "WWW.Example.Test", 25, AF_INET6);
    run_reactor();
    assert_null(o.failure);
    assert_int_equal(o.addrs->n, 1);
    assert_ipv6(&o.addrs->addrs[0], "2001:db8::1", 25);
    outcome_clear(&o);
}

static void test_unspec_gives_both_families(void **state)
{
    outcome o = { 0 };
    resolve_into(&o, "www.example.test", 5000, AF_UNSPEC);
    run_reactor();
    assert_null(o.failure);
    assert_int_equal(o.addrs->n, 2);
    /* The order is the resolver's (RFC 6724 sorting), so find each. */
    int v4 = o.addrs->addrs[0].addr.ss_family == AF_INET ? 0 : 1;
    assert_ipv4(&o.addrs->addrs[v4], "192.0.2.1", 5000);
    assert_ipv6(&o.addrs->addrs[1 - v4], "2001:db8::1", 5000);
    outcome_clear(&o);
}

static void test_every_record_is_returned(void **state)
{
    outcome o = { 0 };
    resolve_into(&o, "two.example.test", 1, AF_INET);
    run_reactor();
    assert_null(o.failure);
    assert_int_equal(o.addrs->n, 2);
    int first = strcmp(inet_ntoa(((struct sockaddr_in *)&o.addrs->addrs[0].addr)->sin_addr),
                       "192.0.2.7") == 0 ? 0 : 1;
    assert_ipv4(&o.addrs->addrs[first], "192.0.2.7", 1);
    assert_ipv4(&o.addrs->addrs[1 - first], "192.0.2.8", 1);
    outcome_clear(&o);
}

/* Failures ---------------------------------------------------------------------- */

static void test_unknown_name_fails_with_not_found(void **state)
{
    outcome o = { 0 };
    resolve_into(&o, "nx.example.test", 80, AF_INET);
    run_reactor();
    assert_dns_failure(&o, TW_DNS_ENOTFOUND);
    assert_string_equal(tw_failure_message(o.failure),
                        "lookup of nx.example.test failed: Domain name not found");
    outcome_clear(&o);
}

static void test_name_without_that_family_fails_with_no_data(void **state)
{
    outcome o = { 0 };
    resolve_into(&o, "v6only.example.test", 80, AF_INET);
    run_reactor();
    assert_dns_failure(&o, TW_DNS_ENODATA);
    outcome_clear(&o);
}

static void test_silent_server_times_out_in_bounded_time(void **state)
{
    dns_responder_set_silent(responder, 1);
    assert_int_equal(tw_dns_set_timeout(0.2, 1), 0);
    outcome o = { 0 };
    double start = monotonic_now();
    resolve_into(&o, "www.example.test", 80, AF_INET);
    run_reactor();
    double took = monotonic_now() - start;
    assert_dns_failure(&o, TW_DNS_ETIMEOUT);
    assert_string_equal(tw_failure_message(o.failure), "lookup of www.example.test timed out");
    assert_true(took >= 0.15);
    assert_true(took < 2.0);
    assert_int_equal(dns_responder_queries(responder), 1);
    outcome_clear(&o);
}

static void test_bad_family_fails_from_the_loop(void **state)
{
    outcome o = { 0 };
    resolve_into(&o, "www.example.test", 80, AF_UNIX);
    assert_int_equal(o.fired, 0);
    run_reactor();
    assert_dns_failure(&o, TW_DNS_EBADFAMILY);
    outcome_clear(&o);
}

static void test_bad_arguments_fail_with_usage(void **state)
{
    outcome a = { 0 }, b = { 0 };
    resolve_into(&a, NULL, 80, AF_INET);
    resolve_into(&b, "www.example.test", 65536, AF_INET);
    run_reactor();
    assert_true(tw_failure_check(a.failure, TW_ERR_USAGE, EINVAL));
    assert_true(tw_failure_check(b.failure, TW_ERR_USAGE, EINVAL));
    outcome_clear(&a);
    outcome_clear(&b);
}

/* /etc/hosts ------------------------------------------------------------------- */

static void test_localhost_comes_from_the_hosts_file(void **state)
{
    outcome o = { 0 };
    resolve_into(&o, "localhost", 631, AF_INET);
    assert_int_equal(o.fired, 0);
    run_reactor();
    assert_null(o.failure);
    assert_true(o.addrs->n >= 1);
    assert_ipv4(&o.addrs->addrs[0], "127.0.0.1", 631);
    assert_int_equal(dns_responder_queries(responder), 0);  /* it knows no localhost */
    outcome_clear(&o);
}

/* Cancelling ------------------------------------------------------------------- */

static void test_cancel_before_the_answer(void **state)
{
    outcome cancelled = { 0 }, later = { 0 };
    tw_deferred *d = tw_resolve("www.example.test", 80, AF_INET);
    tw_deferred_add_callbacks(d, record_addresses, record_failure, &cancelled);
    tw_deferred_cancel(d);
    tw_deferred_unref(d);
    assert_int_equal(cancelled.fired, 1);
    assert_true(tw_failure_check(cancelled.failure, TW_ERR_CANCELLED, -1));
    outcome_clear(&cancelled);

    /* The responder answers in order: once a later lookup is answered, the
     * abandoned one has been answered and released, without firing. */
    resolve_into(&later, "two.example.test", 80, AF_INET);
    run_reactor();
    assert_int_equal(later.fired, 1);
    assert_null(later.failure);
    assert_int_equal(cancelled.fired, 0);
    assert_int_equal(dns_responder_queries(responder), 2);
    outcome_clear(&later);
}

static void test_cancel_a_literal_lookup(void **state)
{
    outcome cancelled = { 0 }, later = { 0 };
    tw_deferred *d = tw_resolve("192.0.2.9", 80, AF_INET);
    tw_deferred_add_callbacks(d, record_addresses, record_failure, &cancelled);
    tw_deferred_cancel(d);
    tw_deferred_unref(d);
    assert_int_equal(cancelled.fired, 1);
    assert_true(tw_failure_check(cancelled.failure, TW_ERR_CANCELLED, -1));
    resolve_into(&later, "192.0.2.10", 80, AF_INET);
    run_reactor();
    assert_int_equal(cancelled.fired, 1);
    assert_int_equal(later.fired, 1);
    outcome_clear(&cancelled);
    outcome_clear(&later);
}

/* Many at once, and a reactor that keeps running -------------------------------- */

static void test_hundred_concurrent_lookups(void **state)
{
    enum { N = 100 };
    outcome *o = calloc(N, sizeof *o);
    for (int i = 0; i < N; i++)
        resolve_into(&o[i], i % 2 ? "www.example.test" : "two.example.test", 1000 + i, AF_INET);
    run_reactor();
    for (int i = 0; i < N; i++) {
        assert_int_equal(o[i].fired, 1);
        assert_null(o[i].failure);
        assert_int_equal(o[i].addrs->n, i % 2 ? 1 : 2);
        assert_int_equal(ntohs(((struct sockaddr_in *)&o[i].addrs->addrs[0].addr)->sin_port),
                         1000 + i);
        outcome_clear(&o[i]);
    }
    assert_int_equal(dns_responder_queries(responder), N);
    free(o);
}

static int ticks;
static tw_delayed_call *ticker;

static void on_tick(void *arg)
{
    ticks++;
    ticker = tw_call_later(0.02, on_tick, NULL);
}

static void test_reactor_keeps_running_during_a_slow_lookup(void **state)
{
    dns_responder_set_silent(responder, 1);
    assert_int_equal(tw_dns_set_timeout(0.3, 1), 0);
    ticks = 0;
    ticker = tw_call_later(0.02, on_tick, NULL);
    outcome o = { 0 };
    resolve_into(&o, "www.example.test", 80, AF_INET);
    run_reactor();
    tw_delayed_call_cancel(ticker);
    assert_dns_failure(&o, TW_DNS_ETIMEOUT);
    assert_true(ticks >= 3);   /* about 15 in 0.3 s; a blocked reactor gets none */
    outcome_clear(&o);
}

/* Settings ------------------------------------------------------------------------ */

static void test_settings_are_checked(void **state)
{
    assert_int_equal(tw_dns_set_servers(""), -EINVAL);
    assert_int_equal(tw_dns_set_servers("not a server"), -EINVAL);
    assert_int_equal(tw_dns_set_timeout(-1, 1), -EINVAL);
    assert_int_equal(tw_dns_set_timeout(NAN, 1), -EINVAL);
    assert_int_equal(tw_dns_set_timeout(1, -1), -EINVAL);
    assert_int_equal(tw_dns_set_servers("127.0.0.1:53,[::1]:5353"), 0);
}

static void test_new_servers_leave_lookups_under_way_alone(void **state)
{
    dns_responder *other = dns_responder_new(tw_reactor_loop());
    assert_non_null(other);
    assert_int_equal(dns_responder_add(other, "www.example.test", "198.51.100.1"), 0);
    outcome before = { 0 }, after = { 0 };
    resolve_into(&before, "www.example.test", 80, AF_INET);
    use_responder(other);
    resolve_into(&after, "www.example.test", 80, AF_INET);
    run_reactor();
    assert_ipv4(&before.addrs->addrs[0], "192.0.2.1", 80);
    assert_ipv4(&after.addrs->addrs[0], "198.51.100.1", 80);
    outcome_clear(&before);
    outcome_clear(&after);
    dns_responder_free(other);
}

/* A callback that starts a lookup and changes the settings, from inside
 * c-ares' processing. */
static outcome nested;

static void on_first_answer(tw_result *r, void *arg)
{
    assert_int_equal(tw_dns_set_timeout(1.0, 2), 0);
    resolve_into(&nested, "two.example.test", 80, AF_INET);
    on_addresses(r, arg);
}

static void test_callback_may_resolve_and_change_settings(void **state)
{
    outcome first = { 0 };
    tw_deferred *d = tw_resolve("www.example.test", 80, AF_INET);
    tw_deferred_add_callbacks(d, on_first_answer, on_failure, &first);
    tw_deferred_unref(d);
    waiting++;
    run_reactor();
    assert_null(first.failure);
    assert_int_equal(nested.fired, 1);
    assert_null(nested.failure);
    assert_int_equal(nested.addrs->n, 2);
    outcome_clear(&first);
    outcome_clear(&nested);
}

/* Shutdown ------------------------------------------------------------------------ */

static void stop_now(void *arg)
{
    tw_reactor_stop();
}

static void test_shutdown_fails_pending_lookups(void **state)
{
    dns_responder_set_silent(responder, 1);
    outcome o = { 0 };
    resolve_into(&o, "www.example.test", 80, AF_INET);
    tw_call_later(0.05, stop_now, NULL);
    run_reactor();
    assert_dns_failure(&o, TW_DNS_EDESTRUCTION);
    outcome_clear(&o);
}

#define DNS_TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        DNS_TEST(test_ipv4_literal_resolves_from_the_loop),
        DNS_TEST(test_ipv6_literal_resolves_without_a_server),
        DNS_TEST(test_literal_of_the_other_family_is_not_found),
        DNS_TEST(test_name_resolves_to_its_a_record),
        DNS_TEST(test_name_resolves_to_its_aaaa_record),
        DNS_TEST(test_unspec_gives_both_families),
        DNS_TEST(test_every_record_is_returned),
        DNS_TEST(test_unknown_name_fails_with_not_found),
        DNS_TEST(test_name_without_that_family_fails_with_no_data),
        DNS_TEST(test_silent_server_times_out_in_bounded_time),
        DNS_TEST(test_bad_family_fails_from_the_loop),
        DNS_TEST(test_bad_arguments_fail_with_usage),
        DNS_TEST(test_localhost_comes_from_the_hosts_file),
        DNS_TEST(test_cancel_before_the_answer),
        DNS_TEST(test_cancel_a_literal_lookup),
        DNS_TEST(test_hundred_concurrent_lookups),
        DNS_TEST(test_reactor_keeps_running_during_a_slow_lookup),
        DNS_TEST(test_settings_are_checked),
        DNS_TEST(test_new_servers_leave_lookups_under_way_alone),
        DNS_TEST(test_callback_may_resolve_and_change_settings),
        DNS_TEST(test_shutdown_fails_pending_lookups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
