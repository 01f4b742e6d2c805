// Entry point: signing in and out, the navigation of each role, routing #/<screen> to its screen
// module, and the start-up (resuming the token saved in this tab).
// Native ES modules, no build step: shared parts in js/, one module per screen in js/screens/.

import { ApiError, api, errorText, onUnauthorized } from './api.js';
import { ctxFor, runCleanups } from './context.js';
import { clear, el } from './dom.js';
import { clearErrors, markField, onSubmit } from './forms.js';
import { globalError, hideBanner } from './notices.js';
import { beginSession, endSession, savedToken, session } from './session.js';
import { viewApprovals } from './screens/approvals.js';
import { viewEscrows } from './screens/escrows.js';
import { viewFind } from './screens/find.js';
import { viewNewEscrow } from './screens/new-escrow.js';
import { viewOverview } from './screens/overview.js';
import { viewRequest } from './screens/request.js';
import { viewUsers } from './screens/users.js';

// ---------------------------------------------------------------------------------------
// Sign in / out

async function signIn(token, { remember = true } = {}) {
  const me = await api('GET', '/me', undefined, { token, signingIn: true });
  if (!me || !me.role) throw new ApiError(0, 'bad_answer', 'The server did not say who this token belongs to.');
  beginSession(token, me, remember);
  startApp();
}

function signOut(message) {
  runCleanups();
  endSession();
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
  const me = session.me;
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
  if (!session.me) return;
  const items = NAV[session.me.role] || [];
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  let [name, arg] = parts;
  const allowed = new Set(items.map(([n]) => n));
  if ((session.me.role === 'agent' || session.me.role === 'recipient') && name === 'request' && arg) allowed.add('request');
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
  const navName = name === 'request' ? (session.me.role === 'agent' ? 'payments' : 'mine') : name;
  document.querySelectorAll('#nav .nav-link').forEach((a) => {
    if (a.dataset.view === navName) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  const root = clear(document.getElementById('app'));
  root.dataset.view = name;
  const ctx = ctxFor(session.generation);
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

// ---------------------------------------------------------------------------------------
// Start

onUnauthorized(() => signOut('Your access token was not accepted any more. Sign in again.'));
window.addEventListener('hashchange', () => route(true));
document.addEventListener('DOMContentLoaded', () => {
  setupSignIn();
  const saved = savedToken();
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
