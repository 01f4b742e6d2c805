// The escrow card shown by the sender, admin, agent and recipient screens: totals, the per-category
// stacked bars and their legend. Callers add their own actions and panels.

import { dl, el, statusBadge, timeEl, uid } from './dom.js';
import { usd } from './format.js';

export function barLegend() {
  return el('ul', { class: 'legend', 'aria-label': 'Bar colours' },
    ['remaining', 'reserved', 'spent', 'refunded'].map((k) =>
      el('li', null, el('span', { class: `swatch seg-${k}`, 'aria-hidden': 'true' }), k)));
}

function stackedBar(total, parts) {
  const bar = el('div', { class: 'bar', 'aria-hidden': 'true' });
  const t = Number(total) || 0;
  for (const [name, cents] of parts) {
    const c = Number(cents) || 0;
    if (c <= 0 || t <= 0) continue;
    const seg = el('span', { class: `seg seg-${name}` });
    seg.style.width = `${Math.max(0.5, (c / t) * 100).toFixed(3)}%`;
    bar.append(seg);
  }
  return bar;
}

function categoryBlock(c) {
  const parts = [
    ['remaining', c.remainingUsdCents], ['reserved', c.reservedUsdCents],
    ['spent', c.spentUsdCents], ['refunded', c.refundedUsdCents],
  ];
  return el('div', { class: 'category', testid: 'category', dataset: { category: c.name } },
    el('div', { class: 'category-head' },
      el('span', { class: 'category-name' }, c.name),
      el('span', { class: 'muted' }, 'allocated ', el('span', { testid: 'cat-allocated' }, usd(c.allocatedUsdCents)))),
    stackedBar(c.allocatedUsdCents, parts),
    el('ul', { class: 'numbers' },
      parts.map(([name, cents]) => (name === 'refunded' && !Number(cents) ? null
        : el('li', { class: `num-${name}` }, `${name} `, el('strong', { testid: `cat-${name}` }, usd(cents)))))));
}

export function escrowCard(e, opts = {}) {
  const headingId = uid('esc');
  const due = Math.max(0, (Number(e.totalAmountUsdCents) || 0) - (Number(e.depositedUsdCents) || 0));
  const r = e.recipient || {};
  const card = el('article', {
    class: `card escrow escrow-${e.status}`, testid: 'escrow-card', 'aria-labelledby': headingId,
    dataset: { escrowId: e.escrowId, status: e.status },
  });
  card.append(
    el('header', { class: 'card-head' },
      el('div', null,
        el('h3', { id: headingId, class: 'card-title' },
          el('span', { testid: 'recipient-name' }, r.name || 'Recipient'),
          r.phone ? el('span', { class: 'phone', testid: 'recipient-phone' }, r.phone) : null),
        el('p', { class: 'muted small mono' },
          el('span', { testid: 'escrow-id' }, e.escrowId), ' · created ', timeEl(e.createdAt))),
      statusBadge(e.status, 'escrow-status')),
    dl([
      ['Total', usd(e.totalAmountUsdCents), 'escrow-total'],
      e.status === 'pending_deposit' ? ['Deposited', usd(e.depositedUsdCents), 'escrow-deposited'] : null,
      e.status === 'pending_deposit' ? ['Still due', usd(due), 'escrow-due'] : null,
      ['Remaining', usd(e.remainingUsdCents), 'escrow-remaining'],
      ['Reserved', usd(e.reservedUsdCents), 'escrow-reserved'],
      ['Spent', usd(e.spentUsdCents), 'escrow-spent'],
      Number(e.refundedUsdCents) ? ['Refunded', usd(e.refundedUsdCents), 'escrow-refunded'] : null,
      e.dailyLimitUsdCents !== null && e.dailyLimitUsdCents !== undefined ? ['Daily limit', usd(e.dailyLimitUsdCents), 'escrow-daily-limit'] : null,
      e.dailyLimitUsdCents !== null && e.dailyLimitUsdCents !== undefined ? ['Approved today', usd(e.approvedTodayUsdCents || 0), 'escrow-approved-today'] : null,
    ], 'stats'),
    el('div', { class: 'categories' }, (e.categories || []).map(categoryBlock)),
  );
  if (opts.actions && opts.actions.length) card.append(el('div', { class: 'actions card-actions' }, opts.actions));
  card.append(el('div', { class: 'card-error form-error', role: 'alert', testid: 'card-error', hidden: true }));
  if (opts.panels) card.append(...opts.panels);
  return card;
}
