// Admin screen #/notifications: webhook endpoints (add one for the events chosen and copy its
// signing secret, shown once; disable, enable or delete it; see its deliveries with every
// attempt, and retry one), and the text messages remit made (their words, never a phone).

import { api, qs } from '../api.js';
import { askBefore, button, clear, el, emptyState, field, formError, pageHead, patchList, showOnce, statusBadge, timeEl, uid } from '../dom.js';
import { busy, checkFields, onSubmit, showError } from '../forms.js';
import { t, tn } from '../i18n.js';
import { globalError, notice } from '../notices.js';

export const EVENT_TYPES = [
  'payment_request.created', 'payment_request.approved', 'payment_request.rejected',
  'payment_request.expired', 'payment_request.paid', 'payment_request.failed',
  'escrow.activated', 'escrow.completed', 'escrow.cancelled',
  'deposit.recorded', 'deposit.flagged', 'payout.stuck', 'float.low',
];

function eventLabel(type) {
  const key = `event.${type}`;
  const s = t(key);
  return s === key ? type : s;
}

function deliveryRow(d, onRetry) {
  const last = (d.attemptLog || [])[0];
  const answer = last ? (last.statusCode ? `HTTP ${last.statusCode}` : (last.error || '—')) : t('webhooks.notYet');
  const row = el('li', { class: 'delivery', testid: 'delivery-row', dataset: { deliveryId: d.deliveryId, status: d.status } },
    el('div', { class: 'delivery-main' },
      el('span', { class: 'event-name' }, eventLabel(d.eventType)),
      statusBadge('delivery', d.status, 'delivery-status')),
    el('p', { class: 'muted small' },
      tn('webhooks.attempts', d.attempts), ' · ', answer,
      last ? [' · ', timeEl(last.at)] : null,
      d.status === 'pending' && d.nextAttemptAt ? [' · ', t('webhooks.next'), ' ', timeEl(d.nextAttemptAt)] : null),
    el('p', { class: 'muted small mono id-line' }, d.eventId));
  if (d.status !== 'pending') {
    row.append(button(t('webhooks.retry'), {
      small: true, testid: 'retry-delivery',
      onclick: (ev) => busy(ev.currentTarget, async () => {
        await api('POST', `/webhook-deliveries/${encodeURIComponent(d.deliveryId)}/retry`, {});
        notice(() => t('webhooks.retried'));
        await onRetry();
      }).catch((err) => showError(row, err)),
    }), el('span', { class: 'form-error', role: 'alert', hidden: true }));
  }
  return row;
}

// At the foot of a list of the newest rows (`list`, a `ul`), while there are older ones: a
// "Load more" that appends the next page (`page(cursor)`) and moves itself below it (the newest
// 20 deliveries or texts were all there was to see).
function olderRows(list, cursor, page, row) {
  if (!cursor) return;
  const more = button(t('common.loadMore'), { small: true, testid: 'load-older' });
  const foot = el('li', { class: 'load-older' }, more);
  more.addEventListener('click', () => busy(more, async () => {
    const d = await page(cursor);
    foot.remove();
    for (const x of (d && d.items) || []) list.append(row(x));
    olderRows(list, d && d.nextCursor, page, row);
  }).catch(globalError));
  list.append(foot);
}

