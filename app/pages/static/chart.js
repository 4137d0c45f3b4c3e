// A hand-written inline-SVG time-series chart: calls waiting (left axis, area) and
// service level (right axis, 0-100 %, line) with the target as a dashed line.
//
// Invariants: pure function of its inputs (points, now, span); draws into a fixed
// viewBox and scales with CSS, so it is crisp on a laptop and on a 4K wall screen.
// Gaps in service level (null: nothing answered or abandoned yet) break the line rather
// than being drawn as 0 %.

const NS = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = text;
  return n;
}

/** A "nice" tick step >= v: 1, 2 or 5 x 10^k. */
export function niceStep(v) {
  const x = Math.max(1, v);
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

export function drawChart(container, points, { now, spanMs, target, height }) {
  // The viewBox is the container's size in CSS pixels, so text is drawn at its real size
  // on any screen and the chart fills the width without being stretched.
  const W = Math.max(480, Math.round(container.clientWidth || 1200));
  const H = Math.round(height || 260);
  const fontSize = Math.max(13, Math.min(40, Math.round(H / 14)));
  const sw = fontSize / 14; // stroke widths grow with the screen like the text
  const PAD = { l: fontSize * 3.2, r: fontSize * 4, t: fontSize, b: fontSize * 2.3 };
  const x0 = now - spanMs;
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  // Four grid bands: the left axis max is 4 "nice" steps, so every label is a whole number.
  const step = niceStep(Math.max(0, ...points.map((p) => p.w || 0)) / 4);
  const maxW = step * 4;
  const X = (t) => PAD.l + ((t - x0) / spanMs) * iw;
  const YW = (w) => PAD.t + ih - (w / maxW) * ih;
  const YS = (s) => PAD.t + ih - s * ih;

  const last = points.length ? points[points.length - 1] : null;
  const summary = last
    ? `Chart of the last hour. Now ${last.w} calls waiting, service level ${last.sl === null ? "not yet measured" : Math.round(last.sl * 100) + " percent"}; peak ${Math.max(...points.map((p) => p.w || 0))} waiting.`
    : "Chart of the last hour. No data yet.";
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": summary, id: "chart-svg" });
  root.append(svg("title", {}, summary));

  // Grid and axes.
  const grid = svg("g", { stroke: "#2d3b50", "stroke-width": 1 });
  const labels = svg("g", { fill: "#b8c3d1", "font-size": fontSize, "font-family": "system-ui, sans-serif" });
  for (let i = 0; i <= 4; i++) {
    const y = PAD.t + (ih * i) / 4;
    grid.append(svg("line", { x1: PAD.l, x2: W - PAD.r, y1: y, y2: y }));
    labels.append(svg("text", { x: PAD.l - 8, y: y + 5, "text-anchor": "end" }, String(step * (4 - i))));
    labels.append(svg("text", { x: W - PAD.r + 8, y: y + 5 }, `${100 - i * 25}%`));
  }
  for (let m = 0; m <= 60; m += 10) {
    const x = PAD.l + (iw * m) / 60;
    grid.append(svg("line", { x1: x, x2: x, y1: PAD.t, y2: PAD.t + ih }));
    labels.append(svg("text", { x, y: H - 8, "text-anchor": "middle" }, m === 60 ? "now" : `-${60 - m} min`));
  }
  root.append(grid, labels);

  if (target !== null && target !== undefined) {
    root.append(svg("line", { x1: PAD.l, x2: W - PAD.r, y1: YS(target), y2: YS(target), stroke: "#ffc266", "stroke-width": 2 * sw, "stroke-dasharray": `${8 * sw} ${6 * sw}` }));
  }

  const pts = points.filter((p) => p.t >= x0);
  if (pts.length) {
    // Waiting calls: a step area (the count holds until the next sample).
    let d = `M ${X(pts[0].t).toFixed(1)} ${YW(0).toFixed(1)}`;
    let prevY = YW(pts[0].w || 0);
    d += ` L ${X(pts[0].t).toFixed(1)} ${prevY.toFixed(1)}`;
    for (const p of pts.slice(1)) {
      const x = X(p.t).toFixed(1);
      d += ` L ${x} ${prevY.toFixed(1)}`;
      prevY = YW(p.w || 0);
      d += ` L ${x} ${prevY.toFixed(1)}`;
    }
    const xe = X(Math.min(now, pts[pts.length - 1].t + 10000)).toFixed(1);
    d += ` L ${xe} ${prevY.toFixed(1)} L ${xe} ${YW(0).toFixed(1)} Z`;
    root.append(svg("path", { d, fill: "rgba(127,180,255,0.28)", stroke: "#7fb4ff", "stroke-width": 2 * sw, "data-series": "waiting" }));

    // Service level: line segments, broken where unknown.
    let seg = "";
    const segs = [];
    for (const p of pts) {
      if (p.sl === null || p.sl === undefined) {
        if (seg) segs.push(seg);
        seg = "";
        continue;
      }
      seg += `${seg ? " L" : "M"} ${X(p.t).toFixed(1)} ${YS(Math.min(1, Math.max(0, p.sl))).toFixed(1)}`;
    }
    if (seg) segs.push(seg);
    if (segs.length) root.append(svg("path", { d: segs.join(" "), fill: "none", stroke: "#5fd38a", "stroke-width": 3 * sw, "data-series": "sl" }));
  }
  container.replaceChildren(root);
}
