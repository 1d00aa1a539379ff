/* Tests for the framing protocols (twine/protocols.h), ported from Twisted
 * 22.4's twisted/protocols/test/test_basic.py, fed through the in-memory
 * transport in fragments of every size. */
#include "testutil.h"

#include <errno.h>
#include <twine/reactor.h>

/* A growing list of byte strings ------------------------------------------- */

typedef struct strlist {
    size_t n, cap;
    char **items;
    size_t *lens;
} strlist;

static void list_add(strlist *l, const char *s, size_t len)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 8;
        l->items = realloc(l->items, l->cap * sizeof *l->items);
        l->lens = realloc(l->lens, l->cap * sizeof *l->lens);
    }
    l->items[l->n] = malloc(len + 1);
    memcpy(l->items[l->n], s, len);
    l->items[l->n][len] = '\0';
    l->lens[l->n] = len;
    l->n++;
}

/* Twisted's `received[-1] = received[-1] + data`. */
static void list_extend_last(strlist *l, const char *s, size_t len)
{
    assert_true(l->n > 0);
    size_t i = l->n - 1;
    l->items[i] = realloc(l->items[i], l->lens[i] + len + 1);
    memcpy(l->items[i] + l->lens[i], s, len);
    l->lens[i] += len;
    l->items[i][l->lens[i]] = '\0';
}

static void list_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    free(l->lens);
    memset(l, 0, sizeof *l);
}

/* expect: NULL-terminated C strings. */
static void assert_list(const strlist *l, const char *const *expect)
{
    size_t n = 0;
    while (expect[n])
        n++;
    if (l->n != n)
        fail_msg("got %zu strings, expected %zu", l->n, n);
    for (size_t i = 0; i < n; i++) {
        if (l->lens[i] != strlen(expect[i]) || memcmp(l->items[i], expect[i], l->lens[i]) != 0)
            fail_msg("string %zu is \"%s\", expected \"%s\"", i, l->items[i], expect[i]);
    }
}

static void assert_value(tw_memory_transport *mt, const char *expect, size_t len)
{
    size_t got;
    const char *v = tw_memory_transport_value(mt, &got);
    assert_int_equal(got, len);
    assert_memory_equal(v, expect, len);
}

/* LineTester (test_basic.py) ------------------------------------------------- */

/* Acts on some lines: "" switches to raw mode, "pause" pauses until the
 * clock runs, "rawpause" pauses and switches to raw mode, "stop" stops
 * producing, "len N" sets the raw length, "produce"/"unproduce" register
 * the receiver as its transport's producer. Raw data is appended to the
 * last line until `length` bytes came, then the rest goes back to lines. */
typedef struct line_tester {
    tw_line_receiver lr;
    strlist received;
    size_t length;
    int resume_pending;                   /* the clock's callLater(0, resumeProducing) */
} line_tester;

static line_tester *tester_of(tw_line_receiver *lr)
{
    return TW_CONTAINER_OF(lr, line_tester, lr);
}

static int line_is(const char *line, size_t len, const char *s)
{
    return len == strlen(s) && memcmp(line, s, len) == 0;
}

static void tester_line(tw_line_receiver *lr, const char *line, size_t len)
{
    line_tester *t = tester_of(lr);

    assert_int_equal(line[len], '\0');
    list_add(&t->received, line, len);
    if (len == 0) {
        tw_line_receiver_set_raw_mode(lr);
    } else if (line_is(line, len, "pause")) {
        tw_line_receiver_pause_producing(lr);
        t->resume_pending = 1;
    } else if (line_is(line, len, "rawpause")) {
        tw_line_receiver_pause_producing(lr);
        tw_line_receiver_set_raw_mode(lr);
        list_add(&t->received, "", 0);
        t->resume_pending = 1;
    } else if (line_is(line, len, "stop")) {
        tw_line_receiver_stop_producing(lr);
    } else if (len >= 4 && memcmp(line, "len ", 4) == 0) {
        t->length = strtoul(line + 4, NULL, 10);
    } else if (len >= 7 && memcmp(line, "produce", 7) == 0) {
        assert_int_equal(tw_transport_register_producer(lr->proto.transport,
                                                        &tw_line_receiver_producer, lr), 0);
    } else if (len >= 9 && memcmp(line, "unproduce", 9) == 0) {
        tw_transport_unregister_producer(lr->proto.transport);
    }
}

static void tester_raw(tw_line_receiver *lr, const char *data, size_t len)
{
    line_tester *t = tester_of(lr);
    size_t take = len < t->length ? len : t->length;

    assert_int_equal(data[len], '\0');
    t->length -= take;
    list_extend_last(&t->received, data, take);
    if (t->length == 0)
        tw_line_receiver_set_line_mode(lr, data + take, len - take);
}

static void tester_exceeded(tw_line_receiver *lr, const char *data, size_t len)
{
    if (len > lr->max_length + 1)
        tw_line_receiver_set_line_mode(lr, data + lr->max_length + 1, len - lr->max_length - 1);
}

static void tester_free(tw_line_receiver *lr)
{
    line_tester *t = tester_of(lr);
    list_free(&t->received);
    free(t);
}

static const tw_line_receiver_ops tester_ops = {
    .line_received = tester_line,
    .raw_data_received = tester_raw,
    .line_length_exceeded = tester_exceeded,
    .free = tester_free,
};

/* A LineTester (delimiter "\n", MAX_LENGTH 64) on a new memory transport. */
static line_tester *tester_new(tw_memory_transport **mt)
{
    line_tester *t = calloc(1, sizeof *t);
    tw_line_receiver_init(&t->lr, &tester_ops);
    assert_int_equal(tw_line_receiver_set_delimiter(&t->lr, "\n", 1), 0);
    t->lr.max_length = 64;
    *mt = tw_memory_transport_new();
    assert_int_equal(tw_memory_transport_attach(*mt, &t->lr.proto), 0);
    return t;
}

static void run_clock(line_tester *t)
{
    if (t->resume_pending) {
        t->resume_pending = 0;
        tw_line_receiver_resume_producing(&t->lr);
    }
}

/* LineReceiverTests ------------------------------------------------------------ */

static const char line_buffer[] =
    "len 10\n"
    "\n"
    "0123456789len 5\n"
    "\n"
    "1234\n"
    "len 20\n"
    "foo 123\n"
    "\n"
    "0123456789\n"
    "012345678len 0\n"
    "foo 5\n"
    "\n"
    "1234567890123456789012345678901234567890123456789012345678901234567890\n"
    "len 1\n"
    "\n"
    "a";

static const char *const line_output[] = {
    "len 10", "0123456789", "len 5", "1234\n", "len 20", "foo 123",
    "0123456789\n012345678", "len 0", "foo 5", "", "67890", "len 1", "a", NULL,
};

static void test_line_buffer(void **state)
{
    /* Twisted checks packet sizes 1 to 9. Up to 19 the output is the same;
     * from 20 on the packet that brings the long line's end also ends the
     * parsing (lineLengthExceeded returns from dataReceived), so what the
     * tester hands back waits for a packet that never comes, in Twisted too. */
    for (size_t step = 1; step < 20; step++) {
        tw_memory_transport *mt;
        line_tester *t = tester_new(&mt);
        tw_memory_transport_feed_in_steps(mt, line_buffer, sizeof line_buffer - 1, step);
        assert_list(&t->received, line_output);
        tw_memory_transport_free(mt);
    }
}

static void test_line_pausing(void **state)
{
    static const char buf[] = "twiddle1\ntwiddle2\npause\ntwiddle3\n";
    static const char *const out1[] = { "twiddle1", "twiddle2", "pause", NULL };
    static const char *const out2[] = { "twiddle1", "twiddle2", "pause", "twiddle3", NULL };

    for (size_t step = 1; step <= sizeof buf - 1; step++) {
        tw_memory_transport *mt;
        line_tester *t = tester_new(&mt);
        tw_memory_transport_feed_in_steps(mt, buf, sizeof buf - 1, step);
        assert_list(&t->received, out1);
        assert_true(tw_memory_transport_reading_paused(mt));
        run_clock(t);
        assert_list(&t->received, out2);
        assert_false(tw_memory_transport_reading_paused(mt));
        tw_memory_transport_free(mt);
    }
}

static void test_line_raw_pausing(void **state)
{
    static const char buf[] = "twiddle1\ntwiddle2\nlen 5\nrawpause\n12345twiddle3\n";
    static const char *const out1[] = { "twiddle1", "twiddle2", "len 5", "rawpause", "", NULL };
    static const char *const out2[] = {
        "twiddle1", "twiddle2", "len 5", "rawpause", "12345", "twiddle3", NULL,
    };

    for (size_t step = 1; step <= sizeof buf - 1; step++) {
        tw_memory_transport *mt;
        line_tester *t = tester_new(&mt);
        tw_memory_transport_feed_in_steps(mt, buf, sizeof buf - 1, step);
        assert_list(&t->received, out1);
        run_clock(t);
        assert_list(&t->received, out2);
        tw_memory_transport_free(mt);
    }
}

