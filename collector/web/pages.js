// Sign-in, fleet overview, host list, alerts and outbox.

import { ApiError, can, get, post, session, withQuery } from './api.js';
import { go, notify, rerender } from './app.js';
import { barList, donut } from './charts.js';
import { badge, bytes, errorBox, h, onlineBadge, panel, severityBadge, table, when } from './dom.js';

// ---------------------------------------------------------------- sign in

export async function loginPage() {
  const message = sessionStorage.getItem('census.login_message');
  sessionStorage.removeItem('census.login_message');
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, 'aria-describedby': 'token-help', 'data-autofocus': true });
  const status = h('div', { id: 'login-error', 'aria-live': 'assertive' }, message ? errorBox(message) : null);
  const form = h(
    'form',
    { class: 'login', id: 'login-form', novalidate: true },
    h('img', { src: '/ui/favicon.svg', alt: '', width: 48, height: 48 }),
    h('h1', {}, 'Sign in to Census'),
    h('label', { for: 'token' }, 'Admin token'),
    input,
    h(
      'p',
      { id: 'token-help', class: 'help' },
      'Paste a token made with ',
      h('code', {}, 'census-collector token create --role viewer|operator|admin'),
      '. It is kept in this tab only and sent to this collector alone.',
    ),
    status,
    h('button', { type: 'submit', class: 'button primary', id: 'login-submit' }, 'Sign in'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    status.replaceChildren();
    if (!token) {
      status.append(errorBox('Paste a token first.'));
      input.focus();
      return;
    }
    session.set(token);
    try {
      session.who = await get('/api/v1/whoami');
      go('overview');
    } catch (err) {
      session.clear();
      session.who = null;
      status.append(errorBox(err instanceof ApiError && err.status === 401 ? 'That token is not valid here (unknown or revoked).' : err.message));
      input.select();
    }
  });
  return h('div', { class: 'login-wrap' }, form);
}

// --------------------------------------------------------------- overview

