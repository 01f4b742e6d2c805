// Formatting for people: money from integer minor units only (never floats for amounts), the
// USD-KES rate as an integer × 10⁴, dates in the browser's locale, merchant accounts in words.

function groupThousands(digits) {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

export function money(cents, currency) {
  if (cents === null || cents === undefined || cents === '' || !Number.isFinite(Number(cents))) return '—';
  let c = Math.trunc(Number(cents));
  const negative = c < 0;
  if (negative) c = -c;
  const minor = c % 100;
  const major = (c - minor) / 100;
  return `${currency} ${negative ? '-' : ''}${groupThousands(String(major))}.${String(minor).padStart(2, '0')}`;
}
export const usd = (c) => money(c, 'USD');
export const kes = (c) => money(c, 'KES');

// Cents as decimal text for an input (50000 → "500.00").
export function centsToInput(cents) {
  const c = Math.max(0, Math.trunc(Number(cents) || 0));
  const minor = c % 100;
  return `${(c - minor) / 100}.${String(minor).padStart(2, '0')}`;
}

// A rate as an integer of KES per USD × 10⁴.
export function rateKesPerUsdE4(rate) {
  const n = Number(rate);
  return Number.isFinite(n) && n > 0 ? Math.round(n * 10000) : null;
}

export function formatRate(e4) {
  if (!e4) return '—';
  const frac = String(e4 % 10000).padStart(4, '0').replace(/0{1,2}$/, '').replace(/(\d\d)0$/, '$1');
  return `${groupThousands(String(Math.floor(e4 / 10000)))}.${frac}`;
}

// USD cents for KES cents at a rate, rounded up: ceil(kesCents × 10⁴ / rateKesPerUsdE4), integers only.
export function usdCentsForKes(kesCents, e4) {
  const a = BigInt(kesCents) * 10000n;
  const b = BigInt(e4);
  return Number((a + b - 1n) / b);
}

const dateFormat = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
});
export function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : dateFormat.format(d);
}

export function merchantText(account) {
  if (!account) return '—';
  if (account.type === 'paybill') {
    return `PayBill ${account.number || ''}${account.accountReference ? `, account ${account.accountReference}` : ''}`;
  }
  if (account.type === 'till') return `Till ${account.number || ''}`;
  if (account.type === 'phone') return `Phone ${account.number || ''}`;
  return `${account.type || ''} ${account.number || ''}`.trim();
}
