// Agent screens #/payments and #/deposits, recipient screen #/mine: finding an escrow (by the
// recipient's phone or the escrow's deposit code, for agents), balances also in KES at today's
// rate, the link to a new payment request on an active one, and the agent's cash deposit form
// (in KES or USD, an optional own reference) with its printable receipt, and the cash an agent
// recorded on an escrow, each receipt printable again.

import { PAGE, api, errorText, qs } from '../api.js';
import { button, el, escapeAnswers, field, focusLost, formError, pageHead, patchList, replaceKeepingFocus, settledLive, swallowDoubleClick, uid } from '../dom.js';
import { barLegend, escrowCard } from '../escrow-card.js';
import { centsToInput, escrowSearch, formatRate, formatShortRef, kes, kesCentsForUsd, kesToCollect, parseDecimal, searchedFor, usd, when, withoutShillingsMark } from '../format.js';
import { amountError, busy, checkFields, clearErrors, onSubmit, showError } from '../forms.js';
import { redrawingForLanguage, t, tn } from '../i18n.js';
import { globalError, notice } from '../notices.js';
import { todayRate } from '../rates.js';
import { depositReceipt } from '../receipt.js';
import { session } from '../session.js';
import { statusWord } from '../words.js';

// The deposit receipt on screen (its deposit, escrow and options) and the screen it is on:
// drawn again in the other language when the language changes (it went with the redraw, and a
// reprint is a copy that lacks what the escrow was then).
let shownReceipt = null;
// The screen on view: what it was searched for and which forms and panels are open, read when
// it is drawn again for a change of language (a kiosk switching to Kiswahili for the customer
// found the search's cards gone, and the deposit form half filled in with them).
let onView = null;

// USD cents that KES cents buy at the rate, rounded down: floor(kesCents × 10⁴ / e4).
function usdCentsBought(kesCents, e4) {
  return Number((BigInt(kesCents) * 10000n) / BigInt(e4));
}