static void test_line_stop_producing(void **state)
{
    static const char buf[] = "twiddle1\ntwiddle2\nstop\nmore\nstuff\n";
    static const char *const out[] = { "twiddle1", "twiddle2", "stop", NULL };

    for (size_t step = 1; step <= sizeof buf - 1; step++) {
        tw_memory_transport *mt;
        line_tester *t = tester_new(&mt);
        tw_memory_transport_feed_in_steps(mt, buf, sizeof buf - 1, step);
        assert_list(&t->received, out);
        assert_true(tw_memory_transport_disconnecting(mt));
        tw_memory_transport_free(mt);
    }
}

static void test_line_receiver_as_producer(void **state)
{
    static const char *const out[] = { "produce", "hello world", "unproduce", "goodbye", NULL };
    tw_memory_transport *mt;
    line_tester *t = tester_new(&mt);

    tw_memory_transport_feed(mt, "produce\nhello world\nunproduce\ngoodbye\n", 38);
    assert_list(&t->received, out);
    tw_memory_transport_free(mt);
}

/* Registered as its transport's producer, the receiver stops delivering
 * while the write buffer is full and goes on once it drained. */
static void test_line_producer_follows_write_buffer(void **state)
{
    static const char *const before[] = { "produce", "a", NULL };
    static const char *const after[] = { "produce", "a", "b", "c", NULL };
    tw_memory_transport *mt;
    line_tester *t = tester_new(&mt);
    tw_transport *tr = tw_memory_transport_transport(mt);

    tw_memory_transport_feed(mt, "produce\na\n", 10);
    tw_transport_set_write_watermarks(tr, 10, 5);
    tw_memory_transport_set_buffer_size(mt, 11);
    assert_true(tw_memory_transport_reading_paused(mt));
    tw_memory_transport_feed(mt, "b\nc\n", 4);
    assert_list(&t->received, before);
    tw_memory_transport_set_buffer_size(mt, 5);
    assert_false(tw_memory_transport_reading_paused(mt));
    assert_list(&t->received, after);
    tw_memory_transport_free(mt);
}

/* ClearingReceiver: clearLineBuffer from beneath dataReceived, with no
 * transport at all. */
typedef struct clearing {
    tw_line_receiver lr;
    char line[16], rest[16];
} clearing;

static void clearing_line(tw_line_receiver *lr, const char *line, size_t len)
{
    clearing *c = TW_CONTAINER_OF(lr, clearing, lr);
    const char *rest;
    size_t rest_len = tw_line_receiver_clear_line_buffer(lr, &rest);

    assert_true(len < sizeof c->line && rest_len < sizeof c->rest);
    assert_int_equal(rest[rest_len], '\0');
    memcpy(c->line, line, len + 1);
    memcpy(c->rest, rest, rest_len + 1);
}

static const tw_line_receiver_ops clearing_ops = { .line_received = clearing_line };

static void test_line_clear_line_buffer(void **state)
{
    clearing c;
    tw_line_receiver_init(&c.lr, &clearing_ops);

    c.lr.proto.ops->data_received(&c.lr.proto, "foo\r\nbar\r\nbaz", 13);
    assert_string_equal(c.line, "foo");
    assert_string_equal(c.rest, "bar\r\nbaz");

    /* The previously buffered data is really gone. */
    c.lr.proto.ops->data_received(&c.lr.proto, "quux\r\n", 6);
    assert_string_equal(c.line, "quux");
    assert_string_equal(c.rest, "");

    /* Outside a hook too. */
    const char *rest;
    c.lr.proto.ops->data_received(&c.lr.proto, "partial", 7);
    assert_int_equal(tw_line_receiver_clear_line_buffer(&c.lr, &rest), 7);
    assert_string_equal(rest, "partial");
    assert_int_equal(tw_line_receiver_clear_line_buffer(&c.lr, NULL), 0);
    tw_line_receiver_destroy(&c.lr);
}

/* FlippingLineTester: flips to raw mode after each line and back after one
 * byte, many times on the same data (Twisted's stack recursion test). */
typedef struct flipper {
    tw_line_receiver lr;
    strlist lines;
} flipper;

static void flipper_line(tw_line_receiver *lr, const char *line, size_t len)
{
    list_add(&TW_CONTAINER_OF(lr, flipper, lr)->lines, line, len);
    tw_line_receiver_set_raw_mode(lr);
}

static void flipper_raw(tw_line_receiver *lr, const char *data, size_t len)
{
    tw_line_receiver_set_line_mode(lr, data + 1, len - 1);
}

static void flipper_free(tw_line_receiver *lr)
{
    flipper *f = TW_CONTAINER_OF(lr, flipper, lr);
    list_free(&f->lines);
    free(f);
}

static const tw_line_receiver_ops flipper_ops = {
    .line_received = flipper_line,
    .raw_data_received = flipper_raw,
    .free = flipper_free,
};

static void test_line_stack_recursion(void **state)
{
    enum { LIMIT = 3000 };
    flipper *f = calloc(1, sizeof *f);
    tw_memory_transport *mt = tw_memory_transport_new();
    char *data = malloc(3 * LIMIT);

    tw_line_receiver_init(&f->lr, &flipper_ops);
    tw_line_receiver_set_delimiter(&f->lr, "\n", 1);
    tw_memory_transport_attach(mt, &f->lr.proto);
    for (size_t i = 0; i < LIMIT; i++)
        memcpy(data + 3 * i, "x\nx", 3);
    tw_memory_transport_feed(mt, data, 3 * LIMIT);

    size_t total = 0;
    for (size_t i = 0; i < f->lines.n; i++) {
        for (size_t j = 0; j < f->lines.lens[i]; j++)
            assert_int_equal(f->lines.items[i][j], 'x');
        total += f->lines.lens[i];
    }
    assert_int_equal(total, LIMIT);
    free(data);
    tw_memory_transport_free(mt);
}

/* A plain receiver: default delimiter, default max_length, default
 * line_length_exceeded; it records lines. */
typedef struct plain {
    tw_line_receiver lr;
    strlist lines;
} plain;

static void plain_line(tw_line_receiver *lr, const char *line, size_t len)
{
    assert_int_equal(line[len], '\0');
    list_add(&TW_CONTAINER_OF(lr, plain, lr)->lines, line, len);
}

static void plain_free(tw_line_receiver *lr)
{
    plain *p = TW_CONTAINER_OF(lr, plain, lr);
    list_free(&p->lines);
    free(p);
}

static const tw_line_receiver_ops plain_ops = { .line_received = plain_line, .free = plain_free };

static plain *plain_new(tw_memory_transport **mt)
{
    plain *p = calloc(1, sizeof *p);
    tw_line_receiver_init(&p->lr, &plain_ops);
    *mt = tw_memory_transport_new();
    tw_memory_transport_attach(*mt, &p->lr.proto);
    return p;
}

static void test_line_maximum_line_length(void **state)
{
    size_t n = TW_LINE_MAX_LENGTH + 1;
    char *data = malloc(n + 3);
    memset(data, 'x', n);
    memcpy(data + n, "\r\nr", 3);

    for (size_t step = 1; step <= n + 3; step = step < 8 ? step + 1 : step * 3) {
        tw_memory_transport *mt;
        plain *p = plain_new(&mt);
        tw_memory_transport_feed_in_steps(mt, data, n + 3, step);
        assert_true(tw_memory_transport_disconnecting(mt));
        assert_int_equal(p->lines.n, 0);
        tw_memory_transport_free(mt);
    }
    free(data);
}

static void test_line_maximum_line_length_partial_delimiter(void **state)
{
    /* Twisted's case has a one-byte delimiter; with "\r\n" the finished line
     * of max_length straddles the packets the same way. */
    static const char *const out[] = { "xxx", NULL };
    tw_memory_transport *mt;
    line_tester *t = tester_new(&mt);

    t->lr.max_length = 4;
    tw_memory_transport_feed(mt, "xxx", 3);
    tw_memory_transport_feed(mt, "\nxxx", 4);
    assert_false(tw_memory_transport_disconnecting(mt));
    assert_list(&t->received, out);
    tw_memory_transport_free(mt);

    static const char *const out4[] = { "xxxx", NULL };
    plain *p = plain_new(&mt);
    p->lr.max_length = 4;
    tw_memory_transport_feed(mt, "xxxx", 4);
    tw_memory_transport_feed(mt, "\r", 1);
    tw_memory_transport_feed(mt, "\nxxxx", 5);
    assert_false(tw_memory_transport_disconnecting(mt));
    assert_list(&p->lines, out4);
    tw_memory_transport_free(mt);
}

static void test_line_not_quite_maximum_line_length_unfinished(void **state)
{
    size_t n = TW_LINE_MAX_LENGTH;
    char *data = malloc(n + 1);
    memset(data, 'x', n);
    data[n] = '\r';

    for (size_t step = 1; step <= n + 1; step = step < 8 ? step + 1 : step * 3) {
        tw_memory_transport *mt;
        plain *p = plain_new(&mt);
        tw_memory_transport_feed_in_steps(mt, data, n + 1, step);
        assert_false(tw_memory_transport_disconnecting(mt));
        /* The delimiter's end completes a line of exactly max_length. */
        tw_memory_transport_feed(mt, "\n", 1);
        assert_false(tw_memory_transport_disconnecting(mt));
        assert_int_equal(p->lines.n, 1);
        assert_int_equal(p->lines.lens[0], n);
        tw_memory_transport_free(mt);
    }
    free(data);
}

