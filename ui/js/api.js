// The same-origin JSON API: the fetch wrapper (bearer token from session.js, an Idempotency-Key
// per change, kept for its retries while it has no answer; timeout, answers from an earlier
// session turned into a 'stale' error), query strings, ApiError (with the field the answer
// names) and error text for people, in the chosen language where the code is known.

import { lang, t } from './i18n.js';
import { session } from './session.js';
import { categoryLabel } from './words.js';

// Page size of the escrow lists.
export const PAGE = 20;
// Page size of the payment request, payout and deposit lists.
export const LIST_PAGE = 10;

// What to do when the server stops accepting the token; main.js signs out.
let unauthorized = () => {};
export function onUnauthorized(fn) {
  unauthorized = fn;
}

// What to do when the server answers (whatever it says): notices.js takes down a banner that
// said it could not be reached, once a call made after it is answered (not one that was already
// on its way, whose answer says nothing of the connection since). Calls are numbered in order.
let answered = () => {};
let calls = 0;
export function onAnswered(fn) {
  answered = fn;
}
export function callsSoFar() {
  return calls;
}

// An answer that is not a success. `field` is the input the server names (its "field", else the
// "field: message" form of a 400); `detail` is the message without that prefix.
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    const m = /^([A-Za-z][A-Za-z0-9_]*(?:(?:\.[A-Za-z0-9_]+)|(?:\[\d+\]))*): ([\s\S]+)$/.exec(message || '');
    this.field = field || (status === 400 && m ? m[1] : null);
    this.detail = m && this.field && m[1] === this.field ? m[2] : message;
  }
}

export function idempotencyKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

// A change whose answer was lost (no answer, a timeout, a 5xx) keeps its Idempotency-Key for
// five minutes after its last try: the same change sent again by the same user (same method,
// path and body: the retry of a Send, a Record, an Approve, after a sign-in again, after a
// reload of the page) goes with the same key, so the server does it at most once and answers
// the retry as it answered the first (its answer is marked `_replayed`, and the screen says it
// was already done). Any other answer ends the change, and the next send is a new one; so does
// the time: an identical change a while later (a second customer's cash of the same amount) is
// a new one. The keys are kept in this tab's sessionStorage (a reload after a lost answer made
// the agent's second Record of the same cash a second deposit), each under a digest of its
// change, never the change itself (a payment's phone) or the token.
const UNANSWERED_KEY = 'remit.unanswered';
const KEPT_MS = 5 * 60 * 1000;

// The changes without an answer: digest → { key, at } (`at`: the last try).
function unansweredNow() {
  let kept = {};
  try { kept = JSON.parse(sessionStorage.getItem(UNANSWERED_KEY) || '{}') || {}; } catch (_) { kept = {}; }
  const now = Date.now();
  const fresh = {};
  for (const [digest, v] of Object.entries(kept)) {
    if (v && typeof v.key === 'string' && Number.isFinite(v.at) && now - v.at < KEPT_MS) fresh[digest] = v;
  }
  return fresh;
}

function keepUnanswered(digest, value) {
  const all = unansweredNow();
  if (value) all[digest] = value;
  else delete all[digest];
  try { sessionStorage.setItem(UNANSWERED_KEY, JSON.stringify(all)); } catch (_) { /* ignore */ }
}

// A digest of a change (cyrb53: 53 bits, two passes of 32-bit multiply-xor): two changes in
// one tab's five minutes that share it would share a key, which the server refuses
// (`idempotency_key_reused`), never applies twice.
function digestOf(text) {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}