export async function viewFind(root, ctx, status) {
  const role = session.me.role;
  const isAgent = role === 'agent';
  const title = status === 'active' ? t('nav.payments') : status === 'pending_deposit' ? t('nav.deposits') : t('nav.mine');
  const intro = status === 'active' ? t('find.introPayments')
    : status === 'pending_deposit' ? t('find.introDeposits') : t('find.introMine');
  const list = el('div', { class: 'stack', testid: 'escrow-list' });
  const summary = el('p', { class: 'muted', 'aria-live': 'polite', testid: 'escrow-summary' }, t('common.loading'));
  const more = button(t('common.loadMore'), { testid: 'load-more', hidden: true });
  const depositOpen = new Set();
  // Escrows whose list of the agent's own cash receipts is open, and what it read.
  const receiptsOpen = new Set();
  const receiptsData = new Map();
  const escrowData = new Map();
  let search = { phone: '', ref: '' };
  // A search the form refused: nothing is listed (the periodic read too) until the next one.
  let searchRefused = false;
  // An agent's screen faces the counter: it lists nothing until a search (or Show all, a
  // choice the agent makes), so that the customer standing there does not read the names and
  // balances of everyone else's escrows.
  let showAll = !isAgent;
  let cursor = null;
  let rate = null;
  let receiptNode = el('div', { hidden: true });
  const before = onView && onView.screen === location.hash && redrawingForLanguage() ? onView.read() : null;
  if (before) {
    ({ search, showAll } = before);
    before.depositOpen.forEach((id) => depositOpen.add(id));
    before.receiptsOpen.forEach((id) => receiptsOpen.add(id));
    before.receiptsData.forEach((data, id) => receiptsData.set(id, data));
  }
  onView = {
    screen: location.hash,
    // A refused search listed nothing: drawn again, the screen asks for one.
    read: () => (searchRefused ? { search: { phone: '', ref: '' }, showAll: !isAgent, depositOpen: [], receiptsOpen: [], receiptsData: new Map() }
      : { search, showAll, depositOpen: [...depositOpen], receiptsOpen: [...receiptsOpen], receiptsData: new Map(receiptsData) }),
  };

  root.append(pageHead(title, intro, button(t('common.refresh'), { testid: 'refresh', onclick: () => load(false).catch(globalError) })), receiptNode);

  if (isAgent) {
    const form = el('form', { class: 'card toolbar search', role: 'search', testid: 'search-form' });
    const query = field({ label: t('find.search'), dataField: 'recipientPhone', testid: 'search-phone', hint: t('find.searchHint'), wrapClass: 'grow', attrs: { spellcheck: 'false', autocapitalize: 'characters' } });
    form.append(query.wrap, el('div', { class: 'actions end' },
      el('button', { type: 'submit', class: 'button primary', testid: 'search-submit' }, t('find.searchButton')),
      button(t('find.showAll'), { testid: 'search-clear', onclick: () => { query.input.value = ''; searchRefused = false; showAll = true; search = { phone: '', ref: '' }; clearErrors(form); load(false).catch((err) => showError(form, err)); } })),
    formError());
    onSubmit(form, async () => {
      const asked = escrowSearch(query.input.value.trim());
      if (!checkFields(form, [[query.input, asked.error || null]])) {
        // The cards of the search before are not this one's answer: an agent could act on the
        // wrong escrow. The list stays empty until a search is made again.
        searchRefused = true;
        list.replaceChildren();
        summary.textContent = t('find.searchRefused');
        more.hidden = true;
        return;
      }
      searchRefused = false;
      search = asked.search;
      await load(false);
    });
    root.append(form);
  }
  // The cards' titles are h3: the list has its heading, for those who move by headings.
  root.append(el('h2', { class: 'visually-hidden' }, t('escrows.listTitle')), summary, barLegend(), list, el('div', { class: 'actions center' }, more));
  // The receipt on screen when the language changed, drawn again in the new one.
  if (shownReceipt && shownReceipt.screen === location.hash && redrawingForLanguage()) {
    presentReceipt(shownReceipt.d, shownReceipt.e, shownReceipt.opts);
  } else shownReceipt = null;

  function showReceipt(node) {
    receiptNode.replaceWith(node);
    receiptNode = node;
  }

  // A deposit's receipt above the list, with Print in hand and a button that takes it away.
  function presentReceipt(d, e, opts) {
    // What is still due after cash in dollars is said in shillings too, at today's rate.
    const kept = { todayRateE4: rate && rate.e4, ...opts };
    shownReceipt = { d, e, opts: kept, screen: location.hash };
    showReceipt(depositReceipt(d, e, {
      ...kept,
      // Focus goes back to the search (the button it was on is gone with the receipt).
      actions: button(t('receipt.close'), {
        testid: 'receipt-close',
        onclick: () => {
          shownReceipt = null;
          showReceipt(el('div', { hidden: true }));
          const next = root.querySelector('[data-testid="search-phone"]') || root.querySelector('h3');
          if (next) next.focus();
        },
      }),
    }));
    const printBtn = receiptNode.querySelector('[data-testid="print-receipt"]');
    if (printBtn) printBtn.focus({ preventScroll: true });
    receiptNode.scrollIntoView({ block: 'start' });
    // On a small screen the receipt is taller than the screen: its Print button (focused) is
    // brought in, as far as the receipt's top allows no more.
    if (printBtn) printBtn.scrollIntoView({ block: 'nearest' });
  }

  function depositForm(e) {
    const due = Math.max(0, Number(e.totalAmountUsdCents) - Number(e.depositedUsdCents || 0));
    const e4 = rate && rate.e4;
    const form = el('form', { class: 'panel inline-form', testid: 'deposit-form' });
    const currencyName = uid('cur');
    // Shillings first, as a kiosk counts them (dollars when no rate is known to price them).
    const inUsd = el('input', { type: 'radio', name: currencyName, id: `${currencyName}-usd`, value: 'USD', checked: !e4, testid: 'deposit-currency-usd' });
    const inKes = el('input', { type: 'radio', name: currencyName, id: `${currencyName}-kes`, value: 'KES', checked: Boolean(e4), testid: 'deposit-currency-kes', disabled: !e4 });
    const currency = el('fieldset', { class: 'subfield switch', testid: 'deposit-currency' },
      el('legend', null, t('deposit.currency')),
      el('div', { class: 'radios' },
        el('label', { for: inUsd.id, class: 'radio' }, inUsd, ' USD'),
        el('label', { for: inKes.id, class: 'radio' }, inKes, ' KES')));
    const amount = field({ label: t('deposit.amountUsd'), dataField: 'amountUsd', testid: 'deposit-amount', attrs: { inputmode: 'decimal' } });
    const reference = field({ label: t('deposit.ownReference'), optional: true, dataField: 'reference', testid: 'deposit-reference', hint: t('deposit.ownReferenceHint'), attrs: { spellcheck: 'false' } });
    const preview = el('p', { class: 'preview small', testid: 'deposit-preview', 'aria-live': 'polite' });
    const spoken = settledLive(preview);
    const kesMode = () => inKes.checked;
    // The amount as typed; in shillings without the "/=" a kiosk writes them with (1,500/=).
    const amountText = () => (kesMode() ? withoutShillingsMark(amount.input.value) : amount.input.value.trim());

    // Cash priced at a rate no admin has set says so.
    const byDefault = rate && !rate.updatedAt ? ` ${t('deposit.defaultRate', { rate: formatRate(e4) })}` : '';
    function renderPreview() {
      drawPreview();
      spoken.say();
    }
    function drawPreview() {
      const cents = parseDecimal(amountText(), 2);
      if (!e4) { preview.textContent = t('deposit.noRate'); return; }
      if (!cents) {
        const dueIs = kesMode() ? 'deposit.dueIsKes' : 'deposit.dueIs';
        preview.textContent = t(dueIs, { usd: usd(due), kes: kes(kesToCollect(due, e4)) }) + byDefault;
        return;
      }
      preview.textContent = (kesMode()
        ? t('deposit.previewKes', { kes: kes(cents), usd: usd(usdCentsBought(cents, e4)), rate: formatRate(e4) })
        : t('deposit.previewUsd', { usd: usd(cents), kes: kes(kesCentsForUsd(cents, e4)), rate: formatRate(e4) })) + byDefault;
    }
    // The field starts empty, the amount due said beside it: the agent types the cash counted,
    // never records the whole due with one Enter whatever lies on the counter. A typed amount is
    // in the currency it was typed in: a switch does not keep the number under the other
    // currency (KES 3,000 read as USD 3,000); it empties the field for the agent to type.
    function syncCurrency() {
      amount.label.textContent = kesMode() ? t('deposit.amountKes') : t('deposit.amountUsd');
      amount.input.dataset.field = kesMode() ? 'amountKes' : 'amountUsd';
      if (amount.input.value.trim()) {
        amount.input.value = '';
        amount.input.focus();
      }
      renderPreview();
    }
    inUsd.addEventListener('change', syncCurrency);
    inKes.addEventListener('change', syncCurrency);
    amount.input.addEventListener('input', renderPreview);
    syncCurrency();

    // Cash is recorded for good (no agent can take it back): the amount and whose escrow it
    // goes to are said once more before it is, the safe answer focused, as Approve and Cancel
    // ask (KES 10,000 typed for 1,000, or the card of the customer before, was recorded at once).
    // The question comes below Record, which stays where it was: the second click of a double
    // click lands on Record again (which asks again), never on Yes; and a click on Yes that is
    // the second of a double click is not taken. The buttons name the question for a screen
    // reader.
    const askId = uid('deposit-ask');
    const askText = el('p', { id: askId, testid: 'deposit-confirm-text' });
    const askYes = el('button', { type: 'button', class: 'button primary', testid: 'deposit-confirm-yes', 'aria-describedby': askId }, t('deposit.confirmYes'));
    const askNo = button(t('deposit.confirmNo'), { testid: 'deposit-confirm-no' });
    askNo.setAttribute('aria-describedby', askId);
    const ask = el('div', { class: 'inline-form', testid: 'deposit-confirm', hidden: true, role: 'group', 'aria-labelledby': askId }, askText, el('div', { class: 'actions' }, askYes, askNo));
    const record = el('button', { type: 'submit', class: 'button primary', testid: 'deposit-submit' }, t('deposit.submit'));
    let confirmed = false;
    const unask = () => { ask.hidden = true; confirmed = false; };
    askNo.addEventListener('click', () => { unask(); amount.input.focus(); });
    escapeAnswers(ask, askNo);
    askYes.addEventListener('click', () => {
      // (A double-click's second click on a button or a link is dropped by the page:
      // `main.js`; this drops one on anything else the closing question leaves under it.)
      swallowDoubleClick();
      confirmed = true;
      ask.hidden = true;
      // Where the keyboard comes back to should the recording fail (Yes is hidden by then).
      record.focus();
      form.requestSubmit();
    });
    for (const input of [amount.input, reference.input]) input.addEventListener('input', unask);
    inUsd.addEventListener('change', unask);
    inKes.addEventListener('change', unask);

    form.append(el('h4', null, t('deposit.title')), currency, el('div', { class: 'grid-2' }, amount.wrap, reference.wrap), preview, spoken.live, formError(),
      el('div', { class: 'actions' },
        record,
        button(t('common.close'), { testid: 'deposit-close', onclick: () => { depositOpen.delete(e.escrowId); rebuild(e); } })),
      ask);
    onSubmit(form, async () => {
      const text = amountText();
      // The server takes 1 to 64 visible ASCII characters: said here in words, before sending.
      const typedRef = reference.input.value.trim();
      const refOk = !typedRef || (typedRef.length <= 64 && /^[\x21-\x7e]+$/.test(typedRef));
      // More than is still due is refused by the server after the question: said here first.
      const typed = parseDecimal(text, 2);
      const overDue = typed && due > 0 && (kesMode() ? Boolean(e4) && typed > kesToCollect(due, e4) : typed > due);
      const dueSaid = e4 ? t('deposit.err.overDue', { usd: usd(due), kes: kes(kesToCollect(due, e4)) }) : t('deposit.err.overDueUsd', { usd: usd(due) });
      // Shillings worth less than a US cent count for nothing: refused by the server after the
      // question, in English.
      const underCent = kesMode() && Boolean(e4) && typed && typed * 10000 < e4;
      if (!checkFields(form, [
        [amount.input, !text ? t('deposit.err.empty') : (!typed ? amountError(text, 2, t('deposit.err.amount'), '7500')
          : (overDue ? dueSaid : (underCent ? t('deposit.err.lessThanCent') : null)))],
        [reference.input, refOk ? null : t('deposit.err.reference')],
      ])) return;
      const body = {};
      // Sent in one spelling ("15" and "15.00" alike as 15.00): a retry after a lost answer is
      // the same change whichever way the amount was typed again, and records nothing twice.
      body[kesMode() ? 'amountKes' : 'amountUsd'] = centsToInput(parseDecimal(text, 2));
      const own = reference.input.value.trim();
      if (own) body.reference = own;
      if (!confirmed) {
        const cents = parseDecimal(text, 2);
        askText.textContent = t('deposit.confirmAsk', {
          amount: kesMode() ? kes(cents) : usd(cents),
          name: e.recipient ? e.recipient.name : t('card.recipient'),
          code: e.shortRef ? formatShortRef(e.shortRef) : e.escrowId,
        });
        ask.hidden = false;
        // Once the form is no longer busy (a disabled button takes no focus): `busy` gives it
        // when it enables the form again. (A timer gave it only if it ran after that: under
        // load it ran first, and the focus stayed on the page.)
        form.focusAfterBusy = askNo;
        return;
      }
      confirmed = false;
      const d = await api('POST', `/escrows/${encodeURIComponent(e.escrowId)}/deposits`, body);
      depositOpen.delete(e.escrowId);
      // An open list of this agent's cash receipts now has one more.
      receiptsData.delete(e.escrowId);
      if (receiptsOpen.has(e.escrowId)) loadReceipts(e).catch(globalError);
      const fresh = await api('GET', `/escrows/${encodeURIComponent(e.escrowId)}`);
      escrowData.set(fresh.escrowId, fresh);
      // Priced at another rate than the form's (an admin set one meanwhile): every card says
      // today's rate and the shillings still due at it, not the form's.
      const repriced = Boolean(d && d.amountKesCents && d.rateKesPerUsdE4 && Number(d.rateKesPerUsdE4) !== e4);
      if (repriced) {
        rate = await todayRate({ fresh: true }).catch(() => rate);
        for (const node of Array.from(list.children)) {
          const shown = escrowData.get(node.dataset.key);
          if (shown && shown.escrowId !== fresh.escrowId) rebuild(shown);
        }
      }
      rebuild(fresh);
      sayCount();
      const name = fresh.recipient ? fresh.recipient.name : t('card.recipient');
      // Cash in shillings is said in shillings first, as the agent counted it.
      const counted = d && d.amountKesCents ? `${kes(d.amountKesCents)} (${usd(d.amountUsdCents)})` : usd(d && d.amountUsdCents);
      // A reference recorded before (the agent typed one already used): nothing changed. The
      // answer of this very Record given again (its answer was lost, and the browser or the
      // agent sent it once more): recorded, once.
      const was = e4;
      // A warning that stays, and the receipt shown as the copy it is: a second original
      // handed over said cash was taken that was not recorded.
      if (d && d.duplicate) notice(() => t('deposit.duplicate', { status: statusWord('escrow', fresh.status) }), 'warn');
      else if (d && d._replayed) notice(() => t('deposit.recordedOnce', { amount: counted, name, status: statusWord('escrow', fresh.status) }));
      else if (repriced) {
        // An admin set a new rate while the form was open: the customer was told another
        // dollar amount than the one recorded.
        notice(() => t('deposit.recordedAtNewRate', {
          kes: kes(d.amountKesCents), usd: usd(d.amountUsdCents), name, rate: formatRate(Number(d.rateKesPerUsdE4)),
          was: formatRate(was), status: statusWord('escrow', fresh.status),
        }), 'warn');
      } else notice(() => t('deposit.recorded', { amount: counted, name, status: statusWord('escrow', fresh.status) }));
      presentReceipt(d || {}, fresh, { ownReference: own || null, copy: Boolean(d && d.duplicate) });
    });
    return form;
  }

  // The agent's own cash deposits on an escrow (GET /deposits reads only theirs), newest first,
  // each with a button that shows its receipt again, marked as a copy.
  function receiptsPanel(e) {
    const box = el('div', { class: 'panel', testid: 'receipts-panel' }, el('h4', { tabindex: '-1' }, t('find.receiptsTitle')));
    const data = receiptsData.get(e.escrowId);
    if (!data) box.append(el('p', { class: 'muted' }, t('common.loading')));
    else if (data.error) box.append(el('p', { class: 'form-error', role: 'alert', testid: 'receipts-error' }, errorText(data.error)));
    else if (!data.length) box.append(el('p', { class: 'muted', testid: 'no-receipts' }, t('find.noReceipts')));
    else {
      box.append(el('ul', { class: 'rows', testid: 'receipts-list' }, data.map((d) => el('li', { class: 'row', dataset: { depositId: d.depositId } },
        el('span', { class: 'mono', testid: 'receipts-number' }, d.receiptNumber || '—'), ' ',
        el('span', null, d.amountKesCents ? `${kes(d.amountKesCents)} = ${usd(d.amountUsdCents)}` : usd(d.amountUsdCents)), ' ',
        el('span', { class: 'muted small' }, when(d.createdAt)), ' ',
        button(t('find.reprint'), {
          small: true, testid: 'reprint-receipt',
          // The reference the agent typed, if any (without one, the server keeps the receipt
          // number as the deposit's reference).
          onclick: () => presentReceipt(d, escrowData.get(e.escrowId) || e, {
            copy: true,
            ownReference: d.reference && d.reference !== d.receiptNumber ? d.reference : null,
          }),
        })))));
    }
    box.append(el('div', { class: 'actions' }, button(t('common.close'), {
      testid: 'receipts-close',
      onclick: () => {
        receiptsOpen.delete(e.escrowId);
        rebuild(e);
        focusIn(e, 'receipts-open');
      },
    })));
    return box;
  }

  function focusIn(e, testid) {
    const node = list.querySelector(`[data-key="${CSS.escape(e.escrowId)}"] [data-testid="${testid}"]`);
    if (node) node.focus();
  }

  async function loadReceipts(e) {
    try {
      const d = await api('GET', `/deposits${qs({ escrowId: e.escrowId, limit: 200 })}`);
      receiptsData.set(e.escrowId, (d && d.items) || []);
    } catch (err) {
      receiptsData.set(e.escrowId, { error: err });
    }
    if (ctx.alive() && receiptsOpen.has(e.escrowId)) rebuild(escrowData.get(e.escrowId) || e);
  }

  function build(e) {
    const actions = [];
    if (e.status === 'active' && (isAgent || role === 'recipient')) {
      actions.push(el('a', { class: 'button primary', href: `#/pay/${encodeURIComponent(e.escrowId)}`, testid: 'new-request' }, t('find.newRequest')));
    }
    if (e.status === 'pending_deposit' && isAgent && !depositOpen.has(e.escrowId)) {
      actions.push(button(t('find.recordDeposit'), {
        variant: 'primary', testid: 'record-deposit',
        onclick: async () => {
          // Cash in shillings is priced at the rate of the moment: read it again as the form
          // opens (an admin may have set one since the list was read), every card with it.
          // At most a moment: a server that does not answer leaves the rate as it was read.
          const r = await Promise.race([
            todayRate({ fresh: true }).catch(() => rate),
            new Promise((resolve) => { setTimeout(() => resolve(rate), 2000); }),
          ]);
          if (!ctx.alive()) return;
          if ((r && r.e4) !== (rate && rate.e4)) {
            rate = r;
            for (const node of Array.from(list.children)) {
              const shown = escrowData.get(node.dataset.key);
              if (shown && shown.escrowId !== e.escrowId) rebuild(shown);
            }
          }
          depositOpen.add(e.escrowId);
          rebuild(e);
          const input = list.querySelector(`[data-key="${CSS.escape(e.escrowId)}"] [data-testid="deposit-amount"]`);
          if (input) input.focus();
        },
      }));
    }
    if (isAgent && Number(e.depositedUsdCents) > 0 && !receiptsOpen.has(e.escrowId)) {
      actions.push(button(t('find.receipts'), {
        small: true, testid: 'receipts-open',
        onclick: () => {
          receiptsOpen.add(e.escrowId);
          receiptsData.delete(e.escrowId);
          rebuild(e);
          const heading = () => list.querySelector(`[data-key="${CSS.escape(e.escrowId)}"] [data-testid="receipts-panel"] h4`);
          if (heading()) heading().focus();
          // The receipts, once read, draw the panel anew: the focus goes to its new heading
          // (it fell to the page with the old one).
          loadReceipts(e).then(() => {
            if (focusLost() && heading()) heading().focus();
          }).catch(globalError);
        },
      }));
    }
    const panels = depositOpen.has(e.escrowId) && e.status === 'pending_deposit' ? [depositForm(e)] : [];
    if (receiptsOpen.has(e.escrowId)) panels.push(receiptsPanel(e));
    return escrowCard(e, { actions, panels, rateE4: rate && rate.e4 });
  }

  function rebuild(e) {
    const old = list.querySelector(`[data-key="${CSS.escape(e.escrowId)}"]`);
    const fresh = build(e);
    fresh.dataset.key = e.escrowId;
    fresh.dataset.sig = JSON.stringify(e);
    if (old) replaceKeepingFocus(old, fresh);
    else list.prepend(fresh);
  }

  // An agent in the middle of something on the list: a deposit form open, or a field or button
  // of it in hand. The periodic read leaves the list alone then, also when it lands.
  const busyHere = () => searchRefused || depositOpen.size > 0 || receiptsOpen.size > 0 || list.contains(document.activeElement);

  // The count above the list: the cards in this screen's state. A card whose escrow left it
  // while shown (activated by the deposit just recorded) stays, saying its new state, and is
  // no longer counted as waiting. Returns the count.
  function sayCount() {
    const cards = Array.from(list.children).map((node) => escrowData.get(node.dataset.key)).filter(Boolean);
    const n = status ? cards.filter((e) => e.status === status).length : cards.length;
    const key = status ? `count.escrows.${status}` : 'count.escrows.mine';
    const found = searchedFor(search);
    summary.textContent = n
      ? `${tn(key, n)}${cursor ? ` ${t('find.moreBelow')}` : ''}${found ? ` ${found}` : ''}`
      : `${status ? t(`count.escrows.none.${status}`) : t('count.escrows.none.mine')}${found ? ` ${found}` : ''}`;
    // The cards shown in another state say so, whenever the count is said (a deposit that
    // funds the escrow turns its card Active: "none waiting" stood alone above it).
    const states = [...new Set(cards.filter((e) => status && e.status !== status).map((e) => statusWord('escrow', e.status)))];
    if (!n && states.length) summary.textContent += ` ${t('find.otherStates', { states: states.join(', ') })}`;
    return n;
  }

  async function load(append, periodic) {
    if (searchRefused) return;
    if (!showAll && !search.phone && !search.ref) {
      patchList(list, [], (e) => e.escrowId, build);
      cursor = null;
      more.hidden = true;
      summary.textContent = t('find.searchFirst');
      return;
    }
    // The search this load answers: a newer search's answer is not overwritten by this one's.
    const asked = search;
    const [d, r] = await Promise.all([
      api('GET', `/escrows${qs({ status, recipientPhone: search.phone, ref: search.ref, limit: PAGE, cursor: append ? cursor : null })}`),
      // Every read asks for the rate too (one small call): a new one shows within one period.
      todayRate({ fresh: true }).catch(() => rate),
    ]);
    // A search refused while this read was on its way: its answer is not the list to show.
    if (!ctx.alive() || search !== asked || searchRefused || (periodic && busyHere())) return;
    const rateChanged = (r && r.e4) !== (rate && rate.e4);
    rate = r;
    cursor = d.nextCursor || null;
    // A recipient's own list puts what can still be spent first: a cancelled or completed
    // escrow is not what they open the screen for (on a phone they scrolled past it).
    const RANK = { active: 0, pending_deposit: 1, completed: 2, cancelled: 3 };
    const items = (d.items || []).slice();
    if (!status) items.sort((a, b) => (RANK[a.status] ?? 4) - (RANK[b.status] ?? 4));
    // Nothing in this screen's state: the code or phone may be right all the same (an escrow
    // already funded searched for on Deposits, or one cancelled since). Those cards are shown
    // all the same, saying their state (an agent may still print again a receipt of the cash
    // they took for a cancelled or completed one), and the count says where they were found.
    let others = [];
    if (!items.length && !append && status && (search.phone || search.ref)) {
      const other = await api('GET', `/escrows${qs({ recipientPhone: search.phone, ref: search.ref, limit: 5 })}`).catch(() => null);
      if (!ctx.alive() || search !== asked || searchRefused || (periodic && busyHere())) return;
      others = (other && other.items) || [];
    }
    for (const e of [...items, ...others]) escrowData.set(e.escrowId, e);
    const all = append ? [...Array.from(list.children).map((n) => escrowData.get(n.dataset.key)).filter(Boolean), ...items] : items;
    if (rateChanged) list.querySelectorAll('[data-key]').forEach((n) => { n.dataset.sig = ''; });
    patchList(list, others.length ? others : all, (e) => e.escrowId, build);
    sayCount();
    more.hidden = !cursor;
  }

  more.addEventListener('click', () => busy(more, () => load(true)).catch(globalError));
  await load(false);
  // Balances move while the screen is open (a sender approves, another kiosk takes cash): read
  // again, except while a deposit is being typed or a card has the focus.
  ctx.every(10000, () => (busyHere() || cursor ? undefined : load(false, true)));
}
