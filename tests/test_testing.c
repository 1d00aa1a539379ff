/* Tests for the in-memory transport (twine/testing.h). */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

/* A protocol that records what happens to it. */
typedef struct recorder {
    tw_protocol proto;
    char events[256];                     /* one letter per hook, in order */
    char received[256];
    size_t received_len;
    int chunks;
    const char *lost_domain;
    int *freed;                           /* outlives the recorder */
} recorder;

static void note(recorder *r, char event)
{
    size_t n = strlen(r->events);
    if (n + 1 < sizeof r->events)
        r->events[n] = event;
}

static void rec_made(tw_protocol *p) { note(TW_CONTAINER_OF(p, recorder, proto), 'm'); }

static void rec_data(tw_protocol *p, const char *data, size_t len)
{
    recorder *r = TW_CONTAINER_OF(p, recorder, proto);
    note(r, 'd');
    assert_true(r->received_len + len < sizeof r->received);
    memcpy(r->received + r->received_len, data, len);
    r->received_len += len;
    r->chunks++;
}

static void rec_lost(tw_protocol *p, tw_failure *reason)
{
    recorder *r = TW_CONTAINER_OF(p, recorder, proto);
    note(r, 'l');
    r->lost_domain = tw_failure_domain(reason);
    /* Writing is over once the connection is. */
    assert_int_equal(tw_transport_write(p->transport, "x", 1), -ENOTCONN);
}

static void rec_free(tw_protocol *p)
{
    recorder *r = TW_CONTAINER_OF(p, recorder, proto);
    (*r->freed)++;
    free(r);
}

static void rec_read_lost(tw_protocol *p) { note(TW_CONTAINER_OF(p, recorder, proto), 'r'); }

static const tw_protocol_ops recorder_ops = {
    .connection_made = rec_made,
    .data_received = rec_data,
    .connection_lost = rec_lost,
    .free = rec_free,
};

static const tw_protocol_ops half_close_ops = {
    .connection_made = rec_made,
    .data_received = rec_data,
    .connection_lost = rec_lost,
    .free = rec_free,
    .read_connection_lost = rec_read_lost,
};

static recorder *recorder_new(const tw_protocol_ops *ops, int *freed)
{
    recorder *r = calloc(1, sizeof *r);
    r->proto.ops = ops;
    r->freed = freed;
    return r;
}

static void test_new_and_free_without_protocol(void **state)
{
    tw_memory_transport *mt = tw_memory_transport_new();
    size_t len = 99;

    assert_non_null(mt);
    assert_string_equal(tw_memory_transport_value(mt, &len), "");
    assert_int_equal(len, 0);
    assert_false(tw_memory_transport_connected(mt));
    assert_int_equal(tw_memory_transport_feed(mt, "x", 1), -ENOTCONN);
    tw_memory_transport_close(mt, 1);          /* nothing to close */
    tw_memory_transport_free(mt);
    tw_memory_transport_free(NULL);
}

static void test_attach_calls_connection_made(void **state)
{
    int freed = 0;
    tw_memory_transport *mt = tw_memory_transport_new();
    tw_transport *t = tw_memory_transport_transport(mt);
    recorder *r = recorder_new(&recorder_ops, &freed);

    assert_int_equal(tw_memory_transport_attach(mt, &r->proto), 0);
    assert_string_equal(r->events, "m");
    assert_ptr_equal(r->proto.transport, t);
    assert_ptr_equal(tw_transport_protocol(t), &r->proto);
    assert_true(tw_memory_transport_connected(mt));

    int other_freed = 0;
    recorder *other = recorder_new(&recorder_ops, &other_freed);
    assert_int_equal(tw_memory_transport_attach(mt, &other->proto), -EBUSY);
    free(other);

    tw_memory_transport_free(mt);
    assert_int_equal(freed, 1);
}

static void test_feed_delivers_fragments(void **state)
{
    int freed = 0;
    tw_memory_transport *mt = tw_memory_transport_new();
    recorder *r = recorder_new(&recorder_ops, &freed);

    tw_memory_transport_attach(mt, &r->proto);
    assert_int_equal(tw_memory_transport_feed(mt, "hello", 5), 0);
    assert_int_equal(tw_memory_transport_feed(mt, "", 0), 0);   /* not delivered */
    assert_int_equal(tw_memory_transport_feed(mt, " world", 6), 0);
    assert_int_equal(r->chunks, 2);
    assert_int_equal(r->received_len, 11);
    assert_memory_equal(r->received, "hello world", 11);

    assert_int_equal(tw_memory_transport_feed_in_steps(mt, "abcdefg", 7, 3), 0);
    assert_int_equal(r->chunks, 5);            /* abc, def, g */
    assert_memory_equal(r->received + 11, "abcdefg", 7);
    assert_int_equal(tw_memory_transport_feed_in_steps(mt, "x", 1, 0), -EINVAL);

    tw_memory_transport_free(mt);
    assert_int_equal(freed, 1);
}

