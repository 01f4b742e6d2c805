// Agent and recipient screen #/pay/<escrowId>: a new payment request on one escrow with its live
// USD equivalent; every field checked before sending, and Send disabled (with the reason) while
// the amount is more than the category has left. The requests sent from here are tracked until
// they end; the escrow's recent requests link to their details and receipts.

import { ApiError, api, errorText, qs } from '../api.js';
import { clear, el, field, formError, pageHead, patchList, settledLive, uid } from '../dom.js';
import { barLegend, escrowCard } from '../escrow-card.js';
import { formatRate, kenyanDigits, kes, rateKesPerUsdE4, usd, usdCentsForKes, when, withoutShillingsMark } from '../format.js';
import { amountError, checkFields, onSubmit, textProblem, TEXT_CHARS_MAX } from '../forms.js';
import { redrawingForLanguage, t } from '../i18n.js';
import { globalError, notice } from '../notices.js';
import { todayRate } from '../rates.js';
import { requestRow } from '../request-card.js';
import { session } from '../session.js';
import { tracker } from '../tracker.js';
import { categoryLabel } from '../words.js';

// M-Pesa's limits for a payment to a phone (B2C), in whole KES.
const PHONE_KES_MIN = 10;
const PHONE_KES_MAX = 250000;

// What the screen showed, for a redraw in another language (`redrawingForLanguage`): the
// requests sent from here, whose trackers came back empty (a kiosk switching to Kiswahili for
// the customer lost the request it was following).
let onView = null;

// The most whole shillings whose price at the rate (rounded up to the cent) `usdCents` covers.
function kesCovered(usdCents, e4) {
  // A first guess, then the exact rule (integers) moves it to the last shilling that fits.
  let k = Math.floor((usdCents * e4) / 10000 / 100) * 100;
  while (k > 0 && usdCentsForKes(k, e4) > usdCents) k -= 100;
  while (usdCentsForKes(k + 100, e4) <= usdCents) k += 100;
  return k;
}