static void test_line_maximum_line_length_remaining(void **state)
{
    size_t n = TW_LINE_MAX_LENGTH + 2;
    char *data = malloc(n);
    memset(data, 'x', n);

    for (size_t step = 1; step <= n; step = step < 8 ? step + 1 : step * 3) {
        tw_memory_transport *mt;
        plain *p = plain_new(&mt);
        tw_memory_transport_feed_in_steps(mt, data, n - 1, step);
        assert_false(tw_memory_transport_disconnecting(mt));
        tw_memory_transport_feed(mt, data, 1);
        assert_true(tw_memory_transport_disconnecting(mt));
        assert_int_equal(p->lines.n, 0);
        tw_memory_transport_free(mt);
    }
    free(data);
}

/* The boundary in every fragment size: max_length is fine, one more is not. */
static void test_line_length_boundary(void **state)
{
    enum { MAX = 10 };
    static const char fits[] = "0123456789\r\nnext\r\n";
    static const char *const fits_out[] = { "0123456789", "next", NULL };
    static const char over[] = "0123456789A\r\nnext\r\n";

    for (size_t step = 1; step <= sizeof over - 1; step++) {
        tw_memory_transport *mt;
        plain *p = plain_new(&mt);
        p->lr.max_length = MAX;
        tw_memory_transport_feed_in_steps(mt, fits, sizeof fits - 1, step);
        assert_list(&p->lines, fits_out);
        assert_false(tw_memory_transport_disconnecting(mt));
        tw_memory_transport_free(mt);

        p = plain_new(&mt);
        p->lr.max_length = MAX;
        tw_memory_transport_feed_in_steps(mt, over, sizeof over - 1, step);
        assert_int_equal(p->lines.n, 0);
        assert_true(tw_memory_transport_disconnecting(mt));
        tw_memory_transport_free(mt);
    }
}

/* LineReceiverLineLengthExceededTests ------------------------------------------ */

typedef struct catcher {
    tw_line_receiver lr;
    strlist long_lines;
} catcher;

static void catcher_exceeded(tw_line_receiver *lr, const char *data, size_t len)
{
    assert_int_equal(data[len], '\0');
    list_add(&TW_CONTAINER_OF(lr, catcher, lr)->long_lines, data, len);
}

static void catcher_free(tw_line_receiver *lr)
{
    catcher *c = TW_CONTAINER_OF(lr, catcher, lr);
    list_free(&c->long_lines);
    free(c);
}

static const tw_line_receiver_ops catcher_ops = {
    .line_length_exceeded = catcher_exceeded,
    .free = catcher_free,
};

/* ExcessivelyLargeLineCatcher with MAX_LENGTH 6 gets `data`; it records
 * exactly that one string. */
static void check_long_lines(const char *data)
{
    const char *const expect[] = { data, NULL };
    catcher *c = calloc(1, sizeof *c);
    tw_memory_transport *mt = tw_memory_transport_new();

    tw_line_receiver_init(&c->lr, &catcher_ops);
    c->lr.max_length = 6;
    tw_memory_transport_attach(mt, &c->lr.proto);
    tw_memory_transport_feed(mt, data, strlen(data));
    assert_list(&c->long_lines, expect);
    assert_false(tw_memory_transport_disconnecting(mt));
    tw_memory_transport_free(mt);
}

static void test_line_long_unended_line(void **state)
{
    check_long_lines("xxxxxxxxxxxxxx");
}

static void test_line_long_line_after_short_line(void **state)
{
    static const char *const expect[] = { "xxxxxxxxxxxxxx", NULL };
    catcher *c = calloc(1, sizeof *c);
    tw_memory_transport *mt = tw_memory_transport_new();

    tw_line_receiver_init(&c->lr, &catcher_ops);
    c->lr.max_length = 6;
    tw_memory_transport_attach(mt, &c->lr.proto);
    tw_memory_transport_feed(mt, "x\r\nxxxxxxxxxxxxxx", 17);
    assert_list(&c->long_lines, expect);
    tw_memory_transport_free(mt);
}

static void test_line_long_line_with_delimiter(void **state)
{
    check_long_lines("xxxxxxxxxxxxxx\r\nxxxxxxxxxxxxxx");
}

static void test_line_multiple_long_lines(void **state)
{
    check_long_lines("xxxxxxxxxxxxxx\r\nxxxxxxxxxxxxxx\r\n");
}

/* LineOnlyReceiverTests, on the LineReceiver ------------------------------- */

static void test_line_only_buffer(void **state)
{
    static const char buf[] = "foo\n    bleakness\n    desolation\n    plastic forks\n    ";
    static const char *const out[] = {
        "foo", "    bleakness", "    desolation", "    plastic forks", NULL,
    };
    tw_memory_transport *mt;
    line_tester *t = tester_new(&mt);

    tw_memory_transport_feed_in_steps(mt, buf, sizeof buf - 1, 1);
    assert_list(&t->received, out);
    tw_memory_transport_free(mt);
}

static void test_line_only_greater_than_maximum_line_length(void **state)
{
    static const tw_line_receiver_ops ops = { .line_received = plain_line, .free = plain_free };
    plain *p = calloc(1, sizeof *p);
    tw_memory_transport *mt = tw_memory_transport_new();
    char data[64 + 1 + 1 + 3];

    tw_line_receiver_init(&p->lr, &ops);
    tw_line_receiver_set_delimiter(&p->lr, "\n", 1);
    p->lr.max_length = 64;
    tw_memory_transport_attach(mt, &p->lr.proto);
    memset(data, 'x', 66);
    memcpy(data + 66, "\r\nr", 3);
    tw_memory_transport_feed(mt, data, sizeof data);
    assert_true(tw_memory_transport_disconnecting(mt));
    assert_int_equal(p->lines.n, 0);
    tw_memory_transport_free(mt);
}

/* ProducerTests.test_pauseResume: ConsumingProtocol echoes each line and
 * pauses itself after it. */
static void consuming_line(tw_line_receiver *lr, const char *line, size_t len)
{
    tw_transport_write(lr->proto.transport, line, len);
    tw_line_receiver_pause_producing(lr);
}

static void free_heap_receiver(tw_line_receiver *lr) { free(lr); }

static const tw_line_receiver_ops consuming_ops = {
    .line_received = consuming_line,
    .free = free_heap_receiver,
};

static void test_line_pause_resume(void **state)
{
    tw_line_receiver *p = malloc(sizeof *p);
    tw_memory_transport *mt = tw_memory_transport_new();

    tw_line_receiver_init(p, &consuming_ops);
    tw_memory_transport_attach(mt, &p->proto);

    /* A partial line: no pause, no line. */
    tw_memory_transport_feed(mt, "hello, ", 7);
    assert_value(mt, "", 0);
    assert_false(tw_memory_transport_reading_paused(mt));

    /* The rest of the line: echoed, then paused. */
    tw_memory_transport_feed(mt, "world\r\n", 7);
    assert_value(mt, "hello, world", 12);
    assert_true(tw_memory_transport_reading_paused(mt));

    /* Resuming delivers nothing more. */
    tw_line_receiver_resume_producing(p);
    assert_value(mt, "hello, world", 12);
    assert_false(tw_memory_transport_reading_paused(mt));

    /* Two lines at once: paused after the first. */
    tw_memory_transport_feed(mt, "hello\r\nworld\r\n", 14);
    assert_value(mt, "hello, worldhello", 17);
    assert_true(tw_memory_transport_reading_paused(mt));

    /* Resuming delivers the waiting line, which pauses again. */
    tw_line_receiver_resume_producing(p);
    assert_value(mt, "hello, worldhelloworld", 22);
    assert_true(tw_memory_transport_reading_paused(mt));

    /* A line while paused has no visible effect. */
    tw_memory_transport_feed(mt, "goodbye\r\n", 9);
    assert_value(mt, "hello, worldhelloworld", 22);
    assert_true(tw_memory_transport_reading_paused(mt));

    tw_line_receiver_resume_producing(p);
    assert_value(mt, "hello, worldhelloworldgoodbye", 29);
    assert_true(tw_memory_transport_reading_paused(mt));

    tw_line_receiver_resume_producing(p);
    assert_value(mt, "hello, worldhelloworldgoodbye", 29);
    assert_false(tw_memory_transport_reading_paused(mt));
    tw_memory_transport_free(mt);
}

/* Beyond Twisted's suite ------------------------------------------------------- */

/* Records lines; "quit" loses the connection, "drop" makes the peer vanish
 * (the connection is lost from inside the hook), "raw" switches to raw
 * mode; raw data is recorded as "raw:<data>" and goes back to lines. */
typedef struct actor {
    tw_line_receiver lr;
    tw_memory_transport *mt;
    strlist *log;                         /* outlives the actor */
    int *freed;
} actor;

static void actor_line(tw_line_receiver *lr, const char *line, size_t len)
{
    actor *a = TW_CONTAINER_OF(lr, actor, lr);

    list_add(a->log, line, len);
    if (line_is(line, len, "quit")) {
        tw_transport_lose_connection(lr->proto.transport);
    } else if (line_is(line, len, "drop")) {
        tw_memory_transport_close(a->mt, 0);
        /* Still usable until the hook returns. */
        assert_int_equal(a->freed[0], 0);
        assert_true(line_is(line, len, "drop"));
        assert_int_equal(tw_line_receiver_send_line(lr, "x", 1), -ENOTCONN);
    } else if (line_is(line, len, "raw")) {
        tw_line_receiver_set_raw_mode(lr);
    }
}