function countBy(items, key) {
  const m = new Map();
  for (const i of items) {
    const k = key(i) || '(unknown)';
    m.set(k, (m.get(k) || 0) + 1);
  }
  return [...m.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

// A GetFleetSummary distribution as [label, hosts] entries, the rest as "(other)".
function distribution(d) {
  const entries = ((d && d.top) || []).map((c) => [c.value || '(unknown)', Number(c.hosts)]);
  const other = Number((d && d.other) || 0);
  return other ? [...entries, ['(other)', other]] : entries;
}

function stat(label, value, kind, href) {
  const body = [h('span', { class: 'stat-value' }, String(value)), h('span', { class: 'stat-label' }, label)];
  return h('div', { class: `stat stat-${kind || 'neutral'}` }, href ? h('a', { href }, body) : body);
}

export async function overviewPage() {
  // The collector counts the fleet (GET /api/v1/fleet): one small answer at any fleet size.
  const [fleet, alerts] = await Promise.all([get('/api/v1/fleet?top=8'), get('/api/v1/alerts?state=firing')]);
  const total = Number(fleet.hosts);
  const online = Number(fleet.online);
  const offline = Number(fleet.offline);
  const firing = alerts.alerts;
  const bySeverity = countBy(firing, (a) => a.severity);
  const sevCount = (s) => firing.filter((a) => a.severity === s).length;
  return h(
    'div',
    { class: 'page' },
    h('div', { class: 'page-head' }, h('h1', {}, 'Fleet overview'), h('p', { class: 'muted' }, `Updated ${new Date().toLocaleTimeString()}`)),
    h(
      'div',
      { class: 'stats', id: 'stats' },
      stat('Hosts', total, 'neutral', '#/hosts'),
      stat('Online', online, 'ok', `#/hosts?filter=${encodeURIComponent('online = true')}`),
      stat('Offline', offline, offline ? 'muted' : 'neutral', `#/hosts?filter=${encodeURIComponent('online = false')}`),
      stat('Critical alerts', sevCount('critical'), sevCount('critical') ? 'danger' : 'neutral', '#/alerts'),
      stat('Warnings', sevCount('warning'), sevCount('warning') ? 'warning' : 'neutral', '#/alerts'),
    ),
    h(
      'div',
      { class: 'grid' },
      panel('Availability', h('div', { class: 'donut-row' }, donut(online, offline), h('dl', { class: 'legend' }, h('dt', {}, 'Online'), h('dd', {}, online), h('dt', {}, 'Offline'), h('dd', {}, offline)))),
      panel('Firing alerts by severity', barList('Firing alerts by severity', bySeverity, (s) => `sev-${s}`)),
      panel('Operating systems', barList('Operating systems', distribution(fleet.operating_systems))),
      panel('Hardware models', barList('Hardware models', distribution(fleet.hardware_models))),
    ),
    panel(
      'Firing alerts',
      table(
        'Firing alerts',
        [
          { label: 'Severity', cell: (a) => severityBadge(a.severity) },
          { label: 'Alert', cell: (a) => [h('strong', {}, a.rule), a.summary ? h('div', { class: 'muted' }, a.summary) : null] },
          { label: 'Host', cell: (a) => (a.host_id ? h('a', { href: `#/host/${encodeURIComponent(a.host_id)}` }, a.hostname) : '—') },
          { label: 'Since', cell: (a) => when(a.firing_since_unix_ms || a.active_since_unix_ms) },
        ],
        firing.slice(0, 10),
        'No alert is firing.',
      ),
    ),
  );
}

// ------------------------------------------------------------------ hosts

const HOST_COLUMNS = [
  { label: 'Hostname', sort: 'hostname', cell: (x) => h('a', { href: `#/host/${encodeURIComponent(x.agent_id)}`, class: 'host-link' }, x.hostname) },
  { label: 'Status', sort: 'online', cell: (x) => (x.revoked ? badge('revoked', 'danger') : onlineBadge(x.online)) },
  { label: 'Operating system', sort: 'os.pretty_name', cell: (x) => x.os || '—' },
  { label: 'Kernel', sort: 'os.kernel', cell: (x) => x.kernel || '—' },
  { label: 'Arch', sort: 'os.arch', cell: (x) => x.arch || '—' },
  { label: 'CPUs', sort: 'cpu.threads', class: 'num', cell: (x) => x.cpu_logical_cores || '—' },
  { label: 'Memory', sort: 'memory.total', class: 'num', cell: (x) => (x.memory_total_bytes ? bytes(x.memory_total_bytes) : '—') },
  { label: 'Agent', sort: 'agent.version', cell: (x) => x.agent_version || '—' },
  { label: 'Last seen', sort: 'last_seen', cell: (x) => when(x.last_seen_unix_ms) },
];

const EXAMPLES = ['os.id = "debian"', 'memory.total < 8GiB', 'software("openssl") < "3.0.13"', 'last_seen > 1h ago', 'hostname ~ "web-*"'];

export async function hostsPage(route) {
  const q = route.query;
  const filter = q.get('filter') || '';
  const sort = q.get('sort') || '';
  const desc = q.get('desc') === '1';
  const extra = q.get('columns') || '';
  const state = { filter, sort, desc, columns: extra };
  const params = (over) => ({ ...state, ...over });
  const navigate = (over) => {
    const p = params(over);
    go('hosts', '', { ...(p.filter ? { filter: p.filter } : {}), ...(p.sort ? { sort: p.sort } : {}), ...(p.desc ? { desc: '1' } : {}), ...(p.columns ? { columns: p.columns } : {}) });
  };

  const filterInput = h('input', { id: 'filter', name: 'filter', type: 'search', value: filter, spellcheck: 'false', autocomplete: 'off', class: 'mono', 'aria-describedby': 'filter-help', placeholder: 'e.g. os.id = "debian" and memory.total < 8GiB' });
  const columnsInput = h('input', { id: 'columns', name: 'columns', type: 'text', value: extra, spellcheck: 'false', autocomplete: 'off', class: 'mono', placeholder: 'e.g. hardware.model, fs("/").used_percent' });
  const form = h(
    'form',
    { class: 'filter-form', role: 'search', id: 'filter-form' },
    h('div', { class: 'field grow' }, h('label', { for: 'filter' }, 'Filter'), filterInput),
    h('div', { class: 'field' }, h('label', { for: 'columns' }, 'Extra columns'), columnsInput),
    h('div', { class: 'field actions' }, h('button', { type: 'submit', class: 'button primary', id: 'filter-apply' }, 'Apply'), h('button', { type: 'button', class: 'button', id: 'filter-clear', onclick: () => go('hosts') }, 'Clear')),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    navigate({ filter: filterInput.value.trim(), columns: columnsInput.value.trim() });
  });
  const help = h(
    'p',
    { id: 'filter-help', class: 'help' },
    'The filter language of ',
    h('code', {}, 'census hosts --filter'),
    '. Examples: ',
    EXAMPLES.map((ex, i) => [i ? ', ' : '', h('button', { type: 'button', class: 'link mono', onclick: () => navigate({ filter: ex }) }, ex)]),
    '.',
  );

  const extraCols = extra
    .split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/)
    .map((c) => c.trim())
    .filter(Boolean);
  let answer;
  try {
    answer = await get(withQuery('/api/v1/hosts', { filter, sort, descending: desc, columns: extraCols.join(','), page_size: 500 }));
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 400) throw e;
    filterInput.setAttribute('aria-invalid', 'true');
    return h(
      'div',
      { class: 'page' },
      h('div', { class: 'page-head' }, h('h1', {}, 'Hosts')),
      h('div', { class: 'panel' }, form, help, h('pre', { class: 'filter-error', id: 'filter-error', role: 'alert' }, e.message)),
    );
  }
  const columns = [...HOST_COLUMNS, ...extraCols.map((c) => ({ label: c, sort: c, cell: (x) => x.columns[c] ?? '—' }))];
  const header = columns.map((c) => {
    const active = sort ? sort === c.sort : c.sort === 'hostname';
    const direction = active ? (desc ? 'descending' : 'ascending') : null;
    const button = h(
      'button',
      {
        type: 'button',
        class: 'sort',
        'data-sort': c.sort,
        onclick: () => navigate({ sort: c.sort === 'hostname' && !active ? '' : c.sort, desc: active ? !desc : false }),
      },
      c.label,
      h('span', { class: 'sort-mark', 'aria-hidden': 'true' }, active ? (desc ? ' ▼' : ' ▲') : ''),
    );
    return h('th', { scope: 'col', class: c.class, 'aria-sort': direction || 'none' }, button);
  });
  const rows = answer.hosts;
  const body = h('tbody', {}, rows.map((x) => h('tr', { 'data-host': x.hostname }, columns.map((c) => h('td', { class: c.class }, c.cell(x))))));
  let token = answer.next_page_token;
  const more = h('button', { type: 'button', class: 'button', id: 'more', hidden: !token }, 'Load more');
  more.addEventListener('click', async () => {
    more.disabled = true;
    const next = await get(withQuery('/api/v1/hosts', { filter, sort, descending: desc, columns: extraCols.join(','), page_size: 500, page_token: token }));
    for (const x of next.hosts) body.append(h('tr', { 'data-host': x.hostname }, columns.map((c) => h('td', { class: c.class }, c.cell(x)))));
    token = next.next_page_token;
    more.hidden = !token;
    more.disabled = false;
    count.textContent = `${body.children.length}${token ? '+' : ''} hosts`;
  });
  const count = h('p', { class: 'muted', id: 'host-count', role: 'status' }, `${rows.length}${token ? '+' : ''} host${rows.length === 1 ? '' : 's'}${filter ? ' match' : ''}`);
  return h(
    'div',
    { class: 'page' },
    h('div', { class: 'page-head' }, h('h1', {}, 'Hosts'), count),
    h('div', { class: 'panel' }, form, help),
    h(
      'div',
      { class: 'panel flush' },
      rows.length
        ? h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'hosts' }, h('caption', { class: 'visually-hidden' }, 'Hosts; column headers sort'), h('thead', {}, h('tr', {}, header)), body))
        : h('p', { class: 'empty' }, filter ? 'No host matches this filter.' : 'No host has enrolled yet.'),
      more,
    ),
  );
}

