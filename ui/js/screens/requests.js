// Agent and recipient screens #/requests[?escrow=<id>] and #/requests/<id>: every payment
// request they can see (by status, by escrow; paged with nextCursor), each with its status,
// amount, merchant, the M-Pesa receipt when paid and "money returned" when it failed or
// expired; one request's details, followed live until it ends, and its printable receipt once
// paid.

import { LIST_PAGE, PAGE, api, errorText, qs } from '../api.js';
import { button, clear, el, field, pageHead, patchList } from '../dom.js';
import { busy } from '../forms.js';
import { usd } from '../format.js';
import { redrawingForLanguage, t, tn } from '../i18n.js';
import { globalError } from '../notices.js';
import { paymentReceipt } from '../receipt.js';
import { requestRow } from '../request-card.js';
import { tracker } from '../tracker.js';
import { session } from '../session.js';
import { categoryLabel, statusWord } from '../words.js';

const REQUEST_STATUSES = ['pending_approval', 'approved', 'paid', 'failed', 'rejected', 'cancelled', 'expired'];
// Requests are re-read in pages of at most this many when the list refreshes.
const REFRESH_ROWS_MAX = 200;

// An escrow in a list of choices: its total, categories and state.
function escrowLabel(e) {
  return t('requests.escrowOption', {
    total: usd(e.totalAmountUsdCents),
    categories: (e.categories || []).map((c) => categoryLabel(c.name)).join(', '),
    status: statusWord('escrow', e.status),
  });
}

// The agent's choice to show every request, kept for a redraw in another language.
let onView = null;

export async function viewRequests(root, ctx, _arg, query) {
  const before = onView && onView.screen === location.hash && redrawingForLanguage() ? onView.read() : null;
  const list = el('ul', { class: 'rows card request-list', testid: 'request-list' });
  const summary = el('p', { class: 'muted', 'aria-live': 'polite', testid: 'request-summary' }, t('common.loading'));
  const more = button(t('common.loadMore'), { testid: 'load-more', hidden: true });
  const filter = field({
    label: t('requests.filter'), tag: 'select', testid: 'request-status-filter', dataField: 'status',
    options: [el('option', { value: '' }, t('common.all')), ...REQUEST_STATUSES.map((s) => el('option', { value: s }, statusWord('request', s)))],
  });
  let status = '';
  let escrowId = (query && query.get('escrow')) || '';
  // An agent's screen faces the counter: every customer's requests are listed only once the
  // agent asks (Show all), as the Payments and Deposits screens list escrows only after a
  // search; one escrow's (come from its screen) at once.
  let showAll = session.me.role !== 'agent' || Boolean(escrowId) || Boolean(before && before.showAll);
  onView = { screen: location.hash, read: () => ({ showAll }) };
  let cursor = null;
  const rows = new Map();
  const toolbar = el('div', { class: 'toolbar card' }, filter.wrap);

  root.append(pageHead(t('nav.requests'), t('requests.intro'),
    button(t('common.refresh'), { testid: 'refresh', onclick: () => reload().catch(globalError) })),
  toolbar, summary, list, el('div', { class: 'actions center' }, more));

  // A recipient chooses among their escrows; an agent comes here from one escrow's screen.
  if (session.me.role === 'recipient') {
    const mine = await api('GET', `/escrows${qs({ limit: PAGE })}`).catch(() => null);
    const items = (mine && mine.items) || [];
    if (items.length > 1 || escrowId) {
      const pick = field({
        label: t('requests.escrowFilter'), tag: 'select', testid: 'request-escrow-filter', dataField: 'escrowId', wrapClass: 'grow',
        options: [el('option', { value: '' }, t('common.all')), ...items.map((e) => el('option', { value: e.escrowId }, escrowLabel(e)))],
      });
      pick.input.value = escrowId;
      pick.input.addEventListener('change', () => { escrowId = pick.input.value; rows.clear(); reload().catch(globalError); });
      toolbar.append(pick.wrap);
    }
  } else if (escrowId) {
    toolbar.append(el('p', { class: 'filter-note', testid: 'request-escrow-note' }, t('requests.onlyEscrow'), ' ',
      el('span', { class: 'mono id-line' }, escrowId), ' ',
      el('a', { class: 'button secondary small', href: '#/requests', testid: 'request-escrow-clear' }, t('requests.allEscrows'))));
  } else if (!showAll) {
    const all = button(t('find.showAll'), {
      testid: 'show-all-requests',
      onclick: () => {
        showAll = true;
        all.remove();
        reload().catch(globalError);
      },
    });
    toolbar.append(all);
  }

  const href = (r) => `#/requests/${encodeURIComponent(r.paymentRequestId)}`;

  // An agent asks for many recipients: each row says for whom (the escrow's recipient, read
  // once per escrow). A recipient's rows are all their own.
  const forWhom = new Map();
  let learning = false;
  async function learnRecipients(items) {
    if (session.me.role !== 'agent' || learning) return false;
    const unknown = [...new Set(items.map((r) => r.escrowId))].filter((id) => !forWhom.has(id)).slice(0, 20);
    if (!unknown.length) return false;
    learning = true;
    try {
      await Promise.all(unknown.map((id) => api('GET', `/escrows/${encodeURIComponent(id)}`)
        .then((e) => { forWhom.set(id, (e && e.recipient && (e.recipient.name || e.recipient.phone)) || ''); },
          () => { forWhom.set(id, ''); })));
    } finally {
      learning = false;
    }
    return true;
  }
  const withWhom = (items) => items.map((r) => (forWhom.get(r.escrowId) ? { ...r, _for: forWhom.get(r.escrowId) } : r));

  function render(items) {
    if (!items.length) {
      list.hidden = true;
      summary.textContent = status ? t('requests.noneWith', { status: statusWord('request', status) }) : t('requests.none');
    } else {
      list.hidden = false;
      summary.textContent = status
        ? tn('count.requestsWith', items.length, { status: statusWord('request', status) })
        : tn('count.requests', items.length);
      if (cursor) summary.textContent += ` ${t('find.moreBelow')}`;
    }
    patchList(list, withWhom(items), (r) => r.paymentRequestId, (r) => requestRow(r, { href: href(r), forWhom: r._for }));
    more.hidden = !cursor;
    learnRecipients(items).then((learnt) => { if (learnt && ctx.alive()) render(Array.from(rows.values())); }, () => {});
  }

  async function page(after, limit) {
    return api('GET', `/payment-requests${qs({ status, escrowId, limit, cursor: after })}`);
  }

  // Only the latest reload is shown: a filter changed twice quickly must not show the first answer.
  let latest = 0;
  async function reload() {
    const mine = ++latest;
    if (!showAll) {
      list.hidden = true;
      more.hidden = true;
      summary.textContent = t('requests.askFirst');
      return;
    }
    const want = Math.min(REFRESH_ROWS_MAX, Math.max(LIST_PAGE, rows.size));
    const d = await page(null, want);
    if (!ctx.alive() || mine !== latest) return;
    rows.clear();
    for (const r of (d && d.items) || []) rows.set(r.paymentRequestId, r);
    cursor = (d && d.nextCursor) || null;
    render(Array.from(rows.values()));
  }

  filter.input.addEventListener('change', () => {
    status = filter.input.value;
    rows.clear();
    reload().catch(globalError);
  });
  more.addEventListener('click', () => busy(more, async () => {
    const d = await page(cursor, LIST_PAGE);
    if (!ctx.alive()) return;
    for (const r of (d && d.items) || []) rows.set(r.paymentRequestId, r);
    cursor = (d && d.nextCursor) || null;
    render(Array.from(rows.values()));
    const next = list.children[rows.size - ((d && d.items) || []).length];
    const link = next && next.querySelector('a');
    if (link) link.focus();
  }).catch(globalError));

  await reload();
  ctx.every(5000, () => (list.contains(document.activeElement) || more.contains(document.activeElement) ? undefined : reload()));
}

