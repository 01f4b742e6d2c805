// Admin screen #/money-in: deposits (GET /deposits), flagged ones first: money that arrived but
// could not be applied (an unknown escrow, a wrong currency, more than was due), and card
// deposits reversed at Stripe after they were applied. Filtered by status, paged with nextCursor.

import { LIST_PAGE, api, qs } from '../api.js';
import { button, clear, dl, el, emptyState, field, pageHead, patchList, statusBadge, timeEl } from '../dom.js';
import { kes, usd } from '../format.js';
import { busy } from '../forms.js';
import { t, tn } from '../i18n.js';
import { globalError } from '../notices.js';
import { loadPeople, personName } from '../people.js';
import { sourceLabel } from '../words.js';

const FILTERS = ['flagged', 'reversed', 'applied', ''];

function filterLabel(f) {
  return f ? t(`moneyIn.filter.${f}`) : t('common.all');
}

// A card payment flagged for its currency holds the amount Stripe gave, in that currency's
// smallest unit (`amountMinorUnits`, `currency`): said in its own currency, never as dollars.
function amountText(d) {
  if (d.amountMinorUnits === null || d.amountMinorUnits === undefined) return usd(d.amountUsdCents);
  if (!d.currency) return `${d.amountMinorUnits} (${t('moneyIn.noCurrency')})`;
  const code = String(d.currency).toUpperCase();
  let digits = 2;
  try { digits = new Intl.NumberFormat('en', { style: 'currency', currency: code }).resolvedOptions().maximumFractionDigits; } catch (_) { /* an unknown code: two decimals */ }
  // Digits, not floating point: the minor units split where the currency puts its decimals.
  const s = String(d.amountMinorUnits).padStart(digits + 1, '0');
  const whole = (digits ? s.slice(0, -digits) : s).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${code} ${whole}${digits ? `.${s.slice(-digits)}` : ''}`;
}

function depositCard(d) {
  return el('article', { class: `card deposit deposit-${d.status}`, testid: 'deposit-card', dataset: { depositId: d.depositId, status: d.status, reversal: d.reversal || '' } },
    el('header', { class: 'card-head' },
      el('div', { class: 'card-head-main' },
        el('h3', { class: 'card-title amount' }, el('span', { testid: 'deposit-amount' }, amountText(d)),
          d.amountKesCents ? el('span', { class: 'muted usd-twin' }, `= ${kes(d.amountKesCents)}`) : null),
        el('p', { class: 'muted small' }, sourceLabel(d.source), ' · ', timeEl(d.createdAt))),
      el('div', { class: 'badges' }, statusBadge('deposit', d.status, 'deposit-status'),
        d.reversal ? el('span', { class: 'status status-failed', testid: 'deposit-reversal', dataset: { status: d.reversal } }, t(`moneyIn.reversal.${d.reversal}`)) : null)),
    d.flagReason ? el('p', { class: 'warn' }, el('strong', null, `${t('moneyIn.why')} `), el('span', { testid: 'deposit-flag-reason' }, d.flagReason)) : null,
    d.reversal ? el('p', { class: 'warn', testid: 'deposit-reversal-reason' }, t('moneyIn.reversedNote', { reason: d.reversalReason || '—' })) : null,
    dl([
      d.receiptNumber ? [t('receipt.number'), el('span', { class: 'mono' }, d.receiptNumber)] : null,
      [t('moneyIn.reference'), el('span', { class: 'mono id-line' }, d.reference || '—'), 'deposit-reference'],
      [t('payouts.escrow'), el('span', { class: 'mono id-line' }, d.escrowId || t('moneyIn.noEscrow')), 'deposit-escrow'],
      [t('moneyIn.recordedBy'), personName(d.recordedBy)
        ? [el('span', { testid: 'deposit-recorded-by-name' }, personName(d.recordedBy)), ' ', el('span', { class: 'mono id-line muted small' }, d.recordedBy)]
        : el('span', { class: 'mono id-line' }, d.recordedBy || '—')],
      d.reversalAt ? [t('moneyIn.reversedAt'), timeEl(d.reversalAt)] : null,
    ]));
}

export async function viewMoneyIn(root, ctx) {
  const list = el('div', { class: 'stack', testid: 'deposit-list' });
  const summary = el('p', { class: 'muted', testid: 'deposit-summary', 'aria-live': 'polite' }, t('common.loading'));
  const more = button(t('common.loadMore'), { testid: 'load-more', hidden: true });
  const filter = field({
    label: t('moneyIn.filter'), tag: 'select', testid: 'deposit-status-filter', dataField: 'status',
    options: FILTERS.map((f) => el('option', { value: f }, filterLabel(f))),
  });
  let status = FILTERS[0];
  let cursor = null;
  const rows = new Map();

  root.append(pageHead(t('nav.moneyIn'), t('moneyIn.intro'),
    button(t('common.refresh'), { testid: 'refresh', onclick: () => reload().catch(globalError) })),
  el('div', { class: 'toolbar card' }, filter.wrap), el('h2', { class: 'visually-hidden' }, t('moneyIn.listTitle')),
  summary, list, el('div', { class: 'actions center' }, more));

  function render() {
    const items = Array.from(rows.values());
    if (!items.length) {
      clear(list).append(emptyState(status ? t('moneyIn.noneWith', { status: filterLabel(status) }) : t('moneyIn.none'), 'no-deposits'));
      summary.textContent = '';
    } else {
      if (list.querySelector('.empty')) clear(list);
      patchList(list, items, (d) => d.depositId, depositCard);
      summary.textContent = status ? tn('count.depositsWith', items.length, { status: filterLabel(status) }) : tn('count.deposits', items.length);
      if (cursor) summary.textContent += ` ${t('find.moreBelow')}`;
    }
    more.hidden = !cursor;
  }

  // Only the latest reload is shown: a filter changed twice quickly must not show the first answer.
  let latest = 0;
  async function reload() {
    const mine = ++latest;
    const want = Math.min(200, Math.max(LIST_PAGE, rows.size));
    const [d] = await Promise.all([api('GET', `/deposits${qs({ status, limit: want })}`), loadPeople()]);
    if (!ctx.alive() || mine !== latest) return;
    rows.clear();
    for (const x of (d && d.items) || []) rows.set(x.depositId, x);
    cursor = (d && d.nextCursor) || null;
    render();
  }

  filter.input.addEventListener('change', () => { status = filter.input.value; rows.clear(); reload().catch(globalError); });
  more.addEventListener('click', () => busy(more, async () => {
    const d = await api('GET', `/deposits${qs({ status, limit: LIST_PAGE, cursor })}`);
    if (!ctx.alive()) return;
    for (const x of (d && d.items) || []) rows.set(x.depositId, x);
    cursor = (d && d.nextCursor) || null;
    render();
  }).catch(globalError));

  await reload();
  ctx.every(15000, reload);
}
