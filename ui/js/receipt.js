// Printable receipts: a cash deposit taken at a kiosk, and a paid payment request. Each is a
// .receipt-area block placed directly in the screen; app.css prints only that block (navigation,
// banners and the rest of the screen hidden). A receipt of a simulated payout says so, large.

import { button, el, simulatedTag } from './dom.js';
import { formatRate, formatShortRef, kes, kesToCollect, merchantText, rateKesPerUsdE4, usd, whenInNairobi } from './format.js';
import { t } from './i18n.js';
import { session } from './session.js';
import { categoryLabel, statusWord } from './words.js';

function line(label, value, testid) {
  return el('div', { class: 'receipt-line' }, el('dt', null, label), el('dd', { testid }, value));
}

// The "Printed …" line says when it was printed, not when the receipt was first shown.
let printHooked = false;
function printedAt() {
  if (!printHooked && typeof window !== 'undefined') {
    printHooked = true;
    window.addEventListener('beforeprint', () => {
      const now = whenInNairobi(new Date().toISOString());
      document.querySelectorAll('[data-printed-at]').forEach((n) => { n.textContent = t('receipt.printedAt', { at: now }); });
    });
  }
  return el('p', { class: 'receipt-foot muted small', 'data-printed-at': '' }, t('receipt.printedAt', { at: whenInNairobi(new Date().toISOString()) }));
}

function printButton() {
  return button(t('receipt.print'), { variant: 'primary', testid: 'print-receipt', class: 'no-print', onclick: () => window.print() });
}

// `numberLabel` says whose number it is: remit's own (a cash deposit's D-number) or M-Pesa's.
function frame(kind, title, numberLabel, number, lines, extra, actions) {
  return el('section', { class: 'receipt-area', testid: `${kind}-receipt`, 'aria-label': title },
    el('div', { class: 'receipt-card card' },
      el('header', { class: 'receipt-head' },
        el('div', null, el('p', { class: 'receipt-brand' }, 'remit'), el('h2', null, title)),
        el('p', { class: 'receipt-number' }, el('span', { class: 'muted small' }, numberLabel), el('br'),
          el('strong', { class: 'mono', testid: 'receipt-number' }, number || '—'))),
      extra,
      el('dl', { class: 'receipt-lines' }, lines.filter(Boolean)),
      printedAt()),
    el('div', { class: 'actions no-print' }, printButton(), actions || null));
}

// What is still due, in dollars and in the shillings that pay it at `rateE4` when one is known
// (the deposit's own rate for cash in shillings, today's for cash in dollars).
function dueWords(due, rateE4) {
  return rateE4 ? `${usd(due)} (${kes(kesToCollect(due, rateE4))})` : usd(due);
}

