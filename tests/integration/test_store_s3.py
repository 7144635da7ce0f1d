"""The hub's chunk store in an S3 bucket (roost serve --store s3://…, store_s3.c)
against s3rver (s3server.py), whatever ROOST_TEST_STORE says:

- serve checks the bucket at start: unknown credentials, none at all, a
  credentials file others can read, a bad URL: refused, naming the endpoint,
  the bucket and S3's error code; nothing is served;
- a credentials file (0600) works in place of the AWS_* variables;
- chunks land as PREFIX/ab/<sha256>, and the bucket's listing matches the
  database after a workload;
- an object missing or corrupt in the bucket is reported (a JSON error, the
  log) and never served; scrub finds a corrupt one and moves it to
  PREFIX/quarantine/;
- GC deletes unreferenced chunks from the bucket, and stray objects too.

Every request's SigV4 signature is checked (s3server.py's proxy: s3rver itself
does not recompute them), so these tests also show roost signs each kind of
request it makes as S3 wants."""
import hashlib
import json
import os
import subprocess
import time

os.environ["ROOST_TEST_STORE"] = "s3"  # before harness reads it

import harness  # noqa: E402
from harness import HubTest, q  # noqa: E402

DAY_MS = 86400 * 1000


def sha(b):
    return hashlib.sha256(b).hexdigest()


