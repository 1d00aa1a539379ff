/* twine tests: a small UDP DNS server on 127.0.0.1 for the resolver's tests.
 *
 * It runs on a libev loop inside the test process, answers A and AAAA
 * questions for the names it was given, NXDOMAIN for every other name, and in
 * silent mode answers nothing at all (to test timeouts). */
#ifndef TWINE_TESTS_DNS_RESPONDER_H
#define TWINE_TESTS_DNS_RESPONDER_H

struct ev_loop;
typedef struct dns_responder dns_responder;

/* Binds 127.0.0.1 on a free port and starts answering on `loop`. NULL when the
 * socket cannot be made. Free with dns_responder_free. */
dns_responder *dns_responder_new(struct ev_loop *loop);
void dns_responder_free(dns_responder *r);

int dns_responder_port(const dns_responder *r);

/* Answers `name` (any case) with the IPv4 or IPv6 literal `addr`; several
 * records per name are answered in the order added. Returns 0, or -1 when the
 * table is full or addr is not an IP literal. */
int dns_responder_add(dns_responder *r, const char *name, const char *addr);

/* Silent: questions are read and counted but never answered. */
void dns_responder_set_silent(dns_responder *r, int silent);

/* How many questions have arrived so far. */
unsigned dns_responder_queries(const dns_responder *r);

#endif
