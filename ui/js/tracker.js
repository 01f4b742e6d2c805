// A payment request watched live until it is paid, failed, rejected or cancelled: the progress
// steps, its card, what the caller adds after it (a receipt), and (for the requester) the Cancel
// button. Used by the sender's approvals and the agent's or recipient's request screens.

import { api } from './api.js';
import { button, el, replaceKeepingFocus } from './dom.js';
import { busy, showError } from './forms.js';
import { t } from './i18n.js';
import { globalError, notice } from './notices.js';
import { requestCard } from './request-card.js';
import { statusWord } from './words.js';

export const REQUEST_FINAL = new Set(['paid', 'failed', 'rejected', 'cancelled', 'expired']);

function stepsFor(status) {
  let path;
  if (status === 'rejected' || status === 'cancelled' || status === 'expired') path = ['pending_approval', status];
  else path = ['pending_approval', 'approved', status === 'failed' ? 'failed' : 'paid'];
  const at = path.indexOf(status);
  return el('ol', { class: 'steps', 'aria-label': t('tracker.progress') }, path.map((s, i) =>
    el('li', { class: `step ${i < at ? 'done' : ''} ${i === at ? `current step-${s}` : ''}`.trim(), 'aria-current': i === at ? 'step' : null },
      t(`tracker.step.${s}`))));
}

// A payment request being watched until it is paid, failed, rejected or cancelled.
export function tracker(ctx, initial, opts = {}) {
  let current = initial;
  const live = el('p', { class: 'visually-hidden', 'aria-live': 'polite' });
  const body = el('div');
  const node = el('section', { class: 'tracker', testid: 'tracker', dataset: { requestId: initial.paymentRequestId } }, live, body);
  let lastStatus = null;
  // Cancel asks once more: a request cancelled by a slip has to be asked for again.
  let confirming = false;

  function render() {
    node.dataset.status = current.status;
    const actions = [];
    if (opts.canCancel && current.status === 'pending_approval' && !confirming) {
      actions.push(button(t('tracker.cancel'), {
        testid: 'cancel-request',
        onclick: () => {
          confirming = true;
          render();
          // The safe answer in hand: a second Enter keeps the request.
          const keep = node.querySelector('[data-testid="keep-request"]');
          if (keep) keep.focus();
        },
      }));
    } else if (opts.canCancel && current.status === 'pending_approval') {
      actions.push(el('span', { class: 'muted small', testid: 'cancel-question' }, t('tracker.cancelSure')), button(t('tracker.cancelYes'), {
        variant: 'danger',
        testid: 'confirm-cancel',
        onclick: (ev) => {
          const btn = ev.currentTarget;
          busy(btn, async () => {
            const r = await api('POST', `/payment-requests/${encodeURIComponent(current.paymentRequestId)}/cancel`, {});
            confirming = false;
            if (r && r.status) update(r);
            else await poll();
            notice(() => t('tracker.cancelledNotice'));
          }).catch((err) => showError(node.querySelector('.card') || node, err));
        },
      }), button(t('approvals.rejectNo'), {
        testid: 'keep-request',
        onclick: () => {
          confirming = false;
          render();
          const again = node.querySelector('[data-testid="cancel-request"]');
          if (again) again.focus();
        },
      }));
    }
    const waiting = current.status === 'pending_approval' ? t('tracker.waitingApproval')
      : current.status === 'approved' ? t('tracker.waitingMpesa') : null;
    const card = requestCard(current, { context: opts.context, actions, testid: 'tracked-request', heading: opts.heading });
    replaceKeepingFocus(body.firstChild || body.appendChild(el('span')), el('div', null,
      stepsFor(current.status),
      waiting ? el('p', { class: 'muted small waiting' }, el('span', { class: 'spinner', 'aria-hidden': 'true' }), waiting) : null,
      card,
      opts.after ? opts.after(current) : null));
    if (current.status !== lastStatus) {
      live.textContent = statusWord('request', current.status);
      lastStatus = current.status;
    }
  }

  function update(r) {
    const prev = current.status;
    current = { ...current, ...r };
    render();
    if (opts.onChange && prev !== current.status) opts.onChange(current);
    if (REQUEST_FINAL.has(current.status)) {
      stop();
      if (opts.onFinal) opts.onFinal(current);
    }
  }

  // What a poll may change (the key order of the first copy may differ from the server's):
  // the card is rebuilt only when one of these did, not at every poll.
  const said = (r) => JSON.stringify([r.status, r.updatedAt, r.decidedAt, r.reason, r.payout]);
  async function poll() {
    const r = await api('GET', `/payment-requests/${encodeURIComponent(current.paymentRequestId)}`);
    if (said(r) !== said(current)) update(r);
  }

  render();
  let stop = () => {};
  if (!REQUEST_FINAL.has(current.status)) {
    stop = ctx.every(1000, poll, { slowAfterMs: 3 * 60 * 1000, slowMs: 5000, limitMs: 60 * 60 * 1000 });
    poll().catch((err) => { if (ctx.alive()) globalError(err); });
  }
  return { node, get current() { return current; } };
}
