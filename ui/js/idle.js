// Signing out a shared screen nobody uses: after the idle time GET /me gives (idleSignOutS; 0 =
// never) without a key, a touch, a click or the mouse moving, the session ends. During its last
// seconds a warning counts down, with a button to stay. Deadlines are wall-clock times checked
// four times a second, so a tab that slept is signed out as soon as it wakes.

import { button, clear, el } from './dom.js';
import { t } from './i18n.js';
import { noteUse } from './session.js';

const CHECK_MS = 250;
const WARN_S_MAX = 30;
const EVENTS = ['pointerdown', 'pointermove', 'keydown', 'wheel', 'touchstart', 'input', 'focusin'];

let state = null;

// How long the warning shows before the end: a third of the idle time, at least a second and at
// most 30 s. (The warning takes no focus: moving focus would count as use and hide it.)
export function warnSeconds(idleS) {
  return Math.max(1, Math.min(WARN_S_MAX, Math.floor(idleS / 3)));
}

function box() {
  return document.getElementById('idle-warning');
}

function render(secondsLeft) {
  const node = box();
  if (!node) return;
  const text = node.querySelector('.idle-text');
  const wanted = t('idle.warning', { n: secondsLeft });
  if (!text) {
    const stay = button(t('idle.stay'), { variant: 'primary', testid: 'idle-stay', onclick: () => touch() });
    // Said aloud once, as it appears (role=alert); the count that runs down beside it is hidden from
    // screen readers, which read the alert out again at every second (interrupting).
    // Shown before the alert is put in it: an alert added inside a hidden box may go unsaid.
    node.hidden = false;
    clear(node).append(el('p', { class: 'visually-hidden', role: 'alert', testid: 'idle-alert' }, wanted),
      el('p', { class: 'idle-text', testid: 'idle-text', 'aria-hidden': 'true' }, wanted), stay);
  } else if (text.textContent !== wanted) {
    text.textContent = wanted;
  }
  node.dataset.secondsLeft = String(secondsLeft);
  node.hidden = false;
}

function hide() {
  const node = box();
  if (node) {
    node.hidden = true;
    clear(node);
  }
}

// Use is noted for a later page load at most this often, and as the page is left.
const NOTE_USE_MS = 1000;

function noteLastUse() {
  if (state) noteUse(state.lastInput);
}

function touch() {
  if (!state) return;
  state.lastInput = Date.now();
  if (state.lastInput - state.noted >= NOTE_USE_MS) {
    state.noted = state.lastInput;
    noteUse(state.lastInput);
  }
  if (state.warning) {
    state.warning = false;
    hide();
  }
}

function onInput(ev) {
  // A pointer that moves by itself (synthetic moves with no change) does not count as use.
  if (ev.type === 'pointermove' && ev.movementX === 0 && ev.movementY === 0) return;
  touch();
}

// Starts watching for idleness; onIdle() is called once when the time is up.
export function startIdle(idleS, onIdle) {
  stopIdle();
  const seconds = Number(idleS);
  if (!Number.isFinite(seconds) || seconds <= 0) return;
  const idleMs = seconds * 1000;
  const warnMs = warnSeconds(seconds) * 1000;
  state = { lastInput: Date.now(), noted: Date.now(), warning: false, timer: null };
  noteUse(state.lastInput);
  for (const e of EVENTS) document.addEventListener(e, onInput, { capture: true, passive: true });
  window.addEventListener('pagehide', noteLastUse);
  state.timer = setInterval(() => {
    if (!state) return;
    const left = state.lastInput + idleMs - Date.now();
    if (left <= 0) {
      stopIdle();
      onIdle();
    } else if (left <= warnMs) {
      state.warning = true;
      render(Math.ceil(left / 1000));
    }
  }, CHECK_MS);
}

export function stopIdle() {
  if (state) {
    clearInterval(state.timer);
    for (const e of EVENTS) document.removeEventListener(e, onInput, { capture: true });
    window.removeEventListener('pagehide', noteLastUse);
    state = null;
  }
  hide();
}
