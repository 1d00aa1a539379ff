/* twine: NetstringReceiver, "<length>:<data>," framing
 * (twisted.protocols.basic.NetstringReceiver). */
#include "receiver_core.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static tw_netstring_receiver *from_proto(tw_protocol *p)
{
    return TW_CONTAINER_OF(p, tw_netstring_receiver, proto);
}

static void release(tw_netstring_receiver *nr)
{
    tw_netstring_receiver_destroy(nr);
    if (nr->ops->free)
        nr->ops->free(nr);
}

/* Twisted's NetstringParseError handling: drop the peer. */
static bool parse_error(tw_netstring_receiver *nr)
{
    const char *ignored;

    nr->broken_peer = 1;
    tw_receiver_core_take_all(&nr->core_, &ignored);
    if (nr->proto.transport)
        tw_transport_lose_connection(nr->proto.transport);
    return false;
}

/* Consumes length digits up to the colon; false when more input is needed or
 * the input is invalid. A leading zero is only valid as the length 0. */
static bool consume_length(tw_netstring_receiver *nr)
{
    tw_receiver_core *c = &nr->core_;

    while (c->start < c->end) {
        char ch = c->buf[c->start];
        if (ch == ':') {
            if (!nr->digits_)
                return parse_error(nr);
            c->start++;
            nr->in_payload_ = 1;
            return true;
        }
        if (ch < '0' || ch > '9' || (nr->digits_ && nr->length_ == 0))
            return parse_error(nr);
        size_t digit = (size_t)(ch - '0');
        if (nr->length_ > (SIZE_MAX - digit) / 10 || nr->length_ * 10 + digit > nr->max_length)
            return parse_error(nr);
        nr->length_ = nr->length_ * 10 + digit;
        nr->digits_ = 1;
        c->start++;
    }
    return false;
}

/* Delivers the next netstring; false when there is none to deliver now. */
static bool deliver_string(tw_netstring_receiver *nr)
{
    tw_receiver_core *c = &nr->core_;

    if (!nr->in_payload_ && !consume_length(nr))
        return false;
    size_t len = nr->length_;
    if (c->end - c->start <= len)         /* the payload and its comma */
        return false;
    char *payload = c->buf + c->start;
    if (payload[len] != ',')
        return parse_error(nr);
    payload[len] = '\0';                  /* over the consumed comma */
    c->start += len + 1;
    nr->length_ = 0;
    nr->digits_ = 0;
    nr->in_payload_ = 0;
    if (nr->ops->string_received)
        nr->ops->string_received(nr, payload, len);
    return true;
}

static void process(tw_netstring_receiver *nr)
{
    tw_receiver_core *c = &nr->core_;

    if (!tw_receiver_core_begin(c))
        return;
    while (c->start < c->end && !nr->broken_peer
           && tw_receiver_core_can_deliver(c, &nr->proto)
           && deliver_string(nr))
        ;
    if (tw_receiver_core_end(c))
        release(nr);
}

static void nr_connection_made(tw_protocol *p)
{
    tw_netstring_receiver *nr = from_proto(p);
    if (nr->ops->connection_made)
        nr->ops->connection_made(nr);
}

static void nr_data_received(tw_protocol *p, const char *data, size_t len)
{
    tw_netstring_receiver *nr = from_proto(p);
    if (nr->broken_peer)
        return;
    tw_receiver_core_append(&nr->core_, data, len);
    process(nr);
}

static void nr_connection_lost(tw_protocol *p, tw_failure *reason)
{
    tw_netstring_receiver *nr = from_proto(p);
    nr->core_.lost = 1;
    if (nr->ops->connection_lost)
        nr->ops->connection_lost(nr, reason);
}

static void nr_free(tw_protocol *p)
{
    tw_netstring_receiver *nr = from_proto(p);
    if (!tw_receiver_core_defer_free(&nr->core_))
        release(nr);
}

static const tw_protocol_ops netstring_receiver_protocol = {
    .connection_made = nr_connection_made,
    .data_received = nr_data_received,
    .connection_lost = nr_connection_lost,
    .free = nr_free,
};

void tw_netstring_receiver_init(tw_netstring_receiver *nr, const tw_netstring_receiver_ops *ops)
{
    memset(nr, 0, sizeof *nr);
    nr->proto.ops = &netstring_receiver_protocol;
    nr->ops = ops;
    nr->max_length = TW_NETSTRING_MAX_LENGTH;
    tw_receiver_core_init(&nr->core_);
}

void tw_netstring_receiver_destroy(tw_netstring_receiver *nr)
{
    tw_receiver_core_release(&nr->core_);
}

int tw_netstring_receiver_send_string(tw_netstring_receiver *nr, const char *data, size_t len)
{
    char prefix[32];
    int n = snprintf(prefix, sizeof prefix, "%zu:", len);
    struct iovec iov[3] = {
        { .iov_base = prefix, .iov_len = (size_t)n },
        { .iov_base = (void *)data, .iov_len = len },
        { .iov_base = ",", .iov_len = 1 },
    };

    if (!nr->proto.transport)
        return -ENOTCONN;
    return tw_transport_writev(nr->proto.transport, iov, 3);
}
