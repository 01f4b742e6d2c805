// The audit log of one entity (GET /audit?entity=…) and its table.

import { api, qs } from './api.js';
import { el, emptyState, timeEl } from './dom.js';

export function auditTable(items) {
  if (!items.length) return emptyState('No audit lines for this entity.', 'audit-empty');
  return el('div', { class: 'table-wrap' },
    el('table', { class: 'table audit', testid: 'audit-table' },
      el('thead', null, el('tr', null, ['#', 'At', 'Actor', 'Action and entity', 'Details', 'MAC'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', null, items.map((a) => el('tr', { testid: 'audit-row' },
        el('td', { class: 'mono' }, String(a.seq)),
        el('td', null, timeEl(a.at)),
        el('td', { class: 'mono' }, a.actor || '—'),
        el('td', null, a.action, el('br'), el('span', { class: 'mono muted small' }, a.entity)),
        el('td', null, detailsList(a.details)),
        el('td', { class: 'mono', title: a.mac || '' }, a.mac ? `${String(a.mac).slice(0, 10)}…` : '—'))))));
}

function detailsList(details) {
  if (details === undefined || details === null) return '';
  if (typeof details !== 'object' || Array.isArray(details)) return el('code', { class: 'details-json' }, JSON.stringify(details));
  const entries = Object.entries(details);
  if (!entries.length) return el('span', { class: 'muted' }, '—');
  return el('ul', { class: 'kv' }, entries.map(([k, v]) => el('li', null,
    el('span', { class: 'muted' }, `${k}: `),
    el('code', { class: 'details-json' }, v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v)))));
}

export async function loadAudit(entity) {
  const data = await api('GET', `/audit${qs({ entity })}`);
  return (data && data.items) || [];
}
