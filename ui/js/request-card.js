// A payment request as a card (with its payout: receipt, a plain reason when it failed, the
// Simulated mark) and as a one-line row in a list. The raw M-Pesa code and text are for admins.

import { add, dl, el, simulatedTag, statusBadge, timeEl, uid } from './dom.js';
import { formatRate, kes, merchantText, rateKesPerUsdE4, usd } from './format.js';
import { t } from './i18n.js';
import { session } from './session.js';
import { categoryLabel, failureExplanation, statusWord } from './words.js';

const isAdmin = () => session.me && session.me.role === 'admin';

// The raw result M-Pesa gave, small, for admins only; the success of a paid payout (code "0",
// "The service request is processed successfully", or nothing for one resolved by hand as
// paid) says nothing the receipt does not. A payout an admin
// resolved as failed holds code `manual` and the admin's own words: those are said as theirs,
// not as M-Pesa's.
export function rawResult(p) {
  if (!isAdmin() || !p || (!p.resultCode && !p.resultDesc)) return null;
  if (p.resultCode === '0' && (!p.resultDesc || p.status === 'succeeded')) return null;
  if (p.resultCode === 'manual') {
    return el('p', { class: 'raw-result muted small', testid: 'payout-raw' },
      t('payout.byHand'), ' ', el('span', null, p.resultDesc || ''));
  }
  return el('p', { class: 'raw-result muted small', testid: 'payout-raw' },
    t('payout.raw'), ' ', el('span', { class: 'mono' }, [p.resultCode, p.resultDesc].filter(Boolean).join(' \u2014 ')));
}

// What became of the money of a request that did not get paid, if anything is to be said: a
// failed payout's went back; an expired request never had any set aside ("Money returned" of
// it read as if money had moved).
export function moneyNote(r) {
  if (r.status === 'failed') {
    return el('p', { class: 'money-note', testid: 'money-returned' }, t('request.moneyReturned', { category: categoryLabel(r.category) }));
  }
  if (r.status === 'expired') return el('p', { class: 'money-note', testid: 'expired-note' }, t('request.expiredNote'));
  return null;
}

function payoutBlock(p) {
  if (!p) return null;
  const why = p.status === 'failed' ? failureExplanation(p) : null;
  return el('div', { class: `payout payout-${p.status}`, testid: 'payout' },
    el('div', { class: 'payout-head' }, el('span', { class: 'muted' }, `${t('payout.label')} `),
      statusBadge('payout', p.status, 'payout-status'),
      p.simulated ? simulatedTag() : null,
      p.flagged && isAdmin() ? el('span', { class: 'flag', testid: 'payout-flagged' }, t('payout.flagged')) : null),
    p.flagged && !isAdmin() && !['succeeded', 'failed'].includes(p.status) ? el('p', { class: 'muted small', testid: 'payout-checking' }, t('payout.checking')) : null,
    // Held with its escrow (a card payment refunded or disputed): said, not left as "queued".
    p.held ? el('p', { class: 'warn', testid: 'payout-held' }, t('payout.held')) : null,
    why ? el('p', { class: 'failure-text', testid: 'failure-text' }, why) : null,
    dl([
      p.mpesaReceipt ? [t('payout.receipt'), el('span', { class: 'mono receipt' }, p.mpesaReceipt), 'receipt'] : null,
      // Whom M-Pesa paid, in its words: the request's payee name is the one its requester typed.
      p.mpesaPayeeName ? [t('payout.mpesaPayee'), el('bdi', null, p.mpesaPayeeName), 'mpesa-payee'] : null,
      isAdmin() && p.flagged && p.flagReason ? [t('payout.flag'), p.flagReason, 'payout-flag-reason'] : null,
      p.resultAt ? [t('payout.resultAt'), timeEl(p.resultAt)] : (p.sentAt ? [t('payout.sentAt'), timeEl(p.sentAt)] : null),
    ]),
    rawResult(p));
}

