// The API reference page (api.html): reads /openapi.json, the document this server serves, and
// shows every operation (method, path, who may call it, parameters, request body, responses),
// every webhook remit posts to receivers, and every schema, linked to one another. Nothing is
// loaded from elsewhere.

import { add, el } from './dom.js';
import { lang, t, translateStatic } from './i18n.js';

const SCHEMA_PREFIX = '#/components/schemas/';

// Text with `code spans` as <code>.
function prose(text, cls = 'api-text') {
  const parts = String(text || '').split('`');
  return el('p', { class: cls }, parts.map((part, i) => (i % 2 ? el('code', null, part) : part)));
}

// Resolves a `$ref` inside the document.
function resolve(doc, node) {
  if (!node || typeof node !== 'object' || !node.$ref) return node;
  return node.$ref.slice(2).split('/').reduce((at, key) => (at ? at[key] : undefined), doc) || node;
}

function schemaLink(ref) {
  const name = ref.slice(SCHEMA_PREFIX.length);
  return el('a', { href: `#schema-${name}`, class: 'mono' }, name);
}

// A schema in one line: a link for a reference, its type and its bounds otherwise.
function schemaSummary(schema) {
  if (!schema || typeof schema !== 'object') return el('span', { class: 'mono' }, 'any');
  if (schema.$ref) return schemaLink(schema.$ref);
  for (const key of ['anyOf', 'oneOf']) {
    if (Array.isArray(schema[key])) {
      const parts = schema[key].map(schemaSummary);
      return el('span', null, parts.flatMap((p, i) => (i ? [' | ', p] : [p])));
    }
  }
  if (Array.isArray(schema.allOf) && schema.allOf.length === 1 && !schema.properties) return schemaSummary(schema.allOf[0]);
  const bits = [];
  if ('const' in schema) bits.push(JSON.stringify(schema.const));
  else if (Array.isArray(schema.enum)) bits.push(schema.enum.map((v) => JSON.stringify(v)).join(' | '));
  else if (schema.type) bits.push([schema.type].flat().join(' | '));
  else if (schema.not) bits.push(`not ${JSON.stringify(schema.not.type || schema.not)}`);
  else bits.push(schema.properties ? 'object' : 'any');
  if (schema.type === 'array' && schema.items) {
    return el('span', { class: 'mono' }, `${bits.join(' ')} of `, schemaSummary(schema.items), bounds(schema));
  }
  return el('span', { class: 'mono' }, bits.join(' '), bounds(schema));
}

function bounds(schema) {
  const b = [];
  const pairs = [['minimum', '≥'], ['exclusiveMinimum', '>'], ['maximum', '≤'], ['exclusiveMaximum', '<'],
    ['minLength', 'length ≥'], ['maxLength', 'length ≤'], ['minItems', 'items ≥'], ['maxItems', 'items ≤'], ['multipleOf', '× of']];
  for (const [key, sign] of pairs) if (key in schema) b.push(`${sign} ${schema[key]}`);
  if (schema.pattern) b.push(`pattern ${schema.pattern}`);
  if (schema.format) b.push(schema.format);
  return b.length ? ` (${b.join(', ')})` : '';
}

function methodBadge(method) {
  return el('span', { class: `api-method api-method-${method}`, testid: 'api-method' }, method.toUpperCase());
}

function parameterList(doc, params) {
  return el('ul', { class: 'api-list', testid: 'api-parameters' }, params.map((raw) => {
    const p = resolve(doc, raw);
    return el('li', null,
      el('code', null, p.name), ' ', el('span', { class: 'muted small' }, `${p.in}${p.required ? `, ${t('api.required')}` : ''}`), ' — ',
      schemaSummary(p.schema), p.description ? prose(p.description, 'api-text small') : null);
  }));
}

function responseList(doc, responses) {
  return el('ul', { class: 'api-list', testid: 'api-responses' }, Object.entries(responses).map(([status, raw]) => {
    const r = resolve(doc, raw);
    const content = r.content || {};
    const types = Object.entries(content).map(([type, media]) => el('span', null, ' ', el('span', { class: 'muted small' }, type), ' ', schemaSummary(media.schema)));
    return el('li', null, el('strong', { class: 'mono' }, status), ' ', types, prose(r.description, 'api-text small'));
  }));
}