// ----------------------------------------------------------------- alerts

/// A modal dialog with `fields`; `submit()` runs the action, and its
/// error (a 403 for a viewer) is shown inside the dialog.
export function actionDialog(title, fields, confirmLabel, submit) {
  const error = h('div', { class: 'dialog-error', 'aria-live': 'assertive' });
  const confirm = h('button', { type: 'submit', class: 'button primary', id: 'dialog-confirm' }, confirmLabel);
  const cancel = h('button', { type: 'button', class: 'button', id: 'dialog-cancel' }, 'Cancel');
  const form = h('form', { class: 'dialog-form' }, h('h2', {}, title), fields, error, h('div', { class: 'dialog-actions' }, cancel, confirm));
  const dialog = h('dialog', { 'aria-label': title, id: 'action-dialog' }, form);
  cancel.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => dialog.remove());
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    confirm.disabled = true;
    error.replaceChildren();
    try {
      const message = await submit();
      dialog.close();
      notify(message, 'ok');
      rerender();
    } catch (err) {
      error.append(errorBox(err instanceof ApiError ? err.explain() : err.message));
      confirm.disabled = false;
    }
  });
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

function field(id, label, control, hint) {
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hint ? h('p', { class: 'help' }, hint) : null);
}

function ackDialog(alert) {
  const comment = h('textarea', { id: 'ack-comment', rows: 3, maxlength: 1000 });
  actionDialog(`Acknowledge ${alert.rule} on ${alert.hostname || 'the fleet'}`, [field('ack-comment', 'Comment (optional)', comment)], 'Acknowledge', async () => {
    await post(`/api/v1/alerts/${encodeURIComponent(alert.fingerprint)}/ack`, { comment: comment.value });
    return `Acknowledged ${alert.rule}.`;
  });
}

