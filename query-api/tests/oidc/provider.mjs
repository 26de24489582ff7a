// A real OpenID Connect provider (the certified `oidc-provider` package) for
// Certscope's single sign-on tests. Configured by the JSON in OIDC_TEST_CONFIG:
//   { "port": 0,                                               0 or absent: any free port
//     "keys": [{ "kid": "rsa-1", "alg": "RS256" }, ...],       published keys (generated)
//     "rogue_keys": [{ "kid": "rogue", "alg": "RS256" }],      keys NOT published
//     "clients": [{ "client_id", "client_secret", "redirect_uris", "claims": {...} }],
//     "accounts": { "<login>": { claims } },
//     "audience": "certscope-api" }
// Access tokens are JWTs for the resource `https://certscope.test/api` (or
// `https://certscope.test/api/<ALG>` to pick the signing algorithm; any other
// resource gets the audience `other-api`). A client's `claims` go into its
// client-credentials tokens (POST /claims {client_id: claims} replaces them
// while running); an account's into its ID and access tokens (POST /accounts
// {login: claims} adds or replaces accounts while running; the login form of
// the provider's development interactions takes any login and password).
//
// A side server (the second URL of the `ready` line) signs arbitrary claims
// (POST /sign {kid, alg, claims, header}) with published or rogue keys, and
// returns a published key's public PEM (GET /pem?kid=...): forged tokens for
// the refusal tests.
// Both servers listen before anything is printed: the provider on `port` (kept
// across a key rotation, so the issuer stays the same) or, when it is 0 or
// absent, on a port the kernel picks, so concurrent tests cannot race for one;
// the side server always on a port the kernel picks. Then it prints one line,
// `ready <issuer> <side server URL>`; a port it cannot bind ends it with the
// error on stderr.

import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const config = JSON.parse(process.env.OIDC_TEST_CONFIG);

function listen(server, port) {
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', fail);
      ok(`http://127.0.0.1:${server.address().port}`);
    });
  });
}

// the issuer names the provider's port, so its server listens first and the
// provider is attached to it once built
const server = http.createServer();
const issuer = await listen(server, config.port ?? 0);
const audience = config.audience ?? 'certscope-api';

async function makeKey({ kid, alg }) {
  const crv = alg === 'EdDSA' ? 'Ed25519' : undefined;
  const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true, crv });
  const jwk = await jose.exportJWK(privateKey);
  return { kid, alg, privateKey, publicKey, jwk: { ...jwk, kid, alg, use: 'sig' } };
}

const published = await Promise.all(config.keys.map(makeKey));
const rogue = await Promise.all((config.rogue_keys ?? []).map(makeKey));
const accounts = config.accounts ?? {};
// claims per client, settable while running (POST /claims on the side server)
const clientClaims = Object.fromEntries((config.clients ?? []).map((c) => [c.client_id, c.claims ?? {}]));

function resourceAlg(resource) {
  const m = /^https:\/\/certscope\.test\/api(?:\/(\w+))?$/.exec(resource ?? '');
  if (!m) return null;
  return m[1] ?? 'RS256';
}

const configuration = {
  clients: (config.clients ?? []).map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    grant_types: ['client_credentials', 'authorization_code'],
    response_types: ['code'],
    redirect_uris: c.redirect_uris ?? ['http://127.0.0.1/callback'],
    post_logout_redirect_uris: c.post_logout_redirect_uris ?? [],
    token_endpoint_auth_method: 'client_secret_post',
    scope: 'openid email profile api',
  })),
  jwks: { keys: published.map((k) => k.jwk) },
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf ?? 'https://certscope.test/api',
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resource) => {
        const alg = resourceAlg(resource);
        return {
          scope: 'api',
          audience: alg ? audience : 'other-api',
          accessTokenFormat: 'jwt',
          accessTokenTTL: 3600,
          jwt: { sign: { alg: alg ?? 'RS256' } },
        };
      },
    },
  },
  scopes: ['openid', 'offline_access', 'email', 'profile', 'api'],
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    email: ['email'],
    profile: ['org', 'groups', 'certscope_role', 'certscope_certifications'],
  },
  conformIdTokenClaims: false,
  findAccount: async (_ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, ...(accounts[id] ?? { email: id }) }),
  }),
  extraTokenClaims: async (_ctx, token) => {
    if (token.accountId) return accounts[token.accountId] ?? {};
    return clientClaims[token.clientId] ?? {};
  },
  cookies: { keys: ['certscope-test-cookie-key'] },
  ttl: { AccessToken: 3600, IdToken: 3600, Grant: 3600, Session: 3600, Interaction: 600, ClientCredentials: 3600 },
};

const provider = new Provider(issuer, configuration);
provider.proxy = false;
server.on('request', provider.callback());
provider.on('server_error', (_ctx, err) => console.error('provider error', err));

const signer = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://x');
    if (req.method === 'GET' && url.pathname === '/pem') {
      const key = published.find((k) => k.kid === url.searchParams.get('kid'));
      const pem = crypto.KeyObject.from(key.publicKey).export({ type: 'spki', format: 'pem' });
      res.writeHead(200, { 'content-type': 'text/plain' }).end(pem);
      return;
    }
    if (req.method === 'POST' && url.pathname === '/claims') {
      let body = '';
      for await (const chunk of req) body += chunk;
      Object.assign(clientClaims, JSON.parse(body));
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'POST' && url.pathname === '/accounts') {
      let body = '';
      for await (const chunk of req) body += chunk;
      Object.assign(accounts, JSON.parse(body));
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'POST' && url.pathname === '/sign') {
      let body = '';
      for await (const chunk of req) body += chunk;
      const { kid, claims, header } = JSON.parse(body);
      const key = [...published, ...rogue].find((k) => k.kid === kid);
      const jwt = await new jose.SignJWT(claims)
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...(header ?? {}) })
        .sign(key.privateKey);
      res.writeHead(200, { 'content-type': 'text/plain' }).end(jwt);
      return;
    }
    res.writeHead(404).end();
  } catch (e) {
    res.writeHead(500).end(String(e));
  }
});

const signerUrl = await listen(signer, 0);
console.log(`ready ${issuer} ${signerUrl}`);