static void actor_raw(tw_line_receiver *lr, const char *data, size_t len)
{
    actor *a = TW_CONTAINER_OF(lr, actor, lr);
    const char *nl = memchr(data, '|', len);
    size_t used = nl ? (size_t)(nl - data) : len;

    list_add(a->log, "raw:", 4);
    list_extend_last(a->log, data, used);
    if (nl)
        tw_line_receiver_set_line_mode(lr, nl + 1, len - used - 1);
}

static void actor_lost(tw_line_receiver *lr, tw_failure *reason)
{
    actor *a = TW_CONTAINER_OF(lr, actor, lr);
    list_add(a->log, "lost", 4);
}

static void actor_free(tw_line_receiver *lr)
{
    actor *a = TW_CONTAINER_OF(lr, actor, lr);
    a->freed[0]++;
    free(a);
}

static const tw_line_receiver_ops actor_ops = {
    .line_received = actor_line,
    .raw_data_received = actor_raw,
    .connection_lost = actor_lost,
    .free = actor_free,
};

static tw_memory_transport *actor_new(strlist *log, int *freed)
{
    actor *a = calloc(1, sizeof *a);
    tw_line_receiver_init(&a->lr, &actor_ops);
    tw_line_receiver_set_delimiter(&a->lr, "\n", 1);
    a->mt = tw_memory_transport_new();
    a->log = log;
    a->freed = freed;
    tw_memory_transport_attach(a->mt, &a->lr.proto);
    return a->mt;
}

static void test_line_lose_connection_stops_delivery(void **state)
{
    static const char buf[] = "a\nquit\nb\nc\n";
    static const char *const out[] = { "a", "quit", NULL };

    for (size_t step = 1; step <= sizeof buf - 1; step++) {
        strlist log = { 0 };
        int freed = 0;
        tw_memory_transport *mt = actor_new(&log, &freed);
        tw_memory_transport_feed_in_steps(mt, buf, sizeof buf - 1, step);
        assert_list(&log, out);
        assert_true(tw_memory_transport_disconnecting(mt));
        tw_memory_transport_free(mt);
        assert_int_equal(freed, 1);
        list_free(&log);
    }
}

static void test_line_connection_lost_inside_hook(void **state)
{
    static const char buf[] = "a\ndrop\nb\nc\n";
    static const char *const out[] = { "a", "drop", "lost", NULL };

    for (size_t step = 1; step <= sizeof buf - 1; step++) {
        strlist log = { 0 };
        int freed = 0;
        tw_memory_transport *mt = actor_new(&log, &freed);
        assert_int_equal(tw_memory_transport_feed(mt, buf, step), 0);
        for (size_t off = step; off < sizeof buf - 1 && tw_memory_transport_connected(mt); off += step)
            tw_memory_transport_feed(mt, buf + off, sizeof buf - 1 - off < step ? sizeof buf - 1 - off : step);
        assert_list(&log, out);
        assert_int_equal(freed, 1);
        assert_int_equal(tw_memory_transport_feed(mt, "d\n", 2), -ENOTCONN);
        tw_memory_transport_free(mt);
        assert_int_equal(freed, 1);
        list_free(&log);
    }
}

/* After connection_lost nothing is delivered, even what was buffered while
 * paused and is resumed from the hook. */
static void resuming_lost(tw_line_receiver *lr, tw_failure *reason)
{
    tw_line_receiver_resume_producing(lr);
}

static void test_line_nothing_delivered_after_connection_lost(void **state)
{
    static const tw_line_receiver_ops ops = {
        .line_received = consuming_line,
        .connection_lost = resuming_lost,
        .free = free_heap_receiver,
    };
    tw_line_receiver *p = malloc(sizeof *p);
    tw_memory_transport *mt = tw_memory_transport_new();

    tw_line_receiver_init(p, &ops);
    tw_memory_transport_attach(mt, &p->proto);
    tw_memory_transport_feed(mt, "one\r\ntwo\r\n", 10);
    assert_value(mt, "one", 3);
    tw_memory_transport_close(mt, 1);
    assert_value(mt, "one", 3);
    tw_memory_transport_free(mt);
}

static void test_line_raw_mode_and_back_in_one_chunk(void **state)
{
    static const char buf[] = "one\nraw\nbytes\nin raw|two\nthree\n";
    static const char *const whole[] = { "one", "raw", "raw:bytes\nin raw", "two", "three", NULL };

    strlist log = { 0 };
    int freed = 0;
    tw_memory_transport *mt = actor_new(&log, &freed);
    tw_memory_transport_feed(mt, buf, sizeof buf - 1);
    assert_list(&log, whole);
    tw_memory_transport_free(mt);
    list_free(&log);

    /* In fragments the raw part arrives in pieces; the lines do not change. */
    for (size_t step = 1; step <= sizeof buf - 1; step++) {
        strlist got = { 0 };
        mt = actor_new(&got, &freed);
        tw_memory_transport_feed_in_steps(mt, buf, sizeof buf - 1, step);
        size_t raw_bytes = 0, i = 0;
        assert_string_equal(got.items[i++], "one");
        assert_string_equal(got.items[i++], "raw");
        for (; i < got.n && strncmp(got.items[i], "raw:", 4) == 0; i++)
            raw_bytes += got.lens[i] - 4;
        assert_int_equal(raw_bytes, strlen("bytes\nin raw"));
        assert_int_equal(got.n - i, 2);
        assert_string_equal(got.items[i], "two");
        assert_string_equal(got.items[i + 1], "three");
        tw_memory_transport_free(mt);
        list_free(&got);
    }
}

static void test_line_many_lines_in_one_chunk(void **state)
{
    enum { LINES = 10000 };
    char *buf = malloc(LINES * 8);
    size_t len = 0;
    tw_memory_transport *mt;
    plain *p = plain_new(&mt);

    for (int i = 0; i < LINES; i++)
        len += (size_t)sprintf(buf + len, "%d\r\n", i);
    tw_memory_transport_feed(mt, buf, len);
    assert_int_equal(p->lines.n, LINES);
    for (int i = 0; i < LINES; i++)
        assert_int_equal(atoi(p->lines.items[i]), i);
    free(buf);
    tw_memory_transport_free(mt);
}

static void test_line_multibyte_delimiter_every_fragment(void **state)
{
    static const char buf[] = "alpha\r\n\r\nbeta\r\ngamma\r\n\r\n\r\n\r\n\r\ndelta";
    static const char *const out[] = { "alpha", "beta\r\ngamma", "", NULL };

    for (size_t step = 1; step <= sizeof buf - 1; step++) {
        tw_memory_transport *mt;
        plain *p = plain_new(&mt);
        assert_int_equal(tw_line_receiver_set_delimiter(&p->lr, "\r\n\r\n", 4), 0);
        tw_memory_transport_feed_in_steps(mt, buf, sizeof buf - 1, step);
        assert_list(&p->lines, out);
        tw_memory_transport_free(mt);
    }
}

static void test_line_set_delimiter_limits(void **state)
{
    tw_line_receiver lr;
    char big[TW_LINE_DELIMITER_MAX + 1];

    memset(big, '-', sizeof big);
    tw_line_receiver_init(&lr, &plain_ops);
    assert_int_equal(tw_line_receiver_set_delimiter(&lr, "", 0), -EINVAL);
    assert_int_equal(tw_line_receiver_set_delimiter(&lr, big, sizeof big), -EINVAL);
    assert_int_equal(tw_line_receiver_set_delimiter(&lr, big, sizeof big - 1), 0);
    tw_line_receiver_destroy(&lr);
}

static void test_line_send_line(void **state)
{
    tw_memory_transport *mt;
    plain *p = plain_new(&mt);

    assert_int_equal(tw_line_receiver_send_line(&p->lr, "hello", 5), 0);
    assert_int_equal(tw_line_receiver_send_line(&p->lr, "", 0), 0);
    tw_line_receiver_set_delimiter(&p->lr, "\n", 1);
    assert_int_equal(tw_line_receiver_send_line(&p->lr, "a\0b", 3), 0);
    assert_value(mt, "hello\r\n\r\na\0b\n", 13);
    tw_transport_lose_connection(tw_memory_transport_transport(mt));
    assert_int_equal(tw_line_receiver_send_line(&p->lr, "late", 4), -ENOTCONN);
    tw_memory_transport_free(mt);

    tw_line_receiver lr;
    tw_line_receiver_init(&lr, &plain_ops);
    assert_int_equal(tw_line_receiver_send_line(&lr, "x", 1), -ENOTCONN);
    tw_line_receiver_destroy(&lr);
}

/* A hook that feeds the receiver so much that its buffer moves still reads
 * its own line intact. */
typedef struct grower {
    tw_line_receiver lr;
    tw_memory_transport *mt;
    strlist lines;
} grower;

