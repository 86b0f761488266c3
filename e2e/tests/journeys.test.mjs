// The sign-in journey through `rocketgate demo`, in headless Chromium.
//
// Three demos run side by side, each on its own kernel-chosen 127.0.0.1 port:
//   main     default tokens (1 h): login, deny, sign-out, error page, two tabs, WebSocket
//   short    --token-lifetime 20s: refresh while clicking, revocation
//   signin   --sign-in-page: rocketgate's own sign-in page before the stand-in
// Every journey gets a fresh Chromium profile; every request it makes is recorded and any
// that would leave 127.0.0.1 is refused and fails the journey.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { fetchWithin, logDir, startDemo, waitFor } from '../lib/demo.mjs';
import { VIEWPORT, isLocal, openBrowser, overflow, runAxe, screenshot } from '../lib/browser.mjs';

/** A deep link with a query string, without encoded whitespace (see README, Browser tests). */
const DEEP_LINK = '/reports/2025/q3?tab=summary&sort=-date&ids=7,8&q=caf%C3%A9';
const USERS = {
  ada: { id: '1001', username: 'ada', email: 'ada@example.com' },
  grace: { id: '1002', username: 'grace', email: 'grace@example.org' },
};

const demos = {};
const suiteStart = Date.now();
const figures = { pagesChecked: [], axe: {}, requests: 0, offHost: 0 };

before(async () => {
  const started = await Promise.allSettled([
    startDemo('main'),
    startDemo('short', ['--token-lifetime', '20s']),
    startDemo('signin', ['--sign-in-page']),
  ]);
  // Keep whatever did start, so after() stops it, then report the first failure.
  for (const s of started) if (s.status === 'fulfilled') demos[s.value.name] = s.value;
  const failure = started.find((s) => s.status === 'rejected');
  if (failure) throw failure.reason;
});

after(async () => {
  await Promise.all(Object.values(demos).map((d) => d.stop()));
  figures.seconds = Math.round((Date.now() - suiteStart) / 100) / 10;
  try {
    writeFileSync(join(logDir, 'figures.json'), `${JSON.stringify(figures, null, 2)}\n`);
  } catch {
    // the figures are a convenience; the test results stand without them
  }
});

/**
 * Runs `body` with a fresh browser; afterwards asserts that nothing it asked for left
 * 127.0.0.1, and closes it whatever happened.
 */
async function journey(label, body) {
  const b = await openBrowser(label);
  try {
    await body(b);
    figures.requests += b.requests.length;
    figures.offHost += b.offHost.length;
    assert.deepEqual(b.offHost, [], 'requests that tried to leave 127.0.0.1');
    assert.deepEqual(b.requests.filter((u) => !isLocal(u)), [], 'requests not to 127.0.0.1');
    assert.ok(b.requests.length > 0, 'the request recorder saw nothing');
  } finally {
    await b.close();
  }
}

/** Main-frame navigation responses of `page`, in order: status, URL and headers. */
function documents(page) {
  const log = [];
  page.on('response', (r) => {
    const req = r.request();
    if (req.isNavigationRequest() && req.frame() === page.mainFrame()) {
      log.push({ url: r.url(), status: r.status(), headers: r.headers() });
    }
  });
  return log;
}

/** The last committed document response for the page's current URL. */
function current(docs, page) {
  const doc = [...docs].reverse().find((d) => d.url === page.url());
  assert.ok(doc, `no document response recorded for ${page.url()}`);
  return doc;
}

async function expectConsent(page, demo) {
  await page.waitForURL((u) => u.origin === demo.standin && u.pathname === '/oauth/authorize', {
    waitUntil: 'load',
  });
  await assert.doesNotReject(
    page.getByRole('heading', { name: /Sign in to continue to/ }).waitFor(),
    'the stand-in consent page shows its heading',
  );
  assert.equal(await page.getByRole('button', { name: 'Approve' }).count(), 1);
  assert.equal(await page.getByRole('button', { name: 'Deny' }).count(), 1);
}

/** On the consent page: picks `user` and approves; waits until the browser is back at the proxy. */
async function approve(page, demo, user = USERS.ada) {
  await page.check(`#user-${user.id}`);
  await Promise.all([
    page.waitForURL((u) => u.origin === demo.proxy, { waitUntil: 'load' }),
    page.getByRole('button', { name: 'Approve' }).click(),
  ]);
}

