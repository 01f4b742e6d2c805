// The escrow card shown by the sender, admin, agent and recipient screens: totals (with KES at
// today's rate when the caller passes one), the per-category stacked bars and their legend, and
// the short deposit code. Callers add their own actions and panels.

import { add, dl, el, statusBadge, timeEl, uid } from './dom.js';
import { formatRate, formatShortRef, kes, kesCentsForUsd, kesToCollect, kesWholeFor, usd } from './format.js';
import { t } from './i18n.js';
import { categoryLabel } from './words.js';

const PARTS = ['remaining', 'reserved', 'spent', 'refunded'];

export function barLegend() {
  return el('ul', { class: 'legend', 'aria-label': t('card.legend') },
    PARTS.map((k) => el('li', null, el('span', { class: `swatch seg-${k}`, 'aria-hidden': 'true' }), t(`card.part.${k}`))));
}

function stackedBar(total, parts) {
  const bar = el('div', { class: 'bar', 'aria-hidden': 'true' });
  const tot = Number(total) || 0;
  for (const [name, cents] of parts) {
    const c = Number(cents) || 0;
    if (c <= 0 || tot <= 0) continue;
    const seg = el('span', { class: `seg seg-${name}` });
    seg.style.width = `${Math.max(0.5, (c / tot) * 100).toFixed(3)}%`;
    bar.append(seg);
  }
  return bar;
}

// USD, and KES at today's rate beneath it when there is a rate. `kesCents` gives the shillings
// when they are not `cents` at the rate to the nearest cent: what a kiosk takes to complete what
// is due (said exactly), or the whole shillings requests can still ask (said ≈).
function amount(cents, rateE4, testid, { kesCents = null, exact = false } = {}) {
  if (!rateE4) return [el('span', { testid }, usd(cents))];
  const figure = kes(kesCents ?? kesCentsForUsd(cents, rateE4));
  const shillings = exact ? figure : `\u2248 ${figure}`;
  return [el('span', { testid }, usd(cents)),
    rateE4 ? el('span', { class: 'kes-twin', testid: testid ? `${testid}-kes` : null }, shillings) : null];
}

// The whole shillings requests can still ask of an escrow at a rate: each category's own (a
// request takes one category and no cents), summed, so that the escrow's line and its
// categories' say the same figures (the line said the remaining dollars to the cent:
// KES 146,748.05 above a single category's 146,748.00).
function wholeToAsk(e, rateE4) {
  const categories = e.categories || [];
  if (!categories.length) return kesWholeFor(e.remainingUsdCents, rateE4);
  return categories.reduce((sum, c) => sum + kesWholeFor(c.remainingUsdCents, rateE4), 0);
}

function categoryBlock(c, rateE4) {
  const parts = [
    ['remaining', c.remainingUsdCents], ['reserved', c.reservedUsdCents],
    ['spent', c.spentUsdCents], ['refunded', c.refundedUsdCents],
  ];
  return el('div', { class: 'category', testid: 'category', dataset: { category: c.name } },
    el('div', { class: 'category-head' },
      el('span', { class: 'category-name', testid: 'category-name' }, categoryLabel(c.name)),
      el('span', { class: 'muted' }, `${t('card.allocated')} `, el('span', { testid: 'cat-allocated' }, usd(c.allocatedUsdCents)))),
    stackedBar(c.allocatedUsdCents, parts),
    el('ul', { class: 'numbers' },
      parts.map(([name, cents]) => (name === 'refunded' && !Number(cents) ? null
        : el('li', { class: `num-${name}` }, `${t(`card.part.${name}`)} `, el('strong', { testid: `cat-${name}` }, usd(cents)),
          rateE4 && name === 'remaining' ? el('span', { class: 'kes-twin inline', testid: 'cat-remaining-kes' }, ` \u2248 ${kes(kesWholeFor(cents, rateE4))}`) : null)))));
}

// The deposit code of an escrow as it is read out at a kiosk (K7M3-Q9P2).
export function depositCode(e) {
  return e && e.shortRef ? formatShortRef(e.shortRef) : null;
}