// opts: context, extra, actions, testid, heading (the amount's tag: 'h3' in a list under its
// h2, 'h2' for a card alone under the h1).
export function requestCard(r, opts = {}) {
  const card = el('article', {
    class: `card request request-${r.status}`, testid: opts.testid || 'request-card',
    dataset: { requestId: r.paymentRequestId, status: r.status },
  });
  const e4 = r.exchangeRate ? rateKesPerUsdE4(r.exchangeRate) : null;
  const titleId = uid('request-title');
  add(card, [
    el('header', { class: 'card-head' },
      el('div', { class: 'card-head-main' },
        el(opts.heading || 'h3', { class: 'card-title amount', id: titleId },
          el('span', { testid: 'request-amount-kes' }, kes(r.amountKesCents)),
          el('span', { class: 'muted usd-twin' }, '= ', el('span', { testid: 'request-amount-usd' }, usd(r.amountUsdCents)))),
        el('p', { class: 'muted small' },
          opts.context ? [el('span', { testid: 'request-context' }, opts.context), ' · '] : null,
          el('span', { class: 'mono id-line', testid: 'request-id' }, r.paymentRequestId))),
      statusBadge('request', r.status, 'request-status')),
    dl([
      [t('request.category'), categoryLabel(r.category), 'request-category'],
      [t('request.merchant'), [r.merchantName || '—', el('br'), el('span', { class: 'muted' }, merchantText(r.merchantAccount))], 'request-merchant'],
      e4 ? [t('request.rate'), t('request.rateValue', { rate: formatRate(e4) })] : null,
      [t('request.requested'), timeEl(r.createdAt)],
      // An expired request was decided by no one: when it expired.
      r.decidedAt ? [r.status === 'expired' ? t('request.expiredAt') : t('request.decided'), timeEl(r.decidedAt)] : null,
      r.note ? [t('request.note'), r.note, 'request-note'] : null,
      r.reason ? [t('request.reason'), r.reason, 'request-reason'] : null,
    ]),
    moneyNote(r),
    payoutBlock(r.payout),
  ]);
  if (opts.extra) card.append(opts.extra);
  if (opts.actions && opts.actions.length) {
    // Each action is named with its request ("Approve KES 1,200.00 = USD 8.00"): a list of a
    // screen's buttons read "Approve, Approve, Approve".
    for (const a of opts.actions) {
      if (!a || !a.tagName || a.hasAttribute('aria-label') || a.hasAttribute('aria-labelledby')) continue;
      if (!a.id) a.id = uid('action');
      a.setAttribute('aria-labelledby', `${a.id} ${titleId}`);
    }
    card.append(el('div', { class: 'actions card-actions' }, opts.actions));
  }
  card.append(el('div', { class: 'card-error form-error', role: 'alert', testid: 'card-error', hidden: true }));
  return card;
}

// One line of a list: amount, category, merchant; status, receipt (Simulated), money returned.
// opts.href makes the amount a link to the request.
export function requestRow(r, opts = {}) {
  const p = r.payout;
  const amountText = kes(r.amountKesCents);
  return el('li', { class: `request-row request-${r.status}`, testid: 'request-row', dataset: { requestId: r.paymentRequestId, status: r.status, escrowId: r.escrowId } },
    el('div', { class: 'row-main' },
      opts.href
        ? el('a', { href: opts.href, class: 'row-link', testid: 'open-request', 'aria-label': t('requests.openLabel', { amount: amountText, status: statusWord('request', r.status) }) },
          el('strong', { testid: 'request-amount-kes' }, amountText))
        : el('strong', { testid: 'request-amount-kes' }, amountText),
      el('span', { class: 'muted' }, ' = ', el('span', { testid: 'request-amount-usd' }, usd(r.amountUsdCents))),
      el('span', { class: 'row-sep' }, ' · '), el('span', { testid: 'request-category' }, categoryLabel(r.category)),
      el('span', { class: 'row-sep' }, ' · '), el('bdi', { testid: 'request-merchant' }, r.merchantName || merchantText(r.merchantAccount)),
      opts.forWhom ? [el('span', { class: 'row-sep' }, ' · '), el('span', { class: 'muted', testid: 'request-for' }, t('approvals.for', { name: opts.forWhom }))] : null),
    el('div', { class: 'row-meta' },
      statusBadge('request', r.status, 'request-status'),
      p && p.mpesaReceipt ? el('span', { class: 'row-receipt' }, `${t('payout.receipt')} `, el('span', { class: 'mono receipt', testid: 'receipt' }, p.mpesaReceipt)) : null,
      p && p.simulated ? simulatedTag() : null,
      r.status === 'failed' ? el('span', { class: 'money-note', testid: 'money-returned' }, t('request.moneyReturnedShort')) : null,
      p && p.flagged && isAdmin() ? el('span', { class: 'flag' }, t('payout.flagged')) : null,
      r.reason ? el('span', { class: 'muted' }, `\u00b7 ${r.reason}`) : null,
      el('span', { class: 'muted' }, '\u00b7 '), timeEl(r.createdAt)),
    // Why a payout failed, in a sentence, wherever the request is listed: the sender read it
    // only on the card of the approval they had just made.
    r.status === 'failed' && p && failureExplanation(p)
      ? el('p', { class: 'failure-text small', testid: 'failure-text' }, failureExplanation(p))
      : null);
}