static void test_value_and_clear(void **state)
{
    int freed = 0;
    tw_memory_transport *mt = tw_memory_transport_new();
    recorder *r = recorder_new(&recorder_ops, &freed);
    tw_transport *t = tw_memory_transport_transport(mt);
    size_t len;

    tw_memory_transport_attach(mt, &r->proto);
    assert_int_equal(tw_transport_write(t, "ab", 2), 0);
    struct iovec iov[3] = {
        { .iov_base = "c", .iov_len = 1 },
        { .iov_base = "", .iov_len = 0 },
        { .iov_base = "d\0e", .iov_len = 3 },
    };
    assert_int_equal(tw_transport_writev(t, iov, 3), 0);
    const char *v = tw_memory_transport_value(mt, &len);
    assert_int_equal(len, 6);
    assert_memory_equal(v, "abcd\0e", 7);      /* NUL-terminated too */

    tw_memory_transport_clear(mt);
    assert_string_equal(tw_memory_transport_value(mt, &len), "");
    assert_int_equal(len, 0);

    /* Large writes grow the buffer. */
    static char big[100000];
    memset(big, 'z', sizeof big);
    assert_int_equal(tw_transport_write(t, big, sizeof big), 0);
    assert_int_equal(tw_transport_write(t, "!", 1), 0);
    v = tw_memory_transport_value(mt, &len);
    assert_int_equal(len, sizeof big + 1);
    assert_memory_equal(v, big, sizeof big);
    assert_string_equal(v + sizeof big, "!");
    assert_int_equal(tw_memory_transport_value(mt, NULL)[len], 0);
    assert_int_equal(tw_transport_write_buffer_size(t), 0);

    tw_memory_transport_free(mt);
}

static void test_lose_connection_then_clean_close(void **state)
{
    int freed = 0;
    tw_memory_transport *mt = tw_memory_transport_new();
    recorder *r = recorder_new(&recorder_ops, &freed);
    tw_transport *t = tw_memory_transport_transport(mt);

    tw_memory_transport_attach(mt, &r->proto);
    assert_false(tw_memory_transport_disconnecting(mt));
    assert_false(tw_transport_disconnecting(t));
    tw_transport_write(t, "bye", 3);
    tw_transport_lose_connection(t);
    assert_true(tw_memory_transport_disconnecting(mt));
    assert_true(tw_transport_disconnecting(t));
    assert_false(tw_memory_transport_aborted(mt));
    /* Nothing happens on its own, and later writes are refused. */
    assert_true(tw_memory_transport_connected(mt));
    assert_string_equal(r->events, "m");
    assert_int_equal(tw_transport_write(t, "more", 4), -ENOTCONN);
    assert_string_equal(tw_memory_transport_value(mt, NULL), "bye");

    tw_memory_transport_close(mt, 1);
    assert_int_equal(freed, 1);                /* r is gone */
    assert_false(tw_memory_transport_connected(mt));
    assert_null(tw_transport_protocol(t));
    assert_int_equal(tw_memory_transport_feed(mt, "late", 4), -ENOTCONN);
    tw_memory_transport_close(mt, 1);          /* a second close does nothing */
    assert_int_equal(freed, 1);
    tw_memory_transport_free(mt);
    assert_int_equal(freed, 1);
}

/* Keeps what the recorder saw past its free. */
typedef struct seen {
    char events[256];
    const char *lost_domain;
} seen;

static seen last_seen;

static void seen_free(tw_protocol *p)
{
    recorder *r = TW_CONTAINER_OF(p, recorder, proto);
    memcpy(last_seen.events, r->events, sizeof r->events);
    last_seen.lost_domain = r->lost_domain;
    rec_free(p);
}

static const tw_protocol_ops seen_ops = {
    .connection_made = rec_made,
    .data_received = rec_data,
    .connection_lost = rec_lost,
    .free = seen_free,
};