/** The demo app's page at exactly `demo.proxy + path`, showing `user` as the identity. */
async function expectSignedIn(page, demo, path, user = USERS.ada) {
  assert.equal(page.url(), demo.proxy + path, 'landed on the exact deep link');
  assert.equal(
    await page.getByRole('heading', { level: 1 }).innerText(),
    `Signed in as ${user.username}`,
  );
  const text = await page.locator('main').innerText();
  assert.ok(text.includes(`GET ${path}`), `the app received GET ${path}`);
  assert.ok(text.includes(user.email), `the app received the email ${user.email}`);
}

/** Signs in from scratch at `path`; returns when the app page shows the identity. */
async function signIn(page, demo, path, user = USERS.ada) {
  await page.goto(demo.proxy + path);
  await expectConsent(page, demo);
  await approve(page, demo, user);
  await expectSignedIn(page, demo, path, user);
}

/**
 * The checks every page gets: screenshot, no serious/critical axe violation, nothing wider
 * than 375 px. rocketgate's own pages also must carry their strict CSP.
 */
async function checkPage(page, name, { doc, rocketgate }) {
  await screenshot(page, name);
  if (rocketgate) {
    assert.match(doc.headers['content-security-policy'] ?? '', /default-src 'none'/, `${name}: CSP`);
  }
  const violations = await runAxe(page);
  figures.axe[name] = violations.map((v) => `${v.impact}: ${v.id}`);
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `${name}: serious or critical axe violations`);
  const o = await overflow(page);
  assert.equal(o.width, VIEWPORT.width, `${name}: viewport width`);
  assert.ok(o.scrollWidth <= VIEWPORT.width, `${name}: page is ${o.scrollWidth} px wide`);
  assert.deepEqual(o.offenders, [], `${name}: elements wider than the viewport`);
  figures.pagesChecked.push(name);
}

function sessionCookies(cookies) {
  return cookies.filter((c) => c.name.startsWith('_rocketgate') && !c.name.includes('_csrf_'));
}

