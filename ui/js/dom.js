// DOM helpers shared by every screen: building elements (el, add, clear), form parts (button,
// field, formError), small displays (statusBadge, simulatedTag, timeEl, dl, emptyState,
// pageHead, copyButton), and updating lists in place without losing keyboard focus
// (replaceKeepingFocus, patchList).

import { when } from './format.js';
import { t } from './i18n.js';
import { statusWord } from './words.js';

let uidCounter = 0;
export function uid(prefix) {
  uidCounter += 1;
  return `${prefix}-${uidCounter}`;
}

export function el(tag, props, ...kids) {
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

export function add(node, kids) {
  for (const k of [kids].flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    node.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

// The rest of a double click on a button that changes money is swallowed: that button's
// question closes at the first click and the page moves up under the pointer, so the second
// click landed on whatever came there (the footer's API reference link took a kiosk away from
// the receipt it had just made). For half a second the further clicks of that double click
// (the browser counts them in `detail`; a new click is 1 again) are dropped in the capture
// phase, before anything on the page sees them.
export function swallowDoubleClick(ms = 500) {
  const until = Date.now() + ms;
  const guard = (ev) => {
    if (Date.now() > until || ev.detail < 2) return;
    ev.preventDefault();
    ev.stopPropagation();
  };
  for (const type of ['click', 'dblclick']) document.addEventListener(type, guard, true);
  setTimeout(() => { for (const type of ['click', 'dblclick']) document.removeEventListener(type, guard, true); }, ms);
}

export function button(label, props = {}) {
  const cls = ['button', props.variant || 'secondary', props.small ? 'small' : ''].join(' ').trim();
  const p = { type: 'button', ...props, class: props.class ? `${cls} ${props.class}` : cls };
  delete p.variant;
  delete p.small;
  return el('button', p, label);
}

export function field(opts) {
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
    opts.optional ? el('span', { class: 'optional' }, ` ${t('form.optional')}`) : null);
  const wrap = el('div', { class: `field ${opts.wrapClass || ''}`.trim() }, label, input, hint);
  return { wrap, input, label };
}

export function formError() {
  return el('div', { class: 'form-error', role: 'alert', testid: 'form-error', hidden: true });
}

// A state as a word (kind: escrow, request, payout or deposit); the API's word in data-status.
export function statusBadge(kind, status, testid) {
  return el('span', { class: `status status-${status}`, testid, dataset: { status } }, statusWord(kind, status));
}

// The mark on everything the payout simulator produced: no real money moved.
export function simulatedTag(testid = 'simulated') {
  return el('span', { class: 'simulated-tag', testid, title: t('sim.title') }, t('sim.tag'));
}

export function timeEl(iso) {
  if (!iso) return el('span', { class: 'muted' }, '—');
  return el('time', { datetime: iso, title: iso }, when(iso));
}

export function dl(pairs, cls) {
  const list = el('dl', { class: cls || 'details' });
  for (const p of pairs) {
    if (!p) continue;
    const [term, value, testid] = p;
    list.append(el('div', { class: 'pair' }, el('dt', null, term), el('dd', { testid }, value)));
  }
  return list;
}

export function emptyState(text, testid) {
  return el('p', { class: 'empty', testid: testid || 'empty' }, text);
}

// Is the keyboard's focus nowhere (on the page itself): a control that had it was hidden,
// disabled or taken away.
export function focusLost() {
  return !document.activeElement || document.activeElement === document.body;
}

// A preview that follows each key typed, read out once the typing pauses: as a live region it
// was read out again at every digit. `shown` stops being live; `live` (to be put beside it) is
// a hidden copy, given `shown`'s words `ms` after the last call of `say` (each time the preview
// is drawn: typing, or a refresh that changes it), and only when they changed. The first `say`
// gives them at once, as the screen is drawn. `hush` drops what waits to be said and takes the
// preview's words as said (a form just sent and emptied: the notice says what happened).
export function settledLive(shown, ms = 800) {
  shown.removeAttribute('aria-live');
  const live = el('p', { class: 'visually-hidden', 'aria-live': 'polite', testid: `${shown.dataset.testid || 'preview'}-spoken` });
  let timer = 0;
  let first = true;
  let said = null;
  const words = () => shown.innerText.replace(/\s+/g, ' ').trim();
  const update = () => {
    const now = words();
    if (now === said) return;
    said = now;
    live.textContent = now;
  };
  const say = () => {
    clearTimeout(timer);
    if (first) { first = false; update(); return; }
    timer = setTimeout(() => { if (live.isConnected) update(); }, ms);
  };
  const hush = () => { clearTimeout(timer); first = false; said = words(); };
  return { live, say, hush };
}

// Escape answers a question shown in `box` with its safe answer (`safe`, a button), as a
// dialog's does.
export function escapeAnswers(box, safe) {
  box.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape') return;
    ev.preventDefault();
    safe.click();
  });
}

