// Forms and buttons that call the API: checking every field before sending (all the errors at
// once), submit handling, controls disabled while busy, and API errors shown beside the field
// they name (data-field), in the form's .form-error box, or else in the page's error banner.

import { ApiError, errorText, fieldRefusalKey } from './api.js';
import { el, focusLost, uid } from './dom.js';
import { amountProblem } from './format.js';
import { lang, t } from './i18n.js';
import { globalError } from './notices.js';

// The most characters the server takes in a free text (a merchant's name, a note, a reason):
// `limits::TEXT_CHARS_MAX`. Held by the fields themselves, not only said after a round trip.
export const TEXT_CHARS_MAX = 200;

// The sentence for an amount that could not be read: the mistake made (a minus sign, zero,
// letters), or `decimalsText`, the form's own rule for its decimals. `example` is a good one.
// `what` names the number in the messages: `amount` (the default) or `rate`.
// The characters the server refuses in a typed text (a name, a merchant, a note): control
// characters and line breaks, text-direction controls, and characters that draw nothing, as
// the API's patterns list them (a test holds this list to the server's rule, character for
// character). Invisible in the field, they were found by the server after the confirmation,
// and said in its English.
const HIDDEN_CHARS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u00ad\u034f\u115f\u1160\u180e\u200b\u2060-\u2065\u206a-\u206f\u3164\ufeff\uffa0\u17b4\u17b5\ufff0-\ufffb\u{13430}-\u{1343f}\u{1bca0}-\u{1bca3}\u{1d173}-\u{1d17a}\u{e0000}-\u{e00ff}\u{e01f0}-\u{e0fff}]/u;

// The characters the server takes in a text but that draw nothing on their own: the spaces,
// the joiners and direction marks, the blank Braille pattern, the variation selectors and the
// combining marks (a test holds this list to the server's rule too). A text of only these is
// empty to the server ("must not be empty", after the confirmation and in English), so it is
// here.
const DRAWS_NOTHING = /^[\u0020\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000\u200c-\u200f\u061c\u2800\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe00-\ufe0f\ufe20-\ufe2f\u180b-\u180d\u180f\u{e0100}-\u{e01ef}]*$/u;

// What is wrong with a typed text: a character the server refuses, or, for a text the form
// requires (`emptyText`, what to say then), nothing in it that shows; null when it may be sent.
export function textProblem(text, emptyText = null) {
  if (HIDDEN_CHARS.test(text)) return t('form.err.hiddenChars');
  return emptyText && DRAWS_NOTHING.test(text) ? emptyText : null;
}

export function amountError(text, places, decimalsText, example, what = 'amount') {
  const problem = amountProblem(text, places);
  if (problem === 'negative' || problem === 'zero') return t(`${what}.err.${problem}`);
  if (problem === 'notNumber') return t(`${what}.err.notNumber`, { example });
  return decimalsText;
}

