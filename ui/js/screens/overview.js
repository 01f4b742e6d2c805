// Admin screen #/overview: the ledger integrity check, the USD-KES rate and setting it, the M-Pesa
// float (balances last reported, low paying accounts), replication to PostgreSQL (how far behind,
// whether it answers), and how many payouts are stuck (resolved on the Payouts screen).

import { api, errorText, readAll } from '../api.js';
import { STUCK_SHOWN_MAX } from './payouts.js';
import { add, button, clear, el, emptyState, field, formError, pageHead, timeEl } from '../dom.js';
import { formatRate, kes, parseDecimal, rateKesPerUsdE4, when } from '../format.js';
import { amountError, busy, checkFields, onSubmit } from '../forms.js';
import { t, tn } from '../i18n.js';
import { globalError, notice } from '../notices.js';

// The M-Pesa accounts that pay payouts (the API flags them `low` below the alert), in this order.
const PAYING_ACCOUNTS = {
  'Utility Account': { pays: 'float.pays.phone', atRisk: 'float.risk.phone' },
  'Working Account': { pays: 'float.pays.business', atRisk: 'float.risk.business' },
};
const PAYING_ORDER = Object.keys(PAYING_ACCOUNTS);
const GATEWAY_NOTES = {
  simulator: 'float.note.simulator',
  none: 'float.note.none',
};

function floatAccount(a, alertCents) {
  const paying = PAYING_ACCOUNTS[a.name];
  return el('li', { class: `float-account${a.low ? ' low' : ''}`, testid: 'float-account', dataset: { account: a.name, low: String(!!a.low) } },
    el('div', { class: 'float-head' },
      el('span', { class: 'float-name', testid: 'float-name' }, a.name),
      el('strong', { class: 'float-amount', testid: 'float-balance' }, kes(a.availableKesCents))),
    el('p', { class: 'muted small', testid: 'float-pays' }, t(paying ? paying.pays : 'float.pays.none')),
    a.low ? el('p', { class: 'warn', role: 'alert', testid: 'float-low' },
      t('float.low', { account: a.name, alert: kes(alertCents), what: t(paying ? paying.atRisk : 'float.risk.any') })) : null);
}

