// Admin screen #/payouts: the stuck payouts, each with the form that resolves it (paid with
// M-Pesa's receipt, or failed: the money goes back) behind a confirmation that says what each
// outcome does; and every payout, filtered by status and paged with nextCursor.

import { LIST_PAGE, api, qs, readAll } from '../api.js';

// The most stuck payouts listed (and counted) at once.
export const STUCK_SHOWN_MAX = 1000;
import { button, clear, dl, el, emptyState, escapeAnswers, field, formError, pageHead, patchList, simulatedTag, statusBadge, timeEl, uid } from '../dom.js';
import { kes, merchantText, quotedName, usd } from '../format.js';
import { busy, checkFields, onSubmit, textProblem, TEXT_CHARS_MAX } from '../forms.js';
import { t, tn } from '../i18n.js';
import { globalError, notice } from '../notices.js';
import { session } from '../session.js';
import { rawResult } from '../request-card.js';
import { failureExplanation, methodLabel } from '../words.js';

const FILTERS = ['', 'queued', 'sent', 'succeeded', 'failed', 'flagged', 'stuck'];

function filterLabel(f) {
  return f ? t(`payouts.filter.${f}`) : t('common.all');
}

export function payoutCard(p, opts = {}) {
  const why = p.status === 'failed' ? failureExplanation(p) : null;
  const card = el('article', { class: 'card payout-card', testid: opts.testid || 'payout-card', dataset: { payoutId: p.payoutId, status: p.status } },
    el('header', { class: 'card-head' },
      el('div', { class: 'card-head-main' },
        el('h3', { class: 'card-title amount' }, kes(p.amountKesCents), el('span', { class: 'muted usd-twin' }, `= ${usd(p.amountUsdCents)}`)),
        el('p', { class: 'muted small mono id-line' }, p.payoutId)),
      el('div', { class: 'badges' }, statusBadge('payout', p.status, 'payout-status'),
        p.simulated ? simulatedTag() : null,
        p.flagged ? el('span', { class: 'flag', testid: 'payout-flagged' }, t('payout.flagged')) : null)),
    why ? el('p', { class: 'failure-text', testid: 'failure-text' }, why) : null,
    dl([
      p.mpesaReceipt ? [t('payout.receipt'), el('span', { class: 'mono receipt' }, p.mpesaReceipt), 'receipt'] : null,
      p.mpesaPayeeName ? [t('payout.mpesaPayee'), el('bdi', null, p.mpesaPayeeName), 'mpesa-payee'] : null,
      [t('payouts.request'), el('span', { class: 'mono id-line' }, p.paymentRequestId || '—')],
      [t('payouts.escrow'), el('span', { class: 'mono id-line' }, p.escrowId || '—')],
      [t('payouts.method'), methodLabel(p.method)],
      [t('payout.sentAt'), timeEl(p.sentAt)],
      p.resultAt ? [t('payout.resultAt'), timeEl(p.resultAt)] : null,
      p.flagReason ? [t('payout.flag'), p.flagReason, 'payout-flag-reason'] : null,
    ]),
    rawResult(p));
  if (opts.resolve) {
    // What to look for at M-Pesa before saying what happened: whom it pays, and where.
    const whom = el('p', { class: 'payout-merchant', testid: 'payout-merchant' }, t('common.loading'));
    card.querySelector('.card-head').insertAdjacentElement('afterend', whom);
    if (p.paymentRequestId) {
      api('GET', `/payment-requests/${encodeURIComponent(p.paymentRequestId)}`).then((r) => {
        // The name in quotes (the requester's words), the account after it as M-Pesa has it.
        whom.textContent = t('payouts.pays', { merchant: r && r.merchantName ? quotedName(r.merchantName) : '—', account: merchantText(r && r.merchantAccount) });
      }, () => whom.remove());
    } else {
      whom.remove();
    }
    card.append(resolveForm(p, opts.onResolved));
  }
  return card;
}

