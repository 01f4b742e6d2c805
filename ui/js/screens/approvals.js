// Sender screen #/approvals: payment requests waiting for a decision, approve or reject each
// (Approve disabled, with the reason beside it, when the category or the day's limit cannot
// cover the request), then watch the decided ones until their payout ends. Keeps the nav count
// up to date.

import { ApiError, api, errorText, qs } from '../api.js';
import { button, el, escapeAnswers, field, focusLost, formError, pageHead, patchList, uid } from '../dom.js';
import { formatShortRef, kes, quotedName, usd } from '../format.js';
import { busy, checkFields, clearErrors, onSubmit, showError, textProblem, TEXT_CHARS_MAX } from '../forms.js';
import { lang, t, tn } from '../i18n.js';
import { globalError, notice } from '../notices.js';
import { requestCard } from '../request-card.js';
import { tracker } from '../tracker.js';
import { categoryLabel, statusWord } from '../words.js';

// Why this request cannot be approved now, or null: the category's money, then the daily limit
// (`daily`: the reason says the day's total).
function shortfall(r, e) {
  if (!e) return null;
  // The escrow's money is held until an admin acts (a card refund, a payout reported paid
  // after failing): the server refuses any approval, so the button says why first.
  if (e.held) return { text: t(e.held === 'card_refunded' ? 'held.cardRefunded' : 'held.payoutFlagged') };
  const cat = (e.categories || []).find((c) => c.name === r.category);
  const need = Number(r.amountUsdCents);
  if (cat && need > Number(cat.remainingUsdCents)) {
    return { text: t('approvals.shortCategory', { category: categoryLabel(r.category), left: usd(cat.remainingUsdCents), need: usd(need) }) };
  }
  if (need > Number(e.remainingUsdCents)) {
    return { text: t('approvals.shortEscrow', { left: usd(e.remainingUsdCents), need: usd(need) }) };
  }
  const limit = e.dailyLimitUsdCents;
  // More than the whole day's limit: no day will ever have room for it.
  if (limit !== null && limit !== undefined && need > Number(limit)) {
    return { text: t('approvals.overDaily', { limit: usd(limit), need: usd(need) }), daily: true };
  }
  if (limit !== null && limit !== undefined && Number(e.approvedTodayUsdCents || 0) + need > Number(limit)) {
    return { text: t('approvals.shortDaily', { limit: usd(limit), approved: usd(e.approvedTodayUsdCents || 0), need: usd(need) }), daily: true };
  }
  return null;
}

