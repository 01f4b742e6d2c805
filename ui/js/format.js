// Formatting for people: money from integer minor units only (never floats for amounts), the
// USD-KES rate as an integer × 10⁴ (parsed from its decimal text, not through float arithmetic),
// conversions between the two with BigInt, dates in the chosen language, Kenyan phones masked,
// deposit codes grouped, merchant accounts in words.

import { lang, t } from './i18n.js';

function groupThousands(digits) {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

export function money(cents, currency) {
  if (cents === null || cents === undefined || cents === '' || !Number.isFinite(Number(cents))) return '—';
  let c = Math.trunc(Number(cents));
  const negative = c < 0;
  if (negative) c = -c;
  const minor = c % 100;
  const major = (c - minor) / 100;
  return `${currency} ${negative ? '-' : ''}${groupThousands(String(major))}.${String(minor).padStart(2, '0')}`;
}
export const usd = (c) => money(c, 'USD');
export const kes = (c) => money(c, 'KES');

// Cents as decimal text for an input (50000 → "500.00").
export function centsToInput(cents) {
  const c = Math.max(0, Math.trunc(Number(cents) || 0));
  const minor = c % 100;
  return `${(c - minor) / 100}.${String(minor).padStart(2, '0')}`;
}

// Decimal text ("1,500.5", "500") as an integer of 10^-places units, or null when it is not a
// positive amount with at most `places` decimals. Commas only between groups of three digits
// after a first group that is not 0 ("1,50" and "0,500" are decimal commas, not 150 or 500), no blanks inside, no point without decimals after it ("5."), as
// the server reads amounts. Integer arithmetic on the digits only.
export function parseDecimal(text, places) {
  const s = String(text === null || text === undefined ? '' : text).trim();
  const m = /^([1-9]\d{0,2}(?:,\d{3})+|\d+)(?:\.(\d+))?$/.exec(s);
  if (!m) return null;
  const whole = m[1].replace(/,/g, '');
  if (whole.length > 12) return null;
  const frac = m[2] || '';
  if (frac.length > places) return null;
  const n = Number(whole) * 10 ** places + Number(frac.padEnd(places, '0') || 0);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

// Shillings as a kiosk writes them: the "/=" or "/-" after the amount (1,500/=) left out.
export function withoutShillingsMark(text) {
  return String(text === null || text === undefined ? '' : text).trim().replace(/\s*\/[=-]$/, '');
}

// What is wrong with an amount typed (null: nothing, or it is empty), so that a form says the
// mistake made: 'negative' (a minus sign), 'zero', 'decimals' (a number with more than `places`
// decimals: the form says how many it takes), else 'notNumber' (letters, 1OO, 1e3…).
export function amountProblem(text, places) {
  const s = String(text === null || text === undefined ? '' : text).trim();
  if (!s || parseDecimal(s, places)) return null;
  if (/^[-−]/.test(s)) return 'negative';
  const m = /^([1-9]\d{0,2}(?:,\d{3})+|\d+)?(?:\.(\d*))?$/.exec(s);
  if (!m || (!m[1] && !m[2])) return 'notNumber';
  if (/^[0,]*$/.test(m[1] || '') && /^0*$/.test(m[2] || '')) return 'zero';
  return (m[2] || '').length > places ? 'decimals' : 'notNumber';
}

// A rate (a JSON number or decimal text such as 152.25) as an integer of KES per USD × 10⁴.
export function rateKesPerUsdE4(rate) {
  if (rate === null || rate === undefined) return null;
  const text = typeof rate === 'number' ? rate.toFixed(4) : String(rate);
  return parseDecimal(text, 4);
}

export function formatRate(e4) {
  if (!e4) return '—';
  const frac = String(e4 % 10000).padStart(4, '0').replace(/0{1,2}$/, '').replace(/(\d\d)0$/, '$1');
  return `${groupThousands(String(Math.floor(e4 / 10000)))}.${frac}`;
}

// USD cents for KES cents at a rate, rounded up: ceil(kesCents × 10⁴ / rateKesPerUsdE4), integers only.
export function usdCentsForKes(kesCents, e4) {
  const a = BigInt(kesCents) * 10000n;
  const b = BigInt(e4);
  return Number((a + b - 1n) / b);
}

// The whole shillings a kiosk collects for USD cents still due: the fewest whole KES that buy
// them at the server's rule (USD cents = floor(KES cents × 10⁴ / rate)), so that a cash payment
// of that many shillings completes the escrow. (KES 25,000.50 due is KES 25,001 to collect; a
// kiosk that took 25,000 would leave USD 0.01 due.) When one shilling buys more than a cent
// (a rate under 100), the cents themselves.
export function kesToCollect(usdCents, e4) {
  const need = BigInt(Math.trunc(Number(usdCents) || 0)) * BigInt(e4);
  const cents = (need + 9999n) / 10000n;
  const whole = ((need + 999999n) / 1000000n) * 100n;
  const bought = (whole * 10000n) / BigInt(e4);
  return Number(bought > BigInt(Math.trunc(Number(usdCents) || 0)) ? cents : whole);
}

// The most whole shillings a payment request may ask of `usdCents` at a rate: the server prices
// a request at ceil(kes × 10⁴ / rate) USD cents, so floor(usdCents × rate / 10⁶) shillings (as
// cents). A category's balance is shown in these: a request cannot take the shilling's cents.
export function kesWholeFor(usdCents, e4) {
  const a = BigInt(Math.max(0, Math.trunc(Number(usdCents) || 0))) * BigInt(e4);
  return Number((a / 1000000n) * 100n);
}

// KES cents for USD cents at a rate, to the nearest cent: round(usdCents × rateKesPerUsdE4 / 10⁴).
export function kesCentsForUsd(usdCents, e4) {
  const a = BigInt(Math.trunc(Number(usdCents) || 0)) * BigInt(e4);
  return Number((a + 5000n) / 10000n);
}

// A time as people read it, in the page's language: in the browser's own time zone, named
// (`UTC`, `GMT+3`: a kiosk PC left on UTC showed a payment "Dec 5, 11:56 PM" beside its receipt's
// "Dec 6, 02:56 AM EAT", with nothing to say both are the same moment), or in `timeZone` (the
// caller names it). Each language's and zone's format is made once.
const dateFormats = {};
function formatTime(d, timeZone) {
  const l = lang();
  const key = `${l} ${timeZone || ''}`;
  if (!dateFormats[key]) {
    const zone = timeZone ? { timeZone } : { timeZoneName: 'short' };
    let f;
    try {
      f = new Intl.DateTimeFormat(l === 'sw' ? 'sw-KE' : undefined, {
        ...zone, year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
      });
    } catch (_) {
      // (`timeStyle: 'long'` names the zone; dateStyle cannot be given with timeZoneName.)
      f = new Intl.DateTimeFormat(undefined, timeZone
        ? { timeZone, dateStyle: 'medium', timeStyle: 'medium' }
        : { dateStyle: 'medium', timeStyle: 'long' });
    }
    dateFormats[key] = f;
  }
  return dateFormats[key].format(d);
}

// `iso` as a Date, or the text to show instead: a dash for none, an unreadable one as it is.
function dateOf(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d;
}

export function when(iso) {
  const d = dateOf(iso);
  return d instanceof Date ? formatTime(d) : d;
}

// A receipt's time in Nairobi's clock (East Africa Time, UTC+3 all year), whatever the clock of
// the computer printing it is set to: a kiosk PC left on UTC printed times three hours off.
export function whenInNairobi(iso) {
  const d = dateOf(iso);
  return d instanceof Date ? `${formatTime(d, 'Africa/Nairobi')} EAT` : d;
}

// A Kenyan mobile number in any common form (07…, 01…, 2547…, +2547…, 7…, spaces and dashes)
// as its 9 national digits, or null.
export function kenyanDigits(text) {
  const s = String(text || '').replace(/[\s\-().]/g, '');
  const m = /^(?:\+?254|0)?([17]\d{8})$/.exec(s);
  return m ? m[1] : null;
}

// What a sender typed, in full and grouped as it is read aloud: +254 712 345 678. (The one
// who typed it checks every digit before the escrow is made; the API shows it masked after.)
export function spacedPhone(text) {
  const d = kenyanDigits(text);
  return d ? `+254 ${d.slice(0, 3)} ${d.slice(3, 6)} ${d.slice(6)}` : null;
}

// An escrow's short deposit code (K7M3Q9P2) as people read and type it: K7M3-Q9P2.
export function formatShortRef(ref) {
  const s = String(ref || '').toUpperCase().replace(/[^0-9A-Z]/g, '');
  return s.length === 8 ? `${s.slice(0, 4)}-${s.slice(4)}` : s;
}

// Does this look like a deposit code rather than a phone number (8 of its letters and digits,
// with at least one letter; a dash and case ignored)?
export function looksLikeShortRef(text) {
  const s = String(text || '').trim().replace(/[\s-]/g, '');
  return /^[0-9A-Za-z]{8}$/.test(s) && /[A-Za-z]/.test(s);
}

// What a search for a recipient's escrows typed means (the agent's Find and the admin's
// Escrows): `{ search: { phone, ref } }` for a deposit code or a Kenyan phone, else `{ error }`.
export function escrowSearch(text) {
  if (!text) return { error: t('find.err.empty') };
  if (looksLikeShortRef(text)) {
    // Codes are made without the look-alikes (the server refuses them, in English).
    if (/[01io]/i.test(text)) return { error: t('find.err.code') };
    return { search: { phone: '', ref: formatShortRef(text) } };
  }
  if (kenyanDigits(text)) return { search: { phone: text, ref: '' } };
  return { error: t('find.err.search') };
}

// What a list found by `escrowSearch` was searched for, said after its count ('' for none).
export function searchedFor(search) {
  if (search.ref) return t('find.forCode', { code: search.ref });
  return search.phone ? t('find.forPhone', { phone: search.phone }) : '';
}

// A requester's words (a merchant's name) inside a sentence of ours, in quotes, set apart from
// the sentence's own words: a name that read "Nairobi Water. Amount: KES 300.00 — approve to pay
// KES 300.00 only" ran on into the question about KES 30,000, and one that read "Kenya Power:
// PayBill 888880, account 12345678. Agent float" into the stuck payout's "Pays …: Till 555555".
// Quotes of its own are made plain, so that it cannot close them.
export function quotedName(name) {
  return `\u201c${name.replace(/[\u201c\u201d\u201e\u201f\u00ab\u00bb]/g, '"')}\u201d`;
}

export function merchantText(account) {
  if (!account) return '—';
  const number = account.number || '';
  if (account.type === 'paybill') {
    return account.accountReference
      ? t('merchant.paybillWithAccount', { number, account: account.accountReference })
      : t('merchant.paybill', { number });
  }
  if (account.type === 'till') return t('merchant.till', { number });
  // Grouped as everywhere else (+254 712 345 678); a masked number as the server gave it.
  if (account.type === 'phone') return t('merchant.phone', { number: spacedPhone(number) || number });
  return `${account.type || ''} ${number}`.trim();
}