// opts: actions, panels, rateE4 (show KES at this rate), showCode (the deposit code line),
// heading (the title's tag: 'h3' in a list under its h2, 'h2' for a card alone under the h1).
export function escrowCard(e, opts = {}) {
  const headingId = uid('esc');
  const due = Math.max(0, (Number(e.totalAmountUsdCents) || 0) - (Number(e.depositedUsdCents) || 0));
  const r = e.recipient || {};
  // KES at today's rate helps only while the money can still be spent: a completed or
  // cancelled escrow's figures are history, in the dollars they were.
  const open = e.status === 'active' || e.status === 'pending_deposit';
  const rateE4 = open ? opts.rateE4 || null : null;
  // A cancelled escrow that was only partly funded says how much had come in.
  const short = (Number(e.depositedUsdCents) || 0) < (Number(e.totalAmountUsdCents) || 0);
  const code = depositCode(e);
  const hasLimit = e.dailyLimitUsdCents !== null && e.dailyLimitUsdCents !== undefined;
  const card = el('article', {
    class: `card escrow escrow-${e.status}`, testid: 'escrow-card', 'aria-labelledby': headingId,
    dataset: { escrowId: e.escrowId, status: e.status },
  });
  add(card, [
    el('header', { class: 'card-head' },
      el('div', { class: 'card-head-main' },
        el(opts.heading || 'h3', { id: headingId, class: 'card-title' },
          el('span', { testid: 'recipient-name' }, r.name || t('card.recipient')),
          r.phone ? el('span', { class: 'phone', testid: 'recipient-phone' }, r.phone) : null),
        el('p', { class: 'muted small' },
          code ? [t('card.code'), ' ', el('span', { class: 'mono code', testid: 'escrow-code' }, code), ' · '] : null,
          t('card.created'), ' ', timeEl(e.createdAt)),
        el('p', { class: 'muted small mono id-line', testid: 'escrow-id' }, e.escrowId)),
      statusBadge('escrow', e.status, 'escrow-status')),
    dl([
      [t('card.total'), amount(e.totalAmountUsdCents, rateE4, 'escrow-total')],
      e.status === 'pending_deposit' || (e.status === 'cancelled' && short) ? [t('card.deposited'), usd(e.depositedUsdCents), 'escrow-deposited'] : null,
      e.status === 'pending_deposit' ? [t('card.due'), amount(due, rateE4, 'escrow-due', { kesCents: rateE4 ? kesToCollect(due, rateE4) : null, exact: true })] : null,
      [t('card.part.remaining'), amount(e.remainingUsdCents, rateE4, 'escrow-remaining', { kesCents: rateE4 ? wholeToAsk(e, rateE4) : null })],
      [t('card.part.reserved'), usd(e.reservedUsdCents), 'escrow-reserved'],
      [t('card.part.spent'), usd(e.spentUsdCents), 'escrow-spent'],
      Number(e.refundedUsdCents) ? [t('card.part.refunded'), usd(e.refundedUsdCents), 'escrow-refunded'] : null,
      // Of a cancelled escrow: what Stripe has refunded to the card. "Of it" only when it is
      // within what is owed back: a refund made while the escrow was active (flagged, then
      // cleared) counts in Stripe's total too, and "of it" was then more than the whole.
      Number(e.returnedToCardUsdCents) ? [t(Number(e.returnedToCardUsdCents) <= Number(e.refundedUsdCents) ? 'card.returnedToCard' : 'card.returnedToCardAll'), usd(e.returnedToCardUsdCents), 'escrow-returned-to-card'] : null,
      hasLimit ? [t('card.dailyLimit'), usd(e.dailyLimitUsdCents), 'escrow-daily-limit'] : null,
      hasLimit ? [t('card.approvedToday'), usd(e.approvedTodayUsdCents || 0), 'escrow-approved-today'] : null,
    ], 'stats'),
    rateE4 ? el('p', { class: 'muted small rate-note', testid: 'kes-rate-note' }, t('card.kesNote', { rate: formatRate(rateE4) })) : null,
    el('div', { class: 'categories' }, (e.categories || []).map((c) => categoryBlock(c, rateE4))),
  ]);
  if (opts.actions && opts.actions.length) card.append(el('div', { class: 'actions card-actions' }, opts.actions));
  card.append(el('div', { class: 'card-error form-error', role: 'alert', testid: 'card-error', hidden: true }));
  if (opts.panels) card.append(...opts.panels);
  return card;
}
