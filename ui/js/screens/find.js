// Agent screens #/payments and #/deposits, recipient screen #/mine: finding an escrow (by the
// recipient's phone for agents), the link to a new payment request on an active one, and the
// agent's cash deposit form on a pending_deposit one.

import { PAGE, api, qs } from '../api.js';
import { button, el, field, formError, pageHead, patchList, replaceKeepingFocus } from '../dom.js';
import { barLegend, escrowCard } from '../escrow-card.js';
import { centsToInput, usd } from '../format.js';
import { busy, clearErrors, onSubmit, showError } from '../forms.js';
import { globalError, notice } from '../notices.js';
import { session } from '../session.js';

export async function viewFind(root, ctx, status) {
  const role = session.me.role;
  const isAgent = role === 'agent';
  const title = status === 'active' ? 'Payments' : status === 'pending_deposit' ? 'Deposits' : 'My escrows';
  const intro = status === 'active' ? 'Active escrows. Find the recipient\u2019s escrow, then make a payment request for them.'
    : status === 'pending_deposit' ? 'Escrows waiting for their deposit (status pending_deposit). Record cash received at this kiosk.'
      : 'Your escrows. Pick an active one to ask for a payment.';
  const list = el('div', { class: 'stack', testid: 'escrow-list' });
  const summary = el('p', { class: 'muted', 'aria-live': 'polite', testid: 'escrow-summary' }, 'Loading…');
  const more = button('Load more', { testid: 'load-more', hidden: true });
  const depositOpen = new Set();
  const escrowData = new Map();
  let phoneFilter = '';
  let cursor = null;

  root.append(pageHead(title, intro, button('Refresh', { testid: 'refresh', onclick: () => load(false).catch(globalError) })));

  if (isAgent) {
    const form = el('form', { class: 'card toolbar search', role: 'search', testid: 'search-form' });
    const phone = field({ label: 'Recipient phone', dataField: 'recipientPhone', testid: 'search-phone', type: 'tel', hint: 'e.g. 0712345678', wrapClass: 'grow' });
    form.append(phone.wrap, el('div', { class: 'actions end' },
      el('button', { type: 'submit', class: 'button primary', testid: 'search-submit' }, 'Search'),
      button('Show all', { testid: 'search-clear', onclick: () => { phone.input.value = ''; phoneFilter = ''; clearErrors(form); load(false).catch((err) => showError(form, err)); } })),
    formError());
    onSubmit(form, async () => {
      phoneFilter = phone.input.value.trim();
      await load(false);
    });
    root.append(form);
  }
  root.append(summary, barLegend(), list, el('div', { class: 'actions center' }, more));

  function depositForm(e) {
    const due = Math.max(0, Number(e.totalAmountUsdCents) - Number(e.depositedUsdCents || 0));
    const form = el('form', { class: 'panel inline-form', testid: 'deposit-form' });
    const amount = field({ label: 'Amount received (USD)', dataField: 'amountUsd', testid: 'deposit-amount', value: centsToInput(due), attrs: { inputmode: 'decimal' } });
    const reference = field({ label: 'Receipt reference', dataField: 'reference', testid: 'deposit-reference', hint: 'The number on the cash receipt you hand over, e.g. receipt-0042.', attrs: { spellcheck: 'false' } });
    form.append(el('h4', null, 'Record cash deposit'), el('div', { class: 'grid-2' }, amount.wrap, reference.wrap), formError(),
      el('div', { class: 'actions' },
        el('button', { type: 'submit', class: 'button primary', testid: 'deposit-submit' }, 'Record deposit'),
        button('Close', { testid: 'deposit-close', onclick: () => { depositOpen.delete(e.escrowId); rebuild(e); } })));
    onSubmit(form, async () => {
      const body = {};
      if (amount.input.value.trim()) body.amountUsd = amount.input.value.trim();
      if (reference.input.value.trim()) body.reference = reference.input.value.trim();
      const d = await api('POST', `/escrows/${encodeURIComponent(e.escrowId)}/deposits`, body);
      depositOpen.delete(e.escrowId);
      const fresh = await api('GET', `/escrows/${encodeURIComponent(e.escrowId)}`);
      escrowData.set(fresh.escrowId, fresh);
      rebuild(fresh);
      const amountText = d && d.amountUsdCents !== undefined ? usd(d.amountUsdCents) : 'The deposit';
      if (d && d.duplicate) notice(`This reference was recorded before; nothing changed. The escrow is ${fresh.status}.`);
      else notice(`${amountText} recorded for ${fresh.recipient ? fresh.recipient.name : 'the recipient'}. The escrow is ${fresh.status}.`);
      const node = list.querySelector(`[data-key="${CSS.escape(fresh.escrowId)}"] [data-testid="new-request"], [data-key="${CSS.escape(fresh.escrowId)}"] [data-testid="record-deposit"]`);
      if (node) node.focus();
    });
    return form;
  }

  function build(e) {
    const actions = [];
    if (e.status === 'active' && (isAgent || role === 'recipient')) {
      actions.push(el('a', { class: 'button primary', href: `#/request/${encodeURIComponent(e.escrowId)}`, testid: 'new-request' }, 'New payment request'));
    }
    if (e.status === 'pending_deposit' && isAgent && !depositOpen.has(e.escrowId)) {
      actions.push(button('Record deposit', {
        variant: 'primary', testid: 'record-deposit',
        onclick: () => {
          depositOpen.add(e.escrowId);
          rebuild(e);
          const input = list.querySelector(`[data-key="${CSS.escape(e.escrowId)}"] [data-testid="deposit-reference"]`);
          if (input) input.focus();
        },
      }));
    }
    const panels = depositOpen.has(e.escrowId) && e.status === 'pending_deposit' ? [depositForm(e)] : [];
    return escrowCard(e, { actions, panels });
  }

  function rebuild(e) {
    const old = list.querySelector(`[data-key="${CSS.escape(e.escrowId)}"]`);
    const fresh = build(e);
    fresh.dataset.key = e.escrowId;
    fresh.dataset.sig = JSON.stringify(e);
    if (old) replaceKeepingFocus(old, fresh);
    else list.prepend(fresh);
  }

  async function load(append) {
    const d = await api('GET', `/escrows${qs({ status, recipientPhone: phoneFilter, limit: PAGE, cursor: append ? cursor : null })}`);
    if (!ctx.alive()) return;
    cursor = d.nextCursor || null;
    const items = d.items || [];
    for (const e of items) escrowData.set(e.escrowId, e);
    const all = append ? [...Array.from(list.children).map((n) => escrowData.get(n.dataset.key)).filter(Boolean), ...items] : items;
    patchList(list, all, (e) => e.escrowId, build);
    const n = list.children.length;
    const what = status ? `${status} escrow${n === 1 ? '' : 's'}` : `escrow${n === 1 ? '' : 's'}`;
    summary.textContent = n
      ? `${n}${cursor ? '+' : ''} ${what}${phoneFilter ? ` for ${phoneFilter}` : ''}.`
      : `No ${status ? `${status} ` : ''}escrows${phoneFilter ? ` for ${phoneFilter}` : ''}.`;
    more.hidden = !cursor;
  }

  more.addEventListener('click', () => busy(more, () => load(true)).catch(globalError));
  await load(false);
}