static void grower_line(tw_line_receiver *lr, const char *line, size_t len)
{
    grower *g = TW_CONTAINER_OF(lr, grower, lr);
    static char more[200000];

    if (line_is(line, len, "grow")) {
        memset(more, 'y', sizeof more);
        memcpy(more + sizeof more - 2, "\r\n", 2);
        tw_memory_transport_feed(g->mt, more, sizeof more);
        tw_line_receiver_set_line_mode(lr, "tail\r\n", 6);
        assert_true(line_is(line, len, "grow"));
        assert_int_equal(line[len], '\0');
    }
    list_add(&g->lines, line, len);
}

static void grower_free(tw_line_receiver *lr)
{
    grower *g = TW_CONTAINER_OF(lr, grower, lr);
    list_free(&g->lines);
    free(g);
}

static const tw_line_receiver_ops grower_ops = {
    .line_received = grower_line,
    .free = grower_free,
};

static void test_line_hook_feeding_more_data(void **state)
{
    grower *g = calloc(1, sizeof *g);
    tw_memory_transport *mt = tw_memory_transport_new();

    tw_line_receiver_init(&g->lr, &grower_ops);
    g->lr.max_length = 300000;
    g->mt = mt;
    tw_memory_transport_attach(mt, &g->lr.proto);
    tw_memory_transport_feed(mt, "grow\r\nafter\r\n", 13);
    assert_int_equal(g->lines.n, 4);
    assert_string_equal(g->lines.items[0], "grow");
    assert_string_equal(g->lines.items[1], "after");
    assert_int_equal(g->lines.lens[2], 200000 - 2);
    assert_string_equal(g->lines.items[3], "tail");
    tw_memory_transport_free(mt);
}

static void test_line_null_hooks_drop_data(void **state)
{
    static const tw_line_receiver_ops none = { 0 };
    tw_line_receiver *lr = malloc(sizeof *lr);
    tw_memory_transport *mt = tw_memory_transport_new();

    tw_line_receiver_init(lr, &none);
    tw_memory_transport_attach(mt, &lr->proto);
    tw_memory_transport_feed(mt, "a\r\nb\r\n", 6);
    tw_line_receiver_set_raw_mode(lr);
    tw_memory_transport_feed(mt, "raw", 3);
    assert_false(tw_memory_transport_disconnecting(mt));
    tw_memory_transport_close(mt, 1);          /* frees the buffers; lr stays ours */
    tw_memory_transport_free(mt);
    free(lr);
}

static void test_line_destroy_unattached(void **state)
{
    tw_line_receiver lr;
    tw_line_receiver_init(&lr, &plain_ops);
    /* Buffered, undelivered data is released with the receiver. */
    lr.proto.ops->data_received(&lr.proto, "no delimiter yet", 16);
    tw_line_receiver_destroy(&lr);
    tw_line_receiver_destroy(&lr);             /* harmless twice */
}

/* NetstringReceiverTests -------------------------------------------------------- */

/* TestNetstring: records strings and writes each back; MAX_LENGTH 50. */
typedef struct ns_tester {
    tw_netstring_receiver nr;
    strlist received;
    int closed;
} ns_tester;

static void ns_string(tw_netstring_receiver *nr, const char *data, size_t len)
{
    ns_tester *t = TW_CONTAINER_OF(nr, ns_tester, nr);
    assert_int_equal(data[len], '\0');
    list_add(&t->received, data, len);
    tw_transport_write(nr->proto.transport, data, len);
}

static void ns_lost(tw_netstring_receiver *nr, tw_failure *reason)
{
    TW_CONTAINER_OF(nr, ns_tester, nr)->closed = 1;
}

static void ns_free(tw_netstring_receiver *nr)
{
    ns_tester *t = TW_CONTAINER_OF(nr, ns_tester, nr);
    list_free(&t->received);
    free(t);
}

static const tw_netstring_receiver_ops ns_ops = {
    .string_received = ns_string,
    .connection_lost = ns_lost,
    .free = ns_free,
};

static ns_tester *ns_new(tw_memory_transport **mt)
{
    ns_tester *t = calloc(1, sizeof *t);
    tw_netstring_receiver_init(&t->nr, &ns_ops);
    t->nr.max_length = 50;
    *mt = tw_memory_transport_new();
    tw_memory_transport_attach(*mt, &t->nr.proto);
    return t;
}

static void test_netstring_buffer(void **state)
{
    char big[516];
    memset(big, 'a', 515);
    big[515] = '\0';
    const char *const strings[] = { "hello", "world", "how", "are", "you123", ":today", big, NULL };
    tw_memory_transport *mt;
    ns_tester *t = ns_new(&mt);

    for (size_t i = 0; strings[i]; i++)
        assert_int_equal(tw_netstring_receiver_send_string(&t->nr, strings[i], strlen(strings[i])), 0);
    size_t len;
    const char *v = tw_memory_transport_value(mt, &len);
    char *out = malloc(len);
    memcpy(out, v, len);
    assert_memory_equal(out, "5:hello,5:world,3:how,", 22);
    tw_memory_transport_free(mt);

    for (size_t step = 1; step <= len; step++) {
        t = ns_new(&mt);
        t->nr.max_length = 699;
        tw_memory_transport_feed_in_steps(mt, out, len, step);
        assert_list(&t->received, strings);
        assert_false(tw_memory_transport_disconnecting(mt));
        tw_memory_transport_free(mt);
    }
    free(out);
}

/* Feeds `data` in one piece to a fresh TestNetstring; checks what it
 * received (NULL-terminated list) and whether it dropped the peer. */
static void check_netstring(const char *data, const char *const *expect, int broken)
{
    tw_memory_transport *mt;
    ns_tester *t = ns_new(&mt);

    tw_memory_transport_feed(mt, data, strlen(data));
    assert_list(&t->received, expect);
    assert_int_equal(t->nr.broken_peer, broken);
    assert_int_equal(tw_memory_transport_disconnecting(mt), broken);
    tw_memory_transport_free(mt);
}

static const char *const none[] = { NULL };

static void test_netstring_receive_small(void **state)
{
    static const char *const empty[] = { "", NULL };
    static const char *const one[] = { "a", NULL };
    static const char *const two[] = { "ab", NULL };
    static const char *const nested[] = { "1:a,", NULL };

    check_netstring("0:,", empty, 0);
    check_netstring("1:a,", one, 0);
    check_netstring("2:ab,", two, 0);
    check_netstring("4:1:a,,", nested, 0);
}

static void test_netstring_refused(void **state)
{
    check_netstring("2:aaa,", none, 1);        /* more data than specified */
    check_netstring("0:a,", none, 1);          /* border case */
    check_netstring(":aaa,", none, 1);         /* missing number */
    check_netstring("3aaa,", none, 1);         /* missing colon */
    check_netstring("aaa,", none, 1);          /* missing number and colon */
    check_netstring("aaa", none, 1);           /* only data */
    check_netstring("01:a,", none, 1);         /* leading zero */
    check_netstring("00:", none, 1);
    check_netstring("3:abc;", none, 1);        /* no trailing comma */
}

static void test_netstring_illegal_byte_at_a_time(void **state)
{
    static const char *const illegal[] = {
        "9999999999999999999999",
        "abc",
        "4:abcde",
        "51:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab,",
    };

    for (size_t i = 0; i < sizeof illegal / sizeof *illegal; i++) {
        tw_memory_transport *mt;
        ns_tester *t = ns_new(&mt);
        tw_memory_transport_feed_in_steps(mt, illegal[i], strlen(illegal[i]), 1);
        assert_true(tw_memory_transport_disconnecting(mt));
        assert_true(t->nr.broken_peer);
        assert_int_equal(t->received.n, 0);
        tw_memory_transport_free(mt);
    }
}

static void test_netstring_portions(void **state)
{
    static const char *const four[] = { "aaaa", NULL };
    static const char *const ten[] = { "0123456789", NULL };
    static const char *const ab[] = { "ab", NULL };
    static const char *const parts2[] = { "1", "0:01234", "56789", "," };
    static const char *const parts3[] = { "2", ":", "a", "b", "," };
    tw_memory_transport *mt;
    ns_tester *t = ns_new(&mt);

    tw_memory_transport_feed(mt, "4:aa", 4);
    tw_memory_transport_feed(mt, "aa,", 3);
    assert_list(&t->received, four);
    tw_memory_transport_free(mt);

    t = ns_new(&mt);
    for (size_t i = 0; i < 4; i++)
        tw_memory_transport_feed(mt, parts2[i], strlen(parts2[i]));
    assert_list(&t->received, ten);
    tw_memory_transport_free(mt);

    t = ns_new(&mt);
    for (size_t i = 0; i < 5; i++)
        tw_memory_transport_feed(mt, parts3[i], strlen(parts3[i]));
    assert_list(&t->received, ab);
    tw_memory_transport_free(mt);
}

static void test_netstring_two_netstrings(void **state)
{
    static const char *const a[] = { "a", NULL };
    static const char *const ab[] = { "a", "b", NULL };
    tw_memory_transport *mt;
    ns_tester *t = ns_new(&mt);

    tw_memory_transport_feed(mt, "1:a,1", 5);
    assert_list(&t->received, a);
    tw_memory_transport_feed(mt, ":b,", 3);
    assert_list(&t->received, ab);
    tw_memory_transport_free(mt);
}

