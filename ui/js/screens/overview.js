// Admin screen #/overview: the ledger integrity check, the USD-KES rate and setting it, the M-Pesa
// float (balances last reported, low paying accounts), and the stuck payouts with the form that
// resolves each one.

import { api, errorText, qs } from '../api.js';
import { add, button, clear, dl, el, emptyState, field, formError, pageHead, patchList, statusBadge, timeEl, uid } from '../dom.js';
import { formatRate, kes, rateKesPerUsdE4, usd, when } from '../format.js';
import { busy, onSubmit } from '../forms.js';
import { globalError, notice } from '../notices.js';

// The M-Pesa accounts that pay payouts (the API flags them `low` below the alert), in this order.
const PAYING_ACCOUNTS = {
  'Utility Account': { pays: 'pays phone payouts', atRisk: 'phone payouts' },
  'Working Account': { pays: 'pays PayBills and Tills', atRisk: 'PayBill and Till payouts' },
};
const PAYING_ORDER = Object.keys(PAYING_ACCOUNTS);
const GATEWAY_NOTES = {
  simulator: 'Payouts are simulated: no real M-Pesa float.',
  none: 'No gateway: payouts stay queued.',
};

function floatAccount(a, alertCents) {
  const paying = PAYING_ACCOUNTS[a.name];
  return el('li', { class: `float-account${a.low ? ' low' : ''}`, testid: 'float-account', dataset: { account: a.name, low: String(!!a.low) } },
    el('div', { class: 'float-head' },
      el('span', { class: 'float-name', testid: 'float-name' }, a.name),
      el('strong', { class: 'float-amount', testid: 'float-balance' }, kes(a.availableKesCents))),
    el('p', { class: 'muted small', testid: 'float-pays' }, paying ? paying.pays : 'pays no payouts'),
    a.low ? el('p', { class: 'warn', role: 'alert', testid: 'float-low' },
      `${a.name} is below the alert of ${kes(alertCents)}: ${paying ? paying.atRisk : 'payouts'} may fail. Top it up in the M-Pesa portal.`) : null);
}

