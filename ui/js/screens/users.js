// Admin screen #/users: creating users, issuing tokens (shown once) and revoking them.

import { api, qs } from '../api.js';
import { button, clear, el, field, formError, pageHead, patchList, timeEl } from '../dom.js';
import { busy, onSubmit, showError } from '../forms.js';
import { globalError, notice } from '../notices.js';

export async function viewUsers(root, ctx) {
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
