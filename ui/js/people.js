// Who the users an admin reads about are (the actors of audit lines, who recorded a deposit):
// the newest 200 users, read once a minute at most. Anyone else, and every user to a reader who
// is not an admin, keeps their id.

import { api } from './api.js';
import { session } from './session.js';
import { roleLabel } from './words.js';

const FRESH_MS = 60 * 1000;
let cached = null;

const isAdmin = () => Boolean(session.me && session.me.role === 'admin');

// Reads the users (admins only; a failure leaves the ids as they are).
export async function loadPeople() {
  if (!isAdmin()) return;
  if (cached && cached.generation === session.generation && Date.now() - cached.at < FRESH_MS) return;
  const d = await api('GET', '/users?limit=200').catch(() => null);
  if (!d) return;
  cached = { at: Date.now(), generation: session.generation, users: new Map((d.items || []).map((u) => [u.userId, u])) };
}

// "Kiosk 1 (Agent)" for a user id read by `loadPeople`, else null.
export function personName(id) {
  if (!isAdmin() || !cached || cached.generation !== session.generation) return null;
  const u = cached.users.get(id);
  return u ? `${u.name || u.userId} (${roleLabel(u.role)})` : null;
}
