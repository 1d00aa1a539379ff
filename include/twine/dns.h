/* twine: name resolution that never blocks the reactor (c-ares under it). */
#ifndef TWINE_DNS_H
#define TWINE_DNS_H

#include <sys/socket.h>
#include <twine/common.h>
#include <twine/deferred.h>

TW_BEGIN_DECLS

typedef struct tw_address {
    struct sockaddr_storage addr;         /* port filled in */
    socklen_t len;
} tw_address;

/* What tw_resolve fires with; freed with free() by the result's destructor. */
typedef struct tw_addresses {
    size_t n;
    tw_address addrs[];
} tw_addresses;

/* The codes of TW_ERR_DNS failures are c-ares statuses; these name the
 * common ones without <ares.h>. */
enum {
    TW_DNS_ENODATA = 1,         /* the name has no address of that family */
    TW_DNS_ESERVFAIL = 3,
    TW_DNS_ENOTFOUND = 4,       /* no such name */
    TW_DNS_EREFUSED = 6,
    TW_DNS_EBADNAME = 8,
    TW_DNS_EBADFAMILY = 9,
    TW_DNS_ECONNREFUSED = 11,
    TW_DNS_ETIMEOUT = 12,
    TW_DNS_EDESTRUCTION = 16    /* the resolver shut down */
};

/* Resolves `host` (an IP literal resolves at once, still fired from the loop;
 * /etc/hosts is honoured; then DNS) for `port` (0..65535), in `family`
 * (AF_INET, AF_INET6, or AF_UNSPEC for both, in the order the resolver sorts
 * them: RFC 6724, so IPv6 first where it is reachable). The Deferred (the
 * caller's reference) fires with a tw_addresses * of at least one address,
 * owned by the result, or errbacks with TW_ERR_DNS, code the c-ares status:
 * TW_DNS_ENOTFOUND for an unknown name, TW_DNS_ETIMEOUT for a lookup that
 * outlives the timeout and tries, TW_DNS_EBADFAMILY for a bad family,
 * TW_DNS_EDESTRUCTION for a lookup still pending when the reactor shuts down.
 * A NULL host or a port out of range errbacks with TW_ERR_USAGE. Cancelling
 * it abandons the lookup (the Deferred errbacks TW_ERR_CANCELLED at once). */
TW_API tw_deferred *tw_resolve(const char *host, int port, int family);

/* Resolver settings for the reactor's resolver, applied to lookups started
 * afterwards (those under way finish with the old ones). servers:
 * "ADDR[:PORT],..." as c-ares reads it ("[ADDR]:PORT" for IPv6; NULL: the
 * system's from /etc/resolv.conf). timeout: seconds for the first try (later
 * rounds double it); tries: attempts per server; 0 for either: c-ares'
 * default (5 s, 4 tries). Return 0 or -EINVAL. */
TW_API int tw_dns_set_servers(const char *servers);
TW_API int tw_dns_set_timeout(double timeout, int tries);

TW_END_DECLS

#endif
