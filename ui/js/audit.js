// The audit log of one entity (GET /audit?entity=…) and its table (a block per line on a phone).
// Its actions and details are the log's own words, kept exactly as written (a record for
// operators and senders who check); beside them, what a known action means in the reader's
// language and amounts in dollars and shillings.

import { readAll } from './api.js';
import { el, emptyState, timeEl } from './dom.js';
import { formatRate, kes, usd } from './format.js';
import { t } from './i18n.js';
import { loadPeople, personName } from './people.js';
import { session } from './session.js';

function actionWords(action) {
  const key = `audit.action.${action}`;
  const said = t(key);
  return said === key ? null : said;
}

// Who acted, in words where remit knows: the reader, or one of remit's own parts (M-Pesa's
// results, Stripe's events, the clock, the command line). Other people keep their id.
function actorWords(actor) {
  if (!actor) return null;
  if (session.me && actor === session.me.userId) return t('audit.actor.you');
  // A sender reads their recipient as "recipient" (never the user id: GET /audit hides it).
  if (actor === 'recipient') return t('audit.actor.recipient');
  // The others who act on a sender's escrow, named by their role (GET /audit says no more).
  if (actor === 'agent' || actor === 'admin') return t(`audit.actor.${actor}`);
  // An admin reads the people by name (their id stays beside it).
  const known = personName(actor);
  if (known) return known;
  const m = /^system:([a-z_-]+)$/.exec(actor);
  if (!m) return null;
  const key = `audit.actor.${m[1]}`;
  const said = t(key);
  return said === key ? t('audit.actor.system') : said;
}

// An amount in the details read as money (the cents as written stay beside it).
function readable(k, v) {
  if (typeof v !== 'number' && !(typeof v === 'string' && /^-?\d+$/.test(v))) return null;
  if (/UsdCents$/.test(k)) return usd(v);
  if (/KesCents$/.test(k)) return kes(v);
  if (/E4$/.test(k)) return formatRate(v);
  return null;
}

export function auditTable(items) {
  if (!items.length) return emptyState(t('audit.empty'), 'audit-empty');
  const more = items.more ? el('p', { class: 'warn', testid: 'audit-more' }, t('audit.more', { n: items.length })) : null;
  const heads = ['#', t('audit.col.at'), t('audit.col.actor'), t('audit.col.action'), t('audit.col.details'), 'MAC'];
  const cell = (i, props, ...kids) => el('td', { ...(props || {}), 'data-label': heads[i] }, ...kids);
  return el('div', { class: 'table-wrap' }, more,
    el('table', { class: 'table audit stacking', testid: 'audit-table' },
      el('thead', null, el('tr', null, heads.map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', null, items.map((a) => ({ a, who: actorWords(a.actor) })).map(({ a, who }) => el('tr', { testid: 'audit-row' },
        cell(0, { class: 'mono' }, String(a.seq)),
        cell(1, null, timeEl(a.at)),
        cell(2, null, who
          ? [el('span', { testid: 'audit-actor-words' }, who), el('br'), el('span', { class: 'mono muted small' }, a.actor)]
          : el('span', { class: 'mono' }, a.actor || '—')),
        cell(3, null, actionWords(a.action) ? [el('span', { testid: 'audit-action-words' }, actionWords(a.action)), el('br'), el('span', { class: 'mono muted small' }, a.action)] : a.action,
          el('br'), el('span', { class: 'mono muted small' }, a.entity)),
        cell(4, null, detailsList(a.details)),
        cell(5, { class: 'mono', title: a.mac || '' }, a.mac ? `${String(a.mac).slice(0, 10)}…` : '—'))))));
}

// One value of the details: an amount read as money beside its cents, a list or an object
// (the categories of a new escrow) item by item the same way, anything else as written.
function valueNode(k, v) {
  if (v === null || v === undefined) return el('span', { class: 'muted' }, '—');
  if (readable(k, v)) return [el('strong', null, readable(k, v)), ' ', el('code', { class: 'details-json muted' }, String(v))];
  if (Array.isArray(v)) {
    return v.length ? el('ul', { class: 'kv nested' }, v.map((item) => el('li', null, valueNode(k, item)))) : el('span', { class: 'muted' }, '—');
  }
  if (typeof v === 'object') return detailsList(v);
  return el('code', { class: 'details-json' }, String(v));
}

function detailsList(details) {
  if (details === undefined || details === null) return '';
  if (typeof details !== 'object') return el('code', { class: 'details-json' }, JSON.stringify(details));
  if (Array.isArray(details)) return valueNode('', details);
  const entries = Object.entries(details);
  if (!entries.length) return el('span', { class: 'muted' }, '—');
  return el('ul', { class: 'kv' }, entries.map(([k, v]) => el('li', null, el('span', { class: 'muted' }, `${k}: `), valueNode(k, v))));
}

// The most lines an audit panel reads (ten of the API's pages): past it, the panel says that
// more lines follow and how to read them all.
const AUDIT_LINES_SHOWN_MAX = 10000;

// Every audit line of `entity`, page after page (one page of 1,000 showed an escrow's first
// lines only, its cancel among those left out, and said nothing of the rest); `more` is set on
// the list when there were more than `AUDIT_LINES_SHOWN_MAX`.
export async function loadAudit(entity) {
  const [items] = await Promise.all([readAll('/audit', { entity }, AUDIT_LINES_SHOWN_MAX, 1000), loadPeople()]);
  return items;
}