static void test_netstring_max_receive_limit(void **state)
{
    char data[3 + 51];
    memcpy(data, "51:", 3);
    memset(data + 3, 'a', 51);

    for (size_t step = 1; step <= sizeof data; step++) {
        tw_memory_transport *mt;
        ns_tester *t = ns_new(&mt);
        tw_memory_transport_feed_in_steps(mt, data, sizeof data, step);
        assert_true(tw_memory_transport_disconnecting(mt));
        assert_int_equal(t->received.n, 0);
        tw_memory_transport_free(mt);
    }
}

/* _consumeLength's border cases, through the stream. */
static void test_netstring_length_border_cases(void **state)
{
    static const char *const twelve[] = { "abcdefghijkl", NULL };
    static const char data[] = "12:abcdefghijkl,";

    for (size_t step = 1; step <= sizeof data - 1; step++) {
        tw_memory_transport *mt;
        ns_tester *t = ns_new(&mt);
        t->nr.max_length = 12;                 /* exactly the length: fine */
        tw_memory_transport_feed_in_steps(mt, data, sizeof data - 1, step);
        assert_list(&t->received, twelve);
        assert_false(t->nr.broken_peer);
        tw_memory_transport_free(mt);

        t = ns_new(&mt);
        t->nr.max_length = 11;                 /* one over */
        tw_memory_transport_feed_in_steps(mt, data, sizeof data - 1, step);
        assert_int_equal(t->received.n, 0);
        assert_true(t->nr.broken_peer);
        tw_memory_transport_free(mt);
    }

    tw_memory_transport *mt;
    ns_tester *t = ns_new(&mt);
    t->nr.max_length = 11;
    tw_memory_transport_feed(mt, "1000:", 5);
    assert_true(t->nr.broken_peer);
    tw_memory_transport_free(mt);

    /* The default limit. */
    t = ns_new(&mt);
    t->nr.max_length = TW_NETSTRING_MAX_LENGTH;
    tw_memory_transport_feed(mt, "99999:", 6);
    assert_false(t->nr.broken_peer);
    tw_memory_transport_free(mt);
    t = ns_new(&mt);
    t->nr.max_length = TW_NETSTRING_MAX_LENGTH;
    tw_memory_transport_feed(mt, "100000:", 7);
    assert_true(t->nr.broken_peer);
    tw_memory_transport_free(mt);
}

static void test_netstring_broken_peer_ignores_more(void **state)
{
    tw_memory_transport *mt;
    ns_tester *t = ns_new(&mt);

    tw_memory_transport_feed(mt, "x1:a,", 5);
    assert_true(t->nr.broken_peer);
    tw_memory_transport_feed(mt, "1:b,", 4);
    assert_int_equal(t->received.n, 0);
    tw_memory_transport_free(mt);
}

static void test_netstring_send_string(void **state)
{
    tw_memory_transport *mt;
    ns_tester *t = ns_new(&mt);

    assert_int_equal(tw_netstring_receiver_send_string(&t->nr, "", 0), 0);
    assert_int_equal(tw_netstring_receiver_send_string(&t->nr, "a\0b", 3), 0);
    assert_value(mt, "0:,3:a\0b,", 9);
    tw_memory_transport_free(mt);

    tw_netstring_receiver nr;
    tw_netstring_receiver_init(&nr, &ns_ops);
    assert_int_equal(nr.max_length, TW_NETSTRING_MAX_LENGTH);
    assert_int_equal(tw_netstring_receiver_send_string(&nr, "x", 1), -ENOTCONN);
    tw_netstring_receiver_destroy(&nr);
}

/* A string_received that loses the connection on "quit". */
static void ns_quitting_string(tw_netstring_receiver *nr, const char *data, size_t len)
{
    ns_string(nr, data, len);
    if (line_is(data, len, "quit"))
        tw_transport_lose_connection(nr->proto.transport);
}

static void test_netstring_lose_connection_stops_delivery(void **state)
{
    static const tw_netstring_receiver_ops ops = {
        .string_received = ns_quitting_string,
        .free = ns_free,
    };
    static const char *const out[] = { "a", "quit", NULL };
    static const char data[] = "1:a,4:quit,1:b,";

    for (size_t step = 1; step <= sizeof data - 1; step++) {
        tw_memory_transport *mt;
        ns_tester *t = ns_new(&mt);
        t->nr.ops = &ops;
        tw_memory_transport_feed_in_steps(mt, data, sizeof data - 1, step);
        assert_list(&t->received, out);
        tw_memory_transport_free(mt);
    }
}

/* A string_received that makes the connection vanish on "drop". */
static tw_memory_transport *ns_dropper_transport;
static int ns_dropper_freed, ns_dropper_strings;

static void ns_dropping_string(tw_netstring_receiver *nr, const char *data, size_t len)
{
    ns_tester *t = TW_CONTAINER_OF(nr, ns_tester, nr);

    ns_dropper_strings++;
    if (line_is(data, len, "drop")) {
        tw_memory_transport_close(ns_dropper_transport, 0);
        assert_true(t->closed);
        assert_int_equal(ns_dropper_freed, 0);
        assert_string_equal(data, "drop");
    }
}

static void ns_dropper_free(tw_netstring_receiver *nr)
{
    ns_dropper_freed++;
    ns_free(nr);
}

static void test_netstring_connection_lost_inside_hook(void **state)
{
    static const tw_netstring_receiver_ops ops = {
        .string_received = ns_dropping_string,
        .connection_lost = ns_lost,
        .free = ns_dropper_free,
    };
    static const char data[] = "1:a,4:drop,1:b,";

    for (size_t step = 1; step <= sizeof data - 1; step++) {
        tw_memory_transport *mt;
        ns_tester *t = ns_new(&mt);
        t->nr.ops = &ops;
        ns_dropper_transport = mt;
        ns_dropper_freed = ns_dropper_strings = 0;
        for (size_t off = 0; off < sizeof data - 1 && tw_memory_transport_connected(mt); off += step)
            tw_memory_transport_feed(mt, data + off, sizeof data - 1 - off < step ? sizeof data - 1 - off : step);
        assert_int_equal(ns_dropper_strings, 2);
        assert_int_equal(ns_dropper_freed, 1);
        tw_memory_transport_free(mt);
        assert_int_equal(ns_dropper_freed, 1);
    }
}

/* IntNTestCaseMixin, for 32, 16 and 8-bit prefixes ----------------------------- */

typedef struct int_tester {
    tw_int_receiver ir;
    strlist received;
    size_t limits[4];                     /* lengthLimitExceeded calls */
    size_t n_limits;
    tw_memory_transport *mt;
} int_tester;

static void int_string(tw_int_receiver *ir, const char *data, size_t len)
{
    int_tester *t = TW_CONTAINER_OF(ir, int_tester, ir);
    assert_int_equal(data[len], '\0');
    list_add(&t->received, data, len);
}

static void int_limit(tw_int_receiver *ir, size_t length)
{
    int_tester *t = TW_CONTAINER_OF(ir, int_tester, ir);
    assert_true(t->n_limits < 4);
    t->limits[t->n_limits++] = length;
}

static void int_free(tw_int_receiver *ir)
{
    int_tester *t = TW_CONTAINER_OF(ir, int_tester, ir);
    list_free(&t->received);
    free(t);
}

static const tw_int_receiver_ops int_ops = { .string_received = int_string, .free = int_free };
static const tw_int_receiver_ops int_limit_ops = {
    .string_received = int_string,
    .length_limit_exceeded = int_limit,
    .free = int_free,
};

typedef void (*int_init_fn)(tw_int_receiver *, const tw_int_receiver_ops *);

static const struct int_kind {
    int_init_fn init;
    size_t prefix;
} kinds[] = {
    { tw_int32_receiver_init, 4 },
    { tw_int16_receiver_init, 2 },
    { tw_int8_receiver_init, 1 },
};

/* TestIntN: MAX_LENGTH 50. */
static int_tester *int_new(const struct int_kind *k, const tw_int_receiver_ops *ops)
{
    int_tester *t = calloc(1, sizeof *t);
    k->init(&t->ir, ops);
    assert_int_equal(t->ir.max_length, TW_INT_MAX_LENGTH);
    t->ir.max_length = 50;
    t->mt = tw_memory_transport_new();
    tw_memory_transport_attach(t->mt, &t->ir.proto);
    return t;
}

/* struct.pack(structFormat, len) */
static size_t pack_prefix(const struct int_kind *k, size_t len, char *out)
{
    for (size_t i = 0; i < k->prefix; i++)
        out[i] = (char)(unsigned char)(len >> (8 * (k->prefix - 1 - i)));
    return k->prefix;
}

static size_t make_message(const struct int_kind *k, const char *s, size_t len, char *out)
{
    size_t n = pack_prefix(k, len, out);
    memcpy(out + n, s, len);
    return n + len;
}

static void test_int_receive(void **state)
{
    static const char *const strings[] = { "a", "bbbbbbbbbbbbbbbb", NULL };

    for (size_t k = 0; k < 3; k++) {
        char all[64];
        size_t total = 0;
        for (size_t i = 0; strings[i]; i++)
            total += make_message(&kinds[k], strings[i], strlen(strings[i]), all + total);

        for (size_t step = 1; step <= total; step++) {
            int_tester *t = int_new(&kinds[k], &int_ops);
            tw_memory_transport_feed_in_steps(t->mt, all, total, step);
            assert_list(&t->received, strings);
            tw_memory_transport_free(t->mt);
        }
    }
}