function resolveForm(p, onResolved) {
  const form = el('form', { class: 'inline-form resolve', testid: 'resolve-form' });
  const outcome = uid('outcome');
  // A payout that has its result (flagged after it) is confirmed, not settled: no money moves.
  const settled = p.status === 'succeeded' || p.status === 'failed';
  // Neither outcome is chosen for the admin: each is a claim about money, made after checking.
  const paid = el('input', { type: 'radio', name: outcome, id: `${outcome}-paid`, value: 'paid', testid: 'resolve-outcome-paid' });
  const failed = el('input', { type: 'radio', name: outcome, id: `${outcome}-failed`, value: 'failed', testid: 'resolve-outcome-failed' });
  const receipt = field({ label: t('resolve.receipt'), dataField: 'receipt', testid: 'resolve-receipt', attrs: { spellcheck: 'false', autocapitalize: 'characters' }, hint: t('resolve.receiptHint') });
  const reason = field({ label: t('resolve.reason'), optional: true, dataField: 'reason', testid: 'resolve-reason', hint: t('resolve.reasonHint'), attrs: { maxlength: TEXT_CHARS_MAX } });
  reason.wrap.hidden = true;
  receipt.wrap.hidden = true;
  const confirm = el('div', { class: 'confirm', hidden: true, testid: 'resolve-confirm', role: 'alertdialog', 'aria-label': t('resolve.confirmTitle') });
  const go = el('button', { type: 'submit', class: 'button primary', testid: 'resolve-submit' }, t('resolve.next'));
  // What the confirmation asked about; any change to the form takes the question back, so that
  // what is sent is always what was confirmed (a receipt edited under the question was sent
  // unchecked).
  let confirmed = false;
  let asked = null;
  // A result confirmed keeps M-Pesa's words: no reason of the admin's goes with it.
  const sync = () => { receipt.wrap.hidden = !paid.checked; reason.wrap.hidden = !failed.checked || settled; confirm.hidden = true; go.hidden = false; confirmed = false; asked = null; };
  paid.addEventListener('change', sync);
  failed.addEventListener('change', sync);
  receipt.input.addEventListener('input', sync);
  reason.input.addEventListener('input', sync);
  form.append(el('h4', null, t('resolve.title')),
    el('fieldset', { class: 'subfield', 'data-field': 'outcome' }, el('legend', null, t('resolve.as')),
      el('div', { class: 'choice' },
        el('label', { class: 'radio', for: paid.id }, paid, ` ${t('resolve.paid')}`),
        el('p', { class: 'hint', testid: 'resolve-explain-paid' }, t('resolve.paidExplain'))),
      el('div', { class: 'choice' },
        el('label', { class: 'radio', for: failed.id }, failed, ` ${t('resolve.failed')}`),
        el('p', { class: 'hint', testid: 'resolve-explain-failed' }, t('resolve.failedExplain')))),
    receipt.wrap, reason.wrap, formError(), confirm, el('div', { class: 'actions' }, go));
  onSubmit(form, async () => {
    if (!confirmed || !asked) {
      // M-Pesa's receipts are capitals and digits (QK12AB34CD): a typo here becomes the proof of
      // payment printed on the customer's receipt, so anything else is refused before asking.
      receipt.input.value = receipt.input.value.trim().toUpperCase();
      const code = receipt.input.value;
      const wrong = !paid.checked ? null : (!code ? t('resolve.err.receipt') : (/^[A-Z0-9]{6,20}$/.test(code) ? null : t('resolve.err.receiptShape')));
      const unchosen = paid.checked || failed.checked ? null : t('resolve.err.choose');
      if (!checkFields(form, [[form.querySelector('fieldset[data-field="outcome"]'), unchosen], [receipt.input, wrong],
        [reason.input, failed.checked && !settled ? textProblem(reason.input.value) : null]])) return;
      asked = paid.checked
        ? { outcome: 'paid', receipt: code }
        : { outcome: 'failed', ...(reason.input.value.trim() && !settled ? { reason: reason.input.value.trim() } : {}) };
      const what = settled
        ? t('resolve.confirmKept', { kes: kes(p.amountKesCents), outcome: t(paid.checked ? 'resolve.keptPaid' : 'resolve.keptFailed') })
        : paid.checked
          ? t('resolve.confirmPaid', { receipt: receipt.input.value.trim(), kes: kes(p.amountKesCents) })
          : t('resolve.confirmFailed', { kes: kes(p.amountKesCents), usd: usd(p.amountUsdCents) });
      clear(confirm).append(el('p', { testid: 'resolve-confirm-text' }, what), el('p', { class: 'small' }, t('resolve.cannotUndo')),
        el('div', { class: 'actions' },
          button(paid.checked ? t('resolve.yesPaid') : t('resolve.yesFailed'), { variant: 'danger', testid: 'resolve-confirm-yes', onclick: () => { confirmed = true; form.requestSubmit(); } }),
          button(t('resolve.back'), { testid: 'resolve-confirm-no', onclick: () => { sync(); go.focus(); } })));
      confirm.hidden = false;
      go.hidden = true;
      // The safe answer first: a second Enter goes back, never resolves; so does Escape.
      confirm.querySelector('[data-testid="resolve-confirm-no"]').focus();
      return;
    }
    const body = asked;
    confirmed = false;
    asked = null;
    try {
      await api('POST', `/payouts/${encodeURIComponent(p.payoutId)}/resolve`, body);
    } catch (err) {
      sync();
      throw err;
    }
    notice(() => (settled ? t('resolve.doneKept', { kes: kes(p.amountKesCents) })
      : body.outcome === 'paid' ? t('resolve.donePaid', { kes: kes(p.amountKesCents) }) : t('resolve.doneFailed', { kes: kes(p.amountKesCents) })));
    if (onResolved) await onResolved();
    // Its card is gone from the list drawn again: the keyboard goes to the list's heading (it
    // fell to the page, and a screen reader lost its place).
    if (!form.isConnected) {
      const heading = document.getElementById('stuck-h');
      if (heading) { heading.tabIndex = -1; heading.focus(); }
    }
  });
  escapeAnswers(confirm, { click: () => { if (!confirm.hidden) { sync(); go.focus(); } } });
  return form;
}

