// A real OpenID Connect provider for the console's sign-in tests: panva's `oidc-provider`
// (OpenID Certified), with its development login and consent pages, which accept any login
// name and password. Not for production use; it is started by tests/src/oidc.rs.
//
// Environment: REDIRECT_URI (the console's callback), CLIENT_SECRET. It listens on a free
// port of 127.0.0.1 and prints one line, `listening <issuer>`, when it is ready.
//
// Accounts are made up from the login name:
// - `reader` gets the role `sked-readers`;
// - `nobody` gets no role;
// - a name `<tenant>-...` (such as `acme-ops`) gets `sked-operators` and the tenant;
// - every other name gets `sked-operators`.
// The roles go into the claim `sked_roles` and the tenants into `sked_tenants`, in the JWT
// access token (audience `sked-api`) and, with the scope `sked`, in the ID token.
import http from 'node:http';
import Provider from 'oidc-provider';

const redirect = process.env.REDIRECT_URI;
const secret = process.env.CLIENT_SECRET;
if (!redirect || !secret) {
  console.error('REDIRECT_URI and CLIENT_SECRET are required');
  process.exit(2);
}

function claimsOf(login) {
  const claims = { sub: login };
  if (login === 'reader') claims.sked_roles = ['sked-readers'];
  else if (login !== 'nobody') claims.sked_roles = ['sked-operators'];
  const dash = login.indexOf('-');
  if (dash > 0 && login !== 'nobody') claims.sked_tenants = [login.slice(0, dash)];
  return claims;
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'sked-console',
      client_secret: secret,
      redirect_uris: [redirect],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    }],
    cookies: { keys: ['sked-test-cookie-key'] },
    pkce: { required: () => true },
    scopes: ['openid', 'sked'],
    claims: { openid: ['sub'], sked: ['sked_roles', 'sked_tenants'] },
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'urn:sked:api',
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: '',
          audience: 'sked-api',
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    extraTokenClaims: (ctx, token) => {
      const { sub, ...rest } = claimsOf(token.accountId);
      return rest;
    },
    findAccount: (ctx, id) => ({ accountId: id, claims: () => claimsOf(id) }),
  });
  server.on('request', provider.callback());
  console.log(`listening ${issuer}`);
});
