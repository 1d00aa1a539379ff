/* twine: a Twisted-style networking toolkit for C. The umbrella header. */
#ifndef TWINE_H
#define TWINE_H

#include <twine/common.h>
#include <twine/log.h>
#include <twine/failure.h>
#include <twine/deferred.h>
#include <twine/sync.h>
#include <twine/reactor.h>
#include <twine/dns.h>
#include <twine/net.h>
#include <twine/tls.h>
#include <twine/protocols.h>
#include <twine/http.h>
#include <twine/http_client.h>
#include <twine/http_server.h>
#include <twine/testing.h>

#endif
