"""A small OpenID provider for the hub's sign-in tests (test_oidc.py), in a thread
on 127.0.0.1: discovery, a JWKS, an authorization endpoint that signs in at once
(no page) and a token endpoint that checks the client's secret, the code (one
use) and its PKCE verifier. What the next ID token says is the test's to choose
(`provider.next`): claims to change, or a key to sign with that the JWKS does
not publish. Python's cryptography module makes the keys and signatures; without
it the test fails with the fix."""
import base64
import hashlib
import http.server
import json
import secrets
import threading
import time
import urllib.parse

try:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
except ImportError as e:  # never a skip: the test cannot say anything without it
    raise SystemExit("test_oidc needs Python's cryptography module: "
                     "apt-get install python3-cryptography (%s)" % e)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def int_b64(n):
    return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Provider:
    CLIENT_ID = "roost-test"
    SECRET = "s3cret-" + secrets.token_hex(8)

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec_key = ec.generate_private_key(ec.SECP256R1())
        self.other_ec_key = ec.generate_private_key(ec.SECP256R1())
        self.kid = "k1"
        self.codes = {}   # code -> {nonce, challenge, redirect_uri, email, ...}
        self.email = "owner@example.test"
        self.next = {}    # what the next ID token says: {"claims": {...}, "sign_with": key}
        self.token_requests = 0
        self.jwks_requests = 0
        provider = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, status, body=None, headers=()):
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                if u.path == "/.well-known/openid-configuration":
                    return self.reply(200, provider.discovery())
                if u.path == "/jwks":
                    provider.jwks_requests += 1
                    return self.reply(200, provider.jwks())
                if u.path == "/authorize":
                    return provider.authorize(self, urllib.parse.parse_qs(u.query))
                self.reply(404, {"error": "not_found"})

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(n).decode())
                if self.path == "/token":
                    return provider.token(self, form)
                self.reply(404, {"error": "not_found"})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def discovery(self):
        return {"issuer": self.issuer, "authorization_endpoint": self.issuer + "/authorize",
                "token_endpoint": self.issuer + "/token", "jwks_uri": self.issuer + "/jwks",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"]}

    def jwks(self):
        pub = self.key.public_key().public_numbers()
        ecp = self.ec_key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256",
                          "n": int_b64(pub.n), "e": int_b64(pub.e)},
                         {"kty": "EC", "kid": "e1", "use": "sig", "crv": "P-256",
                          "x": b64(ecp.x.to_bytes(32, "big")),
                          "y": b64(ecp.y.to_bytes(32, "big"))}]}

    def sign(self, claims, key=None, kid=None, alg="RS256"):
        """A compact JWS: RS256 with an RSA key, ES256 with an EC key, or alg
        "none" (no signature) and "HS256" (keyed with the RSA public key's JWK
        text: the algorithm-confusion attack) to see them refused."""
        key = key or (self.ec_key if alg == "ES256" else self.key)
        header = {"alg": alg, "typ": "JWT", "kid": kid or ("e1" if alg == "ES256" else self.kid)}
        signing = (b64(json.dumps(header).encode()) + "." +
                   b64(json.dumps(claims).encode())).encode()
        if alg == "none":
            return signing.decode() + "."
        if alg == "HS256":
            import hmac
            secret = json.dumps(self.jwks()["keys"][0]).encode()
            return signing.decode() + "." + b64(hmac.new(secret, signing, "sha256").digest())
        if alg == "ES256":
            r, s = decode_dss_signature(key.sign(signing, ec.ECDSA(hashes.SHA256())))
            return signing.decode() + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
        return signing.decode() + "." + b64(key.sign(signing, padding.PKCS1v15(), hashes.SHA256()))

    def authorize(self, h, q):
        one = {k: v[0] for k, v in q.items()}
        if (one.get("client_id") != self.CLIENT_ID or one.get("response_type") != "code"
                or one.get("code_challenge_method") != "S256" or "state" not in one
                or "nonce" not in one or "openid" not in one.get("scope", "").split()):
            return h.reply(400, {"error": "invalid_request", "got": one})
        code = secrets.token_urlsafe(24)
        self.codes[code] = {"nonce": one["nonce"], "challenge": one["code_challenge"],
                            "redirect_uri": one["redirect_uri"], "email": self.email,
                            "next": self.next, "used": False}
        self.next = {}
        loc = one["redirect_uri"] + "?" + urllib.parse.urlencode(
            {"code": code, "state": one["state"]})
        h.reply(302, None, [("Location", loc)])

    def token(self, h, form):
        auth = h.headers.get("Authorization", "")
        want = "Basic " + base64.b64encode(
            ("%s:%s" % (self.CLIENT_ID, self.SECRET)).encode()).decode()
        if auth != want:
            return h.reply(401, {"error": "invalid_client"})
        self.token_requests += 1
        one = {k: v[0] for k, v in form.items()}
        c = self.codes.get(one.get("code"))
        if not c or c["used"] or one.get("grant_type") != "authorization_code":
            return h.reply(400, {"error": "invalid_grant"})
        c["used"] = True
        verifier = one.get("code_verifier", "")
        if b64(hashlib.sha256(verifier.encode()).digest()) != c["challenge"]:
            return h.reply(400, {"error": "invalid_grant", "error_description": "PKCE"})
        if one.get("redirect_uri") != c["redirect_uri"]:
            return h.reply(400, {"error": "invalid_grant", "error_description": "redirect"})
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": "sub-" + c["email"], "aud": self.CLIENT_ID,
                  "exp": now + 300, "iat": now, "nonce": c["nonce"], "email": c["email"],
                  "email_verified": True, "name": c["email"].split("@")[0].title()}
        claims.update(c["next"].get("claims", {}))
        for k in c["next"].get("drop", ()):
            claims.pop(k, None)
        tok = self.sign(claims, c["next"].get("sign_with"), c["next"].get("kid"),
                        c["next"].get("alg", "RS256"))
        h.reply(200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                      "expires_in": 300, "id_token": tok})
