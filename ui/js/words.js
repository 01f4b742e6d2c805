// What the API's words mean to people: statuses, journal accounts and kinds, roles, categories,
// payout methods, deposit sources and why a payout failed, in the chosen language. The API's own
// words stay in data-* attributes (for scripts and tests); people read these.

import { lang, t } from './i18n.js';

// The state of an escrow, a payment request, a payout or a deposit, as a word.
// kind: 'escrow' | 'request' | 'payout' | 'deposit'.
export function statusWord(kind, status) {
  const key = `status.${kind}.${status}`;
  const s = t(key);
  return s === key ? String(status || '—').replace(/_/g, ' ') : s;
}

// "school_fees" → "School fees" ("Karo ya shule" in Kiswahili): the common names in the chosen
// language, any other as the sender typed it, made readable. The name itself is what the API
// keeps and the forms send.
export function categoryLabel(name) {
  const known = `category.${String(name || '').trim().toLowerCase()}`;
  const said = t(known);
  if (said !== known) return said;
  const s = String(name || '').replace(/_/g, ' ').trim();
  return s ? s.charAt(0).toUpperCase() + s.slice(1) : '—';
}

// A journal account (world:deposits, escrow:unfunded, available, …) in words.
export function accountLabel(account) {
  const key = `account.${account}`;
  const s = t(key);
  return s === key ? String(account) : s;
}

export function journalKindLabel(kind) {
  const key = `journal.kind.${kind}`;
  const s = t(key);
  return s === key ? String(kind).replace(/_/g, ' ') : s;
}

export function roleLabel(role) {
  const key = `role.${role}`;
  const s = t(key);
  return s === key ? String(role) : s;
}

export function methodLabel(method) {
  const key = `payout.method.${method}`;
  const s = t(key);
  return s === key ? String(method || '—') : s;
}

export function sourceLabel(source) {
  const key = `deposit.source.${source}`;
  const s = t(key);
  return s === key ? String(source || '—') : s;
}

// Why a payout failed, for people: English from the server's failureText when it gave one,
// otherwise (and always in Swahili) from its failureReason.
export function failureExplanation(payout) {
  if (!payout) return null;
  const reason = payout.failureReason || (payout.status === 'failed' ? 'other' : null);
  if (!reason && !payout.failureText) return null;
  if (lang() === 'en' && payout.failureText) return payout.failureText;
  const key = `failure.${reason || 'other'}`;
  const s = t(key);
  return s === key ? (payout.failureText || t('failure.other')) : s;
}