export async function api(method, path, body, opts = {}) {
  const token = opts.token || session.token;
  if (!token) throw new ApiError(401, 'unauthenticated', t('error.signedOut'));
  const generation = session.generation;
  calls += 1;
  const call = calls;
  const bodyText = body === undefined ? undefined : JSON.stringify(body);
  const change = method !== 'GET' && !opts.idempotencyKey ? digestOf(`${token} ${method} ${path} ${bodyText || ''}`) : null;
  let key = opts.idempotencyKey || null;
  if (change) {
    const kept = unansweredNow()[change];
    key = kept ? kept.key : idempotencyKey();
    keepUnanswered(change, { key, at: Date.now() });
  }
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), opts.timeoutMs || 20000);
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        'Content-Type': 'application/json',
        'Idempotency-Key': key || idempotencyKey(),
        Accept: 'application/json',
      },
      body: bodyText,
      cache: 'no-store',
      credentials: 'same-origin',
      referrerPolicy: 'no-referrer',
      signal: controller.signal,
    });
  } catch (e) {
    // A change may be sent again safely (its key is kept); a read is simply made again.
    const read = method === 'GET' ? 'Read' : '';
    throw new ApiError(0, 'network', e && e.name === 'AbortError' ? t(`error.timeout${read}`) : t(`error.network${read}`));
  } finally {
    clearTimeout(timer);
  }
  answered(call);
  let text;
  try {
    text = await res.text();
  } catch (_) {
    // The answer broke off: as good as none, and the key is kept for the retry.
    throw new ApiError(0, 'network', t(method === 'GET' ? 'error.networkRead' : 'error.network'));
  }
  if (change && res.status < 500) keepUnanswered(change, null);
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch (_) { data = null; }
  }
  if (data && typeof data === 'object' && res.headers.get('Idempotent-Replayed') === 'true') {
    Object.defineProperty(data, '_replayed', { value: true });
  }
  if (!res.ok) {
    const message = data && typeof data.error === 'string' && data.error
      ? data.error
      // The status's number alone: its words (a proxy's "Bad Gateway") are English.
      : t('error.http', { status: String(res.status) });
    const field = data && typeof data.field === 'string' && data.field ? data.field : null;
    const err = new ApiError(res.status, (data && data.code) || `http_${res.status}`, message, field);
    // A change answered 5xx (a proxy's 504, a busy server) may have been done: the person is
    // told that sending it again is safe, as after no answer.
    if (change && res.status >= 500) err.retrySafe = true;
    if (res.status === 401 && !opts.signingIn && generation === session.generation) {
      unauthorized();
    }
    throw err;
  }
  if (generation !== session.generation) throw new ApiError(0, 'stale', t('error.stale'));
  return data;
}

// The first `max` items of a list, page after page (`page` a page: the most most lists take,
// 200; the audit log's is 1,000), or all of them if fewer: a count read from one page stopped
// at that page ("50 payouts are stuck" of 56), and the rest could not be reached. On the list:
// `nextCursor`, where the list goes on after them, and `more`, set when it does.
export async function readAll(path, params, max, page = 200) {
  const items = [];
  let cursor = null;
  do {
    const limit = Math.min(page, max - items.length);
    const d = await api('GET', `${path}${qs({ ...params, limit, cursor })}`);
    items.push(...((d && d.items) || []));
    cursor = (d && d.nextCursor) || null;
  } while (cursor && items.length < max);
  items.nextCursor = cursor;
  if (cursor) items.more = true;
  return items;
}

export function qs(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === '') continue;
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

