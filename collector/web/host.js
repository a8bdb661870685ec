// One host: summary, metric charts, alerts, changes, software and every
// other inventory section.

import { get, withQuery } from './api.js';
import { lineChart } from './charts.js';
import { badge, bytes, clear, dateTime, errorBox, h, onlineBadge, panel, severityBadge, table, when } from './dom.js';

const RANGES = [
  { id: '1h', label: '1 h', ms: 3600000, resolution: 'raw' },
  { id: '24h', label: '24 h', ms: 86400000, resolution: '5m' },
  { id: '7d', label: '7 d', ms: 7 * 86400000, resolution: '1h' },
  { id: '90d', label: '90 d', ms: 90 * 86400000, resolution: '1h' },
];

const DEFAULT_METRICS = ['cpu', 'mem.used_percent', 'load1', 'fs./.used_percent'];

const METRIC_TITLES = { cpu: 'CPU used, %', 'mem.used_percent': 'Memory used, %', load1: 'Load average (1 min)', 'fs./.used_percent': 'Root filesystem used, %' };

function metricFormat(metric) {
  if (metric.endsWith('_bytes')) return bytes;
  if (metric.endsWith('_bps')) return (v) => `${bytes(v)}/s`;
  if (metric.endsWith('percent') || metric === 'cpu') return (v) => `${Math.round(v)}%`;
  return null;
}

function metricsPanel(agentId, available) {
  const names = DEFAULT_METRICS.filter((m) => available.includes(m));
  const chosen = new Set(names.length ? names : available.slice(0, 4));
  let range = RANGES[1];
  const charts = h('div', { class: 'charts', id: 'charts' });
  const rangeButtons = RANGES.map((r) =>
    h('button', { type: 'button', class: 'seg', 'data-range': r.id, 'aria-pressed': String(r === range), onclick: () => setRange(r) }, r.label),
  );
  const picker = h(
    'select',
    { id: 'metric-add' },
    h('option', { value: '' }, 'Add a metric…'),
    available.map((m) => h('option', { value: m }, m)),
  );
  picker.addEventListener('change', () => {
    if (picker.value) chosen.add(picker.value);
    picker.value = '';
    draw();
  });
  async function draw() {
    const to = Date.now();
    const from = to - range.ms;
    charts.dataset.ready = '';
    clear(charts);
    const cards = [...chosen].map((m) => {
      const card = h('figure', { class: 'chart-card', 'data-metric': m }, h('figcaption', {}, METRIC_TITLES[m] || m), h('p', { class: 'loading' }, 'Loading…'));
      charts.append(card);
      return [m, card];
    });
    await Promise.all(
      cards.map(async ([m, card]) => {
        try {
          const answer = await get(withQuery(`/api/v1/hosts/${encodeURIComponent(agentId)}/metrics`, { metric: m, since_unix_ms: from, resolution: range.resolution }));
          card.lastChild.replaceWith(lineChart(METRIC_TITLES[m] || m, answer.points, from, to, metricFormat(m)));
        } catch (e) {
          card.lastChild.replaceWith(errorBox(e.message));
        }
      }),
    );
    charts.dataset.ready = range.id;
  }
  function setRange(r) {
    range = r;
    for (const b of rangeButtons) b.setAttribute('aria-pressed', String(b.dataset.range === r.id));
    draw();
  }
  draw();
  return panel(
    'Metrics',
    h('div', { class: 'toolbar' }, h('div', { class: 'segmented', role: 'group', 'aria-label': 'Time range' }, rangeButtons), h('label', { for: 'metric-add', class: 'visually-hidden' }, 'Add a metric'), picker),
    available.length ? charts : h('p', { class: 'empty' }, 'This host has sent no health samples in the last 24 hours.'),
  );
}

// Generic rendering of an inventory section: objects as definition lists,
// lists of objects as tables, capped so a huge section stays usable.

const ROW_CAP = 200;

function scalar(key, v) {
  if (v === null || v === undefined || v === '') return '—';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'number' && key.endsWith('_unix_ms')) return dateTime(v);
  if (typeof v === 'number' && key.endsWith('_bytes')) return bytes(v);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

const pretty = (key) => key.replace(/_unix_ms$/, '').replace(/_/g, ' ');

function isScalarish(v) {
  return v === null || typeof v !== 'object' || (Array.isArray(v) && v.every((x) => x === null || typeof x !== 'object'));
}

