// The two page-wide banners of index.html: the error banner (#global-error) for failures that
// belong to no form, and the notice banner (#notice) for what just happened.

import { ApiError, callsSoFar, errorText, onAnswered } from './api.js';
import { session } from './session.js';

function banner(id, text) {
  const node = document.getElementById(id);
  node.querySelector('.banner-text').textContent = text;
  node.hidden = false;
}
export function hideBanner(id) {
  const node = document.getElementById(id);
  node.hidden = true;
  node.querySelector('.banner-text').textContent = '';
}
let noticeTimer = null;
let noticeAt = 0;
// How the notice shown says itself, for a change of language (`noticeAgain`).
let noticeSays = null;
// `text`: the words, or a function that says them in the UI's language of the moment (a notice
// said so stays said, in the other language, when the language changes: it stayed in the old).
export function notice(text, kind = 'ok') {
  document.getElementById('notice').className = `banner banner-${kind}`;
  noticeSays = typeof text === 'function' ? text : null;
  banner('notice', noticeSays ? noticeSays() : text);
  noticeAt = Date.now();
  clearTimeout(noticeTimer);
  // What went well fades; a warning stays until it is dismissed or the screen changes.
  if (kind !== 'warn') noticeTimer = setTimeout(() => hideBanner('notice'), 10000);
  // A warning is brought into view: said after Send at the foot of a long form (the rate
  // changed while it was open), it was out of sight above.
  if (kind === 'warn') {
    const box = document.getElementById('notice');
    const at = box.getBoundingClientRect();
    if (at.top < 0 || at.bottom > window.innerHeight) box.scrollIntoView({ block: 'nearest' });
  }
}
// A notice belongs to the screen it was said on, or to the one it sent the user to: moving on
// later takes it away, so "Approved …" does not linger over the next screen.
export function hideStaleNotice() {
  if (Date.now() - noticeAt > 1500) hideBanner('notice');
}
// The notice shown, said again in the language just chosen (the screen is drawn again for the
// same place: what it said is still so).
export function noticeAgain() {
  const node = document.getElementById('notice');
  if (!node.hidden && noticeSays) node.querySelector('.banner-text').textContent = noticeSays();
}
// While the error banner says the server could not be reached: the last call made before it
// said so. The answer to a later call takes it down.
let unreachableAfter = null;
onAnswered((call) => {
  if (unreachableAfter !== null && call > unreachableAfter) {
    unreachableAfter = null;
    hideBanner('global-error');
  }
});
export function globalError(err) {
  if (err instanceof ApiError && (err.code === 'stale' || (err.status === 401 && !session.token))) return;
  banner('global-error', errorText(err));
  unreachableAfter = err instanceof ApiError && err.status === 0 ? callsSoFar() : null;
}
