/**
 * `patchpilot status --report FILE.html`: one self-contained page (no script, no network) with each cluster's
 * compliance table and an SVG chart of the security updates pending over time, from the store's scan history.
 */
import type { ClusterStatus } from '../service/fleet-status.ts';
import { age, lastPatchText, pendingText } from '../service/fleet-status.ts';
import type { ScanRecord } from '../store/index.ts';

const esc = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

interface Point {
  at: number;
  pending: number;
  failed: number;
}

/** One point per scan: the pending updates summed over the nodes it could scan, and how many it could not. */
export function pendingSeries(history: readonly ScanRecord[]): Point[] {
  const byScan = new Map<string, Point>();
  for (const row of history) {
    const point = byScan.get(row.scanId) ?? { at: row.at, pending: 0, failed: 0 };
    point.at = Math.min(point.at, row.at);
    if (row.pending === null) point.failed += 1;
    else point.pending += row.pending;
    byScan.set(row.scanId, point);
  }
  return [...byScan.values()].sort((a, b) => a.at - b.at);
}

function chart(points: readonly Point[]): string {
  if (points.length === 0) return '<p class="empty">No scan recorded in this database yet: run <code>patchpilot scan</code>.</p>';
  const width = 720;
  const height = 220;
  const pad = 40;
  const max = Math.max(1, ...points.map((p) => p.pending));
  const t0 = points[0]!.at;
  const span = Math.max(1, points.at(-1)!.at - t0);
  const x = (at: number) => (points.length === 1 ? width / 2 : pad + ((at - t0) / span) * (width - 2 * pad));
  const y = (v: number) => height - pad - (v / max) * (height - 2 * pad);
  const line = points.map((p) => `${x(p.at).toFixed(1)},${y(p.pending).toFixed(1)}`).join(' ');
  const dots = points
    .map((p) => `<circle class="point" cx="${x(p.at).toFixed(1)}" cy="${y(p.pending).toFixed(1)}" r="5"><title>${esc(new Date(p.at).toISOString())}: ${p.pending} pending${p.failed ? `, ${p.failed} node(s) not scanned` : ''}</title></circle>`)
    .join('');
  return `<svg class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="security updates pending over time">
  <line class="axis" x1="${pad}" y1="${height - pad}" x2="${width - pad}" y2="${height - pad}"/>
  <line class="axis" x1="${pad}" y1="${pad}" x2="${pad}" y2="${height - pad}"/>
  <text x="${pad - 6}" y="${y(max) + 4}" text-anchor="end">${max}</text><text x="${pad - 6}" y="${height - pad + 4}" text-anchor="end">0</text>
  <text x="${pad}" y="${height - pad + 20}">${esc(new Date(t0).toISOString().slice(0, 16).replace('T', ' '))}</text>
  <text x="${width - pad}" y="${height - pad + 20}" text-anchor="end">${esc(new Date(points.at(-1)!.at).toISOString().slice(0, 16).replace('T', ' '))}</text>
  <polyline class="series" points="${line}"/>${dots}
</svg>`;
}

function clusterSection(status: ClusterStatus, history: readonly ScanRecord[], now: number): string {
  if (status.error !== undefined) return `<section><h2>${esc(status.name)}</h2><p class="error">Status unknown: ${esc(status.error)}</p></section>`;
  const rows = status.nodes
    .map(
      (n) => `<tr class="${n.compliant ? 'ok' : 'bad'}"><td>${esc(n.name)}</td><td>${esc(n.os)}</td><td>${esc(n.kernel ?? '-')}</td><td>${esc(n.linux ? pendingText(n, 10) : 'n/a')}</td><td>${n.rebootRequired === null ? '?' : n.rebootRequired ? 'yes' : 'no'}</td><td>${esc(n.lastPatch ? `${age(n.lastPatch.at, now)} (${n.lastPatch.status}${n.lastPatch.trigger ? `, trigger ${n.lastPatch.trigger}` : ''})` : lastPatchText(n, now))}</td><td>${esc(n.cordoned ? `by ${n.cordonedBy}` : 'no')}</td><td>${n.disabled ? 'disabled' : n.linux ? '' : 'not Linux'}</td><td class="verdict">${n.compliant ? 'compliant' : esc(n.reason)}</td></tr>`,
    )
    .join('\n');
  const share = status.total === 0 ? 0 : Math.round((status.compliant / status.total) * 100);
  return `<section>
<h2>${esc(status.name)}</h2>
<p class="summary"><strong>${status.compliant} of ${status.total}</strong> Linux nodes compliant (${share}%) · last scan ${esc(age(status.lastScanAt, now))}${status.oldestUnpatched ? ` · oldest unpatched: ${esc(status.oldestUnpatched.name)} (${status.oldestUnpatched.lastPatchedAt === null ? 'never patched' : esc(age(status.oldestUnpatched.lastPatchedAt, now))})` : ''}</p>
<h3>Security updates pending over time</h3>
${chart(pendingSeries(history))}
<h3>Nodes</h3>
<table><thead><tr><th>Node</th><th>OS</th><th>Kernel</th><th>Security updates pending</th><th>Reboot</th><th>Last patched</th><th>Cordoned</th><th>Excluded</th><th>Compliant</th></tr></thead>
<tbody>
${rows}
</tbody></table>
</section>`;
}

export function renderFleetReport(statuses: readonly ClusterStatus[], historyOf: (cluster: string) => ScanRecord[], now: number): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>patchpilot compliance</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1b1f24; background: #ffffff; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; } h3 { font-size: 15px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #d0d7de; }
tr.ok td.verdict { color: #1a7f37; font-weight: 600; } tr.bad td.verdict { color: #cf222e; font-weight: 600; }
tr.bad { background: #fff0f0; }
.chart .axis { stroke: #57606a; stroke-width: 1; } .chart text { font-size: 11px; fill: #57606a; }
.chart .series { fill: none; stroke: #0969da; stroke-width: 3; } .chart .point { fill: #0969da; }
.error { color: #cf222e; } .empty { color: #57606a; }
</style></head>
<body>
<h1>patchpilot: fleet compliance</h1>
<p>Generated ${esc(new Date(now).toISOString())}. A node is compliant when its last scan (or a successful patch since) shows no security update and no reboot pending; a node never scanned is not.</p>
${statuses.map((s) => clusterSection(s, historyOf(s.name), now)).join('\n')}
</body></html>
`;
}
