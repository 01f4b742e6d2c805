// Who is signed in: the access token (in memory, and in sessionStorage so that reloading this tab
// keeps the session; never in the URL, the DOM or the console), the user from GET /me, and the
// generation number that changes on every sign-in and sign-out, so that answers and timers that
// belong to an earlier session are ignored. Other modules read `session`; only main.js changes it.

const TOKEN_KEY = 'remit.token';

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
}

export function endSession() {
  state.generation += 1;
  state.token = null;
  state.me = null;
  try { sessionStorage.removeItem(TOKEN_KEY); } catch (_) { /* ignore */ }
}

// The token saved by an earlier page load of this tab, if any.
export function savedToken() {
  try { return sessionStorage.getItem(TOKEN_KEY); } catch (_) { return null; }
}