export async function viewRequest(root, ctx, escrowId) {
  // (Read before the first wait: the redraw for a language is the call's synchronous part.)
  const before = onView && onView.screen === location.hash && redrawingForLanguage() ? onView.read() : null;
  const sentHere = [];
  // (Switched twice before the escrow was read again: what was followed before still is.)
  onView = { screen: location.hash, read: () => ({ sent: sentHere.length || !before ? sentHere.map((tr) => tr.current) : before.sent }) };
  const isAgent = session.me.role === 'agent';
  const back = el('a', { class: 'button link back', href: isAgent ? '#/payments' : '#/mine', testid: 'back-to-escrows' }, `\u2190 ${t('request.back')}`);
  const escrowBox = el('div', { class: 'request-escrow', testid: 'request-escrow' }, el('p', { class: 'muted' }, t('common.loading')));
  root.append(back, pageHead(t('request.title'), t('request.intro')), escrowBox);

  let escrow;
  let rate = null;
  try {
    [escrow, rate] = await Promise.all([
      api('GET', `/escrows/${encodeURIComponent(escrowId)}`),
      todayRate().catch(() => null),
    ]);
  } catch (err) {
    if (ctx.alive()) clear(escrowBox).append(el('p', { class: 'card form-error', role: 'alert', testid: 'escrow-load-error' }, errorText(err)));
    return;
  }
  if (!ctx.alive()) return;

  function renderEscrow() {
    clear(escrowBox).append(barLegend(), escrowCard(escrow, { rateE4: rate && rate.e4, heading: 'h2' }));
  }
  renderEscrow();

  const trackers = el('div', { class: 'stack', testid: 'trackers' });
  const trackersSection = el('section', { class: 'section', hidden: true, 'aria-labelledby': 'sent-h' }, el('h2', { id: 'sent-h' }, t('request.sentHere')), trackers);
  const history = el('ul', { class: 'rows', testid: 'escrow-history' });
  const historySection = el('section', { class: 'section', 'aria-labelledby': 'hist-h' },
    el('div', { class: 'section-head' }, el('h2', { id: 'hist-h' }, t('request.recent')),
      el('a', { class: 'button secondary small', href: `#/requests?escrow=${encodeURIComponent(escrowId)}`, testid: 'all-on-escrow' }, t('request.allOnEscrow'))),
    history);

  // Under a request followed: its details, or its receipt once paid.
  const detailsLink = (r) => el('div', { class: 'actions' }, el('a', { class: 'button secondary small', href: `#/requests/${encodeURIComponent(r.paymentRequestId)}`, testid: 'open-details' },
    r.status === 'paid' ? t('request.openReceipt') : t('request.openDetails')));

  if (escrow.status !== 'active') {
    // The requests followed before a change of language stay (the escrow was completed by the
    // last of them paid, or cancelled): as they last read, each final by then.
    if (before) {
      before.sent.forEach((r) => {
        const tr = tracker(ctx, r, { after: detailsLink });
        trackers.prepend(tr.node);
        sentHere.push(tr);
      });
      trackersSection.hidden = !before.sent.length;
    }
    root.append(el('p', { class: 'card notice-box', testid: 'not-active' },
      t('request.notActive', { status: t(`status.escrow.${escrow.status}`) })), trackersSection, historySection);
    await loadHistory();
    return;
  }

  // ---- the form
  const categoryOption = (c) => el('option', { value: c.name }, t('request.categoryOption', { category: categoryLabel(c.name), left: usd(c.remainingUsdCents) }));
  const form = el('form', { class: 'form card', testid: 'request-form', 'aria-label': t('request.title') });
  const category = field({
    label: t('request.category'), tag: 'select', dataField: 'category', testid: 'request-category',
    options: (escrow.categories || []).map(categoryOption),
  });
  const amount = field({ label: t('request.amount'), dataField: 'amountKes', testid: 'request-amount', attrs: { inputmode: 'numeric' }, hint: t('request.amountHint') });
  // (The server's limit on a text, 200 characters, held by the field itself.)
  const merchantName = field({ label: t('request.merchantName'), dataField: 'merchantName', testid: 'merchant-name', hint: t('request.merchantNameHint'), attrs: { maxlength: TEXT_CHARS_MAX } });

  const typeName = uid('mtype');
  const typeInputs = {};
  const typeBox = el('fieldset', { class: 'subfield', 'data-field': 'merchantAccount.type', testid: 'merchant-type' },
    el('legend', null, t('request.payTo')),
    el('div', { class: 'radios' }, [['paybill', t('request.type.paybill')], ['till', t('request.type.till')], ['phone', t('request.type.phone')]].map(([v, label]) => {
      const id = `${typeName}-${v}`;
      typeInputs[v] = el('input', { type: 'radio', name: typeName, id, value: v, checked: v === 'paybill', testid: `merchant-type-${v}` });
      return el('label', { for: id, class: 'radio' }, typeInputs[v], ` ${label}`);
    })));
  const number = field({ label: t('request.number.paybill'), dataField: 'merchantAccount.number', testid: 'merchant-number', attrs: { inputmode: 'numeric', spellcheck: 'false' } });
  const reference = field({ label: t('request.accountRef'), dataField: 'merchantAccount.accountReference', testid: 'merchant-reference', hint: t('request.accountRefHint'), attrs: { spellcheck: 'false' } });
  const note = field({ label: t('request.note'), optional: true, dataField: 'note', testid: 'request-note', tag: 'textarea', attrs: { maxlength: TEXT_CHARS_MAX } });
  const preview = el('div', { class: 'preview', testid: 'usd-equivalent', 'aria-live': 'polite' });
  const spoken = settledLive(preview);
  const submit = el('button', { type: 'submit', class: 'button primary', testid: 'submit-request' }, t('request.submit'));
  const blockedId = uid('blocked');
  const blocked = el('p', { class: 'warn', id: blockedId, testid: 'submit-blocked', hidden: true });
  // Why Send is disabled now (more than the category has left), or null.
  let overBalance = null;

  function merchantType() {
    return Object.keys(typeInputs).find((k) => typeInputs[k].checked) || 'paybill';
  }
  function syncType() {
    const ty = merchantType();
    number.label.textContent = t(`request.number.${ty}`);
    number.input.setAttribute('inputmode', ty === 'phone' ? 'tel' : 'numeric');
    reference.wrap.hidden = ty !== 'paybill';
  }
  Object.values(typeInputs).forEach((i) => i.addEventListener('change', syncType));
  syncType();

  // Whole shillings as typed, commas and spaces left out, and the "/=" or "/-" shillings are
  // often written with (1,500/=).
  const shillingsText = () => withoutShillingsMark(amount.input.value).replace(/[,\s]/g, '');
  const kesCentsTyped = () => {
    const text = shillingsText();
    return /^\d{1,9}$/.test(text) && Number(text) > 0 ? Number(text) * 100 : null;
  };
  const selectedCategory = () => (escrow.categories || []).find((c) => c.name === category.input.value);

  // What the escrow's daily `limit` still allows today.
  const todayLeft = (limit) => Math.max(0, limit - Number(escrow.approvedTodayUsdCents || 0));

  // Send is disabled, with the reason beside it, while the amount is more than the category has left.
  function renderPreview() {
    drawPreview();
    spoken.say();
  }
  function drawPreview() {
    clear(preview);
    const text = amount.input.value.trim();
    const e4 = rate && rate.e4;
    preview.append(el('div', { class: 'preview-label' }, t('request.usdEquivalent')));
    let over = null;
    const kesCents = kesCentsTyped();
    if (!text) preview.append(el('p', { class: 'muted' }, t('request.previewEmpty')));
    // The mistake made (a minus sign, zero, letters) as the field's own check says it.
    else if (!kesCents) preview.append(el('p', { class: 'muted' }, amountError(text.replace(/\s/g, ''), 0, t('request.previewWhole'), '1500')));
    else if (!e4) preview.append(el('p', { class: 'muted' }, t('request.previewNoRate')));
    else {
      const cents = usdCentsForKes(kesCents, e4);
      const cat = selectedCategory();
      preview.append(
        el('p', { class: 'preview-amount' }, el('span', { testid: 'usd-equivalent-kes' }, kes(kesCents)), ' = ',
          el('strong', { testid: 'usd-equivalent-value' }, usd(cents))),
        el('p', { class: 'muted small', testid: 'usd-equivalent-rate' }, rate.updatedAt ? t('request.previewRate', { rate: formatRate(e4), at: when(rate.updatedAt) }) : t('request.previewDefaultRate', { rate: formatRate(e4) })));
      const limit = escrow.dailyLimitUsdCents;
      const max = Number(session.me.maxRequestKesCents) || Infinity;
      if (kesCents > max) {
        // The server's maximum first: no balance would make it possible.
        over = t('request.err.overMax', { max: kes(max) });
      } else if (cat && cents > Number(cat.remainingUsdCents)) {
        // Said in shillings, as the agent asks: what it costs, and the most the category covers.
        over = t('request.overBalance', {
          need: `${kes(kesCents)} (${usd(cents)})`, left: usd(cat.remainingUsdCents),
          most: kes(kesCovered(Number(cat.remainingUsdCents), e4)), category: categoryLabel(cat.name),
        });
      } else if (limit !== null && limit !== undefined && cents > Number(limit)) {
        // The sender could never approve it: no day's limit has room for it.
        over = t('request.overDaily', { need: usd(cents), limit: usd(limit) });
      } else if (limit !== null && limit !== undefined && cents > todayLeft(Number(limit))) {
        // It may be sent, and waits: today's limit has no room for it left (the form said
        // nothing, and the sender's Approvals screen refused it).
        const left = todayLeft(Number(limit));
        preview.append(el('p', { class: 'warn small', testid: 'usd-equivalent-today' }, t('request.overToday', { need: usd(cents), left: usd(left), limit: usd(limit) })));
      }
    }
    overBalance = over;
    blocked.textContent = over || '';
    blocked.hidden = !over;
    submit.disabled = Boolean(over);
    if (over) submit.setAttribute('aria-describedby', blockedId);
    else submit.removeAttribute('aria-describedby');
    // The amount is what is wrong, and the field says so to whoever does not see the reason
    // beside the button (Tab skips a disabled button, and Enter did nothing, in silence): it is
    // marked invalid while it is over, and described by the reason (empty otherwise).
    if (over) {
      amount.input.dataset.over = '1';
      amount.input.setAttribute('aria-invalid', 'true');
    } else if (amount.input.dataset.over) {
      delete amount.input.dataset.over;
      if (!amount.wrap.querySelector('.field-error')) amount.input.removeAttribute('aria-invalid');
    }
  }
  amount.input.setAttribute('aria-describedby', `${amount.input.getAttribute('aria-describedby') || ''} ${blockedId}`.trim());
  amount.input.addEventListener('input', renderPreview);
  category.input.addEventListener('change', renderPreview);

  form.append(
    el('div', { class: 'grid-2' }, category.wrap, amount.wrap),
    preview, spoken.live,
    merchantName.wrap, typeBox,
    el('div', { class: 'grid-2' }, number.wrap, reference.wrap),
    note.wrap, formError(),
    el('div', { class: 'actions' }, submit), blocked);
  root.append(form, trackersSection, historySection);

  // Every field at once, before anything is sent.
  function check() {
    const ty = merchantType();
    const text = amount.input.value.trim();
    const kesCents = kesCentsTyped();
    let amountProblem = !text ? t('request.err.amountEmpty')
      : (!kesCents ? amountError(text.replace(/\s/g, ''), 0, t('request.err.amountWhole'), '1500') : null);
    const max = Number(session.me.maxRequestKesCents) || Infinity;
    if (!amountProblem && kesCents > max) amountProblem = t('request.err.overMax', { max: kes(max) });
    if (!amountProblem && ty === 'phone' && (kesCents < PHONE_KES_MIN * 100 || kesCents > PHONE_KES_MAX * 100)) {
      amountProblem = t('request.err.phoneLimits', { min: kes(PHONE_KES_MIN * 100), max: kes(PHONE_KES_MAX * 100) });
    }
    const num = number.input.value.trim();
    let numberProblem = null;
    if (!num) numberProblem = t(`request.err.number.${ty}`);
    else if (ty === 'phone' && !kenyanDigits(num)) numberProblem = t('request.err.phone');
    else if (ty !== 'phone' && !/^\d{5,8}$/.test(num)) numberProblem = t(`request.err.number.${ty}`);
    return checkFields(form, [
      [category.input, category.input.value ? null : t('request.err.category')],
      [amount.input, amountProblem],
      [merchantName.input, textProblem(merchantName.input.value, t('request.err.merchantName'))],
      [note.input, textProblem(note.input.value)],
      [number.input, numberProblem],
      [reference.input, ty !== 'paybill' ? null
        : (!reference.input.value.trim() ? t('request.err.accountRef')
          // M-Pesa's AccountReference: at most 13 printable ASCII characters, as the server holds
          // it (it refused "METER 1234-5678-9012" after the send, in English).
          : (!/^[\x21-\x7e]{1,13}$/.test(reference.input.value.trim()) ? t('request.err.accountRefShape') : null))],
    ]);
  }

  // Follows a request sent from here (`initial`: as it last read) until it ends.
  function track(initial) {
    const tr = tracker(ctx, initial, {
      canCancel: true,
      after: detailsLink,
      onChange: () => loadHistory().catch(() => {}),
      onFinal: (r) => {
        refreshEscrow().catch(globalError);
        loadHistory().catch(() => {});
        if (r.status === 'paid') notice(() => t(r.payout && r.payout.simulated ? 'notice.paidSimulated' : 'notice.paid', { amount: kes(r.amountKesCents), merchant: r.merchantName || t('common.theMerchant'), receipt: (r.payout && r.payout.mpesaReceipt) || '—' }));
        else if (r.status === 'failed') notice(() => t('notice.failed', { amount: kes(r.amountKesCents), merchant: r.merchantName || t('common.theMerchant'), usd: usd(r.amountUsdCents), category: categoryLabel(r.category) }), 'warn');
        else if (r.status === 'rejected') notice(() => (r.reason ? t('notice.rejectedWhy', { amount: kes(r.amountKesCents), reason: r.reason }) : t('notice.rejected', { amount: kes(r.amountKesCents) })), 'warn');
      },
    });
    trackers.prepend(tr.node);
    trackersSection.hidden = false;
    sentHere.push(tr);
  }

  onSubmit(form, async () => {
    // (busy() has disabled every control by now: the reason is in overBalance.)
    if (overBalance || !check()) return;
    const ty = merchantType();
    const account = { type: ty, number: number.input.value.trim() };
    if (ty === 'paybill') account.accountReference = reference.input.value.trim();
    const body = { escrowId: escrow.escrowId, category: category.input.value, amountKes: shillingsText(), merchantName: merchantName.input.value.trim(), merchantAccount: account };
    if (note.input.value.trim()) body.note = note.input.value.trim();
    // The USD the form showed, at the rate it knew: the server prices at its rate of the moment.
    const shownE4 = rate && rate.e4;
    let created;
    try {
      created = await api('POST', '/payment-requests', body);
    } catch (err) {
      // "active escrow not found": cancelled (or completed) since this screen was drawn; said
      // in words of what happened and what to do, in the UI's language.
      if (err instanceof ApiError && err.status === 404 && err.message.startsWith('active escrow not found')) {
        throw new ApiError(404, 'escrow_gone', t('request.err.escrowGone'));
      }
      throw err;
    }
    track({
      escrowId: escrow.escrowId, category: body.category, merchantName: body.merchantName,
      merchantAccount: account, note: body.note || null, createdAt: new Date().toISOString(), payout: null, ...created,
    });
    amount.input.value = '';
    note.input.value = '';
    merchantName.input.value = '';
    number.input.value = '';
    reference.input.value = '';
    renderPreview();
    spoken.hush();
    const pricedE4 = created.exchangeRate ? rateKesPerUsdE4(created.exchangeRate) : null;
    if (shownE4 && pricedE4 && pricedE4 !== shownE4) {
      // The rate changed while the form was open: said, with what the sender will see.
      notice(() => t('request.sentAtNewRate', { kes: kes(created.amountKesCents), usd: usd(created.amountUsdCents), rate: formatRate(pricedE4), was: formatRate(shownE4) }), 'warn');
      rate = { ...(rate || {}), e4: pricedE4 };
      // The card says it at once (it went on showing the old rate beside the warning: the
      // refresh found the rate it was just given and drew nothing), then reads it again, and
      // not from the rate kept for ten seconds, which is the old one.
      renderEscrow();
      renderPreview();
      spoken.hush();
      refreshEscrow({ freshRate: true }).catch(() => {});
    } else if (created._replayed) {
      // The retry of a Send whose answer was lost: the request the first one made.
      notice(() => t('request.sentBefore', { kes: kes(created.amountKesCents), usd: usd(created.amountUsdCents) }));
    } else {
      notice(() => t('request.sentNotice', { kes: kes(created.amountKesCents), usd: usd(created.amountUsdCents) }));
    }
    loadHistory().catch(() => {});
  });

  async function refreshEscrow({ freshRate = false } = {}) {
    const [fresh, r] = await Promise.all([api('GET', `/escrows/${encodeURIComponent(escrow.escrowId)}`), todayRate({ fresh: freshRate }).catch(() => rate)]);
    if (!ctx.alive()) return;
    const same = JSON.stringify(fresh) === JSON.stringify(escrow) && (r && r.e4) === (rate && rate.e4);
    rate = r;
    if (same) return;
    escrow = fresh;
    renderEscrow();
    const selected = category.input.value;
    clear(category.input).append(...(escrow.categories || []).map(categoryOption));
    category.input.value = selected;
    renderPreview();
  }

  async function loadHistory() {
    const d = await api('GET', `/payment-requests${qs({ escrowId: escrow.escrowId, limit: 20 })}`);
    if (!ctx.alive()) return;
    const items = (d && d.items) || [];
    if (!items.length) {
      clear(history).append(el('li', { class: 'empty' }, t('request.noneYet')));
      return;
    }
    if (history.querySelector('.empty')) clear(history);
    patchList(history, items, (r) => r.paymentRequestId, (r) => requestRow(r, { href: `#/requests/${encodeURIComponent(r.paymentRequestId)}` }));
  }

  // The requests followed before the language changed, as they last read (each tracker reads
  // its own again while it is not final).
  if (before) before.sent.forEach((r) => track(r));
  renderPreview();
  await loadHistory();
  ctx.every(5000, async () => { await refreshEscrow(); await loadHistory(); });
  category.input.focus();
}
