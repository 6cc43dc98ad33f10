// A person signing in, played by headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core; no browser download). Used by crates/tessera/tests/browser_login.rs.
//
//   node sign-in.mjs <authorization_url> <username> <password> [--deny] [--tamper-state] [--no-listener] [--totp CODE]
//
// Opens the authorization URL, fills whichever login form it finds -- oidc-provider's dev
// interaction (login + consent) or tessera's reference IdP (#username, #password, #totp,
// #sign-in / #deny) -- and exits 0 once the browser reached the redirect URI (taken from the
// authorization URL's `redirect_uri`). Prints one JSON line to stdout:
//   {"callback": "<the URL the browser was sent back to>", "message": "<text of the page's #message>"}
//
//   --deny          press the deny / cancel control instead of signing in
//   --tamper-state  rewrite the redirect's `state` before the browser follows it (a forged redirect)
//   --no-listener   nothing listens on the redirect URI (paste mode): the browser's last URL (an
//                   error page) is what a person would paste
//
// Loopback only: every request to another host than 127.0.0.1 is aborted. Bounded: at most
// 10 form steps and 60 s in all. Exit codes: 0 redirect reached, 1 anything else (details on stderr).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const TOTAL_TIMEOUT_MS = 60_000;
const MAX_STEPS = 10;

function fail(message) {
  console.error(`[sign-in] ${message}`);
  process.exit(1);
}

const args = process.argv.slice(2);
const flags = new Set(args.filter((a) => a.startsWith('--') && a !== '--totp'));
const totpAt = args.indexOf('--totp');
const totp = totpAt >= 0 ? args[totpAt + 1] : undefined;
const positional = args.filter((a, i) => !a.startsWith('--') && !(totpAt >= 0 && i === totpAt + 1));
const [authorizationUrl, username, password] = positional;
if (!authorizationUrl || username === undefined || password === undefined) {
  fail('usage: sign-in.mjs <authorization_url> <username> <password> [--deny] [--tamper-state] [--no-listener] [--totp CODE]');
}
for (const flag of flags) {
  if (!['--deny', '--tamper-state', '--no-listener'].includes(flag)) fail(`unknown option ${flag}`);
}

const redirectUri = new URL(authorizationUrl).searchParams.get('redirect_uri');
if (!redirectUri) fail('the authorization URL has no redirect_uri');
const redirect = new URL(redirectUri);
const isRedirect = (url) => {
  try {
    const u = new URL(url);
    return u.origin === redirect.origin && u.pathname === redirect.pathname;
  } catch {
    return false;
  }
};

const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(executablePath)) fail(`${executablePath} is missing: apt-get install -y chromium`);
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (error) {
  fail(`playwright-core is not installed: run \`npm ci\` in interop/browser (${error.message})`);
}

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-chromium-'));
const deadline = setTimeout(() => {
  console.error('[sign-in] gave up after 60 s');
  process.exit(1);
}, TOTAL_TIMEOUT_MS);

let context;
let exitCode = 1;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    timeout: 30_000,
  });
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(15_000);

  // The first navigation to the redirect URI, wherever it comes from (a redirect chain included).
  let callback;
  page.on('request', (request) => {
    if (!callback && request.isNavigationRequest() && isRedirect(request.url())) callback = request.url();
  });
  let tampered = false;
  await context.route('**/*', async (route) => {
    const url = route.request().url();
    if (new URL(url).hostname !== '127.0.0.1') {
      console.error(`[sign-in] blocked a request off loopback: ${new URL(url).origin}`);
      return route.abort();
    }
    if (!flags.has('--tamper-state') || tampered || isRedirect(url)) return route.continue();
    // Playwright does not route the hops of a redirect chain, so the chain is followed here (same
    // cookies: context.request shares the browser's jar) and the redirect to the redirect URI is
    // rewritten in the response that carries it, before the browser follows it.
    let response = await route.fetch({ maxRedirects: 0 });
    let at = url;
    for (let hop = 0; hop < 5; hop += 1) {
      const location = response.headers().location;
      if (!location) break;
      const target = new URL(location, at);
      if (isRedirect(target.toString())) {
        target.searchParams.set('state', `${target.searchParams.get('state') ?? ''}-forged`);
        tampered = true;
        return route.fulfill({ response, headers: { ...response.headers(), location: target.toString() } });
      }
      if (target.hostname !== '127.0.0.1') break;
      at = target.toString();
      response = await context.request.get(at, { maxRedirects: 0 });
    }
    return route.fulfill({ response });
  });

  await page.goto(authorizationUrl).catch((error) => {
    if (!callback) throw error; // a redirect straight back (an error) aborts goto: fine
  });

  for (let step = 0; step < MAX_STEPS && !callback; step += 1) {
    await page.waitForLoadState('load');
    if (callback) break;
    const deny = flags.has('--deny');
    if (await page.locator('#username').count()) {
      // tessera's reference IdP
      if (deny) {
        await Promise.all([page.waitForEvent('framenavigated'), page.click('#deny')]);
        continue;
      }
      await page.fill('#username', username);
      await page.fill('#password', password);
      if (totp !== undefined && await page.locator('#totp').count()) await page.fill('#totp', totp);
      await Promise.all([page.waitForEvent('framenavigated'), page.click('#sign-in')]);
    } else if (await page.locator('input[name="login"]').count()) {
      // oidc-provider's dev login
      if (deny) {
        await Promise.all([page.waitForEvent('framenavigated'), page.click('text=[ Cancel ]')]);
        continue;
      }
      await page.fill('input[name="login"]', username);
      await page.fill('input[name="password"]', password);
      await Promise.all([page.waitForEvent('framenavigated'), page.click('button[type="submit"]')]);
    } else if (await page.locator('input[name="prompt"][value="consent"]').count()) {
      // oidc-provider's consent
      if (deny) {
        await Promise.all([page.waitForEvent('framenavigated'), page.click('text=[ Cancel ]')]);
        continue;
      }
      await Promise.all([page.waitForEvent('framenavigated'), page.click('button[type="submit"]')]);
    } else {
      const text = (await page.content()).slice(0, 2000);
      throw new Error(`no known form at ${page.url().split('?')[0]}:\n${text}`);
    }
  }
  if (!callback) throw new Error(`the browser did not come back to ${redirect.origin}${redirect.pathname} in ${MAX_STEPS} steps`);

  // Let the redirect's page load (the listener's page; an error page without listener), then read it.
  let message = null;
  if (!flags.has('--no-listener')) {
    await page.waitForURL((url) => isRedirect(url.toString()), { timeout: 15_000 });
    await page.waitForLoadState('load');
    message = await page.locator('#message').textContent({ timeout: 5_000 });
  }
  process.stdout.write(`${JSON.stringify({ callback, message })}\n`);
  exitCode = 0;
} catch (error) {
  console.error(`[sign-in] ${error.stack || error}`);
} finally {
  clearTimeout(deadline);
  await context?.close().catch(() => {});
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(exitCode);
