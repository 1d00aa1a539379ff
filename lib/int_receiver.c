/* twine: Int8/16/32StringReceiver, strings prefixed by their length in
 * network byte order (twisted.protocols.basic.IntNStringReceiver). */
#include "receiver_core.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

static tw_int_receiver *from_proto(tw_protocol *p)
{
    return TW_CONTAINER_OF(p, tw_int_receiver, proto);
}

static void release(tw_int_receiver *ir)
{
    tw_int_receiver_destroy(ir);
    if (ir->ops->free)
        ir->ops->free(ir);
}

static uint32_t read_prefix(const unsigned char *p, unsigned len)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < len; i++)
        v = v << 8 | p[i];
    return v;
}

/* Delivers the next string; false when there is none to deliver now. */
static bool deliver_string(tw_int_receiver *ir)
{
    tw_receiver_core *c = &ir->core_;
    size_t avail = c->end - c->start, plen = ir->prefix_len_;

    if (avail < plen)
        return false;
    size_t len = read_prefix((const unsigned char *)c->buf + c->start, ir->prefix_len_);
    if (len > ir->max_length) {
        if (ir->ops->length_limit_exceeded)
            ir->ops->length_limit_exceeded(ir, len);
        else if (ir->proto.transport)
            tw_transport_lose_connection(ir->proto.transport);
        return false;
    }
    if (avail - plen < len)
        return false;
    char *data = c->buf + c->start + plen;
    c->start += plen + len;
    /* The byte after the string starts the next prefix: borrow it for the
     * NUL and put it back after the hook. It stays at `start` even if the
     * hook's new data moves the buffer, since start < end meanwhile. */
    bool borrowed = c->start < c->end;
    char next = data[len];
    data[len] = '\0';
    if (ir->ops->string_received)
        ir->ops->string_received(ir, data, len);
    if (borrowed)
        c->buf[c->start] = next;
    return true;
}

static void process(tw_int_receiver *ir)
{
    tw_receiver_core *c = &ir->core_;

    if (!tw_receiver_core_begin(c))
        return;
    while (tw_receiver_core_can_deliver(c, &ir->proto) && deliver_string(ir))
        ;
    if (tw_receiver_core_end(c))
        release(ir);
}

static void ir_connection_made(tw_protocol *p)
{
    tw_int_receiver *ir = from_proto(p);
    if (ir->ops->connection_made)
        ir->ops->connection_made(ir);
}

static void ir_data_received(tw_protocol *p, const char *data, size_t len)
{
    tw_int_receiver *ir = from_proto(p);
    tw_receiver_core_append(&ir->core_, data, len);
    process(ir);
}

static void ir_connection_lost(tw_protocol *p, tw_failure *reason)
{
    tw_int_receiver *ir = from_proto(p);
    ir->core_.lost = 1;
    if (ir->ops->connection_lost)
        ir->ops->connection_lost(ir, reason);
}

static void ir_free(tw_protocol *p)
{
    tw_int_receiver *ir = from_proto(p);
    if (!tw_receiver_core_defer_free(&ir->core_))
        release(ir);
}

static const tw_protocol_ops int_receiver_protocol = {
    .connection_made = ir_connection_made,
    .data_received = ir_data_received,
    .connection_lost = ir_connection_lost,
    .free = ir_free,
};

static void init(tw_int_receiver *ir, unsigned prefix_len, const tw_int_receiver_ops *ops)
{
    memset(ir, 0, sizeof *ir);
    ir->proto.ops = &int_receiver_protocol;
    ir->ops = ops;
    ir->max_length = TW_INT_MAX_LENGTH;
    ir->prefix_len_ = (unsigned char)prefix_len;
    tw_receiver_core_init(&ir->core_);
}

void tw_int32_receiver_init(tw_int_receiver *ir, const tw_int_receiver_ops *ops) { init(ir, 4, ops); }
void tw_int16_receiver_init(tw_int_receiver *ir, const tw_int_receiver_ops *ops) { init(ir, 2, ops); }
void tw_int8_receiver_init(tw_int_receiver *ir, const tw_int_receiver_ops *ops) { init(ir, 1, ops); }

void tw_int_receiver_destroy(tw_int_receiver *ir)
{
    tw_receiver_core_release(&ir->core_);
}

int tw_int_receiver_send_string(tw_int_receiver *ir, const char *data, size_t len)
{
    unsigned plen = ir->prefix_len_;
    unsigned char prefix[4];
    struct iovec iov[2] = {
        { .iov_base = prefix, .iov_len = plen },
        { .iov_base = (void *)data, .iov_len = len },
    };

    if ((uint64_t)len >> (8 * plen) != 0)
        return -EMSGSIZE;
    if (!ir->proto.transport)
        return -ENOTCONN;
    for (unsigned i = 0; i < plen; i++)
        prefix[i] = (unsigned char)(len >> (8 * (plen - 1 - i)));
    return tw_transport_writev(ir->proto.transport, iov, 2);
}

void tw_int_receiver_pause_producing(tw_int_receiver *ir)
{
    ir->core_.paused = 1;
    if (ir->proto.transport)
        tw_transport_pause_reading(ir->proto.transport);
}

void tw_int_receiver_resume_producing(tw_int_receiver *ir)
{
    ir->core_.paused = 0;
    if (ir->proto.transport)
        tw_transport_resume_reading(ir->proto.transport);
    process(ir);
}

void tw_int_receiver_stop_producing(tw_int_receiver *ir)
{
    ir->core_.paused = 1;
    if (ir->proto.transport)
        tw_transport_lose_connection(ir->proto.transport);
}

static void producer_pause(void *arg) { tw_int_receiver_pause_producing(arg); }
static void producer_resume(void *arg) { tw_int_receiver_resume_producing(arg); }
static void producer_stop(void *arg) { ((tw_int_receiver *)arg)->core_.paused = 1; }

const tw_producer_ops tw_int_receiver_producer = {
    .pause = producer_pause,
    .resume = producer_resume,
    .stop = producer_stop,
};