// An inline question (`box`, hidden) asked before what `trigger` does: `trigger` puts it up in
// its place, the safe answer (`keep`) focused, so that a second Enter keeps things as they are;
// `keep`, or Escape, takes it down and gives the focus back to `trigger`.
export function askBefore(trigger, box, keep) {
  trigger.addEventListener('click', () => { trigger.hidden = true; box.hidden = false; keep.focus(); });
  keep.addEventListener('click', () => { box.hidden = true; trigger.hidden = false; trigger.focus(); });
  escapeAnswers(box, keep);
}

// Replaces a node, moving keyboard focus to the equivalent element of the new one.
export function replaceKeepingFocus(oldNode, newNode) {
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
export function patchList(container, items, keyOf, build, removeMissing = true) {
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

// The heading block at the top of every screen: its h1 (focused on navigation), intro and actions.
export function pageHead(title, intro, extra) {
  return el('div', { class: 'page-head' },
    el('div', null, el('h1', { tabindex: '-1' }, title), intro ? el('p', { class: 'muted intro' }, intro) : null),
    extra ? el('div', { class: 'actions' }, extra) : null);
}

// A secret shown once (a new token, a webhook signing secret) in `box`: its card with a title,
// a warning, the value with Copy, and "I have copied it", which puts it away. Copy has the focus:
// a second Enter (the form's Enter pressed twice) copies the value instead of putting away its
// only sight. Put away, the keyboard goes back where it was, or to `fallback` when the page had
// it (inside a form's work, the control in hand is disabled; `fallback` may be a function that
// finds it when the box is put away: a list redrawn meanwhile has replaced what was clicked).
export function showOnce(box, { title, warning, value, label, testids, fallback }) {
  const out = el('output', { class: 'token mono', testid: testids.value }, value);
  const back = document.activeElement !== document.body ? document.activeElement : null;
  const done = button(t('token.done'), {
    variant: 'primary', small: true, testid: testids.done,
    onclick: () => {
      clear(box);
      if (back && back.isConnected) back.focus();
      else (typeof fallback === 'function' ? fallback() : fallback).focus();
    },
  });
  const copy = copyButton(out, value, testids.copy);
  clear(box).append(el('div', { class: 'card token-card', testid: testids.box, role: 'region', 'aria-label': label },
    el('h2', null, title),
    el('p', { class: 'warn' }, warning),
    el('div', { class: 'token-row' }, out, copy),
    el('div', { class: 'actions' }, done)));
  copy.focus();
}

// A Copy button for a secret or a code shown in `out`: the clipboard, else the text selected
// for Ctrl+C.
export function copyButton(out, value, testid = 'copy-token') {
  const copy = button(t('common.copy'), {
    small: true, testid,
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(value);
        copy.textContent = t('common.copied');
      } catch (_) {
        const range = document.createRange();
        range.selectNodeContents(out);
        const sel = getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        copy.textContent = t('common.selectedCopy');
      }
    },
  });
  return copy;
}