function endpointCard(w, reload) {
  const deliveries = el('ul', { class: 'rows deliveries', testid: 'delivery-list', hidden: true });
  const showDeliveries = button(t('webhooks.showDeliveries'), { small: true, testid: 'show-deliveries' });
  async function loadDeliveries() {
    const page = (cursor) => api('GET', `/webhook-endpoints/${encodeURIComponent(w.webhookEndpointId)}/deliveries${qs({ limit: 20, cursor })}`);
    const d = await page(null);
    const items = (d && d.items) || [];
    clear(deliveries);
    if (!items.length) deliveries.append(el('li', null, emptyState(t('webhooks.noDeliveries'), 'no-deliveries')));
    else {
      for (const x of items) deliveries.append(deliveryRow(x, loadDeliveries));
      olderRows(deliveries, d.nextCursor, page, (x) => deliveryRow(x, loadDeliveries));
    }
    deliveries.hidden = false;
  }
  showDeliveries.addEventListener('click', () => busy(showDeliveries, loadDeliveries).catch(globalError));
  const setEnabled = (enabled) => (ev) => busy(ev.currentTarget, async () => {
    await api('POST', `/webhook-endpoints/${encodeURIComponent(w.webhookEndpointId)}/${enabled ? 'enable' : 'disable'}`, {});
    await reload();
  }).catch((err) => showError(card, err));
  // A pause loses what happens meanwhile for good (it is not sent once the endpoint resumes):
  // asked once more, as a delete is, the safe answer focused. A resume is not.
  const toggle = button(w.enabled ? t('webhooks.disable') : t('webhooks.enable'), {
    small: true, testid: w.enabled ? 'disable-endpoint' : 'enable-endpoint',
    onclick: w.enabled ? null : setEnabled(true),
  });
  const pauseAsk = el('div', { class: 'confirm-inline', hidden: true, testid: 'pause-confirm' },
    el('span', null, t('webhooks.pauseAsk')),
    el('span', { class: 'actions' },
      button(t('webhooks.pauseYes'), { small: true, variant: 'danger', testid: 'confirm-pause', onclick: setEnabled(false) }),
      button(t('webhooks.keepSending'), { small: true, testid: 'keep-sending' })));
  if (w.enabled) askBefore(toggle, pauseAsk, pauseAsk.querySelector('[data-testid="keep-sending"]'));
  const remove = button(t('webhooks.delete'), { small: true, variant: 'danger-outline', testid: 'delete-endpoint' });
  const confirm = el('div', { class: 'confirm-inline', hidden: true, testid: 'delete-confirm' },
    el('span', null, t('webhooks.deleteAsk')),
    el('span', { class: 'actions' },
      button(t('webhooks.deleteYes'), {
        small: true, variant: 'danger', testid: 'confirm-delete',
        onclick: (ev) => busy(ev.currentTarget, async () => {
          await api('DELETE', `/webhook-endpoints/${encodeURIComponent(w.webhookEndpointId)}`);
          notice(() => t('webhooks.deleted'));
          await reload();
        }).catch((err) => showError(card, err)),
      }),
      button(t('webhooks.keep'), { small: true, testid: 'keep-endpoint' })));
  // The safe answer first: a second Enter keeps the endpoint.
  askBefore(remove, confirm, confirm.querySelector('[data-testid="keep-endpoint"]'));
  const card = el('article', { class: 'card endpoint', testid: 'endpoint-card', dataset: { endpointId: w.webhookEndpointId, enabled: String(w.enabled) } },
    el('header', { class: 'card-head' },
      el('div', { class: 'card-head-main' },
        el('h3', { class: 'card-title mono url', testid: 'endpoint-url' }, w.url),
        el('p', { class: 'muted small' }, el('span', { class: 'mono id-line' }, w.webhookEndpointId), ` · ${t('users.created')} `, timeEl(w.createdAt))),
      el('span', { class: `status ${w.enabled ? 'status-active' : 'status-cancelled'}`, testid: 'endpoint-state' }, w.enabled ? t('webhooks.on') : t('webhooks.off'))),
    el('p', { class: 'small', testid: 'endpoint-counts' }, tn('webhooks.pending', w.pendingDeliveries), ' · ', tn('webhooks.failed', w.failedDeliveries)),
    // A pause is not a buffer: said where it is seen.
    w.enabled ? null : el('p', { class: 'warn', testid: 'endpoint-paused-note' }, t('webhooks.pausedNote')),
    el('ul', { class: 'chips', testid: 'endpoint-events' }, (w.events || []).map((e) => el('li', { class: 'chip', dataset: { event: e } }, eventLabel(e)))),
    el('div', { class: 'actions card-actions' }, showDeliveries, toggle, remove), pauseAsk, confirm, deliveries,
    el('div', { class: 'card-error form-error', role: 'alert', hidden: true }));
  return card;
}

function smsRow(s) {
  return el('li', { class: 'sms', testid: 'sms-row', dataset: { smsId: s.smsId, status: s.status, template: s.template, language: s.language } },
    el('div', { class: 'delivery-main' },
      el('span', { class: 'muted small' }, timeEl(s.createdAt), ` · ${t(`language.${s.language}`)}`),
      statusBadge('sms', s.status, 'sms-status')),
    el('p', { class: 'sms-body', testid: 'sms-body', lang: s.language }, s.body),
    // A call under way (or cut by a crash, its outcome not yet known) is said as such.
    s.sending ? el('p', { class: 'muted small', testid: 'sms-sending' }, t('sms.sending', { n: s.attempts })) : null,
    s.error ? el('p', { class: 'muted small' }, s.error) : null);
}