export async function viewApprovals(root, ctx) {
  const decided = el('div', { class: 'stack', testid: 'decided-list' });
  const decidedSection = el('section', { class: 'section', hidden: true, 'aria-labelledby': 'decided-h' },
    el('h2', { id: 'decided-h' }, t('approvals.decided')), decided);
  const list = el('div', { class: 'stack', testid: 'pending-list' });
  const count = el('p', { class: 'muted', testid: 'pending-count', 'aria-live': 'polite' }, t('common.loading'));
  root.append(
    pageHead(t('nav.approvals'), t('approvals.intro'),
      button(t('common.refresh'), { testid: 'refresh', onclick: () => load().catch(globalError) })),
    decidedSection,
    el('section', { class: 'section', 'aria-labelledby': 'pending-h' }, el('h2', { id: 'pending-h' }, t('approvals.pending')), count, list));

  const escrows = new Map();
  const rejecting = new Set();
  // The requests whose Approve question is open (`load` waits for its answer).
  const asking = new Set();
  // Requests whose Approve got no answer: it may have been done. One that leaves the waiting
  // list is read, and followed under "Decided" as an approval with its answer would be.
  const unanswered = new Map();

  // For whom, who asked (the recipient, or a kiosk agent for them: a sender reads the
  // recipient's own request as asked by no one else), and from which escrow (a recipient may
  // have two): its deposit code and total. A decided request's card says only for whom.
  function context(r, waiting = false) {
    const e = escrows.get(r.escrowId);
    if (!e || !e.recipient) return null;
    const who = e.recipient.name || e.recipient.phone || t('card.recipient');
    const byRecipient = !r.requestedBy || (e.recipient.userId && r.requestedBy === e.recipient.userId);
    const name = !waiting ? t('approvals.for', { name: who })
      : t(byRecipient ? 'approvals.askedByRecipient' : 'approvals.askedAtKiosk', { name: who });
    return e.shortRef ? `${name} · ${t('approvals.fromEscrow', { code: formatShortRef(e.shortRef), total: usd(e.totalAmountUsdCents) })}` : name;
  }

  function build(r) {
    const e = escrows.get(r.escrowId);
    const cat = e && (e.categories || []).find((c) => c.name === r.category);
    const blocked = shortfall(r, e);
    const short = blocked && blocked.text;
    const dailyShort = Boolean(blocked && blocked.daily);
    let extra = null;
    const reasonId = uid('short');
    if (cat) {
      extra = el('p', { class: `balance-note ${short ? 'warn' : ''}`, testid: 'balance-note', id: short ? reasonId : null },
        t('approvals.left', { category: categoryLabel(r.category), left: usd(cat.remainingUsdCents) }),
        // The day's total is said once: by the reason when it is the day's limit that blocks.
        e.dailyLimitUsdCents !== null && e.dailyLimitUsdCents !== undefined && !dailyShort
          ? ` ${t('approvals.today', { approved: usd(e.approvedTodayUsdCents || 0), limit: usd(e.dailyLimitUsdCents) })}` : '',
        short ? [' ', el('strong', { testid: 'approve-blocked' }, short)] : null);
    } else if (short) {
      extra = el('p', { class: 'balance-note warn', testid: 'balance-note', id: reasonId }, el('strong', { testid: 'approve-blocked' }, short));
    }
    const approve = button(t('approvals.approve'), {
      variant: 'primary', testid: 'approve', disabled: Boolean(short), 'aria-describedby': short ? reasonId : null,
    });
    const reject = button(t('approvals.reject'), { testid: 'reject' });
    const card = requestCard(r, { context: context(r, true), extra, actions: [approve, reject] });
    const rejectForm = el('form', { class: 'inline-form', testid: 'reject-form', hidden: true });
    const reason = field({ label: t('approvals.rejectReason'), optional: true, dataField: 'reason', testid: 'reject-reason', hint: t('approvals.rejectHint'), attrs: { maxlength: TEXT_CHARS_MAX } });
    rejectForm.append(reason.wrap, formError(), el('div', { class: 'actions' },
      el('button', { type: 'submit', class: 'button danger', testid: 'confirm-reject' }, t('approvals.rejectYes')),
      button(t('approvals.rejectNo'), { testid: 'cancel-reject', onclick: () => { rejectForm.hidden = true; reject.hidden = false; rejecting.delete(r.paymentRequestId); reject.focus(); } })));
    card.append(rejectForm);
    // Money leaves at Approve: asked once more, as Reject and Cancel are (a tap on a phone's
    // screen is easily made by mistake), the safe answer focused.
    // The question is the buttons' description (a screen reader said "Back, button" alone).
    const askId = uid('approve-ask');
    const approveNo = button(t('approvals.approveNo'), { testid: 'cancel-approve', 'aria-describedby': askId });
    const approveYes = button(t('approvals.approveYes'), { variant: 'primary', testid: 'confirm-approve', 'aria-describedby': askId });
    const approveAsk = el('div', { class: 'inline-form', testid: 'approve-confirm', hidden: true, role: 'group', 'aria-labelledby': askId },
      el('p', { id: askId }, t('approvals.approveAsk', {
        amount: kes(r.amountKesCents), usd: usd(r.amountUsdCents),
        // In quotes: the requester's words, set apart from the question's own.
        merchant: r.merchantName ? quotedName(r.merchantName) : t('common.theMerchant'), category: categoryLabel(r.category),
      })),
      el('div', { class: 'actions' }, approveYes, approveNo));
    card.append(approveAsk);
    const askNoMore = () => { approveAsk.hidden = true; approve.hidden = false; reject.hidden = false; asking.delete(r.paymentRequestId); };
    approveNo.addEventListener('click', () => { askNoMore(); approve.focus(); });
    escapeAnswers(approveAsk, approveNo);
    escapeAnswers(rejectForm, rejectForm.querySelector('[data-testid="cancel-reject"]'));
    approve.addEventListener('click', () => {
      if (approve.disabled) return;
      approveAsk.hidden = false;
      approve.hidden = true;
      reject.hidden = true;
      asking.add(r.paymentRequestId);
      approveNo.focus();
    });

    approveYes.addEventListener('click', () => {
      askNoMore();
      // The question's buttons hide with it: the focus stays in the card (on Approve), so that
      // it moves on to the next request once this one is decided, not back to the page's top.
      approve.focus({ preventScroll: true });
      if (approve.disabled) return;
      busy(card, async () => {
        clearErrors(card);
        const res = await api('POST', `/payment-requests/${encodeURIComponent(r.paymentRequestId)}/approve`, {});
        moveToDecided({ ...r, ...(res || {}), status: (res && res.status) || 'approved' }, true);
        notice(() => t('approvals.approvedNotice', { amount: kes(r.amountKesCents), merchant: r.merchantName || t('common.theMerchant') }));
      }).then(() => { unanswered.delete(r.paymentRequestId); }, (err) => {
        if (err instanceof ApiError && err.status === 0) unanswered.set(r.paymentRequestId, r);
        else unanswered.delete(r.paymentRequestId);
        showError(card, err);
        if (err instanceof ApiError && (err.code === 'invalid_state' || err.code === 'request_expired')) {
          // Decided elsewhere (another tab, or it expired): the reload takes the card away, so
          // the refusal is said where it stays. (An escrow whose money is held says so on the
          // card before any click: its Approve is disabled.)
          notice(() => t('approvals.goneNotice', { amount: kes(r.amountKesCents), merchant: r.merchantName || t('common.theMerchant'), why: goneWhy(err) }), 'warn');
          load().catch(() => {});
        } else if (err instanceof ApiError && ['insufficient_balance', 'insufficient_category_balance', 'daily_limit_exceeded'].includes(err.code)) {
          // The money changed since the card was drawn (another request approved meanwhile,
          // from another device): read again, the card says what is left in its own words.
          load().catch(() => {});
        }
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
      if (!checkFields(rejectForm, [[reason.input, textProblem(text)]])) return;
      let res;
      try {
        res = await api('POST', `/payment-requests/${encodeURIComponent(r.paymentRequestId)}/reject`, text ? { reason: text } : {});
      } catch (err) {
        if (err instanceof ApiError && (err.code === 'invalid_state' || err.code === 'request_expired')) {
          // Decided elsewhere (approved from another device, or it expired): as for Approve,
          // the card leaves the list and a notice says what became of it.
          rejecting.delete(r.paymentRequestId);
          card.remove();
          updateCount(list.children.length);
          notice(() => t('approvals.goneRejectNotice', { amount: kes(r.amountKesCents), merchant: r.merchantName || t('common.theMerchant'), why: goneWhy(err) }), 'warn');
          load().catch(() => {});
          return;
        }
        throw err;
      }
      rejecting.delete(r.paymentRequestId);
      moveToDecided({ ...r, ...(res || {}), status: (res && res.status) || 'rejected' }, true);
      notice(() => t('approvals.rejectedNotice', { amount: kes(r.amountKesCents), merchant: r.merchantName || t('common.theMerchant') }));
    });
    return card;
  }

  // Why a request is no longer there to decide: the server's words in English (they say what
  // became of it: "payment request is rejected…"); in Swahili the state it names, in Swahili
  // (anything else, a hold on the escrow, as errorText says it).
  function goneWhy(err) {
    if (lang() === 'en') return errorText(err);
    if (err.code === 'request_expired') return t('approvals.why.expired');
    const state = /payment request is (\w+)/.exec(err.message || '');
    return state ? t('approvals.why.state', { state: statusWord('request', state[1]) }) : errorText(err);
  }

  // `decidedHere`: by this screen's own Approve or Reject, whose controls (hidden, disabled)
  // may have let the focus fall to the page; not a refresh that finds a request decided.
  function moveToDecided(decidedRequest, decidedHere = false) {
    const { _escrow, ...r } = decidedRequest;
    const old = list.querySelector(`[data-key="${CSS.escape(r.paymentRequestId)}"]`);
    // Focus goes where the hand goes next (the next waiting request, else the decided list),
    // not back to the top of the page with the card that held it.
    // (Or nowhere, when this screen decided it: a control the decision disabled or hid had it.)
    const hadFocus = Boolean(old && (old.contains(document.activeElement) || (decidedHere && focusLost())));
    const next = old && (old.nextElementSibling || old.previousElementSibling);
    if (old) old.remove();
    const tr = tracker(ctx, r, {
      context: context(r),
      onFinal: (f) => {
        if (f.status === 'paid') notice(() => t(f.payout && f.payout.simulated ? 'notice.paidSimulated' : 'notice.paid', { amount: kes(f.amountKesCents), merchant: f.merchantName || t('common.theMerchant'), receipt: (f.payout && f.payout.mpesaReceipt) || '—' }));
        else if (f.status === 'failed') notice(() => t('notice.failed', { amount: kes(f.amountKesCents), merchant: f.merchantName || t('common.theMerchant'), usd: usd(f.amountUsdCents), category: categoryLabel(f.category) }), 'warn');
        load().catch(() => {});
      },
    });
    decided.prepend(tr.node);
    decidedSection.hidden = false;
    updateCount(list.children.length);
    const h = decidedSection.querySelector('h2');
    if (h) h.scrollIntoView({ block: 'nearest' });
    if (hadFocus) {
      const target = (next && next.querySelector('[data-testid="approve"]:not([disabled]), [data-testid="reject"]')) || h;
      if (target === h) h.setAttribute('tabindex', '-1');
      if (target) target.focus({ preventScroll: true });
    }
    load().catch(() => {});
  }

  function updateCount(n) {
    count.textContent = n === 0 ? t('approvals.none') : tn('count.waiting', n);
    const link = document.querySelector('#nav [data-view="approvals"]');
    if (link) link.textContent = n ? `${t('nav.approvals')} (${n})` : t('nav.approvals');
  }

  async function load() {
    if (rejecting.size || asking.size) return;
    const [reqs, esc] = await Promise.all([
      api('GET', `/payment-requests${qs({ status: 'pending_approval', limit: 100 })}`),
      api('GET', `/escrows${qs({ limit: 100 })}`),
    ]);
    // A Reject opened while this read was on its way keeps its form (and what is typed in it),
    // and an Approve its question (a payout settling meanwhile changed the escrow's balances,
    // its card was drawn again, and the question went as it was read): the list is read again
    // once it is answered or put away.
    if (!ctx.alive() || rejecting.size || asking.size) return;
    escrows.clear();
    for (const e of (esc && esc.items) || []) escrows.set(e.escrowId, e);
    const items = ((reqs && reqs.items) || []).filter((r) => r.status === 'pending_approval');
    for (const [id, was] of unanswered) {
      if (items.some((r) => r.paymentRequestId === id)) continue;
      unanswered.delete(id);
      const now = await api('GET', `/payment-requests/${encodeURIComponent(id)}`).catch(() => null);
      if (!ctx.alive()) return;
      if (now && now.status !== 'pending_approval') moveToDecided({ ...was, ...now });
    }
    // Rebuild a card when its escrow's balances change too.
    const withEscrow = items.map((r) => ({ ...r, _escrow: escrows.get(r.escrowId) || null }));
    patchList(list, withEscrow, (r) => r.paymentRequestId, (r) => build(r));
    updateCount(items.length);
  }

  await load();
  ctx.every(4000, load);
}
