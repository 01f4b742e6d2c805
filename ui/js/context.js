// The context a screen gets when it is shown: timers (ctx.every) and cleanups that stop when the
// screen changes or the user signs out, and ctx.alive() to tell whether the screen is still the
// current one.

import { globalError } from './notices.js';
import { session } from './session.js';

let cleanups = [];

export function ctxFor(generation) {
  const ctx = {
    alive: () => generation === session.generation && !ctx.dead,
    dead: false,
    cleanup(fn) { cleanups.push(fn); },
    // Calls fn every ms (never overlapping), skipping while the tab is hidden.
    every(ms, fn, { limitMs = 60 * 60 * 1000, slowAfterMs = 0, slowMs = 0 } = {}) {
      const started = Date.now();
      let timer = null;
      let stopped = false;
      const tick = async () => {
        if (stopped || !ctx.alive()) return;
        const elapsed = Date.now() - started;
        if (elapsed > limitMs) return;
        if (!document.hidden) {
          try { await fn(); } catch (err) { if (ctx.alive()) globalError(err); }
        }
        if (stopped || !ctx.alive()) return;
        timer = setTimeout(tick, slowAfterMs && elapsed > slowAfterMs ? slowMs : ms);
      };
      timer = setTimeout(tick, ms);
      const stop = () => { stopped = true; clearTimeout(timer); };
      ctx.cleanup(stop);
      return stop;
    },
  };
  cleanups.push(() => { ctx.dead = true; });
  return ctx;
}

export function runCleanups() {
  const fns = cleanups;
  cleanups = [];
  for (const fn of fns) {
    try { fn(); } catch (_) { /* ignore */ }
  }
}