export async function viewNotifications(root, ctx) {
  const secretBox = el('div', { 'aria-live': 'polite' });
  const list = el('div', { class: 'stack', testid: 'endpoint-list' });
  const smsList = el('ul', { class: 'rows sms-list', testid: 'sms-list' });

  const form = el('form', { class: 'form card', testid: 'endpoint-form', 'aria-labelledby': 'new-endpoint-h' });
  const url = field({ label: t('webhooks.url'), dataField: 'url', testid: 'endpoint-url-input', type: 'url', hint: t('webhooks.urlHint'), attrs: { spellcheck: 'false', autocapitalize: 'off' } });
  const boxes = EVENT_TYPES.map((type) => {
    const id = uid('ev');
    const input = el('input', { type: 'checkbox', id, value: type, checked: true, testid: `event-${type}` });
    return { type, input, label: el('label', { class: 'check', for: id }, input, ` ${eventLabel(type)}`) };
  });
  const events = el('fieldset', { class: 'subfield events', 'data-field': 'events' },
    el('legend', null, t('webhooks.events')),
    el('div', { class: 'checks' }, boxes.map((b) => b.label)));
  form.append(el('h2', { id: 'new-endpoint-h' }, t('webhooks.new')), url.wrap, events, formError(),
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'button primary', testid: 'endpoint-submit' }, t('webhooks.create'))));
  onSubmit(form, async () => {
    const chosen = boxes.filter((b) => b.input.checked).map((b) => b.type);
    if (!checkFields(form, [
      [url.input, url.input.value.trim() ? null : t('webhooks.err.url')],
      [boxes[0].input, chosen.length ? null : t('webhooks.err.events')],
    ])) return;
    const r = await api('POST', '/webhook-endpoints', { url: url.input.value.trim(), events: chosen });
    url.input.value = '';
    showSecret(r);
    await load();
  });

  function showSecret(r) {
    showOnce(secretBox, {
      title: t('webhooks.secretFor', { url: r.url }),
      warning: t('webhooks.secretOnce'),
      value: r.secret,
      label: t('webhooks.secretLabel'),
      testids: { box: 'endpoint-secret-box', value: 'endpoint-secret', copy: 'copy-secret', done: 'secret-done' },
      fallback: url.input,
    });
  }

  root.append(pageHead(t('nav.notifications'), t('webhooks.intro'),
    button(t('common.refresh'), { testid: 'refresh', onclick: () => Promise.all([load(), loadSms()]).catch(globalError) })),
  secretBox, form,
  el('section', { class: 'section', 'aria-labelledby': 'endpoints-h' }, el('h2', { id: 'endpoints-h' }, t('webhooks.list')), list),
  el('section', { class: 'section', 'aria-labelledby': 'sms-h' }, el('h2', { id: 'sms-h' }, t('sms.title')),
    el('p', { class: 'muted' }, t('sms.intro')), smsList));

  async function load() {
    const d = await api('GET', `/webhook-endpoints${qs({ limit: 50 })}`);
    if (!ctx.alive()) return;
    const items = (d && d.items) || [];
    if (!items.length) clear(list).append(emptyState(t('webhooks.none'), 'no-endpoints'));
    else {
      if (list.querySelector('.empty')) clear(list);
      patchList(list, items, (w) => w.webhookEndpointId, (w) => endpointCard(w, load));
    }
  }

  async function loadSms() {
    const page = (cursor) => api('GET', `/sms${qs({ limit: 20, cursor })}`);
    const d = await page(null);
    if (!ctx.alive()) return;
    const items = (d && d.items) || [];
    clear(smsList);
    if (!items.length) smsList.append(el('li', null, emptyState(t('sms.none'), 'no-sms')));
    else {
      for (const s of items) smsList.append(smsRow(s));
      olderRows(smsList, d.nextCursor, page, smsRow);
    }
  }

  await Promise.all([load(), loadSms()]);
}