export async function viewOverview(root, ctx) {
  const integrity = el('section', { class: 'card', testid: 'integrity', 'aria-labelledby': 'int-h' });
  const fxBox = el('section', { class: 'card', testid: 'fx', 'aria-labelledby': 'fx-h' });
  const floatBox = el('section', { class: 'section card float', testid: 'float', 'aria-labelledby': 'float-h' });
  const stuck = el('div', { class: 'stack', testid: 'stuck-payouts' });
  const replicationBox = el('section', { class: 'section card', testid: 'replication', 'aria-labelledby': 'repl-h' });
  root.append(pageHead(t('nav.overview'), t('overview.intro')),
    el('div', { class: 'grid-2 top' }, integrity, fxBox),
    floatBox,
    replicationBox,
    el('section', { class: 'section card', 'aria-labelledby': 'stuck-h' },
      el('div', { class: 'section-head' }, el('h2', { id: 'stuck-h' }, t('payouts.stuckTitle')),
        button(t('common.refresh'), { small: true, testid: 'refresh-stuck', onclick: () => loadStuck().catch(globalError) })),
      stuck));

  async function loadIntegrity() {
    clear(integrity).append(el('h2', { id: 'int-h' }, t('overview.integrity')), el('p', { class: 'muted' }, t('overview.checking')));
    const r = await api('GET', '/admin/integrity');
    const checks = (r && r.checks) || [];
    const mismatches = (r && r.mismatches) || [];
    const runBtn = button(t('overview.runCheck'), { small: true, testid: 'run-integrity', onclick: () => busy(runBtn, loadIntegrity).catch(globalError) });
    add(clear(integrity), [
      el('div', { class: 'section-head' }, el('h2', { id: 'int-h' }, t('overview.integrity')), runBtn),
      el('p', { class: `big-status ${r.ok ? 'ok' : 'bad'}` },
        el('span', { class: 'status-dot', 'aria-hidden': 'true' }),
        el('span', { testid: 'integrity-status', dataset: { ok: String(!!r.ok) } }, r.ok ? t('overview.ok') : t('overview.notOk')),
        el('span', { class: 'muted small' }, ` · ${t('overview.checkedAt', { at: when(new Date().toISOString()) })}`)),
      mismatches.length ? el('div', { class: 'mismatches' }, el('h3', null, t('overview.mismatches', { n: mismatches.length })),
        el('ul', { testid: 'integrity-mismatches' }, mismatches.map((m) => el('li', null, m)))) : null,
      el('details', null, el('summary', null, tn('count.checks', checks.length)),
        el('ul', { class: 'checks', testid: 'integrity-checks' }, checks.map((c) => el('li', null, c))))]);
  }

  // Shows a rate read again (the form left as it is).
  function showRate(rate) {
    const shown = fxBox.querySelector('[data-testid="fx-rate-value"]');
    if (shown && rate) shown.textContent = formatRate(rateKesPerUsdE4(rate.rate));
  }
  async function loadFx() {
    const rates = await api('GET', '/fx-rates');
    const r = rates && rates['USD-KES'];
    const form = el('form', { class: 'inline-form row-form', testid: 'fx-form' });
    const input = field({ label: t('overview.newRate'), dataField: 'rate', testid: 'fx-rate-input', attrs: { inputmode: 'decimal' }, hint: t('overview.newRateHint'), wrapClass: 'grow' });
    form.append(input.wrap, el('div', { class: 'actions end' }, el('button', { type: 'submit', class: 'button primary', testid: 'fx-submit' }, t('overview.setRate'))), formError());
    // A rate over 5 times away from today's is most likely a slipped decimal point (1522.5 for
    // 152.25): it is set only when asked a second time, as `remit fx set` warns of it.
    let farConfirmed = null;
    onSubmit(form, async () => {
      const v = input.input.value.trim();
      // A number that is not a rate (0, over the limit) is told so, not that it has too many
      // decimals.
      const next = parseDecimal(v, 4);
      const problem = !v ? t('overview.err.rateEmpty')
        : next ? (next > 100000 * 10000 ? t('overview.err.rateRange') : null)
          : /^0*(\.0*)?$/.test(v) ? t('overview.err.rateRange') : amountError(v, 4, t('overview.err.rate'), '152.25', 'rate');
      if (!checkFields(form, [[input.input, problem]])) return;
      // Compared with the rate of now, not the one read when the screen opened (set since by
      // another admin or `remit fx set`, a change of a tenth from it went through unasked).
      const latest = await api('GET', '/fx-rates').catch(() => null);
      const current = (latest && latest['USD-KES']) || r;
      const now = current ? rateKesPerUsdE4(current.rate) : null;
      showRate(current);
      const far = now && (next > now * 5 || next * 5 < now);
      // A change of more than a tenth (152.25 typed as 125.25) is asked twice too: every new
      // request and every shilling of cash is priced at it at once.
      const moved = now && Math.abs(next - now) * 10 > now;
      if ((far || moved) && farConfirmed !== v) {
        farConfirmed = v;
        const said = far ? t('overview.err.rateFar', { now: formatRate(now) })
          : t('overview.err.rateMoved', { now: formatRate(now), next: formatRate(next), percent: Math.round((Math.abs(next - now) * 100) / now) });
        checkFields(form, [[input.input, said]]);
        return;
      }
      await api('PUT', '/fx-rates/USD-KES', { rate: v });
      notice(() => t('overview.rateSet', { rate: v }));
      await loadFx();
      // The form is drawn again: the keyboard goes to its new field (it fell to the page).
      const again = fxBox.querySelector('[data-testid="fx-rate-input"]');
      if (again) again.focus();
    });
    clear(fxBox).append(
      el('h2', { id: 'fx-h' }, t('overview.rate')),
      el('p', { class: 'rate' }, el('span', { class: 'muted' }, 'USD-KES '),
        el('strong', { testid: 'fx-rate-value' }, r ? formatRate(rateKesPerUsdE4(r.rate)) : '—'),
        el('span', { class: 'muted' }, ` ${t('overview.kesPerUsd')}`)),
      el('p', { class: 'muted small' }, `${t('overview.updated')} `, r && r.updatedAt ? timeEl(r.updatedAt) : t('overview.defaultRate')),
      form);
  }

  async function loadFloat() {
    const f = await api('GET', '/admin/float');
    if (!ctx.alive()) return;
    const rank = (name) => { const i = PAYING_ORDER.indexOf(name); return i < 0 ? PAYING_ORDER.length : i; };
    const accounts = ((f && f.accounts) || []).slice().sort((a, b) => rank(a.name) - rank(b.name));
    const alertCents = f && Number.isInteger(f.alertKesCents) ? f.alertKesCents : null;
    let note = GATEWAY_NOTES[f && f.gateway] ? t(GATEWAY_NOTES[f.gateway]) : null;
    if (!note && !accounts.length) note = t('float.note.nothing');
    const refreshBtn = button(t('common.refresh'), { small: true, testid: 'refresh-float', onclick: () => busy(refreshBtn, loadFloat).catch(globalError) });
    add(clear(floatBox), [
      el('div', { class: 'section-head' }, el('h2', { id: 'float-h' }, t('float.title')), refreshBtn),
      note ? el('p', { class: 'muted', testid: 'float-note', dataset: { gateway: f && f.gateway } }, note) : null,
      accounts.length ? el('ul', { class: 'float-accounts', testid: 'float-accounts' }, accounts.map((a) => floatAccount(a, alertCents))) : null,
      accounts.length ? el('p', { class: 'muted small', testid: 'float-updated' }, `${t('float.lastReported')} `, timeEl(f.updatedAt)) : null,
      el('p', { class: 'muted small', testid: 'float-alert' }, alertCents > 0
        ? t('float.alert', { alert: kes(alertCents) })
        : t('float.noAlert'))]);
  }

  let replicating = false;
  async function loadReplication() {
    const r = await api('GET', '/admin/replication');
    if (!ctx.alive()) return;
    replicating = !!(r && r.enabled);
    const head = el('h2', { id: 'repl-h' }, t('replication.title'));
    if (!r || !r.enabled) {
      clear(replicationBox).append(head, el('p', { class: 'muted', testid: 'replication-off' }, t('replication.off')));
      return;
    }
    const ok = r.connected && r.lagChanges === 0;
    // PostgreSQL that answers with a refusal (a read-only database, a column dropped by hand) is
    // not "cannot be reached": its own words follow in lastError.
    const refused = !r.connected && /PostgreSQL says /.test(r.lastError || '');
    const state = refused ? t('replication.refused')
      : !r.connected ? t('replication.unreachable')
      : (r.lagChanges > 0 ? t('replication.behind', { n: r.lagChanges, s: r.lagSeconds.toFixed(1) }) : t('replication.upToDate'));
    add(clear(replicationBox), [
      head,
      el('p', { class: `big-status ${ok ? 'ok' : 'bad'}` },
        el('span', { class: 'status-dot', 'aria-hidden': 'true' }),
        el('span', { testid: 'replication-status', dataset: { connected: String(!!r.connected), lagChanges: String(r.lagChanges) } }, state)),
      el('p', { class: 'muted small' }, `${t('replication.target')} `, el('code', { testid: 'replication-target' }, r.target),
        ` · ${t('replication.ledger')} `, el('code', null, r.ledgerId)),
      el('p', { class: 'muted small' }, `${t('replication.lastWritten')} `, r.replicatedAt ? timeEl(r.replicatedAt) : t('replication.notYet')),
      r.lastError ? el('p', { class: 'warn small', testid: 'replication-error' }, r.lastError) : null]);
  }

  async function loadStuck() {
    const items = await readAll('/payouts', { status: 'stuck' }, STUCK_SHOWN_MAX);
    if (!ctx.alive()) return;
    const n = items.length;
    clear(stuck).append(n
      ? el('div', { class: 'warn', testid: 'stuck-summary' }, el('p', null, tn(items.more ? 'count.stuckAtLeast' : 'count.stuck', n)), el('a', { class: 'button secondary small', href: '#/payouts', testid: 'go-payouts' }, t('overview.resolveThem')))
      : emptyState(t('payouts.noStuck'), 'no-stuck'));
  }

  // The check reads the whole ledger (tens of seconds at a million escrows): run on request,
  // not at every visit of this screen.
  const runIntegrity = () => loadIntegrity().catch((err) => { clear(integrity).append(el('h2', null, t('overview.integrity')), el('p', { class: 'form-error' }, errorText(err))); });
  const firstRun = button(t('overview.runCheck'), { small: true, testid: 'run-integrity', onclick: () => busy(firstRun, runIntegrity) });
  add(clear(integrity), [
    el('div', { class: 'section-head' }, el('h2', { id: 'int-h' }, t('overview.integrity')), firstRun),
    el('p', { class: 'muted', testid: 'integrity-idle' }, t('overview.checkIdle'))]);
  await Promise.all([
    loadFx().catch((err) => { clear(fxBox).append(el('h2', null, t('overview.rate')), el('p', { class: 'form-error' }, errorText(err))); }),
    loadFloat().catch((err) => { clear(floatBox).append(el('h2', null, t('float.title')), el('p', { class: 'form-error' }, errorText(err))); }),
    loadReplication().catch((err) => { clear(replicationBox).append(el('h2', null, t('replication.title')), el('p', { class: 'form-error' }, errorText(err))); }),
    loadStuck().catch(globalError),
  ]);
  // Lag moves by the second: refreshed while the screen is open, when there is replication.
  ctx.every(5000, () => (replicating ? loadReplication() : undefined));
  ctx.every(15000, () => (stuck.contains(document.activeElement) ? undefined : loadStuck()));
  ctx.every(15000, async () => {
    const latest = await api('GET', '/fx-rates');
    if (ctx.alive()) showRate(latest && latest['USD-KES']);
  });
}