// An operation of the API, or (`kind` 'webhook') a request remit makes to a receiver: its
// `path` is then the event type, and who may call it does not apply.
function operationCard(doc, method, path, op, kind = 'operation') {
  const security = op.security || doc.security || [];
  const who = security.length === 0 || security.some((s) => Object.keys(s).length === 0) ? t('api.anyone') : t('api.bearer');
  const roles = Array.isArray(op['x-roles']) ? ` (${op['x-roles'].join(', ')})` : '';
  const webhook = kind === 'webhook';
  const card = el('article', { class: 'card api-op', id: `${webhook ? 'webhook' : 'op'}-${op.operationId}`, testid: `api-${kind}`, dataset: { [kind]: `${method.toUpperCase()} ${path}` } },
    el('h3', { class: 'api-op-title' }, methodBadge(method), ' ', el('span', { class: 'mono api-path' }, path)),
    el('p', { class: 'api-summary' }, el('strong', null, op.summary || ''), webhook ? null : [' ', el('span', { class: 'muted small' }, `${who}${roles}`)]),
    op.description ? prose(op.description) : null);
  if (op.parameters && op.parameters.length) add(card, [el('h4', null, t('api.parameters')), parameterList(doc, op.parameters)]);
  if (op.requestBody) {
    const body = resolve(doc, op.requestBody);
    add(card, [el('h4', null, t('api.requestBody')),
      el('ul', { class: 'api-list', testid: 'api-body' }, Object.entries(body.content || {}).map(([type, media]) => el('li', null,
        el('span', { class: 'muted small' }, `${type}${body.required ? `, ${t('api.required')}` : ''}`), ' ', schemaSummary(media.schema))))]);
  }
  add(card, [el('h4', null, t('api.responses')), responseList(doc, op.responses || {})]);
  return card;
}

function schemaCard(name, schema) {
  const required = new Set(schema.required || []);
  const card = el('article', { class: 'card api-schema', id: `schema-${name}`, testid: 'api-schema' },
    el('h3', { class: 'mono' }, name), schema.description ? prose(schema.description) : null);
  const props = Object.entries(schema.properties || {});
  if (props.length) {
    add(card, el('ul', { class: 'api-list' }, props.map(([prop, s]) => el('li', null,
      el('code', null, prop), required.has(prop) ? el('span', { class: 'muted small' }, ` ${t('api.required')}`) : null, ' — ',
      schemaSummary(s), s && s.description ? prose(s.description, 'api-text small') : null))));
  } else {
    add(card, el('p', null, schemaSummary(schema)));
  }
  return card;
}

function render(doc) {
  const root = document.getElementById('api');
  const byTag = new Map();
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags && op.tags[0]) || '';
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push([method, path, op]);
    }
  }
  const tags = [...(doc.tags || []).map((tg) => tg.name), ...byTag.keys()].filter((tg, i, all) => byTag.has(tg) && all.indexOf(tg) === i);
  const webhooks = Object.entries(doc.webhooks || {}).flatMap(([name, item]) => Object.entries(item).map(([method, op]) => [method, name, op]));
  const contents = el('nav', { class: 'card api-contents', 'aria-label': t('api.operations') },
    el('h2', null, t('api.operations')),
    tags.map((tag) => el('div', null, el('h3', null, tag), el('ul', { class: 'api-list' }, byTag.get(tag).map(([method, path, op]) =>
      el('li', null, el('a', { href: `#op-${op.operationId}` }, methodBadge(method), ' ', el('span', { class: 'mono api-path' }, path))))))),
    webhooks.length ? el('div', null, el('h3', null, t('api.webhooks')), el('ul', { class: 'api-list' }, webhooks.map(([method, name, op]) =>
      el('li', null, el('a', { href: `#webhook-${op.operationId}` }, methodBadge(method), ' ', el('span', { class: 'mono api-path' }, name)))))) : null);
  add(root, [
    el('section', { class: 'section' }, el('h2', null, `${doc.info.title} ${doc.info.version}`), prose(doc.info.description)),
    contents,
    tags.map((tag) => el('section', { class: 'section stack' }, el('h2', null, tag), byTag.get(tag).map(([m, p, op]) => operationCard(doc, m, p, op)))),
    webhooks.length ? el('section', { class: 'section stack', testid: 'api-webhooks' }, el('h2', null, t('api.webhooks')), prose(t('api.webhooksIntro')),
      webhooks.map(([m, name, op]) => operationCard(doc, m, name, op, 'webhook'))) : null,
    el('section', { class: 'section stack', testid: 'api-schemas' }, el('h2', null, t('api.schemas')),
      Object.entries((doc.components && doc.components.schemas) || {}).map(([name, s]) => schemaCard(name, s))),
  ]);
}

async function start() {
  document.documentElement.lang = lang();
  translateStatic(document);
  const status = document.getElementById('api-status');
  try {
    const res = await fetch('/openapi.json', { headers: { Accept: 'application/json' } });
    if (!res.ok) throw new Error(`${res.status}`);
    render(await res.json());
    status.textContent = '';
    status.hidden = true;
    document.body.dataset.ready = 'true';
  } catch (e) {
    status.textContent = t('api.failed');
    status.classList.add('banner', 'banner-error');
  }
}

start();