describe('sign-in journeys in headless Chromium', { timeout: 150_000 }, () => {
  test('the harness refuses and reports any request that would leave 127.0.0.1', async () => {
    // Proves the "no request leaves 127.0.0.1" checks below are not vacuous. 192.0.2.1 is
    // TEST-NET-1; the request is aborted inside the browser before anything is sent.
    const b = await openBrowser('guard');
    try {
      await b.page.goto(`${demos.main.proxy}/ping`);
      await b.page.evaluate(() => fetch('http://192.0.2.1/beacon').catch(() => 'refused'));
      assert.deepEqual(b.offHost, ['http://192.0.2.1/beacon']);
      assert.ok(b.requests.includes('http://192.0.2.1/beacon'));
    } finally {
      await b.close();
    }
  });

  test('a protected deep link goes through the consent page and back to the exact link', async () => {
    const demo = demos.main;
    await journey('deep-link', async ({ page }) => {
      const docs = documents(page);
      await page.goto(demo.proxy + DEEP_LINK);
      await expectConsent(page, demo);
      assert.equal(docs[0].status, 302, 'the proxy redirected the navigation');
      await checkPage(page, 'consent', { doc: current(docs, page), rocketgate: false });
      await approve(page, demo);
      await expectSignedIn(page, demo, DEEP_LINK);
      await checkPage(page, 'demo', { doc: current(docs, page), rocketgate: false });
    });
  });

  test('deny shows the denied page, whose "Try again" starts a new login', async () => {
    const demo = demos.main;
    await journey('deny', async ({ page }) => {
      const docs = documents(page);
      await page.goto(demo.proxy + DEEP_LINK);
      await expectConsent(page, demo);
      await Promise.all([
        page.waitForURL((u) => u.origin === demo.proxy, { waitUntil: 'load' }),
        page.getByRole('button', { name: 'Deny' }).click(),
      ]);
      const denied = current(docs, page);
      assert.equal(new URL(page.url()).pathname, '/oauth2/callback');
      assert.equal(denied.status, 403);
      assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), 'Sign-in cancelled');
      const retry = page.getByRole('link', { name: 'Try again' });
      assert.equal(
        await retry.getAttribute('href'),
        `/oauth2/start?rd=${encodeURIComponent(DEEP_LINK)}`,
        'Try again returns to the deep link',
      );
      await checkPage(page, 'denied', { doc: denied, rocketgate: true });
      await retry.click();
      await expectConsent(page, demo);
      await approve(page, demo);
      await expectSignedIn(page, demo, DEEP_LINK);
    });
  });

  test('after signing out, the next visit asks to sign in again', async () => {
    const demo = demos.main;
    await journey('sign-out', async ({ context, page }) => {
      await signIn(page, demo, '/account?tab=profile');
      assert.equal(sessionCookies(await context.cookies()).length, 1, 'a session cookie is set');
      await page.getByRole('link', { name: 'Sign out' }).click();
      // sign_out redirects to "/", which is protected: straight back to the stand-in.
      await expectConsent(page, demo);
      assert.deepEqual(sessionCookies(await context.cookies()), [], 'the session cookie is gone');
      await page.goto(`${demo.proxy}/account?tab=billing`);
      await expectConsent(page, demo);
      // The browser sits on the stand-in's origin now, so ask from Node with its cookies.
      const cookie = (await context.cookies(demo.proxy)).map((c) => `${c.name}=${c.value}`).join('; ');
      const r = await fetchWithin(`${demo.proxy}/oauth2/userinfo`, { headers: { cookie } });
      assert.equal(r.status, 401, 'userinfo after sign-out');
    });
  });

  test('a bad callback shows the error page, whose link starts a new login', async () => {
    const demo = demos.main;
    await journey('error', async ({ page }) => {
      const response = await page.goto(`${demo.proxy}/oauth2/callback?state=bogus&code=x`);
      assert.equal(response.status(), 403);
      assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), 'Sign-in expired');
      await checkPage(page, 'error', { doc: { headers: await response.allHeaders() }, rocketgate: true });
      await page.getByRole('link', { name: 'Sign in again' }).click();
      await expectConsent(page, demo);
    });
  });

  test('the opt-in sign-in page leads through the consent page to the deep link', async () => {
    const demo = demos.signin;
    await journey('sign-in-page', async ({ page }) => {
      const response = await page.goto(demo.proxy + DEEP_LINK);
      assert.equal(response.status(), 401);
      assert.equal(page.url(), demo.proxy + DEEP_LINK, 'no redirect before the sign-in page');
      assert.match(await page.getByRole('heading', { level: 1 }).innerText(), /^Sign in to /);
      await checkPage(page, 'sign-in', { doc: { headers: await response.allHeaders() }, rocketgate: true });
      await page.getByRole('link', { name: 'Sign in with Rocketpunch' }).click();
      await expectConsent(page, demo);
      await approve(page, demo);
      await expectSignedIn(page, demo, DEEP_LINK);
    });
  });

  test(
    'a deep link whose query has an encoded space survives the sign-in page',
    async () => {
      const demo = demos.signin;
      const link = '/search?q=rocket%20gate';
      await journey('space-in-query', async ({ page }) => {
        await page.goto(demo.proxy + link);
        await page.getByRole('link', { name: 'Sign in with Rocketpunch' }).click();
        await expectConsent(page, demo);
        await approve(page, demo);
        await expectSignedIn(page, demo, link);
      });
    },
  );

  test('two tabs start a login at the same time and both end signed in', async () => {
    const demo = demos.main;
    await journey('two-tabs', async ({ context, page }) => {
      const before = await demo.stats();
      const tabs = [
        { page, path: '/tab/one?n=1' },
        { page: await context.newPage(), path: '/tab/two?n=2' },
      ];
      await Promise.all(tabs.map((t) => t.page.goto(demo.proxy + t.path)));
      await Promise.all(tabs.map((t) => expectConsent(t.page, demo)));
      const states = tabs.map((t) => new URL(t.page.url()).searchParams.get('state'));
      assert.notEqual(states[0], states[1], 'each tab has a login of its own');
      await Promise.all(tabs.map((t) => approve(t.page, demo)));
      for (const t of tabs) await expectSignedIn(t.page, demo, t.path);
      // Both tabs keep working with the one session cookie the browser ended up with.
      await Promise.all(tabs.map((t) => t.page.reload()));
      for (const t of tabs) await expectSignedIn(t.page, demo, t.path);
      const after = await demo.stats();
      assert.equal(after.authorization_code_grants - before.authorization_code_grants, 2);
    });
  });

  test('a WebSocket opened by the page works through the proxy', async () => {
    const demo = demos.main;
    await journey('websocket', async ({ context, page }) => {
      await signIn(page, demo, '/chat?room=1');
      const sockets = [];
      page.on('websocket', (ws) => sockets.push(ws.url()));
      const talk = (message) =>
        page.evaluate(
          (message) =>
            new Promise((resolve) => {
              const ws = new WebSocket(`ws://${location.host}/_upstream/ws`);
              const done = (result) => {
                clearTimeout(timer);
                ws.close();
                resolve(result);
              };
              const timer = setTimeout(() => done({ error: 'timeout' }), 5000);
              ws.onopen = () => ws.send(message);
              ws.onmessage = (e) => done({ echo: e.data });
              ws.onerror = () => done({ error: 'error' });
              ws.onclose = (e) => done({ error: `closed ${e.code}` });
            }),
          message,
        );
      assert.deepEqual(await talk('hello through rocketgate'), { echo: 'hello through rocketgate' });
      assert.deepEqual(sockets, [`ws://${demo.proxy.slice('http://'.length)}/_upstream/ws`]);
      // Without the session cookie the proxy refuses the upgrade.
      await context.clearCookies();
      const refused = await talk('nobody home');
      assert.ok(refused.error, `an unauthenticated WebSocket is refused (${JSON.stringify(refused)})`);
    });
  });

  test('the session is refreshed while the user keeps clicking: no redirect, one token call', async () => {
    const demo = demos.short;
    await journey('refresh', async ({ context, page }) => {
      await signIn(page, demo, '/work/step-0?click=0');
      const loggedIn = Date.now();
      const base = await demo.stats();
      const cookieAtLogin = sessionCookies(await context.cookies())[0]?.value;
      const docs = documents(page);
      const navigations = [];
      page.on('framenavigated', (f) => {
        if (f === page.mainFrame()) navigations.push(f.url());
      });
      // 20 s tokens: the refresh window opens after 10 s. Click on for 15 s.
      let clicks = 0;
      while (Date.now() - loggedIn < 15_000) {
        clicks += 1;
        const path = `/work/step-${clicks}?click=${clicks}`;
        await page.evaluate((href) => {
          const a = document.createElement('a');
          a.href = href;
          a.id = 'next';
          a.textContent = 'Next step';
          document.querySelector('main').append(a);
        }, path);
        await Promise.all([page.waitForURL((u) => u.href === demo.proxy + path, { waitUntil: 'load' }), page.click('#next')]);
        await expectSignedIn(page, demo, path);
        await new Promise((r) => setTimeout(r, 300));
      }
      const after = await demo.stats();
      assert.ok(clicks >= 10, `kept clicking (${clicks} clicks)`);
      assert.deepEqual(
        navigations.filter((u) => !u.startsWith(`${demo.proxy}/work/`)),
        [],
        'never left the app (no trip to the stand-in)',
      );
      assert.deepEqual(
        docs.filter((d) => d.status !== 200).map((d) => `${d.status} ${d.url}`),
        [],
        'every click answered 200, no redirect',
      );
      assert.equal(after.refresh_token_grants - base.refresh_token_grants, 1, 'one refresh grant');
      assert.equal(after.token_calls - base.token_calls, 1, 'exactly one token call');
      assert.equal(after.authorization_code_grants, base.authorization_code_grants, 'no new login');
      const cookieNow = sessionCookies(await context.cookies())[0]?.value;
      assert.ok(cookieNow && cookieNow !== cookieAtLogin, 'the refreshed session cookie reached the browser');
    });
  });

  test('after the session is revoked, fetch() from the page gets 401 JSON, not a redirect', async () => {
    const demo = demos.short;
    await journey('revoke', async ({ page }) => {
      await signIn(page, demo, '/inbox?folder=all', USERS.grace);
      const base = await demo.stats();
      await demo.revoke(USERS.grace.id);
      const revokedAt = Date.now();
      // A plain fetch(): Accept */*, same-origin credentials, redirects followed.
      const call = () =>
        page.evaluate(async () => {
          const r = await fetch('/api/messages?since=0');
          return {
            status: r.status,
            type: r.headers.get('content-type'),
            redirected: r.redirected,
            url: r.url,
            body: await r.text(),
          };
        });
      // The access token stays valid until the refresh window opens (10 s after login); the
      // refresh is then refused, since the refresh token was revoked.
      const answer = await waitFor('a fetch() that is no longer 200', async () => {
        const r = await call();
        return r.status !== 200 && r;
      }, { timeoutMs: 25_000, intervalMs: 500 });
      assert.equal(answer.status, 401, JSON.stringify(answer));
      assert.equal(answer.redirected, false);
      assert.equal(answer.url, `${demo.proxy}/api/messages?since=0`);
      assert.match(answer.type ?? '', /^application\/json/);
      assert.equal(JSON.parse(answer.body).error, 'unauthorized');
      assert.ok(Date.now() - revokedAt < 25_000);
      const after = await demo.stats();
      assert.ok(after.refresh_token_grants > base.refresh_token_grants, 'a refresh was tried and refused');
      // A navigation now goes back to sign-in.
      await page.goto(`${demo.proxy}/inbox?folder=all`);
      await expectConsent(page, demo);
    });
  });
});
