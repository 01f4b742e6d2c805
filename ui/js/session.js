// Who is signed in: the access token (in memory, and in sessionStorage so that reloading this tab
// keeps the session; never in the URL, the DOM or the console), the user from GET /me, and the
// generation number that changes on every sign-in and sign-out, so that answers and timers that
// belong to an earlier session are ignored. Other modules read `session`; only main.js changes it.

const TOKEN_KEY = 'remit.token';
// The idle time of the session saved with it (GET /me's idleSignOutS): how long a reload that
// cannot reach the server keeps it (`savedIdleS`).
const IDLE_KEY = 'remit.idleS';
// When the screen was last used (ms since the epoch; `noteUse`): a page of the same tab that
// does not watch for use (the API reference) must not give a saved session a new idle time when
// the app is opened again (an agent who left the counter on that page handed the next customer
// a signed-in kiosk).
const USED_KEY = 'remit.usedAt';

const state = {
  token: null,
  me: null,
  generation: 0,
};

export const session = Object.freeze({
  get token() { return state.token; },
  get me() { return state.me; },
  get generation() { return state.generation; },
});

export function beginSession(token, me, remember) {
  state.generation += 1;
  state.token = token;
  state.me = me;
  if (remember) sessionStorage.setItem(TOKEN_KEY, token);
  if (Number.isInteger(me && me.idleSignOutS)) {
    try { sessionStorage.setItem(IDLE_KEY, String(me.idleSignOutS)); } catch (_) { /* ignore */ }
  }
}

export function endSession() {
  state.generation += 1;
  state.token = null;
  state.me = null;
  try {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(IDLE_KEY);
    sessionStorage.removeItem(USED_KEY);
  } catch (_) { /* ignore */ }
}

// The idle time (seconds; 0: never) of the session saved in this tab, or `fallback` when it
// was not said.
export function savedIdleS(fallback) {
  try {
    const said = Number.parseInt(sessionStorage.getItem(IDLE_KEY) || '', 10);
    return Number.isInteger(said) && said >= 0 ? said : fallback;
  } catch (_) {
    return fallback;
  }
}

// Notes that the screen was used at `at` (ms), for a later page load of this tab.
export function noteUse(at) {
  try { sessionStorage.setItem(USED_KEY, String(at)); } catch (_) { /* ignore */ }
}

// When this tab's screen was last used, as noted, or null.
export function savedUseAt() {
  try {
    const at = Number.parseInt(sessionStorage.getItem(USED_KEY) || '', 10);
    return Number.isInteger(at) && at > 0 ? at : null;
  } catch (_) {
    return null;
  }
}

// The token saved by an earlier page load of this tab, if any.
export function savedToken() {
  try { return sessionStorage.getItem(TOKEN_KEY); } catch (_) { return null; }
}
