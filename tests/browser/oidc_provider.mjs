// A real OpenID provider for the browser test of single sign-on (oidc.test.mjs):
// the npm package oidc-provider with one client (roost) and a few accounts, on
// 127.0.0.1 at a port the kernel picks. run.py starts it with the hub's redirect
// URI and the client secret, reads the issuer from its first line of output,
// and stops it whatever the outcome. Sign-in goes through oidc-provider's own
// development pages (any password; the login names an account below).
//
// usage: node oidc_provider.mjs REDIRECT_URI SECRET_FILE
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import fs from 'node:fs';
import http from 'node:http';

const require = createRequire(import.meta.url);
let Provider;
try {
  // from NODE_PATH (the build's npm ci of web/package.json)
  Provider = (await import(pathToFileURL(require.resolve('oidc-provider')).href)).default;
} catch (e) {
  console.error('oidc_provider: the npm package oidc-provider is missing from NODE_PATH (' +
    process.env.NODE_PATH + '): rebuild, which runs npm ci for web/package.json (' + e.message + ')');
  process.exit(3);
}

const [redirectUri, secretFile] = process.argv.slice(2);
const secret = fs.readFileSync(secretFile, 'utf8').trim();

// login name -> claims. unverified@ has an email its provider never checked.
const ACCOUNTS = {
  'owner@example.test': { email: 'owner@example.test', email_verified: true, name: 'Owner' },
  'ada@newco.test': { email: 'ada@newco.test', email_verified: true, name: 'Ada Lovelace' },
  'stranger@elsewhere.test': { email: 'stranger@elsewhere.test', email_verified: true },
  'unverified@example.test': { email: 'owner@example.test', email_verified: false },
};

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = 'http://127.0.0.1:' + server.address().port;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'roost',
      client_secret: secret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    conformIdTokenClaims: false, // the email in the ID token itself, as roost reads it
    pkce: { required: () => true },
    cookies: { keys: ['roost-test-cookie-key'] },
    async findAccount(ctx, id) {
      const a = ACCOUNTS[id];
      if (!a) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, ...a }) };
    },
  });
  server.on('request', provider.callback());
  console.log(issuer); // run.py waits for this line
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