export async function viewOverview(root, ctx) {
  const integrity = el('section', { class: 'card', testid: 'integrity', 'aria-labelledby': 'int-h' });
  const fxBox = el('section', { class: 'card', testid: 'fx', 'aria-labelledby': 'fx-h' });
  const floatBox = el('section', { class: 'card float', testid: 'float', 'aria-labelledby': 'float-h' });
  const stuck = el('div', { class: 'stack', testid: 'stuck-payouts' });
  root.append(pageHead('Overview', 'The health of the ledger, the exchange rate, the M-Pesa float, and payouts that need a person.'),
    el('div', { class: 'grid-2 top' }, integrity, fxBox),
    floatBox,
    el('section', { class: 'section', 'aria-labelledby': 'stuck-h' },
      el('div', { class: 'section-head' }, el('h2', { id: 'stuck-h' }, 'Stuck payouts'),
        button('Refresh', { small: true, testid: 'refresh-stuck', onclick: () => loadStuck().catch(globalError) })),
      el('p', { class: 'muted' }, 'Payouts sent to M-Pesa with no result past the timeout. Their money stays reserved until you resolve them. Check the outcome with M-Pesa first: paying twice is worse than paying late.'),
      stuck));

  async function loadIntegrity() {
    clear(integrity).append(el('h2', { id: 'int-h' }, 'Integrity'), el('p', { class: 'muted' }, 'Checking…'));
    const r = await api('GET', '/admin/integrity');
    const checks = (r && r.checks) || [];
    const mismatches = (r && r.mismatches) || [];
    const runBtn = button('Run check', { small: true, testid: 'run-integrity', onclick: () => busy(runBtn, loadIntegrity).catch(globalError) });
    add(clear(integrity), [
      el('div', { class: 'section-head' }, el('h2', { id: 'int-h' }, 'Integrity'), runBtn),
      el('p', { class: `big-status ${r.ok ? 'ok' : 'bad'}` },
        el('span', { class: 'status-dot', 'aria-hidden': 'true' }),
        el('span', { testid: 'integrity-status', dataset: { ok: String(!!r.ok) } }, r.ok ? 'ok' : 'not ok'),
        el('span', { class: 'muted small' }, ` · checked ${when(new Date().toISOString())}`)),
      mismatches.length ? el('div', { class: 'mismatches' }, el('h3', null, `Mismatches (${mismatches.length})`),
        el('ul', { testid: 'integrity-mismatches' }, mismatches.map((m) => el('li', null, m)))) : null,
      el('details', null, el('summary', null, `${checks.length} checks`),
        el('ul', { class: 'checks', testid: 'integrity-checks' }, checks.map((c) => el('li', null, c))))]);
  }

  async function loadFx() {
    const rates = await api('GET', '/fx-rates');
    const r = rates && rates['USD-KES'];
    const form = el('form', { class: 'inline-form row-form', testid: 'fx-form' });
    const input = field({ label: 'New rate (KES per USD)', dataField: 'rate', testid: 'fx-rate-input', attrs: { inputmode: 'decimal' }, hint: 'At most 4 decimals, e.g. 152.25. New payment requests use it at once.', wrapClass: 'grow' });
    form.append(input.wrap, el('div', { class: 'actions end' }, el('button', { type: 'submit', class: 'button primary', testid: 'fx-submit' }, 'Set rate')), formError());
    onSubmit(form, async () => {
      const v = input.input.value.trim();
      await api('PUT', '/fx-rates/USD-KES', v ? { rate: v } : {});
      notice(`USD-KES rate set to ${v}.`);
      await loadFx();
    });
    clear(fxBox).append(
      el('h2', { id: 'fx-h' }, 'Exchange rate'),
      el('p', { class: 'rate' }, el('span', { class: 'muted' }, 'USD-KES '),
        el('strong', { testid: 'fx-rate-value' }, r ? formatRate(rateKesPerUsdE4(r.rate)) : '—'),
        el('span', { class: 'muted' }, ' KES per USD')),
      el('p', { class: 'muted small' }, 'Updated ', r ? timeEl(r.updatedAt) : '—'),
      form);
  }

  async function loadFloat() {
    const f = await api('GET', '/admin/float');
    if (!ctx.alive()) return;
    const rank = (name) => { const i = PAYING_ORDER.indexOf(name); return i < 0 ? PAYING_ORDER.length : i; };
    const accounts = ((f && f.accounts) || []).slice().sort((a, b) => rank(a.name) - rank(b.name));
    const alertCents = f && Number.isInteger(f.alertKesCents) ? f.alertKesCents : null;
    let note = GATEWAY_NOTES[f && f.gateway] || null;
    if (!note && !accounts.length) note = 'No balance reported yet (asked every few minutes).';
    const refreshBtn = button('Refresh', { small: true, testid: 'refresh-float', onclick: () => busy(refreshBtn, loadFloat).catch(globalError) });
    add(clear(floatBox), [
      el('div', { class: 'section-head' }, el('h2', { id: 'float-h' }, 'M-Pesa float'), refreshBtn),
      note ? el('p', { class: 'muted', testid: 'float-note', dataset: { gateway: f && f.gateway } }, note) : null,
      accounts.length ? el('ul', { class: 'float-accounts', testid: 'float-accounts' }, accounts.map((a) => floatAccount(a, alertCents))) : null,
      accounts.length ? el('p', { class: 'muted small', testid: 'float-updated' }, 'Last reported ', timeEl(f.updatedAt)) : null,
      el('p', { class: 'muted small', testid: 'float-alert' }, alertCents > 0
        ? `A paying account below ${kes(alertCents)} is flagged.`
        : 'No low-balance alert is set (REMIT_FLOAT_ALERT_KES).')]);
  }

  function payoutCard(p) {
    const card = el('article', { class: 'card payout-card', testid: 'payout-card', dataset: { payoutId: p.payoutId, status: p.status } },
      el('header', { class: 'card-head' },
        el('div', null,
          el('h3', { class: 'card-title amount' }, kes(p.amountKesCents), el('span', { class: 'muted usd-twin' }, ` = ${usd(p.amountUsdCents)}`)),
          el('p', { class: 'muted small mono' }, p.payoutId)),
        el('div', null, statusBadge(p.status, 'payout-status'), p.flagged ? el('span', { class: 'flag' }, 'flagged') : null)),
      dl([
        ['Payment request', el('span', { class: 'mono' }, p.paymentRequestId || '—')],
        ['Escrow', el('span', { class: 'mono' }, p.escrowId || '—')],
        ['Method', p.method || '—'],
        ['Sent', timeEl(p.sentAt)],
        p.resultDesc ? ['Result', p.resultDesc] : null,
        p.flagReason ? ['Flag', p.flagReason] : null,
      ]));
    const form = el('form', { class: 'inline-form', testid: 'resolve-form' });
    const outcome = uid('outcome');
    const paid = el('input', { type: 'radio', name: outcome, id: `${outcome}-paid`, value: 'paid', checked: true, testid: 'resolve-outcome-paid' });
    const failed = el('input', { type: 'radio', name: outcome, id: `${outcome}-failed`, value: 'failed', testid: 'resolve-outcome-failed' });
    const receipt = field({ label: 'M-Pesa receipt', dataField: 'receipt', testid: 'resolve-receipt', attrs: { spellcheck: 'false' } });
    const reason = field({ label: 'Reason', optional: true, dataField: 'reason', testid: 'resolve-reason', hint: 'What M-Pesa said, for the audit log.' });
    reason.wrap.hidden = true;
    const confirm = el('div', { class: 'confirm', hidden: true, testid: 'resolve-confirm' });
    const go = el('button', { type: 'submit', class: 'button primary', testid: 'resolve-submit' }, 'Resolve');
    const sync = () => { receipt.wrap.hidden = !paid.checked; reason.wrap.hidden = paid.checked; confirm.hidden = true; go.hidden = false; };
    paid.addEventListener('change', sync);
    failed.addEventListener('change', sync);
    form.append(el('fieldset', { class: 'subfield', 'data-field': 'outcome' }, el('legend', null, 'Resolve as'),
      el('div', { class: 'radios' }, el('label', { class: 'radio', for: paid.id }, paid, ' paid'), el('label', { class: 'radio', for: failed.id }, failed, ' failed (money back to remaining)'))),
    receipt.wrap, reason.wrap, formError(), confirm, el('div', { class: 'actions' }, go));
    let confirmed = false;
    onSubmit(form, async () => {
      if (!confirmed) {
        const what = paid.checked ? `paid with receipt ${receipt.input.value.trim() || '(none)'}` : 'failed, returning the money to the escrow';
        clear(confirm).append(el('p', null, `Mark ${p.payoutId} as ${what}? This cannot be undone.`),
          el('div', { class: 'actions' },
            button('Yes, resolve', { variant: 'danger', testid: 'resolve-confirm-yes', onclick: () => { confirmed = true; form.requestSubmit(); } }),
            button('Back', { testid: 'resolve-confirm-no', onclick: sync })));
        confirm.hidden = false;
        go.hidden = true;
        confirm.querySelector('button').focus();
        return;
      }
      confirmed = false;
      const body = paid.checked ? { outcome: 'paid', receipt: receipt.input.value.trim() } : { outcome: 'failed', reason: reason.input.value.trim() };
      if (body.receipt === '') delete body.receipt;
      if (body.reason === '') delete body.reason;
      try {
        await api('POST', `/payouts/${encodeURIComponent(p.payoutId)}/resolve`, body);
      } catch (err) {
        sync();
        throw err;
      }
      notice(`${p.payoutId} resolved as ${body.outcome}.`);
      await loadStuck();
    });
    card.append(form);
    return card;
  }

  async function loadStuck() {
    const d = await api('GET', `/payouts${qs({ status: 'stuck' })}`);
    if (!ctx.alive()) return;
    const items = (d && d.items) || [];
    if (!items.length) {
      clear(stuck).append(emptyState('No stuck payouts.', 'no-stuck'));
      return;
    }
    if (stuck.querySelector('.empty')) clear(stuck);
    patchList(stuck, items, (p) => p.payoutId, payoutCard);
  }

  await Promise.all([
    loadIntegrity().catch((err) => { clear(integrity).append(el('h2', null, 'Integrity'), el('p', { class: 'form-error' }, errorText(err))); }),
    loadFx().catch((err) => { clear(fxBox).append(el('h2', null, 'Exchange rate'), el('p', { class: 'form-error' }, errorText(err))); }),
    loadFloat().catch((err) => { clear(floatBox).append(el('h2', null, 'M-Pesa float'), el('p', { class: 'form-error' }, errorText(err))); }),
    loadStuck().catch(globalError),
  ]);
  ctx.every(15000, () => (stuck.contains(document.activeElement) ? undefined : loadStuck()));
}
