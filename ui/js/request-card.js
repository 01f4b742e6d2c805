// A payment request as a card (with its payout) and as a one-line row in a history list.

import { add, dl, el, statusBadge, timeEl } from './dom.js';
import { formatRate, kes, merchantText, rateKesPerUsdE4, usd } from './format.js';

function payoutBlock(p) {
  if (!p) return null;
  return el('div', { class: `payout payout-${p.status}`, testid: 'payout' },
    el('div', { class: 'payout-head' }, el('span', { class: 'muted' }, 'Payout '),
      statusBadge(p.status, 'payout-status'),
      p.flagged ? el('span', { class: 'flag', testid: 'payout-flagged' }, 'flagged') : null),
    dl([
      p.mpesaReceipt ? ['M-Pesa receipt', el('span', { class: 'mono receipt' }, p.mpesaReceipt), 'receipt'] : null,
      p.resultDesc ? ['Result', p.resultDesc, 'payout-result'] : null,
      p.flagged && p.flagReason ? ['Flag', p.flagReason, 'payout-flag-reason'] : null,
      p.resultAt ? ['Result', timeEl(p.resultAt)] : (p.sentAt ? ['Sent', timeEl(p.sentAt)] : null),
    ]));
}

export function requestCard(r, opts = {}) {
  const card = el('article', {
    class: `card request request-${r.status}`, testid: opts.testid || 'request-card',
    dataset: { requestId: r.paymentRequestId, status: r.status },
  });
  add(card, [
    el('header', { class: 'card-head' },
      el('div', null,
        el('h3', { class: 'card-title amount' },
          el('span', { testid: 'request-amount-kes' }, kes(r.amountKesCents)),
          el('span', { class: 'muted usd-twin' }, ' = ', el('span', { testid: 'request-amount-usd' }, usd(r.amountUsdCents)))),
        el('p', { class: 'muted small' },
          opts.context ? [opts.context, ' · '] : null,
          el('span', { class: 'mono', testid: 'request-id' }, r.paymentRequestId))),
      statusBadge(r.status, 'request-status')),
    dl([
      ['Category', r.category || '—', 'request-category'],
      ['Merchant', [r.merchantName || '—', el('br'), el('span', { class: 'muted' }, merchantText(r.merchantAccount))], 'request-merchant'],
      r.exchangeRate ? ['Rate', `KES ${formatRate(rateKesPerUsdE4(r.exchangeRate))} per USD`] : null,
      ['Requested', timeEl(r.createdAt)],
      r.decidedAt ? ['Decided', timeEl(r.decidedAt)] : null,
      r.note ? ['Note', r.note, 'request-note'] : null,
      r.reason ? ['Reason', r.reason, 'request-reason'] : null,
    ]),
    payoutBlock(r.payout),
  ]);
  if (opts.extra) card.append(opts.extra);
  if (opts.actions && opts.actions.length) card.append(el('div', { class: 'actions card-actions' }, opts.actions));
  card.append(el('div', { class: 'card-error form-error', role: 'alert', testid: 'card-error', hidden: true }));
  return card;
}

export function requestRow(r) {
  return el('li', { class: `request-row request-${r.status}`, testid: 'request-row', dataset: { requestId: r.paymentRequestId, status: r.status } },
    el('div', { class: 'row-main' },
      el('strong', { testid: 'request-amount-kes' }, kes(r.amountKesCents)),
      el('span', { class: 'muted' }, ' = ', el('span', { testid: 'request-amount-usd' }, usd(r.amountUsdCents))),
      el('span', { class: 'row-sep' }, ' · '), el('span', { testid: 'request-category' }, r.category),
      el('span', { class: 'row-sep' }, ' · '), el('span', null, r.merchantName || merchantText(r.merchantAccount))),
    el('div', { class: 'row-meta' },
      statusBadge(r.status, 'request-status'),
      r.payout ? [el('span', { class: 'muted' }, ' payout '), statusBadge(r.payout.status, 'payout-status')] : null,
      r.payout && r.payout.mpesaReceipt ? [el('span', { class: 'muted' }, ' receipt '), el('span', { class: 'mono receipt', testid: 'receipt' }, r.payout.mpesaReceipt)] : null,
      r.payout && r.payout.flagged ? el('span', { class: 'flag' }, 'flagged') : null,
      r.reason ? el('span', { class: 'muted' }, ` · ${r.reason}`) : null,
      el('span', { class: 'muted' }, ' · '), timeEl(r.createdAt)));
}