const DURATIONS = [
  ['1 hour', 3600000],
  ['4 hours', 4 * 3600000],
  ['1 day', 86400000],
  ['7 days', 7 * 86400000],
];

function silenceDialog(alert) {
  const initial = [`alertname=${alert.rule}`, alert.hostname ? `host=${alert.hostname}` : ''].filter(Boolean).join('\n');
  const matchers = h('textarea', { id: 'silence-matchers', rows: 3, class: 'mono' }, initial);
  const duration = h('select', { id: 'silence-duration' }, DURATIONS.map(([l, ms]) => h('option', { value: ms }, l)));
  const comment = h('input', { id: 'silence-comment', type: 'text', maxlength: 1000 });
  actionDialog(
    `Silence ${alert.rule}`,
    [field('silence-matchers', 'Matchers, one a line', matchers, 'label=value, label!=value, label=~glob'), field('silence-duration', 'For', duration), field('silence-comment', 'Comment', comment)],
    'Silence',
    async () => {
      const list = matchers.value.split('\n').map((m) => m.trim()).filter(Boolean);
      await post('/api/v1/silences', { matchers: list, duration_ms: Number(duration.value), comment: comment.value });
      return `Silenced ${alert.rule}.`;
    },
  );
}

/// An action button an operator may use; below that role it is disabled
/// and says why (the server refuses it anyway).
function operatorButton(label, onclick, extra) {
  const allowed = can('operator');
  return h('button', { type: 'button', class: 'button small', disabled: !allowed, title: allowed ? null : `Needs the operator role; you are ${session.who?.role}`, onclick, ...extra }, label);
}

export async function alertsPage(route) {
  const stateFilter = route.query.get('state') || '';
  const [alerts, silences] = await Promise.all([get(withQuery('/api/v1/alerts', { state: stateFilter })), get('/api/v1/silences')]);
  const select = h(
    'select',
    { id: 'alert-state', onchange: (e) => go('alerts', '', e.target.value ? { state: e.target.value } : {}) },
    [['', 'All states'], ['firing', 'Firing'], ['pending', 'Pending'], ['resolved', 'Resolved']].map(([v, l]) => h('option', { value: v, selected: v === stateFilter }, l)),
  );
  const roleNote = can('operator') ? null : h('p', { class: 'help', id: 'role-note' }, `Your role (${session.who?.role}) may look but not acknowledge or silence: those need the operator role.`);
  const alertTable = table(
    'Alerts',
    [
      { label: 'Severity', cell: (a) => severityBadge(a.severity) },
      { label: 'Alert', cell: (a) => [h('strong', {}, a.rule), a.summary ? h('div', { class: 'muted' }, a.summary) : null, a.value ? h('div', { class: 'muted small' }, `value ${a.value}${a.threshold ? `, threshold ${a.threshold}` : ''}`) : null] },
      { label: 'Host', cell: (a) => (a.host_id ? h('a', { href: `#/host/${encodeURIComponent(a.host_id)}` }, a.hostname) : '—') },
      { label: 'State', cell: (a) => [badge(a.state, a.state === 'firing' ? 'danger' : a.state === 'pending' ? 'warning' : 'muted'), a.silenced_by.length ? [' ', badge('silenced', 'info')] : null] },
      { label: 'Since', cell: (a) => when(a.firing_since_unix_ms || a.active_since_unix_ms) },
      { label: 'Acknowledged', cell: (a) => (a.acknowledged_by ? h('span', { class: 'ack', title: a.acknowledged_comment || '' }, `by ${a.acknowledged_by} `, when(a.acknowledged_at_unix_ms)) : '—') },
      {
        label: 'Actions',
        class: 'actions',
        cell: (a) =>
          a.state === 'resolved'
            ? '—'
            : [
                a.acknowledged_by ? null : operatorButton('Acknowledge', () => ackDialog(a), { 'data-action': 'ack', 'data-rule': a.rule }),
                ' ',
                operatorButton('Silence', () => silenceDialog(a), { 'data-action': 'silence', 'data-rule': a.rule }),
              ],
      },
    ],
    alerts.alerts,
    'No alert in this state.',
  );
  const silenceTable = table(
    'Silences',
    [
      { label: 'Matchers', cell: (x) => h('code', {}, x.matchers.join(', ')) },
      { label: 'State', cell: (x) => badge(x.state, x.state === 'active' ? 'info' : 'muted') },
      { label: 'Ends', cell: (x) => h('span', { title: new Date(x.ends_at_unix_ms).toLocaleString() }, new Date(x.ends_at_unix_ms).toLocaleString()) },
      { label: 'By', cell: (x) => x.created_by },
      { label: 'Comment', cell: (x) => x.comment || '—' },
      {
        label: 'Actions',
        class: 'actions',
        cell: (x) =>
          x.state === 'expired'
            ? '—'
            : operatorButton('Expire', async (e) => {
                e.target.disabled = true;
                try {
                  await post(`/api/v1/silences/${encodeURIComponent(x.id)}/expire`);
                  notify('Silence expired.', 'ok');
                  rerender();
                } catch (err) {
                  notify(err instanceof ApiError ? err.explain() : err.message, 'error');
                  e.target.disabled = false;
                }
              }),
      },
    ],
    silences.silences,
    'No silence.',
  );
  return h(
    'div',
    { class: 'page' },
    h('div', { class: 'page-head' }, h('h1', {}, 'Alerts'), h('div', { class: 'field inline' }, h('label', { for: 'alert-state' }, 'State'), select)),
    roleNote,
    h('div', { class: 'panel flush', id: 'alerts' }, alertTable),
    panel('Silences', silenceTable),
  );
}

