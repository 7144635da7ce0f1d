/* selfsign: a development CA and a server certificate it signs (roost relay
 * --self-signed), with OpenSSL 3: P-256 keys, SHA-256, 1-year validity.
 *
 * Threads: the relay's main thread, at start-up.
 */
#include "relay.h"
#include "../client/cmdline.h"
#include "../core/util.h"

#include <event2/util.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

static EVP_PKEY *new_key(void)
{
	return EVP_EC_gen("P-256");
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ex) {
		X509_add_ext(cert, ex, -1);
		X509_EXTENSION_free(ex);
	}
}

static X509 *new_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                      long serial, bool ca)
{
	X509 *c = X509_new();
	X509_set_version(c, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c), serial);
	X509_gmtime_adj(X509_getm_notBefore(c), -3600);
	X509_gmtime_adj(X509_getm_notAfter(c), 365L * 24 * 3600);
	X509_set_pubkey(c, key);
	X509_NAME *name = X509_get_subject_name(c);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name);
	X509 *iss = issuer ? issuer : c;
	if (ca) {
		add_ext(c, iss, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(c, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		add_ext(c, iss, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(c, iss, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1");
		add_ext(c, iss, NID_ext_key_usage, "serverAuth");
	}
	X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256());
	return c;
}

/* A key is 0600 from its first byte on disk (write_file_atomic), never
 * readable by others for a moment. */
static int write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
	BIO *b = BIO_new(BIO_s_mem());
	if (!b)
		return -1;
	int ok = cert ? PEM_write_bio_X509(b, cert)
	              : PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
	char *data = NULL;
	long len = BIO_get_mem_data(b, &data);
	int rc = ok && len > 0 && write_file_atomic(path, data, (size_t)len, key ? 0600 : 0644) == 0
	             ? 0
	             : -1;
	BIO_free(b);
	return rc;
}

int relay_self_signed(const char *dir, const char **cert, const char **key)
{
	static char cert_path[4096], key_path[4096];
	char ca_path[4096];
	snprintf(cert_path, sizeof cert_path, "%s/relay.pem", dir);
	snprintf(key_path, sizeof key_path, "%s/relay.key", dir);
	snprintf(ca_path, sizeof ca_path, "%s/ca.pem", dir);
	*cert = cert_path;
	*key = key_path;
	struct stat st;
	if (stat(cert_path, &st) == 0 && stat(key_path, &st) == 0 && stat(ca_path, &st) == 0)
		return 0;
	EVP_PKEY *cak = new_key(), *k = new_key();
	if (!cak || !k)
		return -1;
	X509 *ca = new_cert(cak, "roost relay development CA", NULL, NULL, 1, true);
	X509 *c = new_cert(k, "localhost", ca, cak, 2, false);
	int rc = write_pem(ca_path, ca, NULL) == 0 && write_pem(cert_path, c, NULL) == 0 &&
	                 write_pem(key_path, NULL, k) == 0
	             ? 0
	             : -1;
	X509_free(ca);
	X509_free(c);
	EVP_PKEY_free(cak);
	EVP_PKEY_free(k);
	if (rc == 0)
		log_info("relay: wrote a development CA to %s (clients trust it with --cacert)",
		         ca_path);
	return rc;
}

/* roost relay --data DIR --public ADDR:PORT --tunnel ADDR:PORT --hub URL
 *             (--cert F --key F | --self-signed) [--name HOST:PORT] [--hub-cacert F]
 *             [--admin-listen ADDR:PORT] */
int relay_main(int argc, char **argv)
{
	/* Defaults: a client gets 100 requests/s and 32 at once; a host 500/s and
	 * 128 at once (it has 16 tunnel connections; the rest wait up to 5 s). */
	struct relay_config cfg = {
	    .public_addr = "127.0.0.1:8443",
	    .tunnel_addr = "127.0.0.1:8444",
	    .limits = {[LIMIT_IP] = {.rps = 100, .inflight = 32, .conns = 256},
	               [LIMIT_HOST] = {.rps = 500, .inflight = 128}}};
	const char *limit = NULL;
	bool self_signed = false;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char **val = NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			cmdline_help(stdout, "relay", NULL);
			return 0;
		}
		if (strcmp(a, "--self-signed") == 0)
			self_signed = true;
		else if (strcmp(a, "--data") == 0)
			val = &cfg.data;
		else if (strcmp(a, "--public") == 0)
			val = &cfg.public_addr;
		else if (strcmp(a, "--tunnel") == 0)
			val = &cfg.tunnel_addr;
		else if (strcmp(a, "--admin-listen") == 0)
			val = &cfg.admin_addr;
		else if (strcmp(a, "--name") == 0)
			val = &cfg.public_name;
		else if (strcmp(a, "--cert") == 0)
			val = &cfg.cert;
		else if (strcmp(a, "--key") == 0)
			val = &cfg.key;
		else if (strcmp(a, "--hub") == 0)
			val = &cfg.hub;
		else if (strcmp(a, "--hub-cacert") == 0)
			val = &cfg.hub_cacert;
		else if (strcmp(a, "--rate") == 0 || strcmp(a, "--limit") == 0)
			val = &limit;
		if (!val && !(strcmp(a, "--self-signed") == 0)) {
			fprintf(stderr, "roost relay: unknown option %s\n", a);
			cmdline_help(stderr, "relay", NULL);
			return 2;
		}
		if (val) {
			if (i + 1 >= argc) {
				fprintf(stderr, "roost relay: %s needs a value\n", a);
				return 2;
			}
			*val = argv[++i];
		}
		if (val == &limit) {
			/* --rate N is short for --limit ip.rps=N */
			char *spec = strcmp(a, "--rate") == 0 ? xasprintf("ip.rps=%s", limit)
			                                      : xstrdup(limit);
			const char *why = NULL;
			int bad = limit_rule_parse(cfg.limits, spec, &why);
			free(spec);
			if (bad) {
				fprintf(stderr, "roost relay: %s %s: %s (0: no limit)\n", a, limit,
				        why);
				return 2;
			}
		}
	}
	if (!cfg.data || !cfg.hub || (!self_signed && (!cfg.cert || !cfg.key))) {
		fprintf(
		    stderr,
		    "usage: roost relay --data DIR --hub URL [--public ADDR:8443] "
		    "[--tunnel ADDR:8444] (--cert F --key F | --self-signed) "
		    "[--name HOST:PORT] [--admin-listen ADDR:PORT] [--limit SCOPE.KIND=N]...\n"
		    "  limits: ip|host|url . rps|bps|inflight, ip.conns, e.g. --limit ip.rps=100 "
		    "--limit host.bps=50M --limit url.inflight=8 (0: no limit)\n");
		return 2;
	}
	struct sockaddr_storage ss;
	int sslen = sizeof ss;
	if (cfg.admin_addr &&
	    evutil_parse_sockaddr_port(cfg.admin_addr, (struct sockaddr *)&ss, &sslen) != 0) {
		fprintf(stderr,
		        "roost relay: --admin-listen %s is not ADDR:PORT (127.0.0.1:8445)\n",
		        cfg.admin_addr);
		return 2;
	}
	if (mkdir_p(cfg.data, 0700) != 0) {
		fprintf(stderr, "roost relay: cannot create %s\n", cfg.data);
		return 1;
	}
	if (self_signed && relay_self_signed(cfg.data, &cfg.cert, &cfg.key) != 0) {
		fprintf(stderr, "roost relay: cannot write a self-signed certificate in %s\n",
		        cfg.data);
		return 1;
	}
	if (!cfg.public_name)
		cfg.public_name = cfg.public_addr;
	return relay_run(&cfg);
}