function renderValue(key, v, depth) {
  if (Array.isArray(v)) {
    if (!v.length) return h('p', { class: 'empty' }, 'None.');
    if (v.every((x) => x !== null && typeof x === 'object' && !Array.isArray(x))) return objectTable(key, v);
    return v.map((x) => scalar(key, x)).join(', ');
  }
  if (v !== null && typeof v === 'object') return objectView(v, depth + 1);
  return scalar(key, v);
}

function objectTable(key, rows) {
  const keys = [];
  for (const r of rows.slice(0, ROW_CAP)) for (const k of Object.keys(r)) if (!keys.includes(k)) keys.push(k);
  const cols = keys.map((k) => ({ label: pretty(k), cell: (r) => (isScalarish(r[k]) ? (Array.isArray(r[k]) ? r[k].join(', ') || '—' : scalar(k, r[k])) : h('code', { class: 'small' }, JSON.stringify(r[k]))) }));
  const shown = table(pretty(key), cols, rows.slice(0, ROW_CAP));
  return rows.length > ROW_CAP ? [shown, h('p', { class: 'muted' }, `First ${ROW_CAP} of ${rows.length}.`)] : shown;
}

function objectView(obj, depth) {
  const simple = Object.entries(obj).filter(([, v]) => isScalarish(v));
  const nested = Object.entries(obj).filter(([, v]) => !isScalarish(v));
  return [
    simple.length ? h('dl', { class: 'kv' }, simple.flatMap(([k, v]) => [h('dt', {}, pretty(k)), h('dd', {}, Array.isArray(v) ? v.join(', ') || '—' : scalar(k, v))])) : null,
    nested.map(([k, v]) => h('div', { class: 'sub' }, h(depth > 1 ? 'h4' : 'h3', {}, pretty(k)), renderValue(k, v, depth))),
  ];
}

const SECTION_TITLES = {
  identity: 'Identity',
  os: 'Operating system',
  cpu: 'CPU',
  memory: 'Memory',
  filesystems: 'Filesystems',
  network: 'Network interfaces',
  hardware: 'Hardware',
  netconfig: 'Network configuration',
  users: 'Users and sessions',
  services: 'Services',
  os_state: 'OS state',
  updates: 'Pending updates',
  certificates: 'Certificates',
  errors: 'Collection errors',
};

function softwarePanel(software) {
  const packages = (software && software.packages) || [];
  const search = h('input', { id: 'software-search', type: 'search', autocomplete: 'off', placeholder: 'Name contains…' });
  const body = h('div', { id: 'software' });
  const count = h('span', { class: 'muted', role: 'status' });
  const show = () => {
    const needle = search.value.trim().toLowerCase();
    const rows = packages.filter((p) => !needle || p.name.toLowerCase().includes(needle));
    count.textContent = `${rows.length} of ${packages.length} packages`;
    body.replaceChildren(
      ...[table(
        'Installed software',
        [
          { label: 'Name', cell: (p) => h('a', { href: `#/hosts?filter=${encodeURIComponent(`software("${p.name}")`)}` , title: 'Hosts with this package' }, p.name) },
          { label: 'Version', cell: (p) => h('span', { class: 'mono' }, p.version) },
          { label: 'Arch', cell: (p) => p.arch || '—' },
          { label: 'Source', cell: (p) => p.source },
          { label: 'Installed', cell: (p) => (p.install_time_unix_ms ? dateTime(p.install_time_unix_ms) : '—') },
        ],
        rows.slice(0, 500),
        'No package matches.',
      )].flat(),
      rows.length > 500 ? h('p', { class: 'muted' }, `First 500 of ${rows.length}; narrow the search.`) : '',
    );
  };
  search.addEventListener('input', show);
  show();
  return panel('Software', h('div', { class: 'toolbar' }, h('label', { for: 'software-search' }, 'Search packages'), search, count), h('div', { class: 'scroll' }, body));
}

