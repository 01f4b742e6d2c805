// remit web UI: plain JavaScript, no build step, no dependencies.
// Talks only to the same-origin API. The bearer token lives in sessionStorage and in memory,
// never in the URL, the DOM or the console.
'use strict';

(function () {
  const TOKEN_KEY = 'remit.token';
  const REQUEST_FINAL = new Set(['paid', 'failed', 'rejected', 'cancelled']);
  const ESCROW_STATUSES = ['pending_deposit', 'active', 'completed', 'cancelled'];
  const PAGE = 20;

  const state = {
    token: null,
    me: null,
    view: null,
    cleanups: [],
    generation: 0,
  };

  // ---------------------------------------------------------------------------------------
  // DOM helpers

  let uidCounter = 0;
  function uid(prefix) {
    uidCounter += 1;
    return `${prefix}-${uidCounter}`;
  }

  function el(tag, props, ...kids) {
    const node = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') node.className = v;
        else if (k === 'testid') node.dataset.testid = v;
        else if (k === 'text') node.textContent = v;
        else if (k === 'dataset') Object.assign(node.dataset, v);
        else if (k === 'value') node.value = v;
        else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
        else if (v === true) node.setAttribute(k, '');
        else node.setAttribute(k, String(v));
      }
    }
    add(node, kids);
    return node;
  }

  function add(node, kids) {
    for (const k of [kids].flat(Infinity)) {
      if (k === null || k === undefined || k === false) continue;
      node.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function button(label, props = {}) {
    const cls = ['button', props.variant || 'secondary', props.small ? 'small' : ''].join(' ').trim();
    const p = { type: 'button', ...props, class: props.class ? `${cls} ${props.class}` : cls };
    delete p.variant;
    delete p.small;
    return el('button', p, label);
  }

  function field(opts) {
    const id = opts.id || uid('f');
    const attrs = {
      id,
      name: opts.name || opts.dataField,
      type: opts.type || 'text',
      testid: opts.testid,
      'data-field': opts.dataField,
      value: opts.value,
      autocomplete: opts.autocomplete || 'off',
      ...(opts.attrs || {}),
    };
    const input = opts.tag === 'select' ? el('select', attrs, opts.options || [])
      : opts.tag === 'textarea' ? el('textarea', { ...attrs, type: null, rows: 2 }) : el('input', attrs);
    let hint = null;
    if (opts.hint) {
      hint = el('p', { class: 'hint', id: `${id}-hint` }, opts.hint);
      input.setAttribute('aria-describedby', hint.id);
    }
    const label = el('label', { for: id }, opts.label,
      opts.optional ? el('span', { class: 'optional' }, ' (optional)') : null);
    const wrap = el('div', { class: `field ${opts.wrapClass || ''}`.trim() }, label, input, hint);
    return { wrap, input, label };
  }

  function formError() {
    return el('div', { class: 'form-error', role: 'alert', testid: 'form-error', hidden: true });
  }

  function statusBadge(status, testid) {
    return el('span', { class: `status status-${status}`, testid, dataset: { status } }, status);
  }

  function timeEl(iso) {
    if (!iso) return el('span', { class: 'muted' }, '—');
    return el('time', { datetime: iso, title: iso }, when(iso));
  }

  function dl(pairs, cls) {
    const list = el('dl', { class: cls || 'details' });
    for (const p of pairs) {
      if (!p) continue;
      const [term, value, testid] = p;
      list.append(el('div', { class: 'pair' }, el('dt', null, term), el('dd', { testid }, value)));
    }
    return list;
  }

  function emptyState(text, testid) {
    return el('p', { class: 'empty', testid: testid || 'empty' }, text);
  }

  // Replaces a node, moving keyboard focus to the equivalent element of the new one.
  function replaceKeepingFocus(oldNode, newNode) {
    const active = document.activeElement;
    let focusKey = null;
    if (active && oldNode.contains(active)) focusKey = active.dataset.testid || null;
    oldNode.replaceWith(newNode);
    if (focusKey) {
      const target = newNode.querySelector(`[data-testid="${CSS.escape(focusKey)}"]`);
      if (target) target.focus({ preventScroll: true });
    }
  }

  // Brings a container's children in line with items, rebuilding only those whose data changed.
  function patchList(container, items, keyOf, build, removeMissing = true) {
    const existing = new Map();
    for (const n of Array.from(container.children)) if (n.dataset.key) existing.set(n.dataset.key, n);
    let prev = null;
    for (const item of items) {
      const key = keyOf(item);
      const sig = JSON.stringify(item);
      let node = existing.get(key);
      existing.delete(key);
      if (!node || node.dataset.sig !== sig) {
        const fresh = build(item);
        fresh.dataset.key = key;
        fresh.dataset.sig = sig;
        if (node) replaceKeepingFocus(node, fresh);
        node = fresh;
      }
      const want = prev ? prev.nextSibling : container.firstChild;
      if (want !== node) container.insertBefore(node, want);
      prev = node;
    }
    if (removeMissing) for (const n of existing.values()) n.remove();
  }

  // ---------------------------------------------------------------------------------------
  // Formatting: money from integer minor units only.

  function groupThousands(digits) {
    return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  }

  function money(cents, currency) {
    if (cents === null || cents === undefined || cents === '' || !Number.isFinite(Number(cents))) return '—';
    let c = Math.trunc(Number(cents));
    const negative = c < 0;
    if (negative) c = -c;
    const minor = c % 100;
    const major = (c - minor) / 100;
    return `${currency} ${negative ? '-' : ''}${groupThousands(String(major))}.${String(minor).padStart(2, '0')}`;
  }
  const usd = (c) => money(c, 'USD');
  const kes = (c) => money(c, 'KES');

  // Cents as decimal text for an input (50000 → "500.00").
  function centsToInput(cents) {
    const c = Math.max(0, Math.trunc(Number(cents) || 0));
    const minor = c % 100;
    return `${(c - minor) / 100}.${String(minor).padStart(2, '0')}`;
  }

  // A rate as an integer of KES per USD × 10⁴.
  function rateE4(rate) {
    const n = Number(rate);
    return Number.isFinite(n) && n > 0 ? Math.round(n * 10000) : null;
  }

  function formatRate(e4) {
    if (!e4) return '—';
    const frac = String(e4 % 10000).padStart(4, '0').replace(/0{1,2}$/, '').replace(/(\d\d)0$/, '$1');
    return `${groupThousands(String(Math.floor(e4 / 10000)))}.${frac}`;
  }

  // USD cents for KES cents at a rate, rounded up: ceil(kesCents × 10⁴ / rateE4), integers only.
  function usdCentsForKes(kesCents, e4) {
    const a = BigInt(kesCents) * 10000n;
    const b = BigInt(e4);
    return Number((a + b - 1n) / b);
  }

  const dateFormat = new Intl.DateTimeFormat(undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
  function when(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : dateFormat.format(d);
  }

  function merchantText(account) {
    if (!account) return '—';
    if (account.type === 'paybill') {
      return `PayBill ${account.number || ''}${account.accountReference ? `, account ${account.accountReference}` : ''}`;
    }
    if (account.type === 'till') return `Till ${account.number || ''}`;
    if (account.type === 'phone') return `Phone ${account.number || ''}`;
    return `${account.type || ''} ${account.number || ''}`.trim();
  }

  // ---------------------------------------------------------------------------------------
  // API

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
      const m = /^([A-Za-z][A-Za-z0-9_]*(?:(?:\.[A-Za-z0-9_]+)|(?:\[\d+\]))*): ([\s\S]+)$/.exec(message || '');
      this.field = status === 400 && m ? m[1] : null;
      this.detail = m && status === 400 ? m[2] : message;
    }
  }

  function idempotencyKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  async function api(method, path, body, opts = {}) {
    const token = opts.token || state.token;
    if (!token) throw new ApiError(401, 'unauthenticated', 'You are signed out. Sign in again.');
    const generation = state.generation;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), opts.timeoutMs || 20000);
    let res;
    try {
      res = await fetch(path, {
        method,
        headers: {
          Authorization: `Bearer ${token}`,
          'Content-Type': 'application/json',
          'Idempotency-Key': opts.idempotencyKey || idempotencyKey(),
          Accept: 'application/json',
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
        credentials: 'same-origin',
        referrerPolicy: 'no-referrer',
        signal: controller.signal,
      });
    } catch (e) {
      throw new ApiError(0, 'network', e && e.name === 'AbortError'
        ? 'The server did not answer in time. Check the connection and try again.'
        : 'Could not reach the server. Check the connection and try again.');
    } finally {
      clearTimeout(timer);
    }
    const text = await res.text().catch(() => '');
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = null; }
    }
    if (!res.ok) {
      const message = data && typeof data.error === 'string' && data.error
        ? data.error
        : `The server answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}.`;
      const err = new ApiError(res.status, (data && data.code) || `http_${res.status}`, message);
      if (res.status === 401 && !opts.signingIn && generation === state.generation) {
        signOut('Your access token was not accepted any more. Sign in again.');
      }
      throw err;
    }
    if (generation !== state.generation) throw new ApiError(0, 'stale', 'Signed out.');
    return data;
  }

  function qs(params) {
    const parts = [];
    for (const [k, v] of Object.entries(params)) {
      if (v === null || v === undefined || v === '') continue;
      parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
    }
    return parts.length ? `?${parts.join('&')}` : '';
  }

  function errorText(err) {
    if (err instanceof ApiError) return err.message;
    return `Something went wrong in this page: ${err && err.message ? err.message : err}`;
  }

  // ---------------------------------------------------------------------------------------
  // Errors and notices

  function banner(id, text) {
    const node = document.getElementById(id);
    node.querySelector('.banner-text').textContent = text;
    node.hidden = false;
  }
  function hideBanner(id) {
    const node = document.getElementById(id);
    node.hidden = true;
    node.querySelector('.banner-text').textContent = '';
  }
  let noticeTimer = null;
  function notice(text, kind = 'ok') {
    document.getElementById('notice').className = `banner banner-${kind}`;
    banner('notice', text);
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => hideBanner('notice'), 10000);
  }
  function globalError(err) {
    if (err instanceof ApiError && (err.code === 'stale' || (err.status === 401 && !state.token))) return;
    banner('global-error', errorText(err));
  }

  function clearErrors(scope) {
    scope.querySelectorAll('.field-error').forEach((n) => n.remove());
    scope.querySelectorAll('[aria-invalid]').forEach((n) => {
      n.removeAttribute('aria-invalid');
      if (n.dataset.describedby !== undefined) {
        if (n.dataset.describedby) n.setAttribute('aria-describedby', n.dataset.describedby);
        else n.removeAttribute('aria-describedby');
        delete n.dataset.describedby;
      }
    });
    scope.querySelectorAll('.form-error').forEach((n) => { n.hidden = true; n.textContent = ''; });
  }

  function isShown(node) {
    return !node.closest('[hidden]') && !node.disabled;
  }

  // The input (or group) of this form that an API field name refers to: an exact data-field
  // match, else the longest data-field that the name continues (`categories[1].name` → `categories`).
  function inputForField(scope, fieldName) {
    const inputs = Array.from(scope.querySelectorAll('[data-field]')).filter(isShown);
    const exact = inputs.find((n) => n.dataset.field === fieldName);
    if (exact) return exact;
    let best = null;
    for (const n of inputs) {
      const f = n.dataset.field;
      if (fieldName.startsWith(f) && /[.[]/.test(fieldName.charAt(f.length))) {
        if (!best || f.length > best.dataset.field.length) best = n;
      }
    }
    return best;
  }

  function markField(input, text) {
    const id = `${input.id || uid('x')}-error`;
    const msg = el('p', { class: 'field-error', id, testid: 'field-error' }, text);
    if (input.dataset.describedby === undefined) input.dataset.describedby = input.getAttribute('aria-describedby') || '';
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', `${input.dataset.describedby} ${id}`.trim());
    if (input.tagName === 'FIELDSET') input.append(msg);
    else input.insertAdjacentElement('afterend', msg);
    return msg;
  }

  function showError(scope, err) {
    clearErrors(scope);
    if (err instanceof ApiError && err.field) {
      const input = inputForField(scope, err.field);
      if (input) {
        markField(input, input.dataset.field === err.field ? err.detail : err.message);
        const focusable = input.tagName === 'FIELDSET' ? input.querySelector('input, select, textarea') : input;
        if (focusable) focusable.focus();
        return;
      }
    }
    const box = scope.querySelector('.form-error');
    if (box) {
      box.textContent = errorText(err);
      box.hidden = false;
    } else {
      globalError(err);
    }
  }

  // Runs an async action from a form or button with its controls disabled meanwhile.
  async function busy(scope, fn) {
    if (scope.dataset.busy) return undefined;
    scope.dataset.busy = '1';
    scope.setAttribute('aria-busy', 'true');
    const controls = Array.from(scope.querySelectorAll('button, input, select, textarea'))
      .filter((n) => !n.disabled);
    if (scope.tagName === 'BUTTON') controls.push(scope);
    controls.forEach((n) => { n.disabled = true; });
    try {
      return await fn();
    } finally {
      controls.forEach((n) => { n.disabled = false; });
      delete scope.dataset.busy;
      scope.removeAttribute('aria-busy');
    }
  }

  function onSubmit(form, handler) {
    form.noValidate = true;
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (form.dataset.busy) return;
      clearErrors(form);
      // Each submit is one user action; api() gives each POST a fresh Idempotency-Key.
      busy(form, () => handler()).catch((err) => showError(form, err));
    });
  }

  // ---------------------------------------------------------------------------------------
  // Timers owned by the current view; stopped when the view changes or the user signs out.

  function ctxFor(generation) {
    const ctx = {
      alive: () => generation === state.generation && !ctx.dead,
      dead: false,
      cleanup(fn) { state.cleanups.push(fn); },
      // Calls fn every ms (never overlapping), skipping while the tab is hidden.
      every(ms, fn, { limitMs = 60 * 60 * 1000, slowAfterMs = 0, slowMs = 0 } = {}) {
        const started = Date.now();
        let timer = null;
        let stopped = false;
        const tick = async () => {
          if (stopped || !ctx.alive()) return;
          const elapsed = Date.now() - started;
          if (elapsed > limitMs) return;
          if (!document.hidden) {
            try { await fn(); } catch (err) { if (ctx.alive()) globalError(err); }
          }
          if (stopped || !ctx.alive()) return;
          timer = setTimeout(tick, slowAfterMs && elapsed > slowAfterMs ? slowMs : ms);
        };
        timer = setTimeout(tick, ms);
        const stop = () => { stopped = true; clearTimeout(timer); };
        ctx.cleanup(stop);
        return stop;
      },
    };
    state.cleanups.push(() => { ctx.dead = true; });
    return ctx;
  }

  function runCleanups() {
    const fns = state.cleanups;
    state.cleanups = [];
    for (const fn of fns) {
      try { fn(); } catch (_) { /* ignore */ }
    }
  }

  // ---------------------------------------------------------------------------------------
  // Shared components

  function barLegend() {
    return el('ul', { class: 'legend', 'aria-label': 'Bar colours' },
      ['remaining', 'reserved', 'spent', 'refunded'].map((k) =>
        el('li', null, el('span', { class: `swatch seg-${k}`, 'aria-hidden': 'true' }), k)));
  }

  function stackedBar(total, parts) {
    const bar = el('div', { class: 'bar', 'aria-hidden': 'true' });
    const t = Number(total) || 0;
    for (const [name, cents] of parts) {
      const c = Number(cents) || 0;
      if (c <= 0 || t <= 0) continue;
      const seg = el('span', { class: `seg seg-${name}` });
      seg.style.width = `${Math.max(0.5, (c / t) * 100).toFixed(3)}%`;
      bar.append(seg);
    }
    return bar;
  }

  function categoryBlock(c) {
    const parts = [
      ['remaining', c.remainingUsdCents], ['reserved', c.reservedUsdCents],
      ['spent', c.spentUsdCents], ['refunded', c.refundedUsdCents],
    ];
    return el('div', { class: 'category', testid: 'category', dataset: { category: c.name } },
      el('div', { class: 'category-head' },
        el('span', { class: 'category-name' }, c.name),
        el('span', { class: 'muted' }, 'allocated ', el('span', { testid: 'cat-allocated' }, usd(c.allocatedUsdCents)))),
      stackedBar(c.allocatedUsdCents, parts),
      el('ul', { class: 'numbers' },
        parts.map(([name, cents]) => (name === 'refunded' && !Number(cents) ? null
          : el('li', { class: `num-${name}` }, `${name} `, el('strong', { testid: `cat-${name}` }, usd(cents)))))));
  }

  function escrowCard(e, opts = {}) {
    const headingId = uid('esc');
    const due = Math.max(0, (Number(e.totalAmountUsdCents) || 0) - (Number(e.depositedUsdCents) || 0));
    const r = e.recipient || {};
    const card = el('article', {
      class: `card escrow escrow-${e.status}`, testid: 'escrow-card', 'aria-labelledby': headingId,
      dataset: { escrowId: e.escrowId, status: e.status },
    });
    card.append(
      el('header', { class: 'card-head' },
        el('div', null,
          el('h3', { id: headingId, class: 'card-title' },
            el('span', { testid: 'recipient-name' }, r.name || 'Recipient'),
            r.phone ? el('span', { class: 'phone', testid: 'recipient-phone' }, r.phone) : null),
          el('p', { class: 'muted small mono' },
            el('span', { testid: 'escrow-id' }, e.escrowId), ' · created ', timeEl(e.createdAt))),
        statusBadge(e.status, 'escrow-status')),
      dl([
        ['Total', usd(e.totalAmountUsdCents), 'escrow-total'],
        e.status === 'pending_deposit' ? ['Deposited', usd(e.depositedUsdCents), 'escrow-deposited'] : null,
        e.status === 'pending_deposit' ? ['Still due', usd(due), 'escrow-due'] : null,
        ['Remaining', usd(e.remainingUsdCents), 'escrow-remaining'],
        ['Reserved', usd(e.reservedUsdCents), 'escrow-reserved'],
        ['Spent', usd(e.spentUsdCents), 'escrow-spent'],
        Number(e.refundedUsdCents) ? ['Refunded', usd(e.refundedUsdCents), 'escrow-refunded'] : null,
        e.dailyLimitUsdCents !== null && e.dailyLimitUsdCents !== undefined ? ['Daily limit', usd(e.dailyLimitUsdCents), 'escrow-daily-limit'] : null,
        e.dailyLimitUsdCents !== null && e.dailyLimitUsdCents !== undefined ? ['Approved today', usd(e.approvedTodayUsdCents || 0), 'escrow-approved-today'] : null,
      ], 'stats'),
      el('div', { class: 'categories' }, (e.categories || []).map(categoryBlock)),
    );
    if (opts.actions && opts.actions.length) card.append(el('div', { class: 'actions card-actions' }, opts.actions));
    card.append(el('div', { class: 'card-error form-error', role: 'alert', testid: 'card-error', hidden: true }));
    if (opts.panels) card.append(...opts.panels);
    return card;
  }

  function payoutBlock(p) {
    if (!p) return null;
    return el('div', { class: `payout payout-${p.status}`, testid: 'payout' },
      el('div', { class: 'payout-head' }, el('span', { class: 'muted' }, 'Payout '),
        statusBadge(p.status, 'payout-status'),
        p.flagged ? el('span', { class: 'flag', testid: 'payout-flagged' }, 'flagged') : null),
      dl([
        p.mpesaReceipt ? ['M-Pesa receipt', el('span', { class: 'mono receipt' }, p.mpesaReceipt), 'receipt'] : null,
        p.resultDesc ? ['Result', p.resultDesc, 'payout-result'] : null,
        p.flagged && p.flagReason ? ['Flag', p.flagReason, 'payout-flag-reason'] : null,
        p.settledAt ? ['Settled', timeEl(p.settledAt)] : (p.sentAt ? ['Sent', timeEl(p.sentAt)] : null),
      ]));
  }

  function requestCard(r, opts = {}) {
    const card = el('article', {
      class: `card request request-${r.status}`, testid: opts.testid || 'request-card',
      dataset: { requestId: r.paymentRequestId, status: r.status },
    });
    add(card, [
      el('header', { class: 'card-head' },
        el('div', null,
          el('h3', { class: 'card-title amount' },
            el('span', { testid: 'request-amount-kes' }, kes(r.amountKesCents)),
            el('span', { class: 'muted usd-twin' }, ' = ', el('span', { testid: 'request-amount-usd' }, usd(r.amountUsdCents)))),
          el('p', { class: 'muted small' },
            opts.context ? [opts.context, ' · '] : null,
            el('span', { class: 'mono', testid: 'request-id' }, r.paymentRequestId))),
        statusBadge(r.status, 'request-status')),
      dl([
        ['Category', r.category || '—', 'request-category'],
        ['Merchant', [r.merchantName || '—', el('br'), el('span', { class: 'muted' }, merchantText(r.merchantAccount))], 'request-merchant'],
        r.exchangeRate ? ['Rate', `KES ${formatRate(rateE4(r.exchangeRate))} per USD`] : null,
        ['Requested', timeEl(r.createdAt)],
        r.decidedAt ? ['Decided', timeEl(r.decidedAt)] : null,
        r.note ? ['Note', r.note, 'request-note'] : null,
        r.reason ? ['Reason', r.reason, 'request-reason'] : null,
      ]),
      payoutBlock(r.payout),
    ]);
    if (opts.extra) card.append(opts.extra);
    if (opts.actions && opts.actions.length) card.append(el('div', { class: 'actions card-actions' }, opts.actions));
    card.append(el('div', { class: 'card-error form-error', role: 'alert', testid: 'card-error', hidden: true }));
    return card;
  }

  function requestRow(r) {
    return el('li', { class: `request-row request-${r.status}`, testid: 'request-row', dataset: { requestId: r.paymentRequestId, status: r.status } },
      el('div', { class: 'row-main' },
        el('strong', { testid: 'request-amount-kes' }, kes(r.amountKesCents)),
        el('span', { class: 'muted' }, ' = ', el('span', { testid: 'request-amount-usd' }, usd(r.amountUsdCents))),
        el('span', { class: 'row-sep' }, ' · '), el('span', { testid: 'request-category' }, r.category),
        el('span', { class: 'row-sep' }, ' · '), el('span', null, r.merchantName || merchantText(r.merchantAccount))),
      el('div', { class: 'row-meta' },
        statusBadge(r.status, 'request-status'),
        r.payout ? [el('span', { class: 'muted' }, ' payout '), statusBadge(r.payout.status, 'payout-status')] : null,
        r.payout && r.payout.mpesaReceipt ? [el('span', { class: 'muted' }, ' receipt '), el('span', { class: 'mono receipt', testid: 'receipt' }, r.payout.mpesaReceipt)] : null,
        r.payout && r.payout.flagged ? el('span', { class: 'flag' }, 'flagged') : null,
        r.reason ? el('span', { class: 'muted' }, ` · ${r.reason}`) : null,
        el('span', { class: 'muted' }, ' · '), timeEl(r.createdAt)));
  }

  const STEP_LABEL = { pending_approval: 'pending_approval', approved: 'approved', paid: 'paid', failed: 'failed', rejected: 'rejected', cancelled: 'cancelled' };

  function stepsFor(status) {
    let path;
    if (status === 'rejected' || status === 'cancelled') path = ['pending_approval', status];
    else path = ['pending_approval', 'approved', status === 'failed' ? 'failed' : 'paid'];
    const at = path.indexOf(status);
    return el('ol', { class: 'steps', 'aria-label': 'Progress' }, path.map((s, i) =>
      el('li', { class: `step ${i < at ? 'done' : ''} ${i === at ? `current step-${s}` : ''}`.trim(), 'aria-current': i === at ? 'step' : null },
        STEP_LABEL[s])));
  }

  // A payment request being watched until it is paid, failed, rejected or cancelled.
  function tracker(ctx, initial, opts = {}) {
    let current = initial;
    const live = el('p', { class: 'visually-hidden', 'aria-live': 'polite' });
    const body = el('div');
    const node = el('section', { class: 'tracker', testid: 'tracker', dataset: { requestId: initial.paymentRequestId } }, live, body);
    let lastStatus = null;

    function render() {
      node.dataset.status = current.status;
      const actions = [];
      if (opts.canCancel && current.status === 'pending_approval') {
        actions.push(button('Cancel request', {
          testid: 'cancel-request',
          onclick: (ev) => {
            const btn = ev.currentTarget;
            const card = btn.closest('.card');
            busy(btn, async () => {
              const r = await api('POST', `/payment-requests/${encodeURIComponent(current.paymentRequestId)}/cancel`, {});
              if (r && r.status) update(r);
              else await poll();
            }).catch((err) => showError(card, err));
          },
        }));
      }
      const waiting = current.status === 'pending_approval' ? 'Waiting for the sender to approve.'
        : current.status === 'approved' ? 'Approved. Waiting for the M-Pesa result.' : null;
      const card = requestCard(current, { context: opts.context, actions, testid: 'tracked-request' });
      replaceKeepingFocus(body.firstChild || body.appendChild(el('span')), el('div', null,
        stepsFor(current.status),
        waiting ? el('p', { class: 'muted small waiting' }, el('span', { class: 'spinner', 'aria-hidden': 'true' }), waiting) : null,
        card));
      if (current.status !== lastStatus) {
        live.textContent = `Request ${current.status}`;
        lastStatus = current.status;
      }
    }

    function update(r) {
      const prev = current.status;
      current = { ...current, ...r };
      render();
      if (opts.onChange && prev !== current.status) opts.onChange(current);
      if (REQUEST_FINAL.has(current.status)) {
        stop();
        if (opts.onFinal) opts.onFinal(current);
      }
    }

    async function poll() {
      const r = await api('GET', `/payment-requests/${encodeURIComponent(current.paymentRequestId)}`);
      if (JSON.stringify(r) !== JSON.stringify(current)) update(r);
    }

    render();
    let stop = () => {};
    if (!REQUEST_FINAL.has(current.status)) {
      stop = ctx.every(1000, poll, { slowAfterMs: 3 * 60 * 1000, slowMs: 5000, limitMs: 60 * 60 * 1000 });
      poll().catch((err) => { if (ctx.alive()) globalError(err); });
    }
    return { node, get current() { return current; } };
  }

  function auditTable(items) {
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

  async function loadAudit(entity) {
    const data = await api('GET', `/audit${qs({ entity })}`);
    return (data && data.items) || [];
  }

  const JOURNAL_KIND = {
    deposit: 'Deposit',
    activation: 'Activation',
    approval: 'Approval (reserved)',
    payout_succeeded: 'Payout succeeded',
    payout_failed: 'Payout failed (returned)',
    cancellation: 'Cancellation (refunded)',
  };

  const accountText = (x) => (x.category ? `${x.category}: ${x.account}` : x.account);

  // A journal transaction's entries as movements ("electricity: available → reserved USD 10.00"):
  // a debit and a credit of one category pair up; the rest flow from a single source or into a
  // single destination; anything else is listed entry by entry with its sign.
  function journalMovements(entries) {
    const out = [];
    const rest = [];
    const byCategory = new Map();
    for (const x of entries) {
      const k = x.category || '';
      if (!byCategory.has(k)) byCategory.set(k, []);
      byCategory.get(k).push(x);
    }
    for (const [k, group] of byCategory) {
      const from = group.filter((x) => x.amountUsdCents < 0);
      const to = group.filter((x) => x.amountUsdCents > 0);
      if (k && group.length === 2 && from.length === 1 && to.length === 1 && from[0].amountUsdCents === -to[0].amountUsdCents) {
        out.push(`${k}: ${from[0].account} → ${to[0].account} ${usd(to[0].amountUsdCents)}`);
      } else rest.push(...group);
    }
    const from = rest.filter((x) => x.amountUsdCents < 0);
    const to = rest.filter((x) => x.amountUsdCents > 0);
    if (from.length === 1) for (const x of to) out.push(`${accountText(from[0])} → ${accountText(x)} ${usd(x.amountUsdCents)}`);
    else if (to.length === 1) for (const x of from) out.push(`${accountText(x)} → ${accountText(to[0])} ${usd(-x.amountUsdCents)}`);
    else for (const x of rest) out.push(`${accountText(x)} ${x.amountUsdCents > 0 ? '+' : ''}${usd(x.amountUsdCents)}`);
    return out;
  }

  function journalTable(journal) {
    if (!journal.items.length) return emptyState('No journal transactions yet.', 'journal-empty');
    return el('div', null,
      el('div', { class: 'table-wrap' },
        el('table', { class: 'table journal', testid: 'journal-table' },
          el('thead', null, el('tr', null, ['#', 'At', 'Transaction', 'Movement'].map((h) => el('th', { scope: 'col' }, h)))),
          el('tbody', null, journal.items.map((t) => el('tr', { testid: 'journal-row', dataset: { kind: t.kind } },
            el('td', { class: 'mono' }, String(t.transactionId)),
            el('td', null, timeEl(t.createdAt)),
            el('td', null, el('span', { testid: 'journal-kind' }, JOURNAL_KIND[t.kind] || t.kind), el('br'),
              el('span', { class: 'mono muted small' }, t.reference)),
            el('td', null, el('ul', { class: 'kv', testid: 'journal-movements' },
              journalMovements(t.entries || []).map((m) => el('li', null, m))))))))),
      journal.more ? el('p', { class: 'muted small' }, `Showing the first ${journal.items.length} transactions.`) : null);
  }

  // Oldest first, following nextCursor for at most 10 pages.
  async function loadJournal(escrowId) {
    const items = [];
    let cursor = null;
    for (let page = 0; page < 10; page += 1) {
      const data = await api('GET', `/escrows/${encodeURIComponent(escrowId)}/journal${qs({ cursor })}`);
      items.push(...((data && data.items) || []));
      cursor = (data && data.nextCursor) || null;
      if (!cursor) break;
    }
    return { items, more: Boolean(cursor) };
  }

  // ---------------------------------------------------------------------------------------
  // Sign in / out

  async function signIn(token, { remember = true } = {}) {
    const me = await api('GET', '/me', undefined, { token, signingIn: true });
    if (!me || !me.role) throw new ApiError(0, 'bad_answer', 'The server did not say who this token belongs to.');
    state.generation += 1;
    state.token = token;
    state.me = me;
    if (remember) sessionStorage.setItem(TOKEN_KEY, token);
    startApp();
  }

  function signOut(message) {
    runCleanups();
    state.generation += 1;
    state.token = null;
    state.me = null;
    state.view = null;
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (_) { /* ignore */ }
    clear(document.getElementById('app')).hidden = true;
    clear(document.getElementById('nav')).hidden = true;
    document.getElementById('session').hidden = true;
    document.getElementById('whoami').textContent = '';
    hideBanner('global-error');
    hideBanner('notice');
    if (location.hash) history.replaceState(null, '', location.pathname);
    showSignIn(message);
  }

  function showSignIn(message) {
    const section = document.getElementById('signin');
    section.hidden = false;
    const form = document.getElementById('signin-form');
    clearErrors(form);
    const input = document.getElementById('token-input');
    input.value = '';
    if (message) {
      const box = form.querySelector('.form-error');
      box.textContent = message;
      box.hidden = false;
    }
    input.focus();
  }

  function setupSignIn() {
    const form = document.getElementById('signin-form');
    const input = document.getElementById('token-input');
    onSubmit(form, async () => {
      const token = input.value.trim();
      if (!token) {
        markField(input, 'Paste your access token.');
        input.focus();
        return;
      }
      try {
        await signIn(token);
        input.value = '';
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) {
          throw new ApiError(0, 'unauthenticated', 'That token was not accepted. Check that you pasted all of it, or ask an admin for a new one.');
        }
        throw err;
      }
    });
    document.getElementById('sign-out').addEventListener('click', () => signOut('You signed out.'));
    for (const id of ['global-error', 'notice']) {
      document.querySelector(`#${id} .banner-close`).addEventListener('click', () => hideBanner(id));
    }
  }

  // ---------------------------------------------------------------------------------------
  // Navigation

  const NAV = {
    sender: [['approvals', 'Approvals'], ['escrows', 'Escrows'], ['new-escrow', 'New escrow']],
    agent: [['payments', 'Payments'], ['deposits', 'Deposits']],
    recipient: [['mine', 'My escrows']],
    admin: [['overview', 'Overview'], ['escrows', 'Escrows'], ['users', 'Users and tokens']],
  };

  function startApp() {
    document.getElementById('signin').hidden = true;
    hideBanner('global-error');
    const me = state.me;
    document.getElementById('whoami').textContent = `${me.name || me.userId} · ${me.role}`;
    document.getElementById('session').hidden = false;
    const nav = clear(document.getElementById('nav'));
    for (const [name, label] of NAV[me.role] || []) {
      nav.append(el('a', { href: `#/${name}`, class: 'nav-link', testid: `nav-${name}`, dataset: { view: name } }, label));
    }
    nav.hidden = false;
    document.getElementById('app').hidden = false;
    route(true);
  }

  function route(fromNavigation) {
    if (!state.me) return;
    const items = NAV[state.me.role] || [];
    const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
    let [name, arg] = parts;
    const allowed = new Set(items.map(([n]) => n));
    if ((state.me.role === 'agent' || state.me.role === 'recipient') && name === 'request' && arg) allowed.add('request');
    if (!allowed.has(name)) {
      name = items.length ? items[0][0] : '';
      arg = undefined;
      history.replaceState(null, '', `#/${name}`);
    }
    showView(name, arg, fromNavigation === true);
  }

  function showView(name, arg, moveFocus) {
    runCleanups();
    hideBanner('global-error');
    state.view = name;
    const navName = name === 'request' ? (state.me.role === 'agent' ? 'payments' : 'mine') : name;
    document.querySelectorAll('#nav .nav-link').forEach((a) => {
      if (a.dataset.view === navName) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    });
    const root = clear(document.getElementById('app'));
    root.dataset.view = name;
    const ctx = ctxFor(state.generation);
    const views = {
      approvals: viewApprovals,
      escrows: viewEscrows,
      'new-escrow': viewNewEscrow,
      payments: (r, c) => viewFind(r, c, 'active'),
      deposits: (r, c) => viewFind(r, c, 'pending_deposit'),
      mine: (r, c) => viewFind(r, c, null),
      request: (r, c) => viewRequest(r, c, arg),
      overview: viewOverview,
      users: viewUsers,
    };
    const fn = views[name];
    if (!fn) return;
    Promise.resolve(fn(root, ctx)).catch((err) => { if (ctx.alive()) globalError(err); });
    if (moveFocus) {
      const h = root.querySelector('h1');
      if (h) h.focus({ preventScroll: true });
      window.scrollTo(0, 0);
    }
  }

  function pageHead(title, intro, extra) {
    return el('div', { class: 'page-head' },
      el('div', null, el('h1', { tabindex: '-1' }, title), intro ? el('p', { class: 'muted intro' }, intro) : null),
      extra ? el('div', { class: 'actions' }, extra) : null);
  }

  // ---------------------------------------------------------------------------------------
  // Sender: approvals

  async function viewApprovals(root, ctx) {
    const decided = el('div', { class: 'stack', testid: 'decided-list' });
    const decidedSection = el('section', { class: 'section', hidden: true, 'aria-labelledby': 'decided-h' },
      el('h2', { id: 'decided-h' }, 'Just decided'), decided);
    const list = el('div', { class: 'stack', testid: 'pending-list' });
    const count = el('p', { class: 'muted', testid: 'pending-count', 'aria-live': 'polite' }, 'Loading…');
    root.append(
      pageHead('Approvals', 'Payment requests on your escrows that wait for your decision. Approved requests are paid out at once over M-Pesa.',
        button('Refresh', { testid: 'refresh', onclick: () => load().catch(globalError) })),
      decidedSection,
      el('section', { class: 'section', 'aria-labelledby': 'pending-h' }, el('h2', { id: 'pending-h' }, 'pending_approval'), count, list));

    const escrows = new Map();
    const rejecting = new Set();

    function context(r) {
      const e = escrows.get(r.escrowId);
      return e && e.recipient ? `for ${e.recipient.name}` : null;
    }

    function build(r) {
      const e = escrows.get(r.escrowId);
      const cat = e && (e.categories || []).find((c) => c.name === r.category);
      let extra = null;
      if (cat) {
        const short = Number(r.amountUsdCents) > Number(cat.remainingUsdCents);
        extra = el('p', { class: `balance-note ${short ? 'warn' : ''}`, testid: 'balance-note' },
          `${r.category} has ${usd(cat.remainingUsdCents)} remaining`,
          e.dailyLimitUsdCents !== null && e.dailyLimitUsdCents !== undefined
            ? `; today ${usd(e.approvedTodayUsdCents || 0)} of the ${usd(e.dailyLimitUsdCents)} daily limit is approved` : '',
          short ? '. Not enough to approve this request.' : '.');
      }
      const approve = button('Approve', { variant: 'primary', testid: 'approve' });
      const reject = button('Reject', { testid: 'reject' });
      const card = requestCard(r, { context: context(r), extra, actions: [approve, reject] });
      const rejectForm = el('form', { class: 'inline-form', testid: 'reject-form', hidden: true });
      const reason = field({ label: 'Reason for rejecting', dataField: 'reason', testid: 'reject-reason', hint: 'The requester sees this reason.' });
      rejectForm.append(reason.wrap, formError(), el('div', { class: 'actions' },
        el('button', { type: 'submit', class: 'button danger', testid: 'confirm-reject' }, 'Reject request'),
        button('Keep it', { testid: 'cancel-reject', onclick: () => { rejectForm.hidden = true; reject.hidden = false; rejecting.delete(r.paymentRequestId); reject.focus(); } })));
      card.append(rejectForm);

      approve.addEventListener('click', () => {
        busy(card, async () => {
          clearErrors(card);
          const res = await api('POST', `/payment-requests/${encodeURIComponent(r.paymentRequestId)}/approve`, {});
          moveToDecided({ ...r, ...(res || {}), status: (res && res.status) || 'approved' });
          notice(`Approved ${kes(r.amountKesCents)} to ${r.merchantName || 'the merchant'}. The payout is on its way.`);
        }).catch((err) => {
          showError(card, err);
          if (err instanceof ApiError && err.code === 'invalid_state') load().catch(() => {});
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
        const res = await api('POST', `/payment-requests/${encodeURIComponent(r.paymentRequestId)}/reject`, text ? { reason: text } : {});
        rejecting.delete(r.paymentRequestId);
        moveToDecided({ ...r, ...(res || {}), status: (res && res.status) || 'rejected' });
        notice(`Rejected ${kes(r.amountKesCents)} to ${r.merchantName || 'the merchant'}.`);
      });
      return card;
    }

    function moveToDecided(decidedRequest) {
      const { _escrow, ...r } = decidedRequest;
      const old = list.querySelector(`[data-key="${CSS.escape(r.paymentRequestId)}"]`);
      if (old) old.remove();
      const t = tracker(ctx, r, {
        context: context(r),
        onFinal: (f) => {
          if (f.status === 'paid') notice(`Paid: ${kes(f.amountKesCents)} to ${f.merchantName || 'the merchant'}${f.payout && f.payout.mpesaReceipt ? `, M-Pesa receipt ${f.payout.mpesaReceipt}` : ''}.`);
          else if (f.status === 'failed') notice(`The payout of ${kes(f.amountKesCents)} to ${f.merchantName || 'the merchant'} failed. ${usd(f.amountUsdCents)} went back to ${f.category}.`, 'warn');
        },
      });
      decided.prepend(t.node);
      decidedSection.hidden = false;
      updateCount(list.children.length);
      const h = decidedSection.querySelector('h2');
      if (h) h.scrollIntoView({ block: 'nearest' });
    }

    function updateCount(n) {
      count.textContent = n === 0 ? 'Nothing waits for your approval.' : `${n} request${n === 1 ? '' : 's'} waiting.`;
      const link = document.querySelector('#nav [data-view="approvals"]');
      if (link) link.textContent = n ? `Approvals (${n})` : 'Approvals';
    }

    async function load() {
      if (rejecting.size) return;
      const [reqs, esc] = await Promise.all([
        api('GET', `/payment-requests${qs({ status: 'pending_approval', limit: 100 })}`),
        api('GET', `/escrows${qs({ limit: 100 })}`),
      ]);
      if (!ctx.alive()) return;
      escrows.clear();
      for (const e of (esc && esc.items) || []) escrows.set(e.escrowId, e);
      const items = ((reqs && reqs.items) || []).filter((r) => r.status === 'pending_approval');
      // Rebuild a card when its escrow's balances change too.
      const withEscrow = items.map((r) => ({ ...r, _escrow: escrows.get(r.escrowId) || null }));
      patchList(list, withEscrow, (r) => r.paymentRequestId, (r) => build(r));
      updateCount(items.length);
    }

    await load();
    ctx.every(4000, load);
  }

  // ---------------------------------------------------------------------------------------
  // Sender and admin: escrows

  async function viewEscrows(root, ctx) {
    const isAdmin = state.me.role === 'admin';
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

  // ---------------------------------------------------------------------------------------
  // Sender: new escrow

  function viewNewEscrow(root) {
    const form = el('form', { class: 'form card', testid: 'escrow-form', 'aria-labelledby': 'new-escrow-h' });
    const phone = field({ label: 'Recipient phone', dataField: 'recipientPhone', testid: 'recipient-phone', type: 'tel', hint: 'A Kenyan mobile number, e.g. 0712345678.', autocomplete: 'off' });
    const name = field({ label: 'Recipient name', dataField: 'recipientName', testid: 'recipient-name' });
    const total = field({ label: 'Total amount (USD)', dataField: 'totalAmountUsd', testid: 'total-amount', attrs: { inputmode: 'decimal' }, hint: 'For example 500 or 500.25.' });
    const limit = field({ label: 'Daily limit (USD)', optional: true, dataField: 'dailyLimitUsd', testid: 'daily-limit', attrs: { inputmode: 'decimal' }, hint: 'The most you allow to be approved per day (Nairobi time).' });

    const modeName = uid('mode');
    const modeEven = el('input', { type: 'radio', name: modeName, id: `${modeName}-even`, value: 'even', checked: true, testid: 'categories-mode-even' });
    const modeAmounts = el('input', { type: 'radio', name: modeName, id: `${modeName}-amounts`, value: 'amounts', testid: 'categories-mode-amounts' });
    const names = field({ label: 'Category names', dataField: 'categories', testid: 'categories-names', hint: 'Separated by commas, e.g. electricity, water, school_fees. Lowercase letters, digits and _. The total is split evenly.', attrs: { spellcheck: 'false' } });
    const rows = el('div', { class: 'category-rows', testid: 'category-rows' });
    const addRow = button('Add category', { small: true, testid: 'add-category-row' });
    const amountsBox = el('fieldset', { class: 'subfield', hidden: true, 'data-field': 'categories' },
      el('legend', null, 'Categories with amounts'),
      el('p', { class: 'hint' }, 'The amounts must add up to the total.'), rows, addRow);
    const evenBox = el('div', null, names.wrap);

    function row(nameVal, amountVal) {
      const i = rows.children.length;
      const n = field({ label: 'Name', dataField: `categories[${i}].name`, testid: 'category-row-name', value: nameVal || '', wrapClass: 'grow', attrs: { spellcheck: 'false' } });
      const a = field({ label: 'Amount (USD)', dataField: `categories[${i}].amountUsd`, testid: 'category-row-amount', value: amountVal || '', attrs: { inputmode: 'decimal' } });
      const remove = button('Remove', { small: true, testid: 'remove-category-row', 'aria-label': 'Remove this category' });
      const r = el('div', { class: 'category-row' }, n.wrap, a.wrap, el('div', { class: 'field end' }, remove));
      remove.addEventListener('click', () => {
        r.remove();
        Array.from(rows.children).forEach((child, j) => {
          const [ni, ai] = child.querySelectorAll('input');
          ni.dataset.field = `categories[${j}].name`;
          ai.dataset.field = `categories[${j}].amountUsd`;
        });
        addRow.focus();
      });
      rows.append(r);
      return n.input;
    }
    row();
    row();
    addRow.addEventListener('click', () => row().focus());

    function syncMode() {
      const amounts = modeAmounts.checked;
      amountsBox.hidden = !amounts;
      evenBox.hidden = amounts;
    }
    modeEven.addEventListener('change', syncMode);
    modeAmounts.addEventListener('change', syncMode);

    const result = el('div', { 'aria-live': 'polite' });
    form.append(
      el('div', { class: 'grid-2' }, phone.wrap, name.wrap, total.wrap, limit.wrap),
      el('fieldset', { class: 'subfield' },
        el('legend', null, 'Categories'),
        el('div', { class: 'radios' },
          el('label', { for: modeEven.id, class: 'radio' }, modeEven, ' Split the total evenly'),
          el('label', { for: modeAmounts.id, class: 'radio' }, modeAmounts, ' Set an amount per category')),
        evenBox, amountsBox),
      formError(),
      el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'button primary', testid: 'create-escrow' }, 'Create escrow')));

    onSubmit(form, async () => {
      const body = {};
      const put = (k, v) => { const t = v.trim(); if (t !== '') body[k] = t; };
      put('recipientPhone', phone.input.value);
      put('recipientName', name.input.value);
      put('totalAmountUsd', total.input.value);
      if (modeAmounts.checked) {
        body.categories = Array.from(rows.children).map((r) => {
          const [ni, ai] = r.querySelectorAll('input');
          const o = { name: ni.value.trim() };
          if (ai.value.trim() !== '') o.amountUsd = ai.value.trim();
          return o;
        }).filter((o) => o.name !== '' || o.amountUsd !== undefined);
      } else {
        body.categories = names.input.value.split(',').map((s) => s.trim()).filter(Boolean);
      }
      put('dailyLimitUsd', limit.input.value);
      const e = await api('POST', '/escrows', body);
      clear(result).append(el('div', { class: 'card success', testid: 'created-escrow', dataset: { escrowId: e.escrowId } },
        el('h2', null, 'Escrow created'),
        dl([
          ['Escrow', el('span', { class: 'mono', testid: 'created-escrow-id' }, e.escrowId)],
          ['Status', statusBadge(e.status, 'created-escrow-status')],
          ['Total', usd(e.totalAmountUsdCents), 'created-escrow-total'],
          ['Deposit reference', el('span', { class: 'mono' }, e.depositReference || e.escrowId), 'created-deposit-reference'],
        ]),
        el('p', { class: 'muted' }, 'Give the deposit reference with the money (cash at a kiosk agent, or card). The escrow becomes active once the deposit covers the total.'),
        el('div', { class: 'actions' }, el('a', { class: 'button secondary', href: '#/escrows', testid: 'go-escrows' }, 'See your escrows'))));
      form.reset();
      rows.replaceChildren();
      row();
      row();
      syncMode();
      notice('Escrow created.');
      result.querySelector('h2').setAttribute('tabindex', '-1');
      result.querySelector('h2').focus();
    });

    root.append(pageHead('New escrow', 'Put money aside for a recipient in Kenya, earmarked by category. They (or a kiosk agent for them) ask for payments; you approve each one.'),
      el('h2', { id: 'new-escrow-h', class: 'visually-hidden' }, 'New escrow form'), result, form);
  }

  // ---------------------------------------------------------------------------------------
  // Agent and recipient: find an escrow

  async function viewFind(root, ctx, status) {
    const role = state.me.role;
    const isAgent = role === 'agent';
    const title = status === 'active' ? 'Payments' : status === 'pending_deposit' ? 'Deposits' : 'My escrows';
    const intro = status === 'active' ? 'Active escrows. Find the recipient\u2019s escrow, then make a payment request for them.'
      : status === 'pending_deposit' ? 'Escrows waiting for their deposit (status pending_deposit). Record cash received at this kiosk.'
        : 'Your escrows. Pick an active one to ask for a payment.';
    const list = el('div', { class: 'stack', testid: 'escrow-list' });
    const summary = el('p', { class: 'muted', 'aria-live': 'polite', testid: 'escrow-summary' }, 'Loading…');
    const more = button('Load more', { testid: 'load-more', hidden: true });
    const depositOpen = new Set();
    const escrowData = new Map();
    let phoneFilter = '';
    let cursor = null;

    root.append(pageHead(title, intro, button('Refresh', { testid: 'refresh', onclick: () => load(false).catch(globalError) })));

    if (isAgent) {
      const form = el('form', { class: 'card toolbar search', role: 'search', testid: 'search-form' });
      const phone = field({ label: 'Recipient phone', dataField: 'recipientPhone', testid: 'search-phone', type: 'tel', hint: 'e.g. 0712345678', wrapClass: 'grow' });
      form.append(phone.wrap, el('div', { class: 'actions end' },
        el('button', { type: 'submit', class: 'button primary', testid: 'search-submit' }, 'Search'),
        button('Show all', { testid: 'search-clear', onclick: () => { phone.input.value = ''; phoneFilter = ''; clearErrors(form); load(false).catch((err) => showError(form, err)); } })),
      formError());
      onSubmit(form, async () => {
        phoneFilter = phone.input.value.trim();
        await load(false);
      });
      root.append(form);
    }
    root.append(summary, barLegend(), list, el('div', { class: 'actions center' }, more));

    function depositForm(e) {
      const due = Math.max(0, Number(e.totalAmountUsdCents) - Number(e.depositedUsdCents || 0));
      const form = el('form', { class: 'panel inline-form', testid: 'deposit-form' });
      const amount = field({ label: 'Amount received (USD)', dataField: 'amountUsd', testid: 'deposit-amount', value: centsToInput(due), attrs: { inputmode: 'decimal' } });
      const reference = field({ label: 'Receipt reference', dataField: 'reference', testid: 'deposit-reference', hint: 'The number on the cash receipt you hand over, e.g. receipt-0042.', attrs: { spellcheck: 'false' } });
      form.append(el('h4', null, 'Record cash deposit'), el('div', { class: 'grid-2' }, amount.wrap, reference.wrap), formError(),
        el('div', { class: 'actions' },
          el('button', { type: 'submit', class: 'button primary', testid: 'deposit-submit' }, 'Record deposit'),
          button('Close', { testid: 'deposit-close', onclick: () => { depositOpen.delete(e.escrowId); rebuild(e); } })));
      onSubmit(form, async () => {
        const body = {};
        if (amount.input.value.trim()) body.amountUsd = amount.input.value.trim();
        if (reference.input.value.trim()) body.reference = reference.input.value.trim();
        const d = await api('POST', `/escrows/${encodeURIComponent(e.escrowId)}/deposits`, body);
        depositOpen.delete(e.escrowId);
        const fresh = await api('GET', `/escrows/${encodeURIComponent(e.escrowId)}`);
        escrowData.set(fresh.escrowId, fresh);
        rebuild(fresh);
        const amountText = d && d.amountUsdCents !== undefined ? usd(d.amountUsdCents) : 'The deposit';
        if (d && d.duplicate) notice(`This reference was recorded before; nothing changed. The escrow is ${fresh.status}.`);
        else notice(`${amountText} recorded for ${fresh.recipient ? fresh.recipient.name : 'the recipient'}. The escrow is ${fresh.status}.`);
        const node = list.querySelector(`[data-key="${CSS.escape(fresh.escrowId)}"] [data-testid="new-request"], [data-key="${CSS.escape(fresh.escrowId)}"] [data-testid="record-deposit"]`);
        if (node) node.focus();
      });
      return form;
    }

    function build(e) {
      const actions = [];
      if (e.status === 'active' && (isAgent || role === 'recipient')) {
        actions.push(el('a', { class: 'button primary', href: `#/request/${encodeURIComponent(e.escrowId)}`, testid: 'new-request' }, 'New payment request'));
      }
      if (e.status === 'pending_deposit' && isAgent && !depositOpen.has(e.escrowId)) {
        actions.push(button('Record deposit', {
          variant: 'primary', testid: 'record-deposit',
          onclick: () => {
            depositOpen.add(e.escrowId);
            rebuild(e);
            const input = list.querySelector(`[data-key="${CSS.escape(e.escrowId)}"] [data-testid="deposit-reference"]`);
            if (input) input.focus();
          },
        }));
      }
      const panels = depositOpen.has(e.escrowId) && e.status === 'pending_deposit' ? [depositForm(e)] : [];
      return escrowCard(e, { actions, panels });
    }

    function rebuild(e) {
      const old = list.querySelector(`[data-key="${CSS.escape(e.escrowId)}"]`);
      const fresh = build(e);
      fresh.dataset.key = e.escrowId;
      fresh.dataset.sig = JSON.stringify(e);
      if (old) replaceKeepingFocus(old, fresh);
      else list.prepend(fresh);
    }

    async function load(append) {
      const d = await api('GET', `/escrows${qs({ status, recipientPhone: phoneFilter, limit: PAGE, cursor: append ? cursor : null })}`);
      if (!ctx.alive()) return;
      cursor = d.nextCursor || null;
      const items = d.items || [];
      for (const e of items) escrowData.set(e.escrowId, e);
      const all = append ? [...Array.from(list.children).map((n) => escrowData.get(n.dataset.key)).filter(Boolean), ...items] : items;
      patchList(list, all, (e) => e.escrowId, build);
      const n = list.children.length;
      const what = status ? `${status} escrow${n === 1 ? '' : 's'}` : `escrow${n === 1 ? '' : 's'}`;
      summary.textContent = n
        ? `${n}${cursor ? '+' : ''} ${what}${phoneFilter ? ` for ${phoneFilter}` : ''}.`
        : `No ${status ? `${status} ` : ''}escrows${phoneFilter ? ` for ${phoneFilter}` : ''}.`;
      more.hidden = !cursor;
    }

    more.addEventListener('click', () => busy(more, () => load(true)).catch(globalError));
    await load(false);
  }

  // ---------------------------------------------------------------------------------------
  // Agent and recipient: new payment request on one escrow

  async function viewRequest(root, ctx, escrowId) {
    const isAgent = state.me.role === 'agent';
    const back = el('a', { class: 'button link back', href: isAgent ? '#/payments' : '#/mine', testid: 'back-to-escrows' }, '\u2190 Back to escrows');
    const escrowBox = el('div', { class: 'request-escrow', testid: 'request-escrow' }, el('p', { class: 'muted' }, 'Loading…'));
    root.append(back, pageHead('New payment request', 'Pay a merchant in KES from one of the escrow\u2019s categories. The sender approves it, then it is paid over M-Pesa.'), escrowBox);

    let escrow;
    try {
      escrow = await api('GET', `/escrows/${encodeURIComponent(escrowId)}`);
    } catch (err) {
      if (ctx.alive()) clear(escrowBox).append(el('p', { class: 'card form-error', role: 'alert', testid: 'escrow-load-error' }, errorText(err)));
      return;
    }
    let fx = null;
    if (!ctx.alive()) return;

    function renderEscrow() {
      clear(escrowBox).append(barLegend(), escrowCard(escrow));
    }
    renderEscrow();

    const trackers = el('div', { class: 'stack', testid: 'trackers' });
    const trackersSection = el('section', { class: 'section', hidden: true, 'aria-labelledby': 'sent-h' }, el('h2', { id: 'sent-h' }, 'Sent from this screen'), trackers);
    const history = el('ul', { class: 'rows', testid: 'escrow-history' });
    const historySection = el('section', { class: 'section', 'aria-labelledby': 'hist-h' }, el('h2', { id: 'hist-h' }, 'Recent requests on this escrow'), history);

    if (escrow.status !== 'active') {
      root.append(el('p', { class: 'card notice-box', testid: 'not-active' },
        `This escrow is ${escrow.status}. Payment requests can be made on active escrows only.`), historySection);
      await loadHistory();
      return;
    }

    // ---- the form
    const form = el('form', { class: 'form card', testid: 'request-form', 'aria-label': 'New payment request' });
    const category = field({
      label: 'Category', tag: 'select', dataField: 'category', testid: 'request-category',
      options: (escrow.categories || []).map((c) => el('option', { value: c.name }, `${c.name} \u2014 ${usd(c.remainingUsdCents)} remaining`)),
    });
    const amount = field({ label: 'Amount (KES, whole shillings)', dataField: 'amountKes', testid: 'request-amount', attrs: { inputmode: 'numeric', pattern: '[0-9]*' }, hint: 'For example 1500.' });
    const merchantName = field({ label: 'Merchant name', dataField: 'merchantName', testid: 'merchant-name', hint: 'e.g. Kenya Power' });

    const typeName = uid('mtype');
    const typeInputs = {};
    const typeBox = el('fieldset', { class: 'subfield', 'data-field': 'merchantAccount.type', testid: 'merchant-type' },
      el('legend', null, 'Pay to'),
      el('div', { class: 'radios' }, [['paybill', 'PayBill'], ['till', 'Till (Buy Goods)'], ['phone', 'Phone (M-Pesa)']].map(([v, label]) => {
        const id = `${typeName}-${v}`;
        typeInputs[v] = el('input', { type: 'radio', name: typeName, id, value: v, checked: v === 'paybill', testid: `merchant-type-${v}` });
        return el('label', { for: id, class: 'radio' }, typeInputs[v], ` ${label}`);
      })));
    const number = field({ label: 'PayBill number', dataField: 'merchantAccount.number', testid: 'merchant-number', attrs: { inputmode: 'numeric', spellcheck: 'false' } });
    const reference = field({ label: 'Account number', dataField: 'merchantAccount.accountReference', testid: 'merchant-reference', hint: 'The account at the merchant, e.g. the meter number.', attrs: { spellcheck: 'false' } });
    const note = field({ label: 'Note', optional: true, dataField: 'note', testid: 'request-note', tag: 'textarea' });
    const preview = el('div', { class: 'preview', testid: 'usd-equivalent', 'aria-live': 'polite' });

    function merchantType() {
      return Object.keys(typeInputs).find((k) => typeInputs[k].checked) || 'paybill';
    }
    function syncType() {
      const t = merchantType();
      number.label.textContent = t === 'paybill' ? 'PayBill number' : t === 'till' ? 'Till number' : 'Phone number';
      number.input.setAttribute('inputmode', t === 'phone' ? 'tel' : 'numeric');
      reference.wrap.hidden = t !== 'paybill';
    }
    Object.values(typeInputs).forEach((i) => i.addEventListener('change', syncType));
    syncType();

    function renderPreview() {
      clear(preview);
      const text = amount.input.value.trim();
      const e4 = fx ? rateE4(fx.rate) : null;
      preview.append(el('div', { class: 'preview-label' }, 'USD equivalent'));
      if (!text) {
        preview.append(el('p', { class: 'muted' }, 'Enter an amount in KES to see what it costs in USD.'));
        return;
      }
      if (!/^\d+$/.test(text) || /^0+$/.test(text)) {
        preview.append(el('p', { class: 'muted' }, 'Whole shillings only, e.g. 1500.'));
        return;
      }
      if (!e4) {
        preview.append(el('p', { class: 'muted' }, 'The exchange rate is not available yet.'));
        return;
      }
      const kesCents = Number(text) * 100;
      const cents = usdCentsForKes(kesCents, e4);
      const cat = (escrow.categories || []).find((c) => c.name === category.input.value);
      preview.append(
        el('p', { class: 'preview-amount' }, el('span', { testid: 'usd-equivalent-kes' }, kes(kesCents)), ' = ',
          el('strong', { testid: 'usd-equivalent-value' }, usd(cents))),
        el('p', { class: 'muted small', testid: 'usd-equivalent-rate' }, `At KES ${formatRate(e4)} per USD${fx.updatedAt ? ` (rate of ${when(fx.updatedAt)})` : ''}. The rate is fixed when you send.`));
      if (cat && cents > Number(cat.remainingUsdCents)) {
        preview.append(el('p', { class: 'warn', testid: 'over-balance' }, `More than the ${usd(cat.remainingUsdCents)} remaining in ${cat.name}: the sender cannot approve it.`));
      }
    }
    amount.input.addEventListener('input', renderPreview);
    category.input.addEventListener('change', renderPreview);

    async function loadFx() {
      const rates = await api('GET', '/fx-rates');
      fx = rates && rates['USD-KES'] ? rates['USD-KES'] : null;
      if (ctx.alive()) renderPreview();
    }

    form.append(
      el('div', { class: 'grid-2' }, category.wrap, amount.wrap),
      preview,
      merchantName.wrap, typeBox,
      el('div', { class: 'grid-2' }, number.wrap, reference.wrap),
      note.wrap, formError(),
      el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'button primary', testid: 'submit-request' }, 'Send for approval')));
    root.append(form, trackersSection, historySection);

    onSubmit(form, async () => {
      const amountText = amount.input.value.trim();
      if (amountText && !/^\d+$/.test(amountText)) {
        markField(amount.input, 'Enter whole shillings only, without cents (e.g. 1500).');
        amount.input.focus();
        return;
      }
      const t = merchantType();
      const account = { type: t };
      if (number.input.value.trim()) account.number = number.input.value.trim();
      if (t === 'paybill' && reference.input.value.trim()) account.accountReference = reference.input.value.trim();
      const body = { escrowId: escrow.escrowId, category: category.input.value };
      if (amountText) body.amountKes = amountText;
      if (merchantName.input.value.trim()) body.merchantName = merchantName.input.value.trim();
      body.merchantAccount = account;
      if (note.input.value.trim()) body.note = note.input.value.trim();
      const created = await api('POST', '/payment-requests', body);
      const initial = {
        escrowId: escrow.escrowId, category: body.category, merchantName: body.merchantName,
        merchantAccount: account, note: body.note || null, createdAt: new Date().toISOString(), payout: null, ...created,
      };
      const t2 = tracker(ctx, initial, {
        canCancel: true,
        onChange: () => loadHistory().catch(() => {}),
        onFinal: (r) => {
          refreshEscrow().catch(globalError);
          loadHistory().catch(() => {});
          if (r.status === 'paid') notice(`Paid: ${kes(r.amountKesCents)} to ${r.merchantName || 'the merchant'}${r.payout && r.payout.mpesaReceipt ? `, M-Pesa receipt ${r.payout.mpesaReceipt}` : ''}.`);
          else if (r.status === 'failed') notice(`The payout of ${kes(r.amountKesCents)} failed. ${usd(r.amountUsdCents)} went back to ${r.category}.`, 'warn');
          else if (r.status === 'rejected') notice(`The sender rejected ${kes(r.amountKesCents)} to ${r.merchantName || 'the merchant'}${r.reason ? `: ${r.reason}` : '.'}`, 'warn');
        },
      });
      trackers.prepend(t2.node);
      trackersSection.hidden = false;
      amount.input.value = '';
      note.input.value = '';
      merchantName.input.value = '';
      number.input.value = '';
      reference.input.value = '';
      renderPreview();
      notice(`Sent for approval: ${kes(created.amountKesCents)} = ${usd(created.amountUsdCents)}.`);
      loadHistory().catch(() => {});
    });

    async function refreshEscrow() {
      const fresh = await api('GET', `/escrows/${encodeURIComponent(escrow.escrowId)}`);
      if (!ctx.alive() || JSON.stringify(fresh) === JSON.stringify(escrow)) return;
      escrow = fresh;
      renderEscrow();
      const selected = category.input.value;
      clear(category.input).append(...(escrow.categories || []).map((c) => el('option', { value: c.name }, `${c.name} \u2014 ${usd(c.remainingUsdCents)} remaining`)));
      category.input.value = selected;
      renderPreview();
    }

    async function loadHistory() {
      const d = await api('GET', `/payment-requests${qs({ escrowId: escrow.escrowId, limit: 20 })}`);
      if (!ctx.alive()) return;
      const items = (d && d.items) || [];
      if (!items.length) {
        clear(history).append(el('li', { class: 'empty' }, 'No requests yet.'));
        return;
      }
      if (history.querySelector('.empty')) clear(history);
      patchList(history, items, (r) => r.paymentRequestId, requestRow);
    }

    renderPreview();
    await Promise.all([loadFx(), loadHistory()]);
    ctx.every(60000, loadFx);
    ctx.every(5000, async () => { await refreshEscrow(); await loadHistory(); });
    category.input.focus();
  }

  // ---------------------------------------------------------------------------------------
  // Admin: overview (integrity, rate, stuck payouts)

  async function viewOverview(root, ctx) {
    const integrity = el('section', { class: 'card', testid: 'integrity', 'aria-labelledby': 'int-h' });
    const fxBox = el('section', { class: 'card', testid: 'fx', 'aria-labelledby': 'fx-h' });
    const stuck = el('div', { class: 'stack', testid: 'stuck-payouts' });
    root.append(pageHead('Overview', 'The health of the ledger, the exchange rate, and payouts that need a person.'),
      el('div', { class: 'grid-2 top' }, integrity, fxBox),
      el('section', { class: 'section', 'aria-labelledby': 'stuck-h' },
        el('div', { class: 'section-head' }, el('h2', { id: 'stuck-h' }, 'Stuck payouts'),
          button('Refresh', { small: true, testid: 'refresh-stuck', onclick: () => loadStuck().catch(globalError) })),
        el('p', { class: 'muted' }, 'Payouts sent to M-Pesa with no result past the timeout. Their money stays reserved until you resolve them. Check the outcome with M-Pesa first: paying twice is worse than paying late.'),
        stuck));

    async function loadIntegrity() {
      clear(integrity).append(el('h2', { id: 'int-h' }, 'Integrity'), el('p', { class: 'muted' }, 'Checking…'));
      const r = await api('GET', '/admin/integrity');
      const checks = (r && r.checks) || [];
      const mismatches = (r && r.mismatches) || [];
      const runBtn = button('Run check', { small: true, testid: 'run-integrity', onclick: () => busy(runBtn, loadIntegrity).catch(globalError) });
      add(clear(integrity), [
        el('div', { class: 'section-head' }, el('h2', { id: 'int-h' }, 'Integrity'), runBtn),
        el('p', { class: `big-status ${r.ok ? 'ok' : 'bad'}` },
          el('span', { class: 'status-dot', 'aria-hidden': 'true' }),
          el('span', { testid: 'integrity-status', dataset: { ok: String(!!r.ok) } }, r.ok ? 'ok' : 'not ok'),
          el('span', { class: 'muted small' }, ` · checked ${when(new Date().toISOString())}`)),
        mismatches.length ? el('div', { class: 'mismatches' }, el('h3', null, `Mismatches (${mismatches.length})`),
          el('ul', { testid: 'integrity-mismatches' }, mismatches.map((m) => el('li', null, m)))) : null,
        el('details', null, el('summary', null, `${checks.length} checks`),
          el('ul', { class: 'checks', testid: 'integrity-checks' }, checks.map((c) => el('li', null, c))))]);
    }

    async function loadFx() {
      const rates = await api('GET', '/fx-rates');
      const r = rates && rates['USD-KES'];
      const form = el('form', { class: 'inline-form row-form', testid: 'fx-form' });
      const input = field({ label: 'New rate (KES per USD)', dataField: 'rate', testid: 'fx-rate-input', attrs: { inputmode: 'decimal' }, hint: 'At most 4 decimals, e.g. 152.25. New payment requests use it at once.', wrapClass: 'grow' });
      form.append(input.wrap, el('div', { class: 'actions end' }, el('button', { type: 'submit', class: 'button primary', testid: 'fx-submit' }, 'Set rate')), formError());
      onSubmit(form, async () => {
        const v = input.input.value.trim();
        await api('PUT', '/fx-rates/USD-KES', v ? { rate: v } : {});
        notice(`USD-KES rate set to ${v}.`);
        await loadFx();
      });
      clear(fxBox).append(
        el('h2', { id: 'fx-h' }, 'Exchange rate'),
        el('p', { class: 'rate' }, el('span', { class: 'muted' }, 'USD-KES '),
          el('strong', { testid: 'fx-rate-value' }, r ? formatRate(rateE4(r.rate)) : '—'),
          el('span', { class: 'muted' }, ' KES per USD')),
        el('p', { class: 'muted small' }, 'Updated ', r ? timeEl(r.updatedAt) : '—'),
        form);
    }

    function payoutCard(p) {
      const card = el('article', { class: 'card payout-card', testid: 'payout-card', dataset: { payoutId: p.payoutId, status: p.status } },
        el('header', { class: 'card-head' },
          el('div', null,
            el('h3', { class: 'card-title amount' }, kes(p.amountKesCents), el('span', { class: 'muted usd-twin' }, ` = ${usd(p.amountUsdCents)}`)),
            el('p', { class: 'muted small mono' }, p.payoutId)),
          el('div', null, statusBadge(p.status, 'payout-status'), p.flagged ? el('span', { class: 'flag' }, 'flagged') : null)),
        dl([
          ['Payment request', el('span', { class: 'mono' }, p.paymentRequestId || '—')],
          ['Escrow', el('span', { class: 'mono' }, p.escrowId || '—')],
          ['Method', p.method || '—'],
          ['Sent', timeEl(p.sentAt)],
          p.resultDesc ? ['Result', p.resultDesc] : null,
          p.flagReason ? ['Flag', p.flagReason] : null,
        ]));
      const form = el('form', { class: 'inline-form', testid: 'resolve-form' });
      const outcome = uid('outcome');
      const paid = el('input', { type: 'radio', name: outcome, id: `${outcome}-paid`, value: 'paid', checked: true, testid: 'resolve-outcome-paid' });
      const failed = el('input', { type: 'radio', name: outcome, id: `${outcome}-failed`, value: 'failed', testid: 'resolve-outcome-failed' });
      const receipt = field({ label: 'M-Pesa receipt', dataField: 'receipt', testid: 'resolve-receipt', attrs: { spellcheck: 'false' } });
      const reason = field({ label: 'Reason', optional: true, dataField: 'reason', testid: 'resolve-reason', hint: 'What M-Pesa said, for the audit log.' });
      reason.wrap.hidden = true;
      const confirm = el('div', { class: 'confirm', hidden: true, testid: 'resolve-confirm' });
      const go = el('button', { type: 'submit', class: 'button primary', testid: 'resolve-submit' }, 'Resolve');
      const sync = () => { receipt.wrap.hidden = !paid.checked; reason.wrap.hidden = paid.checked; confirm.hidden = true; go.hidden = false; };
      paid.addEventListener('change', sync);
      failed.addEventListener('change', sync);
      form.append(el('fieldset', { class: 'subfield', 'data-field': 'outcome' }, el('legend', null, 'Resolve as'),
        el('div', { class: 'radios' }, el('label', { class: 'radio', for: paid.id }, paid, ' paid'), el('label', { class: 'radio', for: failed.id }, failed, ' failed (money back to remaining)'))),
      receipt.wrap, reason.wrap, formError(), confirm, el('div', { class: 'actions' }, go));
      let confirmed = false;
      onSubmit(form, async () => {
        if (!confirmed) {
          const what = paid.checked ? `paid with receipt ${receipt.input.value.trim() || '(none)'}` : 'failed, returning the money to the escrow';
          clear(confirm).append(el('p', null, `Mark ${p.payoutId} as ${what}? This cannot be undone.`),
            el('div', { class: 'actions' },
              button('Yes, resolve', { variant: 'danger', testid: 'resolve-confirm-yes', onclick: () => { confirmed = true; form.requestSubmit(); } }),
              button('Back', { testid: 'resolve-confirm-no', onclick: sync })));
          confirm.hidden = false;
          go.hidden = true;
          confirm.querySelector('button').focus();
          return;
        }
        confirmed = false;
        const body = paid.checked ? { outcome: 'paid', receipt: receipt.input.value.trim() } : { outcome: 'failed', reason: reason.input.value.trim() };
        if (body.receipt === '') delete body.receipt;
        if (body.reason === '') delete body.reason;
        try {
          await api('POST', `/payouts/${encodeURIComponent(p.payoutId)}/resolve`, body);
        } catch (err) {
          sync();
          throw err;
        }
        notice(`${p.payoutId} resolved as ${body.outcome}.`);
        await loadStuck();
      });
      card.append(form);
      return card;
    }

    async function loadStuck() {
      const d = await api('GET', `/payouts${qs({ status: 'stuck' })}`);
      if (!ctx.alive()) return;
      const items = (d && d.items) || [];
      if (!items.length) {
        clear(stuck).append(emptyState('No stuck payouts.', 'no-stuck'));
        return;
      }
      if (stuck.querySelector('.empty')) clear(stuck);
      patchList(stuck, items, (p) => p.payoutId, payoutCard);
    }

    await Promise.all([
      loadIntegrity().catch((err) => { clear(integrity).append(el('h2', null, 'Integrity'), el('p', { class: 'form-error' }, errorText(err))); }),
      loadFx().catch((err) => { clear(fxBox).append(el('h2', null, 'Exchange rate'), el('p', { class: 'form-error' }, errorText(err))); }),
      loadStuck().catch(globalError),
    ]);
    ctx.every(15000, () => (stuck.contains(document.activeElement) ? undefined : loadStuck()));
  }

  // ---------------------------------------------------------------------------------------
  // Admin: users and tokens

  async function viewUsers(root, ctx) {
    const tokenBox = el('div', { 'aria-live': 'polite' });
    const list = el('div', { class: 'stack', testid: 'user-list' });
    const more = button('Load more', { testid: 'load-more', hidden: true });
    let cursor = null;

    function showToken(user, token) {
      const out = el('output', { class: 'token mono', testid: 'new-token' }, token);
      const copy = button('Copy', {
        small: true, testid: 'copy-token',
        onclick: async () => {
          try {
            await navigator.clipboard.writeText(token);
            copy.textContent = 'Copied';
          } catch (_) {
            const range = document.createRange();
            range.selectNodeContents(out);
            const sel = getSelection();
            sel.removeAllRanges();
            sel.addRange(range);
            copy.textContent = 'Selected: press Ctrl+C';
          }
        },
      });
      const done = button('I have copied it', { variant: 'primary', small: true, testid: 'token-done', onclick: () => clear(tokenBox) });
      clear(tokenBox).append(el('div', { class: 'card token-card', testid: 'new-token-box', role: 'region', 'aria-label': 'New token' },
        el('h2', null, `Token for ${user.name || user.userId} (${user.role})`),
        el('p', { class: 'warn' }, 'This token is shown only once. Copy it now and hand it over privately; it cannot be shown again.'),
        el('div', { class: 'token-row' }, out, copy),
        el('div', { class: 'actions' }, done)));
      done.focus();
    }

    const form = el('form', { class: 'form card', testid: 'user-form', 'aria-labelledby': 'new-user-h' });
    const role = field({ label: 'Role', tag: 'select', dataField: 'role', testid: 'user-role', options: ['sender', 'recipient', 'agent', 'admin'].map((r) => el('option', { value: r }, r)) });
    const name = field({ label: 'Name', dataField: 'name', testid: 'user-name' });
    const phone = field({ label: 'Phone', optional: true, dataField: 'phone', testid: 'user-phone', type: 'tel' });
    form.append(el('h2', { id: 'new-user-h' }, 'New user'), el('div', { class: 'grid-3' }, role.wrap, name.wrap, phone.wrap), formError(),
      el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'button primary', testid: 'user-submit' }, 'Create user')));
    onSubmit(form, async () => {
      const body = { role: role.input.value };
      if (name.input.value.trim()) body.name = name.input.value.trim();
      if (phone.input.value.trim()) body.phone = phone.input.value.trim();
      const r = await api('POST', '/users', body);
      form.reset();
      showToken((r && r.user) || body, r && r.token);
      await load(false);
    });

    root.append(pageHead('Users and tokens', 'Create users and hand out their access tokens. Revoke a token as soon as it may be lost.',
      button('Refresh', { testid: 'refresh', onclick: () => load(false).catch(globalError) })), tokenBox, form,
    el('section', { class: 'section', 'aria-labelledby': 'users-h' }, el('h2', { id: 'users-h' }, 'Users'), list, el('div', { class: 'actions center' }, more)));

    function tokenRow(u, t) {
      const li = el('li', { class: 'token-item', testid: 'token-row', dataset: { prefix: t.prefix } },
        el('span', { class: 'mono' }, `${t.prefix}\u2026`),
        el('span', { class: 'muted small' }, ' created ', timeEl(t.createdAt), ' · last used ', t.lastUsedAt ? timeEl(t.lastUsedAt) : 'never'),
        t.revokedAt ? el('span', { class: 'status status-cancelled' }, 'revoked') : el('span', { class: 'status status-active' }, 'active'));
      if (!t.revokedAt) {
        const revoke = button('Revoke', { small: true, variant: 'danger-outline', testid: 'revoke-token' });
        const confirm = el('span', { class: 'confirm-inline', hidden: true },
          `Revoke ${t.prefix}\u2026? `,
          button('Yes, revoke', {
            small: true, variant: 'danger', testid: 'confirm-revoke',
            onclick: (ev) => busy(ev.currentTarget, async () => {
              await api('DELETE', `/tokens/${encodeURIComponent(t.prefix)}`);
              notice(`Token ${t.prefix}\u2026 of ${u.name} revoked.`);
              await load(false);
            }).catch((err) => showError(li, err)),
          }),
          button('Keep', { small: true, testid: 'keep-token', onclick: () => { confirm.hidden = true; revoke.hidden = false; revoke.focus(); } }));
        revoke.addEventListener('click', () => { revoke.hidden = true; confirm.hidden = false; confirm.querySelector('button').focus(); });
        li.append(revoke, confirm, el('span', { class: 'form-error', role: 'alert', hidden: true }));
      }
      return li;
    }

    function userCard(u) {
      const issue = button('Issue new token', {
        small: true, testid: 'issue-token',
        onclick: (ev) => busy(ev.currentTarget, async () => {
          const r = await api('POST', `/users/${encodeURIComponent(u.userId)}/tokens`, {});
          showToken(u, r && (r.token || (r.item && r.item.token)));
          await load(false);
        }).catch((err) => showError(card, err)),
      });
      const tokens = u.tokens || [];
      const card = el('article', { class: 'card user', testid: 'user-card', dataset: { userId: u.userId, role: u.role } },
        el('header', { class: 'card-head' },
          el('div', null, el('h3', { class: 'card-title' }, u.name || '—', u.phone ? el('span', { class: 'phone' }, u.phone) : null),
            el('p', { class: 'muted small mono' }, u.userId, el('span', { class: 'muted' }, ' · created '), timeEl(u.createdAt))),
          el('span', { class: 'role-tag' }, u.role)),
        el('h4', null, `Tokens (${tokens.filter((t) => !t.revokedAt).length} active)`),
        tokens.length ? el('ul', { class: 'rows tokens' }, tokens.map((t) => tokenRow(u, t))) : el('p', { class: 'muted' }, 'No tokens.'),
        el('div', { class: 'actions card-actions' }, issue),
        el('div', { class: 'card-error form-error', role: 'alert', hidden: true }));
      return card;
    }

    async function load(append) {
      const d = await api('GET', `/users${qs({ limit: 100, cursor: append ? cursor : null })}`);
      if (!ctx.alive()) return;
      cursor = d.nextCursor || null;
      const items = d.items || [];
      if (append) items.forEach((u) => { const c = userCard(u); c.dataset.key = u.userId; list.append(c); });
      else patchList(list, items, (u) => u.userId, userCard);
      more.hidden = !cursor;
    }
    more.addEventListener('click', () => busy(more, () => load(true)).catch(globalError));
    await load(false);
  }

  // ---------------------------------------------------------------------------------------
  // Start

  window.addEventListener('hashchange', () => route(true));
  document.addEventListener('DOMContentLoaded', () => {
    setupSignIn();
    let saved = null;
    try { saved = sessionStorage.getItem(TOKEN_KEY); } catch (_) { saved = null; }
    if (!saved) {
      showSignIn();
      return;
    }
    signIn(saved, { remember: false }).catch((err) => {
      if (err instanceof ApiError && err.status === 401) signOut('Your access token was not accepted any more. Sign in again.');
      else {
        showSignIn();
        const box = document.querySelector('#signin-form .form-error');
        box.textContent = errorText(err);
        box.hidden = false;
        // Keep the saved token so that a reload retries once the server is back.
      }
    });
  });
})();