static void test_int_partial(void **state)
{
    static const char *const partial[3][3] = {
        { "\x00\x00\x00", "hello there", "" },
        { "\x00", "hello there", "" },
        { "\x08", "dzadz", "" },
    };
    static const size_t partial_len[3][3] = { { 3, 11, 0 }, { 1, 11, 0 }, { 1, 5, 0 } };

    for (size_t k = 0; k < 3; k++) {
        for (size_t i = 0; i < 3; i++) {
            int_tester *t = int_new(&kinds[k], &int_ops);
            tw_memory_transport_feed_in_steps(t->mt, partial[k][i], partial_len[k][i], 1);
            assert_int_equal(t->received.n, 0);
            tw_memory_transport_free(t->mt);
        }
    }
}

static void test_int_send(void **state)
{
    for (size_t k = 0; k < 3; k++) {
        int_tester *t = int_new(&kinds[k], &int_ops);
        char expect[32];
        size_t n = make_message(&kinds[k], "bbbbbbbbbbbbbbbb", 16, expect);
        assert_int_equal(tw_int_receiver_send_string(&t->ir, "bbbbbbbbbbbbbbbb", 16), 0);
        assert_value(t->mt, expect, n);
        tw_memory_transport_free(t->mt);
    }
}

static void test_int_length_limit_exceeded(void **state)
{
    for (size_t k = 0; k < 3; k++) {
        int_tester *t = int_new(&kinds[k], &int_limit_ops);
        char prefix[4];
        t->ir.max_length = 10;
        tw_memory_transport_feed(t->mt, prefix, pack_prefix(&kinds[k], 11, prefix));
        assert_int_equal(t->n_limits, 1);
        assert_int_equal(t->limits[0], 11);
        /* The prefix stays buffered: more data asks again. */
        tw_memory_transport_feed(t->mt, "x", 1);
        assert_int_equal(t->n_limits, 2);
        assert_int_equal(t->limits[1], 11);
        assert_int_equal(t->received.n, 0);
        assert_false(tw_memory_transport_disconnecting(t->mt));
        tw_memory_transport_free(t->mt);
    }
}

static void test_int_long_string_not_delivered(void **state)
{
    for (size_t k = 0; k < 3; k++) {
        int_tester *t = int_new(&kinds[k], &int_ops);
        char msg[32];
        t->ir.max_length = 10;
        size_t n = make_message(&kinds[k], "xxxxxxxxxxx", 11, msg);
        tw_memory_transport_feed(t->mt, msg, n);
        assert_int_equal(t->received.n, 0);
        assert_true(tw_memory_transport_disconnecting(t->mt));
        tw_memory_transport_free(t->mt);
    }
}

static void test_int_illegal(void **state)
{
    static const char *const illegal[3] = {
        "\x10\x00\x00\x00" "aaaaaa",
        "\x10\x00" "aaaaaa",
        "\x00\x00" "aaaaaa",
    };
    static const size_t illegal_len[3] = { 10, 8, 8 };

    for (size_t k = 0; k < 3; k++) {
        int_tester *t = int_new(&kinds[k], &int_ops);
        tw_memory_transport_feed_in_steps(t->mt, illegal[k], illegal_len[k], 1);
        assert_true(tw_memory_transport_disconnecting(t->mt));
        tw_memory_transport_free(t->mt);
    }
}

static void test_int_data(void **state)
{
    static const char *const sent[3] = {
        "\x00\x00\x00\x03" "foo", "\x00\x03" "foo", "\x03" "foo",
    };
    static const char *const recv[3] = {
        "\x00\x00\x00\x04" "ubar", "\x00\x04" "ubar", "\x04" "ubar",
    };
    static const char *const ubar[] = { "ubar", NULL };

    for (size_t k = 0; k < 3; k++) {
        int_tester *t = int_new(&kinds[k], &int_ops);
        assert_int_equal(tw_int_receiver_send_string(&t->ir, "foo", 3), 0);
        assert_value(t->mt, sent[k], kinds[k].prefix + 3);
        tw_memory_transport_feed(t->mt, recv[k], kinds[k].prefix + 4);
        assert_list(&t->received, ubar);
        tw_memory_transport_free(t->mt);
    }
}

static void test_int_too_long_send(void **state)
{
    /* Int16 and Int8: a string of 2**(8n) bytes or more does not fit. */
    for (size_t k = 1; k < 3; k++) {
        int_tester *t = int_new(&kinds[k], &int_ops);
        size_t limit = (size_t)1 << (8 * kinds[k].prefix);
        char *s = calloc(1, limit + 1);
        assert_int_equal(tw_int_receiver_send_string(&t->ir, s, limit + 1), -EMSGSIZE);
        assert_int_equal(tw_int_receiver_send_string(&t->ir, s, limit), -EMSGSIZE);
        assert_value(t->mt, "", 0);
        assert_int_equal(tw_int_receiver_send_string(&t->ir, s, limit - 1), 0);
        size_t len;
        tw_memory_transport_value(t->mt, &len);
        assert_int_equal(len, kinds[k].prefix + limit - 1);
        free(s);
        tw_memory_transport_free(t->mt);
    }

    tw_int_receiver ir;
    tw_int32_receiver_init(&ir, &int_ops);
    assert_int_equal(tw_int_receiver_send_string(&ir, "x", 1), -ENOTCONN);
    tw_int_receiver_destroy(&ir);
}

static void test_int_length_boundary(void **state)
{
    for (size_t k = 0; k < 3; k++) {
        char msg[64];
        char fifty[51];
        memset(fifty, 'f', 51);
        size_t n = make_message(&kinds[k], fifty, 50, msg);
        n += make_message(&kinds[k], "z", 1, msg + n);

        for (size_t step = 1; step <= n; step++) {
            int_tester *t = int_new(&kinds[k], &int_limit_ops);
            tw_memory_transport_feed_in_steps(t->mt, msg, n, step);
            assert_int_equal(t->received.n, 2);
            assert_int_equal(t->received.lens[0], 50);
            assert_string_equal(t->received.items[1], "z");
            assert_int_equal(t->n_limits, 0);
            tw_memory_transport_free(t->mt);
        }

        char over[64];
        n = make_message(&kinds[k], fifty, 51, over);
        int_tester *t = int_new(&kinds[k], &int_limit_ops);
        tw_memory_transport_feed(t->mt, over, n);
        assert_int_equal(t->received.n, 0);
        assert_int_equal(t->n_limits, 1);
        assert_int_equal(t->limits[0], 51);
        tw_memory_transport_free(t->mt);
    }
}

/* The string handed over is NUL-terminated while the next prefix follows
 * it in the buffer, and that prefix survives the hook, also when the hook
 * feeds so much that the buffer moves. */
static int feeding_hook_calls;

static void int_feeding_string(tw_int_receiver *ir, const char *data, size_t len)
{
    int_tester *t = TW_CONTAINER_OF(ir, int_tester, ir);
    static char more[100000];

    int_string(ir, data, len);
    if (feeding_hook_calls++ == 0) {
        char msg[8];
        size_t n = make_message(&kinds[2], "tail", 4, msg);
        memset(more, 0, sizeof more);                   /* empty strings */
        tw_memory_transport_feed(t->mt, more, sizeof more);
        tw_memory_transport_feed(t->mt, msg, n);
        assert_string_equal(data, "first");
    }
}

static void test_int_hook_feeding_more_data(void **state)
{
    static const tw_int_receiver_ops ops = { .string_received = int_feeding_string, .free = int_free };
    /* Int8: the byte after "first" is the next prefix, 6. */
    int_tester *t = int_new(&kinds[2], &ops);
    char msg[32];
    size_t n = make_message(&kinds[2], "first", 5, msg);
    n += make_message(&kinds[2], "second", 6, msg + n);

    feeding_hook_calls = 0;
    tw_memory_transport_feed(t->mt, msg, n);
    assert_int_equal(t->received.n, 2 + 100000 + 1);
    assert_string_equal(t->received.items[0], "first");
    assert_string_equal(t->received.items[1], "second");
    assert_int_equal(t->received.lens[2], 0);
    assert_string_equal(t->received.items[t->received.n - 1], "tail");
    tw_memory_transport_free(t->mt);
}

/* Pausing from the hook: Twisted's _PauseableMixin on IntNStringReceiver. */
static void int_pausing_string(tw_int_receiver *ir, const char *data, size_t len)
{
    int_string(ir, data, len);
    tw_int_receiver_pause_producing(ir);
}

static void test_int_pause_resume(void **state)
{
    static const tw_int_receiver_ops ops = { .string_received = int_pausing_string, .free = int_free };
    static const char *const one[] = { "a", NULL };
    static const char *const two[] = { "a", "b", NULL };
    static const char *const three[] = { "a", "b", "c", NULL };
    int_tester *t = int_new(&kinds[2], &ops);

    tw_memory_transport_feed(t->mt, "\x01" "a" "\x01" "b" "\x01" "c", 6);
    assert_list(&t->received, one);
    assert_true(tw_memory_transport_reading_paused(t->mt));
    tw_int_receiver_resume_producing(&t->ir);
    assert_list(&t->received, two);
    tw_int_receiver_resume_producing(&t->ir);
    assert_list(&t->received, three);
    tw_int_receiver_resume_producing(&t->ir);
    assert_false(tw_memory_transport_reading_paused(t->mt));
    tw_int_receiver_stop_producing(&t->ir);
    assert_true(tw_memory_transport_disconnecting(t->mt));
    tw_memory_transport_free(t->mt);
}

