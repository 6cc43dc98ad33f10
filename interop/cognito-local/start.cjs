// Starts cognito-local (jagregory/cognito-local, pinned in package.json) for tessera's interop tests.
//
// - Data goes to ./.cognito under the CURRENT directory: run it in a fresh temp dir per test.
// - Listens on $HOST:$PORT, default 127.0.0.1 and an ephemeral port (PORT=0); the chosen address is
//   in the line "Cognito Local running on http://127.0.0.1:<port>" on stdout.
// - Plain usernames (cognito-local's default pools use emails as usernames) unless
//   ./.cognito/config.json already exists.
// - One-time codes (SMS MFA, confirmations) are printed to stdout in a box ("Code: 123456"); set
//   CODE to make every code that value.
// - With EXIT_ON_STDIN_CLOSE=1 it exits when stdin closes, so it cannot outlive a test harness
//   that crashed before killing it.
'use strict';
const fs = require('node:fs');

fs.mkdirSync('.cognito', { recursive: true });
if (!fs.existsSync('.cognito/config.json')) {
  fs.writeFileSync('.cognito/config.json', JSON.stringify({ UserPoolDefaults: { UsernameAttributes: [] } }));
}
process.env.HOST = process.env.HOST || '127.0.0.1';
process.env.PORT = process.env.PORT || '0';

if (process.env.EXIT_ON_STDIN_CLOSE === '1') {
  const stop = () => process.exit(0);
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.on('error', stop);
  process.stdin.on('data', () => {});
  process.stdin.resume();
}

require('cognito-local/lib/bin/start.js');
