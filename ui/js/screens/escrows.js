// Sender and admin screen #/escrows: the escrow list with paging, per-escrow panels (payment
// requests, audit log, journal) and cancelling an escrow; for the admin also the status filter
// and the audit log of any id.

import { PAGE, api, qs } from '../api.js';
import { auditTable, loadAudit } from '../audit.js';
import { button, clear, el, emptyState, field, formError, pageHead, replaceKeepingFocus } from '../dom.js';
import { barLegend, escrowCard } from '../escrow-card.js';
import { usd } from '../format.js';
import { busy, markField, onSubmit } from '../forms.js';
import { journalTable, loadJournal } from '../journal.js';
import { globalError, notice } from '../notices.js';
import { requestRow } from '../request-card.js';
import { session } from '../session.js';

const ESCROW_STATUSES = ['pending_deposit', 'active', 'completed', 'cancelled'];

export async function viewEscrows(root, ctx) {
  const isAdmin = session.me.role === 'admin';
  const list = el('div', { class: 'stack', testid: 'escrow-list' });
  const more = button('Load more', { testid: 'load-more', hidden: true });
  const summary = el('p', { class: 'muted', 'aria-live': 'polite', testid: 'escrow-summary' }, 'Loading…');
  const open = { history: new Set(), audit: new Set(), journal: new Set(), cancel: new Set() };
  const histories = new Map();
  const audits = new Map();
  const journals = new Map();
  let statusFilter = '';
  let loaded = 0;
  let cursor = null;

  const head = pageHead('Escrows', isAdmin ? 'All escrows, newest first.' : 'Your escrows, newest first. Each bar shows how a category\u2019s money is split.',
    button('Refresh', { testid: 'refresh', onclick: () => reload().catch(globalError) }));
  root.append(head);

  if (isAdmin) {
    const filter = field({
      label: 'Status', tag: 'select', testid: 'status-filter', dataField: 'status',
      options: [el('option', { value: '' }, 'all'), ...ESCROW_STATUSES.map((s) => el('option', { value: s }, s))],
    });
    filter.input.addEventListener('change', () => { statusFilter = filter.input.value; reload().catch(globalError); });
    const auditForm = el('form', { class: 'inline-form row-form', testid: 'audit-form', role: 'search' });
    const entity = field({ label: 'Audit log of an id (esc_…, pr_…, po_…, usr_…)', dataField: 'entity', testid: 'audit-entity', wrapClass: 'grow', attrs: { spellcheck: 'false' } });
    const auditOut = el('div', { class: 'audit-result', testid: 'audit-result' });
    auditForm.append(entity.wrap, el('div', { class: 'actions end' }, el('button', { type: 'submit', class: 'button secondary', testid: 'audit-submit' }, 'Show audit log')), formError());
    onSubmit(auditForm, async () => {
      const id = entity.input.value.trim();
      if (!id) { markField(entity.input, 'Enter an id.'); entity.input.focus(); return; }
      const items = await loadAudit(id);
      clear(auditOut).append(el('h3', null, `Audit log of ${id}`), auditTable(items));
    });
    root.append(el('div', { class: 'toolbar card' }, filter.wrap, auditForm), auditOut);
  }
  root.append(summary, barLegend(), list, el('div', { class: 'actions center' }, more));

  function panel(kind, e) {
    const box = el('div', { class: `panel panel-${kind}`, testid: `${kind}-panel` });
    if (kind === 'history') {
      box.append(el('h4', null, 'Payment requests'));
      const data = histories.get(e.escrowId);
      if (!data) box.append(el('p', { class: 'muted' }, 'Loading…'));
      else if (!data.length) box.append(emptyState('No payment requests yet.', 'history-empty'));
      else box.append(el('ul', { class: 'rows', testid: 'history-list' }, data.map(requestRow)));
    } else if (kind === 'audit') {
      box.append(el('h4', null, 'Audit log'));
      const data = audits.get(e.escrowId);
      box.append(data ? auditTable(data) : el('p', { class: 'muted' }, 'Loading…'));
    } else if (kind === 'journal') {
      box.append(el('h4', null, 'Journal'));
      const data = journals.get(e.escrowId);
      box.append(data ? journalTable(data) : el('p', { class: 'muted' }, 'Loading…'));
    } else if (kind === 'cancel') {
      const form = el('form', { class: 'confirm', testid: 'cancel-escrow-form' },
        el('p', null, `Cancel this escrow? What is left (${usd(e.remainingUsdCents)}) is refunded to the sender. This cannot be undone.`),
        formError(),
        el('div', { class: 'actions' },
          el('button', { type: 'submit', class: 'button danger', testid: 'confirm-cancel-escrow' }, 'Yes, cancel escrow'),
          button('Keep escrow', { testid: 'keep-escrow', onclick: () => { open.cancel.delete(e.escrowId); rebuild(e); } })));
      onSubmit(form, async () => {
        await api('POST', `/escrows/${encodeURIComponent(e.escrowId)}/cancel`, {});
        open.cancel.delete(e.escrowId);
        notice('The escrow is cancelled; what was left is refunded.');
        await reload();
      });
      box.append(form);
    }
    return box;
  }

  function build(e) {
    const toggle = (kind, label, testid) => {
      const isOpen = open[kind].has(e.escrowId);
      return button(label, {
        testid, 'aria-expanded': isOpen ? 'true' : 'false', small: true,
        onclick: () => {
          if (open[kind].has(e.escrowId)) open[kind].delete(e.escrowId);
          else open[kind].add(e.escrowId);
          rebuild(e);
          if (open[kind].has(e.escrowId)) refreshPanels([e.escrowId]).catch(globalError);
        },
      });
    };
    const actions = [toggle('history', 'Payment requests', 'toggle-history'), toggle('audit', 'Audit log', 'toggle-audit'),
      toggle('journal', 'Journal', 'toggle-journal')];
    if (e.status === 'pending_deposit' || e.status === 'active') {
      actions.push(button('Cancel escrow', {
        testid: 'cancel-escrow', small: true, variant: 'danger-outline',
        onclick: () => { open.cancel.add(e.escrowId); rebuild(e); const b = list.querySelector(`[data-key="${CSS.escape(e.escrowId)}"] [data-testid="confirm-cancel-escrow"]`); if (b) b.focus(); },
      }));
    }
    const panels = [];
    if (open.cancel.has(e.escrowId)) panels.push(panel('cancel', e));
    if (open.history.has(e.escrowId)) panels.push(panel('history', e));
    if (open.audit.has(e.escrowId)) panels.push(panel('audit', e));
    if (open.journal.has(e.escrowId)) panels.push(panel('journal', e));
    const card = escrowCard(e, { actions, panels });
    if (e.status === 'pending_deposit') {
      card.querySelector('.stats').after(el('p', { class: 'balance-note', testid: 'deposit-reference-note' },
        'Deposit reference: ', el('span', { class: 'mono' }, e.depositReference || e.escrowId)));
    }
    return card;
  }

  const escrowData = new Map();
  function rebuild(e) {
    const old = list.querySelector(`[data-key="${CSS.escape(e.escrowId)}"]`);
    const fresh = build(e);
    fresh.dataset.key = e.escrowId;
    fresh.dataset.sig = JSON.stringify(e) + panelSig(e.escrowId);
    if (old) replaceKeepingFocus(old, fresh);
  }
  function panelSig(id) {
    return JSON.stringify([open.history.has(id), open.audit.has(id), open.journal.has(id), open.cancel.has(id),
      open.history.has(id) ? histories.get(id) || null : null, open.audit.has(id) ? audits.get(id) || null : null,
      open.journal.has(id) ? journals.get(id) || null : null]);
  }

  async function refreshPanels(ids) {
    await Promise.all(ids.map(async (id) => {
      if (open.history.has(id)) {
        const d = await api('GET', `/payment-requests${qs({ escrowId: id, limit: 50 })}`);
        histories.set(id, (d && d.items) || []);
      }
      if (open.audit.has(id)) audits.set(id, await loadAudit(id));
      if (open.journal.has(id)) journals.set(id, await loadJournal(id));
      const e = escrowData.get(id);
      if (e && ctx.alive()) {
        const node = list.querySelector(`[data-key="${CSS.escape(id)}"]`);
        if (node && node.dataset.sig !== JSON.stringify(e) + panelSig(id)) rebuild(e);
      }
    }));
  }

  function updateSummary() {
    loaded = list.children.length;
    if (loaded) summary.textContent = `${loaded} escrow${loaded === 1 ? '' : 's'}${statusFilter ? ` with status ${statusFilter}` : ''}.`;
    else if (statusFilter) summary.textContent = `No escrows with status ${statusFilter}.`;
    else summary.textContent = isAdmin ? 'No escrows yet.' : 'No escrows yet. Create one under New escrow.';
    more.hidden = !cursor;
  }

  // patchList compares data-sig with JSON of the item; give it the combined signature.
  function patch(items) {
    for (const e of items) escrowData.set(e.escrowId, e);
    const existing = new Map(Array.from(list.children).map((n) => [n.dataset.key, n]));
    let prev = null;
    for (const e of items) {
      const sig = JSON.stringify(e) + panelSig(e.escrowId);
      let node = existing.get(e.escrowId);
      existing.delete(e.escrowId);
      if (!node || node.dataset.sig !== sig) {
        const fresh = build(e);
        fresh.dataset.key = e.escrowId;
        fresh.dataset.sig = sig;
        if (node) replaceKeepingFocus(node, fresh);
        node = fresh;
      }
      const want = prev ? prev.nextSibling : list.firstChild;
      if (want !== node) list.insertBefore(node, want);
      prev = node;
    }
    for (const n of existing.values()) n.remove();
  }

  async function reload() {
    if (open.cancel.size) return;
    const limit = Math.min(100, Math.max(PAGE, loaded));
    const d = await api('GET', `/escrows${qs({ status: statusFilter, limit })}`);
    if (!ctx.alive()) return;
    cursor = d.nextCursor || null;
    patch(d.items || []);
    updateSummary();
    await refreshPanels(Array.from(new Set([...open.history, ...open.audit, ...open.journal])).filter((id) => escrowData.has(id)));
  }

  more.addEventListener('click', () => busy(more, async () => {
    const d = await api('GET', `/escrows${qs({ status: statusFilter, limit: PAGE, cursor })}`);
    cursor = d.nextCursor || null;
    const items = [...Array.from(list.children).map((n) => escrowData.get(n.dataset.key)).filter(Boolean), ...(d.items || [])];
    patch(items);
    updateSummary();
  }).catch(globalError));

  await reload();
  ctx.every(4000, () => {
    const a = document.activeElement;
    if (a && list.contains(a) && a.matches('input, textarea, select')) return undefined;
    if (loaded > 100) return undefined;
    return reload();
  });
}
