/* peer: see peer.h. req_client (hub.h) lives here too. */
#include "peer.h"
#include "../core/util.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* addr (text) in canonical form into out, or false if not an IP address. */
static bool canonical(const char *addr, size_t len, char out[64])
{
	char tmp[64];
	while (len && (*addr == ' ' || *addr == '\t'))
		addr++, len--;
	while (len && (addr[len - 1] == ' ' || addr[len - 1] == '\t'))
		len--;
	if (len == 0 || len >= sizeof tmp)
		return false;
	memcpy(tmp, addr, len);
	tmp[len] = 0;
	unsigned char bin[16];
	if (inet_pton(AF_INET, tmp, bin) == 1)
		return inet_ntop(AF_INET, bin, out, 64) != NULL;
	if (inet_pton(AF_INET6, tmp, bin) == 1)
		return inet_ntop(AF_INET6, bin, out, 64) != NULL;
	return false;
}

int peer_trust(struct hub *h, const char *list)
{
	h->nproxies = 0;
	if (!list)
		return 0;
	const char *p = list;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char addr[64];
		if (h->nproxies == HUB_PROXIES_MAX || !canonical(p, len, addr)) {
			fprintf(stderr,
			        h->nproxies == HUB_PROXIES_MAX
			            ? "roost serve: --trusted-proxy: at most %d addresses\n"
			            : "roost serve: --trusted-proxy takes IP addresses separated "
			              "by commas (the load balancers'), not '%.*s'\n",
			        h->nproxies == HUB_PROXIES_MAX ? HUB_PROXIES_MAX : (int)len, p);
			h->nproxies = 0;
			return -1;
		}
		snprintf(h->proxies[h->nproxies++], sizeof h->proxies[0], "%s", addr);
		p += len + (end ? 1 : 0);
	}
	return 0;
}

static bool trusted(const struct hub *h, const char *addr)
{
	for (int i = 0; i < h->nproxies; i++)
		if (strcmp(h->proxies[i], addr) == 0)
			return true;
	return false;
}

static const char *socket_peer(struct req *r, char buf[64])
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	buf[0] = 0;
	if (!ci || !ci->client_addr)
		return buf;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, 64);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, 64);
	return buf;
}

static bool from_trusted_proxy(struct req *r)
{
	char peer[64];
	return r->hub->nproxies > 0 && trusted(r->hub, socket_peer(r, peer));
}

const char *req_client(struct req *r, char buf[64])
{
	socket_peer(r, buf);
	if (!r->hub->nproxies || !trusted(r->hub, buf))
		return buf;
	const char *xff = req_header(r, "X-Forwarded-For");
	if (!xff)
		return buf;
	/* Right to left: each proxy appends the address it saw; the first one
	 * not ours is the client as our outermost proxy saw it. An entry that
	 * is no address means the chain is garbage: the proxy it is. */
	size_t end = strlen(xff);
	for (int hops = 0; end > 0 && hops < 32; hops++) {
		size_t start = end;
		while (start > 0 && xff[start - 1] != ',')
			start--;
		char addr[64];
		if (!canonical(xff + start, end - start, addr))
			return buf;
		if (!trusted(r->hub, addr)) {
			snprintf(buf, 64, "%s", addr);
			return buf;
		}
		end = start ? start - 1 : 0;
	}
	return buf;
}

bool req_loopback(struct req *r)
{
	if (req_header(r, "X-Forwarded-For") || req_header(r, "Forwarded"))
		return false;
	char addr[64];
	socket_peer(r, addr);
	return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 ||
	       strncmp(addr, "::ffff:127.", 11) == 0;
}

static bool url_loopback(const char *url)
{
	const char *host = strstr(url, "://");
	if (!host)
		return false;
	host += 3;
	size_t n = strcspn(host, "/");
	const char *at = memchr(host, '@', n);
	if (at) { /* userinfo */
		n -= (size_t)(at + 1 - host);
		host = at + 1;
	}
	if (n >= 5 && strncmp(host, "[::1]", 5) == 0)
		return true;
	size_t hn = host[0] == '[' ? n : strcspn(host, ":/");
	return (hn >= 4 && strncmp(host, "127.", 4) == 0) ||
	       (hn == 9 && strncasecmp(host, "localhost", 9) == 0) ||
	       (hn > 10 && strncasecmp(host + hn - 10, ".localhost", 10) == 0);
}

bool req_may_reach(struct req *r, const char *url)
{
	return !url || !url_loopback(url) || req_loopback(r);
}

bool req_tls(struct req *r)
{
	if (r->hub->tls_cert_pem)
		return true;
	const char *proto = req_header(r, "X-Forwarded-Proto");
	return proto && strcasecmp(proto, "https") == 0 && from_trusted_proxy(r);
}