// The refusals a person meets most, said whole in the UI's language with the server's figures
// (the server says them in English: "category food balance is USD 50.00, payment needs USD
// 60.00"; they were said in Kiswahili as a phrase for the code and that English in brackets).
// `null` for a message not of the shape expected: said as before.
const MONEY = 'USD [0-9][0-9,]*\\.[0-9]{2}';
const THINGS = { 'payment request': ['request', 'error.thing.request'], escrow: ['escrow', 'error.thing.escrow'] };
const SAID_WHOLE = new Set(['request_expired', 'busy', 'idempotency_key_reused', 'unauthenticated']);
function detailedText(code, message) {
  let m;
  // An escrow whose money is held until an admin acts, and a cancel while a payout is on its way.
  if (/^a card deposit of this escrow was refunded or disputed at Stripe\b/.test(message)) return t('error.detail.heldCard');
  if (/^a failed payout of this escrow is flagged for the operator\b/.test(message)) return t('error.detail.heldPayout');
  if (/^escrow is active with a payout in flight and cannot become cancelled\b/.test(message)) return t('error.detail.cancelInFlight');
  if (code === 'insufficient_balance' && (m = new RegExp(`^escrow balance is (${MONEY}), payment needs (${MONEY})$`).exec(message))) {
    return t('error.detail.insufficientBalance', { available: m[1], needed: m[2] });
  }
  if (code === 'insufficient_category_balance' && (m = new RegExp(`^category (.+) balance is (${MONEY}), payment needs (${MONEY})$`).exec(message))) {
    return t('error.detail.insufficientCategoryBalance', { category: categoryLabel(m[1]), available: m[2], needed: m[3] });
  }
  if (code === 'daily_limit_exceeded' && (m = new RegExp(`^daily limit is (${MONEY}), (${MONEY}) already approved today, payment needs (${MONEY})$`).exec(message))) {
    return t('error.detail.dailyLimit', { limit: m[1], approved: m[2], needed: m[3] });
  }
  if (code === 'invalid_state' && (m = /^(payment request|escrow) is (?:already )?([a-z_]+)(?: and cannot become [a-z_]+|: it takes no more deposits)?$/.exec(message))) {
    const [kind, thing] = THINGS[m[1]];
    const key = `status.${kind}.${m[2]}`;
    const status = t(key);
    return status === key ? null : t('error.detail.invalidState', { thing: t(thing), status });
  }
  return null;
}

// A field's refusal the UI says whole in its own words, as `detailedText` says a whole
// refusal: a cash deposit's reference used before (by this kiosk or another), shillings worth
// less than a cent. The key of its sentence, or null.
const FIELD_REFUSALS = [
  ['reference', /^was already used for a different deposit\b/, 'error.field.referenceUsed'],
  ['reference', /^was already used for a deposit recorded by another agent$/, 'error.field.referenceOtherAgent'],
  ['amountKes', /^is less than one US cent at today's rate\b/, 'deposit.err.lessThanCent'],
];

export function fieldRefusalKey(field, detail) {
  const known = FIELD_REFUSALS.find(([name, shape]) => name === field && shape.test(detail || ''));
  return known ? known[2] : null;
}

// The server's sentences are English. In another language the UI says what the code means and
// keeps the server's sentence (with its amounts) after it, unless it says it whole above.
export function errorText(err) {
  const text = plainErrorText(err);
  return err instanceof ApiError && err.retrySafe ? `${text} ${t('error.retrySafe')}` : text;
}

function plainErrorText(err) {
  if (err instanceof ApiError) {
    // What was not found, in a sentence of the UI's language ("payment request not found" was
    // said in English, in brackets, in Swahili); a thing the UI has no sentence for, as the
    // server says it, as a sentence.
    if (err.code === 'not_found' && err.message) {
      // ("category not found: this escrow's categories are …": the UI's sentence for what was
      // not found, the rest being what its screen shows already.)
      const key = `error.notFound.${err.message.replace(/ not found(:[^]*)?\.?$/, '')}`;
      const said = t(key);
      if (said !== key) return said;
      if (lang() === 'en') return `${err.message.charAt(0).toUpperCase()}${err.message.slice(1).replace(/\.?$/, '.')}`;
    }
    if (err.status === 0 || lang() === 'en') return err.message;
    const detailed = detailedText(err.code, err.message);
    if (detailed) return detailed;
    const key = `error.code.${err.code}`;
    const said = t(key);
    // Codes whose sentence says all the server's English would: said alone.
    if (said !== key && SAID_WHOLE.has(err.code)) return said;
    return said === key ? err.message : `${said} (${err.message})`;
  }
  return t('error.page', { message: err && err.message ? err.message : String(err) });
}