export async function hostPage(route) {
  const id = route.arg;
  const detail = await get(`/api/v1/hosts/${encodeURIComponent(id)}`);
  const x = detail.summary;
  const agentId = x.agent_id;
  const [metrics, alerts, changes] = await Promise.all([
    get(withQuery(`/api/v1/hosts/${encodeURIComponent(agentId)}/metrics`, { metric: 'cpu', since_unix_ms: Date.now() - 3600000, resolution: 'raw' })),
    get('/api/v1/alerts'),
    get(withQuery('/api/v1/changes', { host: agentId })),
  ]);
  const inv = detail.inventory;
  const facts = [
    ['Agent id', h('code', {}, x.agent_id)],
    ['Operating system', x.os || '—'],
    ['Kernel', x.kernel || '—'],
    ['Architecture', x.arch || '—'],
    ['CPUs', x.cpu_logical_cores || '—'],
    ['Memory', x.memory_total_bytes ? bytes(x.memory_total_bytes) : '—'],
    ['Agent version', x.agent_version || '—'],
    ['Enrolled', dateTime(x.enrolled_at_unix_ms)],
    ['Last seen', when(x.last_seen_unix_ms)],
    ['Inventory collected', inv ? dateTime(inv.collected_at_unix_ms) : 'not yet'],
    ['Certificate expires', dateTime(x.certificate_not_after_unix_ms)],
    ['Reports stored', x.reports_stored],
  ];
  const hostAlerts = alerts.alerts.filter((a) => a.host_id === agentId);
  const sections = inv
    ? Object.entries(inv)
        .filter(([k, v]) => k !== 'software' && k !== 'collected_at_unix_ms' && v !== null && !(Array.isArray(v) && !v.length))
        .map(([k, v]) => {
          const title = SECTION_TITLES[k] || pretty(k);
          return h('details', { class: 'section', 'data-section': k, open: k === 'errors' || k === 'os' || k === 'hardware' }, h('summary', {}, title), h('div', { class: 'section-body' }, renderValue(k, v, 1)));
        })
    : [h('p', { class: 'empty' }, 'No inventory has arrived from this host yet.')];
  const jump = ['Metrics', 'Alerts', 'Changes', 'Software', 'Inventory'].map((t) => h('a', { href: `#/host/${encodeURIComponent(agentId)}`, 'data-jump': `p-${t.toLowerCase()}` }, t));
  for (const a of jump) {
    a.addEventListener('click', (e) => {
      e.preventDefault();
      document.getElementById(a.dataset.jump)?.scrollIntoView({ behavior: 'smooth' });
    });
  }
  return h(
    'div',
    { class: 'page' },
    h('p', { class: 'crumbs' }, h('a', { href: '#/hosts' }, 'Hosts'), ' / ', x.hostname),
    h('div', { class: 'page-head' }, h('h1', { id: 'host-name' }, x.hostname), x.revoked ? badge('revoked', 'danger') : onlineBadge(x.online), h('nav', { class: 'jump', 'aria-label': 'Sections' }, jump)),
    panel('Summary', h('dl', { class: 'kv facts' }, facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))),
    metricsPanel(agentId, metrics.available),
    panel(
      'Alerts',
      table(
        'Alerts of this host',
        [
          { label: 'Severity', cell: (a) => severityBadge(a.severity) },
          { label: 'Alert', cell: (a) => [h('strong', {}, a.rule), a.summary ? h('div', { class: 'muted' }, a.summary) : null] },
          { label: 'State', cell: (a) => badge(a.state, a.state === 'firing' ? 'danger' : 'muted') },
          { label: 'Since', cell: (a) => when(a.firing_since_unix_ms || a.active_since_unix_ms) },
          { label: 'Acknowledged', cell: (a) => (a.acknowledged_by ? `by ${a.acknowledged_by}` : '—') },
        ],
        hostAlerts,
        'No alert for this host.',
      ),
    ),
    panel(
      'Changes',
      h(
        'div',
        { class: 'scroll' },
        table(
          'Change history',
          [
            { label: 'When', cell: (c) => dateTime(c.at_unix_ms) },
            { label: 'Kind', cell: (c) => badge(c.kind, 'neutral') },
            { label: 'What', cell: (c) => c.subject },
            { label: 'Before', cell: (c) => h('span', { class: 'mono' }, c.old || '—') },
            { label: 'After', cell: (c) => h('span', { class: 'mono' }, c.new || '—') },
          ],
          changes.changes.slice().reverse().slice(0, 500),
          'No change recorded yet.',
        ),
      ),
    ),
    softwarePanel(inv && inv.software),
    panel('Inventory', h('div', { id: 'inventory' }, sections)),
  );
}
