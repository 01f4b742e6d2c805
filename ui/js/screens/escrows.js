// Sender and admin screen #/escrows: the escrow list with paging, per-escrow panels (payment
// requests, audit log, journal), cancelling an escrow, and for the sender the deposit code to
// tell the kiosk and a sign-in token for the recipient (shown once); for the admin also the
// status filter and the audit log of any id.

import { PAGE, api, qs, readAll } from '../api.js';
import { auditTable, loadAudit } from '../audit.js';
import { button, clear, copyButton, el, emptyState, escapeAnswers, field, formError, pageHead, replaceKeepingFocus, uid } from '../dom.js';
import { barLegend, depositCode, escrowCard } from '../escrow-card.js';
import { escrowSearch, searchedFor, usd } from '../format.js';
import { busy, checkFields, clearErrors, onSubmit } from '../forms.js';
import { t, tn } from '../i18n.js';
import { journalTable, loadJournal } from '../journal.js';
import { globalError, notice } from '../notices.js';
import { requestRow } from '../request-card.js';
import { session } from '../session.js';
import { statusWord } from '../words.js';

const ESCROW_STATUSES = ['pending_deposit', 'active', 'completed', 'cancelled'];

export async function viewEscrows(root, ctx) {
  const isAdmin = session.me.role === 'admin';
  const list = el('div', { class: 'stack', testid: 'escrow-list' });
  const more = button(t('common.loadMore'), { testid: 'load-more', hidden: true });
  const summary = el('p', { class: 'muted', 'aria-live': 'polite', testid: 'escrow-summary' }, t('common.loading'));
  const open = { history: new Set(), audit: new Set(), journal: new Set(), cancel: new Set(), token: new Set(), flag: new Set() };
  const histories = new Map();
  const audits = new Map();
  const journals = new Map();
  // How many requests wait on an escrow whose cancel is being asked (they are cancelled with it).
  const waiting = new Map();
  // Recipient tokens issued from this screen (shown once, until dismissed) and refusals.
  const tokens = new Map();
  let statusFilter = '';
  // An admin answering a customer finds their escrows by phone or deposit code, as an agent
  // does (the whole list had to be scrolled).
  let search = { phone: '', ref: '' };
  // A search refused as typed: the list stays empty (no refresh fills it with the search
  // before's cards, which an admin could take for this one's answer) until one is made again.
  let searchRefused = false;
  let loaded = 0;
  let cursor = null;

  const head = pageHead(t('nav.escrows'), isAdmin ? t('escrows.introAdmin') : t('escrows.intro'),
    button(t('common.refresh'), { testid: 'refresh', onclick: () => reload().catch(globalError) }));
  root.append(head);

  if (isAdmin) {
    const filter = field({
      label: t('escrows.filter'), tag: 'select', testid: 'status-filter', dataField: 'status',
      options: [el('option', { value: '' }, t('common.all')), ...ESCROW_STATUSES.map((s) => el('option', { value: s }, statusWord('escrow', s)))],
    });
    filter.input.addEventListener('change', () => { statusFilter = filter.input.value; reload().catch(globalError); });
    const auditForm = el('form', { class: 'inline-form row-form', testid: 'audit-form', role: 'search' });
    const entity = field({ label: t('escrows.auditOf'), dataField: 'entity', testid: 'audit-entity', wrapClass: 'grow', attrs: { spellcheck: 'false' } });
    const auditOut = el('div', { class: 'audit-result', testid: 'audit-result' });
    auditForm.append(entity.wrap, el('div', { class: 'actions end' }, el('button', { type: 'submit', class: 'button secondary', testid: 'audit-submit' }, t('escrows.showAudit'))), formError());
    onSubmit(auditForm, async () => {
      const id = entity.input.value.trim();
      if (!checkFields(auditForm, [[entity.input, id ? null : t('escrows.err.entity')]])) return;
      const items = await loadAudit(id);
      // Nothing for a text without an id's shape (a prefix, `_`, 26 characters): said beside
      // the field with what an id looks like, not "no audit lines for this id".
      const shaped = /^[a-z]{2,5}_[0-9a-hjkmnp-tv-z]{26}$/.test(id);
      if (!items.length && !shaped) {
        clear(auditOut);
        checkFields(auditForm, [[entity.input, t('escrows.err.notAnId')]]);
        return;
      }
      clear(auditOut).append(el('h2', { class: 'id-line' }, t('escrows.auditTitle', { id })), auditTable(items));
    });
    const searchForm = el('form', { class: 'inline-form row-form', testid: 'escrow-search-form', role: 'search' });
    const query = field({ label: t('find.search'), dataField: 'recipientPhone', testid: 'escrow-search', hint: t('find.searchHint'), wrapClass: 'grow', attrs: { spellcheck: 'false', autocapitalize: 'characters' } });
    const clearSearch = button(t('find.showAll'), {
      testid: 'escrow-search-clear',
      onclick: () => { query.input.value = ''; searchRefused = false; search = { phone: '', ref: '' }; clearErrors(searchForm); reload().catch(globalError); },
    });
    searchForm.append(query.wrap, el('div', { class: 'actions end' },
      el('button', { type: 'submit', class: 'button secondary', testid: 'escrow-search-submit' }, t('find.searchButton')), clearSearch), formError());
    // A search refused, on the form or by the server: the list is emptied (its cards were the
    // search before's, which an admin could take for this one's answer) until one is made
    // again; what the refresh every 4 s asks for stays the search before (it asked the refused
    // one again, and said its error, every time).
    const refuseSearch = () => {
      searchRefused = true;
      // Its open panels (a Cancel question among them, which holds every reload back) go with
      // the cards.
      for (const set of Object.values(open)) set.clear();
      list.replaceChildren();
      loaded = 0;
      summary.textContent = t('find.searchRefused');
      more.hidden = true;
    };
    onSubmit(searchForm, async () => {
      const asked = escrowSearch(query.input.value.trim());
      if (!checkFields(searchForm, [[query.input, asked.error || null]])) {
        refuseSearch();
        return;
      }
      searchRefused = false;
      const before = search;
      search = asked.search;
      try {
        await reload();
      } catch (err) {
        search = before;
        // Refused by the server (a code with a letter no code has); another failure (the
        // network) leaves the list as it was.
        if (err && err.status === 400 && ['ref', 'recipientPhone'].includes(err.field)) refuseSearch();
        throw err;
      }
    });
    root.append(el('div', { class: 'toolbar card' }, filter.wrap, searchForm, auditForm), auditOut);
  }
  // The cards' titles are h3: the list has its heading, for those who move by headings.
  root.append(el('h2', { class: 'visually-hidden' }, t('escrows.listTitle')), summary, barLegend(), list, el('div', { class: 'actions center' }, more));

  function tokenPanel(e) {
    const box = el('div', { class: 'panel panel-token', testid: 'recipient-token-panel' });
    const name = (e.recipient && e.recipient.name) || t('card.recipient');
    const issued = tokens.get(e.escrowId);
    const close = () => { open.token.delete(e.escrowId); tokens.delete(e.escrowId); rebuild(e); };
    if (issued && issued.token) {
      const out = el('output', { class: 'token mono', testid: 'recipient-token' }, issued.token);
      box.append(el('div', { class: 'token-card', role: 'region', 'aria-label': t('token.newLabel') },
        el('h4', null, t('escrows.tokenFor', { name: issued.name || name })),
        el('p', { class: 'warn' }, t('token.once')),
        el('div', { class: 'token-row' }, out, copyButton(out, issued.token, 'copy-recipient-token')),
        el('p', { class: 'muted small', testid: 'recipient-token-explain' }, t('escrows.tokenExplain', { name: issued.name || name })),
        el('div', { class: 'actions' }, button(t('token.done'), { variant: 'primary', small: true, testid: 'recipient-token-done', onclick: close }))));
      return box;
    }
    const refused = issued && issued.refused;
    const go = el('button', { type: 'submit', class: 'button primary', testid: 'recipient-token-create', hidden: Boolean(refused) }, t('escrows.tokenCreate'));
    const form = el('form', { class: 'confirm', testid: 'recipient-token-form' },
      el('p', null, t('escrows.tokenAsk', { name })),
      el('p', { class: 'muted small' }, t('escrows.tokenWhy', { name })),
      refused ? el('div', { class: 'form-error', role: 'alert' },
        el('span', { testid: 'recipient-token-refused' }, refused), el('br'), t('escrows.tokenElsewhere')) : formError(),
      el('div', { class: 'actions' }, go, button(refused ? t('common.close') : t('common.notNow'), { testid: 'recipient-token-cancel', onclick: close })));
    onSubmit(form, async () => {
      let r;
      try {
        r = await api('POST', `/escrows/${encodeURIComponent(e.escrowId)}/recipient-token`, {});
      } catch (err) {
        if (!err || err.code !== 'invalid_state') throw err;
        // The server's sentence names an admin route; the sender gets the UI's own words.
        tokens.set(e.escrowId, { refused: t('escrows.tokenRefused') });
        rebuild(e);
        return;
      }
      tokens.set(e.escrowId, { token: r && r.token, name: r && r.name });
      rebuild(e);
      // On Copy: a second Enter copies the token rather than putting away its only sight.
      const b = list.querySelector(`[data-key="${CSS.escape(e.escrowId)}"] [data-testid="copy-recipient-token"]`);
      if (b) b.focus();
    });
    box.append(form);
    return box;
  }

  // What a cancel takes with it: the requests waiting on the escrow (nothing said when none).
  function cancelWaiting(w) {
    if (!w || (!w.n && !w.more)) return null;
    return el('p', { class: 'warn-text', role: 'status', testid: 'cancel-waiting' },
      w.more ? t('escrows.cancelWaitingMany', { count: `${w.n}` }) : tn('escrows.cancelWaiting', w.n));
  }

  function panel(kind, e) {
    if (kind === 'token') return tokenPanel(e);
    const box = el('div', { class: `panel panel-${kind}`, testid: `${kind}-panel` });
    if (kind === 'flag') {
      // An admin clears a refunded or disputed deposit's flag once it is settled: asked twice.
      const form = el('form', { class: 'confirm', testid: 'clear-flag-form' },
        el('p', null, t('escrows.clearFlagAsk')),
        formError(),
        el('div', { class: 'actions' },
          el('button', { type: 'submit', class: 'button', testid: 'confirm-clear-flag' }, t('escrows.clearFlagYes')),
          button(t('escrows.clearFlagNo'), {
            testid: 'keep-flag',
            onclick: () => {
              open.flag.delete(e.escrowId);
              rebuild(e);
              const again = list.querySelector(`[data-key="${CSS.escape(e.escrowId)}"] [data-testid="clear-flag"]`);
              if (again) again.focus();
            },
          })));
      onSubmit(form, async () => {
        // The flag read here: one that changed meanwhile (a dispute after the refund) is not cleared.
        await api('POST', `/escrows/${encodeURIComponent(e.escrowId)}/clear-flag`, { flagReason: e.flagReason });
        open.flag.delete(e.escrowId);
        notice(() => t('escrows.flagCleared'));
        await reload();
      });
      box.append(form);
      return box;
    }
    if (kind === 'history') {
      box.append(el('h4', null, t('escrows.requests')));
      const data = histories.get(e.escrowId);
      if (!data) box.append(el('p', { class: 'muted' }, t('common.loading')));
      else if (!data.length) box.append(emptyState(t('escrows.noRequests'), 'history-empty'));
      else {
        box.append(el('ul', { class: 'rows', testid: 'history-list' }, data.map((r) => requestRow(r))));
        if (data.more) box.append(el('p', { class: 'muted small', testid: 'history-more' }, t('escrows.requestsMore', { n: data.length })));
      }
    } else if (kind === 'audit') {
      box.append(el('h4', null, t('escrows.audit')));
      const data = audits.get(e.escrowId);
      box.append(data ? auditTable(data) : el('p', { class: 'muted' }, t('common.loading')));
    } else if (kind === 'journal') {
      box.append(el('h4', null, t('escrows.journal')));
      const data = journals.get(e.escrowId);
      box.append(data ? journalTable(data) : el('p', { class: 'muted' }, t('common.loading')));
    } else if (kind === 'cancel') {
      // The question is the form's name and its buttons' description: a screen reader on "Keep
      // the escrow" said only that.
      const askId = uid('cancel-ask');
      const form = el('form', { class: 'confirm', testid: 'cancel-escrow-form', 'aria-labelledby': askId, dataset: { counted: waiting.has(e.escrowId) ? 'yes' : 'no' } },
        // Before activation the refund is what was deposited so far; after, what remains.
        el('p', { id: askId }, t(isAdmin ? 'escrows.cancelAsk' : 'escrows.cancelAskOwn', { amount: usd(e.status === 'pending_deposit' ? e.depositedUsdCents : e.remainingUsdCents) })),
        cancelWaiting(waiting.get(e.escrowId)),
        formError(),
        el('div', { class: 'actions' },
          el('button', { type: 'submit', class: 'button danger', testid: 'confirm-cancel-escrow' }, t('escrows.cancelYes')),
          button(t('escrows.cancelNo'), {
            testid: 'keep-escrow',
            onclick: () => {
              open.cancel.delete(e.escrowId);
              rebuild(e);
              const again = list.querySelector(`[data-key="${CSS.escape(e.escrowId)}"] [data-testid="cancel-escrow"]`);
              if (again) again.focus();
            },
          })));
      for (const b of form.querySelectorAll('button')) b.setAttribute('aria-describedby', askId);
      escapeAnswers(form, form.querySelector('[data-testid="keep-escrow"]'));
      onSubmit(form, async () => {
        await api('POST', `/escrows/${encodeURIComponent(e.escrowId)}/cancel`, {});
        open.cancel.delete(e.escrowId);
        notice(() => t('escrows.cancelled'));
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
    const actions = [toggle('history', t('escrows.requests'), 'toggle-history'), toggle('audit', t('escrows.audit'), 'toggle-audit'),
      toggle('journal', t('escrows.journal'), 'toggle-journal')];
    const live = e.status === 'pending_deposit' || e.status === 'active';
    if (!isAdmin && live && !open.token.has(e.escrowId)) {
      actions.push(button(t('escrows.tokenButton', { name: (e.recipient && e.recipient.name) || t('card.recipient') }), {
        small: true, testid: 'recipient-token-open',
        onclick: () => {
          open.token.add(e.escrowId);
          rebuild(e);
          const b = list.querySelector(`[data-key="${CSS.escape(e.escrowId)}"] [data-testid="recipient-token-create"]`);
          if (b) b.focus();
        },
      }));
    }
    // Why a cancel would be refused now, said beside the button instead: its money held until an
    // admin acts, or some of it set aside for a payment M-Pesa has not answered yet.
    const heldWords = e.held ? t(e.held === 'card_refunded' ? 'held.cardRefunded' : 'held.payoutFlagged') : null;
    const cancelWhy = live && (heldWords
      || (Number(e.reservedUsdCents) > 0 ? t(isAdmin ? 'escrows.cancelInFlightAdmin' : 'escrows.cancelInFlight', { amount: usd(e.reservedUsdCents) }) : null));
    const cancelWhyId = cancelWhy ? uid('cancel-why') : null;
    if (live) {
      actions.push(button(t('escrows.cancel'), {
        testid: 'cancel-escrow', small: true, variant: 'danger-outline',
        disabled: Boolean(cancelWhy), 'aria-describedby': cancelWhyId,
        onclick: () => {
          open.cancel.add(e.escrowId);
          waiting.delete(e.escrowId);
          rebuild(e);
          // Focus on the safe answer: a second Enter keeps the escrow, never cancels it.
          const keep = () => {
            const b = list.querySelector(`[data-key="${CSS.escape(e.escrowId)}"] [data-testid="keep-escrow"]`);
            if (b) b.focus();
          };
          keep();
          // The requests that wait on it are cancelled with it: said before the second tap.
          api('GET', `/payment-requests${qs({ escrowId: e.escrowId, status: 'pending_approval', limit: 200 })}`).then((d) => {
            waiting.set(e.escrowId, { n: ((d && d.items) || []).length, more: Boolean(d && d.nextCursor) });
            if (!ctx.alive() || !open.cancel.has(e.escrowId)) return;
            const focused = document.activeElement && document.activeElement.dataset.testid === 'keep-escrow';
            rebuild(e);
            if (focused) keep();
          }).catch(globalError);
        },
      }));
    }
    if (isAdmin && e.flagReason && !open.flag.has(e.escrowId)) {
      actions.push(button(t('escrows.clearFlag'), {
        testid: 'clear-flag', small: true,
        onclick: () => {
          open.flag.add(e.escrowId);
          rebuild(e);
          const b = list.querySelector(`[data-key="${CSS.escape(e.escrowId)}"] [data-testid="keep-flag"]`);
          if (b) b.focus();
        },
      }));
    }
    const panels = [];
    if (open.flag.has(e.escrowId)) panels.push(panel('flag', e));
    if (open.token.has(e.escrowId)) panels.push(panel('token', e));
    if (open.cancel.has(e.escrowId)) panels.push(panel('cancel', e));
    if (open.history.has(e.escrowId)) panels.push(panel('history', e));
    if (open.audit.has(e.escrowId)) panels.push(panel('audit', e));
    if (open.journal.has(e.escrowId)) panels.push(panel('journal', e));
    const card = escrowCard(e, { actions, panels });
    // What flagged it, for the admin (a sender's approvals and cancel answer 409 meanwhile).
    if (isAdmin && e.flagReason) {
      card.querySelector('.stats').before(el('p', { class: 'warn', role: 'note', testid: 'escrow-flag' },
        t('escrows.flagged', { reason: e.flagReason })));
    } else if (heldWords) {
      // For its sender and recipient: why its money waits, and that an admin is on it.
      card.querySelector('.stats').before(el('p', { class: 'warn', role: 'note', testid: 'escrow-held' }, heldWords));
    }
    if (cancelWhy) {
      const why = el('p', { class: 'muted small', id: cancelWhyId, testid: 'cancel-why' }, cancelWhy);
      const row = card.querySelector('[data-testid="cancel-escrow"]');
      if (row && row.parentElement) row.parentElement.after(why);
    }
    const code = depositCode(e);
    if (e.status === 'pending_deposit') {
      card.querySelector('.stats').after(el('div', { class: 'code-box', testid: 'deposit-code-note' },
        el('p', { class: 'code-label' }, t('card.code')),
        el('p', { class: 'code-big mono', testid: 'deposit-code' }, code || e.depositReference || e.escrowId),
        el('p', { class: 'small' }, isAdmin ? t('escrows.codeAdmin') : t('escrows.codeTell'))));
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
    return JSON.stringify([open.history.has(id), open.audit.has(id), open.journal.has(id), open.cancel.has(id), open.token.has(id), open.flag.has(id),
      tokens.has(id) ? (tokens.get(id).token ? 'issued' : tokens.get(id).refused) : null, open.history.has(id) ? histories.get(id) || null : null, open.audit.has(id) ? audits.get(id) || null : null,
      open.journal.has(id) ? journals.get(id) || null : null, open.cancel.has(id) ? waiting.get(id) || null : null]);
  }

  async function refreshPanels(ids) {
    await Promise.all(ids.map(async (id) => {
      if (open.history.has(id)) {
        // The newest 200 (one page), said so when there are more (it showed 50 and said nothing).
        histories.set(id, await readAll('/payment-requests', { escrowId: id }, 200));
      }
      if (open.audit.has(id)) audits.set(id, await loadAudit(id));
      if (open.journal.has(id)) journals.set(id, await loadJournal(id, journals.get(id)));
      const e = escrowData.get(id);
      if (e && ctx.alive()) {
        const node = list.querySelector(`[data-key="${CSS.escape(id)}"]`);
        if (node && node.dataset.sig !== JSON.stringify(e) + panelSig(id)) rebuild(e);
      }
    }));
  }

  function updateSummary() {
    loaded = list.children.length;
    if (loaded) {
      summary.textContent = statusFilter
        ? tn(`count.escrows.${statusFilter}`, loaded)
        : tn('count.escrows.all', loaded);
    } else if (statusFilter) summary.textContent = t(`count.escrows.none.${statusFilter}`);
    else if (search.phone || search.ref) summary.textContent = t('escrows.noneFound');
    else summary.textContent = isAdmin ? t('escrows.noneAdmin') : t('escrows.none');
    const found = searchedFor(search);
    if (found) summary.textContent += ` ${found}`;
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
    if (open.cancel.size || searchRefused) return;
    // As many as were shown (read as one page of at most 100, the escrow acted on past them went).
    const asked = search;
    const items = await readAll('/escrows', { status: statusFilter, recipientPhone: search.phone, ref: search.ref }, Math.max(PAGE, loaded));
    // A newer search's answer is not overwritten by this one's.
    if (!ctx.alive() || search !== asked) return;
    cursor = items.nextCursor;
    patch(items);
    updateSummary();
    await refreshPanels(Array.from(new Set([...open.history, ...open.audit, ...open.journal])).filter((id) => escrowData.has(id)));
  }

  more.addEventListener('click', () => busy(more, async () => {
    const d = await api('GET', `/escrows${qs({ status: statusFilter, recipientPhone: search.phone, ref: search.ref, limit: PAGE, cursor })}`);
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
