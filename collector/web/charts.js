// Hand-drawn SVG charts: no library, no canvas, text as SVG text nodes so
// screen readers and tests can read them.

import { h, s } from './dom.js';

const W = 640;
const H = 200;
const PAD = { left: 52, right: 12, top: 12, bottom: 26 };

function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function label(v, format) {
  return format ? format(v) : Math.abs(v) >= 1000 ? v.toExponential(1) : String(Math.round(v * 100) / 100);
}

function timeLabel(ms, spanMs) {
  const d = new Date(ms);
  const pad = (x) => String(x).padStart(2, '0');
  if (spanMs <= 2 * 86400000) return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return `${d.getMonth() + 1}/${d.getDate()}`;
}

/// A line chart of `points` ({at_unix_ms, value, min, max}) between
/// `from` and `to` (ms): the mean as a line, min..max as a band, each
/// point as a dot with its value as a tooltip.
export function lineChart(title, points, from, to, format) {
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const values = points.flatMap((p) => [p.max ?? p.value, p.value]).filter((v) => v !== null && Number.isFinite(v));
  const lows = points.flatMap((p) => [p.min ?? p.value, p.value]).filter((v) => v !== null && Number.isFinite(v));
  const low = Math.min(0, ...lows);
  const high = niceMax(Math.max(...values, 0));
  const x = (ms) => PAD.left + ((ms - from) / Math.max(1, to - from)) * innerW;
  const y = (v) => PAD.top + innerH - ((v - low) / (high - low || 1)) * innerH;
  const svg = s('svg', {
    class: 'chart',
    viewBox: `0 0 ${W} ${H}`,
    role: 'img',
    'aria-label': `${title}: ${points.length} points`,
    'data-points': points.length,
  });
  svg.append(s('title', {}, title));
  for (let i = 0; i <= 4; i++) {
    const v = low + ((high - low) * i) / 4;
    svg.append(s('line', { class: 'grid', x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }));
    svg.append(s('text', { class: 'axis', x: PAD.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, label(v, format)));
  }
  for (let i = 0; i <= 4; i++) {
    const ms = from + ((to - from) * i) / 4;
    svg.append(s('text', { class: 'axis', x: x(ms), y: H - 6, 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle' }, timeLabel(ms, to - from)));
  }
  const usable = points.filter((p) => p.value !== null && Number.isFinite(p.value));
  if (usable.length === 0) {
    svg.append(s('text', { class: 'no-data', x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'No data in this range'));
    return svg;
  }
  const band = usable.map((p) => `${x(p.at_unix_ms)},${y(p.max ?? p.value)}`).concat(
    usable
      .slice()
      .reverse()
      .map((p) => `${x(p.at_unix_ms)},${y(p.min ?? p.value)}`),
  );
  svg.append(s('polygon', { class: 'band', points: band.join(' ') }));
  svg.append(s('polyline', { class: 'line', points: usable.map((p) => `${x(p.at_unix_ms)},${y(p.value)}`).join(' ') }));
  if (usable.length <= 400) {
    for (const p of usable) {
      const dot = s('circle', { class: 'pt', cx: x(p.at_unix_ms), cy: y(p.value), r: usable.length > 60 ? 1.5 : 3 });
      dot.append(s('title', {}, `${new Date(p.at_unix_ms).toLocaleString()}: ${label(p.value, format)}`));
      svg.append(dot);
    }
  }
  return svg;
}

/// Horizontal bars of [label, count], largest first, as a list a screen
/// reader reads as text.
export function barList(title, entries, kindOf) {
  if (!entries.length) return h('p', { class: 'empty' }, 'No data.');
  const max = Math.max(...entries.map((e) => e[1]));
  const total = entries.reduce((a, e) => a + e[1], 0);
  return h(
    'ul',
    { class: 'bars', 'aria-label': title },
    entries.map(([name, count]) => {
      const bar = s('svg', { class: 'bar', viewBox: '0 0 100 8', preserveAspectRatio: 'none', 'aria-hidden': 'true' });
      bar.append(s('rect', { class: 'bar-bg', x: 0, y: 0, width: 100, height: 8, rx: 2 }));
      bar.append(s('rect', { class: `bar-fg ${kindOf ? kindOf(name) : ''}`, x: 0, y: 0, width: Math.max(1, (count / max) * 100), height: 8, rx: 2 }));
      return h(
        'li',
        {},
        h('span', { class: 'bar-label', title: name }, name || '(unknown)'),
        bar,
        h('span', { class: 'bar-count' }, `${count}`, h('span', { class: 'muted' }, ` · ${Math.round((count / total) * 100)}%`)),
      );
    }),
  );
}

/// A ring of online against offline hosts.
export function donut(online, offline) {
  const total = online + offline;
  const r = 40;
  const c = 2 * Math.PI * r;
  const svg = s('svg', { class: 'donut', viewBox: '0 0 100 100', role: 'img', 'aria-label': `${online} online, ${offline} offline` });
  svg.append(s('circle', { class: 'donut-bg', cx: 50, cy: 50, r }));
  if (total > 0) {
    svg.append(
      s('circle', {
        class: 'donut-fg',
        cx: 50,
        cy: 50,
        r,
        'stroke-dasharray': `${(online / total) * c} ${c}`,
        transform: 'rotate(-90 50 50)',
      }),
    );
  }
  svg.append(s('text', { class: 'donut-text', x: 50, y: 48, 'text-anchor': 'middle' }, total ? `${Math.round((online / total) * 100)}%` : '—'));
  svg.append(s('text', { class: 'donut-sub', x: 50, y: 62, 'text-anchor': 'middle' }, 'online'));
  return svg;
}
