// Agent and recipient screen #/request/<escrowId>: a new payment request on one escrow with its
// live USD equivalent, the requests sent from here tracked until they end, and the escrow's
// recent requests.

import { api, errorText, qs } from '../api.js';
import { clear, el, field, formError, pageHead, patchList, uid } from '../dom.js';
import { barLegend, escrowCard } from '../escrow-card.js';
import { formatRate, kes, rateKesPerUsdE4, usd, usdCentsForKes, when } from '../format.js';
import { markField, onSubmit } from '../forms.js';
import { globalError, notice } from '../notices.js';
import { requestRow } from '../request-card.js';
import { session } from '../session.js';
import { tracker } from '../tracker.js';

export async function viewRequest(root, ctx, escrowId) {
  const isAgent = session.me.role === 'agent';
  const back = el('a', { class: 'button link back', href: isAgent ? '#/payments' : '#/mine', testid: 'back-to-escrows' }, '\u2190 Back to escrows');
  const escrowBox = el('div', { class: 'request-escrow', testid: 'request-escrow' }, el('p', { class: 'muted' }, 'Loading…'));
  root.append(back, pageHead('New payment request', 'Pay a merchant in KES from one of the escrow\u2019s categories. The sender approves it, then it is paid over M-Pesa.'), escrowBox);

  let escrow;
  try {
    escrow = await api('GET', `/escrows/${encodeURIComponent(escrowId)}`);
  } catch (err) {
    if (ctx.alive()) clear(escrowBox).append(el('p', { class: 'card form-error', role: 'alert', testid: 'escrow-load-error' }, errorText(err)));
    return;
  }
  let fx = null;
  if (!ctx.alive()) return;

  function renderEscrow() {
    clear(escrowBox).append(barLegend(), escrowCard(escrow));
  }
  renderEscrow();

  const trackers = el('div', { class: 'stack', testid: 'trackers' });
  const trackersSection = el('section', { class: 'section', hidden: true, 'aria-labelledby': 'sent-h' }, el('h2', { id: 'sent-h' }, 'Sent from this screen'), trackers);
  const history = el('ul', { class: 'rows', testid: 'escrow-history' });
  const historySection = el('section', { class: 'section', 'aria-labelledby': 'hist-h' }, el('h2', { id: 'hist-h' }, 'Recent requests on this escrow'), history);

  if (escrow.status !== 'active') {
    root.append(el('p', { class: 'card notice-box', testid: 'not-active' },
      `This escrow is ${escrow.status}. Payment requests can be made on active escrows only.`), historySection);
    await loadHistory();
    return;
  }

  // ---- the form
  const form = el('form', { class: 'form card', testid: 'request-form', 'aria-label': 'New payment request' });
  const category = field({
    label: 'Category', tag: 'select', dataField: 'category', testid: 'request-category',
    options: (escrow.categories || []).map((c) => el('option', { value: c.name }, `${c.name} \u2014 ${usd(c.remainingUsdCents)} remaining`)),
  });
  const amount = field({ label: 'Amount (KES, whole shillings)', dataField: 'amountKes', testid: 'request-amount', attrs: { inputmode: 'numeric', pattern: '[0-9]*' }, hint: 'For example 1500.' });
  const merchantName = field({ label: 'Merchant name', dataField: 'merchantName', testid: 'merchant-name', hint: 'e.g. Kenya Power' });

  const typeName = uid('mtype');
  const typeInputs = {};
  const typeBox = el('fieldset', { class: 'subfield', 'data-field': 'merchantAccount.type', testid: 'merchant-type' },
    el('legend', null, 'Pay to'),
    el('div', { class: 'radios' }, [['paybill', 'PayBill'], ['till', 'Till (Buy Goods)'], ['phone', 'Phone (M-Pesa)']].map(([v, label]) => {
      const id = `${typeName}-${v}`;
      typeInputs[v] = el('input', { type: 'radio', name: typeName, id, value: v, checked: v === 'paybill', testid: `merchant-type-${v}` });
      return el('label', { for: id, class: 'radio' }, typeInputs[v], ` ${label}`);
    })));
  const number = field({ label: 'PayBill number', dataField: 'merchantAccount.number', testid: 'merchant-number', attrs: { inputmode: 'numeric', spellcheck: 'false' } });
  const reference = field({ label: 'Account number', dataField: 'merchantAccount.accountReference', testid: 'merchant-reference', hint: 'The account at the merchant, e.g. the meter number.', attrs: { spellcheck: 'false' } });
  const note = field({ label: 'Note', optional: true, dataField: 'note', testid: 'request-note', tag: 'textarea' });
  const preview = el('div', { class: 'preview', testid: 'usd-equivalent', 'aria-live': 'polite' });

  function merchantType() {
    return Object.keys(typeInputs).find((k) => typeInputs[k].checked) || 'paybill';
  }
  function syncType() {
    const t = merchantType();
    number.label.textContent = t === 'paybill' ? 'PayBill number' : t === 'till' ? 'Till number' : 'Phone number';
    number.input.setAttribute('inputmode', t === 'phone' ? 'tel' : 'numeric');
    reference.wrap.hidden = t !== 'paybill';
  }
  Object.values(typeInputs).forEach((i) => i.addEventListener('change', syncType));
  syncType();

  function renderPreview() {
    clear(preview);
    const text = amount.input.value.trim();
    const e4 = fx ? rateKesPerUsdE4(fx.rate) : null;
    preview.append(el('div', { class: 'preview-label' }, 'USD equivalent'));
    if (!text) {
      preview.append(el('p', { class: 'muted' }, 'Enter an amount in KES to see what it costs in USD.'));
      return;
    }
    if (!/^\d+$/.test(text) || /^0+$/.test(text)) {
      preview.append(el('p', { class: 'muted' }, 'Whole shillings only, e.g. 1500.'));
      return;
    }
    if (!e4) {
      preview.append(el('p', { class: 'muted' }, 'The exchange rate is not available yet.'));
      return;
    }
    const kesCents = Number(text) * 100;
    const cents = usdCentsForKes(kesCents, e4);
    const cat = (escrow.categories || []).find((c) => c.name === category.input.value);
    preview.append(
      el('p', { class: 'preview-amount' }, el('span', { testid: 'usd-equivalent-kes' }, kes(kesCents)), ' = ',
        el('strong', { testid: 'usd-equivalent-value' }, usd(cents))),
      el('p', { class: 'muted small', testid: 'usd-equivalent-rate' }, `At KES ${formatRate(e4)} per USD${fx.updatedAt ? ` (rate of ${when(fx.updatedAt)})` : ''}. The rate is fixed when you send.`));
    if (cat && cents > Number(cat.remainingUsdCents)) {
      preview.append(el('p', { class: 'warn', testid: 'over-balance' }, `More than the ${usd(cat.remainingUsdCents)} remaining in ${cat.name}: the sender cannot approve it.`));
    }
  }
  amount.input.addEventListener('input', renderPreview);
  category.input.addEventListener('change', renderPreview);

  async function loadFx() {
    const rates = await api('GET', '/fx-rates');
    fx = rates && rates['USD-KES'] ? rates['USD-KES'] : null;
    if (ctx.alive()) renderPreview();
  }

  form.append(
    el('div', { class: 'grid-2' }, category.wrap, amount.wrap),
    preview,
    merchantName.wrap, typeBox,
    el('div', { class: 'grid-2' }, number.wrap, reference.wrap),
    note.wrap, formError(),
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'button primary', testid: 'submit-request' }, 'Send for approval')));
  root.append(form, trackersSection, historySection);

  onSubmit(form, async () => {
    const amountText = amount.input.value.trim();
    if (amountText && !/^\d+$/.test(amountText)) {
      markField(amount.input, 'Enter whole shillings only, without cents (e.g. 1500).');
      amount.input.focus();
      return;
    }
    const t = merchantType();
    const account = { type: t };
    if (number.input.value.trim()) account.number = number.input.value.trim();
    if (t === 'paybill' && reference.input.value.trim()) account.accountReference = reference.input.value.trim();
    const body = { escrowId: escrow.escrowId, category: category.input.value };
    if (amountText) body.amountKes = amountText;
    if (merchantName.input.value.trim()) body.merchantName = merchantName.input.value.trim();
    body.merchantAccount = account;
    if (note.input.value.trim()) body.note = note.input.value.trim();
    const created = await api('POST', '/payment-requests', body);
    const initial = {
      escrowId: escrow.escrowId, category: body.category, merchantName: body.merchantName,
      merchantAccount: account, note: body.note || null, createdAt: new Date().toISOString(), payout: null, ...created,
    };
    const t2 = tracker(ctx, initial, {
      canCancel: true,
      onChange: () => loadHistory().catch(() => {}),
      onFinal: (r) => {
        refreshEscrow().catch(globalError);
        loadHistory().catch(() => {});
        if (r.status === 'paid') notice(`Paid: ${kes(r.amountKesCents)} to ${r.merchantName || 'the merchant'}${r.payout && r.payout.mpesaReceipt ? `, M-Pesa receipt ${r.payout.mpesaReceipt}` : ''}.`);
        else if (r.status === 'failed') notice(`The payout of ${kes(r.amountKesCents)} failed. ${usd(r.amountUsdCents)} went back to ${r.category}.`, 'warn');
        else if (r.status === 'rejected') notice(`The sender rejected ${kes(r.amountKesCents)} to ${r.merchantName || 'the merchant'}${r.reason ? `: ${r.reason}` : '.'}`, 'warn');
      },
    });
    trackers.prepend(t2.node);
    trackersSection.hidden = false;
    amount.input.value = '';
    note.input.value = '';
    merchantName.input.value = '';
    number.input.value = '';
    reference.input.value = '';
    renderPreview();
    notice(`Sent for approval: ${kes(created.amountKesCents)} = ${usd(created.amountUsdCents)}.`);
    loadHistory().catch(() => {});
  });

  async function refreshEscrow() {
    const fresh = await api('GET', `/escrows/${encodeURIComponent(escrow.escrowId)}`);
    if (!ctx.alive() || JSON.stringify(fresh) === JSON.stringify(escrow)) return;
    escrow = fresh;
    renderEscrow();
    const selected = category.input.value;
    clear(category.input).append(...(escrow.categories || []).map((c) => el('option', { value: c.name }, `${c.name} \u2014 ${usd(c.remainingUsdCents)} remaining`)));
    category.input.value = selected;
    renderPreview();
  }

  async function loadHistory() {
    const d = await api('GET', `/payment-requests${qs({ escrowId: escrow.escrowId, limit: 20 })}`);
    if (!ctx.alive()) return;
    const items = (d && d.items) || [];
    if (!items.length) {
      clear(history).append(el('li', { class: 'empty' }, 'No requests yet.'));
      return;
    }
    if (history.querySelector('.empty')) clear(history);
    patchList(history, items, (r) => r.paymentRequestId, requestRow);
  }

  renderPreview();
  await Promise.all([loadFx(), loadHistory()]);
  ctx.every(60000, loadFx);
  ctx.every(5000, async () => { await refreshEscrow(); await loadHistory(); });
  category.input.focus();
}
