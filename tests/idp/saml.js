// A SAML 2.0 identity provider for the browser tests: node's saml-idp on 127.0.0.1, signing with a
// test-only key pair made by the test.
//
//   node saml.js PORT CERT_PEM KEY_PEM ACS_URL AUDIENCE
//
// Its page shows the user's attributes as a form; the "badge" field names the member. Prints
// "ready ISSUER" once it listens.
'use strict';
const http = require('http');
const { runServer } = require('saml-idp');

const [port, cert, key, acsUrl, audience] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}/metadata`;

runServer({
  host: '127.0.0.1',
  port: Number(port),
  cert,
  key,
  issuer,
  acsUrl,
  audience,
  config: {
    user: {
      userName: '1001@idp.test',
      nameIdFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
      badge: '1001',
      email: '1001@idp.test',
      firstName: 'Test',
      lastName: 'Member',
    },
    metadata: [
      { id: 'badge', optional: false, displayName: 'Badge', description: 'Badge number', multiValue: false },
      { id: 'email', optional: false, displayName: 'E-Mail Address', description: 'E-mail', multiValue: false },
      { id: 'firstName', optional: true, displayName: 'First Name', description: 'Given name', multiValue: false },
      { id: 'lastName', optional: true, displayName: 'Last Name', description: 'Surname', multiValue: false },
    ],
  },
});

// saml-idp logs its own banner; wait until its port answers, then say so on one line.
(function poll(tries) {
  http.get(`http://127.0.0.1:${port}/metadata`, (res) => {
    res.resume();
    console.log(`ready ${issuer}`);
  }).on('error', () => (tries > 0 ? setTimeout(() => poll(tries - 1), 100) : process.exit(1)));
}(100));