// ----------------------------------------------------------------- outbox

export async function outboxPage(route) {
  const st = route.query.get('state') || '';
  const sink = route.query.get('sink') || '';
  const answer = await get(withQuery('/api/v1/outbox', { state: st, sink, limit: 500 }));
  const select = h(
    'select',
    { id: 'outbox-state' },
    [['', 'All states'], ['pending', 'Pending'], ['delivered', 'Delivered'], ['dead', 'Dead']].map(([v, l]) => h('option', { value: v, selected: v === st }, l)),
  );
  const sinkInput = h('input', { id: 'outbox-sink', type: 'text', value: sink, autocomplete: 'off' });
  const form = h(
    'form',
    { class: 'filter-form' },
    h('div', { class: 'field' }, h('label', { for: 'outbox-state' }, 'State'), select),
    h('div', { class: 'field' }, h('label', { for: 'outbox-sink' }, 'Sink'), sinkInput),
    h('div', { class: 'field actions' }, h('button', { type: 'submit', class: 'button primary' }, 'Apply')),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    go('outbox', '', { ...(select.value ? { state: select.value } : {}), ...(sinkInput.value.trim() ? { sink: sinkInput.value.trim() } : {}) });
  });
  const stateKind = { delivered: 'ok', pending: 'warning', dead: 'danger' };
  return h(
    'div',
    { class: 'page' },
    h('div', { class: 'page-head' }, h('h1', {}, 'Notification outbox'), h('p', { class: 'muted' }, `${answer.entries.length} entries, newest first`)),
    h('div', { class: 'panel' }, form),
    h(
      'div',
      { class: 'panel flush', id: 'outbox' },
      table(
        'Outbox entries',
        [
          { label: 'Id', class: 'num', cell: (x) => x.id },
          { label: 'Sink', cell: (x) => x.sink },
          { label: 'Notification', cell: (x) => [h('strong', {}, `${x.transition} ${x.rule}`), x.summary ? h('div', { class: 'muted' }, x.summary) : null] },
          { label: 'State', cell: (x) => badge(x.state, stateKind[x.state]) },
          { label: 'Attempts', class: 'num', cell: (x) => x.attempts },
          { label: 'Created', cell: (x) => when(x.created_at_unix_ms) },
          { label: 'Next attempt', cell: (x) => (x.state === 'delivered' ? '—' : new Date(x.next_attempt_unix_ms).toLocaleString()) },
          { label: 'Last error', cell: (x) => (x.last_error ? h('span', { class: 'error-text' }, x.last_error) : '—') },
          {
            label: 'Actions',
            class: 'actions',
            cell: (x) =>
              x.state === 'delivered'
                ? '—'
                : operatorButton('Retry now', async (e) => {
                    e.target.disabled = true;
                    try {
                      await post(`/api/v1/outbox/${x.id}/retry`);
                      notify(`Entry ${x.id} is due now.`, 'ok');
                      rerender();
                    } catch (err) {
                      notify(err instanceof ApiError ? err.explain() : err.message, 'error');
                      e.target.disabled = false;
                    }
                  }),
          },
        ],
        answer.entries,
        'The outbox is empty.',
      ),
    ),
  );
}
