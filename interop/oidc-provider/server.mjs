// panva/oidc-provider hosted for tessera interop tests.
//
// Protocol with the test harness (crates/tessera/tests/support/oidc_provider.rs):
//   * listens on 127.0.0.1:$PORT (default 0 = ephemeral port);
//   * prints exactly ONE line of JSON to stdout once ready:
//       {"issuer":"http://127.0.0.1:NNNNN","port":NNNNN,"mtls_base":"https://127.0.0.1:MMMMM",
//        "resources":["http://127.0.0.1:RRRRR/mcp","http://127.0.0.1:RRRRR/files"]}
//     (`mtls_base`: the HTTPS listener that asks for client certificates, RFC 8705;
//     `resources`: protected resources on a loopback resource server that publish RFC 9728
//     metadata naming this issuer, see resourceServer below);
//     and nothing else ever goes to stdout (all logging goes to stderr);
//   * exits on SIGTERM / SIGINT, and when stdin is a pipe or socket and it closes
//     (so a crashed parent does not leave the server running).
//
// See README.md in this folder for clients, accounts and the /_stats endpoint.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';

// oidc-provider prints some NOTICEs with console.info (stdout). Keep stdout for the
// ready line only: route every console method that writes to stdout to stderr, and
// import oidc-provider only after that (dynamic import, static imports are hoisted).
const writeStdout = process.stdout.write.bind(process.stdout);
for (const method of ['log', 'info', 'debug']) {
  console[method] = (...args) => console.error(...args); // eslint-disable-line no-console
}

const { default: Provider, errors } = await import('oidc-provider');
// DPoP (RFC 9449) for the custom password grant below: the same check the built-in grants run.
const { default: dpopValidate } = await import('oidc-provider/lib/helpers/validate_dpop.js');
const OTPAuth = await import('otpauth');

function log(...args) {
  console.error('[oidc-provider-interop]', ...args); // eslint-disable-line no-console
}

function intFromEnv(name, fallback, { min = 1 } = {}) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min) {
    log(`invalid ${name}=${JSON.stringify(raw)} (expected an integer >= ${min})`);
    process.exit(2);
  }
  return Number(raw);
}

const PORT = intFromEnv('PORT', 0, { min: 0 });
const ACCESS_TTL = intFromEnv('ACCESS_TTL', 60);
const REFRESH_TTL = intFromEnv('REFRESH_TTL', 86400);
// Device flow (RFC 8628): lifetime of device/user codes, and the polling `interval` to add to
// device authorization responses (0 = none, as oidc-provider does: clients then poll every 5 s).
const DEVICE_CODE_TTL = intFromEnv('DEVICE_CODE_TTL', 600);
const DEVICE_INTERVAL = intFromEnv('DEVICE_INTERVAL', 0, { min: 0 });
// The client authentication methods the server offers (its token_endpoint_auth_methods_supported):
// every one by default; CLIENT_AUTH_METHODS (comma-separated) narrows the list, to show a client
// choosing its method from the server's metadata. Clients registered with a method left out are
// refused when they authenticate.
const ALL_CLIENT_AUTH_METHODS = [
  'none', 'client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt',
  'tls_client_auth', 'self_signed_tls_client_auth',
];
const CLIENT_AUTH_METHODS = process.env.CLIENT_AUTH_METHODS
  ? process.env.CLIENT_AUTH_METHODS.split(',')
  : ALL_CLIENT_AUTH_METHODS;
for (const method of CLIENT_AUTH_METHODS) {
  if (!ALL_CLIENT_AUTH_METHODS.includes(method)) {
    log(`invalid CLIENT_AUTH_METHODS entry ${JSON.stringify(method)}`);
    process.exit(2);
  }
}

// ---------------------------------------------------------------------------
// Accounts and clients (also documented in README.md and mirrored as constants in
// crates/tessera/tests/support/oidc_provider.rs).

const SCOPES = ['openid', 'offline_access', 'api:read', 'api:write'];

const totpFor = (base32) => new OTPAuth.TOTP({
  secret: OTPAuth.Secret.fromBase32(base32),
  algorithm: 'SHA1',
  digits: 6,
  period: 30,
});

