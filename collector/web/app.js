// The dashboard's entry point: hash routing (#/hosts?filter=...), the
// sign-in gate and the top bar. Pages live in pages.js and host.js.

import { ApiError, get, session } from './api.js';
import { clear, errorBox, h, loading } from './dom.js';
import { loginPage, overviewPage, hostsPage, alertsPage, outboxPage } from './pages.js';
import { hostPage } from './host.js';

const PAGES = {
  login: loginPage,
  overview: overviewPage,
  hosts: hostsPage,
  host: hostPage,
  alerts: alertsPage,
  outbox: outboxPage,
};

const TITLES = { login: 'Sign in', overview: 'Overview', hosts: 'Hosts', host: 'Host', alerts: 'Alerts', outbox: 'Outbox' };

/// #/name/arg?query -> {name, arg, query}
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?', 2);
  const [name, ...rest] = path.split('/');
  return { name: name || 'overview', arg: rest.map(decodeURIComponent).join('/'), query: new URLSearchParams(query) };
}

export function go(name, arg, query) {
  let hash = `#/${name}`;
  if (arg) hash += `/${encodeURIComponent(arg)}`;
  const q = query ? new URLSearchParams(query).toString() : '';
  if (q) hash += `?${q}`;
  if (location.hash === hash) render(false);
  else location.hash = hash;
}

/// A message at the top of the page, e.g. after an action.
export function notify(message, kind) {
  const notice = document.getElementById('notice');
  notice.className = `notice notice-${kind || 'ok'}`;
  notice.textContent = message;
  notice.hidden = false;
}

function topbar(active) {
  const bar = document.getElementById('topbar');
  bar.hidden = active === 'login';
  for (const a of bar.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === active || (active === 'host' && a.dataset.nav === 'hosts')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const who = document.getElementById('who');
  clear(who);
  if (session.who) {
    const w = session.who;
    who.append(h('span', { class: 'who-token' }, w.name || w.token_id), ' ', h('span', { class: `badge badge-role role-${w.role}`, id: 'role' }, w.role));
  }
}

let generation = 0;

/// Draws the page of the current hash; a notice (the outcome of an
/// action) survives a redraw of the same page, not a navigation.
async function render(keepNotice) {
  const mine = ++generation;
  const main = document.getElementById('main');
  const route = parseHash();
  if (keepNotice !== true) document.getElementById('notice').hidden = true;
  if (!PAGES[route.name]) {
    go('overview');
    return;
  }
  if (route.name !== 'login' && !session.token()) {
    go('login');
    return;
  }
  main.dataset.ready = '';
  clear(main).append(loading());
  try {
    if (route.name !== 'login' && !session.who) session.who = await get('/api/v1/whoami');
    topbar(route.name);
    document.title = `${TITLES[route.name]} · Census`;
    const content = await PAGES[route.name](route);
    if (mine !== generation) return;
    clear(main).append(content);
    main.dataset.ready = route.name;
    // After a navigation, keyboard and screen reader users start at the
    // new content (or at the field the page names), as after a page load.
    if (keepNotice !== true) (content.querySelector('[data-autofocus]') || main).focus({ preventScroll: true });
  } catch (e) {
    if (mine !== generation) return;
    if (e instanceof ApiError && e.status === 401) {
      session.clear();
      session.who = null;
      sessionStorage.setItem('census.login_message', e.explain());
      go('login');
      return;
    }
    clear(main).append(errorBox(e instanceof ApiError ? e.explain() : `Something went wrong: ${e.message}`));
    main.dataset.ready = `${route.name}-error`;
    if (!(e instanceof ApiError)) throw e;
  }
}

export function rerender() {
  render(true);
}

window.addEventListener('hashchange', () => render(false));
window.addEventListener('DOMContentLoaded', () => {
  document.getElementById('logout').addEventListener('click', () => {
    session.clear();
    session.who = null;
    go('login');
  });
  render(false);
});
