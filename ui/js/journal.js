// The double-entry journal of one escrow (GET /escrows/{id}/journal, following the cursor) and
// its table, with each transaction's entries described as movements between accounts named in
// words ("Money in → Not yet funded"). On a phone each row becomes a block with its labels.

import { api, qs } from './api.js';
import { el, emptyState, timeEl } from './dom.js';
import { formatRate, kes, merchantText, usd } from './format.js';
import { t } from './i18n.js';
import { accountLabel, categoryLabel, journalKindLabel } from './words.js';

const accountText = (x) => (x.category ? `${categoryLabel(x.category)}: ${accountLabel(x.account)}` : accountLabel(x.account));

// A journal transaction's entries as movements ("Electricity: Available → Set aside USD 10.00"):
// a debit and a credit of one category pair up; the rest flow from a single source or into a
// single destination; anything else is listed entry by entry with its sign.
function journalMovements(entries) {
  const out = [];
  const rest = [];
  const byCategory = new Map();
  for (const x of entries) {
    const k = x.category || '';
    if (!byCategory.has(k)) byCategory.set(k, []);
    byCategory.get(k).push(x);
  }
  for (const [k, group] of byCategory) {
    const from = group.filter((x) => x.amountUsdCents < 0);
    const to = group.filter((x) => x.amountUsdCents > 0);
    if (k && group.length === 2 && from.length === 1 && to.length === 1 && from[0].amountUsdCents === -to[0].amountUsdCents) {
      out.push(`${categoryLabel(k)}: ${accountLabel(from[0].account)} → ${accountLabel(to[0].account)} ${usd(to[0].amountUsdCents)}`);
    } else rest.push(...group);
  }
  const from = rest.filter((x) => x.amountUsdCents < 0);
  const to = rest.filter((x) => x.amountUsdCents > 0);
  if (from.length === 1) for (const x of to) out.push(`${accountText(from[0])} → ${accountText(x)} ${usd(x.amountUsdCents)}`);
  else if (to.length === 1) for (const x of from) out.push(`${accountText(x)} → ${accountText(to[0])} ${usd(-x.amountUsdCents)}`);
  else for (const x of rest) out.push(`${accountText(x)} ${x.amountUsdCents > 0 ? '+' : ''}${usd(x.amountUsdCents)}`);
  return out;
}

// What a journal line's reference is about, in words: the request it sets money aside for, or
// the payout that paid it or gave it back, by whom it pays, how much, and M-Pesa's receipt.
function aboutReference(journal, reference, deposit) {
  // A deposit says how it came in, as the person who paid can match it on their receipt.
  if (deposit) {
    const bits = deposit.source === 'cash'
      ? [t('journal.cash'), deposit.amountKesCents ? kes(deposit.amountKesCents) : null,
        deposit.rateKesPerUsdE4 ? t('journal.cashRate', { rate: formatRate(deposit.rateKesPerUsdE4) }) : null,
        deposit.receiptNumber ? t('journal.cashReceipt', { receipt: deposit.receiptNumber }) : null]
      : [t('journal.card')];
    return [el('span', { testid: 'journal-about' }, bits.filter(Boolean).join(' · ')), el('br')];
  }
  const about = journal.about && journal.about[reference];
  if (!about) return null;
  const bits = [t('journal.pays', { merchant: about.merchant }), kes(about.amountKesCents)];
  if (about.receipt) bits.push(t('journal.receipt', { receipt: about.receipt }));
  return [el('span', { testid: 'journal-about' }, bits.join(' · ')), el('br')];
}

export function journalTable(journal) {
  if (!journal.items.length) return emptyState(t('journal.empty'), 'journal-empty');
  const heads = [t('journal.col.number'), t('journal.col.at'), t('journal.col.what'), t('journal.col.movement')];
  const cell = (i, props, ...kids) => el('td', { ...(props || {}), 'data-label': heads[i] }, ...kids);
  return el('div', null,
    el('div', { class: 'table-wrap' },
      el('table', { class: 'table journal stacking', testid: 'journal-table' },
        el('thead', null, el('tr', null, heads.map((h) => el('th', { scope: 'col' }, h)))),
        el('tbody', null, journal.items.map((x) => el('tr', { testid: 'journal-row', dataset: { kind: x.kind } },
          cell(0, { class: 'mono' }, String(x.transactionId)),
          cell(1, null, timeEl(x.createdAt)),
          cell(2, null, el('span', { testid: 'journal-kind' }, journalKindLabel(x.kind)), el('br'),
            aboutReference(journal, x.reference, x.deposit),
            el('span', { class: 'mono muted small' }, x.reference)),
          cell(3, null, el('ul', { class: 'kv', testid: 'journal-movements' },
            journalMovements(x.entries || []).map((m) => el('li', null, m))))))))),
    journal.more ? el('p', { class: 'muted small' }, t('journal.more', { n: journal.items.length })) : null);
}

// Every page of a list, following nextCursor for at most 10 pages.
async function pages(path, query) {
  const items = [];
  let cursor = null;
  for (let page = 0; page < 10; page += 1) {
    const data = await api('GET', `${path}${qs({ ...query, cursor })}`);
    items.push(...((data && data.items) || []));
    cursor = (data && data.nextCursor) || null;
    if (!cursor) break;
  }
  return { items, more: Boolean(cursor) };
}

// The journal's lines about a request or its payout.
const ABOUT_KINDS = new Set(['approval', 'payout_succeeded', 'payout_failed']);

// The journal oldest first, and what its lines are about (whom the money paid), from the
// escrow's requests: read after the journal, so that a payment in it has its receipt there too,
// and only when a line is not known yet from the last read (`previous`, its `about`).
export async function loadJournal(escrowId, previous) {
  const journal = await pages(`/escrows/${encodeURIComponent(escrowId)}/journal`, {});
  const known = (previous && previous.about) || {};
  const unknown = journal.items.some((x) => ABOUT_KINDS.has(x.kind)
    && (!known[x.reference] || (x.kind === 'payout_succeeded' && !known[x.reference].receipt)));
  if (!unknown) return { ...journal, about: known };
  const requests = await pages('/payment-requests', { escrowId, limit: 100 });
  const about = {};
  for (const r of requests.items) {
    const line = { merchant: r.merchantName || merchantText(r.merchantAccount), amountKesCents: r.amountKesCents };
    about[r.paymentRequestId] = line;
    // M-Pesa's receipt belongs to the payout's line, not to the approval before it.
    if (r.payout && r.payout.payoutId) about[r.payout.payoutId] = { ...line, receipt: r.payout.mpesaReceipt || null };
  }
  return { ...journal, about };
}
