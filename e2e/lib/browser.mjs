// Debian's Chromium, headless, in a fresh profile, with every request recorded.

import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

import { repoRoot } from './demo.mjs';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** A small phone: every page is checked (and photographed) at this width. */
export const VIEWPORT = { width: 375, height: 812 };
export const screenshotDir = join(repoRoot, 'e2e', 'screenshots');

// One directory per run; each journey gets a fresh Chromium profile inside it.
const runDir = mkdtempSync(join(tmpdir(), 'rocketgate-e2e-'));
process.once('exit', () => rmSync(runDir, { recursive: true, force: true }));

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** Whether a URL stays on this machine: host 127.0.0.1, or a scheme with no network. */
export function isLocal(url) {
  const u = new URL(url);
  if (['data:', 'about:', 'blob:'].includes(u.protocol)) return true;
  return u.hostname === '127.0.0.1';
}

/**
 * Launches Chromium with a fresh user-data dir. Returns { context, page, requests, offHost,
 * close() }: `requests` lists every URL the context asked for, `offHost` the ones that would
 * have left 127.0.0.1 (those are aborted, never sent).
 */
export async function openBrowser(label) {
  const userDataDir = mkdtempSync(join(runDir, `${label}-`));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: VIEWPORT,
    // rocketgate's pages forbid scripts by CSP (default-src 'none'); axe is injected as a
    // script, so the test context ignores CSP. The header itself is asserted separately.
    bypassCSP: true,
    serviceWorkers: 'block',
    timeout: 30_000,
  });
  context.setDefaultTimeout(10_000);
  context.setDefaultNavigationTimeout(15_000);
  const requests = [];
  const offHost = [];
  context.on('request', (r) => requests.push(r.url()));
  await context.route(
    (url) => !isLocal(url.href),
    (route) => {
      offHost.push(route.request().url());
      return route.abort('blockedbyclient');
    },
  );
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    requests,
    offHost,
    close: async () => {
      await context.close().catch(() => {});
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** Runs axe-core on the page; returns the violations (all impacts). */
export async function runAxe(page) {
  await page.addScriptTag({ content: axeSource });
  return page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.map((n) => n.target.join(' ')),
    }));
  });
}

/** Elements that stick out of the viewport horizontally (and the page's scroll width). */
export async function overflow(page) {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const offenders = [];
    for (const el of document.querySelectorAll('body, body *')) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      if (r.right > width + 0.5 || r.left < -0.5) {
        const cls = typeof el.className === 'string' && el.className ? `.${el.className.trim().split(/\s+/).join('.')}` : '';
        offenders.push(`${el.tagName.toLowerCase()}${cls} [${Math.round(r.left)}, ${Math.round(r.right)}]`);
      }
    }
    return { width, scrollWidth: document.documentElement.scrollWidth, offenders };
  });
}

/** A full-page PNG at e2e/screenshots/<name>.png. */
export async function screenshot(page, name) {
  mkdirSync(screenshotDir, { recursive: true });
  const path = join(screenshotDir, `${name}.png`);
  await page.screenshot({ path, fullPage: true, animations: 'disabled' });
  return path;
}
