// Sender screen #/new-escrow: the form that creates an escrow (categories split evenly or with
// amounts), every field checked before anything is sent, a confirmation step that shows the
// recipient's name and masked phone ("Is this the right person?"), and the deposit code to tell
// the kiosk.

import { api } from '../api.js';
import { button, clear, copyButton, dl, el, escapeAnswers, field, formError, pageHead, statusBadge, uid } from '../dom.js';
import { formatShortRef, kenyanDigits, parseDecimal, spacedPhone, usd } from '../format.js';
import { amountError, checkFields, onSubmit, showError, textProblem, TEXT_CHARS_MAX } from '../forms.js';
import { t, TABLES } from '../i18n.js';
import { notice } from '../notices.js';
import { session } from '../session.js';
import { categoryLabel } from '../words.js';

const CATEGORIES_MAX = 16;
const CATEGORY_CHARS_MAX = 32;

// A category name as the API spells it ("School Fees" → school_fees, "a - b" → a_b), or null.
// Sent that way (the server takes a new category's name only so spelled), so that what the
// sender saw in the confirmation is what the server stores. A known category's words in either
// language are that category ("Umeme" → electricity, "Karo ya shule" → school_fees): typed in
// Kiswahili as the hint shows them, they became new categories (umeme), which an agent reading
// English saw in Kiswahili and Kiswahili readers could not tell from the known ones.
function normalCategory(text) {
  const spaced = String(text || '').trim().toLowerCase().replace(/[\s_-]+/g, ' ');
  const known = knownCategoryOf(spaced);
  if (known) return known;
  const s = spaced.replace(/ /g, '_').replace(/^_+|_+$/g, '');
  return /^[a-z0-9]+(?:_[a-z0-9]+)*$/.test(s) && s.length <= CATEGORY_CHARS_MAX ? s : null;
}

// The known category whose label, in any language, is `spaced` (lowercase, single spaces).
function knownCategoryOf(spaced) {
  for (const table of Object.values(TABLES)) {
    for (const [key, label] of Object.entries(table)) {
      if (key.startsWith('category.') && label.toLowerCase().replace(/[\s_-]+/g, ' ') === spaced) {
        return key.slice('category.'.length);
      }
    }
  }
  return null;
}

function categoryProblem(text) {
  if (!String(text || '').trim()) return t('newEscrow.err.categoryEmpty');
  if (String(text).trim().length > CATEGORY_CHARS_MAX) return t('newEscrow.err.categoryLong', { n: CATEGORY_CHARS_MAX });
  if (!normalCategory(text)) return t('newEscrow.err.categoryChars');
  return null;
}

// The even split the server makes: the remainder cents go to the first categories.
function evenSplit(totalCents, n) {
  const base = Math.floor(totalCents / n);
  const extra = totalCents - base * n;
  return Array.from({ length: n }, (_, i) => base + (i < extra ? 1 : 0));
}

