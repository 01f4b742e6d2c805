// Sender screen #/approvals: payment requests waiting for a decision, approve or reject each,
// then watch the decided ones until their payout ends. Keeps the nav count up to date.

import { ApiError, api, qs } from '../api.js';
import { button, el, field, formError, pageHead, patchList } from '../dom.js';
import { kes, usd } from '../format.js';
import { busy, clearErrors, onSubmit, showError } from '../forms.js';
import { globalError, notice } from '../notices.js';
import { requestCard } from '../request-card.js';
import { tracker } from '../tracker.js';

export async function viewApprovals(root, ctx) {
  const decided = el('div', { class: 'stack', testid: 'decided-list' });
  const decidedSection = el('section', { class: 'section', hidden: true, 'aria-labelledby': 'decided-h' },
    el('h2', { id: 'decided-h' }, 'Just decided'), decided);
  const list = el('div', { class: 'stack', testid: 'pending-list' });
  const count = el('p', { class: 'muted', testid: 'pending-count', 'aria-live': 'polite' }, 'Loading…');
  root.append(
    pageHead('Approvals', 'Payment requests on your escrows that wait for your decision. Approved requests are paid out at once over M-Pesa.',
      button('Refresh', { testid: 'refresh', onclick: () => load().catch(globalError) })),
    decidedSection,
    el('section', { class: 'section', 'aria-labelledby': 'pending-h' }, el('h2', { id: 'pending-h' }, 'pending_approval'), count, list));

  const escrows = new Map();
  const rejecting = new Set();

  function context(r) {
    const e = escrows.get(r.escrowId);
    return e && e.recipient ? `for ${e.recipient.name || e.recipient.phone || 'the recipient'}` : null;
  }

  function build(r) {
    const e = escrows.get(r.escrowId);
    const cat = e && (e.categories || []).find((c) => c.name === r.category);
    let extra = null;
    if (cat) {
      const short = Number(r.amountUsdCents) > Number(cat.remainingUsdCents);
      extra = el('p', { class: `balance-note ${short ? 'warn' : ''}`, testid: 'balance-note' },
        `${r.category} has ${usd(cat.remainingUsdCents)} remaining`,
        e.dailyLimitUsdCents !== null && e.dailyLimitUsdCents !== undefined
          ? `; today ${usd(e.approvedTodayUsdCents || 0)} of the ${usd(e.dailyLimitUsdCents)} daily limit is approved` : '',
        short ? '. Not enough to approve this request.' : '.');
    }
    const approve = button('Approve', { variant: 'primary', testid: 'approve' });
    const reject = button('Reject', { testid: 'reject' });
    const card = requestCard(r, { context: context(r), extra, actions: [approve, reject] });
    const rejectForm = el('form', { class: 'inline-form', testid: 'reject-form', hidden: true });
    const reason = field({ label: 'Reason for rejecting', dataField: 'reason', testid: 'reject-reason', hint: 'The requester sees this reason.' });
    rejectForm.append(reason.wrap, formError(), el('div', { class: 'actions' },
      el('button', { type: 'submit', class: 'button danger', testid: 'confirm-reject' }, 'Reject request'),
      button('Keep it', { testid: 'cancel-reject', onclick: () => { rejectForm.hidden = true; reject.hidden = false; rejecting.delete(r.paymentRequestId); reject.focus(); } })));
    card.append(rejectForm);

    approve.addEventListener('click', () => {
      busy(card, async () => {
        clearErrors(card);
        const res = await api('POST', `/payment-requests/${encodeURIComponent(r.paymentRequestId)}/approve`, {});
        moveToDecided({ ...r, ...(res || {}), status: (res && res.status) || 'approved' });
        notice(`Approved ${kes(r.amountKesCents)} to ${r.merchantName || 'the merchant'}. The payout is on its way.`);
      }).catch((err) => {
        showError(card, err);
        if (err instanceof ApiError && err.code === 'invalid_state') load().catch(() => {});
      });
    });
    reject.addEventListener('click', () => {
      rejectForm.hidden = false;
      reject.hidden = true;
      rejecting.add(r.paymentRequestId);
      reason.input.focus();
    });
    onSubmit(rejectForm, async () => {
      const text = reason.input.value.trim();
      const res = await api('POST', `/payment-requests/${encodeURIComponent(r.paymentRequestId)}/reject`, text ? { reason: text } : {});
      rejecting.delete(r.paymentRequestId);
      moveToDecided({ ...r, ...(res || {}), status: (res && res.status) || 'rejected' });
      notice(`Rejected ${kes(r.amountKesCents)} to ${r.merchantName || 'the merchant'}.`);
    });
    return card;
  }

  function moveToDecided(decidedRequest) {
    const { _escrow, ...r } = decidedRequest;
    const old = list.querySelector(`[data-key="${CSS.escape(r.paymentRequestId)}"]`);
    if (old) old.remove();
    const t = tracker(ctx, r, {
      context: context(r),
      onFinal: (f) => {
        if (f.status === 'paid') notice(`Paid: ${kes(f.amountKesCents)} to ${f.merchantName || 'the merchant'}${f.payout && f.payout.mpesaReceipt ? `, M-Pesa receipt ${f.payout.mpesaReceipt}` : ''}.`);
        else if (f.status === 'failed') notice(`The payout of ${kes(f.amountKesCents)} to ${f.merchantName || 'the merchant'} failed. ${usd(f.amountUsdCents)} went back to ${f.category}.`, 'warn');
      },
    });
    decided.prepend(t.node);
    decidedSection.hidden = false;
    updateCount(list.children.length);
    const h = decidedSection.querySelector('h2');
    if (h) h.scrollIntoView({ block: 'nearest' });
  }

  function updateCount(n) {
    count.textContent = n === 0 ? 'Nothing waits for your approval.' : `${n} request${n === 1 ? '' : 's'} waiting.`;
    const link = document.querySelector('#nav [data-view="approvals"]');
    if (link) link.textContent = n ? `Approvals (${n})` : 'Approvals';
  }

  async function load() {
    if (rejecting.size) return;
    const [reqs, esc] = await Promise.all([
      api('GET', `/payment-requests${qs({ status: 'pending_approval', limit: 100 })}`),
      api('GET', `/escrows${qs({ limit: 100 })}`),
    ]);
    if (!ctx.alive()) return;
    escrows.clear();
    for (const e of (esc && esc.items) || []) escrows.set(e.escrowId, e);
    const items = ((reqs && reqs.items) || []).filter((r) => r.status === 'pending_approval');
    // Rebuild a card when its escrow's balances change too.
    const withEscrow = items.map((r) => ({ ...r, _escrow: escrows.get(r.escrowId) || null }));
    patchList(list, withEscrow, (r) => r.paymentRequestId, (r) => build(r));
    updateCount(items.length);
  }

  await load();
  ctx.every(4000, load);
}