export async function viewRequestDetail(root, ctx, requestId) {
  const back = el('a', { class: 'button link back no-print', href: '#/requests', testid: 'back-to-requests' }, `\u2190 ${t('requests.back')}`);
  const body = el('div', { testid: 'request-detail' }, el('p', { class: 'muted' }, t('common.loading')));
  root.append(back, pageHead(t('requests.detailTitle'), null), body);
  let r;
  try {
    r = await api('GET', `/payment-requests/${encodeURIComponent(requestId)}`);
  } catch (err) {
    if (ctx.alive()) clear(body).append(el('p', { class: 'card form-error', role: 'alert', testid: 'request-load-error' }, errorText(err)));
    return;
  }
  if (!ctx.alive()) return;
  let escrow = null;
  try { escrow = await api('GET', `/escrows/${encodeURIComponent(r.escrowId)}`); } catch (_) { /* the receipt does without the name */ }
  if (!ctx.alive()) return;

  let receipt = el('div', { hidden: true });
  const later = el('p', { class: 'muted small no-print', testid: 'receipt-later' }, t('requests.receiptLater'));
  function sync(current) {
    later.hidden = !['pending_approval', 'approved'].includes(current.status);
    if (current.status !== 'paid' || !current.payout || receipt.dataset.testid === 'payment-receipt') return;
    const fresh = paymentReceipt(current, escrow);
    receipt.replaceWith(fresh);
    receipt = fresh;
  }
  // Whoever made the request, or a kiosk agent (or an admin), may cancel it: the button is not
  // offered to anyone else (a recipient looking at a request the agent made for them).
  const me = session.me;
  const canCancel = me.role === 'agent' || me.role === 'admin' || r.requestedBy === me.userId;
  // For whom, as the agent's lists say it (a recipient knows).
  const name = escrow && escrow.recipient && (escrow.recipient.name || escrow.recipient.phone);
  const context = me.role !== 'recipient' && name ? t('approvals.for', { name }) : null;
  const tr = tracker(ctx, r, { canCancel, context, onChange: sync, onFinal: sync, heading: 'h2' });
  clear(body).append(tr.node, later);
  root.append(receipt);
  sync(tr.current);
}