export function viewNewEscrow(root) {
  const form = el('form', { class: 'form card', testid: 'escrow-form', 'aria-labelledby': 'new-escrow-h' });
  const phone = field({ label: t('newEscrow.phone'), dataField: 'recipientPhone', testid: 'recipient-phone', type: 'tel', hint: t('newEscrow.phoneHint'), autocomplete: 'off' });
  const name = field({ label: t('newEscrow.name'), dataField: 'recipientName', testid: 'recipient-name', hint: t('newEscrow.nameHint'), attrs: { maxlength: TEXT_CHARS_MAX } });
  const total = field({ label: t('newEscrow.total'), dataField: 'totalAmountUsd', testid: 'total-amount', attrs: { inputmode: 'decimal' }, hint: t('newEscrow.totalHint') });
  const limit = field({ label: t('newEscrow.limit'), optional: true, dataField: 'dailyLimitUsd', testid: 'daily-limit', attrs: { inputmode: 'decimal' }, hint: t('newEscrow.limitHint') });

  const modeName = uid('mode');
  const modeEven = el('input', { type: 'radio', name: modeName, id: `${modeName}-even`, value: 'even', checked: true, testid: 'categories-mode-even' });
  const modeAmounts = el('input', { type: 'radio', name: modeName, id: `${modeName}-amounts`, value: 'amounts', testid: 'categories-mode-amounts' });
  const names = field({ label: t('newEscrow.categoryNames'), dataField: 'categories', testid: 'categories-names', hint: t('newEscrow.categoryNamesHint'), attrs: { spellcheck: 'false' } });
  const rows = el('div', { class: 'category-rows', testid: 'category-rows' });
  const addRow = button(t('newEscrow.addCategory'), { small: true, testid: 'add-category-row' });
  const amountsBox = el('fieldset', { class: 'subfield', hidden: true, 'data-field': 'categories' },
    el('legend', null, t('newEscrow.amountsLegend')),
    el('p', { class: 'hint' }, t('newEscrow.amountsHint')), rows, addRow);
  const evenBox = el('div', null, names.wrap);

  function row(nameVal, amountVal) {
    const i = rows.children.length;
    const n = field({ label: t('newEscrow.categoryName'), dataField: `categories[${i}].name`, testid: 'category-row-name', value: nameVal || '', wrapClass: 'grow', attrs: { spellcheck: 'false' } });
    const a = field({ label: t('newEscrow.categoryAmount'), dataField: `categories[${i}].amountUsd`, testid: 'category-row-amount', value: amountVal || '', attrs: { inputmode: 'decimal' } });
    const remove = button(t('newEscrow.remove'), { small: true, testid: 'remove-category-row', 'aria-label': t('newEscrow.removeLabel') });
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
  addRow.addEventListener('click', () => {
    if (rows.children.length >= CATEGORIES_MAX) return;
    row().focus();
  });

  // The names typed in one mode go with the sender into the other, where nothing is typed yet
  // (they were lost: two empty rows to type them again).
  function syncMode() {
    const amounts = modeAmounts.checked;
    const rowNames = () => Array.from(rows.children).map((r) => r.querySelector('input').value.trim());
    const rowsEmpty = () => Array.from(rows.children).every((r) => Array.from(r.querySelectorAll('input')).every((i) => !i.value.trim()));
    if (amounts && rowsEmpty()) {
      // All of them: more than the most is said when the form is sent, not dropped here.
      const typed = names.input.value.split(',').map((s) => s.trim()).filter(Boolean);
      if (typed.length) {
        rows.replaceChildren();
        for (const n of typed) row(n);
        if (typed.length < 2) row();
      }
    } else if (!amounts && !names.input.value.trim()) {
      names.input.value = rowNames().filter(Boolean).join(', ');
    }
    amountsBox.hidden = !amounts;
    evenBox.hidden = amounts;
  }
  modeEven.addEventListener('change', syncMode);
  modeAmounts.addEventListener('change', syncMode);

  const result = el('div', { 'aria-live': 'polite' });
  const confirmBox = el('div', { testid: 'confirm-box', hidden: true });
  form.append(
    el('div', { class: 'grid-2' }, phone.wrap, name.wrap, total.wrap, limit.wrap),
    el('fieldset', { class: 'subfield' },
      el('legend', null, t('newEscrow.categories')),
      el('div', { class: 'radios' },
        el('label', { for: modeEven.id, class: 'radio' }, modeEven, ` ${t('newEscrow.splitEven')}`),
        el('label', { for: modeAmounts.id, class: 'radio' }, modeAmounts, ` ${t('newEscrow.splitAmounts')}`)),
      evenBox, amountsBox),
    formError(),
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'button primary', testid: 'create-escrow' }, t('newEscrow.next'))));

  // Every field checked at once; returns the body to send, or null.
  function collect() {
    const checks = [];
    const body = {};
    const phoneText = phone.input.value.trim();
    checks.push([phone.input, !phoneText ? t('newEscrow.err.phoneEmpty') : (!kenyanDigits(phoneText) ? t('newEscrow.err.phone') : null)]);
    body.recipientPhone = phoneText;
    const nameText = name.input.value.trim();
    checks.push([name.input, textProblem(nameText, t('newEscrow.err.name'))]);
    body.recipientName = nameText;
    const totalText = total.input.value.trim();
    const totalCents = parseDecimal(totalText, 2);
    const badAmount = (text) => amountError(text, 2, t('newEscrow.err.amount'), '500');
    // The server's maximum (GET /me) is said here, not after the confirmation.
    const max = Number(session.me.maxEscrowUsdCents) || Infinity;
    checks.push([total.input, !totalText ? t('newEscrow.err.totalEmpty')
      : (!totalCents ? badAmount(totalText) : (totalCents > max ? t('newEscrow.err.overMax', { max: usd(max) }) : null))]);
    body.totalAmountUsd = totalText.replace(/[,\s]/g, '');
    const limitText = limit.input.value.trim();
    if (limitText) {
      const limitCents = parseDecimal(limitText, 2);
      checks.push([limit.input, !limitCents ? badAmount(limitText)
        : (totalCents && limitCents > totalCents ? t('newEscrow.err.limitOverTotal', { total: usd(totalCents) }) : null)]);
      body.dailyLimitUsd = limitText.replace(/[,\s]/g, '');
    }
    const shown = [];
    if (modeAmounts.checked) {
      const parts = Array.from(rows.children).map((r) => r.querySelectorAll('input'))
        .filter(([ni, ai]) => ni.value.trim() !== '' || ai.value.trim() !== '');
      if (!parts.length) checks.push([amountsBox, t('newEscrow.err.noCategories')]);
      let sum = 0;
      let allAmounts = true;
      const seen = new Set();
      body.categories = parts.map(([ni, ai]) => {
        const n = ni.value.trim();
        const cents = parseDecimal(ai.value, 2);
        let problem = categoryProblem(n);
        if (!problem && seen.has(normalCategory(n))) problem = t('newEscrow.err.categoryTwice');
        seen.add(normalCategory(n));
        checks.push([ni, problem]);
        checks.push([ai, cents ? null : badAmount(ai.value)]);
        if (cents) sum += cents; else allAmounts = false;
        shown.push([n, cents]);
        return { name: normalCategory(n) || n, amountUsd: ai.value.trim().replace(/[,\s]/g, '') };
      });
      if (parts.length > CATEGORIES_MAX) checks.push([amountsBox, t('newEscrow.err.tooMany', { n: CATEGORIES_MAX })]);
      else if (parts.length && allAmounts && totalCents && sum !== totalCents) {
        checks.push([amountsBox, t('newEscrow.err.sum', { sum: usd(sum), total: usd(totalCents) })]);
      }
    } else {
      const list = names.input.value.split(',').map((s) => s.trim()).filter(Boolean);
      let problem = list.length ? null : t('newEscrow.err.noCategories');
      const seen = new Set();
      for (const n of list) {
        problem = problem || categoryProblem(n);
        if (!problem && seen.has(normalCategory(n))) problem = t('newEscrow.err.categoryTwice');
        seen.add(normalCategory(n));
      }
      if (!problem && list.length > CATEGORIES_MAX) problem = t('newEscrow.err.tooMany', { n: CATEGORIES_MAX });
      // The total is split evenly in cents: each category needs one at least.
      if (!problem && totalCents && totalCents < list.length) problem = t('newEscrow.err.centEach', { n: list.length });
      checks.push([names.input, problem]);
      body.categories = list.map((n) => normalCategory(n) || n);
      if (totalCents && list.length) {
        const split = evenSplit(totalCents, list.length);
        list.forEach((n, i) => shown.push([n, split[i]]));
      }
    }
    if (!checkFields(form, checks)) return null;
    return { body, totalCents, shown };
  }

  function showConfirm(data) {
    const { body, totalCents, shown } = data;
    const yes = button(t('newEscrow.confirmYes'), { variant: 'primary', testid: 'confirm-create' });
    const back = button(t('newEscrow.confirmBack'), { testid: 'confirm-back' });
    const box = el('div', { class: 'card confirm-person', role: 'region', 'aria-labelledby': 'confirm-h' },
      el('h2', { id: 'confirm-h', tabindex: '-1' }, t('newEscrow.confirmTitle')),
      el('p', null, t('newEscrow.confirmIntro')),
      el('div', { class: 'person' },
        el('p', { class: 'person-name', testid: 'confirm-name' }, body.recipientName),
        el('p', { class: 'person-phone mono', testid: 'confirm-phone' }, spacedPhone(body.recipientPhone))),
      dl([
        [t('card.total'), usd(totalCents), 'confirm-total'],
        body.dailyLimitUsd ? [t('card.dailyLimit'), usd(parseDecimal(body.dailyLimitUsd, 2))] : null,
        [t('newEscrow.categories'), el('ul', { class: 'kv', testid: 'confirm-categories' },
          shown.map(([n, cents]) => el('li', null, `${categoryLabel(normalCategory(n) || n)}: ${cents ? usd(cents) : '—'}`)))],
      ]),
      el('p', { class: 'muted small' }, t('newEscrow.confirmNote')),
      formError(),
      el('div', { class: 'actions' }, yes, back));
    const backToForm = (focus) => {
      window.removeEventListener('popstate', onBrowserBack);
      confirmBox.hidden = true;
      clear(confirmBox);
      form.hidden = false;
      if (focus) phone.input.focus();
    };
    // The browser's Back (a phone's back button) goes back to the form as it was typed, as the
    // Back button does, not to the screen before with the form lost: the question is a step
    // of its own in the history.
    function onBrowserBack() {
      if (form.isConnected && !confirmBox.hidden && !yes.disabled) backToForm(true);
      else window.removeEventListener('popstate', onBrowserBack);
    }
    history.pushState({ remitStep: 'confirm-escrow' }, '', location.href);
    window.addEventListener('popstate', onBrowserBack);
    // The page's Back takes the step out of the history too (the browser's Back then leaves).
    back.addEventListener('click', () => history.back());
    yes.addEventListener('click', async () => {
      yes.disabled = true;
      back.disabled = true;
      let e;
      // (Answered, the step's entry stays in the history, under the same address: going back
      // through it changes nothing on the screen, where taking it out would let the browser
      // restore an older scroll position over the answer.)
      try {
        e = await api('POST', '/escrows', body);
      } catch (err) {
        backToForm(false);
        showError(form, err);
        return;
      }
      backToForm(false);
      showCreated(e, body);
    });
    // Escape is Back, the safe answer, as in every other question.
    escapeAnswers(box, back);
    clear(confirmBox).append(box);
    form.hidden = true;
    confirmBox.hidden = false;
    box.querySelector('h2').focus();
  }

  function showCreated(e, body) {
    const code = e.shortRef ? formatShortRef(e.shortRef) : null;
    const codeNode = el('p', { class: 'code-big mono', testid: 'created-code' }, code);
    clear(result).append(el('div', { class: 'card success', testid: 'created-escrow', dataset: { escrowId: e.escrowId } },
      el('h2', { tabindex: '-1' }, t('newEscrow.created', { name: body.recipientName })),
      code ? el('div', { class: 'code-box', testid: 'created-code-box' },
        el('p', { class: 'code-label' }, t('newEscrow.codeLabel')),
        codeNode,
        // The sender passes the code on (a message to the recipient): one tap, as a token's.
        el('div', { class: 'actions' }, copyButton(codeNode, code, 'copy-code')),
        el('p', null, t('newEscrow.codeTell'))) : null,
      dl([
        [t('newEscrow.status'), statusBadge('escrow', e.status, 'created-escrow-status')],
        [t('card.total'), usd(e.totalAmountUsdCents), 'created-escrow-total'],
        [t('newEscrow.escrowId'), el('span', { class: 'mono id-line' }, e.escrowId), 'created-escrow-id'],
      ]),
      el('p', { class: 'muted' }, t('newEscrow.createdNote')),
      el('div', { class: 'actions' }, el('a', { class: 'button secondary', href: '#/escrows', testid: 'go-escrows' }, t('newEscrow.seeEscrows')))));
    form.reset();
    rows.replaceChildren();
    row();
    row();
    syncMode();
    notice(() => t('newEscrow.createdNotice'));
    result.querySelector('h2').focus();
  }

  onSubmit(form, async () => {
    clear(result);
    const data = collect();
    if (data) showConfirm(data);
  });

  root.append(pageHead(t('newEscrow.title'), t('newEscrow.intro')),
    el('h2', { id: 'new-escrow-h', class: 'visually-hidden' }, t('newEscrow.formLabel')), result, confirmBox, form);
}
