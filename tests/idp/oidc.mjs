// An OpenID Connect provider for the browser tests: node's oidc-provider (OpenID Certified) on
// 127.0.0.1 with one client (Roll Call) and its development sign-in pages.
//
//   node oidc.mjs PORT REDIRECT_URI CLIENT_ID CLIENT_SECRET
//
// Any login name signs in (the development pages take any password); the name typed becomes the
// account, and its "badge" claim, so a test signs in as badge 1001 by typing 1001. Prints
// "ready ISSUER" once it listens.
import Provider from 'oidc-provider';

const [port, redirectUri, clientId, clientSecret] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: {
    openid: ['sub'],
    profile: ['given_name', 'family_name', 'badge'],
    email: ['email'],
  },
  // The ID token carries the scopes' claims itself, as Entra ID and Okta tokens do.
  conformIdTokenClaims: false,
  cookies: { keys: ['rollcall-test-idp-cookie-key'] },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, badge: id, email: `${id}@idp.test`, given_name: 'Test', family_name: `Member ${id}` };
      },
    };
  },
  // Roll Call is the department's own application: no consent page.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid profile email');
    await grant.save();
    return grant;
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

provider.listen(Number(port), '127.0.0.1', () => console.log(`ready ${issuer}`));