/* A hook that makes the connection vanish: nothing more is delivered and the
 * receiver is freed once the hook returns. */
static int int_dropper_freed;

static void int_dropping_string(tw_int_receiver *ir, const char *data, size_t len)
{
    int_tester *t = TW_CONTAINER_OF(ir, int_tester, ir);
    int_string(ir, data, len);
    tw_memory_transport_close(t->mt, 0);
    assert_int_equal(int_dropper_freed, 0);
    assert_int_equal(data[len], '\0');
}

static void int_dropper_free(tw_int_receiver *ir)
{
    int_dropper_freed++;
    int_free(ir);
}

static void test_int_connection_lost_inside_hook(void **state)
{
    static const tw_int_receiver_ops ops = {
        .string_received = int_dropping_string,
        .free = int_dropper_free,
    };
    int_tester *t = int_new(&kinds[1], &ops);
    tw_memory_transport *mt = t->mt;

    int_dropper_freed = 0;
    tw_memory_transport_feed(mt, "\x00\x01" "a" "\x00\x01" "b", 6);
    assert_int_equal(int_dropper_freed, 1);
    tw_memory_transport_free(mt);
    assert_int_equal(int_dropper_freed, 1);
}

/* Over a real TCP connection ------------------------------------------------------- */

/* The server echoes each line and closes on "quit"; the client sends its
 * lines in 7-byte writes, then "quit" once all came back, and the reactor
 * stops when both ends and the listening port are closed. */
enum { TCP_LINES = 2000 };

static struct tcp_run {
    int waiting;
    int echoed;
    int in_order;
    const char *client_lost, *server_lost;
    tw_delayed_call *safety;
} run;

static void tcp_count_down(void)
{
    if (--run.waiting == 0)
        tw_reactor_stop();
}

static void echo_line(tw_line_receiver *lr, const char *line, size_t len)
{
    if (line_is(line, len, "quit"))
        tw_transport_lose_connection(lr->proto.transport);
    else
        tw_line_receiver_send_line(lr, line, len);
}

static void echo_lost(tw_line_receiver *lr, tw_failure *reason)
{
    run.server_lost = tw_failure_domain(reason);
    tcp_count_down();
}

static const tw_line_receiver_ops echo_ops = {
    .line_received = echo_line,
    .connection_lost = echo_lost,
    .free = free_heap_receiver,
};

static tw_protocol *build_echo(tw_factory *f, const struct sockaddr *peer)
{
    tw_line_receiver *lr = malloc(sizeof *lr);
    tw_line_receiver_init(lr, &echo_ops);
    return &lr->proto;
}

static void client_made(tw_line_receiver *lr)
{
    char *all = malloc(TCP_LINES * 16);
    size_t len = 0;

    for (int i = 0; i < TCP_LINES; i++)
        len += (size_t)sprintf(all + len, "line %d\r\n", i);
    for (size_t off = 0; off < len; off += 7)
        tw_transport_write(lr->proto.transport, all + off, len - off < 7 ? len - off : 7);
    free(all);
}

static void client_line(tw_line_receiver *lr, const char *line, size_t len)
{
    char expect[32];
    snprintf(expect, sizeof expect, "line %d", run.echoed);
    if (!line_is(line, len, expect))
        run.in_order = 0;
    if (++run.echoed == TCP_LINES)
        tw_line_receiver_send_line(lr, "quit", 4);
}

static void client_lost(tw_line_receiver *lr, tw_failure *reason)
{
    run.client_lost = tw_failure_domain(reason);
    tcp_count_down();
}

static const tw_line_receiver_ops client_ops = {
    .connection_made = client_made,
    .line_received = client_line,
    .connection_lost = client_lost,
    .free = free_heap_receiver,
};

static tw_protocol *build_client(tw_factory *f, const struct sockaddr *peer)
{
    tw_line_receiver *lr = malloc(sizeof *lr);
    tw_line_receiver_init(lr, &client_ops);
    return &lr->proto;
}

static void port_stopped(tw_result *r, void *arg)
{
    tcp_count_down();
}

static void on_tcp_safety(void *arg)
{
    run.safety = NULL;
    tw_reactor_stop();
}

static void test_line_receiver_over_tcp(void **state)
{
    tw_factory server = { .build_protocol = build_echo };
    tw_factory client = { .build_protocol = build_client };
    int err = 0;

    memset(&run, 0, sizeof run);
    run.in_order = 1;
    run.waiting = 2;                           /* both ends lost */
    tw_port *port = tw_listen_tcp("127.0.0.1", 0, &server, &err);
    assert_non_null(port);
    tw_deferred_unref(tw_connect_tcp("127.0.0.1", tw_port_number(port), &client, 5));
    run.safety = tw_call_later(30, on_tcp_safety, NULL);
    assert_int_equal(tw_reactor_run(), 0);
    assert_non_null(run.safety);               /* else it hung */

    /* Then the port, which closes from the loop. */
    run.waiting = 1;
    tw_deferred *d = tw_port_stop_listening(port);
    tw_deferred_add_both(d, port_stopped, NULL);
    tw_deferred_unref(d);
    assert_int_equal(tw_reactor_run(), 0);
    assert_non_null(run.safety);
    tw_delayed_call_cancel(run.safety);

    assert_int_equal(run.waiting, 0);
    assert_int_equal(run.echoed, TCP_LINES);
    assert_true(run.in_order);
    assert_ptr_equal(run.server_lost, TW_ERR_CONNECTION_DONE);
    assert_ptr_equal(run.client_lost, TW_ERR_CONNECTION_DONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_buffer),
        cmocka_unit_test(test_line_pausing),
        cmocka_unit_test(test_line_raw_pausing),
        cmocka_unit_test(test_line_stop_producing),
        cmocka_unit_test(test_line_receiver_as_producer),
        cmocka_unit_test(test_line_producer_follows_write_buffer),
        cmocka_unit_test(test_line_clear_line_buffer),
        cmocka_unit_test(test_line_stack_recursion),
        cmocka_unit_test(test_line_maximum_line_length),
        cmocka_unit_test(test_line_maximum_line_length_partial_delimiter),
        cmocka_unit_test(test_line_not_quite_maximum_line_length_unfinished),
        cmocka_unit_test(test_line_maximum_line_length_remaining),
        cmocka_unit_test(test_line_length_boundary),
        cmocka_unit_test(test_line_long_unended_line),
        cmocka_unit_test(test_line_long_line_after_short_line),
        cmocka_unit_test(test_line_long_line_with_delimiter),
        cmocka_unit_test(test_line_multiple_long_lines),
        cmocka_unit_test(test_line_only_buffer),
        cmocka_unit_test(test_line_only_greater_than_maximum_line_length),
        cmocka_unit_test(test_line_pause_resume),
        cmocka_unit_test(test_line_lose_connection_stops_delivery),
        cmocka_unit_test(test_line_connection_lost_inside_hook),
        cmocka_unit_test(test_line_nothing_delivered_after_connection_lost),
        cmocka_unit_test(test_line_raw_mode_and_back_in_one_chunk),
        cmocka_unit_test(test_line_many_lines_in_one_chunk),
        cmocka_unit_test(test_line_multibyte_delimiter_every_fragment),
        cmocka_unit_test(test_line_set_delimiter_limits),
        cmocka_unit_test(test_line_send_line),
        cmocka_unit_test(test_line_hook_feeding_more_data),
        cmocka_unit_test(test_line_null_hooks_drop_data),
        cmocka_unit_test(test_line_destroy_unattached),
        cmocka_unit_test(test_netstring_buffer),
        cmocka_unit_test(test_netstring_receive_small),
        cmocka_unit_test(test_netstring_refused),
        cmocka_unit_test(test_netstring_illegal_byte_at_a_time),
        cmocka_unit_test(test_netstring_portions),
        cmocka_unit_test(test_netstring_two_netstrings),
        cmocka_unit_test(test_netstring_max_receive_limit),
        cmocka_unit_test(test_netstring_length_border_cases),
        cmocka_unit_test(test_netstring_broken_peer_ignores_more),
        cmocka_unit_test(test_netstring_send_string),
        cmocka_unit_test(test_netstring_lose_connection_stops_delivery),
        cmocka_unit_test(test_netstring_connection_lost_inside_hook),
        cmocka_unit_test(test_int_receive),
        cmocka_unit_test(test_int_partial),
        cmocka_unit_test(test_int_send),
        cmocka_unit_test(test_int_length_limit_exceeded),
        cmocka_unit_test(test_int_long_string_not_delivered),
        cmocka_unit_test(test_int_illegal),
        cmocka_unit_test(test_int_data),
        cmocka_unit_test(test_int_too_long_send),
        cmocka_unit_test(test_int_length_boundary),
        cmocka_unit_test(test_int_hook_feeding_more_data),
        cmocka_unit_test(test_int_pause_resume),
        cmocka_unit_test(test_int_connection_lost_inside_hook),
        cmocka_unit_test(test_line_receiver_over_tcp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
