// The audit log of one entity (GET /audit?entity=…) and its table (a block per line on a phone).
// Its actions and details are the log's own words: it is a record for operators and senders
// who check, kept exactly as written.

import { api, qs } from './api.js';
import { el, emptyState, timeEl } from './dom.js';
import { t } from './i18n.js';

export function auditTable(items) {
  if (!items.length) return emptyState(t('audit.empty'), 'audit-empty');
  const heads = ['#', t('audit.col.at'), t('audit.col.actor'), t('audit.col.action'), t('audit.col.details'), 'MAC'];
  const cell = (i, props, ...kids) => el('td', { ...(props || {}), 'data-label': heads[i] }, ...kids);
  return el('div', { class: 'table-wrap' },
    el('table', { class: 'table audit stacking', testid: 'audit-table' },
      el('thead', null, el('tr', null, heads.map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', null, items.map((a) => el('tr', { testid: 'audit-row' },
        cell(0, { class: 'mono' }, String(a.seq)),
        cell(1, null, timeEl(a.at)),
        cell(2, { class: 'mono' }, a.actor || '—'),
        cell(3, null, a.action, el('br'), el('span', { class: 'mono muted small' }, a.entity)),
        cell(4, null, detailsList(a.details)),
        cell(5, { class: 'mono', title: a.mac || '' }, a.mac ? `${String(a.mac).slice(0, 10)}…` : '—'))))));
}

function detailsList(details) {
  if (details === undefined || details === null) return '';
  if (typeof details !== 'object' || Array.isArray(details)) return el('code', { class: 'details-json' }, JSON.stringify(details));
  const entries = Object.entries(details);
  if (!entries.length) return el('span', { class: 'muted' }, '—');
  return el('ul', { class: 'kv' }, entries.map(([k, v]) => el('li', null,
    el('span', { class: 'muted' }, `${k}: `),
    v === null || v === undefined ? el('span', { class: 'muted' }, '—')
      : el('code', { class: 'details-json' }, typeof v === 'object' ? JSON.stringify(v) : String(v)))));
}

export async function loadAudit(entity) {
  const data = await api('GET', `/audit${qs({ entity })}`);
  return (data && data.items) || [];
}