export function clearErrors(scope) {
  scope.querySelectorAll('.field-error').forEach((n) => n.remove());
  scope.querySelectorAll('[aria-invalid]').forEach((n) => {
    // A field whose value stands refused while it is there (`data-over`: more than a
    // category has) stays marked; only what a send said goes.
    if (!n.dataset.over) n.removeAttribute('aria-invalid');
    if (n.dataset.describedby !== undefined) {
      if (n.dataset.describedby) n.setAttribute('aria-describedby', n.dataset.describedby);
      else n.removeAttribute('aria-describedby');
      delete n.dataset.describedby;
    }
  });
  scope.querySelectorAll('.form-error').forEach((n) => { n.hidden = true; n.textContent = ''; delete n.dataset.count; });
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

export function markField(input, text) {
  const id = `${input.id || uid('x')}-error`;
  const msg = el('p', { class: 'field-error', id, testid: 'field-error' }, text);
  if (input.dataset.describedby === undefined) input.dataset.describedby = input.getAttribute('aria-describedby') || '';
  input.setAttribute('aria-invalid', 'true');
  input.setAttribute('aria-describedby', `${input.dataset.describedby} ${id}`.trim());
  if (input.tagName === 'FIELDSET') input.append(msg);
  else input.insertAdjacentElement('afterend', msg);
  // Typing in the field mends it as far as the page knows: the old error goes, so that it
  // does not stand under a value it was not about (the next send checks again).
  let wasMended = false;
  const mended = () => {
    // Once, whichever of input and change comes first (the second found the field's own
    // description already given back, and took it away), and not for a mark clearErrors took
    // away already (a later mark of the field has its own).
    if (wasMended || !msg.isConnected) return;
    wasMended = true;
    msg.remove();
    // "Please correct the 4 marked fields" counts what is still marked, and goes with the last.
    const box = input.closest('form') && input.closest('form').querySelector('.form-error');
    if (box && box.dataset.count) {
      const left = input.closest('form').querySelectorAll('.field-error').length;
      if (left > 1) box.textContent = t('form.errorsCount', { n: left });
      else {
        box.hidden = true;
        box.textContent = '';
        delete box.dataset.count;
      }
    }
    if (input.getAttribute('aria-invalid') === 'true') {
      if (!input.dataset.over) input.removeAttribute('aria-invalid');
      if (input.dataset.describedby) input.setAttribute('aria-describedby', input.dataset.describedby);
      else input.removeAttribute('aria-describedby');
      delete input.dataset.describedby;
    }
  };
  input.addEventListener('input', mended, { once: true });
  input.addEventListener('change', mended, { once: true });
  return msg;
}

// Puts the focus on a field that was marked wrong. A send's check runs while busy() has every
// control of the form disabled, where focus() does nothing (the focus stayed on the button, and
// the mistake went unsaid to whoever does not see it): the focus is then given when busy()
// gives the controls back.
function focusField(input) {
  const focusable = input.tagName === 'FIELDSET' ? input.querySelector('input, select, textarea') : input;
  if (!focusable) return;
  const working = focusable.closest('[data-busy]');
  if (focusable.disabled && working) working.focusAfterBusy = focusable;
  else focusable.focus();
}

// Checks every field and marks each one that fails, so that a person sees all the mistakes at
// once. checks: [input, message or null][]; focuses the first failing input; true when all pass.
// The first mistake is said aloud (role=alert) as it appears: the focus may already be in its
// field (a deposit's amount), where moving it there again says nothing.
export function checkFields(scope, checks) {
  clearErrors(scope);
  let first = null;
  for (const [input, message] of checks) {
    if (!message || !input) continue;
    const msg = markField(input, message);
    if (!first) {
      first = input;
      msg.setAttribute('role', 'alert');
    }
  }
  if (first) {
    focusField(first);
    const box = scope.querySelector('.form-error');
    const n = checks.filter(([i, m]) => i && m).length;
    if (box && n > 1) {
      box.textContent = t('form.errorsCount', { n });
      box.dataset.count = String(n);
      box.hidden = false;
    }
  }
  return !first;
}

function fieldText(err, exact) {
  const said = exact ? err.detail : err.message;
  if (lang() === 'en') return said;
  const known = exact && fieldRefusalKey(err.field, err.detail);
  return known ? t(known) : `${t('error.field')} (${said})`;
}

export function showError(scope, err) {
  clearErrors(scope);
  if (err instanceof ApiError && err.field) {
    const input = inputForField(scope, err.field);
    if (input) {
      markField(input, fieldText(err, input.dataset.field === err.field)).setAttribute('role', 'alert');
      focusField(input);
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
export async function busy(scope, fn) {
  if (scope.dataset.busy) return undefined;
  scope.dataset.busy = '1';
  scope.setAttribute('aria-busy', 'true');
  const controls = Array.from(scope.querySelectorAll('button, input, select, textarea'))
    .filter((n) => !n.disabled);
  if (scope.tagName === 'BUTTON') controls.push(scope);
  // A control disabled while it has the focus drops the keyboard to the page: the focus goes
  // back to it when it is enabled again, unless the work moved it somewhere on purpose.
  const held = controls.includes(document.activeElement) ? document.activeElement : null;
  controls.forEach((n) => { n.disabled = true; });
  try {
    return await fn();
  } finally {
    controls.forEach((n) => { n.disabled = false; });
    delete scope.dataset.busy;
    scope.removeAttribute('aria-busy');
    // A field marked wrong meanwhile (`focusField`) takes the focus first.
    const wanted = scope.focusAfterBusy;
    delete scope.focusAfterBusy;
    const lost = focusLost();
    if (wanted && wanted.isConnected && !wanted.disabled) wanted.focus();
    else if (held && lost && held.isConnected) held.focus({ preventScroll: true });
  }
}

export function onSubmit(form, handler) {
  form.noValidate = true;
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (form.dataset.busy) return;
    clearErrors(form);
    // Each submit is one user action; api() gives each change its Idempotency-Key, and the same
    // key again to a retry of a change whose answer was lost.
    busy(form, () => handler()).catch((err) => showError(form, err));
  });
}
