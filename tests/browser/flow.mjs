// End-to-end browser test of the remit web UI.
//
//   REMIT_URL=http://127.0.0.1:40123 REMIT_SENDER_TOKEN=… REMIT_AGENT_TOKEN=… REMIT_ADMIN_TOKEN=… \
//   REMIT_FAIL_ACCOUNT=… [REMIT_FLOAT='{"alertKesCents":…,"updatedAt":"…","accounts":[{"name":…,"cents":…}]}'] \
//   [REMIT_SCREENSHOT_DIR=dir] [CHROMIUM=/usr/bin/chromium] node flow.mjs
//
// REMIT_FLOAT: the M-Pesa balances the server has recorded and its float alert, which the admin
// overview must show (without it: no balances recorded, no alert).
//
// Drives Debian's Chromium through playwright-core (no browser download). Each role has its own
// browser context, so its own sessionStorage. Every wait is bounded; the whole flow is capped at
// FLOW_LIMIT_MS. Exit 0 on success; on failure prints what failed, saves failure.png, exits 1.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const FLOW_LIMIT_MS = 115_000;
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
};
const FAIL_ACCOUNT = env('REMIT_FAIL_ACCOUNT');
const FLOAT = JSON.parse(env('REMIT_FLOAT', '{"alertKesCents":0,"updatedAt":null,"accounts":[]}'));
const SHOTS = path.resolve(env('REMIT_SCREENSHOT_DIR', path.join(here, '..', '..', 'test-output', 'browser')));
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const PAYBILL = '888880';
const RECIPIENT_PHONE = '0712345678';

const started = Date.now();
let currentStep = 'start';
let currentPage = null;
let browser = null;
let tmpBase = null;
const pages = {};
const pageErrors = [];

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

async function shot(page, name) {
  const file = path.join(SHOTS, name);
  await page.screenshot({ path: file, fullPage: true, timeout: STEP_TIMEOUT_MS });
  log(`  screenshot ${name}`);
}

const tid = (id) => `[data-testid="${id}"]`;
const text = async (locator) => (await locator.first().textContent({ timeout: 2000 }) || '').trim();

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