static void test_close_reasons(void **state)
{
    for (int clean = 0; clean <= 1; clean++) {
        int freed = 0;
        tw_memory_transport *mt = tw_memory_transport_new();
        recorder *r = recorder_new(&seen_ops, &freed);

        memset(&last_seen, 0, sizeof last_seen);
        tw_memory_transport_attach(mt, &r->proto);
        tw_memory_transport_feed(mt, "x", 1);
        tw_memory_transport_close(mt, clean);
        assert_int_equal(freed, 1);
        assert_string_equal(last_seen.events, "mdl");
        assert_ptr_equal(last_seen.lost_domain,
                         clean ? TW_ERR_CONNECTION_DONE : TW_ERR_CONNECTION_LOST);
        tw_memory_transport_free(mt);
    }
}

static void test_free_loses_attached_protocol(void **state)
{
    int freed = 0;
    tw_memory_transport *mt = tw_memory_transport_new();
    recorder *r = recorder_new(&seen_ops, &freed);

    memset(&last_seen, 0, sizeof last_seen);
    tw_memory_transport_attach(mt, &r->proto);
    tw_memory_transport_free(mt);
    assert_int_equal(freed, 1);
    assert_string_equal(last_seen.events, "ml");
    assert_ptr_equal(last_seen.lost_domain, TW_ERR_CONNECTION_DONE);
}

static void test_abort_connection(void **state)
{
    int freed = 0;
    tw_memory_transport *mt = tw_memory_transport_new();
    recorder *r = recorder_new(&recorder_ops, &freed);
    tw_transport *t = tw_memory_transport_transport(mt);

    tw_memory_transport_attach(mt, &r->proto);
    tw_transport_abort_connection(t);
    assert_true(tw_memory_transport_aborted(mt));
    assert_true(tw_memory_transport_disconnecting(mt));
    assert_true(tw_transport_disconnecting(t));
    assert_int_equal(tw_transport_write(t, "x", 1), -ENOTCONN);
    tw_memory_transport_close(mt, 0);
    assert_int_equal(freed, 1);
    tw_memory_transport_free(mt);
}

static void test_lose_write_connection(void **state)
{
    int freed = 0;
    tw_memory_transport *mt = tw_memory_transport_new();
    recorder *r = recorder_new(&recorder_ops, &freed);
    tw_transport *t = tw_memory_transport_transport(mt);

    tw_memory_transport_attach(mt, &r->proto);
    assert_int_equal(tw_transport_write(t, "last", 4), 0);
    tw_transport_lose_write_connection(t);
    assert_true(tw_memory_transport_write_closed(mt));
    assert_false(tw_memory_transport_disconnecting(mt));
    assert_int_equal(tw_transport_write(t, "x", 1), -ENOTCONN);
    /* Reading goes on. */
    assert_int_equal(tw_memory_transport_feed(mt, "in", 2), 0);
    assert_int_equal(r->received_len, 2);
    assert_string_equal(tw_memory_transport_value(mt, NULL), "last");
    tw_memory_transport_free(mt);
    assert_int_equal(freed, 1);
}

static void test_pause_and_resume_reading(void **state)
{
    int freed = 0;
    tw_memory_transport *mt = tw_memory_transport_new();
    recorder *r = recorder_new(&recorder_ops, &freed);
    tw_transport *t = tw_memory_transport_transport(mt);

    tw_memory_transport_attach(mt, &r->proto);
    assert_false(tw_memory_transport_reading_paused(mt));
    tw_transport_pause_reading(t);
    assert_true(tw_memory_transport_reading_paused(mt));
    /* The test decides: feeding still delivers. */
    tw_memory_transport_feed(mt, "x", 1);
    assert_int_equal(r->chunks, 1);
    tw_transport_resume_reading(t);
    assert_false(tw_memory_transport_reading_paused(mt));
    tw_memory_transport_free(mt);
}

static void test_addresses(void **state)
{
    tw_memory_transport *mt = tw_memory_transport_new();
    tw_transport *t = tw_memory_transport_transport(mt);
    struct sockaddr_storage ss;
    socklen_t len = 0;
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;

    assert_int_equal(tw_transport_get_peer(t, &ss, &len), 0);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
    assert_int_equal(ntohs(sin->sin_port), 54321);

    assert_int_equal(tw_transport_get_host(t, &ss, &len), 0);
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
    assert_int_equal(ntohs(sin->sin_port), 12345);
    tw_memory_transport_free(mt);
}

/* A producer that records its calls. */
typedef struct producer_calls { int pauses, resumes, stops; } producer_calls;

static void prod_pause(void *arg) { ((producer_calls *)arg)->pauses++; }
static void prod_resume(void *arg) { ((producer_calls *)arg)->resumes++; }
static void prod_stop(void *arg) { ((producer_calls *)arg)->stops++; }

static const tw_producer_ops counting_producer = {
    .pause = prod_pause, .resume = prod_resume, .stop = prod_stop,
};

