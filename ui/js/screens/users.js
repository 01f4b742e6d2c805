// Admin screen #/users: creating users, issuing tokens (shown once) and revoking them, with a
// clear warning before an admin revokes the token they are signed in with.

import { api, qs, readAll } from '../api.js';
import { askBefore, button, el, field, formError, pageHead, patchList, showOnce, timeEl, uid } from '../dom.js';
import { kenyanDigits } from '../format.js';
import { busy, checkFields, onSubmit, showError, textProblem, TEXT_CHARS_MAX } from '../forms.js';
import { t, tn } from '../i18n.js';
import { globalError, notice } from '../notices.js';
import { session } from '../session.js';
import { roleLabel } from '../words.js';

const ROLES = ['sender', 'recipient', 'agent', 'admin'];

// Is this token prefix the one of the token this tab is signed in with?
function isOwnToken(prefix) {
  return Boolean(prefix && session.token && session.token.startsWith(prefix));
}

export async function viewUsers(root, ctx) {
  const tokenBox = el('div', { 'aria-live': 'polite' });
  const list = el('div', { class: 'stack', testid: 'user-list' });
  const more = button(t('common.loadMore'), { testid: 'load-more', hidden: true });
  let cursor = null;

  // Each new user's token in a place of its own, newest first: a second user made before the
  // first token was put away does not take the first one's only sight with it.
  function showToken(user, token) {
    const slot = el('div');
    tokenBox.prepend(slot);
    showOnce(slot, {
      title: t('users.tokenFor', { name: user.name || user.userId, role: roleLabel(user.role) }),
      warning: t('token.once'),
      value: token,
      label: t('token.newLabel'),
      testids: { box: 'new-token-box', value: 'new-token', copy: 'copy-token', done: 'token-done' },
      // Back to that user's card (redrawn since: the button clicked is gone).
      fallback: () => issueButtonOf(user.userId) || name.input,
    });
  }

  // A user's card's "Issue new token", once the list is drawn again.
  function issueButtonOf(userId) {
    const card = Array.from(list.children).find((c) => c.dataset.userId === userId);
    return card ? card.querySelector('[data-testid="issue-token"]') : null;
  }

  const form = el('form', { class: 'form card', testid: 'user-form', 'aria-labelledby': 'new-user-h' });
  const role = field({ label: t('users.role'), tag: 'select', dataField: 'role', testid: 'user-role', options: ROLES.map((r) => el('option', { value: r }, roleLabel(r))) });
  const name = field({ label: t('users.name'), dataField: 'name', testid: 'user-name', attrs: { maxlength: TEXT_CHARS_MAX } });
  const phone = field({ label: t('users.phone'), optional: true, dataField: 'phone', testid: 'user-phone', type: 'tel', hint: t('users.phoneHint') });
  const language = field({ label: t('users.language'), tag: 'select', dataField: 'language', testid: 'user-language', options: ['en', 'sw'].map((l) => el('option', { value: l }, t(`language.${l}`))) });
  // The phone is optional but for a recipient: the label says so as the role is picked.
  const phoneOptional = phone.label.querySelector('.optional');
  const syncPhone = () => {
    const needed = role.input.value === 'recipient';
    if (phoneOptional) phoneOptional.hidden = needed;
    phone.input.setAttribute('aria-required', needed ? 'true' : 'false');
  };
  role.input.addEventListener('change', syncPhone);
  syncPhone();
  form.append(el('h2', { id: 'new-user-h' }, t('users.new')), el('div', { class: 'grid-3' }, role.wrap, name.wrap, phone.wrap, language.wrap), formError(),
    el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'button primary', testid: 'user-submit' }, t('users.create'))));
  onSubmit(form, async () => {
    const p = phone.input.value.trim();
    if (!checkFields(form, [
      [name.input, textProblem(name.input.value, t('users.err.name'))],
      [phone.input, p && !kenyanDigits(p) ? t('newEscrow.err.phone')
        : (!p && role.input.value === 'recipient' ? t('users.err.recipientPhone') : null)],
    ])) return;
    const body = { role: role.input.value, name: name.input.value.trim(), language: language.input.value };
    if (p) body.phone = p;
    const r = await api('POST', '/users', body);
    form.reset();
    syncPhone();
    showToken((r && r.user) || body, r && r.token);
    await load(false);
  });

  root.append(pageHead(t('nav.users'), t('users.intro'),
    button(t('common.refresh'), { testid: 'refresh', onclick: () => load(false).catch(globalError) })), tokenBox, form,
  el('section', { class: 'section', 'aria-labelledby': 'users-h' }, el('h2', { id: 'users-h' }, t('users.list')), list, el('div', { class: 'actions center' }, more)));

  function tokenRow(u, tk) {
    const own = isOwnToken(tk.prefix);
    const li = el('li', { class: `token-item${own ? ' own' : ''}`, testid: 'token-row', dataset: { prefix: tk.prefix, own: String(own) } },
      el('span', { class: 'mono' }, `${tk.prefix}\u2026`),
      own ? el('span', { class: 'own-tag', testid: 'own-token' }, t('users.yourToken')) : null,
      el('span', { class: 'muted small' }, `${t('users.created')} `, timeEl(tk.createdAt), ` · ${t('users.lastUsed')} `, tk.lastUsedAt ? timeEl(tk.lastUsedAt) : t('users.never')),
      tk.revokedAt ? el('span', { class: 'status status-cancelled' }, t('users.revoked')) : el('span', { class: 'status status-active' }, t('users.tokenActive')));
    if (!tk.revokedAt) {
      // Named with whose token it is: every row's button said only "Revoke" to a screen
      // reader or a list of the page's buttons, one user's as another's.
      const whose = u.name || u.userId;
      const revoke = button(t('users.revoke'), { small: true, variant: 'danger-outline', testid: 'revoke-token', 'aria-label': t('users.revokeNamed', { prefix: tk.prefix, name: whose }) });
      const askId = uid('revoke-ask');
      const confirm = el('div', { class: `confirm-inline${own ? ' danger-box' : ''}`, hidden: true, testid: 'revoke-confirm', role: own ? 'alert' : 'group', 'aria-describedby': askId },
        own ? el('p', { class: 'own-warning', testid: 'revoke-own-warning', id: askId }, el('strong', null, t('users.ownWarningTitle')), ' ', t('users.ownWarning')) : el('span', { id: askId }, t('users.revokeAsk', { prefix: tk.prefix, name: whose })),
        el('span', { class: 'actions' },
          button(own ? t('users.revokeOwnYes') : t('users.revokeYes'), {
            small: true, variant: 'danger', testid: 'confirm-revoke',
            onclick: (ev) => busy(ev.currentTarget, async () => {
              await api('DELETE', `/tokens/${encodeURIComponent(tk.prefix)}`);
              notice(() => t('users.revokedNotice', { prefix: tk.prefix, name: u.name }));
              await load(false);
              // The row is gone from the redrawn card: the keyboard goes to that card.
              const next = issueButtonOf(u.userId);
              if (next) next.focus();
            }).catch((err) => showError(li, err)),
          }),
          button(t('users.keep'), { small: true, testid: 'keep-token' })));
      // The safe answer has the focus, whoever's token it is: Enter keeps it (a kiosk signed
      // out mid-shift by a second Enter otherwise).
      askBefore(revoke, confirm, confirm.querySelector('[data-testid="keep-token"]'));
      li.append(revoke, confirm, el('span', { class: 'form-error', role: 'alert', hidden: true }));
    }
    return li;
  }

  function userCard(u) {
    const whose = u.name || u.userId;
    const issue = button(t('users.issue'), {
      small: true, testid: 'issue-token', 'aria-label': t('users.issueNamed', { name: whose }),
      onclick: (ev) => busy(ev.currentTarget, async () => {
        const r = await api('POST', `/users/${encodeURIComponent(u.userId)}/tokens`, {});
        showToken(u, r && (r.token || (r.item && r.item.token)));
        await load(false);
      }).catch((err) => showError(card, err)),
    });
    // The language of their SMS, and the other one a click away: a recipient made by an escrow
    // to their phone starts in English, however they read.
    const spoken = u.language === 'sw' ? 'sw' : 'en';
    const other = spoken === 'sw' ? 'en' : 'sw';
    const switchLanguage = button(t('users.smsSwitch', { language: t(`language.${other}`) }), {
      small: true, testid: 'user-language-switch', 'aria-label': t('users.smsSwitchNamed', { name: whose, language: t(`language.${other}`) }),
      onclick: (ev) => busy(ev.currentTarget, async () => {
        await api('PUT', `/users/${encodeURIComponent(u.userId)}/language`, { language: other });
        notice(() => t('users.languageNotice', { name: u.name || u.userId, language: t(`language.${other}`) }));
        await load(false);
      }).catch((err) => showError(card, err)),
    });
    const tokens = u.tokens || [];
    const card = el('article', { class: 'card user', testid: 'user-card', dataset: { userId: u.userId, role: u.role } },
      el('header', { class: 'card-head' },
        el('div', { class: 'card-head-main' }, el('h3', { class: 'card-title' }, u.name || '—', u.phone ? el('span', { class: 'phone' }, u.phone) : null),
          el('p', { class: 'muted small' }, el('span', { class: 'mono id-line' }, u.userId), ` · ${t('users.created')} `, timeEl(u.createdAt))),
        el('span', { class: 'role-tag' }, roleLabel(u.role))),
      el('p', { class: 'muted small' }, el('span', { testid: 'user-sms-language' }, t('users.smsIn', { language: t(`language.${spoken}`) })), ' ', switchLanguage),
      el('h4', null, tn('users.tokens', tokens.filter((x) => !x.revokedAt).length)),
      tokens.length ? el('ul', { class: 'rows tokens' }, tokens.map((x) => tokenRow(u, x))) : el('p', { class: 'muted' }, t('users.noTokens')),
      el('div', { class: 'actions card-actions' }, issue),
      el('div', { class: 'card-error form-error', role: 'alert', hidden: true }));
    return card;
  }

  // Read again after a change, the list keeps as many users as it showed (read from the top,
  // 200 at a time): read as its first page only, the card acted on past the first 100 went.
  async function load(append) {
    if (append) {
      const d = await api('GET', `/users${qs({ limit: 100, cursor })}`);
      if (!ctx.alive()) return;
      cursor = d.nextCursor || null;
      (d.items || []).forEach((u) => { const c = userCard(u); c.dataset.key = u.userId; list.append(c); });
    } else {
      const items = await readAll('/users', {}, Math.max(100, list.children.length));
      if (!ctx.alive()) return;
      cursor = items.nextCursor;
      patchList(list, items, (u) => u.userId, userCard);
    }
    more.hidden = !cursor;
  }
  more.addEventListener('click', () => busy(more, () => load(true)).catch(globalError));
  await load(false);
}
