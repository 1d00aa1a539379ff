/* twine: gzip and deflate content codings, decoded as the body streams in
 * (zlib). "deflate" is meant to be a zlib stream (RFC 9110), but some
 * servers send raw deflate: the first two bytes tell them apart, as browsers
 * and curl do. Concatenated gzip members decode as one body. */
#include "http_client_internal.h"

#include <errno.h>
#include <strings.h>
#include <zlib.h>

enum { OUT_CHUNK = 16 * 1024 };

struct tw_http_decoder {
    z_stream z;
    bool gzip;
    bool started;                     /* inflateInit2 done */
    bool done;                        /* a stream has ended */
    bool fed;                         /* any input at all */
    bool have_first;                  /* deflate: the first byte waits for the second */
    unsigned char first;
};

tw_http_decoder *tw_http_decoder_new(const char *coding)
{
    if (!coding)
        return NULL;
    bool gzip = !strcasecmp(coding, "gzip") || !strcasecmp(coding, "x-gzip");
    if (!gzip && strcasecmp(coding, "deflate"))
        return NULL;
    tw_http_decoder *d = tw_xcalloc(1, sizeof *d);
    d->gzip = gzip;
    if (gzip) {
        if (inflateInit2(&d->z, 15 + 16) != Z_OK)
            abort();                  /* out of memory, as tw_xmalloc */
        d->started = true;
    }
    return d;
}

void tw_http_decoder_free(tw_http_decoder *d)
{
    if (!d)
        return;
    if (d->started)
        inflateEnd(&d->z);
    free(d);
}

/* A zlib header: deflate method, a window of at most 32 KiB, and a check. */
static bool zlib_header(unsigned char cmf, unsigned char flg)
{
    return (cmf & 0x0f) == 8 && (cmf >> 4) <= 7 && ((cmf << 8) | flg) % 31 == 0;
}

static int inflate_some(tw_http_decoder *d, const unsigned char *data, size_t len,
                        int (*out)(void *, const char *, size_t), void *arg)
{
    unsigned char buf[OUT_CHUNK];
    d->z.next_in = (unsigned char *)data;
    d->z.avail_in = (uInt)len;
    do {
        if (d->done && d->z.avail_in) {
            if (!d->gzip)
                return 0;             /* what follows a deflate stream is ignored */
            inflateReset(&d->z);      /* another gzip member */
            d->done = false;
        }
        d->z.next_out = buf;
        d->z.avail_out = sizeof buf;
        int zr = inflate(&d->z, Z_NO_FLUSH);
        if (zr == Z_STREAM_END)
            d->done = true;
        else if (zr != Z_OK && zr != Z_BUF_ERROR)
            return -EBADMSG;
        size_t n = sizeof buf - d->z.avail_out;
        if (n) {
            int r = out(arg, (const char *)buf, n);
            if (r)
                return r;
        }
    } while (d->z.avail_in > 0 || d->z.avail_out == 0);
    return 0;
}

int tw_http_decoder_feed(tw_http_decoder *d, const char *data, size_t len,
                         int (*out)(void *arg, const char *data, size_t len), void *arg)
{
    const unsigned char *p = (const unsigned char *)data;
    if (len == 0)
        return 0;
    d->fed = true;
    if (!d->started) {
        if (!d->have_first) {
            d->first = *p++;
            d->have_first = true;
            if (--len == 0)
                return 0;
        }
        if (inflateInit2(&d->z, zlib_header(d->first, *p) ? 15 : -15) != Z_OK)
            abort();
        d->started = true;
        int r = inflate_some(d, &d->first, 1, out, arg);
        if (r)
            return r;
    }
    /* zlib counts input in uInt. */
    while (len > 0) {
        size_t n = len < (1u << 30) ? len : (1u << 30);
        int r = inflate_some(d, p, n, out, arg);
        if (r)
            return r;
        p += n;
        len -= n;
    }
    return 0;
}

int tw_http_decoder_finish(const tw_http_decoder *d)
{
    return d->done || !d->fed ? 0 : -EBADMSG;
}