// A cash deposit just recorded (the answer of POST /escrows/:id/deposits) for escrow e.
export function depositReceipt(d, e, opts = {}) {
  const inKes = d.amountKesCents !== undefined && d.amountKesCents !== null;
  const rateE4 = d.rateKesPerUsdE4 || null;
  const due = e ? Math.max(0, Number(e.totalAmountUsdCents) - Number(e.depositedUsdCents || 0)) : null;
  const r = (e && e.recipient) || {};
  return frame('deposit', t('receipt.depositTitle'), t('receipt.number'), d.receiptNumber, [
    line(t('receipt.date'), whenInNairobi(d.createdAt || new Date().toISOString())),
    inKes ? line(t('receipt.received'), kes(d.amountKesCents), 'receipt-amount-kes') : null,
    inKes && rateE4 ? line(t('receipt.rate'), t('request.rateValue', { rate: formatRate(rateE4) }), 'receipt-rate') : null,
    line(inKes ? t('receipt.credited') : t('receipt.received'), usd(d.amountUsdCents), 'receipt-amount-usd'),
    // The name isolated from the phone: a name in a right-to-left script took the phone's digits
    // into its own direction, and the paper read them reversed.
    line(t('receipt.for'), [el('bdi', null, r.name || '—'), r.phone ? el('span', { class: 'muted' }, ' ', el('bdi', null, r.phone)) : null], 'receipt-recipient'),
    e && e.shortRef ? line(t('card.code'), el('span', { class: 'mono' }, formatShortRef(e.shortRef)), 'receipt-code') : null,
    // What the escrow is now: on the receipt given with the cash, not on a copy printed later
    // (it would say today's state as if it were the day's).
    opts.copy ? null : line(t('receipt.escrowNow'), e ? statusWord('escrow', e.status) : '—', 'receipt-escrow-status'),
    // Still due, in shillings too when the cash came in shillings (at the rate it was priced
    // at, what the customer hands over next): "USD 293.34" alone told them nothing.
    !opts.copy && e && e.status === 'pending_deposit' && due
      ? line(t('card.due'), dueWords(due, inKes && rateE4 ? Number(rateE4) : Number(opts.todayRateE4) || null), 'receipt-due')
      : null,
    opts.ownReference || d.ownReference ? line(t('receipt.ownReference'), opts.ownReference || d.ownReference, 'receipt-own-reference') : null,
    line(t('receipt.takenBy'), (session.me && session.me.name) || '—'),
  ], [
    opts.copy ? el('p', { class: 'receipt-copy', testid: 'receipt-copy' }, t('receipt.copy')) : null,
    // On paper as on screen: a server that pays through the simulator is a demo's, and its
    // receipts say so (the screen's banner is not printed).
    session.me && session.me.gateway === 'simulator'
      ? el('p', { class: 'receipt-simulated', testid: 'receipt-demo' }, simulatedTag('receipt-demo-tag'), ' ', t('receipt.depositDemo'))
      : null,
  ], opts.actions);
}

// A paid payment request (GET /payment-requests/:id) of escrow e (optional).
export function paymentReceipt(r, e) {
  const p = r.payout || {};
  const rateE4 = r.exchangeRate ? rateKesPerUsdE4(r.exchangeRate) : null;
  const rec = (e && e.recipient) || {};
  const sim = p.simulated
    ? el('p', { class: 'receipt-simulated', testid: 'receipt-simulated' }, simulatedTag('receipt-simulated-tag'), ' ', t('receipt.simulated'))
    : null;
  return frame('payment', t('receipt.paymentTitle'), t('payout.receipt'), p.mpesaReceipt, [
    line(t('receipt.paidAt'), whenInNairobi(p.resultAt || r.updatedAt)),
    line(t('receipt.paidTo'), [el('bdi', null, r.merchantName || '—'), el('br'), el('span', { class: 'muted' }, merchantText(r.merchantAccount))], 'receipt-merchant'),
    // The payee as M-Pesa names it (the name above is the one typed when it was asked).
    p.mpesaPayeeName ? line(t('payout.mpesaPayee'), el('bdi', null, p.mpesaPayeeName), 'receipt-mpesa-payee') : null,
    line(t('receipt.amount'), kes(r.amountKesCents), 'receipt-amount-kes'),
    line(t('receipt.fromEscrow'), usd(r.amountUsdCents), 'receipt-amount-usd'),
    rateE4 ? line(t('receipt.rate'), t('request.rateValue', { rate: formatRate(rateE4) }), 'receipt-rate') : null,
    line(t('request.category'), categoryLabel(r.category), 'receipt-category'),
    // Whose escrow, as the deposit's receipt names it: the name, the phone as the reader may see
    // it, and the deposit code the family knows the escrow by.
    rec.name ? line(t('receipt.forRecipient'), [el('bdi', null, rec.name), rec.phone ? el('span', { class: 'muted' }, ' ', el('bdi', null, rec.phone)) : null], 'receipt-recipient') : null,
    e && e.shortRef ? line(t('card.code'), el('span', { class: 'mono' }, formatShortRef(e.shortRef)), 'receipt-code') : null,
    line(t('receipt.request'), el('span', { class: 'mono' }, r.paymentRequestId)),
    // The kiosk's agent who printed it, as a cash receipt names who took the cash. Only an
    // agent's: a recipient's own name is the one the first sender to their phone typed, not
    // for another sender's receipt to show.
    session.me && session.me.role === 'agent' && session.me.name ? line(t('receipt.printedBy'), el('bdi', null, session.me.name), 'receipt-printed-by') : null,
  ], sim);
}
