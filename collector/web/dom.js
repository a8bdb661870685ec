// Small DOM helpers. Text always goes in as text nodes (never innerHTML),
// so nothing a host reports can become markup or script.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(element, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') element.setAttribute('class', v);
    else if (k.startsWith('on') && typeof v === 'function') element.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(element.dataset, v);
    else element.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    element.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return element;
}

export const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
export const s = (tag, attrs, ...children) => build(document.createElementNS(SVG_NS, tag), attrs, children);

export function clear(element) {
  while (element.firstChild) element.firstChild.remove();
  return element;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function bytes(n) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return '—';
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${UNITS[i]}`;
}

export function dateTime(ms) {
  if (!ms) return '—';
  const d = new Date(Number(ms));
  const pad = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function ago(ms) {
  if (!ms) return 'never';
  const s = Math.round((Date.now() - Number(ms)) / 1000);
  if (s < 0) return 'in the future';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

/// A <time> element with the exact time as its tooltip.
export const when = (ms) => h('time', { datetime: ms ? new Date(Number(ms)).toISOString() : null, title: dateTime(ms) }, ago(ms));

export function badge(text, kind) {
  return h('span', { class: `badge badge-${kind || 'neutral'}` }, text);
}

export function severityBadge(severity) {
  const kind = { critical: 'danger', warning: 'warning', info: 'info' }[severity] || 'neutral';
  return badge(severity || 'none', kind);
}

export function onlineBadge(online) {
  return online ? badge('online', 'ok') : badge('offline', 'muted');
}

/// A panel with a heading: the page's building block.
export function panel(title, ...children) {
  const id = `p-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return h('section', { class: 'panel', 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

/// A table of `rows` with `columns` [{label, cell(row) -> node|text, class}].
export function table(caption, columns, rows, empty) {
  if (!rows.length) return h('p', { class: 'empty' }, empty || 'Nothing to show.');
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'data' },
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.class }, c.label)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, columns.map((c) => h('td', { class: c.class }, c.cell(r)))))),
    ),
  );
}

export function errorBox(message) {
  return h('div', { class: 'error-box', role: 'alert' }, message);
}

export function loading() {
  return h('p', { class: 'loading', role: 'status' }, 'Loading…');
}
