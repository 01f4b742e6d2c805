// Today's USD-KES rate (GET /fx-rates) as an integer of KES per USD × 10⁴, fetched every ten
// seconds at most (a screen's periodic read; `fresh` when someone asks: Refresh, a form opened)
// and shared by the screens that show KES beside USD.

import { api } from './api.js';
import { rateKesPerUsdE4 } from './format.js';

const FRESH_MS = 10 * 1000;
let cached = null;

// { e4, updatedAt } or null when the server has no rate.
export async function todayRate({ fresh = false } = {}) {
  if (!fresh && cached && Date.now() - cached.at < FRESH_MS) return cached.rate;
  const rates = await api('GET', '/fx-rates');
  const r = rates && rates['USD-KES'];
  const e4 = r ? rateKesPerUsdE4(r.rate) : null;
  const rate = e4 ? { e4, updatedAt: r.updatedAt || null } : null;
  cached = { at: Date.now(), rate };
  return rate;
}