class StoreS3Test(HubTest):
    def serve_once(self, env=None, args=()):
        """roost serve on this hub's data with env changes; it must exit (refused)."""
        e = self.hub.env(**(env or {}))
        for k, v in list(e.items()):
            if v is None:
                del e[k]
        p = subprocess.run([harness.ROOST, "serve", "--data", self.hub.data,
                            *self.hub.db_args(), "--api-port", str(harness.free_port()),
                            "--content-port", str(harness.free_port()),
                            "--dashboard-port", str(harness.free_port()), *args],
                           env=e, capture_output=True, text=True, timeout=60)
        return p

    def admin(self, *args):
        p = subprocess.run([harness.ROOST, "admin", *args, "--data", self.hub.data,
                            *self.hub.db_args()], env=self.hub.env(), capture_output=True,
                           text=True, timeout=300)
        return p.returncode, p.stdout, p.stderr

    def put(self, path, data):
        st, body, payload, _ = self.api("PUT", "/upload?path=" + q(path), raw=data)
        self.assertEqual(st, 201, payload)
        return body

    def chunks_of(self, path):
        parent, name = path.rsplit("/", 1)
        rows = self.hub.sql(
            "SELECT vc.chunk_hash FROM version_chunks vc JOIN files f ON f.current_version_id "
            "= vc.version_id JOIN folders d ON d.id = f.folder_id WHERE d.path = ? AND "
            "f.name = ? AND f.deleted_at IS NULL ORDER BY vc.idx", (parent or "/", name))
        return [r[0] for r in rows]

    def bucket_chunks(self):
        return sorted(k.rsplit("/", 1)[1] for k in self.hub.s3.keys(self.hub.store_prefix)
                      if "/quarantine/" not in k)

    def hub_held(self):
        """The chunks the database says the hub's store holds (scrub marks the
        ones it found missing or corrupt)."""
        return sorted(r[0] for r in self.hub.sql(
            "SELECT chunk_hash FROM chunk_replicas WHERE holder = 'hub' AND state = 'ok'"))

    def hub_log(self):
        with open(os.path.join(self.hub.root, "hub.log"), errors="replace") as f:
            return f.read()

    # ---- starting

    def test_a_wrong_secret_is_refused_at_start_naming_the_bucket(self):
        p = self.serve_once({"AWS_SECRET_ACCESS_KEY": "not the secret"})
        self.assertEqual(p.returncode, 1)
        self.assertIn("the S3 store at %s refused bucket roost-test: HTTP 403 "
                      "SignatureDoesNotMatch (check the access key and secret)"
                      % self.hub.s3.endpoint, p.stderr)
        self.assertNotIn("not the secret", p.stderr)
        self.assertGreater(self.hub.s3.proxy.refused, 0)
        self.assertNotIn("API http", p.stderr)  # never served

    def test_unknown_credentials_are_refused_at_start_naming_the_bucket(self):
        p = self.serve_once({"AWS_ACCESS_KEY_ID": "NOT-A-KEY"})
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(self.hub.s3.endpoint, p.stderr)
        self.assertIn("bucket roost-test", p.stderr)
        self.assertIn("403 InvalidAccessKeyId", p.stderr)
        self.assertNotIn("NOT-A-KEY:", p.stderr)

    def test_no_credentials_or_a_bad_url_are_refused(self):
        p = self.serve_once({"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None})
        self.assertEqual(p.returncode, 1)
        self.assertIn("AWS_ACCESS_KEY_ID", p.stderr)
        self.assertIn("--store-credentials", p.stderr)
        url = self.hub.s3.store_url(self.hub.store_prefix)
        for bad, says in ((url.replace("region=us-east-1", "colour=blue"), "unknown option"),
                          (url.replace("addressing=path", "addressing=sideways"), "path or virtual"),
                          ("s3://X/" + self.hub.store_prefix, "bucket name"),
                          ("s3://roost-test/a/../b?endpoint=" + self.hub.s3.endpoint, "prefix"),
                          ("s3://roost-test/p?endpoint=ftp://x", "endpoint"),
                          ("ftp://somewhere/else", "not a directory path")):
            p = self.serve_once({"ROOST_STORE": bad})
            self.assertEqual(p.returncode, 1, bad)
            self.assertIn(says, p.stderr, bad)
        # A bucket that does not exist.
        p = self.serve_once({"ROOST_STORE": url.replace("s3://roost-test/", "s3://no-such-bucket/")})
        self.assertEqual(p.returncode, 1)
        self.assertIn("404 NoSuchBucket", p.stderr)

    def test_credentials_file_must_be_private_and_then_works(self):
        creds = os.path.join(self.tmp, "s3.creds")
        with open(creds, "w") as f:
            f.write("# s3rver's\naccess_key_id = %s\nsecret_access_key=%s\n"
                    % (self.hub.s3.access_key, self.hub.s3.secret_key))
        os.chmod(creds, 0o644)
        nokeys = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}
        p = self.serve_once(nokeys, ["--store-credentials", creds])
        self.assertEqual(p.returncode, 1)
        self.assertIn("readable by others", p.stderr)
        os.chmod(creds, 0o600)
        with open(creds, "a") as f:
            f.write("password=x\n")
        p = self.serve_once(nokeys, ["--store-credentials", creds])
        self.assertIn("unknown name 'password'", p.stderr)
        with open(creds, "w") as f:
            f.write("access_key_id=%s\nsecret_access_key=%s\n"
                    % (self.hub.s3.access_key, self.hub.s3.secret_key))
        # Good: a second hub on the same data would start; the admin commands
        # take the same options (gc here), so they reach the bucket the same way.
        e = self.hub.env(**{"AWS_ACCESS_KEY_ID": "NOT-A-KEY"})
        p = subprocess.run([harness.ROOST, "admin", "gc", "--data", self.hub.data,
                            *self.hub.db_args(), "--store-credentials", creds, "--json"],
                           env=e, capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("chunks_deleted", p.stdout)

    def test_backup_refuses_an_s3_stored_hub_and_makes_nothing(self):
        dest = os.path.join(self.tmp, "backup")
        code, out, err = self.admin("backup", "--to", dest)
        self.assertEqual(code, 1)
        self.assertIn("not for a hub whose chunks are in an S3 bucket", err)
        self.assertIn("versioning", err)
        self.assertFalse(os.path.exists(dest))

    # ---- serving

    def test_chunks_land_in_the_bucket_and_its_listing_matches_the_database(self):
        datas = [os.urandom(n) for n in (1, 5000, 300000, 2500000)]
        for i, d in enumerate(datas):
            self.put("/w/f%d.bin" % i, d)
        self.put("/w/copy.bin", datas[2])  # dedup: no new object
        self.hub.login_cli()
        src = os.path.join(self.tmp, "big.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(6 << 20))
        self.hub.cli("put", src, "/w/big.bin")
        out = os.path.join(self.tmp, "big.out")
        self.hub.cli("get", "/w/big.bin", out)
        with open(src, "rb") as a, open(out, "rb") as b:
            self.assertEqual(a.read(), b.read())
        db = self.hub_held()
        self.assertEqual(self.bucket_chunks(), db)
        for h in db:  # each under PREFIX/ab/<sha256>, holding what its name says
            with open(self.hub.object_path(h), "rb") as f:
                self.assertEqual(sha(f.read()), h)
        self.assertFalse(os.listdir(os.path.join(self.hub.data, "spool")))
        self.assertFalse(os.path.exists(os.path.join(self.hub.data, "objects")))

    def test_a_missing_or_corrupt_object_is_reported_never_served(self):
        good, bad = os.urandom(200000), os.urandom(200000)
        self.put("/m/gone.bin", good)
        self.put("/m/bad.bin", bad)
        gone = self.chunks_of("/m/gone.bin")[0]
        corrupt = self.chunks_of("/m/bad.bin")[0]
        os.unlink(self.hub.object_path(gone))
        with open(self.hub.object_path(corrupt), "r+b") as f:
            f.seek(1000)
            b = f.read(1)
            f.seek(1000)
            f.write(bytes([b[0] ^ 0xff]))
        for path in ("/m/gone.bin", "/m/bad.bin"):
            st, body, payload, _ = self.api("GET", "/content?path=" + q(path))
            self.assertGreaterEqual(st, 500, payload[:200])
            self.assertIsInstance(body, dict, payload[:200])
            self.assertIn("error", body)
        self.assertNotIn(bad[:1000], payload)
        log = self.hub_log()
        self.assertIn("object %s in s3://roost-test/%s" % (corrupt, self.hub.store_prefix), log)
        self.assertIn("is corrupt", log)
        # scrub: one missing, and the corrupt one if the read above has not moved
        # it already; either way it ends in PREFIX/quarantine/, not in place.
        code, out, err = self.admin("scrub")
        self.assertEqual(code, 1, out + err)
        self.assertIn("damaged", err)
        self.assertFalse(os.path.exists(self.hub.object_path(corrupt)))
        self.assertTrue([n for n in self.hub.quarantined() if n.startswith(corrupt + ".")])
        # An upload of the same bytes puts a good copy back, and it is served.
        self.put("/m/again.bin", bad)
        st, _, payload, _ = self.api("GET", "/content?path=" + q("/m/again.bin"))
        self.assertEqual((st, payload), (200, bad))

    def test_gc_deletes_unreferenced_chunks_and_strays_from_the_bucket(self):
        keep, drop = os.urandom(300000), os.urandom(300000)
        self.put("/gc/keep.bin", keep)
        self.put("/gc/drop.bin", drop)
        drop_chunks = self.chunks_of("/gc/drop.bin")
        st, _, payload, _ = self.api("DELETE", "/files?path=" + q("/gc/drop.bin"))
        self.assertEqual(st, 200, payload)
        self.hub.sql("UPDATE files SET deleted_at = ? WHERE name = 'drop.bin'",
                     (int(time.time() * 1000) - 40 * DAY_MS,))
        # A stray: an object no row names, old enough to be no one's upload.
        stray = os.urandom(1000)
        sh = sha(stray)
        key = "%s/%s/%s" % (self.hub.store_prefix, sh[:2], sh)
        self.s3_put(key, stray)
        code, out, err = self.admin("gc", "--retention", "0", "--json")
        self.assertEqual(code, 0, err)
        res = json.loads(out)
        self.assertGreaterEqual(res["chunks_deleted"], len(drop_chunks))
        for h in drop_chunks:
            self.assertFalse(os.path.exists(self.hub.object_path(h)), h)
        self.assertEqual(self.bucket_chunks(), self.hub_held())
        self.assertNotIn(sh, self.bucket_chunks())
        st, _, payload, _ = self.api("GET", "/content?path=" + q("/gc/keep.bin"))
        self.assertEqual((st, payload), (200, keep))

    def s3_requests(self, method, h):
        """How many requests of method the hub sent for chunk h (s3server's proxy)."""
        return sum(1 for m, path in list(self.hub.s3.proxy.requests) if m == method and h in path)

    def s3_delete(self, key):
        """DELETE an object straight from s3rver, behind the hub's back."""
        p = subprocess.run(["curl", "-sS", "-f", "-X", "DELETE", "--aws-sigv4",
                            "aws:amz:us-east-1:s3", "-u",
                            "%s:%s" % (self.hub.s3.access_key, self.hub.s3.secret_key),
                            "-H", "x-amz-content-sha256: " + sha(b""),
                            "%s/%s/%s" % (self.hub.s3.endpoint, self.hub.s3.bucket, key)],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_a_commit_trusts_its_own_upload_and_asks_the_bucket_for_the_rest(self):
        self.hub.login_cli()
        data = os.urandom(3000000)
        src = os.path.join(self.tmp, "trust.bin")
        with open(src, "wb") as f:
            f.write(data)
        p = self.hub.cli("put", src, "/trust/one.bin", check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        chunks = self.chunks_of("/trust/one.bin")
        self.assertGreater(len(chunks), 1)
        for h in chunks:  # one PUT each, and no HEAD: the commit trusted the upload
            self.assertEqual((self.s3_requests("PUT", h), self.s3_requests("HEAD", h)), (1, 0), h)
        # A chunk deleted from the bucket behind the hub's back: the commit that
        # used its upload consumed the record, so the next commit naming it asks
        # the bucket, finds it gone, and the client sends it again.
        gone = chunks[1]
        self.s3_delete("%s/%s/%s" % (self.hub.store_prefix, gone[:2], gone))
        self.assertNotIn(gone, self.bucket_chunks())
        p = self.hub.cli("put", src, "/trust/two.bin", check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertGreaterEqual(self.s3_requests("HEAD", gone), 1)
        self.assertEqual(self.s3_requests("PUT", gone), 2)
        self.assertIn(gone, self.bucket_chunks())
        for path in ("/trust/one.bin", "/trust/two.bin"):
            st, _, payload, _ = self.api("GET", "/content?path=" + q(path))
            self.assertEqual((st, payload == data), (200, True), path)

    def s3_put(self, key, data):
        """PUT an object straight into s3rver (signed by curl), dated long ago."""
        path = os.path.join(self.tmp, "stray")
        with open(path, "wb") as f:
            f.write(data)
        p = subprocess.run(["curl", "-sS", "-f", "--aws-sigv4", "aws:amz:us-east-1:s3",
                            "-u", "%s:%s" % (self.hub.s3.access_key, self.hub.s3.secret_key),
                            "-H", "x-amz-content-sha256: " + sha(data), "-T", path,
                            "%s/%s/%s" % (self.hub.s3.endpoint, self.hub.s3.bucket, key)],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        old = time.time() - 3 * 86400
        os.utime(self.hub.s3.object_path(key), (old, old))


if __name__ == "__main__":
    import unittest
    unittest.main(verbosity=2)
