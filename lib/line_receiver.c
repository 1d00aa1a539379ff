/* twine: LineReceiver, lines or raw data depending on the mode
 * (twisted.protocols.basic.LineReceiver). */
#include "receiver_core.h"

#include <errno.h>
#include <string.h>

static tw_line_receiver *from_proto(tw_protocol *p)
{
    return TW_CONTAINER_OF(p, tw_line_receiver, proto);
}

static void release(tw_line_receiver *lr)
{
    tw_line_receiver_destroy(lr);
    if (lr->ops->free)
        lr->ops->free(lr);
}

static void length_exceeded(tw_line_receiver *lr)
{
    const char *data;
    size_t len = tw_receiver_core_take_all(&lr->core_, &data);

    lr->scanned_ = 0;
    if (lr->ops->line_length_exceeded)
        lr->ops->line_length_exceeded(lr, data, len);
    else if (lr->proto.transport)
        tw_transport_lose_connection(lr->proto.transport);
}

/* Delivers the next line; false when there is none to deliver now. The
 * limits are Twisted's: a line over max_length is too long, and so is an
 * unfinished one once it reaches max_length plus the delimiter's length. */
static bool deliver_line(tw_line_receiver *lr)
{
    tw_receiver_core *c = &lr->core_;
    char *line = c->buf + c->start;
    size_t avail = c->end - c->start, dlen = lr->delimiter_len_;
    const char *hit = NULL;

    if (avail - lr->scanned_ >= dlen)
        hit = memmem(line + lr->scanned_, avail - lr->scanned_, lr->delimiter_, dlen);
    if (!hit) {
        /* A delimiter may still begin in the last dlen - 1 bytes. */
        lr->scanned_ = avail >= dlen ? avail - dlen + 1 : 0;
        if (avail >= lr->max_length && avail - lr->max_length >= dlen)
            length_exceeded(lr);
        return false;
    }
    size_t len = (size_t)(hit - line);
    if (len > lr->max_length) {
        length_exceeded(lr);
        return false;
    }
    line[len] = '\0';                     /* over the consumed delimiter */
    c->start += len + dlen;
    lr->scanned_ = 0;
    if (lr->ops->line_received)
        lr->ops->line_received(lr, line, len);
    return true;
}

static void deliver_raw(tw_line_receiver *lr)
{
    const char *data;
    size_t len = tw_receiver_core_take_all(&lr->core_, &data);

    lr->scanned_ = 0;
    if (lr->ops->raw_data_received)
        lr->ops->raw_data_received(lr, data, len);
}

static void process(tw_line_receiver *lr)
{
    tw_receiver_core *c = &lr->core_;

    if (!tw_receiver_core_begin(c))
        return;
    while (c->start < c->end && tw_receiver_core_can_deliver(c, &lr->proto)) {
        if (lr->raw_mode_)
            deliver_raw(lr);
        else if (!deliver_line(lr))
            break;
    }
    if (tw_receiver_core_end(c))
        release(lr);
}

static void lr_connection_made(tw_protocol *p)
{
    tw_line_receiver *lr = from_proto(p);
    if (lr->ops->connection_made)
        lr->ops->connection_made(lr);
}

static void lr_data_received(tw_protocol *p, const char *data, size_t len)
{
    tw_line_receiver *lr = from_proto(p);
    tw_receiver_core_append(&lr->core_, data, len);
    process(lr);
}

static void lr_connection_lost(tw_protocol *p, tw_failure *reason)
{
    tw_line_receiver *lr = from_proto(p);
    lr->core_.lost = 1;
    if (lr->ops->connection_lost)
        lr->ops->connection_lost(lr, reason);
}

static void lr_free(tw_protocol *p)
{
    tw_line_receiver *lr = from_proto(p);
    if (!tw_receiver_core_defer_free(&lr->core_))
        release(lr);
}

static const tw_protocol_ops line_receiver_protocol = {
    .connection_made = lr_connection_made,
    .data_received = lr_data_received,
    .connection_lost = lr_connection_lost,
    .free = lr_free,
};

void tw_line_receiver_init(tw_line_receiver *lr, const tw_line_receiver_ops *ops)
{
    memset(lr, 0, sizeof *lr);
    lr->proto.ops = &line_receiver_protocol;
    lr->ops = ops;
    lr->max_length = TW_LINE_MAX_LENGTH;
    memcpy(lr->delimiter_, "\r\n", 2);
    lr->delimiter_len_ = 2;
    tw_receiver_core_init(&lr->core_);
}

void tw_line_receiver_destroy(tw_line_receiver *lr)
{
    tw_receiver_core_release(&lr->core_);
}

int tw_line_receiver_set_delimiter(tw_line_receiver *lr, const char *delimiter, size_t len)
{
    if (len == 0 || len > TW_LINE_DELIMITER_MAX)
        return -EINVAL;
    memcpy(lr->delimiter_, delimiter, len);
    lr->delimiter_len_ = len;
    lr->scanned_ = 0;
    return 0;
}

void tw_line_receiver_set_raw_mode(tw_line_receiver *lr)
{
    lr->raw_mode_ = 1;
}

void tw_line_receiver_set_line_mode(tw_line_receiver *lr, const char *extra, size_t len)
{
    lr->raw_mode_ = 0;
    lr->scanned_ = 0;
    if (len)
        lr_data_received(&lr->proto, extra, len);
}

int tw_line_receiver_send_line(tw_line_receiver *lr, const char *line, size_t len)
{
    struct iovec iov[2] = {
        { .iov_base = (void *)line, .iov_len = len },
        { .iov_base = lr->delimiter_, .iov_len = lr->delimiter_len_ },
    };

    if (!lr->proto.transport)
        return -ENOTCONN;
    return tw_transport_writev(lr->proto.transport, iov, 2);
}

size_t tw_line_receiver_clear_line_buffer(tw_line_receiver *lr, const char **data)
{
    const char *cleared;
    size_t len = tw_receiver_core_take_all(&lr->core_, &cleared);

    lr->scanned_ = 0;
    if (data)
        *data = cleared;
    return len;
}

void tw_line_receiver_pause_producing(tw_line_receiver *lr)
{
    lr->core_.paused = 1;
    if (lr->proto.transport)
        tw_transport_pause_reading(lr->proto.transport);
}

void tw_line_receiver_resume_producing(tw_line_receiver *lr)
{
    lr->core_.paused = 0;
    if (lr->proto.transport)
        tw_transport_resume_reading(lr->proto.transport);
    process(lr);
}

void tw_line_receiver_stop_producing(tw_line_receiver *lr)
{
    lr->core_.paused = 1;
    if (lr->proto.transport)
        tw_transport_lose_connection(lr->proto.transport);
}

static void producer_pause(void *arg) { tw_line_receiver_pause_producing(arg); }
static void producer_resume(void *arg) { tw_line_receiver_resume_producing(arg); }
static void producer_stop(void *arg) { ((tw_line_receiver *)arg)->core_.paused = 1; }

const tw_producer_ops tw_line_receiver_producer = {
    .pause = producer_pause,
    .resume = producer_resume,
    .stop = producer_stop,
};
