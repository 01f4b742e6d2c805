// Entry point: signing in and out (also after idle time on a shared screen), the language
// switch, the demo-mode banner, the navigation of each role, routing #/<screen>[/<id>] to its
// screen module, and the start-up (resuming the token saved in this tab).
// Native ES modules, no build step: shared parts in js/, one module per screen in js/screens/.

import { ApiError, api, errorText, onUnauthorized } from './api.js';
import { ctxFor, runCleanups } from './context.js';
import { clear, el } from './dom.js';
import { clearErrors, markField, onSubmit } from './forms.js';
import { lang, redrawForLanguage, redrawingForLanguage, setLang, t, translateStatic } from './i18n.js';
import { startIdle, stopIdle } from './idle.js';
import { globalError, hideBanner, hideStaleNotice, noticeAgain } from './notices.js';
import { beginSession, endSession, savedIdleS, savedToken, savedUseAt, session } from './session.js';
import { roleLabel } from './words.js';
import { viewApprovals } from './screens/approvals.js';
import { viewEscrows } from './screens/escrows.js';
import { viewFind } from './screens/find.js';
import { viewMoneyIn } from './screens/money-in.js';
import { viewNewEscrow } from './screens/new-escrow.js';
import { viewNotifications } from './screens/notifications.js';
import { viewOverview } from './screens/overview.js';
import { viewPayouts } from './screens/payouts.js';
import { viewRequest } from './screens/request.js';
import { viewRequestDetail, viewRequests } from './screens/requests.js';
import { viewUsers } from './screens/users.js';

// ---------------------------------------------------------------------------------------
// Sign in / out

// Signs in with `token` once the server says whose it is, unless `still()` says by then that it
// is not wanted any more (false: not signed in).
async function signIn(token, { remember = true, still = () => true } = {}) {
  const me = await api('GET', '/me', undefined, { token, signingIn: true });
  if (!me || !me.role) throw new ApiError(0, 'bad_answer', t('signin.badAnswer'));
  if (!still()) return false;
  beginSession(token, me, remember);
  startApp();
  return true;
}

function signOut(message) {
  stopIdle();
  runCleanups();
  endSession();
  clear(document.getElementById('app')).hidden = true;
  clear(document.getElementById('nav')).hidden = true;
  document.getElementById('session').hidden = true;
  document.getElementById('demo-banner').hidden = true;
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
    // A token copied with its header's word ("Bearer rmt_…", as the API's examples write it) is
    // the token after it; the invisible characters and quotes a chat or a document adds around
    // what is pasted are not part of it.
    const quotes = /^["'\u2018\u2019\u201c\u201d\u00ab\u00bb]+|["'\u2018\u2019\u201c\u201d\u00ab\u00bb]+$/g;
    const token = input.value.replace(/[\u200b-\u200d\u2060\ufeff]/g, '').trim()
      .replace(quotes, '').trim()
      .replace(/^bearer\s+/i, '')
      .replace(quotes, '').trim();
    if (!token) {
      markField(input, t('signin.empty'));
      input.focus();
      return;
    }
    // A token is printable ASCII: anything else is no token, and the browser would not even
    // send it (said as "could not reach the server").
    if (!/^[\x21-\x7e]+$/.test(token)) {
      markField(input, t('signin.refused'));
      input.focus();
      return;
    }
    // A token of someone else's typed while this tab's saved session waits for the server
    // (`resumeLater`): that session is not to come back, whatever becomes of this sign-in.
    if (!session.token && savedToken() && savedToken() !== token) endSession();
    try {
      await signIn(token);
      input.value = '';
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        // Said at the field, as an empty one is (aria-invalid, described by the words): the
        // form's own box said it, and the field read as fine.
        markField(input, t('signin.refused'));
        input.focus();
        return;
      }
      throw err;
    }
  });
  document.getElementById('sign-out').addEventListener('click', () => signOut(t('signin.signedOut')));
  for (const id of ['global-error', 'notice']) {
    document.querySelector(`#${id} .banner-close`).addEventListener('click', () => hideBanner(id));
  }
}

// ---------------------------------------------------------------------------------------
// Language

function showLanguage() {
  document.documentElement.lang = lang();
  translateStatic(document);
  document.querySelectorAll('.lang-button').forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.lang === lang())));
}

// `root`'s fields that have a `data-testid`, each with its name (the card it is in, `data-key`,
// and its test id) and its place among fields so named: [input, name, n].
function namedFields(root) {
  const seen = new Map();
  return Array.from(root.querySelectorAll('input[data-testid], textarea[data-testid], select[data-testid]'), (input) => {
    const scope = (input.closest('[data-key]') || {}).dataset;
    const name = `${(scope && scope.key) || ''}|${input.dataset.testid}`;
    const n = seen.get(name) || 0;
    seen.set(name, n + 1);
    return [input, name, n];
  });
}