static void test_buffer_size_drives_producer(void **state)
{
    int freed = 0;
    tw_memory_transport *mt = tw_memory_transport_new();
    recorder *r = recorder_new(&recorder_ops, &freed);
    tw_transport *t = tw_memory_transport_transport(mt);
    producer_calls calls = { 0 };

    tw_memory_transport_attach(mt, &r->proto);
    assert_int_equal(tw_transport_set_write_watermarks(t, 100, 10), 0);
    assert_int_equal(tw_transport_register_producer(t, &counting_producer, &calls), 0);
    assert_int_equal(tw_transport_register_producer(t, &counting_producer, &calls), -EBUSY);

    tw_memory_transport_set_buffer_size(mt, 100);      /* at the mark: not above */
    assert_int_equal(calls.pauses, 0);
    tw_memory_transport_set_buffer_size(mt, 101);
    assert_int_equal(tw_transport_write_buffer_size(t), 101);
    assert_int_equal(calls.pauses, 1);
    tw_memory_transport_set_buffer_size(mt, 500);      /* already paused */
    assert_int_equal(calls.pauses, 1);
    tw_memory_transport_set_buffer_size(mt, 11);
    assert_int_equal(calls.resumes, 0);
    tw_memory_transport_set_buffer_size(mt, 10);
    assert_int_equal(calls.resumes, 1);

    /* Registering while the buffer is full pauses at once. */
    tw_transport_unregister_producer(t);
    tw_memory_transport_set_buffer_size(mt, 1000);
    assert_int_equal(tw_transport_register_producer(t, &counting_producer, &calls), 0);
    assert_int_equal(calls.pauses, 2);

    /* The connection going stops the producer. */
    tw_memory_transport_close(mt, 1);
    assert_int_equal(calls.stops, 1);
    tw_memory_transport_free(mt);
}

static void test_reading_producer(void **state)
{
    int freed = 0;
    tw_memory_transport *mt = tw_memory_transport_new();
    recorder *r = recorder_new(&recorder_ops, &freed);
    tw_transport *t = tw_memory_transport_transport(mt);

    tw_memory_transport_attach(mt, &r->proto);
    tw_transport_register_producer(t, &tw_transport_reading_producer, t);
    tw_memory_transport_set_buffer_size(mt, 64 * 1024 + 1);
    assert_true(tw_memory_transport_reading_paused(mt));
    tw_memory_transport_set_buffer_size(mt, 0);
    assert_false(tw_memory_transport_reading_paused(mt));
    tw_memory_transport_free(mt);
}

static void test_peer_eof(void **state)
{
    int freed = 0;
    tw_memory_transport *mt = tw_memory_transport_new();
    recorder *r = recorder_new(&half_close_ops, &freed);

    /* With read_connection_lost the connection stays open. */
    tw_memory_transport_attach(mt, &r->proto);
    tw_memory_transport_peer_eof(mt);
    assert_string_equal(r->events, "mr");
    assert_true(tw_memory_transport_connected(mt));
    assert_int_equal(tw_transport_write(tw_memory_transport_transport(mt), "ok", 2), 0);
    tw_memory_transport_free(mt);
    assert_int_equal(freed, 1);

    /* Without it the connection closes cleanly. */
    freed = 0;
    mt = tw_memory_transport_new();
    r = recorder_new(&seen_ops, &freed);
    memset(&last_seen, 0, sizeof last_seen);
    tw_memory_transport_attach(mt, &r->proto);
    tw_memory_transport_peer_eof(mt);
    assert_int_equal(freed, 1);
    assert_string_equal(last_seen.events, "ml");
    assert_ptr_equal(last_seen.lost_domain, TW_ERR_CONNECTION_DONE);
    assert_false(tw_memory_transport_connected(mt));
    tw_memory_transport_peer_eof(mt);          /* nothing left to close */
    tw_memory_transport_free(mt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_and_free_without_protocol),
        cmocka_unit_test(test_attach_calls_connection_made),
        cmocka_unit_test(test_feed_delivers_fragments),
        cmocka_unit_test(test_value_and_clear),
        cmocka_unit_test(test_lose_connection_then_clean_close),
        cmocka_unit_test(test_close_reasons),
        cmocka_unit_test(test_free_loses_attached_protocol),
        cmocka_unit_test(test_abort_connection),
        cmocka_unit_test(test_lose_write_connection),
        cmocka_unit_test(test_pause_and_resume_reading),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_buffer_size_drives_producer),
        cmocka_unit_test(test_reading_producer),
        cmocka_unit_test(test_peer_eof),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
