// End-to-end browser test of the remit web UI.
//
//   REMIT_URL=http://127.0.0.1:40123 REMIT_SENDER_TOKEN=… REMIT_AGENT_TOKEN=… REMIT_ADMIN_TOKEN=… \
//   REMIT_RECIPIENT_TOKEN=… REMIT_FAIL_ACCOUNT=… REMIT_STUCK_PAYOUT=po_… REMIT_FLAGGED_DEPOSIT=pi_… \
//   REMIT_EURO_DEPOSIT=pi_… REMIT_REFUNDED_DEPOSIT=pi_… REMIT_REFUNDED_ESCROW=esc_… \
//   REMIT_RETURNED_DEPOSIT=pi_… REMIT_RETURNED_ESCROW=esc_… \
//   REMIT_IDLE_URL=http://127.0.0.1:40124 REMIT_IDLE_TOKEN=… REMIT_IDLE_S=3 \
//   [REMIT_FLOAT='{"alertKesCents":…,"updatedAt":"…","accounts":[{"name":…,"cents":…}]}'] \
//   [REMIT_SCREENSHOT_DIR=dir] [REMIT_DOCS_SCREENSHOTS=docs/screenshots] [CHROMIUM=/usr/bin/chromium] node flow.mjs
//
// The main server runs the payout simulator (its receipts are marked Simulated); REMIT_STUCK_PAYOUT
// is a payout it never got an answer for, REMIT_FLAGGED_DEPOSIT the reference of a Stripe deposit
// it could not apply, REMIT_EURO_DEPOSIT one paid in euros (flagged for its currency),
// REMIT_REFUNDED_DEPOSIT a card deposit Stripe refunded after it was applied to the escrow
// REMIT_REFUNDED_ESCROW (flagged, its money held until an admin clears the flag),
// REMIT_RETURNED_ESCROW an escrow funded by card (USD 30.00, REMIT_RETURNED_DEPOSIT), cancelled,
// then refunded. The idle
// server signs the UI out after REMIT_IDLE_S seconds without input.
// REMIT_FLOAT: the M-Pesa balances the server has recorded and its float alert, which the admin
// overview must show (without it: no balances recorded, no alert). REMIT_DOCS_SCREENSHOTS: also
// write the README's screenshots there.
//
// Drives Debian's Chromium through playwright-core (no browser download). Each role has its own
// browser context, so its own sessionStorage and language. Every screen is checked at 1366×768,
// 390×844 and 360×740: no horizontal scrolling, nothing wider than the screen, touch targets of
// at least 44 px on phones. Every wait is bounded; the whole flow is capped at FLOW_LIMIT_MS.
// Exit 0 on success; on failure prints what failed, saves failure.png, exits 1.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const FLOW_LIMIT_MS = 150_000;
const STEP_TIMEOUT_MS = 15_000;
const PAYOUT_TIMEOUT_MS = 15_000;
const here = path.dirname(fileURLToPath(import.meta.url));

function env(name, fallback) {
  const v = process.env[name];
  if (v !== undefined && v !== '') return v;
  if (fallback !== undefined) return fallback;
  console.error(`FAIL: environment variable ${name} is not set`);
  process.exit(1);
  return undefined;
}

const BASE = env('REMIT_URL').replace(/\/+$/, '');
const TOKENS = {
  sender: env('REMIT_SENDER_TOKEN'),
  agent: env('REMIT_AGENT_TOKEN'),
  admin: env('REMIT_ADMIN_TOKEN'),
  recipient: env('REMIT_RECIPIENT_TOKEN'),
};
const FAIL_ACCOUNT = env('REMIT_FAIL_ACCOUNT');
const STUCK_PAYOUT = env('REMIT_STUCK_PAYOUT');
const FLAGGED_DEPOSIT = env('REMIT_FLAGGED_DEPOSIT');
// A card payment in euros, flagged for its currency.
const EURO_DEPOSIT = env('REMIT_EURO_DEPOSIT');
// A card deposit Stripe refunded, and its escrow, flagged until an admin clears the flag.
const REFUNDED_DEPOSIT = env('REMIT_REFUNDED_DEPOSIT');
const REFUNDED_ESCROW = env('REMIT_REFUNDED_ESCROW');
const RETURNED_ESCROW = env('REMIT_RETURNED_ESCROW');
const RETURNED_DEPOSIT = env('REMIT_RETURNED_DEPOSIT');
const IDLE_URL = env('REMIT_IDLE_URL').replace(/\/+$/, '');
const IDLE_TOKEN = env('REMIT_IDLE_TOKEN');
const IDLE_S = Number(env('REMIT_IDLE_S'));
const HELD_URL = env('REMIT_HELD_URL').replace(/\/+$/, '');
const HELD_ADMIN_TOKEN = env('REMIT_HELD_ADMIN_TOKEN');
const HELD_PAYOUT = env('REMIT_HELD_PAYOUT');
const FLOAT = JSON.parse(env('REMIT_FLOAT', '{"alertKesCents":0,"updatedAt":null,"accounts":[]}'));
const SHOTS = path.resolve(env('REMIT_SCREENSHOT_DIR', path.join(here, '..', '..', 'test-output', 'browser')));
const DOCS = process.env.REMIT_DOCS_SCREENSHOTS ? path.resolve(process.env.REMIT_DOCS_SCREENSHOTS) : null;
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const PAYBILL = '888880';
const RECIPIENT_PHONE = '0712345678';
const DESKTOP = { width: 1366, height: 768 };
const PHONES = [{ width: 390, height: 844 }, { width: 360, height: 740 }];
const TOUCH_MIN_PX = 44;
const DEMO_BANNER = 'Demo mode: payouts are simulated — no real money moves.';

const started = Date.now();
let currentStep = 'start';
let currentPage = null;
let browser = null;
let tmpBase = null;
const pages = {};
const pageErrors = [];
let screensChecked = 0;

function log(msg) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${msg}`);
}

class FlowError extends Error {}
function assert(cond, message) {
  if (!cond) throw new FlowError(message);
}

// Polls fn until it returns a truthy value; fails with describe() after timeoutMs.
async function waitFor(describe, fn, timeoutMs = STEP_TIMEOUT_MS, everyMs = 150) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const extra = last instanceof Error ? ` (${last.message.split('\n')[0]})` : '';
      throw new FlowError(`timed out after ${timeoutMs / 1000} s ${typeof describe === 'function' ? await describe() : describe}${extra}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function step(name, fn) {
  currentStep = name;
  log(name);
  await fn();
}

async function shot(page, name, { docs = null, fullPage = true } = {}) {
  await page.screenshot({ path: path.join(SHOTS, name), fullPage, timeout: STEP_TIMEOUT_MS });
  log(`  screenshot ${name}`);
  if (docs && DOCS) {
    await page.screenshot({ path: path.join(DOCS, docs), fullPage, timeout: STEP_TIMEOUT_MS });
    log(`  README screenshot ${docs}`);
  }
}

const tid = (id) => `[data-testid="${id}"]`;
const text = async (locator) => (await locator.first().textContent({ timeout: 2000 }) || '').replace(/\s+/g, ' ').trim();

// A rate of KES per USD × 10⁴ as the API takes it: `152.2500`.
function formatE4(e4) {
  return `${Math.floor(e4 / 10000)}.${String(e4 % 10000).padStart(4, '0')}`;
}

function moneyText(currency, cents) {
  const abs = Math.abs(cents);
  const minor = abs % 100;
  const major = (abs - minor) / 100;
  return `${currency} ${cents < 0 ? '-' : ''}${String(major).replace(/\B(?=(\d{3})+(?!\d))/g, ',')}.${String(minor).padStart(2, '0')}`;
}
const usdText = (cents) => moneyText('USD', cents);
const kesText = (cents) => moneyText('KES', cents);

// The M-Pesa accounts that pay payouts: what the overview says each pays, and what fails when it
// runs low.
const PAYING_ACCOUNTS = {
  'Utility Account': ['pays phone payouts', 'phone payouts'],
  'Working Account': ['pays PayBills and Tills', 'PayBill and Till payouts'],
};
const GATEWAY_NOTES = {
  simulator: 'Payouts are simulated: no real M-Pesa float.',
  none: 'No gateway: payouts stay queued.',
};