// The values typed or chosen in `root`'s named fields.
function typedValues(root) {
  const typed = [];
  for (const [input, name, n] of namedFields(root)) {
    if (input.type === 'radio' || input.type === 'checkbox') {
      if (input.checked !== input.defaultChecked) typed.push({ name, n, checked: input.checked });
    } else if (input.value && input.value !== input.defaultValue && input.type !== 'hidden') {
      typed.push({ name, n, value: input.value });
    }
  }
  return typed;
}

// Puts `typed` back into the screen drawn again, field by field as each appears (a screen may
// draw its form once a read has answered): only into a field still as drawn, for at most 5 s,
// and only on the same screen.
function restoreTyped(root, typed) {
  const left = [...typed];
  const until = Date.now() + 5000;
  // Not into another screen moved to meanwhile.
  const screen = location.hash;
  const put = () => {
    if (location.hash !== screen) return;
    for (const [input, name, n] of namedFields(root)) {
      const i = left.findIndex((x) => x.name === name && x.n === n);
      if (i < 0) continue;
      const [was] = left.splice(i, 1);
      if ('checked' in was) {
        if (input.checked === input.defaultChecked && !input.disabled) input.checked = was.checked;
      } else if (!input.value || input.value === input.defaultValue) {
        input.value = was.value;
      } else continue;
      // What follows a field (a preview, a field shown for a choice) follows it again.
      input.dispatchEvent(new Event('input', { bubbles: true }));
      input.dispatchEvent(new Event('change', { bubbles: true }));
    }
    if (left.length && Date.now() < until) requestAnimationFrame(put);
  };
  if (left.length) put();
}

function setupLanguage() {
  document.querySelectorAll('.lang-button').forEach((b) => b.addEventListener('click', () => {
    if (b.dataset.lang === lang()) return;
    setLang(b.dataset.lang);
    showLanguage();
    if (session.me) {
      // What was typed on the screen stays: a kiosk switching to Kiswahili for the customer
      // found the form half filled in empty again.
      const typed = typedValues(document.getElementById('app'));
      renderChrome();
      redrawForLanguage(() => route(false));
      restoreTyped(document.getElementById('app'), typed);
      noticeAgain();
    } else {
      const box = document.querySelector('#signin-form .form-error');
      if (box && !box.hidden) { box.hidden = true; box.textContent = ''; }
      clearErrors(document.getElementById('signin-form'));
    }
  }));
  showLanguage();
}

// ---------------------------------------------------------------------------------------
// Navigation: each role's screens; `arg` routes (#/requests/<id>, #/pay/<escrowId>) belong to
// the nav item named in `under`; a list may take a query (#/requests?escrow=<id>).

const ROUTES = {
  sender: [
    { name: 'approvals', label: 'nav.approvals', view: viewApprovals },
    { name: 'escrows', label: 'nav.escrows', view: viewEscrows },
    { name: 'new-escrow', label: 'nav.newEscrow', view: viewNewEscrow },
  ],
  agent: [
    { name: 'payments', label: 'nav.payments', view: (r, c) => viewFind(r, c, 'active') },
    { name: 'deposits', label: 'nav.deposits', view: (r, c) => viewFind(r, c, 'pending_deposit') },
    { name: 'requests', label: 'nav.requests', view: viewRequests, detail: viewRequestDetail },
    { name: 'pay', under: 'payments', view: viewRequest },
  ],
  recipient: [
    { name: 'mine', label: 'nav.mine', view: (r, c) => viewFind(r, c, null) },
    { name: 'requests', label: 'nav.requests', view: viewRequests, detail: viewRequestDetail },
    { name: 'pay', under: 'mine', view: viewRequest },
  ],
  admin: [
    { name: 'overview', label: 'nav.overview', view: viewOverview },
    { name: 'escrows', label: 'nav.escrows', view: viewEscrows },
    { name: 'payouts', label: 'nav.payouts', view: viewPayouts },
    { name: 'money-in', label: 'nav.moneyIn', view: viewMoneyIn },
    { name: 'users', label: 'nav.users', view: viewUsers },
    { name: 'notifications', label: 'nav.notifications', view: viewNotifications },
  ],
};

function renderChrome() {
  const me = session.me;
  document.getElementById('whoami').textContent = `${me.name || me.userId} · ${roleLabel(me.role)}`;
  document.getElementById('session').hidden = false;
  document.getElementById('demo-banner').hidden = me.gateway !== 'simulator';
  const nav = clear(document.getElementById('nav'));
  for (const r of ROUTES[me.role] || []) {
    if (!r.label) continue;
    nav.append(el('a', { href: `#/${r.name}`, class: 'nav-link', testid: `nav-${r.name}`, dataset: { view: r.name } }, t(r.label)));
  }
  nav.hidden = false;
}