const ACCOUNTS = new Map([
  ['alice', { password: 'alice-password', totp: undefined }],
  ['bob', { password: 'bob-password', totp: totpFor('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP') }],
]);

const CLIENTS = [
  {
    client_id: 'confidential-client',
    client_secret: 'confidential-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['password', 'client_credentials', 'refresh_token', 'authorization_code'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
    scope: SCOPES.join(' '),
  },
  {
    client_id: 'post-client',
    client_secret: 'post-secret',
    token_endpoint_auth_method: 'client_secret_post',
    grant_types: ['password', 'client_credentials', 'refresh_token', 'authorization_code'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
    scope: SCOPES.join(' '),
  },
  {
    client_id: 'public-client',
    token_endpoint_auth_method: 'none',
    grant_types: ['password', 'refresh_token'],
    response_types: [],
    redirect_uris: [],
    scope: SCOPES.join(' '),
  },
  {
    // Browser login of a native app (RFC 8252): public client, PKCE (required by oidc-provider for
    // public clients), loopback redirect on any port (RFC 8252 §7.3: oidc-provider ignores the port
    // of http://127.0.0.1 redirect URIs for `native` clients). A refresh token is issued only for
    // `offline_access`, which oidc-provider keeps only when the request also says `prompt=consent`.
    client_id: 'native-client',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
    scope: SCOPES.join(' '),
  },
  {
    // Device authorization grant (RFC 8628). A refresh token is issued only when
    // `offline_access` is requested (oidc-provider's default issueRefreshToken); the consent
    // of the device flow's interaction grants it.
    client_id: 'device-client',
    token_endpoint_auth_method: 'none',
    grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
    response_types: [],
    redirect_uris: [],
    scope: SCOPES.join(' '),
  },
];

// DPoP (RFC 9449): a public client whose access tokens must be DPoP-bound (a bearer request is
// refused); its refresh tokens are bound to the key too (public clients). Every request with a
// DPoP proof must carry a server nonce (`features.dPoP.requireNonce` below).
CLIENTS.push({
  client_id: 'dpop-client',
  token_endpoint_auth_method: 'none',
  grant_types: ['password', 'refresh_token'],
  response_types: [],
  redirect_uris: [],
  scope: SCOPES.join(' '),
  dpop_bound_access_tokens: true,
});

// Client assertions (RFC 7523, OIDC private_key_jwt / client_secret_jwt). The private keys are
// test-only fixtures in testdata/client-assertion/ (tessera signs with them); the server gets
// their public halves. testdata/client-assertion/wrong-ec.pem is registered nowhere.
const ASSERTION_KEYS = new URL('../../testdata/client-assertion/', import.meta.url);
const publicJwk = (file, kid) => ({
  ...crypto.createPublicKey(fs.readFileSync(new URL(file, ASSERTION_KEYS))).export({ format: 'jwk' }),
  kid,
  use: 'sig',
});
CLIENTS.push(
  {
    client_id: 'jwt-client',
    token_endpoint_auth_method: 'private_key_jwt',
    grant_types: ['password', 'client_credentials', 'refresh_token'],
    response_types: [],
    redirect_uris: [],
    scope: SCOPES.join(' '),
    jwks: {
      keys: [
        publicJwk('rsa.pem', 'test-rsa'),
        publicJwk('ec.pem', 'test-ec'),
        publicJwk('ed25519.pem', 'test-ed'),
      ],
    },
  },
  {
    client_id: 'secret-jwt-client',
    client_secret: 'secret-jwt-client-secret-of-at-least-32-bytes',
    token_endpoint_auth_method: 'client_secret_jwt',
    grant_types: ['password', 'client_credentials', 'refresh_token'],
    response_types: [],
    redirect_uris: [],
    scope: SCOPES.join(' '),
  },
);

// Mutual TLS (RFC 8705): clients that authenticate with their TLS client certificate and get
// certificate-bound tokens. The certificates are testdata/mtls/ (regenerate.sh there): a test CA,
// the loopback server certificate, a CA-issued client certificate (CN=mtls-client) and a
// self-signed one registered by its x5c. Their requests go to the HTTPS listener published as
// `mtls_endpoint_aliases` (below); the issuer's own endpoints stay plain HTTP on loopback.
const MTLS_FILES = new URL('../../testdata/mtls/', import.meta.url);
const mtlsFile = (name) => fs.readFileSync(new URL(name, MTLS_FILES));
const selfSignedCert = new crypto.X509Certificate(mtlsFile('self-signed.pem'));
CLIENTS.push(
  {
    client_id: 'mtls-client',
    token_endpoint_auth_method: 'tls_client_auth',
    tls_client_auth_subject_dn: 'CN=mtls-client',
    tls_client_certificate_bound_access_tokens: true,
    grant_types: ['password', 'client_credentials', 'refresh_token'],
    response_types: [],
    redirect_uris: [],
    scope: SCOPES.join(' '),
  },
  {
    client_id: 'self-signed-mtls-client',
    token_endpoint_auth_method: 'self_signed_tls_client_auth',
    tls_client_certificate_bound_access_tokens: true,
    grant_types: ['password', 'client_credentials', 'refresh_token'],
    response_types: [],
    redirect_uris: [],
    scope: SCOPES.join(' '),
    jwks: {
      keys: [{
        ...selfSignedCert.publicKey.export({ format: 'jwk' }),
        use: 'sig',
        x5c: [selfSignedCert.raw.toString('base64')],
      }],
    },
  },
);

// The client certificate of this request, when it came over the mTLS listener with one.
function peerCertificate(ctx) {
  const socket = ctx.req.socket;
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const peer = socket.getPeerCertificate();
  return peer && peer.raw ? new crypto.X509Certificate(peer.raw) : undefined;
}

// Every accountId resolves (the dev login form accepts any login name); credentials
// are only checked by the password grant below.
function accountFor(accountId) {
  return {
    accountId,
    async claims() {
      return { sub: accountId };
    },
  };
}

// ---------------------------------------------------------------------------
// Statistics, served at GET /_stats and reset by POST /_stats/reset.

function freshStats() {
  return {
    token_requests: 0,
    by_grant_type: {
      password: 0, refresh_token: 0, client_credentials: 0, authorization_code: 0,
    },
    revocations: 0,
    introspections: 0,
    // POSTs to the device authorization endpoint (RFC 8628 §3.1), successful or not.
    device_authorizations: 0,
    // `grant.revoked` events: refresh-token reuse detection AND revocation of a refresh
    // token at the revocation endpoint both revoke the whole grant.
    grants_revoked: 0,
    // reuse detections only: a consumed (rotated-away) refresh token was presented again.
    refresh_token_reuses: 0,
    // the `jti` of every client assertion received at the token and revocation endpoints, in order
    // (tests check that no assertion is sent twice), and the `aud` and `alg` of each.
    assertion_jtis: [],
    assertion_auds: [],
    assertion_algs: [],
    // the `x5t` header of each (null when absent), and whether `x5t` and `x5t#S256` are the
    // thumbprints of the first `x5c` certificate (null without `x5c`).
    assertion_x5ts: [],
    assertion_x5c_consistent: [],
    // DPoP: requests that carried a `DPoP` proof, and `use_dpop_nonce` answers, by route
    // (`token`, `userinfo`, ...).
    dpop_proofs: {},
    dpop_nonce_demands: {},
  };
}

let stats = freshStats();

async function statsMiddleware(ctx, next) {
  if (ctx.path === '/_stats' && ctx.method === 'GET') {
    ctx.set('cache-control', 'no-store');
    ctx.body = stats;
    return;
  }
  if (ctx.path === '/_stats/reset' && ctx.method === 'POST') {
    stats = freshStats();
    ctx.set('cache-control', 'no-store');
    ctx.body = stats;
    return;
  }

  try {
    await next();
  } finally {
    // Counted after the provider handled the request, so the form body has been parsed
    // by oidc-provider itself; errors are rendered by the route's own error handler, so
    // failed requests reach this point too.
    const route = ctx.method === 'POST' ? ctx.oidc?.route : undefined;
    const assertion = ctx.oidc?.params?.client_assertion;
    if (typeof assertion === 'string' && (route === 'token' || route === 'revocation')) {
      try {
        const [header, payload] = assertion.split('.').slice(0, 2)
          .map((part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')));
        stats.assertion_jtis.push(String(payload.jti));
        stats.assertion_auds.push(String(payload.aud));
        stats.assertion_algs.push(String(header.alg));
        stats.assertion_x5ts.push(header.x5t ?? null);
        if (Array.isArray(header.x5c) && header.x5c.length > 0) {
          const der = Buffer.from(header.x5c[0], 'base64');
          const digest = (alg) => crypto.createHash(alg).update(der).digest('base64url');
          stats.assertion_x5c_consistent.push(header.x5t === digest('sha1') && header['x5t#S256'] === digest('sha256'));
        } else {
          stats.assertion_x5c_consistent.push(null);
        }
      } catch {
        stats.assertion_jtis.push('(undecodable)');
      }
    }
    const anyRoute = ctx.oidc?.route;
    if (anyRoute && ctx.get('DPoP')) {
      stats.dpop_proofs[anyRoute] = (stats.dpop_proofs[anyRoute] ?? 0) + 1;
    }
    const demandedNonce = ctx.body?.error === 'use_dpop_nonce'
      || /use_dpop_nonce/.test(ctx.response.get('WWW-Authenticate') || '');
    if (anyRoute && demandedNonce) {
      stats.dpop_nonce_demands[anyRoute] = (stats.dpop_nonce_demands[anyRoute] ?? 0) + 1;
    }
    if (route === 'token') {
      stats.token_requests += 1;
      const grantType = ctx.oidc.params?.grant_type;
      const key = typeof grantType === 'string' && grantType ? grantType : '(none)';
      stats.by_grant_type[key] = (stats.by_grant_type[key] ?? 0) + 1;
    } else if (route === 'revocation') {
      stats.revocations += 1;
    } else if (route === 'introspection') {
      stats.introspections += 1;
    } else if (route === 'device_authorization') {
      stats.device_authorizations += 1;
      // oidc-provider sends no `interval`; add one when asked to (tests poll faster).
      if (DEVICE_INTERVAL > 0 && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
        ctx.body = { ...ctx.body, interval: DEVICE_INTERVAL };
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Custom grant: grant_type=password (RFC 6749 §4.3) with an optional `totp` parameter.
//
// Creates a real Grant and issues an AccessToken and (always, when the client may use
// the refresh_token grant -- all clients here can) a RefreshToken bound to that grant,
// with the same model fields oidc-provider's authorization_code grant uses, so the
// built-in refresh_token grant (rotation + reuse detection), revocation and
// introspection treat them like any other tokens.

const PASSWORD_GRANT_PARAMS = ['username', 'password', 'totp', 'scope'];

function invalidGrant(description) {
  const err = new errors.InvalidGrant(description);
  // InvalidGrant hides its detail behind a generic description; expose a specific one
  // so clients can tell "TOTP required" apart from "wrong password".
  err.error_description = description;
  return err;
}

async function passwordGrant(ctx, next) {
  const { params, client, provider } = ctx.oidc;

  const missing = ['username', 'password'].filter((p) => params[p] === undefined || params[p] === '');
  if (missing.length) {
    throw new errors.InvalidRequest(`missing required parameter(s) ${missing.join(', ')}`);
  }

  // DPoP as the built-in grants do it: the proof is checked (nonce included), the access token
  // is bound to its key (cnf.jkt), and a public client's refresh token too.
  const dPoP = await dpopValidate(ctx);
  if (!dPoP && client.dpopBoundAccessTokens) {
    throw new errors.InvalidGrant('DPoP proof JWT not provided');
  }

  const account = ACCOUNTS.get(params.username);
  if (!account || !crypto.timingSafeEqual(
    crypto.createHash('sha256').update(params.password).digest(),
    crypto.createHash('sha256').update(account.password).digest(),
  )) {
    throw invalidGrant('invalid username or password');
  }

  const amr = ['pwd'];
  if (account.totp) {
    if (params.totp === undefined || params.totp === '') {
      throw invalidGrant('totp required');
    }
    // RFC 6238 defaults (SHA1, 6 digits, 30 s); accept the previous/next step too.
    if (!/^\d{6}$/.test(params.totp) || account.totp.validate({ token: params.totp, window: 1 }) === null) {
      throw invalidGrant('invalid totp');
    }
    amr.push('otp');
  }

  // Requested scopes must be known and allowed for the client; no scope = every scope
  // registered for the client.
  const allowed = new Set((client.scope || SCOPES.join(' ')).split(' '));
  const requested = params.scope ? [...new Set(params.scope.split(' ').filter(Boolean))] : [...allowed];
  const notAllowed = requested.filter((s) => !allowed.has(s) || !SCOPES.includes(s));
  if (notAllowed.length) {
    throw new errors.InvalidScope('requested scope is not allowed', notAllowed.join(' '));
  }
  const scope = requested.join(' ');
  const accountId = params.username;
  const gty = 'password';
  const authTime = Math.floor(Date.now() / 1000);

  const grant = new provider.Grant({ accountId, clientId: client.clientId });
  grant.addOIDCScope(scope);
  const grantId = await grant.save();

  const foundAccount = await provider.Account.findAccount(ctx, accountId);
  ctx.oidc.entity('Account', foundAccount);
  ctx.oidc.entity('Grant', grant);

  const at = new provider.AccessToken({
    accountId,
    client,
    expiresWithSession: false,
    grantId,
    gty,
  });
  at.scope = grant.getOIDCScopeFiltered(new Set(requested));
  // RFC 8705 §3: bound to the client certificate, as the built-in grants do.
  if (client.tlsClientCertificateBoundAccessTokens) {
    const cert = peerCertificate(ctx);
    if (!cert) throw new errors.InvalidGrant('mutual TLS client certificate not provided');
    at.setThumbprint('x5t', cert);
  }
  if (dPoP) {
    at.setThumbprint('jkt', dPoP.thumbprint);
  }
  ctx.oidc.entity('AccessToken', at);
  const accessToken = await at.save();

  let refreshToken;
  if (client.grantTypeAllowed('refresh_token')) {
    const rt = new provider.RefreshToken({
      accountId,
      amr,
      authTime,
      client,
      expiresWithSession: false,
      grantId,
      gty,
      rotations: 0,
      scope,
      // iiat (initial issued-at of the rotation chain) is set by the model's constructor
      // and copied along rotations by the refresh_token grant.
    });
    if (dPoP && client.clientAuthMethod === 'none') {
      rt.jkt = dPoP.thumbprint;
    }
    ctx.oidc.entity('RefreshToken', rt);
    refreshToken = await rt.save();
  }

  let idToken;
  if (requested.includes('openid')) {
    const token = new provider.IdToken({
      ...await foundAccount.claims('id_token', scope, {}, []),
      amr,
      auth_time: authTime,
    }, { ctx });
    token.scope = grant.getOIDCScopeFiltered(new Set(requested));
    token.mask = {};
    token.rejected = [];
    token.set('at_hash', accessToken);
    idToken = await token.issue({ use: 'idtoken' });
  }

  ctx.body = {
    access_token: accessToken,
    expires_in: at.expiration,
    id_token: idToken,
    refresh_token: refreshToken,
    scope: at.scope || undefined,
    token_type: at.tokenType,
  };

  await next();
}

// ---------------------------------------------------------------------------
// Custom grant: OAuth 2.0 Token Exchange (RFC 8693), for tessera's token chains
// (crates/tessera/tests/chain.rs). Exchanges an active access token of this server for a new
// access token of the same account and grant, with an `audience` and an equal or narrower
// `scope`. Only access tokens are accepted and issued, and only by the client the subject
// token was issued to (so introspection's grant checks hold for the new token).

const TOKEN_EXCHANGE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const TOKEN_EXCHANGE_PARAMS = ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'scope'];

// jwt-client too: chain stages authenticated with private_key_jwt (interop_client_assertions.rs).
for (const client of CLIENTS.filter((c) => ['confidential-client', 'jwt-client'].includes(c.client_id))) {
  client.grant_types.push(TOKEN_EXCHANGE_GRANT_TYPE);
}

async function tokenExchangeGrant(ctx, next) {
  const { params, client, provider } = ctx.oidc;

  const missing = ['subject_token', 'subject_token_type'].filter((p) => params[p] === undefined || params[p] === '');
  if (missing.length) {
    throw new errors.InvalidRequest(`missing required parameter(s) ${missing.join(', ')}`);
  }
  if (params.subject_token_type !== ACCESS_TOKEN_TYPE) {
    throw new errors.InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE}`);
  }
  if (params.requested_token_type && params.requested_token_type !== ACCESS_TOKEN_TYPE) {
    throw new errors.InvalidRequest(`only ${ACCESS_TOKEN_TYPE} can be requested`);
  }

  const subject = await provider.AccessToken.find(params.subject_token);
  if (!subject || !subject.isValid) {
    throw invalidGrant('the subject token is invalid or expired');
  }
  if (subject.clientId !== client.clientId) {
    throw invalidGrant('the subject token was issued to another client');
  }
  const grant = subject.grantId ? await provider.Grant.find(subject.grantId) : undefined;
  if (!grant) {
    throw invalidGrant('the grant of the subject token is gone');
  }

  const granted = new Set((subject.scope || '').split(' ').filter(Boolean));
  const requested = params.scope ? [...new Set(params.scope.split(' ').filter(Boolean))] : [...granted];
  const notGranted = requested.filter((s) => !granted.has(s));
  if (notGranted.length) {
    throw new errors.InvalidScope('requested scope exceeds the subject token', notGranted.join(' '));
  }

  const at = new provider.AccessToken({
    accountId: subject.accountId,
    client,
    expiresWithSession: false,
    grantId: subject.grantId,
    gty: 'token_exchange',
  });
  at.scope = requested.join(' ') || undefined;
  if (params.audience) {
    at.setAudience(params.audience);
  }
  ctx.oidc.entity('AccessToken', at);
  const accessToken = await at.save();

  ctx.body = {
    access_token: accessToken,
    issued_token_type: ACCESS_TOKEN_TYPE,
    token_type: at.tokenType,
    expires_in: at.expiration,
    scope: at.scope || undefined,
  };

  await next();
}

// ---------------------------------------------------------------------------
// Server + provider.

let handler = (req, res) => {
  res.statusCode = 503;
  res.end('starting');
};
const server = http.createServer((req, res) => handler(req, res));

await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(PORT, '127.0.0.1', () => {
    server.off('error', reject);
    resolve();
  });
});

const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const signingKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
  .export({ format: 'jwk' });

// ---------------------------------------------------------------------------
// A loopback resource server with two protected resources (RFC 9728): each publishes its metadata
// at /.well-known/oauth-protected-resource{path}, naming this issuer, and answers 401 with
// `WWW-Authenticate: Bearer resource_metadata="…"` to a request without a token. A token is
// accepted only when oidc-provider issued it for that resource (RFC 8707: its audience).

const RESOURCE_PATHS = ['/mcp', '/files'];
const RESOURCE_SCOPES = ['api:read', 'api:write'];
const resourceServer = http.createServer((req, res) => {
  resourceHandler(req, res).catch((err) => {
    log('resource server error', err);
    res.writeHead(500).end();
  });
});
await new Promise((resolve, reject) => {
  resourceServer.once('error', reject);
  resourceServer.listen(0, '127.0.0.1', () => {
    resourceServer.off('error', reject);
    resolve();
  });
});
const resourceBase = `http://127.0.0.1:${resourceServer.address().port}`;
const RESOURCES = RESOURCE_PATHS.map((path) => `${resourceBase}${path}`);

async function resourceHandler(req, res) {
  const { pathname } = new URL(req.url, resourceBase);
  const json = (status, body, headers = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
  };
  const wellKnown = '/.well-known/oauth-protected-resource';
  if (pathname.startsWith(wellKnown) && RESOURCE_PATHS.includes(pathname.slice(wellKnown.length))) {
    json(200, {
      resource: `${resourceBase}${pathname.slice(wellKnown.length)}`,
      authorization_servers: [issuer],
      scopes_supported: RESOURCE_SCOPES,
      bearer_methods_supported: ['header'],
    });
    return;
  }
  if (!RESOURCE_PATHS.includes(pathname)) {
    json(404, { error: 'not_found' });
    return;
  }
  const resource = `${resourceBase}${pathname}`;
  const challenge = `Bearer resource_metadata="${resourceBase}${wellKnown}${pathname}"`;
  const auth = req.headers.authorization ?? '';
  if (!/^bearer /i.test(auth)) {
    json(401, { error: 'unauthorized' }, { 'www-authenticate': challenge });
    return;
  }
  const value = auth.slice(7).trim();
  const token = (await provider.AccessToken.find(value)) ?? (await provider.ClientCredentials.find(value));
  if (!token || token.isExpired || token.aud !== resource) {
    json(401, { error: 'invalid_token' }, { 'www-authenticate': `${challenge}, error="invalid_token"` });
    return;
  }
  json(200, { sub: token.accountId ?? token.clientId, aud: token.aud, scope: token.scope });
}

const provider = new Provider(issuer, {
  clients: CLIENTS,
  scopes: SCOPES,
  jwks: { keys: [{ ...signingKey, kid: 'interop-rs256', alg: 'RS256', use: 'sig' }] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  findAccount: async (ctx, accountId) => (accountId ? accountFor(accountId) : undefined),
  clientAuthMethods: CLIENT_AUTH_METHODS,
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // same as the default, set explicitly: public clients may only introspect their own tokens
      allowedPolicy: async (ctx, client, token) => !(client.clientAuthMethod === 'none' && token.clientId !== ctx.oidc.client.clientId),
    },
    revocation: { enabled: true },
    // RFC 8628: POST /device/auth, verification page GET/POST /device (see README.md).
    deviceFlow: { enabled: true },
    // RFC 8705, over the HTTPS listener (see mtlsServer).
    mTLS: {
      enabled: true,
      certificateBoundAccessTokens: true,
      tlsClientAuth: true,
      selfSignedTlsClientAuth: true,
      getCertificate: peerCertificate,
      // Issued by the test CA (the listener checks the chain, and lets unverified ones through
      // so that the self-signed method can match them to the client's registration).
      certificateAuthorized: (ctx) => ctx.req.socket.authorized === true,
      certificateSubjectMatches: (ctx, property, expected) => {
        const cert = peerCertificate(ctx);
        if (!cert) return false;
        switch (property) {
          case 'tls_client_auth_subject_dn':
            return cert.subject.trim() === expected;
          case 'tls_client_auth_san_dns':
            return (cert.subjectAltName ?? '').split(', ').includes(`DNS:${expected}`);
          default:
            return false;
        }
      },
    },
    // RFC 9449. Nonces are required of every request that carries a proof (bearer requests
    // carry none and are unaffected), so that each client's first request meets use_dpop_nonce.
    dPoP: { enabled: true, nonceSecret: crypto.randomBytes(32), requireNonce: () => true },
    // RFC 7591 dynamic client registration at POST /reg, open (no initial access token).
    registration: { enabled: true },
    // RFC 8707 (on by default in oidc-provider): tokens for the resource server's resources are
    // opaque, their audience the resource; any other resource is refused with invalid_target.
    resourceIndicators: {
      enabled: true,
      getResourceServerInfo: async (ctx, resourceIndicator) => {
        if (!RESOURCES.includes(resourceIndicator)) throw new errors.InvalidTarget();
        return { scope: RESOURCE_SCOPES.join(' '), audience: resourceIndicator, accessTokenFormat: 'opaque' };
      },
    },
  },
  // A login that named one of the resource server's resources (RFC 8707: resource-first clients,
  // as MCP servers' authorization servers do) gets a refresh token without `offline_access` (which oidc-provider keeps only
  // with prompt=consent); every other login as oidc-provider decides by default.
  issueRefreshToken: async (ctx, client, code) => client.grantTypeAllowed('refresh_token')
    && (code.scopes.has('offline_access') || [...(code.resourceIndicators ?? [])].some((r) => RESOURCES.includes(r))),
  // Always rotate: presenting a consumed refresh token again revokes the whole grant
  // (its access tokens and its latest refresh token), see refresh_token.js.
  rotateRefreshToken: true,
  ttl: {
    AccessToken: ACCESS_TTL,
    ClientCredentials: ACCESS_TTL,
    RefreshToken: REFRESH_TTL,
    Grant: Math.max(REFRESH_TTL, 14 * 24 * 60 * 60),
    AuthorizationCode: 60,
    DeviceCode: DEVICE_CODE_TTL,
    IdToken: 3600,
    Interaction: 3600,
    Session: 14 * 24 * 60 * 60,
  },
});

provider.registerGrantType('password', passwordGrant, PASSWORD_GRANT_PARAMS);
provider.registerGrantType(TOKEN_EXCHANGE_GRANT_TYPE, tokenExchangeGrant, TOKEN_EXCHANGE_PARAMS);
provider.use(statsMiddleware);

// RFC 8705 §5: the endpoints a client authenticating with its certificate uses, on the HTTPS
// listener that asks for one.
const mtlsServer = https.createServer({
  key: mtlsFile('server-key.pem'),
  cert: mtlsFile('server.pem'),
  ca: [mtlsFile('ca.pem')],
  requestCert: true,
  rejectUnauthorized: false,
}, (req, res) => handler(req, res));
await new Promise((resolve, reject) => {
  mtlsServer.once('error', reject);
  mtlsServer.listen(0, '127.0.0.1', () => {
    mtlsServer.off('error', reject);
    resolve();
  });
});
const mtlsBase = `https://127.0.0.1:${mtlsServer.address().port}`;
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === '/.well-known/openid-configuration' && ctx.body && typeof ctx.body === 'object') {
    ctx.body.mtls_endpoint_aliases = {
      token_endpoint: `${mtlsBase}/token`,
      revocation_endpoint: `${mtlsBase}/token/revocation`,
      introspection_endpoint: `${mtlsBase}/token/introspection`,
      device_authorization_endpoint: `${mtlsBase}/device/auth`,
      userinfo_endpoint: `${mtlsBase}/me`,
    };
  }
});

provider.on('grant.revoked', () => {
  stats.grants_revoked += 1;
});
provider.on('grant.error', (ctx, err) => {
  log(`token error: grant_type=${ctx.oidc?.params?.grant_type} ${err?.error}: ${err?.error_detail ?? err?.error_description}`);
  if (err?.error_detail === 'refresh token already used') {
    stats.refresh_token_reuses += 1;
  }
});
provider.on('revocation.error', (ctx, err) => {
  log(`revocation error: ${err?.error}: ${err?.error_detail ?? err?.error_description}`);
});
provider.on('server_error', (ctx, err) => {
  log('server_error', ctx?.method, ctx?.path, err);
});

handler = provider.callback();

// ---------------------------------------------------------------------------
// Shutdown: SIGTERM, SIGINT, or stdin closing (when stdin is a pipe or socket).

let shuttingDown = false;
function shutdown(reason) {
  if (shuttingDown) return;
  shuttingDown = true;
  log(`shutting down (${reason})`);
  setTimeout(() => process.exit(0), 2000).unref();
  mtlsServer.close();
  mtlsServer.closeAllConnections();
  resourceServer.close();
  resourceServer.closeAllConnections();
  server.close(() => process.exit(0));
  server.closeAllConnections();
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

let stdinIsPipe = false;
try {
  const st = fs.fstatSync(0);
  stdinIsPipe = st.isFIFO() || st.isSocket();
} catch {
  // no stdin at all
}
const watchStdin = process.env.EXIT_ON_STDIN_CLOSE !== undefined
  ? process.env.EXIT_ON_STDIN_CLOSE === '1'
  : stdinIsPipe;
if (watchStdin) {
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('close', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.on('data', () => {}); // discard input, keep the stream flowing
  process.stdin.resume();
}

writeStdout(`${JSON.stringify({ issuer, port, mtls_base: mtlsBase, resources: RESOURCES })}\n`);
log(`ready: ${issuer} (access ttl ${ACCESS_TTL}s, refresh ttl ${REFRESH_TTL}s, device code ttl ${DEVICE_CODE_TTL}s, device interval ${DEVICE_INTERVAL || 'none'}, stdin watch ${watchStdin})`);