async function api(token, method, p, body, headers = {}) {
  const res = await fetch(BASE + p, {
    method,
    headers: { Authorization: `Bearer ${token}`, Accept: 'application/json', 'Content-Type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => null);
  assert(res.ok, `${method} ${p} answered ${res.status}: ${data && data.error}`);
  return data;
}

// ---- layout checks

async function settle(page) {
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

// What sticks out of the viewport, and (on phones) controls smaller than a finger; and words
// that betray a bug (`null`, `undefined`) unless the page documents them (the API reference).
async function layoutProblems(page, touch, junkWords = true) {
  return page.evaluate(([touchMin, checkTouch, checkJunk]) => {
    const vw = document.documentElement.clientWidth;
    const problems = [];
    const scroller = document.scrollingElement;
    if (scroller.scrollWidth > scroller.clientWidth) problems.push(`the page scrolls sideways (${scroller.scrollWidth} px in ${scroller.clientWidth} px)`);
    const shown = document.body.innerText;
    const junk = checkJunk ? /\b(null|undefined|NaN)\b|(\[object Object\])/.exec(shown) : /(\[object Object\])/.exec(shown);
    if (junk) problems.push(`the page shows "${junk[1] || junk[2]}": …${shown.slice(Math.max(0, junk.index - 40), junk.index + 20).replace(/\s+/g, ' ')}…`);
    const name = (n) => `${n.tagName.toLowerCase()}${n.dataset.testid ? `[${n.dataset.testid}]` : ''}${n.className && typeof n.className === 'string' ? `.${n.className.trim().split(/\s+/).join('.')}` : ''}`;
    for (const n of document.body.querySelectorAll('*')) {
      const r = n.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) continue;
      if (n.closest('.visually-hidden, .skip-link')) continue;
      if (r.left < -1 || r.right > vw + 1) problems.push(`${name(n)} spans ${Math.round(r.left)}–${Math.round(r.right)} px of ${vw}`);
      if (problems.length > 6) break;
    }
    if (checkTouch) {
      const targets = document.querySelectorAll('button, a[href]:not(.skip-link), .lang-button, select, label.radio, input:not([type="radio"]):not([type="checkbox"]):not([type="hidden"])');
      for (const n of targets) {
        const r = n.getBoundingClientRect();
        if (r.width === 0 || r.height === 0) continue;
        if (r.height < touchMin - 0.5) problems.push(`${name(n)} "${(n.textContent || '').trim().slice(0, 30)}" is ${r.height.toFixed(1)} px tall (under ${touchMin})`);
        if (problems.length > 12) break;
      }
      // A button of short words keeps each word on one line (Dismiss and Sign out, squeezed
      // by a long message or a long name beside them, broke into single letters).
      for (const b of document.querySelectorAll('button')) {
        const label = (b.innerText || '').trim();
        const words = label.split(/\s+/).filter(Boolean);
        if (!words.length || words.some((w) => w.length > 12) || b.getClientRects().length === 0) continue;
        const range = document.createRange();
        range.selectNodeContents(b);
        const lines = new Set([...range.getClientRects()].filter((q) => q.width > 0).map((q) => Math.round(q.bottom)));
        if (lines.size > words.length) problems.push(`${name(b)} "${label.slice(0, 30)}" breaks inside a word (${lines.size} lines for ${words.length} words)`);
        if (problems.length > 12) break;
      }
    }
    return problems;
  }, [TOUCH_MIN_PX, touch, junkWords]);
}

// The screen as it is now, at 1366×768 and on two phones; back to 1366×768 afterwards.
async function checkScreen(page, label, { junkWords = true } = {}) {
  // Headings in order, none skipped (h1 then h3 leaves a reader moving by headings lost).
  const skips = await page.evaluate(() => {
    const shown = [...document.querySelectorAll('#app h1, #app h2, #app h3, #app h4, #app h5, #app h6')]
      .filter((h) => h.getClientRects().length > 0 || h.classList.contains('visually-hidden'));
    const out = [];
    let last = 0;
    for (const h of shown) {
      const level = Number(h.tagName[1]);
      if (level > last + 1) out.push(`${h.tagName} "${h.textContent.trim().slice(0, 40)}" after ${last ? `h${last}` : 'no heading'}`);
      last = level;
    }
    return out;
  });
  assert(skips.length === 0, `${label}: headings skip a level: ${skips.join('; ')}`);
  for (const size of [DESKTOP, ...PHONES]) {
    await page.setViewportSize(size);
    await settle(page);
    const problems = await layoutProblems(page, size.width < 600, junkWords);
    assert(problems.length === 0, `${label} at ${size.width}×${size.height}: ${problems.join('; ')}`);
  }
  await page.setViewportSize(DESKTOP);
  await settle(page);
  screensChecked += 1;
}

// ---- roles

async function newPage(role, base = BASE) {
  const context = await browser.newContext({ viewport: DESKTOP, baseURL: base });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on('pageerror', (err) => pageErrors.push(`${role}: ${err.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) pageErrors.push(`${role}: ${m.text()}`);
  });
  await page.goto(`${base}/`, { waitUntil: 'domcontentloaded' });
  await page.locator(tid('token-input')).waitFor();
  return page;
}

async function signIn(page, role, token) {
  await page.locator(tid('token-input')).fill(token);
  await page.locator(tid('signin-submit')).click();
  await waitFor(async () => `for ${role} to be signed in (sign-in form says: "${await text(page.locator('#signin .form-error')).catch(() => '')}")`,
    async () => page.locator(tid('whoami')).isVisible());
  assert(await page.locator(tid('token-input')).inputValue() === '', 'the token stays in the sign-in field after signing in');
}

async function openAs(role) {
  const page = await newPage(role);
  pages[role] = page;
  currentPage = page;
  if (role === 'sender') {
    // What cannot be a token (not ASCII) is said to be no token, not "could not reach the
    // server" (the browser refused to send it).
    await page.locator(tid('token-input')).fill('rmt_\u00e9\u00e8');
    await page.locator(tid('signin-submit')).click();
    const said = await text(page.locator(`${tid('token-input')} ~ .field-error`));
    assert(said.startsWith('That token was not accepted.'), `a token that is not ASCII is refused with "${said}"`);
    // One the server refuses is said at the field too, the field marked.
    await page.locator(tid('token-input')).fill('rmt_notatokenofanyone');
    await page.locator(tid('signin-submit')).click();
    await page.locator(`${tid('token-input')}[aria-invalid="true"] ~ .field-error`).waitFor();
    const refused = await text(page.locator(`${tid('token-input')} ~ .field-error`));
    assert(refused.startsWith('That token was not accepted.'), `a token the server refuses is said as "${refused}"`);
  }
  // The recipient pastes the token as the API's examples write the header's value, with its
  // word `Bearer`: it is the token after it. The sender's comes from a chat, in curly quotes
  // with its word and spaces, a visible and an invisible one, inside them: none is part of it.
  const pasted = { recipient: `Bearer ${TOKENS[role]}`, sender: `\u201c Bearer ${TOKENS[role]}\u00a0\u200b\u201d` }[role];
  await signIn(page, role, pasted || TOKENS[role]);
  const banner = page.locator(tid('demo-banner'));
  assert(await banner.isVisible(), `the ${role} sees no demo-mode banner with the simulator paying`);
  assert(await text(banner) === DEMO_BANNER, `the demo banner says "${await text(banner)}"`);
  return page;
}

async function nav(page, name) {
  await page.locator(tid(`nav-${name}`)).click();
  await page.waitForFunction((n) => {
    const app = document.getElementById('app');
    return app && app.dataset.view === n && !app.querySelector('[data-testid$="summary"], [data-testid="pending-count"]')?.textContent.endsWith('…');
  }, name);
}

function escrowCard(page, escrowId, within = '') {
  return page.locator(`${within} [data-testid="escrow-card"][data-escrow-id="${escrowId}"]`.trim());
}

async function fillRequest(page, { category, amountKes, merchantName, reference }) {
  const form = page.locator(tid('request-form'));
  await form.locator(tid('request-category')).selectOption(category);
  await form.locator(tid('request-amount')).fill(String(amountKes));
  await form.locator(tid('merchant-name')).fill(merchantName);
  // The server's 200 characters are held by the field, not only said after a round trip.
  const most = await form.locator(tid('merchant-name')).getAttribute('maxlength');
  assert(most === '200', `the merchant's name takes at most ${most} characters`);
  await form.locator(tid('merchant-type-paybill')).check();
  await form.locator(tid('merchant-number')).fill(PAYBILL);
  await form.locator(tid('merchant-reference')).fill(reference);
}

async function submitRequest(page) {
  const before = new Set(await page.locator(`${tid('trackers')} ${tid('tracker')}`).evaluateAll((ns) => ns.map((n) => n.dataset.requestId)));
  await page.locator(tid('submit-request')).click();
  return waitFor(async () => `for the new request to appear under "Sent from this screen"; form error: "${await text(page.locator(`${tid('request-form')} .form-error:not([hidden]), ${tid('request-form')} .field-error`)).catch(() => '')}"`,
    async () => {
      const ids = await page.locator(`${tid('trackers')} ${tid('tracker')}`).evaluateAll((ns) => ns.map((n) => n.dataset.requestId));
      return ids.find((id) => !before.has(id));
    });
}

async function trackerStatus(page, requestId, within) {
  const t = page.locator(`${within} [data-testid="tracker"][data-request-id="${requestId}"]`);
  return (await t.count()) ? t.getAttribute('data-status') : null;
}

const WORDS = {
  pending_approval: 'Waiting for approval',
  paid: 'Paid',
  failed: 'Payment failed — money returned',
  rejected: 'Rejected',
  pending_deposit: 'Waiting for the deposit',
  active: 'Active',
};

async function waitTrackerFinal(page, requestId, within, want) {
  const status = await waitFor(async () => `for request ${requestId} to end ${want} (it is ${await trackerStatus(page, requestId, within)})`,
    async () => {
      const s = await trackerStatus(page, requestId, within);
      return s && ['paid', 'failed', 'rejected', 'cancelled'].includes(s) ? s : null;
    }, PAYOUT_TIMEOUT_MS, 200);
  assert(status === want, `request ${requestId} ended ${status}, expected ${want}`);
  const t = page.locator(`${within} [data-testid="tracker"][data-request-id="${requestId}"]`);
  const badge = t.locator(tid('request-status'));
  assert(await badge.getAttribute('data-status') === want, `the tracker's status badge is not ${want}`);
  assert(await text(badge) === WORDS[want], `the tracker's status says "${await text(badge)}", expected "${WORDS[want]}"`);
  return t;
}

async function pendingCard(page, requestId) {
  await nav(page, 'approvals');
  const card = page.locator(`${tid('pending-list')} [data-testid="request-card"][data-request-id="${requestId}"]`);
  await waitFor(`for request ${requestId} to show among the sender's pending approvals`, async () => {
    if (await card.count()) return true;
    await page.locator(tid('refresh')).click().catch(() => {});
    return false;
  }, STEP_TIMEOUT_MS, 700);
  assert(await text(card.locator(tid('request-status'))) === WORDS.pending_approval, 'the pending card does not say "Waiting for approval"');
  return card;
}

// The print view: navigation, banners and the rest of the screen hidden; the receipt and what
// it must show visible.
async function checkPrint(page, receipt, mustShow) {
  await page.emulateMedia({ media: 'print' });
  try {
    for (const hidden of ['#nav', '.topbar', tid('demo-banner'), tid('print-receipt')]) {
      assert(!(await page.locator(hidden).first().isVisible()), `${hidden} is visible in the print view`);
    }
    assert(await receipt.isVisible(), 'the receipt is not visible in the print view');
    const others = await page.evaluate(() => Array.from(document.querySelectorAll('#app > :not(.receipt-area)'))
      .filter((n) => n.getBoundingClientRect().height > 0).map((n) => n.className || n.tagName));
    assert(others.length === 0, `besides the receipt the print view shows: ${others.join(', ')}`);
    // No line of it is split across two pages of a narrow roll.
    // (A line without a box of its own, `display: contents`, avoids nothing: a 58 mm roll split
    // an amount across two pages.)
    const split = await receipt.evaluate((r) => Array.from(r.querySelectorAll('.receipt-line, .receipt-head'))
      .filter((n) => getComputedStyle(n).breakInside !== 'avoid' || getComputedStyle(n).display === 'contents')
      .map((n) => n.textContent.trim().slice(0, 30)));
    assert(split.length === 0, `printed receipt lines that may split across pages: ${split.join(' | ')}`);
    for (const [what, locator, want] of mustShow) {
      assert(await locator.isVisible(), `the printed receipt does not show ${what}`);
      if (want !== undefined) assert(await text(locator) === want, `the printed receipt shows ${what} "${await text(locator)}", expected "${want}"`);
    }
  } finally {
    await page.emulateMedia({ media: 'screen' });
  }
}

async function checkNoTokenLeak() {
  for (const [role, page] of Object.entries(pages)) {
    const token = TOKENS[role];
    if (page.isClosed()) continue;
    assert(!page.url().includes(token), `the ${role} token is in the page URL`);
    const html = await page.content();
    assert(!html.includes(token), `the ${role} token is in the page's DOM`);
  }
}

// Switches a page to Kiswahili, reloads, and checks that it stayed.
async function toSwahili(page, role) {
  await page.locator(tid('lang-sw')).click();
  await waitFor('for the page to be in Kiswahili', async () => (await page.evaluate(() => document.documentElement.lang)) === 'sw');
  await page.reload({ waitUntil: 'domcontentloaded' });
  await page.locator(tid('whoami')).waitFor();
  assert(await page.evaluate(() => document.documentElement.lang) === 'sw', `after a reload the ${role}'s page is not in Kiswahili`);
  assert(await page.locator(tid('lang-sw')).getAttribute('aria-pressed') === 'true', 'the Kiswahili button is not pressed after a reload');
  assert(await text(page.locator(tid('demo-banner'))) === 'Hali ya majaribio: malipo ni ya kuigiza — hakuna pesa halisi inayotumwa.', 'the demo banner is not in Kiswahili');
  assert(await text(page.locator(tid('sign-out'))) === 'Toka', 'the Sign out button is not in Kiswahili');
}

// Visits each nav screen in Kiswahili: its heading, and the layout at every size.
async function swahiliScreens(page, role, headings) {
  for (const [name, heading] of Object.entries(headings)) {
    await nav(page, name);
    const h = await text(page.locator('#app h1'));
    assert(h === heading, `the ${role}'s ${name} screen is headed "${h}" in Kiswahili, expected "${heading}"`);
    await checkScreen(page, `${role} ${name} (Kiswahili)`);
  }
}

// ---- idle sign-out, on its own server, while the rest runs

async function idleFlow() {
  const page = await newPage('idle agent', IDLE_URL);
  try {
    const me = await (await fetch(`${IDLE_URL}/me`, { headers: { Authorization: `Bearer ${IDLE_TOKEN}` } })).json();
    assert(me.idleSignOutS === IDLE_S, `GET /me on the idle server says idleSignOutS ${me.idleSignOutS}, expected ${IDLE_S}`);
    await signIn(page, 'idle agent', IDLE_TOKEN);
    const warning = page.locator(tid('idle-warning'));
    await warning.waitFor({ state: 'visible', timeout: IDLE_S * 1000 + 3000 });
    const said = await text(warning.locator(tid('idle-text')));
    assert(/Signing out in \d+ s/.test(said), `the idle warning says "${said}"`);
    const left = Number(await warning.getAttribute('data-seconds-left'));
    assert(left >= 1 && left < IDLE_S, `the idle warning counts ${left} s, the idle time is ${IDLE_S} s`);
    // Said aloud once: what a screen reader announces does not change as the count runs down
    // (the whole box was an alert, read out again at every second).
    const alerted = await text(warning.locator(tid('idle-alert')));
    if (left > 1) {
      await waitFor('for the idle count to run down', async () => Number(await warning.getAttribute('data-seconds-left')) < left);
      assert(await text(warning.locator(tid('idle-alert'))) === alerted, 'the idle warning\'s alert changed with its count');
    }
    const alerts = await warning.evaluate((n) => [n, ...n.querySelectorAll('[role="alert"]')].filter((x) => x.getAttribute('role') === 'alert').length);
    assert(alerts === 1, `the idle warning holds ${alerts} alerts`);
    await warning.locator(tid('idle-stay')).click();
    const stayedAt = Date.now();
    await warning.waitFor({ state: 'hidden', timeout: 2000 });
    assert(await page.locator(tid('whoami')).isVisible(), 'staying signed in signed the agent out');
    await page.locator(tid('signin')).waitFor({ state: 'visible', timeout: IDLE_S * 1000 + 3000 });
    const after = (Date.now() - stayedAt) / 1000;
    assert(after >= IDLE_S - 0.6, `signed out ${after.toFixed(1)} s after the last input; the idle time is ${IDLE_S} s`);
    const msg = await text(page.locator('#signin .form-error'));
    assert(msg.startsWith('You were signed out because the screen was not used'), `after the idle sign-out the sign-in form says "${msg}"`);
    assert(!(await page.locator(tid('whoami')).isVisible()), 'the name is still shown after the idle sign-out');
    assert(await page.evaluate(() => sessionStorage.getItem('remit.token')) === null, 'the token is still in sessionStorage after the idle sign-out');
    assert(await page.locator('#app').evaluate((n) => n.hidden && n.childElementCount === 0), 'the screen is still there after the idle sign-out');
    await page.reload({ waitUntil: 'domcontentloaded' });
    await page.locator(tid('signin')).waitFor({ state: 'visible' });
    assert(!(await page.locator(tid('whoami')).isVisible()), 'a reload after the idle sign-out signed back in');
    log(`  idle: warned, stayed, signed out ${after.toFixed(1)} s after the last input`);
    await shot(page, '00-idle-signed-out.png');
    // Left on the API reference (a page of the same tab that watches for no use) for longer
    // than the idle time, then back: signed out, as it would have been on the app (it came
    // back signed in, with a new idle time, on a kiosk left by its agent).
    await signIn(page, 'idle agent', IDLE_TOKEN);
    await page.locator(tid('api-link')).click();
    await page.waitForURL(/\/api\.html/);
    await page.waitForTimeout(IDLE_S * 1000 + 500);
    await page.goBack({ waitUntil: 'domcontentloaded' });
    await page.locator(tid('signin')).waitFor({ state: 'visible' });
    const back = await text(page.locator('#signin .form-error'));
    assert(back.startsWith('You were signed out because the screen was not used'), `back from the API reference after the idle time the sign-in form says "${back}"`);
    assert(await page.evaluate(() => sessionStorage.getItem('remit.token')) === null, 'the token is still in sessionStorage after the idle time on the API reference');
  } finally {
    await page.context().close();
  }
}

// ---- a server without a gateway (REMIT_GATEWAY=none, as after a restore): a queued payout,
// never stuck, is settled by hand from the full list
async function heldFlow() {
  const page = await newPage('held admin', HELD_URL);
  try {
    await signIn(page, 'held admin', HELD_ADMIN_TOKEN);
    await nav(page, 'payouts');
    assert((await text(page.locator(tid('payouts-holding')))).startsWith('No gateway is set'), 'the payouts screen does not say that nothing is sent');
    await waitFor('the stuck list to load', async () => !(await text(page.locator(tid('stuck-count')))).endsWith('…'));
    assert(await text(page.locator(tid('stuck-count'))) === 'No stuck payouts.', `a queued payout is listed as stuck: "${await text(page.locator(tid('stuck-count')))}"`);
    const card = page.locator(tid('payout-list')).locator(`[data-payout-id="${HELD_PAYOUT}"]`);
    await card.waitFor();
    await card.locator(tid('resolve-outcome-failed')).check();
    await card.locator(tid('resolve-submit')).click();
    const confirm = card.locator(tid('resolve-confirm'));
    await confirm.waitFor();
    const answer = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === `/payouts/${HELD_PAYOUT}/resolve`);
    await confirm.locator(tid('resolve-confirm-yes')).click();
    const res = await answer;
    assert(res.status() === 200, `resolving the held payout answered ${res.status()}`);
    await waitFor('the held payout to read back as failed', async () => {
      const c = page.locator(tid('payout-list')).locator(`[data-payout-id="${HELD_PAYOUT}"]`);
      return (await c.getAttribute('data-status')) === 'failed' && (await c.locator(tid('resolve-form')).count()) === 0;
    });
    log('  held: a queued payout on a server without a gateway settled by hand from the list');
  } finally {
    await page.context().close();
  }
}

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  if (DOCS) fs.mkdirSync(DOCS, { recursive: true });
  // A fresh temporary directory for the browser profile: Playwright creates its user-data-dir
  // under os.tmpdir(), which reads TMPDIR. Removed at the end.
  tmpBase = fs.mkdtempSync(path.join(os.tmpdir(), 'remit-browser-'));
  process.env.TMPDIR = tmpBase;
  assert(fs.existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (install Debian's chromium package, or set CHROMIUM)`);

  await step(`launch ${CHROMIUM}`, async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30_000,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });

  await step('the server answers', async () => {
    const res = await fetch(`${BASE}/`).catch((e) => { throw new FlowError(`cannot reach ${BASE}: ${e.message}`); });
    assert(res.ok, `GET / answered ${res.status}`);
  });

  await step('each token belongs to a user of its role; GET /me names the simulator and an idle time', async () => {
    for (const [role, token] of Object.entries(TOKENS)) {
      const res = await fetch(`${BASE}/me`, { headers: { Authorization: `Bearer ${token}` } });
      const body = await res.json().catch(() => null);
      assert(res.ok, `REMIT_${role.toUpperCase()}_TOKEN is not accepted: GET /me answered ${res.status} ${body && body.error ? body.error : ''}`);
      assert(body && body.role === role, `REMIT_${role.toUpperCase()}_TOKEN belongs to a ${body && body.role}, not a ${role}`);
      assert(body.gateway === 'simulator', `GET /me says gateway ${body.gateway}, expected simulator`);
      assert(Number.isInteger(body.idleSignOutS) && body.idleSignOutS >= 60, `GET /me says idleSignOutS ${body.idleSignOutS}: the main server must not sign the flow out`);
      assert(body.maxEscrowUsdCents === 1000000 && body.maxRequestKesCents === 100000000, `GET /me says the maxima ${body.maxEscrowUsdCents} and ${body.maxRequestKesCents}`);
    }
  });

  // The idle sign-out takes a few seconds of doing nothing: it runs beside the rest.
  const idle = idleFlow().then(() => null, (err) => err);
  const held = heldFlow().then(() => null, (err) => err);

  const fx = await api(TOKENS.agent, 'GET', '/fx-rates');
  const rateE4 = Math.round(Number(fx['USD-KES'].rate) * 10000);
  const usdFor = (kes) => Number((BigInt(kes * 100) * 10000n + BigInt(rateE4) - 1n) / BigInt(rateE4));
  const kesForUsd = (usdCents) => Number((BigInt(usdCents) * BigInt(rateE4) + 5000n) / 10000n);

  // ---- the sign-in screen and the strings
  let sender;
  await step('the sign-in screen fits every size; sender signs in and sees the demo banner', async () => {
    const page = await newPage('sender');
    currentPage = page;
    await checkScreen(page, 'sign-in');
    await page.close();
    sender = await openAs('sender');
  });

  await step('the API reference page, linked from the UI, lists every operation of /openapi.json', async () => {
    const link = sender.locator(tid('api-link'));
    assert(await text(link) === 'API reference', `the UI's link to the API reference says "${await text(link)}"`);
    assert(await link.getAttribute('href') === '/api.html', 'the API reference link does not lead to /api.html');
    const doc = await (await fetch(`${BASE}/openapi.json`)).json();
    const documented = Object.entries(doc.paths).flatMap(([p, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${p}`)).sort();
    assert(documented.length >= 30, `/openapi.json has only ${documented.length} operations`);
    const context = await browser.newContext({ viewport: DESKTOP, baseURL: BASE });
    const page = await context.newPage();
    currentPage = page;
    page.on('pageerror', (err) => pageErrors.push(`api page: ${err.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) pageErrors.push(`api page: ${m.text()}`);
    });
    await page.goto(`${BASE}/`, { waitUntil: 'domcontentloaded' });
    await page.locator(tid('api-link')).click();
    await page.waitForURL(/\/api\.html$/);
    await waitFor('the API reference to render', async () => (await page.getAttribute('body', 'data-ready')) === 'true');
    const listed = (await page.locator(tid('api-operation')).evaluateAll((ns) => ns.map((n) => n.dataset.operation))).sort();
    assert(JSON.stringify(listed) === JSON.stringify(documented),
      `the page lists ${listed.length} operations, the document has ${documented.length}: missing ${documented.filter((o) => !listed.includes(o)).join(', ') || 'none'}; extra ${listed.filter((o) => !documented.includes(o)).join(', ') || 'none'}`);
    const create = page.locator(`[data-operation="POST /escrows"]`);
    assert((await text(create.locator(tid('api-method')))) === 'POST', 'POST /escrows has no method badge');
    assert((await create.locator(tid('api-body')).count()) === 1, 'POST /escrows shows no request body');
    assert((await text(create.locator(tid('api-responses')))).includes('201'), 'POST /escrows shows no 201');
    assert((await page.locator(tid('api-schema')).count()) === Object.keys(doc.components.schemas).length, 'not every schema is shown');
    const sent = Object.entries(doc.webhooks).flatMap(([name, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${name}`)).sort();
    const shown = (await page.locator(tid('api-webhook')).evaluateAll((ns) => ns.map((n) => n.dataset.webhook))).sort();
    assert(JSON.stringify(shown) === JSON.stringify(sent), `the page shows the webhooks ${shown.join(', ')}, the document has ${sent.join(', ')}`);
    assert((await text(page.locator('[data-webhook="POST payment_request.paid"]'))).includes('Remit-Signature'), 'a webhook does not show its signature header');
    await checkScreen(page, 'API reference', { junkWords: false });
    await shot(page, '03-api-reference.png', { fullPage: false });
    await page.locator('[data-operation="POST /escrows"] a[href="#schema-NewEscrow"]').click();
    assert(await page.locator('#schema-NewEscrow').isVisible(), 'the NewEscrow schema link leads nowhere');
    await context.close();
    currentPage = sender;
  });

  await step('the English and Kiswahili tables have the same keys, the same {values} and no empty string', async () => {
    const report = await sender.evaluate(async () => {
      const m = await import('/js/i18n.js');
      const en = Object.keys(m.en);
      const sw = Object.keys(m.sw);
      const ph = (s) => (String(s).match(/\{\w+\}/g) || []).sort().join(',');
      return {
        keys: en,
        sizes: [en.length, sw.length],
        onlyEn: en.filter((k) => !(k in m.sw)),
        onlySw: sw.filter((k) => !(k in m.en)),
        values: en.filter((k) => k in m.sw && ph(m.en[k]) !== ph(m.sw[k])),
        empty: [...en.filter((k) => !String(m.en[k]).trim()), ...sw.filter((k) => !String(m.sw[k]).trim())],
        same: en.filter((k) => k in m.sw && m.en[k] === m.sw[k] && /[a-z]{4}/.test(m.en[k].replace(/\{\w+\}/g, '')) && !/PayBill|M-Pesa|Till|Stripe|REMIT_/.test(m.en[k])),
      };
    });
    assert(report.sizes[0] > 300, `the English table has only ${report.sizes[0]} strings`);
    assert(!report.onlyEn.length, `only in English: ${report.onlyEn.join(', ')}`);
    assert(!report.onlySw.length, `only in Kiswahili: ${report.onlySw.join(', ')}`);
    assert(!report.values.length, `different {values} in: ${report.values.join(', ')}`);
    assert(!report.empty.length, `empty strings: ${report.empty.join(', ')}`);
    assert(!report.same.length, `not translated: ${report.same.join(', ')}`);
    // Every key the screens name as it is written (t('…'), tn('…')) is in the tables: one
    // missing from both showed its key (`request.overToday`) on the screen.
    const uiDir = new URL('../../ui/js/', import.meta.url);
    const sources = [uiDir, new URL('screens/', uiDir)].flatMap((dir) => fs.readdirSync(dir).filter((f) => f.endsWith('.js')).map((f) => fs.readFileSync(new URL(f, dir), 'utf8')));
    // (tn's key is a plural's: its `.one` and `.other` are in the tables.)
    const named = new Set(sources.flatMap((src) => [...src.matchAll(/\b(tn?)\('([A-Za-z0-9_.]+)'/g)]
      .flatMap((m) => (m[1] === 'tn' ? [`${m[2]}.one`, `${m[2]}.other`] : [m[2]]))));
    const known = new Set(report.keys);
    const missing = [...named].filter((k) => !known.has(k));
    assert(named.size > 200 && !missing.length, `keys named by the screens but in no table: ${missing.join(', ')} (of ${named.size})`);
    log(`  ${report.sizes[0]} strings in each language`);
  });

  // ---- sender: create an escrow
  let escrowId;
  let shortRef;
  await step('sender: every field\'s error at once, before anything is sent', async () => {
    await nav(sender, 'new-escrow');
    const form = sender.locator(tid('escrow-form'));
    let posts = 0;
    const count = (r) => { if (r.method() === 'POST' && new URL(r.url()).pathname === '/escrows') posts += 1; };
    sender.on('request', count);
    await form.locator(tid('recipient-phone')).fill('12345');
    await form.locator(tid('total-amount')).fill('12.345');
    await form.locator(tid('create-escrow')).click();
    const errors = form.locator(tid('field-error'));
    await errors.first().waitFor();
    const marked = await form.locator('[aria-invalid="true"]').evaluateAll((ns) => ns.map((n) => n.dataset.field));
    for (const f of ['recipientPhone', 'recipientName', 'totalAmountUsd', 'categories']) {
      assert(marked.includes(f), `${f} is not marked invalid (marked: ${marked.join(', ')})`);
    }
    assert(await errors.count() === 4, `${await errors.count()} field errors shown, expected 4`);
    assert(await text(form.locator(`${tid('total-amount')} ~ .field-error`)) === 'Enter an amount with at most 2 decimals, e.g. 500 or 500.25.', 'the amount error is not beside the amount');
    sender.off('request', count);
    assert(posts === 0, 'the form was sent with mistakes in it');
    await checkScreen(sender, 'new escrow with errors');
    await shot(sender, '01-sender-validation.png');
    // More than the server takes is said before the confirmation, with the maximum.
    await form.locator(tid('total-amount')).fill('20000');
    await form.locator(tid('create-escrow')).click();
    await waitFor('for the maximum to be said', async () => (await text(form.locator(`${tid('total-amount')} ~ .field-error`))) === 'An escrow holds at most USD 10,000.00.');
    // Typing in a field takes its old error away; the others stay until the next send.
    await form.locator(tid('total-amount')).fill('12.34');
    assert(await form.locator(`${tid('total-amount')} ~ .field-error`).count() === 0, 'the amount\'s error stays under a new amount');
    assert(await errors.count() === 3, `${await errors.count()} field errors left, expected 3`);
  });

  await step('sender: the confirmation shows the name and every digit of the phone; the server\'s error lands beside its field', async () => {
    const form = sender.locator(tid('escrow-form'));
    // Sent empty: every field is marked and counted; the count goes as they are mended.
    await form.locator(tid('create-escrow')).click();
    const summary = form.locator('.form-error:not([hidden])');
    await summary.waitFor();
    const marked = Number(/Please correct the (\d+) marked fields/.exec(await text(summary))?.[1]);
    assert(marked >= 2, `the empty form says "${await text(summary)}"`);
    await form.locator(tid('recipient-phone')).fill(RECIPIENT_PHONE);
    const fewer = marked - 1 > 1 ? `Please correct the ${marked - 1} marked fields.` : null;
    assert(fewer ? (await text(summary)) === fewer : (await summary.count()) === 0, `one field mended, the count says "${await text(summary).catch(() => '')}"`);
    // A direction override after the name (it would make a receipt read otherwise) is refused
    // by the form itself, before the question, in the page's words: the server's English came
    // after "Yes", of a character the field does not show.
    await form.locator(tid('recipient-name')).fill('Wanjiru\u202e');
    await form.locator(tid('create-escrow')).click();
    const hidden = form.locator(`${tid('recipient-name')} ~ .field-error`);
    await hidden.first().waitFor({ state: 'visible' });
    assert((await text(hidden)).includes('hidden or text-direction character'), `a direction override in the name is told "${await text(hidden)}"`);
    assert(!(await sender.locator(tid('confirm-box')).isVisible()), 'the question was asked of a name with a direction override');
    // A name of accents alone shows nothing: the form says it is empty, as the server would
    // (it said so after the question, in English).
    await form.locator(tid('recipient-name')).fill('\u0301\u0301');
    await form.locator(tid('create-escrow')).click();
    await hidden.first().waitFor({ state: 'visible' });
    assert(await text(hidden) === 'Enter the recipient\u2019s name.', `a name of accents alone is told "${await text(hidden)}"`);
    assert(!(await sender.locator(tid('confirm-box')).isVisible()), 'the question was asked of a name of accents alone');
    const typedName = 'Wanjiru Kamau';
    await form.locator(tid('recipient-name')).fill(typedName);
    await form.locator(tid('total-amount')).fill('500');
    await form.locator(tid('categories-names')).fill('Electricity, Water');
    assert(await summary.count() === 0, `the count of marked fields stays once they are mended: "${await text(summary).catch(() => '')}"`);
    // The names typed go along to "an amount per category", and back.
    await form.locator(tid('categories-mode-amounts')).check();
    const rowNames = await form.locator(tid('category-row-name')).evaluateAll((ns) => ns.map((n) => n.value));
    assert(JSON.stringify(rowNames) === '["Electricity","Water"]', `the per-category rows hold ${JSON.stringify(rowNames)}`);
    // And back: the rows' names, where the names field was emptied meanwhile.
    await form.locator(tid('category-row-name')).nth(1).fill('Water bills');
    await form.locator(tid('categories-names')).evaluate((input) => { input.value = ''; });
    await form.locator(tid('categories-mode-even')).check();
    assert(await form.locator(tid('categories-names')).inputValue() === 'Electricity, Water bills', `going back, the names read "${await form.locator(tid('categories-names')).inputValue()}"`);
    // Typed in Kiswahili as the hint shows the known ones: the known category, not a new one.
    await form.locator(tid('categories-names')).fill('Umeme, Water');
    await form.locator(tid('create-escrow')).click();
    const confirm = sender.locator(tid('confirm-box'));
    await confirm.waitFor();
    assert(await text(confirm.locator('h2')) === 'Is this the right person?', 'the confirmation does not ask "Is this the right person?"');
    assert(await text(confirm.locator(tid('confirm-name'))) === typedName, 'the confirmation does not show the name typed');
    // Every digit, to be checked by the one who typed it (a masked number hides a slip).
    assert(await text(confirm.locator(tid('confirm-phone'))) === '+254 712 345 678', `the confirmation shows the phone as "${await text(confirm.locator(tid('confirm-phone')))}"`);
    assert(!(await form.isVisible()), 'the form is still shown beside the confirmation');
    await checkScreen(sender, 'escrow confirmation');
    await shot(sender, '02-sender-confirm.png');
    // The browser's Back (a phone's back button) returns to the form as typed, not to the
    // screen before it.
    await sender.goBack();
    await form.waitFor({ state: 'visible' });
    assert(!(await confirm.isVisible()), 'the confirmation stays after Back');
    assert(await form.locator(tid('recipient-name')).inputValue() === typedName, 'Back lost the name typed');
    await form.locator(tid('create-escrow')).click();
    await confirm.waitFor();
    assert((await text(confirm.locator(tid('confirm-categories')))).startsWith('Electricity: '), `"Umeme" is confirmed as "${await text(confirm.locator(tid('confirm-categories')))}"`);
    // Escape is Back, as in every question.
    await sender.keyboard.press('Escape');
    await form.waitFor({ state: 'visible' });
    assert(!(await confirm.isVisible()), 'the confirmation stays after Escape');
    await form.locator(tid('create-escrow')).click();
    await confirm.waitFor();
    // And the page's own Back too, then on again.
    await confirm.locator(tid('confirm-back')).click();
    await form.waitFor({ state: 'visible' });
    await form.locator(tid('create-escrow')).click();
    await confirm.waitFor();
    // The server's refusal of a field lands beside it: one the form cannot foresee, made here by
    // writing a name of accents alone into the request as it leaves (the server is the real one).
    await sender.route(/\/escrows$/, (route) => {
      const sent = JSON.parse(route.request().postData());
      return route.continue({ postData: JSON.stringify({ ...sent, recipientName: '\u0301\u0301' }) });
    }, { times: 1 });
    const answer = sender.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/escrows');
    await confirm.locator(tid('confirm-create')).click();
    const res = await answer;
    const body = await res.json().catch(() => ({}));
    assert(res.status() === 400 && body.field === 'recipientName', `POST /escrows with a name of accents alone answered ${res.status()} naming ${body.field}`);
    const err = form.locator(`${tid('recipient-name')} ~ .field-error`);
    await err.first().waitFor({ state: 'visible' });
    const shown = await text(err);
    assert(body.error.endsWith(shown) && shown.length > 5, `beside the name the page shows "${shown}", the API said "${body.error}"`);
    assert(await form.locator(tid('recipient-name')).getAttribute('aria-invalid') === 'true', 'the name field is not marked aria-invalid');
    await form.locator(tid('recipient-name')).fill('Wanjiru');
  });

  await step('sender creates the escrow (USD 500: Electricity, Water) and gets the deposit code', async () => {
    const form = sender.locator(tid('escrow-form'));
    await form.locator(tid('total-amount')).fill('500');
    await form.locator(tid('create-escrow')).click();
    await sender.locator(tid('confirm-create')).click();
    await waitFor(async () => `for the created escrow (form says: "${await text(form.locator('.form-error:not([hidden]), .field-error')).catch(() => '')}")`,
      async () => (await sender.locator(tid('created-escrow-id')).count()) > 0);
    escrowId = await text(sender.locator(tid('created-escrow-id')));
    assert(/^esc_/.test(escrowId), `unexpected escrow id "${escrowId}"`);
    const status = sender.locator(tid('created-escrow-status'));
    assert(await status.getAttribute('data-status') === 'pending_deposit' && await text(status) === WORDS.pending_deposit, `the new escrow says "${await text(status)}"`);
    assert(await text(sender.locator(tid('created-escrow-total'))) === 'USD 500.00', 'the new escrow total is not USD 500.00');
    const e = await api(TOKENS.sender, 'GET', `/escrows/${escrowId}`);
    assert(typeof e.shortRef === 'string' && /^[2-9A-HJ-NP-Z]{8}$/.test(e.shortRef), `the escrow has no shortRef of 8 characters (${e.shortRef})`);
    shortRef = `${e.shortRef.slice(0, 4)}-${e.shortRef.slice(4)}`;
    assert(await text(sender.locator(tid('created-code'))) === shortRef, `the sender is shown the code "${await text(sender.locator(tid('created-code')))}", expected ${shortRef}`);
    log(`  escrow ${escrowId}, deposit code ${shortRef}`);
    await checkScreen(sender, 'escrow created');
    await shot(sender, '03-sender-created.png');
  });

  let otienoEscrow;
  await step('sender: the escrow list in words; a recipient token refused for Wanjiru, given once to a new recipient', async () => {
    otienoEscrow = (await api(TOKENS.sender, 'POST', '/escrows', { recipientPhone: '0722000333', recipientName: 'Otieno', totalAmountUsd: 40, categories: ['school_fees'] })).escrowId;
    // A name of one long word: its token button ("Give … a sign-in token") wraps inside the
    // card on a phone (it pushed the screen sideways until 2026-12-07).
    const longName = 'Nyambura' + 'wanjikuakinyiachieng'.repeat(3);
    const longEscrow = (await api(TOKENS.sender, 'POST', '/escrows', { recipientPhone: '0711000777', recipientName: longName, totalAmountUsd: 10, categories: ['water'] })).escrowId;
    await nav(sender, 'escrows');
    await escrowCard(sender, longEscrow).locator(tid('recipient-token-open')).waitFor();
    const card = escrowCard(sender, escrowId);
    await card.waitFor();
    assert(await text(card.locator(tid('escrow-status'))) === WORDS.pending_deposit, 'the escrow list does not say "Waiting for the deposit"');
    assert(await text(card.locator(tid('deposit-code'))) === shortRef, 'the escrow card does not show the deposit code');
    assert((await text(card.locator(tid('deposit-code-note')))).includes('Tell the kiosk this code'), 'the card does not say to tell the kiosk the code');
    assert(await text(card.locator('[data-category="electricity"] [data-testid="category-name"]')) === 'Electricity', 'the category is not shown as "Electricity"');
    await card.locator(tid('recipient-token-open')).click();
    await card.locator(tid('recipient-token-create')).click();
    const refused = card.locator(tid('recipient-token-refused'));
    await refused.waitFor();
    assert((await text(refused)).length > 10, 'the refusal of a recipient token says nothing');
    assert((await text(card.locator(tid('recipient-token-panel')))).includes('An admin can give them a token instead.'), 'the refusal does not say who can issue it');
    await card.locator(tid('recipient-token-cancel')).click();

    const other = escrowCard(sender, otienoEscrow);
    await other.waitFor();
    assert(await text(other.locator('[data-category="school_fees"] [data-testid="category-name"]')) === 'School fees', 'school_fees is not shown as "School fees"');
    await other.locator(tid('recipient-token-open')).click();
    await other.locator(tid('recipient-token-create')).click();
    const token = await text(other.locator(tid('recipient-token')));
    assert(/^rmt_/.test(token), `the recipient token shown is "${token}"`);
    assert((await text(other.locator(tid('recipient-token-explain')))).includes('Otieno'), 'the token is shown without explaining what Otieno does with it');
    assert(await other.locator(tid('copy-recipient-token')).isVisible(), 'the token has no Copy button');
    const me = await api(token, 'GET', '/me');
    assert(me.role === 'recipient' && me.name === 'Otieno', `the token shown belongs to ${me.role} ${me.name}`);
    await checkScreen(sender, 'sender escrows with a recipient token');
    await shot(sender, '04-sender-escrows.png');
    await other.locator(tid('recipient-token-done')).click();
    assert(await other.locator(tid('recipient-token')).count() === 0, 'the token is still shown after "I have copied it"');
  });

  // ---- agent: deposit in KES by the deposit code, then a payment request that gets paid
  let agent;
  await step('agent signs in', async () => { agent = await openAs('agent'); });

  let cashReceipt;
  await step('agent finds the escrow by its deposit code and records KES in cash; the receipt prints', async () => {
    await nav(agent, 'deposits');
    // The screen faces the counter: nothing is listed before a search.
    await waitFor('for the screen to ask for a search', async () => (await text(agent.locator(tid('escrow-summary')))).includes('Nothing is listed before a search'));
    assert(await agent.locator(tid('escrow-card')).count() === 0, 'the agent\'s screen listed escrows before any search');
    // Show all is the agent's choice: it lists them.
    await agent.locator(tid('search-clear')).click();
    await waitFor('for Show all to list the escrows waiting for a deposit', async () => (await agent.locator(tid('escrow-card')).count()) > 0);
    await agent.locator(tid('search-phone')).fill(shortRef.toLowerCase());
    await agent.locator(tid('search-submit')).click();
    await waitFor('for the search by deposit code', async () => (await text(agent.locator(tid('escrow-summary')))).includes(shortRef));
    assert(await agent.locator(tid('escrow-card')).count() === 1, `the code found ${await agent.locator(tid('escrow-card')).count()} escrows`);
    const card = escrowCard(agent, escrowId);
    assert(await text(card.locator(tid('escrow-due-kes'))) === kesText(kesForUsd(50000)), `the due amount in KES shows "${await text(card.locator(tid('escrow-due-kes')))}"`);
    // What is still due is collected in whole shillings that complete it at the server's rule
    // (USD cents = floor(KES cents × 10⁴ / rate)): USD 166.67 at 150 is KES 25,000.50, so KES
    // 25,001 (25,000 would leave a cent due); a cent is KES 2 (KES 1.50 rounded up).
    const collect = await agent.evaluate(async () => {
      const f = await import('/js/format.js');
      return [f.kesToCollect(16667, 1500000), f.kesToCollect(1, 1500000), f.kesToCollect(50000, 1500000), f.kesToCollect(100, 500000), f.kesToCollect(1, 500000)];
    });
    // (At 50 KES per USD a shilling buys two cents: a cent due is collected as KES 0.50.)
    assert(JSON.stringify(collect) === JSON.stringify([2500100, 200, 7500000, 5000, 50]), `whole shillings to collect: ${JSON.stringify(collect)}`);
    // A category's balance in KES is the most whole shillings a request may ask of it, as the
    // server prices one (USD cents = ceil(KES cents × 10⁴ / rate)): USD 243.33 at 150 is KES
    // 36,499.50, of which a request may ask KES 36,499; USD 166.67 at 129.4567 is KES 21,576.55,
    // and KES 21,576 costs USD 166.67 where 21,577 would cost 166.68.
    const askable = await agent.evaluate(async () => {
      const f = await import('/js/format.js');
      return [f.kesWholeFor(24333, 1500000), f.kesWholeFor(16667, 1294567), f.kesWholeFor(1, 500000)];
    });
    assert(JSON.stringify(askable) === JSON.stringify([3649900, 2157600, 0]), `whole shillings a request may ask: ${JSON.stringify(askable)}`);
    await card.locator(tid('record-deposit')).click();
    // The cash form opens in shillings with the amount empty and the due said beside it: one
    // Enter must not record the whole due whatever cash lies on the counter.
    assert(await card.locator(tid('deposit-currency-kes')).isChecked(), 'the cash form opens in KES');
    const kesDue = kesForUsd(50000);
    assert(await card.locator(tid('deposit-amount')).inputValue() === '', `the amount starts as "${await card.locator(tid('deposit-amount')).inputValue()}", not empty`);
    assert((await text(card.locator(tid('deposit-preview')))).includes(`Still to deposit: ${kesText(kesDue)}`), `the form names the KES due: "${await text(card.locator(tid('deposit-preview')))}"`);
    await card.locator(tid('deposit-currency-kes')).check();
    // More than is due is refused here, before the question that records it for good (the
    // server refused it only after the agent had said yes).
    await card.locator(tid('deposit-amount')).fill(String(kesDue / 100 + 100));
    await card.locator(tid('deposit-submit')).click();
    const overError = await text(card.locator(`${tid('deposit-amount')} ~ .field-error`));
    assert(overError.startsWith('That is more than is still due'), `more than is due is refused with "${overError}"`);
    assert(await card.locator(tid('deposit-confirm')).isHidden(), 'the question was asked for more than is due');
    // Shillings as a kiosk writes them, with commas and "/=" (75,000/=): taken as the payment
    // form takes them (they were refused as no amount).
    await card.locator(tid('deposit-amount')).fill(`${(kesDue / 100).toLocaleString('en-US', { maximumFractionDigits: 2 })}/=`);
    assert((await text(card.locator(tid('deposit-preview')))).includes(usdText(50000)), `the KES preview says "${await text(card.locator(tid('deposit-preview')))}"`);
    // The preview follows each key, but is read out once the typing pauses: the shown one is
    // not a live region (it was read out again at every digit); a hidden copy says it once.
    assert(await card.locator(tid('deposit-preview')).getAttribute('aria-live') === null, 'the deposit preview is read out at each key');
    await waitFor(async () => `for the preview to be said once typing paused ("${await text(card.locator(tid('deposit-preview-spoken')))}")`,
      async () => (await card.locator(tid('deposit-preview-spoken')).getAttribute('aria-live')) === 'polite'
        && (await text(card.locator(tid('deposit-preview-spoken')))).includes(usdText(50000)));
    await checkScreen(agent, 'deposit form');
    // A reference the server would refuse is refused here first, in words.
    await card.locator(tid('deposit-reference')).fill('KIOSK 7');
    await card.locator(tid('deposit-submit')).click();
    const refError = await text(card.locator(`${tid('deposit-reference')} ~ .field-error`));
    assert(refError.startsWith('Your reference may have letters, digits and signs'), `a reference with a space is refused with "${refError}"`);
    await card.locator(tid('deposit-reference')).fill('');
    // Cash is recorded for good: the amount and whose escrow are asked once more first, the
    // safe answer focused; Back records nothing.
    let posted = 0;
    const countPosts = (r) => { if (r.method() === 'POST' && /\/deposits$/.test(new URL(r.url()).pathname)) posted += 1; };
    agent.on('request', countPosts);
    // A double click on Record asks (its second click lands on Record again, not on Yes).
    await card.locator(tid('deposit-submit')).dblclick();
    const asked = await text(card.locator(tid('deposit-confirm-text')));
    assert(asked.startsWith(`Record ${kesText(kesDue)} in cash for `) && asked.includes(shortRef.slice(0, 4)), `the deposit is asked as "${asked}"`);
    await waitFor('for the focus on Back', async () => (await agent.evaluate(() => document.activeElement && document.activeElement.dataset.testid)) === 'deposit-confirm-no');
    await agent.keyboard.press('Enter');
    assert(await card.locator(tid('deposit-confirm')).isHidden(), 'Back did not close the question');
    assert(posted === 0, `${posted} deposit(s) were sent before Yes`);
    agent.off('request', countPosts);
    await card.locator(tid('deposit-submit')).click();
    const answer = agent.waitForResponse((r) => r.request().method() === 'POST' && /\/deposits$/.test(new URL(r.url()).pathname));
    // A double click on Yes records once, and its second click reaches nothing: the question
    // closes under the pointer, and what came there (the footer's API link, on a kiosk's
    // screen) took the agent away from the receipt.
    await agent.evaluate(() => { window.__clicksAfterYes = 0; document.addEventListener('click', () => { window.__clicksAfterYes += 1; }); });
    agent.on('request', countPosts);
    await card.locator(tid('deposit-confirm-yes')).dblclick();
    const res = await answer;
    assert(await agent.evaluate(() => window.__clicksAfterYes) === 1, `the second click of a double click on Yes reached the page (${await agent.evaluate(() => window.__clicksAfterYes)} clicks)`);
    assert(new URL(agent.url()).pathname === '/', `a double click on Yes left the screen for ${agent.url()}`);
    agent.off('request', countPosts);
    assert(posted === 1, `a double click on Yes sent ${posted} deposit(s)`);
    const sent = JSON.parse(res.request().postData() || '{}');
    assert(sent.amountKes !== undefined && sent.reference === undefined && res.request().headers()['idempotency-key'], `the deposit was sent as ${JSON.stringify(sent)}`);
    const d = await res.json();
    assert(res.status() === 201, `the deposit answered ${res.status()}: ${d.error}`);
    cashReceipt = d;
    const receipt = agent.locator(tid('deposit-receipt'));
    await receipt.waitFor();
    // Its times are Nairobi's, said so, whatever the printing computer's clock is set to.
    assert((await text(receipt)).includes(' EAT'), `the receipt's times say no zone: "${await text(receipt)}"`);
    assert(typeof d.receiptNumber === 'string' && d.receiptNumber.length >= 6, `the deposit has no receipt number (${d.receiptNumber})`);
    assert(await text(receipt.locator(tid('receipt-number'))) === d.receiptNumber, 'the receipt shows another number than the server gave');
    assert(await text(receipt.locator(tid('receipt-amount-kes'))) === kesText(kesDue), 'the receipt does not show the KES received');
    assert(await text(receipt.locator(tid('receipt-amount-usd'))) === usdText(50000), 'the receipt does not show USD 500.00 added');
    assert(await text(receipt.locator(tid('receipt-escrow-status'))) === WORDS.active, 'the receipt does not say the escrow is now Active');
    // On paper as on screen: the simulator pays, so the receipt says it is a demo's.
    const demo = await text(receipt.locator(tid('receipt-demo')));
    assert(demo.includes('Demo mode: this server pays out through the simulator'), `the cash receipt of a demo says "${demo}"`);
    await waitFor('for the escrow to show Active after the deposit', async () => (await text(card.locator(tid('escrow-status')))) === WORDS.active);
    const said = await text(agent.locator('#notice .banner-text'));
    assert(said.startsWith(`${kesText(kesDue)} (${usdText(50000)}) recorded for`), `cash in shillings is said as "${said}"`);
    const count = await text(agent.locator(tid('escrow-summary')));
    assert(count.startsWith('No escrows waiting for the deposit.') && count.includes('It was found in another state: Active.'), `above the card now Active the count says "${count}"`);
    assert(await text(card.locator(tid('escrow-remaining'))) === 'USD 500.00', 'remaining is not USD 500.00 after the deposit');
    // A category's balance in KES is the whole shillings a request may ask of it (a request
    // takes no cents, and costs ceil(KES cents × 10⁴ / rate) USD cents): floor(USD cents ×
    // rate / 10⁶) shillings; the escrow's remaining line is their sum.
    const view = await api(TOKENS.agent, 'GET', `/escrows/${escrowId}`);
    const wholeSum = view.categories.reduce((sum, c) => sum + Number((BigInt(c.remainingUsdCents) * BigInt(rateE4) / 1000000n) * 100n), 0);
    assert(wholeSum > 0 && wholeSum <= kesDue, `the categories' whole shillings (${wholeSum}) are not within what was paid in (${kesDue})`);
    assert(await text(card.locator(tid('escrow-remaining-kes'))) === `\u2248 ${kesText(wholeSum)}`, `remaining in KES shows "${await text(card.locator(tid('escrow-remaining-kes')))}", not the ${kesText(wholeSum)} requests may ask`);
    let categoriesInKes = 0;
    for (const c of view.categories) {
      const shown = card.locator(`[data-category="${c.name}"] [data-testid="cat-remaining-kes"]`);
      if (await shown.count() === 0) continue;
      categoriesInKes += 1;
      const whole = Number((BigInt(c.remainingUsdCents) * BigInt(rateE4) / 1000000n) * 100n);
      assert(await text(shown) === `\u2248 ${kesText(whole)}`, `${c.name}'s balance in KES shows "${await text(shown)}", not the ${kesText(whole)} a request may ask`);
    }
    assert(categoriesInKes > 0, 'no category shows its balance in KES');
    await checkScreen(agent, 'deposit receipt');
    await shot(agent, '05-agent-deposit-receipt.png', { docs: 'agent.png' });
    await checkPrint(agent, receipt, [
      ['its number', receipt.locator(tid('receipt-number')), d.receiptNumber],
      ['the KES received', receipt.locator(tid('receipt-amount-kes')), kesText(kesDue)],
      ['the USD added', receipt.locator(tid('receipt-amount-usd')), usdText(50000)],
    ]);
    await agent.emulateMedia({ media: 'print' });
    await shot(agent, '05-agent-deposit-receipt-print.png', { docs: 'receipt-print.png' });
    await agent.emulateMedia({ media: 'screen' });
  });

  await step('agent: the cash receipt printed again from the escrow, marked as a copy', async () => {
    // Searched for on Deposits, where it no longer waits: its card is shown all the same.
    await nav(agent, 'deposits');
    await agent.locator(tid('search-phone')).fill(RECIPIENT_PHONE);
    await agent.locator(tid('search-submit')).click();
    const card = escrowCard(agent, escrowId);
    await card.waitFor();
    await waitFor(async () => `for the search on Deposits to say where it was found (says "${await text(agent.locator(tid('escrow-summary')))}")`,
      async () => {
        const count = await text(agent.locator(tid('escrow-summary')));
        return count.startsWith('No escrows waiting for the deposit.') && count.includes('It was found in another state: Active.');
      });
    await card.locator(tid('receipts-open')).click();
    const rows = card.locator(`${tid('receipts-list')} li`);
    await rows.first().waitFor();
    assert(await rows.count() === 1, `the agent's receipts list ${await rows.count()} deposits`);
    assert(await text(rows.first().locator(tid('receipts-number'))) === cashReceipt.receiptNumber, 'the listed receipt has another number');
    await rows.first().locator(tid('reprint-receipt')).click();
    const receipt = agent.locator(tid('deposit-receipt'));
    await receipt.waitFor();
    assert(await text(receipt.locator(tid('receipt-number'))) === cashReceipt.receiptNumber, 'the copy shows another number');
    assert(await text(receipt.locator(tid('receipt-amount-kes'))) === kesText(kesForUsd(50000)), 'the copy does not show the KES received');
    assert(await text(receipt.locator(tid('receipt-amount-usd'))) === usdText(50000), 'the copy does not show the USD added');
    assert(await receipt.locator(tid('receipt-copy')).isVisible(), 'the receipt printed again is not marked as a copy');
    assert(await receipt.locator(tid('receipt-escrow-status')).count() === 0, 'the copy says the escrow\'s state of today as the day\'s');
    assert(await agent.evaluate(() => document.activeElement && document.activeElement.dataset.testid) === 'print-receipt', 'Print is not in hand for the copy');
    await checkScreen(agent, 'a cash receipt printed again');
    await receipt.locator(tid('receipt-close')).click();
    // The focus does not fall to the page with the button that held it.
    assert(await agent.evaluate(() => document.activeElement && document.activeElement.dataset.testid) === 'search-phone', 'closing the receipt left the focus on the page');
    await card.locator(tid('receipts-close')).click();
  });

  await step('agent: cash under a reference used before records nothing, and its receipt is a copy', async () => {
    const phone = '0733000555';
    const dup = (await api(TOKENS.sender, 'POST', '/escrows', { recipientPhone: phone, recipientName: 'Baraka', totalAmountUsd: 30, categories: ['water'] })).escrowId;
    const first = await api(TOKENS.agent, 'POST', `/escrows/${dup}/deposits`, { amountUsd: 10, reference: 'BOOK-7' });
    await agent.locator(tid('search-phone')).fill(phone);
    await agent.locator(tid('search-submit')).click();
    const card = escrowCard(agent, dup);
    await card.waitFor();
    await card.locator(tid('record-deposit')).click();
    await card.locator(tid('deposit-currency-usd')).check();
    await card.locator(tid('deposit-amount')).fill('10');
    await card.locator(tid('deposit-reference')).fill('BOOK-7');
    await card.locator(tid('deposit-submit')).click();
    await card.locator(tid('deposit-confirm-yes')).click();
    const receipt = agent.locator(tid('deposit-receipt'));
    await receipt.waitFor();
    // Handed over as an original, it said cash was taken that nothing recorded.
    assert(await text(receipt.locator(tid('receipt-number'))) === first.receiptNumber, 'the receipt of a deposit recorded before has another number');
    assert(await receipt.locator(tid('receipt-copy')).isVisible(), 'the receipt of a deposit recorded before is not marked as a copy');
    assert(await receipt.locator(tid('receipt-escrow-status')).count() === 0, 'the copy of a deposit recorded before says the escrow\'s state of now');
    assert(await agent.locator('#notice.banner-warn').count() === 1, 'a deposit recorded before is not said as a warning');
    const said = await text(agent.locator('#notice .banner-text'));
    assert(said.includes('nothing was recorded now'), `a deposit recorded before is said as "${said}"`);
    const view = await api(TOKENS.agent, 'GET', `/escrows/${dup}`);
    assert(Number(view.depositedUsdCents) === 1000, `the escrow holds ${view.depositedUsdCents} cents after the same reference twice`);
    // Switched to Kiswahili for the customer, the receipt on screen stays, in Kiswahili (it
    // went with the screen drawn again).
    await agent.locator(tid('lang-sw')).click();
    await waitFor('for the receipt to be drawn in Kiswahili', async () => (await agent.evaluate(() => document.documentElement.lang)) === 'sw'
      && (await agent.locator(tid('receipt-copy')).count()) === 1
      && (await text(agent.locator(`${tid('deposit-receipt')} h2`))) !== 'Cash deposit receipt');
    assert(await text(agent.locator(`${tid('deposit-receipt')} ${tid('receipt-number')}`)) === first.receiptNumber, 'the receipt drawn in Kiswahili has another number');
    await agent.locator(tid('lang-en')).click();
    await waitFor('for the page to be in English again', async () => (await agent.evaluate(() => document.documentElement.lang)) === 'en');
    await agent.locator(tid('receipt-close')).click();
    // A deposit form half filled in on a card the search found: the card, its form and what
    // was typed stay when the language changes (the search's cards went with the redraw).
    await card.locator(tid('record-deposit')).click();
    await card.locator(tid('deposit-currency-usd')).check();
    await card.locator(tid('deposit-amount')).fill('7');
    await agent.locator(tid('lang-sw')).click();
    await waitFor('for the deposit form drawn in Kiswahili to hold what was typed', async () => (await agent.evaluate(() => document.documentElement.lang)) === 'sw'
      && (await card.locator(tid('deposit-amount')).inputValue().catch(() => '')) === '7'
      && (await card.locator(tid('deposit-currency-usd')).isChecked().catch(() => false)));
    assert(await agent.locator(tid('search-phone')).inputValue() === phone, 'the search went with the language');
    await agent.locator(tid('lang-en')).click();
    await waitFor('for the page to be in English again, the form still open', async () => (await agent.evaluate(() => document.documentElement.lang)) === 'en'
      && (await card.locator(tid('deposit-amount')).inputValue().catch(() => '')) === '7');
    await card.locator(tid('deposit-close')).click();
  });

  await step('agent: a request form half filled in keeps what was typed when the language changes', async () => {
    await agent.evaluate((id) => { window.location.hash = `#/pay/${id}`; }, escrowId);
    const form = agent.locator(tid('request-form'));
    await form.waitFor();
    await form.locator(tid('request-amount')).fill('1234');
    await form.locator(tid('merchant-name')).fill('Duka la Mama');
    await form.locator(tid('merchant-type-paybill')).check();
    await form.locator(tid('merchant-number')).fill(PAYBILL);
    await agent.locator(tid('lang-sw')).click();
    await waitFor('for the form drawn in Kiswahili to hold what was typed', async () => (await agent.evaluate(() => document.documentElement.lang)) === 'sw'
      && (await form.locator(tid('request-amount')).inputValue().catch(() => '')) === '1234'
      && (await form.locator(tid('merchant-name')).inputValue().catch(() => '')) === 'Duka la Mama'
      && (await form.locator(tid('merchant-number')).inputValue().catch(() => '')) === PAYBILL);
    assert(await form.locator(tid('merchant-type-paybill')).isChecked(), 'the PayBill chosen went with the language');
    await agent.locator(tid('lang-en')).click();
    await waitFor('for the page to be in English again', async () => (await agent.evaluate(() => document.documentElement.lang)) === 'en');
    await nav(agent, 'deposits');
  });

  const kes1 = 1500;
  let request1;
  await step('agent: a request over the category\'s balance cannot be sent; every field\'s error at once', async () => {
    await nav(agent, 'payments');
    await agent.locator(tid('search-phone')).fill(RECIPIENT_PHONE);
    await agent.locator(tid('search-submit')).click();
    const card = escrowCard(agent, escrowId);
    await card.waitFor();
    await card.locator(tid('new-request')).click();
    const form = agent.locator(tid('request-form'));
    await form.waitFor();
    await form.locator(tid('submit-request')).click();
    await form.locator(tid('field-error')).first().waitFor();
    const marked = await form.locator('[aria-invalid="true"]').evaluateAll((ns) => ns.map((n) => n.dataset.field));
    for (const f of ['amountKes', 'merchantName', 'merchantAccount.number', 'merchantAccount.accountReference']) {
      assert(marked.includes(f), `${f} is not marked invalid (marked: ${marked.join(', ')})`);
    }
    // The first mistake is said aloud and has the focus (the focus stayed on Send: busy() had
    // disabled the field when the check moved it there).
    assert(await form.locator(`${tid('field-error')}[role="alert"]`).count() === 1, 'the first mistake is not an alert');
    const focused = await agent.evaluate(() => document.activeElement && document.activeElement.dataset.field);
    assert(focused === marked[0], `the focus is on "${focused}" after a send with mistakes, not on the first (${marked[0]})`);
    // A meter number as it is printed, with spaces: refused on the form, in the UI's words.
    await form.locator(tid('merchant-reference')).fill('METER 1234-5678-9012');
    await form.locator(tid('submit-request')).click();
    const refShape = await text(form.locator(`${tid('merchant-reference')} ~ .field-error`));
    assert(refShape.startsWith('The account number is at most 13 letters'), `a reference with spaces is refused with "${refShape}"`);
    await form.locator(tid('merchant-reference')).fill('');
    await form.locator(tid('request-category')).selectOption('electricity');
    const tooMuch = 40000;
    await form.locator(tid('request-amount')).fill(String(tooMuch));
    const blocked = agent.locator(tid('submit-blocked'));
    await blocked.waitFor();
    assert(await form.locator(tid('submit-request')).isDisabled(), 'Send is enabled for more than the category has left');
    // The amount says so to whoever does not see the reason beside the disabled Send: marked
    // invalid, described by the reason.
    const amountField = form.locator(tid('request-amount'));
    const blockedId = await blocked.getAttribute('id');
    assert(await amountField.getAttribute('aria-invalid') === 'true' && (await amountField.getAttribute('aria-describedby') || '').split(' ').includes(blockedId),
      `an amount over the balance is not marked: aria-invalid ${await amountField.getAttribute('aria-invalid')}, described by ${await amountField.getAttribute('aria-describedby')}`);
    // The most whole shillings USD 250.00 covers at the rate (their price rounded up).
    let most = Math.floor((25000 * rateE4) / 10000 / 100);
    while (most > 0 && usdFor(most) > 25000) most -= 1;
    const want = `Cannot be sent: this costs ${kesText(tooMuch * 100)} (${usdText(usdFor(tooMuch))}), but Electricity has only USD 250.00 left: at most ${kesText(most * 100)} can be asked.`;
    assert(await text(blocked) === want, `the reason says "${await text(blocked)}", expected "${want}"`);
    await checkScreen(agent, 'payment request over the balance');
    // Over the server's maximum: that is the reason, not the category's balance.
    await form.locator(tid('request-amount')).fill('99999999');
    await waitFor('for the maximum to be the reason', async () => (await text(blocked)) === 'A payment request is at most KES 1,000,000.00.');
    await fillRequest(agent, { category: 'electricity', amountKes: kes1, merchantName: 'Kenya Power', reference: '12345678' });
    assert(!(await blocked.isVisible()) && await form.locator(tid('submit-request')).isEnabled(), 'Send stays disabled for an amount that fits');
    assert(await amountField.getAttribute('aria-invalid') === null, 'an amount that fits is still marked invalid');
    const wantUsd = usdText(usdFor(kes1));
    await waitFor(async () => `for the USD equivalent ${wantUsd} (shows "${await text(agent.locator(tid('usd-equivalent'))).catch(() => '')}")`,
      async () => (await text(agent.locator(tid('usd-equivalent-value')))) === wantUsd);
    assert(await agent.locator(tid('usd-equivalent')).getAttribute('aria-live') === null, 'the USD equivalent is read out at each key');
    await waitFor(async () => `for the USD equivalent to be said once ("${await text(agent.locator(tid('usd-equivalent-spoken')))}")`,
      async () => (await text(agent.locator(tid('usd-equivalent-spoken')))).includes(wantUsd));
    await shot(agent, '06-agent-request.png');
    request1 = await submitRequest(agent);
    log(`  request ${request1}`);
    const t = agent.locator(`${tid('trackers')} [data-testid="tracker"][data-request-id="${request1}"]`);
    assert(await text(t.locator(tid('request-amount-usd'))) === wantUsd, 'the sent request has a different USD amount than the preview');
    assert(await text(t.locator(tid('request-status'))) === WORDS.pending_approval, 'the sent request does not say "Waiting for approval"');
    await checkScreen(agent, 'payment request sent');
  });

  // Two more on Water, made through the API: together they are more than Water holds.
  const water = { big: 30000, small: 9000 };
  const more = {};
  let cancelLater;
  let decidedElsewhere;
  let cancelledElsewhere;
  for (const [k, kes] of Object.entries(water)) {
    more[k] = (await api(TOKENS.agent, 'POST', '/payment-requests', { escrowId, category: 'water', amountKes: kes, merchantName: 'Nairobi Water', merchantAccount: { type: 'paybill', number: '444400', accountReference: `W-${k}` } })).paymentRequestId;
  }

  await step('sender approves; once Water is short, Approve is disabled with the reason', async () => {
    currentPage = sender;
    const card = await pendingCard(sender, request1);
    // The agent asked for it: the sender reads that a kiosk asked, for whom, from which escrow.
    assert((await text(card)).includes(`asked at a kiosk for Wanjiru · escrow ${shortRef} (`), `the card does not say who asked, for whom and from which escrow: "${await text(card)}"`);
    assert(await text(sender.locator(tid('pending-count'))) === '3 requests wait for your approval.', `the count says "${await text(sender.locator(tid('pending-count')))}"`);
    // Each Approve is named with its request (a list of the screen's buttons read "Approve,
    // Approve, Approve").
    const approves = await sender.locator(`${tid('pending-list')} ${tid('approve')}`).count();
    const named = await sender.locator(tid('pending-list')).getByRole('button', { name: /^Approve KES [\d,.]+.*USD [\d,.]+$/ }).count();
    assert(approves === 3 && named === approves, `${named} of ${approves} Approve buttons are named with their request`);
    await checkScreen(sender, 'approvals');
    await shot(sender, '07-sender-approvals.png');
    // Approve asks once more, saying what leaves and to whom; Back leaves it waiting.
    await card.locator(tid('approve')).click();
    const ask = await text(card.locator(tid('approve-confirm')));
    assert(ask.startsWith('Pay KES ') && ask.includes('Once approved it goes out through M-Pesa.'), `Approve asks "${ask}"`);
    // The merchant's name, the requester's words, is set apart in quotes.
    assert(/ to \u201c[^\u201d]+\u201d from /.test(ask), `Approve names the merchant without quotes: "${ask}"`);
    await checkScreen(sender, 'approve confirm');
    await shot(sender, '07b-sender-approve-confirm.png');
    // The question describes its buttons (a screen reader said "Back, button" alone).
    const askId = await card.locator(tid('confirm-approve')).getAttribute('aria-describedby');
    assert(askId && (await text(card.locator(`#${askId}`))).startsWith('Pay KES '), `Yes is described by "${askId}", not the question`);
    await card.locator(tid('cancel-approve')).click();
    assert(await card.locator(tid('approve')).isVisible() && !(await card.locator(tid('approve-confirm')).isVisible()), 'Back did not put Approve back');
    // Escape answers it as Back does.
    await card.locator(tid('approve')).click();
    await sender.keyboard.press('Escape');
    assert(await card.locator(tid('approve')).isVisible() && !(await card.locator(tid('approve-confirm')).isVisible()), 'Escape did not put Approve back');
    // A double-click on Approve whose second click lands on "Yes, pay it" (the page moved it
    // under the pointer: Approve at the window's bottom edge) asks, and pays nothing.
    const approvesSent = [];
    const count = (req) => { if (req.method() === 'POST' && /\/approve$/.test(new URL(req.url()).pathname)) approvesSent.push(req.url()); };
    sender.on('request', count);
    await card.locator(tid('approve')).click();
    const yes = await card.locator(tid('confirm-approve')).boundingBox();
    // The second press of a double-click (a click whose detail is 2), on Yes.
    await sender.mouse.move(yes.x + yes.width / 2, yes.y + yes.height / 2);
    await sender.mouse.down({ clickCount: 2 });
    await sender.mouse.up({ clickCount: 2 });
    // (A click's handler runs as it is dispatched: a Yes taken would have hidden the question
    // by now, and begun its request.)
    sender.off('request', count);
    assert(approvesSent.length === 0, `the second click of a double-click approved: ${approvesSent.join(', ')}`);
    assert(await card.locator(tid('approve-confirm')).isVisible(), 'the question went with the second click of a double-click');
    await card.locator(tid('confirm-approve')).click();
    await sender.locator(`${tid('decided-list')} [data-testid="tracker"][data-request-id="${request1}"]`).waitFor();
    // The focus goes on to the next request's buttons (or the decided list), not to the page's
    // top with the card that held it.
    const onto = await sender.evaluate(() => { const a = document.activeElement; return a ? `${a.tagName}:${a.dataset.testid || a.id || ''}` : 'none'; });
    assert(['BUTTON:approve', 'BUTTON:reject', 'H2:decided-h'].includes(onto), `after an approval the focus is on ${onto}`);
    const big = await pendingCard(sender, more.big);
    await big.locator(tid('approve')).click();
    // The question stays while it is read: the approval just made changed the escrow's
    // balances, and the list read every 4 s drew its cards again, the question with them
    // (a wait through one reading of the list: what is tested is that nothing happens).
    await sender.waitForTimeout(4500);
    assert(await big.locator(tid('approve-confirm')).isVisible(), 'the Approve question went with a refresh of the list');
    assert(await sender.evaluate(() => document.activeElement && document.activeElement.dataset.testid) === 'cancel-approve', 'a refresh of the list took the focus from the Approve question');
    // A double-click on Yes approves once, and its second click reaches nothing the page moved
    // under the pointer (the footer's API link took the sender away from the answer).
    const yesSent = [];
    const countYes = (req) => { if (req.method() === 'POST' && /\/approve$/.test(new URL(req.url()).pathname)) yesSent.push(req.url()); };
    sender.on('request', countYes);
    await big.locator(tid('confirm-approve')).dblclick();
    await sender.locator(`${tid('decided-list')} [data-testid="tracker"][data-request-id="${more.big}"]`).waitFor();
    sender.off('request', countYes);
    assert(yesSent.length === 1, `a double-click on Yes sent ${yesSent.length} approvals`);
    assert(new URL(sender.url()).pathname === '/', `a double-click on Yes left the screen for ${sender.url()}`);
    const small = sender.locator(`${tid('pending-list')} [data-testid="request-card"][data-request-id="${more.small}"]`);
    const need = usdFor(water.small);
    const left = 25000 - usdFor(water.big);
    await waitFor('for the Water request to show it cannot be approved', async () => small.locator(tid('approve')).isDisabled(), STEP_TIMEOUT_MS, 300);
    const reason = await text(small.locator(tid('approve-blocked')));
    const want = `Not enough to approve: Water has ${usdText(left)} left and this needs ${usdText(need)}.`;
    assert(reason === want, `beside the disabled Approve: "${reason}", expected "${want}"`);
    const describedBy = await small.locator(tid('approve')).getAttribute('aria-describedby');
    assert(describedBy && await small.locator(`#${describedBy}`).count() === 1, 'the disabled Approve is not described by its reason');
    await checkScreen(sender, 'approvals with a disabled Approve');
    await shot(sender, '08-sender-approve-disabled.png', { docs: 'sender.png' });
    // A read of the list on its way when Reject is tapped (the screen reads it every 4 s) does
    // not close the reject form when it lands, even when what it brings changed (here: the
    // escrows' times, as a payout settling changes them).
    let release;
    const held = new Promise((r) => { release = r; });
    const pattern = /\/escrows\?limit=100/;
    let landed;
    const answered = new Promise((r) => { landed = r; });
    await sender.route(pattern, async (route) => {
      await held;
      try {
        const response = await route.fetch();
        const json = await response.json();
        for (const e of json.items || []) e.updatedAt = new Date().toISOString();
        await route.fulfill({ response, json });
      } catch (_) { /* the page moved on */ }
      setTimeout(landed, 300);
    });
    try {
      await sender.locator(tid('refresh')).click();
      await small.locator(tid('reject')).click();
      release();
      await answered;
    } finally {
      release();
      await sender.unroute(pattern);
    }
    assert(await small.locator(tid('reject-reason')).isVisible(), 'a read of the list that landed after Reject closed the reject form');
    await small.locator(tid('reject-reason')).fill('Too much for water this month');
    await small.locator(tid('confirm-reject')).click();
    await sender.locator(`${tid('decided-list')} [data-testid="tracker"][data-request-id="${more.small}"]`).waitFor();
  });

  let receipt1;
  let remainingAfterPaid;
  await step('sender and agent both see it paid, with an M-Pesa receipt marked Simulated', async () => {
    const st = await waitTrackerFinal(sender, request1, tid('decided-list'), 'paid');
    receipt1 = await text(st.locator(tid('receipt')));
    assert(/^SIM/.test(receipt1), `the simulated receipt is "${receipt1}"`);
    assert(await st.locator(`${tid('payout')} ${tid('simulated')}`).isVisible(), 'the sender\'s paid request is not marked Simulated');
    assert(await text(st.locator(`${tid('payout')} ${tid('simulated')}`)) === 'Simulated', 'the mark does not say "Simulated"');
    await shot(sender, '09-sender-paid.png');
    currentPage = agent;
    const at = await waitTrackerFinal(agent, request1, tid('trackers'), 'paid');
    assert(await text(at.locator(tid('receipt'))) === receipt1, `the agent sees receipt "${await text(at.locator(tid('receipt')))}", the sender "${receipt1}"`);
    assert(await at.locator(tid('simulated')).isVisible(), 'the agent\'s paid request is not marked Simulated');
    remainingAfterPaid = usdText(50000 - usdFor(kes1) - usdFor(water.big));
    const box = agent.locator(tid('request-escrow'));
    await waitFor(async () => `for the escrow to show remaining ${remainingAfterPaid} and nothing set aside (shows ${await text(box.locator(tid('escrow-remaining')))}, ${await text(box.locator(tid('escrow-reserved')))})`,
      async () => (await text(box.locator(tid('escrow-remaining')))) === remainingAfterPaid
        && (await text(box.locator(tid('escrow-reserved')))) === 'USD 0.00', PAYOUT_TIMEOUT_MS, 300);
    await shot(agent, '10-agent-paid.png');
  });

  await step('sender opens where the money went: movements in words', async () => {
    currentPage = sender;
    await nav(sender, 'escrows');
    const card = escrowCard(sender, escrowId);
    await card.waitFor();
    const toggle = card.locator(tid('toggle-journal'));
    await toggle.click();
    assert(await toggle.getAttribute('aria-expanded') === 'true', 'the journal button is not aria-expanded after opening it');
    const rows = card.locator(`${tid('journal-table')} ${tid('journal-row')}`);
    const kinds = () => rows.evaluateAll((ns) => ns.map((n) => n.dataset.kind));
    const want = ['deposit', 'activation', 'approval', 'payout_succeeded'];
    await waitFor(async () => `for the journal to show ${want.join(', ')} (shows ${(await kinds().catch(() => [])).join(', ') || 'nothing'})`,
      async () => { const k = await kinds(); return want.every((w) => k.includes(w)); });
    const row = (kind) => card.locator(`${tid('journal-table')} [data-testid="journal-row"][data-kind="${kind}"]`);
    const paid = usdText(usdFor(kes1));
    const expect = {
      deposit: ['Deposit', 'Money in → Not yet funded USD 500.00'],
      activation: ['Escrow funded', 'Not yet funded → Electricity: Available'],
      approval: ['Payment approved (set aside)', `Electricity: Available → Set aside for a payment ${paid}`],
      payout_succeeded: ['Payment made', `Electricity: Set aside for a payment → Paid out ${paid}`],
    };
    for (const [kind, [label, movement]] of Object.entries(expect)) {
      assert(await row(kind).count() >= 1, `the journal has no ${kind} row`);
      const shownKind = await text(row(kind).first().locator(tid('journal-kind')));
      assert(shownKind === label, `the ${kind} row says "${shownKind}", expected "${label}"`);
      const shownMoves = (await Promise.all((await row(kind).locator(`${tid('journal-movements')} li`).all()).map((l) => text(l))));
      assert(shownMoves.some((m) => m.startsWith(movement)), `the ${kind} rows show "${shownMoves.join('; ')}", expected "${movement}"`);
    }
    // Whom the money paid, not only an id: the approval and the payout name the merchant, and
    // the payout M-Pesa's receipt.
    for (const kind of ['approval', 'payout_succeeded']) {
      const about = await text(row(kind).first().locator(tid('journal-about')));
      assert(about.startsWith('To Kenya Power · KES '), `the ${kind} row says "${about}" of its request, expected "To Kenya Power · KES …"`);
      const receipt = /· M-Pesa receipt [A-Z0-9]{10}$/.test(about);
      assert(receipt === (kind === 'payout_succeeded'), `the ${kind} row says "${about}": M-Pesa's receipt belongs on the payout's line only`);
    }
    // The deposit says how it came in: the cash the agent counted, the rate it was counted at
    // (the sender could not see it anywhere), with the kiosk's receipt.
    const cashIn = await text(row('deposit').first().locator(tid('journal-about')));
    const shownRate = /^Cash at a kiosk · .* · at KES ([\d,.]+) per USD · kiosk receipt /.exec(cashIn);
    assert(shownRate && Math.round(Number(shownRate[1].replace(/,/g, '')) * 10000) === Number(cashReceipt.rateKesPerUsdE4),
      `the deposit row says "${cashIn}": no rate, or not the deposit's (${cashReceipt.rateKesPerUsdE4})`);
    const wantCash = `Cash at a kiosk · ${kesText(kesForUsd(50000))} · at KES ${shownRate[1]} per USD · kiosk receipt ${cashReceipt.receiptNumber}`;
    assert(cashIn === wantCash, `the deposit row says "${cashIn}", expected "${wantCash}"`);
    await checkScreen(sender, 'journal');
    await shot(sender, '11-sender-journal.png', { docs: 'sender-journal.png' });
    // The audit log says who acted in words where remit knows: the reader is "You".
    await card.locator(tid('toggle-audit')).click();
    const made = card.locator(`${tid('audit-table')} ${tid('audit-row')}`).filter({ has: sender.locator(tid('audit-action-words'), { hasText: 'Escrow made' }) });
    await made.first().waitFor();
    const who = await text(made.first().locator(tid('audit-actor-words')));
    assert(who === 'You', `the sender's own "Escrow made" line says it was made by "${who}"`);
    await card.locator(tid('toggle-audit')).click();
  });

  // ---- a request whose payout fails: a plain reason, the money back
  const kes2 = 2000;
  let request2;
  await step(`agent sends KES ${kes2} to account ${FAIL_ACCOUNT}; the sender approves; the payout fails`, async () => {
    currentPage = agent;
    await fillRequest(agent, { category: 'electricity', amountKes: kes2, merchantName: 'Failing Merchant', reference: FAIL_ACCOUNT });
    await waitFor('for the USD equivalent of the second request', async () => (await text(agent.locator(tid('usd-equivalent-value')))) === usdText(usdFor(kes2)));
    request2 = await submitRequest(agent);
    currentPage = sender;
    const card = await pendingCard(sender, request2);
    await card.locator(tid('approve')).click();
    await card.locator(tid('confirm-approve')).click();
    await sender.locator(`${tid('decided-list')} [data-testid="tracker"][data-request-id="${request2}"]`).waitFor();
    await waitTrackerFinal(sender, request2, tid('decided-list'), 'failed');
    await shot(sender, '12-sender-failed.png');
  });

  await step('agent sees it failed: a plain explanation, no raw M-Pesa code, the money back', async () => {
    currentPage = agent;
    const t = await waitTrackerFinal(agent, request2, tid('trackers'), 'failed');
    const r = await api(TOKENS.agent, 'GET', `/payment-requests/${request2}`);
    assert(r.payout && r.payout.failureReason && r.payout.failureText, `the failed payout has no failureReason/failureText: ${JSON.stringify(r.payout)}`);
    const said = await text(t.locator(tid('failure-text')));
    assert(said === r.payout.failureText, `the explanation is "${said}", the server's is "${r.payout.failureText}"`);
    assert(await t.locator(tid('payout-raw')).count() === 0, 'the agent is shown the raw M-Pesa code');
    assert((await text(t.locator(tid('money-returned')))).startsWith('Money returned'), 'the failed request does not say the money was returned');
    const box = agent.locator(tid('request-escrow'));
    await waitFor(async () => `for the refund: remaining ${remainingAfterPaid} (shows ${await text(box.locator(tid('escrow-remaining')))})`,
      async () => (await text(box.locator(tid('escrow-remaining')))) === remainingAfterPaid
        && (await text(box.locator(tid('escrow-reserved')))) === 'USD 0.00');
    await checkScreen(agent, 'failed payment request');
    await shot(agent, '13-agent-failed-refunded.png');
  });

  await step('agent\'s Requests screen: one escrow\'s, then all; status, amount, merchant, receipt, money returned; the paid one\'s receipt prints', async () => {
    await agent.locator(tid('all-on-escrow')).click();
    const list = agent.locator(tid('request-list'));
    const onEscrow = (await api(TOKENS.agent, 'GET', `/payment-requests?escrowId=${escrowId}&limit=100`)).items.length;
    await waitFor(async () => `for the ${onEscrow} requests of the escrow (shows ${await list.locator(tid('request-row')).count()})`,
      async () => (await list.locator(tid('request-row')).count()) === onEscrow);
    assert(await list.locator(tid('request-row')).evaluateAll((ns, id) => ns.every((n) => n.dataset.escrowId === id), escrowId), 'the escrow\'s list shows requests of another escrow');
    assert(await agent.locator(tid('request-escrow-note')).isVisible(), 'the list does not say it shows one escrow only');
    await agent.locator(tid('request-escrow-clear')).click();
    // Every customer's requests face the counter: listed only once the agent asks.
    await waitFor(async () => `for the screen to list nothing before the agent asks (says "${await text(agent.locator(tid('request-summary'))).catch(() => '')}")`,
      async () => (await text(agent.locator(tid('request-summary')))).startsWith('Nothing is listed before you ask'));
    assert(!(await list.isVisible()) || (await list.locator(tid('request-row')).count()) === 0, 'the requests of every customer are listed before the agent asked');
    await agent.locator(tid('show-all-requests')).click();
    await waitFor('for the requests of every escrow', async () => (await list.locator(tid('request-row')).count()) > onEscrow);
    // A time on screen names its zone (the browser's), as a receipt's says EAT: a kiosk PC left
    // on UTC showed a payment on one day and its receipt on the next, nothing saying why.
    const shownAt = await text(list.locator('time').first());
    assert(/(UTC|GMT[+-]?[0-9:]*|\b[A-Z]{3,5})$/.test(shownAt), `a time in the list names no zone: "${shownAt}"`);
    const row = (id) => list.locator(`[data-testid="request-row"][data-request-id="${id}"]`);
    const paidRow = row(request1);
    assert(await text(paidRow.locator(tid('request-status'))) === WORDS.paid, 'the paid request does not say Paid in the list');
    assert(await text(paidRow.locator(tid('receipt'))) === receipt1, 'the list does not show the M-Pesa receipt');
    assert(await paidRow.locator(tid('simulated')).isVisible(), 'the list does not mark the receipt Simulated');
    assert(await text(paidRow.locator(tid('request-merchant'))) === 'Kenya Power', 'the list does not show the merchant');
    await waitFor(async () => `for the row to say for whom (says "${await text(paidRow.locator(tid('request-for'))).catch(() => '')}")`,
      async () => (await paidRow.locator(tid('request-for')).count()) === 1 && (await text(paidRow.locator(tid('request-for')))) === 'for Wanjiru');
    assert(await text(paidRow.locator(tid('request-amount-kes'))) === kesText(kes1 * 100), 'the list does not show the amount');
    assert(await text(row(request2).locator(tid('request-status'))) === WORDS.failed, 'the failed request does not say "Payment failed — money returned"');
    assert(await text(row(request2).locator(tid('money-returned'))) === 'Money returned', 'the failed request does not say "Money returned"');
    // Why, in a sentence, in every list (the sender's escrow panel shows the same rows).
    const why = await text(row(request2).locator(tid('failure-text')));
    assert(why.length > 20 && !/[A-Z]{2,}_|\b\d{4}\b/.test(why), `the failed request's row says why as "${why}"`);
    assert(await text(row(more.small).locator(tid('request-status'))) === WORDS.rejected, 'the rejected request does not say Rejected');
    await checkScreen(agent, 'agent requests');
    await paidRow.locator(tid('open-request')).click();
    const receipt = agent.locator(tid('payment-receipt'));
    await receipt.waitFor();
    assert(await text(receipt.locator(tid('receipt-number'))) === receipt1, 'the payment receipt shows another number than the M-Pesa receipt');
    assert(await text(receipt.locator('.receipt-number .muted')) === 'M-Pesa receipt', 'the payment receipt does not say its number is M-Pesa\'s');
    assert(await text(receipt.locator(tid('receipt-amount-kes'))) === kesText(kes1 * 100), 'the payment receipt does not show the KES paid');
    assert(await text(receipt.locator(tid('receipt-amount-usd'))) === usdText(usdFor(kes1)), 'the payment receipt does not show the USD taken');
    // Whose escrow it came from, by the deposit code the family knows it by.
    assert(await text(receipt.locator(tid('receipt-code'))) === shortRef, `the payment receipt's deposit code is "${await text(receipt.locator(tid('receipt-code')))}"`);
    // Whom M-Pesa paid, in its words, beside the name the agent typed.
    const mpesaPayee = `${PAYBILL} - SIMULATED PAYEE`;
    assert(await text(receipt.locator(tid('receipt-mpesa-payee'))) === mpesaPayee, `the payment receipt names "${await text(receipt.locator(tid('receipt-mpesa-payee'))).catch(() => '')}" as M-Pesa's payee`);
    // Who handed it over, as a cash receipt names who took the cash.
    const agentName = (await api(TOKENS.agent, 'GET', '/me')).name;
    assert(agentName && await text(receipt.locator(tid('receipt-printed-by'))) === agentName, `the payment receipt names "${await text(receipt.locator(tid('receipt-printed-by'))).catch(() => '')}" as who printed it, not the agent ${agentName}`);
    await checkScreen(agent, 'request details with its receipt');
    await shot(agent, '14-agent-request-receipt.png');
    await checkPrint(agent, receipt, [
      ['its number', receipt.locator(tid('receipt-number')), receipt1],
      ['the amount', receipt.locator(tid('receipt-amount-kes')), kesText(kes1 * 100)],
      ['the USD taken', receipt.locator(tid('receipt-amount-usd')), usdText(usdFor(kes1))],
      ['M-Pesa\'s payee', receipt.locator(tid('receipt-mpesa-payee')), mpesaPayee],
      ['the Simulated mark', receipt.locator(tid('receipt-simulated-tag')), 'Simulated'],
      ['that no real money moved', receipt.locator(tid('receipt-simulated'))],
    ]);
  });

  // ---- recipient: escrows in KES, the requests list paged, a receipt
  let recipient;
  await step('recipient signs in: escrows with KES at today\'s rate; requests paged and filtered', async () => {
    // Enough small requests that the list has a second page.
    const agentMade = [];
    for (let i = 0; i < 6; i += 1) {
      const made = await api(TOKENS.agent, 'POST', '/payment-requests', { escrowId, category: 'electricity', amountKes: 100 + i, merchantName: `Shop ${i + 1}`, merchantAccount: { type: 'till', number: '5123456' } });
      agentMade.push(made.paymentRequestId);
    }
    recipient = await openAs('recipient');
    await nav(recipient, 'mine');
    const card = escrowCard(recipient, escrowId);
    await card.waitFor();
    assert(await text(card.locator(tid('escrow-status'))) === WORDS.active, 'the recipient\'s escrow does not say Active');
    assert((await text(card.locator(tid('escrow-remaining-kes')))).startsWith('\u2248 KES '), 'the recipient does not see the balance in KES');
    assert((await text(recipient.locator(tid('escrow-summary')))).startsWith('You have '), `the recipient's count says "${await text(recipient.locator(tid('escrow-summary')))}"`);
    await checkScreen(recipient, 'recipient escrows');
    await nav(recipient, 'requests');
    const list = recipient.locator(tid('request-list'));
    const all = await api(TOKENS.recipient, 'GET', '/payment-requests?limit=100');
    const total = all.items.length;
    assert(total > 10, `the recipient sees only ${total} requests; the paging needs more than 10`);
    await waitFor('for the first page of requests', async () => (await list.locator(tid('request-row')).count()) === 10);
    const moreBtn = recipient.locator(tid('load-more'));
    assert(await moreBtn.isVisible(), 'no "Show more" under the first page');
    await checkScreen(recipient, 'recipient requests');
    await shot(recipient, '15-recipient-requests.png', { docs: 'recipient.png' });
    await moreBtn.click();
    await waitFor(async () => `for all ${total} requests after "Show more" (shows ${await list.locator(tid('request-row')).count()})`,
      async () => (await list.locator(tid('request-row')).count()) === Math.min(total, 20));
    const ids = await list.locator(tid('request-row')).evaluateAll((ns) => ns.map((n) => n.dataset.requestId));
    assert(new Set(ids).size === ids.length, 'the second page repeats requests of the first');
    assert(JSON.stringify(ids) === JSON.stringify(all.items.slice(0, ids.length).map((r) => r.paymentRequestId)), 'the list is not in the API\'s order');
    const escrowPick = recipient.locator(tid('request-escrow-filter'));
    assert(await escrowPick.isVisible(), 'the recipient with two escrows cannot pick one');
    await escrowPick.selectOption(escrowId);
    await waitFor('for the requests of one escrow', async () => {
      const es = await list.locator(tid('request-row')).evaluateAll((ns) => ns.map((n) => n.dataset.escrowId));
      return es.length > 0 && es.every((x) => x === escrowId);
    });
    await escrowPick.selectOption('');
    await recipient.locator(tid('request-status-filter')).selectOption('paid');
    const paidIds = all.items.filter((r) => r.status === 'paid').map((r) => r.paymentRequestId);
    await waitFor(async () => `for only the ${paidIds.length} paid requests (shows ${await list.locator(tid('request-row')).count()})`,
      async () => (await list.locator(tid('request-row')).count()) === paidIds.length
        && (await list.locator(tid('request-row')).evaluateAll((ns) => ns.every((n) => n.dataset.status === 'paid'))));
    assert(await text(recipient.locator(tid('request-summary'))) === `${paidIds.length} requests: Paid.`, `the summary says "${await text(recipient.locator(tid('request-summary')))}"`);
    await list.locator(`[data-request-id="${request1}"] ${tid('open-request')}`).click();
    const receipt = recipient.locator(tid('payment-receipt'));
    await receipt.waitFor();
    assert(await text(receipt.locator(tid('receipt-number'))) === receipt1, 'the recipient\'s receipt shows another number');
    assert(await receipt.locator(tid('receipt-simulated')).isVisible(), 'the recipient\'s receipt is not marked Simulated');
    // Only a kiosk agent's receipt names who printed it (a recipient's name is a sender's words).
    assert(await receipt.locator(tid('receipt-printed-by')).count() === 0, 'the recipient\'s receipt names who printed it');
    await checkScreen(recipient, 'recipient request receipt');
    // A request the agent made for them: the recipient sees it waiting, with no Cancel (only
    // whoever made it, or an agent, may cancel it).
    await recipient.evaluate((id) => { window.location.hash = `#/requests/${id}`; }, agentMade[0]);
    const tracked = recipient.locator(`${tid('tracker')}[data-request-id="${agentMade[0]}"]`);
    await tracked.waitFor();
    assert(await tracked.locator(tid('cancel-request')).count() === 0, 'the recipient is offered Cancel on a request the agent made');
    cancelLater = agentMade[1];
    decidedElsewhere = agentMade[2];
    cancelledElsewhere = agentMade[3];
  });

  await step('agent: Cancel asks once more; "Keep it" keeps the request', async () => {
    currentPage = agent;
    await agent.evaluate((id) => { window.location.hash = `#/requests/${id}`; }, cancelLater);
    const tracked = agent.locator(`${tid('tracker')}[data-request-id="${cancelLater}"]`);
    await tracked.waitFor();
    assert(await text(tracked.locator(tid('request-context'))) === 'for Wanjiru', 'the request\'s page does not say for whom it is');
    await tracked.locator(tid('cancel-request')).click();
    assert(await tracked.locator(tid('cancel-question')).isVisible(), 'Cancel does not ask once more');
    const focused = await agent.evaluate(() => document.activeElement && document.activeElement.dataset.testid);
    assert(focused === 'keep-request', `the cancel question has the focus on "${focused}", not on keeping the request`);
    await tracked.locator(tid('keep-request')).click();
    assert((await api(TOKENS.agent, 'GET', `/payment-requests/${cancelLater}`)).status === 'pending_approval', '"Keep it" cancelled the request');
    await tracked.locator(tid('cancel-request')).click();
    await tracked.locator(tid('confirm-cancel')).click();
    await waitFor('for the request to read Cancelled', async () => (await tracked.getAttribute('data-status')) === 'cancelled');
    assert(await text(agent.locator('#notice .banner-text')) === 'Request cancelled: the sender will not see it.', 'the cancel is not said');
    assert((await api(TOKENS.agent, 'GET', `/payment-requests/${cancelLater}`)).status === 'cancelled', 'the confirmed cancel did not reach the server');
  });

  await step('sender: approving a request decided elsewhere says so where it stays', async () => {
    currentPage = sender;
    const card = await pendingCard(sender, decidedElsewhere);
    // The list is not refreshed until the click has been answered: the card stays to be clicked.
    let release;
    const held = new Promise((r) => { release = r; });
    const pattern = /\/payment-requests\?status=pending_approval/;
    // (Unrouting hands the held requests on itself: a continue after it is refused, and harmless.)
    await sender.route(pattern, async (route) => { await held; await route.continue().catch(() => {}); });
    try {
      await api(TOKENS.sender, 'POST', `/payment-requests/${decidedElsewhere}/reject`, {});
      await card.locator(tid('approve')).click();
      await card.locator(tid('confirm-approve')).click();
      const banner = sender.locator('#notice');
      await waitFor(async () => `for the refusal in the notice (says "${await text(banner.locator('.banner-text')).catch(() => '')}")`,
        async () => (await banner.isVisible()) && (await text(banner.locator('.banner-text'))).startsWith(`Could not approve ${kesText(10200)} to Shop 3 (payment request is rejected and cannot become approved).`));
    } finally {
      release();
      await sender.unroute(pattern);
    }
    await waitFor('for the card to leave the list', async () => (await card.count()) === 0);
    assert(await sender.locator('#notice').isVisible(), 'the refusal went with the card');
  });

  await step('sender: rejecting a request decided elsewhere says so, and its card leaves the list', async () => {
    currentPage = sender;
    const card = await pendingCard(sender, cancelledElsewhere);
    await card.locator(tid('reject')).click();
    // Cancelled by the kiosk while the sender was typing a reason.
    await api(TOKENS.agent, 'POST', `/payment-requests/${cancelledElsewhere}/cancel`, {});
    await card.locator(tid('reject-reason')).fill('not this one');
    await card.locator(tid('confirm-reject')).click();
    const banner = sender.locator('#notice');
    await waitFor(async () => `for the refusal in the notice (says "${await text(banner.locator('.banner-text')).catch(() => '')}")`,
      async () => (await banner.isVisible()) && (await text(banner.locator('.banner-text'))).startsWith(`Could not reject ${kesText(10300)} to Shop 4 (payment request is cancelled`));
    await waitFor('for the card to leave the list', async () => (await card.count()) === 0);
  });

  await step('sender: cancelling an escrow says, before the second tap, that its waiting request goes with it', async () => {
    currentPage = sender;
    // With nothing waiting, the question says nothing of requests.
    await nav(sender, 'escrows');
    // An escrow whose card payment Stripe refunded: its money held, said on its card, and its
    // Cancel disabled with the reason beside it (the server would refuse it).
    const held = escrowCard(sender, REFUNDED_ESCROW);
    await held.waitFor();
    const heldWords = await text(held.locator(tid('escrow-held')));
    assert(heldWords.startsWith('Its money is held: a card payment into it was refunded or disputed'), `the held escrow says "${heldWords}"`);
    assert(await held.locator(tid('cancel-escrow')).isDisabled(), 'the held escrow can be cancelled');
    assert((await text(held.locator(tid('cancel-why')))) === heldWords, 'no reason beside the disabled Cancel');
    // A cancelled escrow whose card payment Stripe refunded says what went back to the card.
    const returned = escrowCard(sender, RETURNED_ESCROW);
    await returned.waitFor();
    assert(await text(returned.locator(tid('escrow-returned-to-card'))) === usdText(3000), `the cancelled escrow's card says "${await text(returned.locator(tid('escrow-returned-to-card'))).catch(() => '')}" went back to the card`);
    const before = escrowCard(sender, otienoEscrow);
    await before.waitFor();
    await before.locator(tid('cancel-escrow')).click();
    await before.locator(`${tid('cancel-escrow-form')}[data-counted="yes"]`).waitFor();
    const focused = await sender.evaluate(() => document.activeElement && document.activeElement.dataset.testid);
    assert(focused === 'keep-escrow', `the cancel question has the focus on "${focused}", not on keeping the escrow`);
    assert((await text(before.locator(tid('cancel-escrow-form')))).includes('is recorded as owed back to you, and the operator returns it to you'), 'the sender is not told who returns what is left');
    assert(await before.locator(tid('cancel-waiting')).count() === 0, `the cancel question speaks of waiting requests where there are none: "${await text(before.locator(tid('cancel-waiting'))).catch(() => '')}"`);
    await before.locator(tid('keep-escrow')).click();
    await api(TOKENS.agent, 'POST', `/escrows/${otienoEscrow}/deposits`, { amountUsd: 40, reference: 'otieno-cash-1' });
    const waitingId = (await api(TOKENS.agent, 'POST', '/payment-requests', { escrowId: otienoEscrow, category: 'school_fees', amountKes: 1500, merchantName: 'Hill School', merchantAccount: { type: 'paybill', number: '555500', accountReference: 'ADM-7' } })).paymentRequestId;
    // Meanwhile a kiosk fills in a request on it, sent once the sender has cancelled it.
    await agent.evaluate((id) => { window.location.hash = `#/pay/${id}`; }, otienoEscrow);
    await agent.locator(tid('request-form')).waitFor();
    await fillRequest(agent, { category: 'school_fees', amountKes: 1000, merchantName: 'Hill School', reference: 'ADM-8' });
    await nav(sender, 'escrows');
    const card = escrowCard(sender, otienoEscrow);
    await card.waitFor();
    await card.locator(tid('cancel-escrow')).click();
    const said = card.locator(tid('cancel-waiting'));
    await said.waitFor();
    assert(await text(said) === '1 payment request waiting for approval is cancelled with it.', `the cancel question says "${await text(said)}" of the waiting request`);
    await card.locator(tid('confirm-cancel-escrow')).click();
    await waitFor('for the escrow to be cancelled', async () => (await api(TOKENS.sender, 'GET', `/escrows/${otienoEscrow}`)).status === 'cancelled');
    assert((await api(TOKENS.sender, 'GET', `/payment-requests/${waitingId}`)).status === 'cancelled', 'the waiting request was not cancelled with its escrow');
    // The kiosk's request is refused in words of what happened (it said "Active escrow not
    // found.").
    await agent.locator(tid('submit-request')).click();
    const gone = agent.locator(`${tid('request-form')} .form-error:not([hidden])`);
    await gone.waitFor();
    assert((await text(gone)).startsWith('This escrow can no longer pay (its sender cancelled it'), `a request on an escrow cancelled meanwhile is refused with "${await text(gone)}"`);
  });

  // ---- admin
  let admin;
  await step('admin signs in and sees integrity ok and the rate', async () => {
    admin = await openAs('admin');
    // The check runs on request (it reads the whole ledger).
    await admin.locator(tid('integrity-idle')).waitFor();
    await admin.locator(tid('run-integrity')).click();
    await waitFor(async () => `for the integrity status ok (shows "${await text(admin.locator(tid('integrity'))).catch(() => '')}")`,
      async () => (await admin.locator(tid('integrity-status')).getAttribute('data-ok')) === 'true');
    assert(await text(admin.locator(tid('integrity-status'))) === 'All checks pass', 'the integrity status is not in words');
    const shown = await text(admin.locator(tid('fx-rate-value')));
    assert(Math.round(Number(shown.replace(/,/g, '')) * 10000) === rateE4, `the rate shows "${shown}", the API says ${fx['USD-KES'].rate}`);
    await waitFor('for the stuck payout count', async () => (await text(admin.locator(tid('stuck-summary')))).startsWith('1 payout is stuck'));
    await checkScreen(admin, 'admin overview');
    await shot(admin, '16-admin.png');
  });

  await step('admin: a rate ten times today\'s (a slipped decimal point) is set only when asked twice', async () => {
    const form = admin.locator(tid('fx-form'));
    // A rate of 0 is said to be out of range, not to have too many decimals.
    await form.locator(tid('fx-rate-input')).fill('0');
    await form.locator(tid('fx-submit')).click();
    await waitFor(async () => `for the range error of a rate of 0 (says "${await text(form.locator(tid('field-error'))).catch(() => '')}")`, async () =>
      (await text(form.locator(tid('field-error'))).catch(() => '')) === 'A rate is from 0.0001 to 100,000 shillings per dollar.');
    // Letters are told that a rate is digits (not "the amount").
    await form.locator(tid('fx-rate-input')).fill('abc');
    await form.locator(tid('fx-submit')).click();
    await waitFor(async () => `for the digits error of a rate of letters (says "${await text(form.locator(tid('field-error'))).catch(() => '')}")`, async () =>
      (await text(form.locator(tid('field-error'))).catch(() => '')) === 'Enter the rate in digits: shillings per US dollar, e.g. 152.25.');
    // A fifth off (a transposed digit) is asked once more too, saying by how much.
    const fifthMore = Math.round(rateE4 * 1.2);
    await form.locator(tid('fx-rate-input')).fill(formatE4(fifthMore));
    await form.locator(tid('fx-submit')).click();
    await waitFor('for the warning of a rate moved by a fifth', async () =>
      (await text(form.locator(tid('field-error'))).catch(() => '')).includes('moves today\'s rate by 20 %'));
    const unchanged = await api(TOKENS.admin, 'GET', '/fx-rates');
    assert(Math.round(Number(unchanged['USD-KES'].rate) * 10000) === rateE4, 'a rate moved by a fifth was set at the first asking');
    const tenfold = formatE4(rateE4 * 10);
    await form.locator(tid('fx-rate-input')).fill(tenfold);
    await form.locator(tid('fx-submit')).click();
    await waitFor('for the warning of a far rate', async () =>
      (await text(form.locator(tid('field-error'))).catch(() => '')).includes('more than 5 times away'));
    let now = await api(TOKENS.admin, 'GET', '/fx-rates');
    assert(Math.round(Number(now['USD-KES'].rate) * 10000) === rateE4, 'a far rate was set at the first asking');
    await form.locator(tid('fx-submit')).click();
    await waitFor('for the far rate to be set', async () => {
      now = await api(TOKENS.admin, 'GET', '/fx-rates');
      return Math.round(Number(now['USD-KES'].rate) * 10000) === rateE4 * 10;
    });
    // The form is drawn again with the new rate: the keyboard is on its new field.
    await waitFor('for the rate\'s field to have the focus', async () => admin.evaluate(() => document.activeElement && document.activeElement.dataset.testid === 'fx-rate-input'));
    await api(TOKENS.admin, 'PUT', '/fx-rates/USD-KES', { rate: formatE4(rateE4) });
  });

  await step('admin sees the M-Pesa float: each balance, what it pays, a warning for each paying account below the alert', async () => {
    const reported = await api(TOKENS.admin, 'GET', '/admin/float');
    const card = admin.locator(tid('float'));
    await waitFor(async () => `for the float card (shows "${await text(card).catch(() => '')}")`,
      async () => (await card.locator(`${tid('float-note')}, ${tid('float-accounts')}`).count()) > 0);
    const note = GATEWAY_NOTES[reported.gateway] || (FLOAT.accounts.length ? null : 'No balance reported yet (asked every few minutes).');
    if (note) assert(await text(card.locator(tid('float-note'))) === note, `the float card says "${await text(card.locator(tid('float-note')))}", expected "${note}"`);
    else assert(await card.locator(tid('float-note')).count() === 0, 'the float card has a gateway note for daraja with balances');
    const rows = card.locator(tid('float-account'));
    assert(await rows.count() === FLOAT.accounts.length, `the float card lists ${await rows.count()} accounts, expected ${FLOAT.accounts.length}`);
    const alert = kesText(FLOAT.alertKesCents);
    let lowSeen = 0;
    for (const a of FLOAT.accounts) {
      const row = card.locator(`[data-testid="float-account"][data-account="${a.name}"]`);
      assert(await row.count() === 1, `the float card does not list ${a.name}`);
      const balance = await text(row.locator(tid('float-balance')));
      assert(balance === kesText(a.cents), `${a.name} shows "${balance}", expected "${kesText(a.cents)}"`);
      const [pays, atRisk] = PAYING_ACCOUNTS[a.name] || ['pays no payouts', null];
      const shownPays = await text(row.locator(tid('float-pays')));
      assert(shownPays === pays, `${a.name} says "${shownPays}", expected "${pays}"`);
      const warning = row.locator(tid('float-low'));
      if (atRisk && FLOAT.alertKesCents > 0 && a.cents < FLOAT.alertKesCents) {
        lowSeen += 1;
        assert(await warning.count() === 1 && await warning.isVisible(), `no visible low-float warning for ${a.name} (${balance} < ${alert})`);
        assert(await warning.getAttribute('role') === 'alert', `the low-float warning of ${a.name} is not role="alert"`);
        const want = `${a.name} is below the alert of ${alert}: ${atRisk} may fail. Top it up in the M-Pesa portal.`;
        const shown = await text(warning);
        assert(shown === want, `the warning of ${a.name} says "${shown}", expected "${want}"`);
      } else {
        assert(await warning.count() === 0, `${a.name} (${balance}) has a low-float warning, the alert is ${alert}`);
      }
    }
    assert(await card.locator('[role="alert"]').count() === lowSeen, `the float card has ${await card.locator('[role="alert"]').count()} alerts, expected ${lowSeen}`);
    if (FLOAT.accounts.length) {
      const time = card.locator(`${tid('float-updated')} time`);
      assert(await time.getAttribute('datetime') === FLOAT.updatedAt, `the float card's time is ${await time.getAttribute('datetime')}, expected ${FLOAT.updatedAt}`);
      const shownAt = await text(time);
      assert(shownAt && shownAt !== FLOAT.updatedAt && shownAt.includes(FLOAT.updatedAt.slice(0, 4)), `the last report shows "${shownAt}", not a date for people`);
    }
    const alertLine = await text(card.locator(tid('float-alert')));
    const wantAlert = FLOAT.alertKesCents > 0 ? `A paying account below ${alert} is flagged.` : 'No low-balance alert is set (REMIT_FLOAT_ALERT_KES).';
    assert(alertLine === wantAlert, `the float card says "${alertLine}", expected "${wantAlert}"`);
  });

  await step('admin: the stuck payout, resolved as failed after a confirmation that says what it does', async () => {
    await nav(admin, 'payouts');
    // Its heading has the keyboard, as every screen's (it is drawn after a read).
    await waitFor('for the Payouts heading to have the focus', async () => admin.evaluate(() => document.activeElement && document.activeElement.tagName === 'H1'));
    const card = admin.locator(`${tid('stuck-payouts')} [data-payout-id="${STUCK_PAYOUT}"]`);
    await card.waitFor();
    assert(await text(admin.locator(tid('stuck-count'))) === '1 payout is stuck and needs you.', `the stuck count says "${await text(admin.locator(tid('stuck-count')))}"`);
    assert((await text(card.locator(tid('resolve-explain-paid')))).includes('money reached the merchant'), 'the Paid choice is not explained');
    assert((await text(card.locator(tid('resolve-explain-failed')))).includes('goes back to its category'), 'the Failed choice is not explained');
    // Whom it pays, to look for at M-Pesa, the requester's name in quotes (a name is the
    // requester's words: "Kenya Power: PayBill 888880, account 1. Agent float" read as the
    // account); and no outcome chosen for the admin.
    await waitFor(async () => `for whom the payout pays (says "${await text(card.locator(tid('payout-merchant'))).catch(() => '')}")`,
      async () => (await text(card.locator(tid('payout-merchant')))).startsWith('Pays \u201cKenya Power\u201d: PayBill 888880'));
    assert(!(await card.locator(tid('resolve-outcome-paid')).isChecked()) && !(await card.locator(tid('resolve-outcome-failed')).isChecked()), 'an outcome is chosen for the admin');
    await card.locator(tid('resolve-submit')).click();
    assert((await text(card.locator('fieldset[data-field="outcome"] .field-error'))) === 'Choose what happened: paid or failed.', 'no outcome chosen is not refused');
    await card.locator(tid('resolve-outcome-paid')).check();
    await card.locator(tid('resolve-submit')).click();
    assert(await text(card.locator(`${tid('resolve-receipt')} ~ .field-error`)) === 'Enter the M-Pesa receipt, or choose Failed.', 'Paid without a receipt is not refused beside the receipt field');
    await card.locator(tid('resolve-receipt')).fill('<b>x</b>');
    await card.locator(tid('resolve-submit')).click();
    assert((await text(card.locator(`${tid('resolve-receipt')} ~ .field-error`))).startsWith('An M-Pesa receipt is 6 to 20 letters and digits'), 'a receipt that is not an M-Pesa code is not refused beside the receipt field');
    assert(!(await card.locator(tid('resolve-confirm')).isVisible()), 'a malformed receipt reached the confirmation');
    // A receipt changed under the question takes the question back: what is sent is what was confirmed.
    await card.locator(tid('resolve-receipt')).fill('qk12ab34cd');
    await card.locator(tid('resolve-submit')).click();
    await card.locator(tid('resolve-confirm')).waitFor();
    assert((await text(card.locator(tid('resolve-confirm-text')))).includes('QK12AB34CD'), 'the confirmation does not name the receipt in capitals');
    await card.locator(tid('resolve-receipt')).fill('x');
    assert(!(await card.locator(tid('resolve-confirm')).isVisible()), 'the confirmation stayed up after the receipt was changed');
    assert(await card.locator(tid('resolve-submit')).isVisible(), 'the Next button did not come back after the receipt was changed');
    await card.locator(tid('resolve-receipt')).fill('');
    await card.locator(tid('resolve-outcome-failed')).check();
    await card.locator(tid('resolve-submit')).click();
    const confirm = card.locator(tid('resolve-confirm'));
    await confirm.waitFor();
    // Escape goes back, as every question's does.
    await admin.keyboard.press('Escape');
    await confirm.waitFor({ state: 'hidden' });
    assert(await admin.evaluate(() => document.activeElement && document.activeElement.dataset.testid) === 'resolve-submit', 'after Escape the focus is not on Next');
    await card.locator(tid('resolve-submit')).click();
    await confirm.waitFor();
    const said = await text(confirm.locator(tid('resolve-confirm-text')));
    assert(said.startsWith('Mark this payout of KES ') && said.includes('goes back to its category'), `the confirmation says "${said}"`);
    await checkScreen(admin, 'stuck payout confirmation');
    await shot(admin, '17-admin-stuck-confirm.png', { docs: 'admin.png' });
    const answer = admin.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === `/payouts/${STUCK_PAYOUT}/resolve`);
    await confirm.locator(tid('resolve-confirm-yes')).click();
    const res = await answer;
    assert(res.status() === 200, `resolving answered ${res.status()}`);
    assert(JSON.parse(res.request().postData()).outcome === 'failed', 'the resolution sent is not "failed"');
    await admin.locator(tid('stuck-payouts')).locator(`[data-payout-id="${STUCK_PAYOUT}"]`).waitFor({ state: 'detached' });
    assert(await text(admin.locator(tid('stuck-count'))) === 'No stuck payouts.', 'the stuck list is not empty after resolving');
    // The card is gone: the keyboard is on the list's heading, not lost to the page.
    await waitFor('for the stuck list\'s heading to have the focus', async () => admin.evaluate(() => document.activeElement && document.activeElement.id === 'stuck-h'));
    const p = (await api(TOKENS.admin, 'GET', '/payouts?status=failed&limit=200')).items.find((x) => x.payoutId === STUCK_PAYOUT);
    assert(p && p.failureReason === 'resolved_failed', `the resolved payout reads back as ${p && p.status} ${p && p.failureReason}`);
  });

  await step('admin: all payouts by status; the raw M-Pesa code is kept small for admins', async () => {
    await admin.locator(tid('payout-status-filter')).selectOption('succeeded');
    const list = admin.locator(tid('payout-list'));
    await waitFor('for the succeeded payouts', async () => {
      const s = await list.locator(tid('payout-card')).evaluateAll((ns) => ns.map((n) => n.dataset.status));
      return s.length >= 2 && s.every((x) => x === 'succeeded');
    });
    const paid = list.locator(tid('payout-card')).filter({ has: admin.locator(tid('receipt'), { hasText: receipt1 }) });
    assert(await paid.count() === 1, 'the paid payout is not among the succeeded ones');
    assert(await paid.locator(tid('simulated')).isVisible(), 'the admin\'s paid payout is not marked Simulated');
    assert(await paid.locator(tid('payout-raw')).count() === 0, 'a paid payout shows M-Pesa\'s bare success code');
    await admin.locator(tid('payout-status-filter')).selectOption('failed');
    await waitFor('for the failed payouts', async () => {
      const s = await list.locator(tid('payout-card')).evaluateAll((ns) => ns.map((n) => n.dataset.status));
      return s.length >= 2 && s.every((x) => x === 'failed');
    });
    const raw = list.locator(`${tid('payout-card')}:not([data-payout-id="${STUCK_PAYOUT}"]) ${tid('payout-raw')}`).first();
    assert(await raw.isVisible(), 'the admin does not see the raw M-Pesa result of a failed payout');
    assert((await text(raw)).startsWith('M-Pesa said:'), `a failed payout's raw result reads "${await text(raw)}"`);
    // The payout resolved by hand above: the admin's words, not M-Pesa's.
    const byHand = list.locator(`[data-payout-id="${STUCK_PAYOUT}"] ${tid('payout-raw')}`);
    assert((await text(byHand)).startsWith('Resolved by an operator:'), `the payout resolved by hand reads "${await text(byHand)}"`);
    assert(!(await text(list.locator(`[data-payout-id="${STUCK_PAYOUT}"]`))).includes('M-Pesa said'), 'the admin\'s own reason is shown as M-Pesa\'s');
    assert(await raw.evaluate((n) => parseFloat(getComputedStyle(n).fontSize) < parseFloat(getComputedStyle(document.body).fontSize)), 'the raw M-Pesa result is not small');
    await checkScreen(admin, 'admin payouts');
  });

  await step('admin: flagged deposits, and the reversed filter', async () => {
    await nav(admin, 'money-in');
    const card = admin.locator(`${tid('deposit-list')} ${tid('deposit-card')}`).filter({ has: admin.locator(tid('deposit-reference'), { hasText: FLAGGED_DEPOSIT }) });
    await card.waitFor();
    assert(await text(card.locator(tid('deposit-status'))) === 'Needs checking', 'the flagged deposit does not say "Needs checking"');
    assert((await text(card.locator(tid('deposit-flag-reason')))).length > 5, 'the flagged deposit does not say why');
    // One paid in euros says euros, not dollars.
    const euros = admin.locator(`${tid('deposit-list')} ${tid('deposit-card')}`).filter({ has: admin.locator(tid('deposit-reference'), { hasText: EURO_DEPOSIT }) });
    assert(await text(euros.locator(tid('deposit-amount'))) === 'EUR 25.00', `a card payment in euros reads "${await text(euros.locator(tid('deposit-amount')))}"`);
    await checkScreen(admin, 'admin flagged deposits');
    await shot(admin, '18-admin-money-in.png');
    await admin.locator(tid('deposit-status-filter')).selectOption('reversed');
    const reversed = admin.locator(`${tid('deposit-list')} ${tid('deposit-card')}`).filter({ has: admin.locator(tid('deposit-reference'), { hasText: REFUNDED_DEPOSIT }) });
    await reversed.waitFor();
    // The refunded one, and the one refunded after its escrow's cancel.
    const listed = await admin.locator(`${tid('deposit-list')} ${tid('deposit-reference')}`).evaluateAll((ns) => ns.map((n) => n.textContent.trim()).sort());
    assert(JSON.stringify(listed) === JSON.stringify([REFUNDED_DEPOSIT, RETURNED_DEPOSIT].sort()), `the reversed filter lists ${JSON.stringify(listed)}`);
    assert((await text(reversed.locator(tid('deposit-reversal-reason')))).includes('refunded'), 'the refunded deposit does not say it was refunded');
  });

  await step('admin: the warning before revoking the token they are signed in with', async () => {
    await nav(admin, 'users');
    // A recipient's SMS go in Swahili from a click (one made by an escrow started in English,
    // and nothing could change it).
    const someone = admin.locator('[data-testid="user-card"][data-role="recipient"]').first();
    await someone.waitFor();
    const spokenBefore = await text(someone.locator(tid('user-sms-language')));
    await someone.locator(tid('user-language-switch')).click();
    const flipped = spokenBefore === 'Their SMS are in English.' ? 'Their SMS are in Swahili.' : 'Their SMS are in English.';
    await waitFor(async () => `for the recipient's SMS language to read "${flipped}" (it reads "${await text(someone.locator(tid('user-sms-language'))).catch(() => '')}")`,
      async () => (await text(someone.locator(tid('user-sms-language'))).catch(() => '')) === flipped);
    // A recipient without a phone is told it needs one before anything is sent.
    await admin.locator(tid('user-role')).selectOption('recipient');
    // The phone's label drops "(optional)" for a recipient, and says it again for a sender.
    const phoneOptional = admin.locator('.field', { has: admin.locator(tid('user-phone')) }).locator('.optional');
    assert(await phoneOptional.isHidden(), 'the phone is still marked optional for a recipient');
    await admin.locator(tid('user-name')).fill('No Phone');
    await admin.locator(tid('user-submit')).click();
    await waitFor('for the recipient\'s phone to be asked for', async () =>
      (await text(admin.locator(`${tid('user-phone')} ~ .field-error`)).catch(() => '')) === 'A recipient needs a phone number: M-Pesa pays it.');
    await admin.locator(tid('user-role')).selectOption('sender');
    assert(await phoneOptional.isVisible(), 'the phone is not marked optional for a sender');
    await admin.locator(tid('user-name')).fill('');
    const own = admin.locator('[data-testid="token-row"][data-own="true"]');
    await own.first().waitFor();
    assert(await own.count() === 1, `${await own.count()} token rows are marked as the admin's own`);
    assert(TOKENS.admin.startsWith(await own.getAttribute('data-prefix')), 'the row marked as the admin\'s own is another token');
    await own.locator(tid('revoke-token')).click();
    const warning = own.locator(tid('revoke-own-warning'));
    assert(await warning.isVisible(), 'no warning before revoking the admin\'s own token');
    assert((await text(warning)).startsWith('This is the token you are signed in with.'), `the warning says "${await text(warning)}"`);
    assert(await text(own.locator(tid('confirm-revoke'))) === 'Revoke my token and sign me out', 'the confirm button does not say it signs out');
    const other = admin.locator('[data-testid="token-row"][data-own="false"]').first();
    // Each Revoke is named with whose token it is (a list of the page's buttons said "Revoke"
    // for every user), and Escape keeps the token.
    const otherName = await text(admin.locator(tid('user-card')).filter({ has: other }).locator('.card-title'));
    const named = await other.locator(tid('revoke-token')).getAttribute('aria-label');
    assert(named && named.includes(await other.getAttribute('data-prefix')) && otherName.startsWith(named.split('(').pop().replace(')', '')), `a Revoke button is named "${named}" on ${otherName}'s card`);
    await other.locator(tid('revoke-token')).click();
    await admin.keyboard.press('Escape');
    await waitFor('for Escape to keep the token', async () => !(await other.locator(tid('revoke-confirm')).isVisible()));
    assert(await admin.evaluate(() => document.activeElement && document.activeElement.dataset.testid) === 'revoke-token', 'after Escape the focus is not back on Revoke');
    await other.locator(tid('revoke-token')).click();
    assert(await other.locator(tid('revoke-own-warning')).count() === 0, 'another user\'s token gets the own-token warning');
    // Enter on the question keeps the token, whoever's it is.
    assert(await admin.evaluate(() => document.activeElement && document.activeElement.dataset.testid) === 'keep-token', 'the revoke question does not focus Keep');
    await checkScreen(admin, 'users with the own-token warning');
    await shot(admin, '19-admin-users.png');
    await own.locator(tid('keep-token')).click();
    await other.locator(tid('keep-token')).click();
    await api(TOKENS.admin, 'GET', '/me');
  });

  await step('admin: a webhook endpoint (its secret shown once), paused; the text messages remit recorded', async () => {
    await nav(admin, 'notifications');
    await admin.locator(tid('no-endpoints')).waitFor();
    await admin.locator(tid('endpoint-submit')).click();
    assert(await admin.locator(tid('endpoint-url-input')).getAttribute('aria-invalid') === 'true', 'an empty URL is not marked in the form');
    await admin.locator(tid('endpoint-url-input')).fill('http://127.0.0.1:9/remit-hooks');
    await admin.locator(tid('event-float.low')).uncheck();
    await admin.locator(tid('endpoint-submit')).click();
    const secret = admin.locator(tid('endpoint-secret'));
    await secret.waitFor();
    assert(/^whsec_[0-9a-f]{64}$/.test(await text(secret)), `the secret reads "${await text(secret)}"`);
    // A second Enter copies it; it does not put away the only sight of the secret.
    assert(await admin.evaluate(() => document.activeElement && document.activeElement.dataset.testid) === 'copy-secret', 'the new secret does not focus Copy');
    const card = admin.locator(tid('endpoint-card'));
    await card.waitFor();
    assert(await text(card.locator(tid('endpoint-url'))) === 'http://127.0.0.1:9/remit-hooks', 'the endpoint card does not show its URL');
    assert(await card.locator(`${tid('endpoint-events')} li`).count() === 12, 'the endpoint does not list the 12 events chosen');
    await checkScreen(admin, 'notifications with a new secret');
    await admin.locator(tid('secret-done')).click();
    assert(await admin.locator(tid('endpoint-secret')).count() === 0, 'the secret is still shown');
    // A pause loses what happens meanwhile: asked once more, "Keep sending" focused.
    await card.locator(tid('disable-endpoint')).click();
    assert(await card.locator(tid('keep-sending')).evaluate((n) => n === document.activeElement), 'the pause question does not focus "Keep sending"');
    // Escape keeps sending, as every question's safe answer; asked again, the pause is made.
    await admin.keyboard.press('Escape');
    await card.locator(tid('pause-confirm')).waitFor({ state: 'hidden' });
    assert(await card.locator(tid('disable-endpoint')).evaluate((n) => n === document.activeElement), 'after Escape the focus is not back on Pause');
    await card.locator(tid('disable-endpoint')).click();
    await card.locator(tid('confirm-pause')).click();
    await waitFor('for the endpoint to be paused', async () => (await admin.locator(tid('endpoint-card')).getAttribute('data-enabled')) === 'false');
    // A pause is not a buffer: the card says so.
    assert((await text(admin.locator(`${tid('endpoint-card')} ${tid('endpoint-paused-note')}`))).startsWith('While paused, what happens is not sent to it'),
      'a paused endpoint does not say that what happens meanwhile is not sent');
    await admin.locator(`${tid('endpoint-card')} ${tid('show-deliveries')}`).click();
    await admin.locator(`${tid('endpoint-card')} ${tid('delivery-list')}`).waitFor();
    const sms = admin.locator(`${tid('sms-list')} ${tid('sms-row')}`);
    await waitFor('for the text messages', async () => (await sms.count()) > 0);
    const logged = admin.locator(`${tid('sms-list')} [data-testid="sms-row"][data-status="logged"]`).first();
    assert(await text(logged.locator(tid('sms-status'))) === 'Recorded, not sent', 'a logged SMS does not say it was not sent');
    assert((await text(logged.locator(tid('sms-body')))).startsWith('remit: '), 'an SMS body is not shown');
    await checkScreen(admin, 'notifications');
    await shot(admin, '19b-admin-notifications.png');
  });

  await step('admin opens the audit log of the escrow', async () => {
    await nav(admin, 'escrows');
    // A text that is no id is told what an id looks like, not "no audit lines for this id".
    await admin.locator(tid('audit-entity')).fill('hello');
    await admin.locator(tid('audit-submit')).click();
    await waitFor('for the audit search of no id to say so', async () =>
      (await text(admin.locator(`${tid('audit-entity')} ~ .field-error`)).catch(() => '')).startsWith('Nothing is recorded under this: ids look like esc_'));
    await admin.locator(tid('audit-entity')).fill(escrowId);
    await admin.locator(tid('audit-submit')).click();
    await waitFor('for the audit log of the escrow', async () => (await admin.locator(`${tid('audit-result')} ${tid('audit-table')}`).count()) > 0);
    const words = await admin.locator(`${tid('audit-result')} ${tid('audit-action-words')}`).allTextContents();
    assert(words.includes('Escrow made') && words.includes('Escrow fully funded'), `the audit log does not say its actions in words: ${JSON.stringify(words)}`);
    // The people an admin reads about are named (the agent who took the cash), their ids beside.
    const actors = await admin.locator(`${tid('audit-result')} ${tid('audit-actor-words')}`).allTextContents();
    assert(actors.some((a) => a.endsWith('(Kiosk agent)')), `the audit log's actors read ${JSON.stringify(actors)}`);
    // The new escrow's categories, item by item with their dollars, not a line of JSON.
    const made = admin.locator(`${tid('audit-result')} ${tid('audit-row')}`).filter({ hasText: 'Escrow made' });
    const details = await text(made);
    assert(details.includes('USD 250.00') && !details.includes('[{'), `the escrow's categories read "${details}"`);
    await checkScreen(admin, 'admin escrows with an audit log');
    // A customer on the phone: the admin finds their escrow by its deposit code (typed in small
    // letters, without its dash), then lists every escrow again.
    await admin.locator(tid('escrow-search')).fill(shortRef.replace('-', '').toLowerCase());
    await admin.locator(tid('escrow-search-submit')).click();
    await waitFor(async () => `for the admin's search by deposit code (the list shows ${await admin.locator(`${tid('escrow-list')} [data-testid="escrow-card"]`).count()} cards)`, async () => {
      const ids = await admin.locator(`${tid('escrow-list')} [data-testid="escrow-card"]`).evaluateAll((cards) => cards.map((c) => c.dataset.escrowId));
      return ids.length === 1 && ids[0] === escrowId;
    });
    const found = await text(admin.locator(tid('escrow-summary')));
    assert(found.includes(`(deposit code ${shortRef})`), `the admin's search says "${found}"`);
    // A code with a look-alike no code has (0) is refused on the form in words that say so (the
    // server refused it in English), and empties the list: its one card was the search
    // before's answer, not this one's.
    await admin.locator(tid('escrow-search')).fill('K7M3Q9P0');
    await admin.locator(tid('escrow-search-submit')).click();
    const lookAlike = await text(admin.locator(`${tid('escrow-search')} ~ .field-error`));
    assert(lookAlike.startsWith('A deposit code has no 0, 1, I or O'), `a code with a 0 is refused with "${lookAlike}"`);
    const cardsLeft = await admin.locator(`${tid('escrow-list')} [data-testid="escrow-card"]`).count();
    assert(cardsLeft === 0, `a refused search left ${cardsLeft} cards of the search before`);
    await admin.locator(tid('escrow-search')).fill('12345');
    await admin.locator(tid('escrow-search-submit')).click();
    const refused = await text(admin.locator(`${tid('escrow-search')} ~ .field-error`));
    assert(refused.startsWith('Enter a Kenyan phone number'), `a search of no phone nor code is refused with "${refused}"`);
    await admin.locator(tid('escrow-search-clear')).click();
    await waitFor('for every escrow to be listed again', async () => (await admin.locator(`${tid('escrow-list')} [data-testid="escrow-card"]`).count()) > 1);
  });

  await step('admin: an escrow whose card deposit Stripe refunded is flagged; its flag is cleared when asked twice', async () => {
    const card = admin.locator(`[data-testid="escrow-card"][data-escrow-id="${REFUNDED_ESCROW}"]`);
    await waitFor('for the refunded escrow in the list', async () => (await card.count()) === 1);
    const flag = await text(card.locator(tid('escrow-flag')));
    assert(flag.startsWith('Flagged for checking: deposit ') && flag.includes('refunded') && flag.endsWith('Approvals, payouts not yet sent and cancelling wait until an admin clears the flag.'),
      `the escrow's flag reads "${flag}"`);
    await card.locator(tid('clear-flag')).click();
    await card.locator(tid('confirm-clear-flag')).waitFor();
    // The safe answer has the focus: a second Enter keeps the flag.
    assert(await admin.evaluate(() => document.activeElement && document.activeElement.dataset.testid) === 'keep-flag', 'the focus is not on "Keep the flag"');
    await checkScreen(admin, 'admin escrows with a flag to clear');
    // Kept: the question goes, the focus back on the button that asked it.
    await card.locator(tid('keep-flag')).click();
    await waitFor('for the question to go', async () => (await card.locator(tid('clear-flag-form')).count()) === 0);
    assert(await admin.evaluate(() => document.activeElement && document.activeElement.dataset.testid) === 'clear-flag', 'the focus is not back on "Clear the flag"');
    await card.locator(tid('clear-flag')).click();
    await card.locator(tid('confirm-clear-flag')).click();
    await waitFor('for the flag to be gone', async () => (await card.locator(tid('escrow-flag')).count()) === 0);
    const e = await api(TOKENS.admin, 'GET', `/escrows/${REFUNDED_ESCROW}`);
    assert(e.flagReason == null, `the escrow is still flagged: ${e.flagReason}`);
  });

  // ---- Kiswahili
  await step('recipient switches to Kiswahili: it stays after a reload; headings and states translated; every screen fits', async () => {
    currentPage = recipient;
    await toSwahili(recipient, 'recipient');
    await swahiliScreens(recipient, 'recipient', { mine: 'Mifuko yangu', requests: 'Maombi' });
    const list = recipient.locator(tid('request-list'));
    await waitFor('for the requests in Kiswahili', async () => (await list.locator(tid('request-row')).count()) > 0);
    const words = await list.locator(tid('request-status')).evaluateAll((ns) => Object.fromEntries(ns.map((n) => [n.dataset.status, n.textContent.trim()])));
    for (const [status, word] of [['paid', 'Imelipwa'], ['pending_approval', 'Inasubiri idhini'], ['failed', 'Malipo hayakufaulu — pesa imerudishwa'], ['rejected', 'Imekataliwa']]) {
      assert(words[status] === word, `${status} reads "${words[status]}" in Kiswahili, expected "${word}"`);
    }
    assert(await text(recipient.locator('#nav [data-view="requests"]')) === 'Maombi', 'the nav is not in Kiswahili');
    await recipient.setViewportSize(PHONES[0]);
    await shot(recipient, '20-recipient-sw-phone.png', { docs: 'recipient-phone-sw.png' });
    await recipient.setViewportSize(DESKTOP);
    await list.locator(`[data-request-id="${request1}"] ${tid('open-request')}`).click();
    const receipt = recipient.locator(tid('payment-receipt'));
    await receipt.waitFor();
    assert(await text(receipt.locator('h2')) === 'Risiti ya malipo', 'the receipt is not in Kiswahili');
    assert(await text(receipt.locator(tid('receipt-simulated-tag'))) === 'Ya majaribio', 'the Simulated mark is not in Kiswahili');
    await checkScreen(recipient, 'recipient receipt (Kiswahili)');
  });

  await step('the agent, the sender and the admin in Kiswahili: every screen fits', async () => {
    currentPage = agent;
    await toSwahili(agent, 'agent');
    await swahiliScreens(agent, 'agent', { payments: 'Malipo', deposits: 'Amana', requests: 'Maombi' });
    // A request that is not there is said in Swahili ("Haipatikani. (payment request not
    // found)" kept the server's English).
    await agent.evaluate(() => { window.location.hash = '#/requests/pr_0000000000000000000000000a'; });
    const missing = await text(agent.locator(tid('request-load-error')));
    assert(missing === 'Ombi hili la malipo halipatikani.', `a missing request reads "${missing}" in Kiswahili`);
    currentPage = sender;
    await toSwahili(sender, 'sender');
    await swahiliScreens(sender, 'sender', { approvals: 'Idhini', escrows: 'Mifuko', 'new-escrow': 'Mfuko mpya' });
    const escrow = escrowCard(sender, escrowId);
    await nav(sender, 'escrows');
    await escrow.waitFor();
    assert(await text(escrow.locator(tid('escrow-status'))) === 'Inatumika', 'an active escrow does not read "Inatumika"');
    // A refusal the server says in English is said whole in Kiswahili, with its figures: it
    // read as a phrase for its code and the English in brackets. Rejecting a paid request, as
    // the server answers it; the money refusals as tests/api/http_api.rs pins their words.
    const res = await fetch(`${BASE}/payment-requests/${request1}/reject`, {
      method: 'POST', headers: { Authorization: `Bearer ${TOKENS.sender}`, 'Content-Type': 'application/json' }, body: '{}',
    });
    const refusal = await res.json();
    assert(res.status === 409 && refusal.code === 'invalid_state', `rejecting a paid request answered ${res.status}: ${JSON.stringify(refusal)}`);
    const said = await sender.evaluate(async (refusals) => {
      const a = await import('/js/api.js');
      return refusals.map(([status, code, message]) => a.errorText(new a.ApiError(status, code, message)));
    }, [
      [409, refusal.code, refusal.error],
      [409, 'invalid_state', 'escrow is pending_deposit and cannot become approved'],
      [409, 'insufficient_category_balance', 'category school_fees balance is USD 50.00, payment needs USD 60.00'],
      [409, 'daily_limit_exceeded', 'daily limit is USD 100.00, USD 90.00 already approved today, payment needs USD 12.50'],
      [409, 'invalid_state', 'escrow is being repainted'],
      [409, 'request_expired', "this payment request expired: its USD price was fixed at an old rate; make a new request at today's rate"],
      [503, 'busy', 'the database is busy; retry the request'],
      // Held escrows and a cancel while a payout is on its way, as src/service says them.
      [409, 'invalid_state', 'a card deposit of this escrow was refunded or disputed at Stripe, and the money may be taken back: the escrow\'s money is not approved until an admin has checked it and cleared the escrow\'s flag'],
      [409, 'invalid_state', 'a failed payout of this escrow is flagged for the operator (M-Pesa reported it paid after all): the escrow\'s money is not cancelled until an admin has resolved it'],
      [409, 'invalid_state', 'escrow is active with a payout in flight and cannot become cancelled until it settles'],
    ]);
    const want = [
      'Hili haliwezi kufanyika sasa: hali ya ombi ni "Imelipwa".',
      // Not final: an escrow waiting for its money (approving there is not "no more").
      'Hili haliwezi kufanyika sasa: hali ya mfuko ni "Inasubiri amana".',
      'Kundi la "Karo ya shule" lina USD 50.00 tu; malipo haya yanahitaji USD 60.00.',
      'Kikomo cha siku ni USD 100.00, USD 90.00 zimeshaidhinishwa leo, na malipo haya yanahitaji USD 12.50.',
      // A message of no shape it knows is said as before.
      // (Not "any more": an escrow held for an admin, or with a payout in flight, waits.)
      'Hili haliwezi kufanyika sasa. (escrow is being repainted)',
      // A code whose sentence says it all, without the English.
      'Muda wa ombi hili umeisha; tuma ombi jipya kwa kiwango cha leo.',
      'Seva ina kazi nyingi. Jaribu tena baada ya muda mfupi.',
      'Pesa za mfuko huu zimezuiliwa: amana ya kadi ilirudishwa au kupingwa kwenye Stripe. Msimamizi aikague na kuondoa alama ya mfuko kwanza.',
      'Pesa za mfuko huu zimezuiliwa: M-Pesa iliripoti kuwa malipo yaliyoshindwa yalilipwa. Msimamizi ayatatue kwanza.',
      'Mfuko huu hauwezi kughairiwa sasa: malipo yake yanaendelea. Subiri yalipwe au pesa irudishwe.',
    ];
    for (let i = 0; i < want.length; i += 1) assert(said[i] === want[i], `refusal ${i} reads "${said[i]}" in Kiswahili, expected "${want[i]}"`);
    currentPage = admin;
    await toSwahili(admin, 'admin');
    await swahiliScreens(admin, 'admin', { overview: 'Muhtasari', escrows: 'Mifuko', payouts: 'Malipo ya M-Pesa', 'money-in': 'Pesa zilizoingia', users: 'Watumiaji na tokeni', notifications: 'Arifa' });
  });

  await step('agent (in Kiswahili): a request sent after the rate changed says the rate it was priced at', async () => {
    currentPage = agent;
    await agent.evaluate((id) => { window.location.hash = `#/pay/${id}`; }, escrowId);
    const form = agent.locator(tid('request-form'));
    await form.waitFor();
    await fillRequest(agent, { category: 'electricity', amountKes: 160, merchantName: 'Kenya Power', reference: 'RATE-1' });
    const newE4 = rateE4 + 100000;
    await api(TOKENS.admin, 'PUT', '/fx-rates/USD-KES', { rate: formatE4(newE4) });
    try {
      await submitRequest(agent);
      const said = await text(agent.locator('#notice .banner-text'));
      assert(said.includes('kiwango kipya') && said.includes('(fomu ilionyesha'), `the notice does not say the new rate: "${said}"`);
      assert(await agent.locator('#notice.banner-warn').count() === 1, 'the changed rate is not a warning');
      // The escrow's card beside it says the new rate too (it kept the old one for up to 10 s).
      const newRate = formatE4(newE4).replace(/0+$/, '').replace(/\.$/, '');
      await waitFor(async () => `for the card to say the new rate (it says "${await text(agent.locator(tid('kes-rate-note')))}")`,
        async () => (await text(agent.locator(tid('kes-rate-note')))).includes(newRate), 3000);
    } finally {
      await api(TOKENS.admin, 'PUT', '/fx-rates/USD-KES', { rate: formatE4(rateE4) });
    }
  });

  await step('agent (in Kiswahili): a refused search empties the list; a bad amount is told its mistake; cash recorded after the rate changed says so', async () => {
    currentPage = agent;
    const made = await api(TOKENS.sender, 'POST', '/escrows', {
      recipientPhone: '0712345678', recipientName: 'Wanjiru', totalAmountUsd: 20, categories: ['water'],
    });
    const code = `${made.shortRef.slice(0, 4)}-${made.shortRef.slice(4)}`;
    await nav(agent, 'deposits');
    await agent.locator(tid('search-phone')).fill(code);
    await agent.locator(tid('search-submit')).click();
    const card = escrowCard(agent, made.escrowId);
    await card.waitFor();
    // A search the form refuses leaves no card of the search before to act on.
    await agent.locator(tid('search-phone')).fill('07123');
    await agent.locator(tid('search-submit')).click();
    await waitFor('for the refused search to empty the list', async () => (await agent.locator(tid('escrow-card')).count()) === 0);
    assert((await text(agent.locator(tid('escrow-summary')))).startsWith('Hakuna kilichotafutwa'), `after a refused search the summary says "${await text(agent.locator(tid('escrow-summary')))}"`);
    await agent.locator(tid('search-phone')).fill(code);
    await agent.locator(tid('search-phone')).press('Enter');
    await card.waitFor();
    // The search box was disabled while it searched: the keyboard's focus is back in it.
    await waitFor('for the focus to come back to the search box', async () => (await agent.evaluate(() => document.activeElement && document.activeElement.dataset.testid)) === 'search-phone');
    await card.locator(tid('record-deposit')).click();
    await card.locator(tid('deposit-currency-kes')).check();
    await card.locator(tid('deposit-amount')).fill('-50');
    await card.locator(tid('deposit-submit')).click();
    const minus = await text(card.locator(`${tid('deposit-amount')} ~ .field-error`));
    assert(minus.includes('bila alama ya kutoa'), `a negative amount is told "${minus}"`);
    // Shillings worth less than a US cent: told before the question, in Kiswahili (the
    // server's English came after it).
    await card.locator(tid('deposit-amount')).fill('1');
    await card.locator(tid('deposit-submit')).click();
    const cent = await text(card.locator(`${tid('deposit-amount')} ~ .field-error`));
    assert(cent === 'Hicho ni chini ya senti moja ya dola kwa kiwango cha leo: hakuna kitakachohesabiwa.', `KES 1 is told "${cent}"`);
    assert(!(await card.locator(tid('deposit-confirm')).isVisible()), 'the question was asked of KES 1');
    await card.locator(tid('deposit-amount')).fill('1500');
    const newE4 = rateE4 + 100000;
    await api(TOKENS.admin, 'PUT', '/fx-rates/USD-KES', { rate: formatE4(newE4) });
    try {
      const answer = agent.waitForResponse((r) => r.request().method() === 'POST' && /\/deposits$/.test(new URL(r.url()).pathname));
      await card.locator(tid('deposit-submit')).click();
      await card.locator(tid('deposit-confirm-yes')).click();
      const d = await (await answer).json();
      assert(Number(d.rateKesPerUsdE4) === newE4, `the deposit was priced at ${d.rateKesPerUsdE4}`);
      await agent.locator(tid('deposit-receipt')).waitFor();
      const said = await text(agent.locator('#notice .banner-text'));
      assert(said.includes('kiwango kipya') && said.includes('(fomu ilionyesha'), `cash recorded at a new rate is said as "${said}"`);
      assert(await agent.locator('#notice.banner-warn').count() === 1, 'cash recorded at a new rate is not a warning');
      // The card below says the new rate, and what is still due at it.
      const note = await text(card.locator(tid('kes-rate-note')));
      assert(note.includes(formatE4(newE4).replace(/00$/, '')), `after cash at a new rate the card says "${note}"`);
    } finally {
      await api(TOKENS.admin, 'PUT', '/fx-rates/USD-KES', { rate: formatE4(rateE4) });
      // The screens' shared rate is read again now, as a Refresh would (the next step's form
      // must not be priced at the rate just put back).
      await agent.evaluate(async () => { await (await import('/js/rates.js')).todayRate({ fresh: true }); });
    }
    // A reference this kiosk used for another deposit: the server's refusal is said beside the
    // field in Kiswahili, not in English in brackets.
    await agent.locator(tid('search-phone')).fill(code);
    await agent.locator(tid('search-submit')).click();
    await card.waitFor();
    await card.locator(tid('record-deposit')).click();
    await card.locator(tid('deposit-currency-usd')).check();
    await card.locator(tid('deposit-amount')).fill('1');
    await card.locator(tid('deposit-reference')).fill('BOOK-7');
    await card.locator(tid('deposit-submit')).click();
    await card.locator(tid('deposit-confirm-yes')).click();
    const used = card.locator(`${tid('deposit-reference')} ~ .field-error`);
    await used.first().waitFor();
    assert(await text(used) === 'Nambari hii ya kumbukumbu imeshatumika kwa amana nyingine: ipe hii nambari yake, au iache tupu.', `a reference used before is told "${await text(used)}"`);
  });

  let lostAnswerRequest;
  await step('agent: a Send whose answer was lost, sent again after a reload of the page, makes one request', async () => {
    currentPage = agent;
    const own = (await api(TOKENS.sender, 'POST', '/escrows', { recipientPhone: '0733000444', recipientName: 'Achieng', totalAmountUsd: 30, categories: ['water'] })).escrowId;
    await api(TOKENS.agent, 'POST', `/escrows/${own}/deposits`, { amountUsd: 30, reference: 'achieng-cash-1' });
    await agent.evaluate((id) => { window.location.hash = `#/pay/${id}`; }, own);
    const form = agent.locator(tid('request-form'));
    await form.waitFor();
    // Shillings written as a kiosk writes them, with "/=": the request is for KES 700.
    await fillRequest(agent, { category: 'water', amountKes: '700/=', merchantName: 'Maji Safi', reference: 'LOST-1' });
    // The first Send reaches the server, which records the request; its answer never reaches
    // the page (the connection is cut), which says it could not reach the server.
    const pattern = '**/payment-requests';
    let reached;
    const sent = new Promise((r) => { reached = r; });
    await agent.route(pattern, async (route) => {
      if (route.request().method() !== 'POST') return route.continue();
      await route.fetch().catch(() => {});
      await route.abort('connectionreset');
      return reached();
    });
    try {
      await form.locator(tid('submit-request')).click();
      await sent;
      await form.locator('.form-error:not([hidden])').waitFor();
    } finally {
      await agent.unroute(pattern);
    }
    // The agent reloads the page (the tab keeps its session), and sends the same again: it
    // goes with the first Send's key (before, a reload forgot it and made a second request).
    await agent.reload({ waitUntil: 'domcontentloaded' });
    await agent.locator(tid('whoami')).waitFor();
    await form.waitFor();
    await fillRequest(agent, { category: 'water', amountKes: '700/=', merchantName: 'Maji Safi', reference: 'LOST-1' });
    const requestId = await submitRequest(agent);
    const said = await text(agent.locator('#notice .banner-text'));
    assert(said.includes('limeshatumwa'), `the second Send does not say the request had been sent already: "${said}"`);
    const listed = await api(TOKENS.sender, 'GET', `/payment-requests?escrowId=${own}`);
    const ids = listed.items.map((r) => r.paymentRequestId);
    assert(ids.length === 1 && ids[0] === requestId, `after a lost answer and a second Send the escrow has requests ${ids.join(', ')}, expected only ${requestId}`);
    assert(listed.items[0].amountKesCents === 70000, `"700/=" asked for ${listed.items[0].amountKesCents} cents`);
    // The request followed under "Sent from here" stays followed when the language changes
    // (its tracker went with the redraw).
    const followed = agent.locator(`${tid('trackers')} [data-testid="tracker"][data-request-id="${requestId}"]`);
    await followed.waitFor();
    await agent.locator(tid('lang-en')).click();
    await waitFor('for the request sent to be followed in English too', async () => (await agent.evaluate(() => document.documentElement.lang)) === 'en'
      && (await followed.count()) === 1 && (await followed.isVisible()));
    // And the notice says it again in English (it stayed in Kiswahili beside English buttons).
    const again = await text(agent.locator('#notice .banner-text'));
    assert(again.startsWith('This request had been sent already'), `after the switch to English the notice says "${again}"`);
    await agent.locator(tid('lang-sw')).click();
    await waitFor('for the page to be in Kiswahili again', async () => (await agent.evaluate(() => document.documentElement.lang)) === 'sw'
      && (await followed.count()) === 1);
    lostAnswerRequest = requestId;
  });

  await step('sender: an Approve whose answer was lost is followed under "Decided" once the list shows it gone', async () => {
    currentPage = sender;
    // (The sender reads Kiswahili by now: the card is found by its request, not its words.)
    await nav(sender, 'approvals');
    const card = sender.locator(`${tid('pending-list')} [data-testid="request-card"][data-request-id="${lostAnswerRequest}"]`);
    await waitFor(`for request ${lostAnswerRequest} among the sender's pending approvals`, async () => {
      if (await card.count()) return true;
      await sender.locator(tid('refresh')).click().catch(() => {});
      return false;
    }, STEP_TIMEOUT_MS, 700);
    const pattern = `**/payment-requests/${lostAnswerRequest}/approve`;
    let reached;
    const sent = new Promise((r) => { reached = r; });
    await sender.route(pattern, async (route) => {
      await route.fetch().catch(() => {});
      await route.abort('connectionreset');
      return reached();
    });
    try {
      await card.locator(tid('approve')).click();
      await card.locator(tid('confirm-approve')).click();
      await sent;
    } finally {
      await sender.unroute(pattern);
    }
    await sender.locator(tid('refresh')).click();
    await sender.locator(`${tid('decided-list')} [data-testid="tracker"][data-request-id="${lostAnswerRequest}"]`).waitFor();
    const r = await api(TOKENS.sender, 'GET', `/payment-requests/${lostAnswerRequest}`);
    assert(r.status !== 'pending_approval', `the request is still ${r.status}`);
  });

  await step('sender: "could not reach the server" goes once the server answers again', async () => {
    currentPage = sender;
    await nav(sender, 'approvals');
    const banner = sender.locator('#global-error');
    // Offline: every call fails (the screen's own reads every few seconds too).
    const pattern = '**/*';
    await sender.route(pattern, (route) => route.abort('internetdisconnected'));
    try {
      await sender.locator(tid('refresh')).click();
      await banner.waitFor({ state: 'visible' });
    } finally {
      await sender.unroute(pattern);
    }
    await sender.locator(tid('refresh')).click();
    await banner.waitFor({ state: 'hidden' });
  });

  await step('a reload that cannot reach the server keeps the session, back once it answers, gone once forgotten', async () => {
    const page = await newPage('recipient (second tab)');
    currentPage = page;
    try {
      await signIn(page, 'recipient', TOKENS.recipient);
      const pattern = '**/me';
      const box = page.locator('#signin-form .form-error');
      const offline = async () => {
        await page.route(pattern, (route) => route.abort('internetdisconnected'));
        await page.reload({ waitUntil: 'domcontentloaded' });
        await box.waitFor({ state: 'visible' });
        const said = await text(box);
        assert(said.includes('kept') && said.includes('Forget it'), `the sign-in screen does not say the tab's session is kept: "${said}"`);
      };
      // The server answers again: the session comes back by itself (tried every 5 s).
      await offline();
      await page.unroute(pattern);
      await page.locator(tid('whoami')).waitFor();
      await offline();
      try {
        // Forgotten while a token of someone's own is half typed: what they typed stays.
        await page.locator(tid('token-input')).fill('rmt_partly');
        await page.locator(tid('signin-forget')).click();
        assert(await page.locator(tid('token-input')).inputValue() === 'rmt_partly', '"Forget it" emptied what was typed');
        const kept = await page.evaluate(() => sessionStorage.getItem('remit.token'));
        assert(kept === null, 'the session is still kept in the tab after "Forget it"');
        assert((await text(box)).includes('forgotten'), `"Forget it" does not say the session was forgotten: "${await text(box)}"`);
        assert(!(await page.locator(tid('signin-forget')).count()), '"Forget it" stays after the session was forgotten');
      } finally {
        await page.unroute(pattern);
      }
      // The server answers again: a reload is not signed in by itself.
      await page.reload({ waitUntil: 'domcontentloaded' });
      await page.locator(tid('token-input')).waitFor();
      assert(!(await page.locator(tid('whoami')).isVisible()), 'a reload after "Forget it" signed the tab in again');
    } finally {
      await page.context().close();
    }
  });

  await step('agent: a screen first opened while the server cannot be reached is drawn again once it answers', async () => {
    currentPage = agent;
    await nav(agent, 'payments');
    const pattern = '**/payment-requests*';
    await agent.route(pattern, (route) => route.abort('internetdisconnected'));
    try {
      // (One escrow's requests: the screen reads them at once, where every customer's wait
      // for the agent to ask.)
      await agent.evaluate((id) => { window.location.hash = `#/requests?escrow=${id}`; }, escrowId);
      await agent.locator('#global-error').waitFor({ state: 'visible' });
      const errorSaid = await text(agent.locator('#global-error .banner-text'));
      assert(!errorSaid.includes('mara moja tu') && !errorSaid.includes('only once'), `a failed read speaks of sending again: "${errorSaid}"`);
    } finally {
      await agent.unroute(pattern);
    }
    await waitFor('for the requests screen to be drawn again', async () => {
      const summary = agent.locator(tid('request-summary'));
      return (await summary.count()) === 1 && !(await text(summary)).endsWith('…');
    });
    await agent.locator('#global-error').waitFor({ state: 'hidden' });
  });

  await step('without a gateway, a queued payout is settled by hand from the payouts list', async () => {
    const err = await held;
    if (err) throw err instanceof FlowError ? new FlowError(`held payouts: ${err.message}`) : err;
  });

  await step('the idle sign-out (on its own server) warned, waited for input, and signed out', async () => {
    const err = await idle;
    if (err) throw err instanceof FlowError ? new FlowError(`idle sign-out: ${err.message}`) : err;
  });

  await step('tokens are nowhere in URLs or the DOM; no script errors', async () => {
    await checkNoTokenLeak();
    assert(pageErrors.length === 0, `script or Content-Security-Policy errors in the page: ${pageErrors.join('; ')}`);
    log(`  ${screensChecked} screens checked at ${[DESKTOP, ...PHONES].map((s) => s.width).join(', ')} px`);
  });
}

async function failureShots() {
  try {
    if (currentPage && !currentPage.isClosed()) await currentPage.screenshot({ path: path.join(SHOTS, 'failure.png'), fullPage: true, timeout: 5000 });
    for (const [role, page] of Object.entries(pages)) {
      if (page !== currentPage && !page.isClosed()) await page.screenshot({ path: path.join(SHOTS, `failure-${role}.png`), fullPage: true, timeout: 5000 }).catch(() => {});
    }
  } catch (_) { /* best effort */ }
}

async function finish(code) {
  if (browser) await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  if (tmpBase) fs.rmSync(tmpBase, { recursive: true, force: true });
  process.exit(code);
}

const overall = setTimeout(async () => {
  console.error(`FAIL: the flow took more than ${FLOW_LIMIT_MS / 1000} s (at step: ${currentStep})`);
  await failureShots();
  await finish(1);
}, FLOW_LIMIT_MS);

try {
  await main();
  clearTimeout(overall);
  log(`PASS: browser flow complete; screenshots in ${SHOTS}`);
  await finish(0);
} catch (err) {
  clearTimeout(overall);
  const why = err instanceof FlowError ? err.message : (err && err.stack) || String(err);
  console.error(`FAIL at step "${currentStep}": ${why}`);
  if (pageErrors.length) console.error(`script errors in the page: ${pageErrors.join('; ')}`);
  await failureShots();
  console.error(`screenshots in ${SHOTS}`);
  await finish(1);
}