function startApp() {
  document.getElementById('signin').hidden = true;
  hideBanner('global-error');
  renderChrome();
  document.getElementById('app').hidden = false;
  startIdle(session.me.idleSignOutS, () => signOut(t('idle.signedOut')));
  route(true);
}

function route(fromNavigation) {
  if (!session.me) return;
  const routes = ROUTES[session.me.role] || [];
  const [pathPart, queryPart] = location.hash.replace(/^#\/?/, '').split('?');
  const parts = pathPart.split('/').map((p) => { try { return decodeURIComponent(p); } catch (_) { return ''; } });
  const [name, arg] = parts;
  const query = new URLSearchParams(queryPart || '');
  let r = routes.find((x) => x.name === name);
  if (r && r.under && !arg) r = null;
  if (!r) {
    r = routes[0];
    if (!r) return;
    history.replaceState(null, '', `#/${r.name}`);
    showView(r, undefined, new URLSearchParams(), fromNavigation === true);
    return;
  }
  showView(r, arg, query, fromNavigation === true);
}

// How long a screen that could not be read waits before it is drawn again.
const RETRY_VIEW_MS = 5000;

// `retry`: the same screen drawn again because the server could not be reached the last time;
// the error banner stays until an answer takes it down.
function showView(r, arg, query, moveFocus, retry = false) {
  runCleanups();
  if (!retry) {
    hideBanner('global-error');
    // The same screen in another language keeps its notice (said again in that language, a
    // warning left to be read included); another screen does not.
    if (!redrawingForLanguage()) hideStaleNotice();
  }
  const navName = r.under || r.name;
  document.querySelectorAll('#nav .nav-link').forEach((a) => {
    if (a.dataset.view === navName) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  const root = clear(document.getElementById('app'));
  root.dataset.view = arg && r.detail ? `${r.name}-detail` : r.name;
  const ctx = ctxFor(session.generation);
  const fn = arg && r.detail ? r.detail : r.view;
  // A screen that reads something before it draws its heading (Payouts asks who pays) has it
  // focused once drawn, unless the keyboard went elsewhere on the page meanwhile.
  let headingLater = false;
  Promise.resolve(fn(root, ctx, arg, query)).then(() => {
    if (headingLater && ctx.alive()) {
      const active = document.activeElement;
      const h = root.querySelector('h1');
      if (h && (!active || active === document.body || active.closest('#nav'))) h.focus({ preventScroll: true });
    }
    // Drawn at last: the banner that said why it could not be (a 503 is not taken down by an
    // answer, as "could not reach" is) goes with it.
    if (retry && ctx.alive()) hideBanner('global-error');
  }, (err) => {
    if (!ctx.alive()) return;
    globalError(err);
    // A screen whose first read found no server (or a busy one) is not left saying
    // "Loading…": it is drawn again until the server answers.
    // Not while someone types in it (the agent's search box is drawn before the first read).
    if (err instanceof ApiError && (err.status === 0 || err.status === 503) && err.code !== 'stale') {
      let timer = null;
      const again = () => {
        if (!ctx.alive()) return;
        const typing = document.activeElement && root.contains(document.activeElement)
          && ['INPUT', 'TEXTAREA', 'SELECT'].includes(document.activeElement.tagName);
        // Nor while the tab is hidden: it is drawn again once someone can see it.
        if (typing || document.hidden) timer = setTimeout(again, RETRY_VIEW_MS);
        else showView(r, arg, query, false, true);
      };
      timer = setTimeout(again, RETRY_VIEW_MS);
      ctx.cleanup(() => clearTimeout(timer));
    }
  });
  if (moveFocus) {
    const h = root.querySelector('h1');
    if (h) h.focus({ preventScroll: true });
    else headingLater = true;
    window.scrollTo(0, 0);
  }
}

// ---------------------------------------------------------------------------------------
// Start

onUnauthorized(() => signOut(t('signin.notAccepted')));
window.addEventListener('hashchange', () => route(true));
// A button or a link does one thing per press: the second click of a double-click (and the
// third of a triple; quick taps count the same) is dropped before any handler sees it. A button
// that opens or answers a question moves the page: the second click of a double-click on
// Approve at the window's bottom edge landed on "Yes, pay it" and paid without the question
// having been read, and one on "Yes, pay it" landed on the footer's API link and took the
// sender away from the answer. (Enter, Space and a click made by the code press with detail 0.)
// Its press too: the second mousedown would move the focus to the button pressed, away from
// where the first click's question put it (its safe answer).
for (const type of ['mousedown', 'click']) {
  document.addEventListener(type, (ev) => {
    if (ev.detail > 1 && ev.target instanceof Element && ev.target.closest('button, [role="button"], input[type="submit"], a[href]')) {
      ev.preventDefault();
      ev.stopImmediatePropagation();
    }
  }, true);
}
document.addEventListener('DOMContentLoaded', () => {
  setupLanguage();
  setupSignIn();
  const saved = savedToken();
  if (!saved) {
    showSignIn();
    return;
  }
  // A session whose screen has not been used for its idle time (the tab was on another page
  // meanwhile, the API reference, where nothing watches for use) is over, as it would have
  // been here.
  const idleS = savedIdleS(IDLE_S_DEFAULT);
  const usedAt = savedUseAt();
  if (idleS > 0 && usedAt !== null && Date.now() - usedAt >= idleS * 1000) {
    endSession();
    showSignIn(t('idle.signedOut'));
    return;
  }
  signIn(saved, { remember: false }).catch((err) => resumeLater(saved, err));
});

// How often a session saved in this tab is tried again while the server cannot be reached.
const RESUME_MS = 5000;
// Its idle time when the tab did not save one (REMIT_UI_IDLE_S's default).
const IDLE_S_DEFAULT = 300;

// A reload that could not check the tab's saved session with the server (it is down, or the
// connection is): the sign-in screen says the session is kept, and tries it again every 5 s,
// signing in once the server answers. It is not kept for ever on a shared screen: it is
// forgotten after the session's idle time with no answer (as an idle screen is signed out),
// at once by "Forget it", and when someone signs in with a token of their own. (It was kept
// silently under an empty sign-in form, and any later reload signed its owner in again.)
function resumeLater(saved, err) {
  if (err instanceof ApiError && err.status === 401) {
    signOut(t('signin.notAccepted'));
    return;
  }
  const idleS = savedIdleS(IDLE_S_DEFAULT);
  const input = document.getElementById('token-input');
  // The idle time runs from the last use of the screen (noted before this page load), then from
  // the last key typed here: someone typing is not an idle screen.
  let lastUse = savedUseAt() || Date.now();
  const used = () => { lastUse = Date.now(); };
  input.addEventListener('input', used);
  let timer = null;
  // "Forget it", in the UI's language (data-i18n: a switch of language redraws it).
  const forget = el('button', { type: 'button', class: 'button', testid: 'signin-forget', 'data-i18n': 'signin.forget' }, t('signin.forget'));
  const stop = () => {
    clearTimeout(timer);
    input.removeEventListener('input', used);
    forget.remove();
  };
  // Said where the sign-in form says its errors, what is typed left as it is.
  const sayInBox = (text) => {
    const box = document.querySelector('#signin-form .form-error');
    box.textContent = text;
    box.hidden = false;
    return box;
  };
  const say = (e) => {
    const box = sayInBox(`${errorText(e)} ${t('signin.keptSession')}`);
    // Put once: moved again at every retry, it lost the keyboard's focus.
    if (!forget.isConnected) box.after(forget);
  };
  forget.addEventListener('click', () => {
    stop();
    endSession();
    sayInBox(t('signin.forgotten'));
    input.focus();
  });
  const again = () => {
    // Someone signed in meanwhile (the saved token is theirs now), or forgot it.
    if (savedToken() !== saved || session.token) return stop();
    if (idleS > 0 && Date.now() - lastUse >= idleS * 1000) {
      stop();
      endSession();
      sayInBox(t('idle.signedOut'));
      return;
    }
    // Someone is typing a token of their own: the saved session is not signed in over it
    // (it would open as they type); it is tried again once the field is empty.
    if (input.value) {
      timer = setTimeout(again, RESUME_MS);
      return;
    }
    // (Someone who began typing while the server was asked goes first.)
    const wanted = () => savedToken() === saved && !session.token && !input.value;
    signIn(saved, { remember: false, still: wanted }).then((opened) => {
      if (opened || savedToken() !== saved || session.token) stop();
      else timer = setTimeout(again, RESUME_MS);
    }, (e) => {
      if (savedToken() !== saved || session.token) return stop();
      if (e instanceof ApiError && e.status === 401) {
        stop();
        endSession();
        sayInBox(t('signin.notAccepted'));
        return;
      }
      // Said again only if the form is untouched: not over what someone is typing.
      if (!input.value) say(e);
      timer = setTimeout(again, RESUME_MS);
    });
  };
  showSignIn();
  say(err);
  timer = setTimeout(again, RESUME_MS);
}
