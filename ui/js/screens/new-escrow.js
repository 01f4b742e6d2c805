// Sender screen #/new-escrow: the form that creates an escrow (categories split evenly or with
// amounts) and the deposit reference to hand over with the money.

import { api } from '../api.js';
import { button, clear, dl, el, field, formError, pageHead, statusBadge, uid } from '../dom.js';
import { usd } from '../format.js';
import { onSubmit } from '../forms.js';
import { notice } from '../notices.js';

export function viewNewEscrow(root) {
  const form = el('form', { class: 'form card', testid: 'escrow-form', 'aria-labelledby': 'new-escrow-h' });
  const phone = field({ label: 'Recipient phone', dataField: 'recipientPhone', testid: 'recipient-phone', type: 'tel', hint: 'A Kenyan mobile number, e.g. 0712345678.', autocomplete: 'off' });
  const name = field({ label: 'Recipient name', dataField: 'recipientName', testid: 'recipient-name' });
  const total = field({ label: 'Total amount (USD)', dataField: 'totalAmountUsd', testid: 'total-amount', attrs: { inputmode: 'decimal' }, hint: 'For example 500 or 500.25.' });
  const limit = field({ label: 'Daily limit (USD)', optional: true, dataField: 'dailyLimitUsd', testid: 'daily-limit', attrs: { inputmode: 'decimal' }, hint: 'The most you allow to be approved per day (Nairobi time).' });

  const modeName = uid('mode');
  const modeEven = el('input', { type: 'radio', name: modeName, id: `${modeName}-even`, value: 'even', checked: true, testid: 'categories-mode-even' });
  const modeAmounts = el('input', { type: 'radio', name: modeName, id: `${modeName}-amounts`, value: 'amounts', testid: 'categories-mode-amounts' });
  const names = field({ label: 'Category names', dataField: 'categories', testid: 'categories-names', hint: 'Separated by commas, e.g. electricity, water, school_fees. Lowercase letters, digits and _. The total is split evenly.', attrs: { spellcheck: 'false' } });
  const rows = el('div', { class: 'category-rows', testid: 'category-rows' });
  const addRow = button('Add category', { small: true, testid: 'add-category-row' });
  const amountsBox = el('fieldset', { class: 'subfield', hidden: true, 'data-field': 'categories' },
    el('legend', null, 'Categories with amounts'),
    el('p', { class: 'hint' }, 'The amounts must add up to the total.'), rows, addRow);
  const evenBox = el('div', null, names.wrap);

  function row(nameVal, amountVal) {
    const i = rows.children.length;
    const n = field({ label: 'Name', dataField: `categories[${i}].name`, testid: 'category-row-name', value: nameVal || '', wrapClass: 'grow', attrs: { spellcheck: 'false' } });
    const a = field({ label: 'Amount (USD)', dataField: `categories[${i}].amountUsd`, testid: 'category-row-amount', value: amountVal || '', attrs: { inputmode: 'decimal' } });
    const remove = button('Remove', { small: true, testid: 'remove-category-row', 'aria-label': 'Remove this category' });
    const r = el('div', { class: 'category-row' }, n.wrap, a.wrap, el('div', { class: 'field end' }, remove));
    remove.addEventListener('click', () => {
      r.remove();
      Array.from(rows.children).forEach((child, j) => {
        const [ni, ai] = child.querySelectorAll('input');
        ni.dataset.field = `categories[${j}].name`;
        ai.dataset.field = `categories[${j}].amountUsd`;
      });
      addRow.focus();
    });
    rows.append(r);
    return n.input;
  }
  row();
  row();
  addRow.addEventListener('click', () => row().focus());

  function syncMode() {
    const amounts = modeAmounts.checked;
    amountsBox.hidden = !amounts;
    evenBox.hidden = amounts;
  }
  modeEven.addEventListener('change', syncMode);
  modeAmounts.addEventListener('change', syncMode);

  const result = el('div', { 'aria-live': 'polite' });
  form.append(
    el('div', { class: 'grid-2' }, phone.wrap, name.wrap, total.wrap, limit.wrap),
    el('fieldset', { class: 'subfield' },
      el('legend', null, 'Categories'),
      el('div', { class: 'radios' },
        el('label', { for: modeEven.id, class: 'radio' }, modeEven, ' Split the total evenly'),
        el('label', { for: modeAmounts.id, class: 'radio' }, modeAmounts, ' Set an amount per category')),
      evenBox, amountsBox),
    formError(),
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'button primary', testid: 'create-escrow' }, 'Create escrow')));

  onSubmit(form, async () => {
    const body = {};
    const put = (k, v) => { const t = v.trim(); if (t !== '') body[k] = t; };
    put('recipientPhone', phone.input.value);
    put('recipientName', name.input.value);
    put('totalAmountUsd', total.input.value);
    if (modeAmounts.checked) {
      body.categories = Array.from(rows.children).map((r) => {
        const [ni, ai] = r.querySelectorAll('input');
        const o = { name: ni.value.trim() };
        if (ai.value.trim() !== '') o.amountUsd = ai.value.trim();
        return o;
      }).filter((o) => o.name !== '' || o.amountUsd !== undefined);
    } else {
      body.categories = names.input.value.split(',').map((s) => s.trim()).filter(Boolean);
    }
    put('dailyLimitUsd', limit.input.value);
    const e = await api('POST', '/escrows', body);
    clear(result).append(el('div', { class: 'card success', testid: 'created-escrow', dataset: { escrowId: e.escrowId } },
      el('h2', null, 'Escrow created'),
      dl([
        ['Escrow', el('span', { class: 'mono', testid: 'created-escrow-id' }, e.escrowId)],
        ['Status', statusBadge(e.status, 'created-escrow-status')],
        ['Total', usd(e.totalAmountUsdCents), 'created-escrow-total'],
        ['Deposit reference', el('span', { class: 'mono' }, e.depositReference || e.escrowId), 'created-deposit-reference'],
      ]),
      el('p', { class: 'muted' }, 'Give the deposit reference with the money (cash at a kiosk agent, or card). The escrow becomes active once the deposit covers the total.'),
      el('div', { class: 'actions' }, el('a', { class: 'button secondary', href: '#/escrows', testid: 'go-escrows' }, 'See your escrows'))));
    form.reset();
    rows.replaceChildren();
    row();
    row();
    syncMode();
    notice('Escrow created.');
    result.querySelector('h2').setAttribute('tabindex', '-1');
    result.querySelector('h2').focus();
  });

  root.append(pageHead('New escrow', 'Put money aside for a recipient in Kenya, earmarked by category. They (or a kiosk agent for them) ask for payments; you approve each one.'),
    el('h2', { id: 'new-escrow-h', class: 'visually-hidden' }, 'New escrow form'), result, form);
}