async function api(token, method, p) {
  const res = await fetch(BASE + p, { method, headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' } });
  const body = await res.json().catch(() => null);
  assert(res.ok, `${method} ${p} answered ${res.status}: ${body && body.error}`);
  return body;
}

async function openAs(role) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, baseURL: BASE });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on('pageerror', (err) => pageErrors.push(`${role}: ${err.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) pageErrors.push(`${role}: ${m.text()}`);
  });
  pages[role] = page;
  currentPage = page;
  await page.goto(`${BASE}/`, { waitUntil: 'domcontentloaded' });
  await page.locator(tid('token-input')).fill(TOKENS[role]);
  await page.locator(tid('signin-submit')).click();
  await waitFor(async () => `for ${role} to be signed in (sign-in form says: "${await text(page.locator('#signin .form-error')).catch(() => '')}")`,
    async () => (await page.locator(tid('whoami')).isVisible()) && (await text(page.locator(tid('whoami')))).endsWith(role));
  assert(await page.locator(tid('token-input')).inputValue() === '', 'the token stays in the sign-in field after signing in');
  return page;
}

function escrowCard(page, escrowId, within = '') {
  return page.locator(`${within} [data-testid="escrow-card"][data-escrow-id="${escrowId}"]`.trim());
}

async function fillRequest(page, { category, amountKes, merchantName, reference }) {
  const form = page.locator(tid('request-form'));
  await form.locator(tid('request-category')).selectOption(category);
  await form.locator(tid('request-amount')).fill(String(amountKes));
  await form.locator(tid('merchant-name')).fill(merchantName);
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

async function waitTrackerFinal(page, requestId, within, want) {
  const status = await waitFor(async () => `for request ${requestId} to end ${want} (it is ${await trackerStatus(page, requestId, within)})`,
    async () => {
      const s = await trackerStatus(page, requestId, within);
      return s && ['paid', 'failed', 'rejected', 'cancelled'].includes(s) ? s : null;
    }, PAYOUT_TIMEOUT_MS, 200);
  assert(status === want, `request ${requestId} ended ${status}, expected ${want}`);
  const t = page.locator(`${within} [data-testid="tracker"][data-request-id="${requestId}"]`);
  assert(await text(t.locator(tid('request-status'))) === want, `the tracker's status badge does not say ${want}`);
  return t;
}

async function approve(page, requestId) {
  await page.locator(tid('nav-approvals')).click();
  const card = page.locator(`${tid('pending-list')} [data-testid="request-card"][data-request-id="${requestId}"]`);
  await waitFor(`for request ${requestId} to show among the sender's pending approvals`, async () => {
    if (await card.count()) return true;
    await page.locator(tid('refresh')).click().catch(() => {});
    return false;
  }, STEP_TIMEOUT_MS, 700);
  assert(await text(card.locator(tid('request-status'))) === 'pending_approval', 'the pending card does not say pending_approval');
  return card;
}

async function checkNoTokenLeak() {
  for (const [role, page] of Object.entries(pages)) {
    const token = TOKENS[role];
    assert(!page.url().includes(token), `the ${role} token is in the page URL`);
    const html = await page.content();
    assert(!html.includes(token), `the ${role} token is in the page's DOM`);
  }
}

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
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

  await step('each token belongs to a user of its role (GET /me)', async () => {
    for (const [role, token] of Object.entries(TOKENS)) {
      const res = await fetch(`${BASE}/me`, { headers: { Authorization: `Bearer ${token}` } });
      const body = await res.json().catch(() => null);
      assert(res.ok, `REMIT_${role.toUpperCase()}_TOKEN is not accepted: GET /me answered ${res.status} ${body && body.error ? body.error : ''}`);
      assert(body && body.role === role, `REMIT_${role.toUpperCase()}_TOKEN belongs to a ${body && body.role}, not a ${role}`);
    }
  });

  const fx = await api(TOKENS.agent, 'GET', '/fx-rates');
  const rateE4 = Math.round(Number(fx['USD-KES'].rate) * 10000);
  const usdFor = (kes) => Number((BigInt(kes * 100) * 10000n + BigInt(rateE4) - 1n) / BigInt(rateE4));

  // ---- sender: create an escrow (and see a validation error beside the amount)
  const sender = await (async () => { let p; await step('sender signs in', async () => { p = await openAs('sender'); }); return p; })();
  let escrowId;

  await step('sender: a bad amount shows the API message beside the amount field', async () => {
    await sender.locator(tid('nav-new-escrow')).click();
    const form = sender.locator(tid('escrow-form'));
    await form.locator(tid('recipient-phone')).fill(RECIPIENT_PHONE);
    await form.locator(tid('recipient-name')).fill('Wanjiru');
    await form.locator(tid('total-amount')).fill('12.345');
    await form.locator(tid('categories-names')).fill('electricity, water');
    const answer = sender.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/escrows', { timeout: STEP_TIMEOUT_MS });
    await form.locator(tid('create-escrow')).click();
    const res = await answer;
    const body = await res.json().catch(() => ({}));
    assert(res.status() === 400, `POST /escrows with 12.345 answered ${res.status()}, expected 400`);
    assert(typeof body.error === 'string' && body.error.startsWith('totalAmountUsd:'), `the API's message does not start with "totalAmountUsd:" (${body.error})`);
    const err = form.locator(`${tid('total-amount')} ~ .field-error`);
    await err.first().waitFor({ state: 'visible' });
    const shown = await text(err);
    const detail = body.error.slice('totalAmountUsd:'.length).trim();
    assert(shown === detail, `beside the amount the page shows "${shown}", the API said "${body.error}"`);
    assert(await form.locator(tid('total-amount')).getAttribute('aria-invalid') === 'true', 'the amount field is not marked aria-invalid');
    await shot(sender, '01-sender-validation.png');
  });

  await step('sender creates the escrow (USD 500: electricity, water)', async () => {
    const form = sender.locator(tid('escrow-form'));
    await form.locator(tid('total-amount')).fill('500');
    await form.locator(tid('create-escrow')).click();
    await waitFor(async () => `for the created escrow (form says: "${await text(form.locator('.form-error:not([hidden]), .field-error')).catch(() => '')}")`,
      async () => (await sender.locator(tid('created-escrow-id')).count()) > 0);
    escrowId = await text(sender.locator(tid('created-escrow-id')));
    assert(/^esc_/.test(escrowId), `unexpected escrow id "${escrowId}"`);
    assert(await text(sender.locator(tid('created-escrow-status'))) === 'pending_deposit', 'the new escrow is not pending_deposit');
    assert(await text(sender.locator(tid('created-escrow-total'))) === 'USD 500.00', 'the new escrow total is not USD 500.00');
    log(`  escrow ${escrowId}`);
    await shot(sender, '02-sender-created.png');
    await sender.locator(tid('nav-escrows')).click();
    const card = escrowCard(sender, escrowId);
    await card.waitFor();
    assert(await text(card.locator(tid('escrow-status'))) === 'pending_deposit', 'the escrow list does not show pending_deposit');
    assert(await card.locator('[data-testid="category"][data-category="electricity"] [data-testid="cat-allocated"]').count() === 1, 'the escrow card has no electricity category');
    await shot(sender, '03-sender-escrows.png');
  });

  // ---- agent: deposit, then a payment request that gets paid
  let agent;
  await step('agent signs in', async () => { agent = await openAs('agent'); });

  await step('agent finds the escrow by phone and records the cash deposit of USD 500', async () => {
    await agent.locator(tid('nav-deposits')).click();
    await agent.locator(tid('search-phone')).fill(RECIPIENT_PHONE);
    await agent.locator(tid('search-submit')).click();
    const card = escrowCard(agent, escrowId);
    await card.waitFor();
    await card.locator(tid('record-deposit')).click();
    await card.locator(tid('deposit-amount')).fill('500');
    await card.locator(tid('deposit-reference')).fill(`receipt-${Date.now()}`);
    await card.locator(tid('deposit-submit')).click();
    await waitFor(async () => `for the escrow to become active after the deposit (status ${await text(card.locator(tid('escrow-status'))).catch(() => '?')}; ${await text(card.locator('.form-error:not([hidden]), .field-error')).catch(() => '')})`,
      async () => (await text(card.locator(tid('escrow-status')))) === 'active');
    assert(await text(card.locator(tid('escrow-remaining'))) === 'USD 500.00', 'remaining is not USD 500.00 after the deposit');
    await shot(agent, '04-agent-deposit.png');
  });

  const kes1 = 1500;
  let request1;
  await step(`agent prepares a request of KES ${kes1} to paybill ${PAYBILL} and sees the USD equivalent`, async () => {
    await agent.locator(tid('nav-payments')).click();
    await agent.locator(tid('search-phone')).fill(RECIPIENT_PHONE);
    await agent.locator(tid('search-submit')).click();
    const card = escrowCard(agent, escrowId);
    await card.waitFor();
    await card.locator(tid('new-request')).click();
    await agent.locator(tid('request-form')).waitFor();
    await fillRequest(agent, { category: 'electricity', amountKes: kes1, merchantName: 'Kenya Power', reference: '12345678' });
    const want = usdText(usdFor(kes1));
    await waitFor(async () => `for the USD equivalent ${want} (shows "${await text(agent.locator(tid('usd-equivalent'))).catch(() => '')}")`,
      async () => (await text(agent.locator(tid('usd-equivalent-value')))) === want);
    await shot(agent, '05-agent-request.png');
  });

  await step('agent sends it; it waits for approval', async () => {
    request1 = await submitRequest(agent);
    log(`  request ${request1}`);
    const t = agent.locator(`${tid('trackers')} [data-testid="tracker"][data-request-id="${request1}"]`);
    assert(await text(t.locator(tid('request-amount-usd'))) === usdText(usdFor(kes1)), 'the sent request has a different USD amount than the preview');
    await shot(agent, '06-agent-sent.png');
  });

  await step('sender approves it', async () => {
    currentPage = sender;
    const card = await approve(sender, request1);
    await shot(sender, '07-sender-approvals.png');
    await card.locator(tid('approve')).click();
    await sender.locator(`${tid('decided-list')} [data-testid="tracker"][data-request-id="${request1}"]`).waitFor();
  });

  let remainingAfterPaid;
  await step('sender and agent both see it paid with an M-Pesa receipt', async () => {
    const st = await waitTrackerFinal(sender, request1, tid('decided-list'), 'paid');
    const receiptS = await text(st.locator(tid('receipt')));
    assert(receiptS, 'the sender sees no receipt');
    await shot(sender, '08-sender-paid.png');
    currentPage = agent;
    const at = await waitTrackerFinal(agent, request1, tid('trackers'), 'paid');
    const receiptA = await text(at.locator(tid('receipt')));
    assert(receiptA === receiptS, `the agent sees receipt "${receiptA}", the sender "${receiptS}"`);
    log(`  receipt ${receiptA}`);
    remainingAfterPaid = usdText(50000 - usdFor(kes1));
    const box = agent.locator(tid('request-escrow'));
    await waitFor(async () => `for the escrow to show remaining ${remainingAfterPaid} and reserved USD 0.00 (shows ${await text(box.locator(tid('escrow-remaining')))}, ${await text(box.locator(tid('escrow-reserved')))})`,
      async () => (await text(box.locator(tid('escrow-remaining')))) === remainingAfterPaid
        && (await text(box.locator(tid('escrow-reserved')))) === 'USD 0.00');
    await shot(agent, '09-agent-paid.png');
  });

  await step('sender opens the journal of the escrow: deposit, activation, approval, payout', async () => {
    currentPage = sender;
    await sender.locator(tid('nav-escrows')).click();
    const card = escrowCard(sender, escrowId);
    await card.waitFor();
    const toggle = card.locator(tid('toggle-journal'));
    await toggle.click();
    assert(await toggle.getAttribute('aria-expanded') === 'true', 'the Journal button is not aria-expanded after opening it');
    const rows = card.locator(`${tid('journal-table')} ${tid('journal-row')}`);
    const kinds = () => rows.evaluateAll((ns) => ns.map((n) => n.dataset.kind));
    const want = ['deposit', 'activation', 'approval', 'payout_succeeded'];
    await waitFor(async () => `for the journal to show ${want.join(', ')} (shows ${(await kinds().catch(() => [])).join(', ') || 'nothing'})`,
      async () => { const k = await kinds(); return want.every((w) => k.includes(w)); });
    const row = (kind) => card.locator(`${tid('journal-table')} [data-testid="journal-row"][data-kind="${kind}"]`);
    const paid = usdText(usdFor(kes1));
    const expect = {
      deposit: ['Deposit', 'world:deposits → escrow:unfunded USD 500.00'],
      activation: ['Activation', 'escrow:unfunded → electricity: available'],
      approval: ['Approval (reserved)', `electricity: available → reserved ${paid}`],
      payout_succeeded: ['Payout succeeded', `electricity: reserved → spent ${paid}`],
    };
    for (const [kind, [label, movement]] of Object.entries(expect)) {
      assert(await row(kind).count() === 1, `the journal has ${await row(kind).count()} ${kind} rows, expected 1`);
      const shownKind = await text(row(kind).locator(tid('journal-kind')));
      assert(shownKind === label, `the ${kind} row says "${shownKind}", expected "${label}"`);
      const shownMoves = await row(kind).locator(`${tid('journal-movements')} li`).allTextContents();
      assert(shownMoves.some((m) => m.startsWith(movement)), `the ${kind} row shows "${shownMoves.join('; ')}", expected "${movement}"`);
    }
    await shot(sender, '10-sender-journal.png');
  });

  // ---- a second request whose payout fails: the money goes back to remaining
  const kes2 = 2000;
  let request2;
  await step(`agent sends KES ${kes2} to paybill ${PAYBILL} account ${FAIL_ACCOUNT}`, async () => {
    await fillRequest(agent, { category: 'electricity', amountKes: kes2, merchantName: 'Failing Merchant', reference: FAIL_ACCOUNT });
    await waitFor('for the USD equivalent of the second request', async () => (await text(agent.locator(tid('usd-equivalent-value')))) === usdText(usdFor(kes2)));
    request2 = await submitRequest(agent);
    log(`  request ${request2}`);
  });

  await step('sender approves it; the payout fails', async () => {
    currentPage = sender;
    const card = await approve(sender, request2);
    await card.locator(tid('approve')).click();
    await sender.locator(`${tid('decided-list')} [data-testid="tracker"][data-request-id="${request2}"]`).waitFor();
    await waitTrackerFinal(sender, request2, tid('decided-list'), 'failed');
    await shot(sender, '11-sender-failed.png');
  });

  await step('agent sees it failed and the money back in remaining', async () => {
    currentPage = agent;
    await waitTrackerFinal(agent, request2, tid('trackers'), 'failed');
    const box = agent.locator(tid('request-escrow'));
    await waitFor(async () => `for the refund: remaining ${remainingAfterPaid}, reserved USD 0.00 (shows ${await text(box.locator(tid('escrow-remaining')))}, ${await text(box.locator(tid('escrow-reserved')))})`,
      async () => (await text(box.locator(tid('escrow-remaining')))) === remainingAfterPaid
        && (await text(box.locator(tid('escrow-reserved')))) === 'USD 0.00');
    const cat = box.locator('[data-testid="category"][data-category="electricity"]');
    assert(await text(cat.locator(tid('cat-spent'))) === usdText(usdFor(kes1)), 'electricity spent is not the first payment');
    assert(await text(cat.locator(tid('cat-reserved'))) === 'USD 0.00', 'electricity still has money reserved');
    await shot(agent, '12-agent-failed-refunded.png');
  });

  await step('sender sees the history: one paid with receipt, one failed, remaining restored', async () => {
    currentPage = sender;
    await sender.locator(tid('nav-escrows')).click();
    const card = escrowCard(sender, escrowId);
    await card.waitFor();
    await waitFor(async () => `for remaining ${remainingAfterPaid} on the sender's escrow card (shows ${await text(card.locator(tid('escrow-remaining')))})`,
      async () => (await text(card.locator(tid('escrow-remaining')))) === remainingAfterPaid);
    await card.locator(tid('toggle-history')).click();
    const rows = card.locator(`${tid('history-list')} ${tid('request-row')}`);
    await waitFor('for both requests in the escrow history', async () => (await rows.count()) >= 2);
    const paidRow = card.locator(`${tid('history-list')} [data-request-id="${request1}"]`);
    const failedRow = card.locator(`${tid('history-list')} [data-request-id="${request2}"]`);
    assert(await paidRow.getAttribute('data-status') === 'paid', 'the first request is not paid in the history');
    assert(await text(paidRow.locator(tid('receipt'))), 'the paid request has no receipt in the history');
    assert(await failedRow.getAttribute('data-status') === 'failed', 'the second request is not failed in the history');
    await shot(sender, '13-sender-escrows-final.png');
  });

  // ---- admin
  let admin;
  await step('admin signs in and sees integrity ok and the rate', async () => {
    admin = await openAs('admin');
    await waitFor(async () => `for the integrity status ok (shows "${await text(admin.locator(tid('integrity'))).catch(() => '')}")`,
      async () => (await text(admin.locator(tid('integrity-status')))) === 'ok');
    const shown = await text(admin.locator(tid('fx-rate-value')));
    assert(Math.round(Number(shown.replace(/,/g, '')) * 10000) === rateE4, `the rate shows "${shown}", the API says ${fx['USD-KES'].rate}`);
    await shot(admin, '14-admin.png');
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
        log(`  ${a.name} ${balance}: warned`);
      } else {
        assert(await warning.count() === 0, `${a.name} (${balance}) has a low-float warning, the alert is ${alert}`);
        log(`  ${a.name} ${balance}: no warning`);
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

    // On a 360 px phone the card fits the screen: nothing wider than the viewport.
    await admin.setViewportSize({ width: 360, height: 800 });
    await waitFor(async () => `for the overview to fit 360 px (page ${await admin.evaluate(() => document.documentElement.scrollWidth)} px wide)`,
      async () => admin.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));
    const box = await card.boundingBox();
    assert(box && box.x >= 0 && box.x + box.width <= 360, `the float card spans ${box && box.x}–${box && box.x + box.width} px at 360 px`);
    const overflowing = await card.evaluate((c) => Array.from(c.querySelectorAll('*')).filter((n) => n.getBoundingClientRect().right > c.getBoundingClientRect().right + 0.5).map((n) => n.dataset.testid || n.tagName));
    assert(overflowing.length === 0, `parts of the float card stick out at 360 px: ${overflowing.join(', ')}`);
    await card.scrollIntoViewIfNeeded();
    await shot(admin, '14-admin-float-360.png');
    await admin.setViewportSize({ width: 1280, height: 900 });
  });

  await step('admin opens the audit log of the escrow and the users', async () => {
    await admin.locator(tid('nav-escrows')).click();
    await admin.locator(tid('audit-entity')).fill(escrowId);
    await admin.locator(tid('audit-submit')).click();
    await waitFor('for the audit log of the escrow', async () => (await admin.locator(`${tid('audit-result')} ${tid('audit-table')}, ${tid('audit-result')} ${tid('audit-empty')}`).count()) > 0);
    await shot(admin, '15-admin-audit.png');
    await admin.locator(tid('nav-users')).click();
    await admin.locator(tid('user-card')).first().waitFor();
    await shot(admin, '16-admin-users.png');
  });

  await step('tokens are nowhere in URLs or the DOM; no script errors', async () => {
    await checkNoTokenLeak();
    assert(pageErrors.length === 0, `script or Content-Security-Policy errors in the page: ${pageErrors.join('; ')}`);
  });
}

async function failureShots() {
  try {
    if (currentPage) await currentPage.screenshot({ path: path.join(SHOTS, 'failure.png'), fullPage: true, timeout: 5000 });
    for (const [role, page] of Object.entries(pages)) {
      if (page !== currentPage) await page.screenshot({ path: path.join(SHOTS, `failure-${role}.png`), fullPage: true, timeout: 5000 }).catch(() => {});
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