export async function viewPayouts(root, ctx) {
  // Who pays is read again here: the server may have been restarted with another gateway
  // since this tab signed in (REMIT_GATEWAY=none after a restore, say).
  const me = await api('GET', '/me').catch(() => session.me);
  if (!ctx.alive()) return;
  const holding = Boolean(me && me.gateway === 'none');
  const stuck = el('div', { class: 'stack', testid: 'stuck-payouts' });
  const stuckCount = el('p', { class: 'muted', testid: 'stuck-count', 'aria-live': 'polite' }, t('common.loading'));
  const list = el('div', { class: 'stack', testid: 'payout-list' });
  const summary = el('p', { class: 'muted', testid: 'payout-summary', 'aria-live': 'polite' }, t('common.loading'));
  const more = button(t('common.loadMore'), { testid: 'load-more', hidden: true });
  const filter = field({
    label: t('payouts.filter'), tag: 'select', testid: 'payout-status-filter', dataField: 'status',
    options: FILTERS.map((f) => el('option', { value: f }, filterLabel(f))),
  });
  let status = '';
  let cursor = null;
  const rows = new Map();

  root.append(pageHead(t('nav.payouts'), t('payouts.intro'),
    button(t('common.refresh'), { testid: 'refresh', onclick: () => Promise.all([loadStuck(), reload()]).catch(globalError) })),
  el('section', { class: 'section', 'aria-labelledby': 'stuck-h' },
    el('h2', { id: 'stuck-h' }, t('payouts.stuckTitle')),
    el('p', { class: 'muted' }, t('payouts.stuckIntro')),
    holding ? el('p', { class: 'warn', testid: 'payouts-holding' }, t('payouts.holding')) : null,
    stuckCount, stuck),
  el('section', { class: 'section', 'aria-labelledby': 'all-h' },
    el('h2', { id: 'all-h' }, t('payouts.allTitle')),
    el('div', { class: 'toolbar card' }, filter.wrap), summary, list, el('div', { class: 'actions center' }, more)));

  // The periodic read leaves the stuck cards alone while the admin is on one, also when it lands.
  async function loadStuck(periodic) {
    const items = await readAll('/payouts', { status: 'stuck' }, STUCK_SHOWN_MAX);
    if (!ctx.alive() || (periodic && stuck.contains(document.activeElement))) return;
    stuckCount.textContent = items.length ? tn(items.more ? 'count.stuckAtLeast' : 'count.stuck', items.length) : t('payouts.noStuck');
    if (!items.length) {
      clear(stuck);
      return;
    }
    patchList(stuck, items, (p) => p.payoutId, (p) => payoutCard(p, {
      resolve: true, testid: 'stuck-card', onResolved: () => Promise.all([loadStuck(), reload()]),
    }));
  }

  function render() {
    const items = Array.from(rows.values());
    if (!items.length) {
      clear(list).append(emptyState(status ? t('payouts.noneWith', { status: filterLabel(status) }) : t('payouts.none'), 'no-payouts'));
      summary.textContent = '';
    } else {
      if (list.querySelector('.empty')) clear(list);
      // Without a gateway (REMIT_GATEWAY=none, as after a restore) nothing sends a payout: each
      // one without a result is the admin's to settle, stuck or not.
      // A payout flagged after its result is cleared by confirming that result (the server
      // refuses another, saying why).
      patchList(list, items, (p) => p.payoutId, (p) => payoutCard(p, {
        resolve: (holding && (p.status === 'queued' || p.status === 'sent'))
          || (p.flagged && (p.status === 'succeeded' || p.status === 'failed')),
        onResolved: () => Promise.all([loadStuck(), reload()]),
      }));
      summary.textContent = status ? tn('count.payoutsWith', items.length, { status: filterLabel(status) }) : tn('count.payouts', items.length);
      if (cursor) summary.textContent += ` ${t('find.moreBelow')}`;
    }
    more.hidden = !cursor;
  }

  // Only the latest reload is shown: a filter changed twice quickly must not show the first answer.
  let latest = 0;
  async function reload() {
    const mine = ++latest;
    const want = Math.min(200, Math.max(LIST_PAGE, rows.size));
    const d = await api('GET', `/payouts${qs({ status, limit: want })}`);
    if (!ctx.alive() || mine !== latest) return;
    rows.clear();
    for (const p of (d && d.items) || []) rows.set(p.payoutId, p);
    cursor = (d && d.nextCursor) || null;
    render();
  }

  filter.input.addEventListener('change', () => { status = filter.input.value; rows.clear(); reload().catch(globalError); });
  more.addEventListener('click', () => busy(more, async () => {
    const d = await api('GET', `/payouts${qs({ status, limit: LIST_PAGE, cursor })}`);
    if (!ctx.alive()) return;
    for (const p of (d && d.items) || []) rows.set(p.payoutId, p);
    cursor = (d && d.nextCursor) || null;
    render();
  }).catch(globalError));

  await Promise.all([loadStuck(), reload()]);
  // Not while someone is resolving a payout: the form would be rebuilt under their hands.
  ctx.every(15000, () => (stuck.contains(document.activeElement) ? undefined : Promise.all([loadStuck(true), reload()])));
}
