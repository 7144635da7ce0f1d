"""Browser tests of the dashboard: start a real hub and a host on loopback (the
integration harness), then run a test file (argument 1; dashboard.test.mjs by
default) with node, which drives
Debian's chromium through playwright-core. Fails loudly if chromium, node or
playwright-core is missing rather than skipping."""
import os
import shutil
import subprocess
import sys
import tempfile

import harness

CHROMIUM = os.environ.get("ROOST_CHROMIUM", "/usr/bin/chromium")
HERE = os.path.dirname(os.path.abspath(__file__))
TEST_FILE = sys.argv[1] if len(sys.argv) > 1 else "dashboard.test.mjs"


def need(ok, what):
    if not ok:
        sys.exit("browser tests: %s (run ./scripts/install-deps and rebuild)" % what)


def start_provider(hub, tmp):
    """The OpenID provider of oidc.test.mjs (oidc_provider.mjs: the npm package
    oidc-provider), and the hub's --oidc-* options for it. The process, which
    the caller stops."""
    secret = os.path.join(tmp, "oidc-secret")
    with open(secret, "w") as f:
        f.write(os.urandom(16).hex() + "\n")
    redirect = "http://127.0.0.1:%d/api/v1/oidc/callback" % hub.dash_port
    log = open(os.path.join(tmp, "oidc-provider.log"), "ab")
    proc = subprocess.Popen(["node", os.path.join(HERE, "oidc_provider.mjs"), redirect, secret],
                            stdout=subprocess.PIPE, stderr=log, text=True)
    issuer = None
    for line in proc.stdout:  # its warnings go to the log; the issuer comes alone
        if line.startswith("http://"):
            issuer = line.strip()
            break
    if not issuer:
        proc.wait(30)
        with open(log.name) as f:
            sys.exit("browser tests: the OpenID provider did not start:\n" + f.read()[-2000:])
    hub.serve_args += ["--oidc-issuer", issuer, "--oidc-client-id", "roost",
                       "--oidc-client-secret-file", secret, "--oidc-name", "Test ID",
                       "--oidc-redirect-uri", redirect]
    os.environ["OIDC_ISSUER"] = issuer
    return proc


def main():
    need(os.access(CHROMIUM, os.X_OK), "no chromium at " + CHROMIUM)
    node = shutil.which("node")
    need(node, "node is not installed")
    modules = os.environ.get("NODE_PATH", "")
    need(os.path.isdir(os.path.join(modules, "playwright-core")),
         "playwright-core is not in NODE_PATH=%r" % modules)
    tmp = tempfile.mkdtemp(prefix="roost-browser-")
    hub = harness.Hub(tmp)
    if os.environ.get("ROOST_WEB_DIR"):
        hub.serve_args = ["--web-dir", os.environ["ROOST_WEB_DIR"]]
    host = harness.Host(hub, tmp, "alpha", heartbeat=1)
    provider = None
    rc = 1
    try:
        if TEST_FILE.startswith("oidc"):
            provider = start_provider(hub, tmp)
        hub.start()
        hub.login_cli()
        host.join()
        host.start()
        env = dict(os.environ,
                   DASH_URL="http://127.0.0.1:%d" % hub.dash_port,
                   CONTENT_URL="http://127.0.0.1:%d" % hub.content_port,
                   HUB_URL=hub.url,  # the API port: /metrics from loopback
                   ROOST_BIN=harness.ROOST,
                   ROOST_CLI_CONFIG=hub.cfg,
                   ROOST_PASSWORD=harness.PASSWORD,
                   OWNER_EMAIL=harness.EMAIL,
                   HOST_PID=str(host.proc.pid),
                   HOST_LABEL=host.label,
                   CHROMIUM=CHROMIUM,
                   TEST_TMP=tmp)
        only = os.environ.get("ROOST_BROWSER_ONLY")  # a test-name regexp, for debugging
        rc = subprocess.run([node, "--test", "--test-reporter=spec", "--test-concurrency=1",
                             *(["--test-name-pattern", only] if only else []),
                             os.path.join(HERE, TEST_FILE)],
                            env=env, timeout=840).returncode
    finally:
        try:
            host.stop()
        except AssertionError as e:  # the test stops it on purpose; say so, don't fail
            print("host:", e)
        hub.stop()
        if provider:
            provider.terminate()
            provider.wait(30)
        if rc != 0 or os.environ.get("ROOST_KEEP_TMP"):
            print("kept", tmp, "(hub.log, host-alpha.log)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(rc)


if __name__ == "__main__":
    main()
