// The report's chart: reads the JSON data in #conclave-data (written by html.rs) and draws
// only the time in view as SVG, with the elements and classes of svg.rs. Time runs left to
// right, a lane per node. Zoom: +/- buttons or keys, Ctrl + wheel; scroll: drag, Shift +
// wheel, arrow keys, the overview strip. Arrays are flat: see data_json in html.rs.
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('conclave-data').textContent);
  var L = D.layout;
  var chartBox = document.getElementById('chart');
  var svg = document.getElementById('chart-svg');
  var overview = document.getElementById('overview');
  var details = document.getElementById('details');
  var nLanes = D.lanes.length;
  var M = 7; // numbers per message
  var MAX_ARROWS = 2500; // more in view: a density plot instead
  var MAX_MARKS = 4000;
  var REASONS = ['lost', 'partitioned', 'down', 'paused'];
  var ROLES = ['idle', 'candidate', 'follower', 'leader', 'service'];
  var STATES = ['down', 'paused'];
  var SHAPES = {
    start: '<circle r="3"/>',
    crash: '<path d="M-6,-6L6,6M6,-6L-6,6"/>',
    restart: '<path d="M-4,-7L6,0L-4,7z"/>',
    pause: '<path d="M-4,-7v14M3,-7v14"/>',
    resume: '<path d="M-3,-6L4,0L-3,6"/>',
    leave: '<path d="M-6,-6h12v12h-12z"/>',
    timer: '<path d="M0,-4v8"/>',
    suspect: '<path d="M0,-9l4,6h-8z"/>',
    trust: '<path d="M0,9l4,-6h-8z"/>'
  };

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  // Times as the trace writes them (1.5s, 250ms, 20us), or steps.
  function fmt(t) {
    if (D.axis === 'step') return 'step ' + Math.round(t);
    t = Math.round(t);
    if (t === 0) return '0s';
    var units = [[1e6, 's'], [1e3, 'ms'], [1, 'us']];
    for (var i = 0; i < units.length; i++) {
      if (t >= units[i][0] || i === units.length - 1) {
        var v = t / units[i][0];
        return (Math.round(v * 1e6) / 1e6) + units[i][1];
      }
    }
  }

  function niceStep(raw) {
    raw = Math.max(raw, 1);
    var p = Math.pow(10, Math.floor(Math.log10(raw)));
    var f = raw / p;
    return p * (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10);
  }

  // First index i in [lo, hi) with key(i) >= x (keys non-decreasing).
  function lowerBound(n, key, x) {
    var lo = 0, hi = n;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (key(mid) < x) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  // Messages: sorted by send; most are short, the long ones (in flight, late) are kept
  // apart so that a window query is a binary search plus a short scan.
  function indexMessages(a) {
    var n = a.length / M, durations = [];
    for (var i = 0; i < n; i++) durations.push(a[i * M + 1] - a[i * M]);
    var sorted = durations.slice().sort(function (x, y) { return x - y; });
    var short = n ? Math.max(1, sorted[Math.floor((n - 1) * 0.99)]) : 1;
    var long = [];
    for (i = 0; i < n; i++) if (durations[i] > short) long.push(i);
    return { a: a, n: n, short: short, long: long };
  }
  var MSG = indexMessages(D.m), ORPHANS = indexMessages(D.o);

  function messagesIn(ix, t0, t1, out) {
    var a = ix.a;
    var from = lowerBound(ix.n, function (i) { return a[i * M]; }, t0 - ix.short);
    for (var i = from; i < ix.n && a[i * M] <= t1; i++) {
      if (a[i * M + 1] >= t0 && a[i * M + 1] - a[i * M] <= ix.short) out.push(i);
    }
    for (var k = 0; k < ix.long.length; k++) {
      var j = ix.long[k];
      if (a[j * M] <= t1 && a[j * M + 1] >= t0) out.push(j);
    }
    return out;
  }

  // Spans per lane (non-overlapping, sorted by start): [lane, from, to, ...] of stride s.
  function perLane(flat, stride, laneAt, fromAt) {
    var lanes = [];
    for (var l = 0; l < nLanes; l++) lanes.push([]);
    for (var i = 0; i < flat.length; i += stride) lanes[flat[i + laneAt]].push(i);
    lanes.forEach(function (list) {
      list.sort(function (x, y) { return flat[x + fromAt] - flat[y + fromAt]; });
    });
    return lanes;
  }
  var BELIEFS = perLane(D.b, 7, 0, 1);
  var STATESBY = perLane(D.st, 4, 0, 1);
  var LEADING = perLane(D.ld, 3, 0, 1);
  function spansIn(list, flat, fromAt, toAt, t0, t1, f) {
    var i = lowerBound(list.length, function (k) { return flat[list[k] + toAt]; }, t0);
    for (; i < list.length && flat[list[i] + fromAt] <= t1; i++) f(list[i]);
  }

  var leaderRows = [];
  for (var l = 0; l < nLanes; l++) if (LEADING[l].length) leaderRows.push(l);

  // What is shown.
  var laneOn = D.lanes.map(function () { return true; });
  var kindOn = D.kinds.map(function () { return true; });
  var showMarks = true;
  var full = Math.max(1, D.end - D.start);
  var view = { t0: D.start, span: full };
  var MIN_SPAN = D.axis === 'step' ? 4 : 20;

  // The first view: the whole run, or, for a long one, its start with a few hundred messages.
  (function initialView() {
    if (MSG.n > 1500) {
      var k = Math.min(MSG.n - 1, 400);
      view.span = Math.max(MIN_SPAN, Math.min(full, (D.m[k * M] - D.start) * 1.05, full));
      if (view.span < full / 5000) view.span = full / 5000;
    }
  })();

  function clampView() {
    view.span = Math.min(Math.max(view.span, MIN_SPAN), full);
    view.t0 = Math.min(Math.max(view.t0, D.start), D.end - view.span);
  }

  function plotWidth() { return Math.max(50, chartBox.clientWidth - L.gutter - L.right); }

  var pending = false;
  function redraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; draw(); });
  }

  function draw() {
    clampView();
    var W = chartBox.clientWidth || 900;
    var pw = plotWidth();
    var t0 = view.t0, t1 = view.t0 + view.span;
    var scale = pw / view.span;
    var X = function (t) { return L.gutter + (t - t0) * scale; };
    var f1 = function (v) { return Math.round(v * 10) / 10; };
    var lanes = [], laneY = [];
    for (var l = 0; l < nLanes; l++) if (laneOn[l]) lanes.push(l);
    var rows = leaderRows.filter(function (l) { return laneOn[l]; });
    var stripTop = L.axis + 4;
    var stripH = Math.max(1, rows.length) * L.leaderRow + 4;
    var lanesTop = stripTop + stripH + L.gap;
    lanes.forEach(function (l, i) { laneY[l] = lanesTop + i * L.lane + L.lane / 2; });
    laneYCache = laneY;
    var H = lanesTop + lanes.length * L.lane + 8;
    var o = [];
    var clipW = f1(pw);
    o.push('<defs><marker id="ah" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="context-stroke"/></marker>' +
      '<clipPath id="plot"><rect x="' + L.gutter + '" y="0" width="' + clipW + '" height="' + H + '"/></clipPath></defs>');
    // Axis.
    o.push('<g class="axis">');
    var step = niceStep(view.span / Math.max(2, pw / 110));
    for (var t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
      var tx = f1(X(t));
      o.push('<line class="tick" x1="' + tx + '" y1="' + L.axis + '" x2="' + tx + '" y2="' + H + '"/><text x="' + tx + '" y="16" text-anchor="middle">' + esc(fmt(t)) + '</text>');
    }
    o.push('</g><g clip-path="url(#plot)">');
    // Leader strip.
    o.push('<g class="leaders">');
    D.cf.forEach(function (c) {
      if (c[1] < t0 || c[0] > t1) return;
      var names = c[2].map(function (l) { return D.lanes[l]; }).join(' and ');
      o.push('<rect class="conflict" x="' + f1(X(c[0])) + '" y="' + stripTop + '" width="' + f1(Math.max(1, (c[1] - c[0]) * scale)) + '" height="' + stripH + '"><title>' + esc(names + ' lead at once, ' + fmt(c[0]) + ' to ' + fmt(c[1])) + '</title></rect>');
    });
    rows.forEach(function (l, row) {
      spansIn(LEADING[l], D.ld, 1, 2, t0, t1, function (i) {
        var a = D.ld[i + 1], b = D.ld[i + 2];
        o.push('<rect class="leading" data-node="' + esc(D.lanes[l]) + '" x="' + f1(X(a)) + '" y="' + (stripTop + 2 + row * L.leaderRow) + '" width="' + f1(Math.max(1, (b - a) * scale)) + '" height="' + (L.leaderRow - 2) + '" fill="' + D.colors[l] + '"><title>' + esc(D.lanes[l] + ' leads, ' + fmt(a) + ' to ' + fmt(b)) + '</title></rect>');
      });
    });
    o.push('</g>');
    // Partitions and blocked links.
    D.p.forEach(function (p) {
      if (p[1] < t0 || p[0] > t1) return;
      lanes.forEach(function (l) {
        var g = p[2][l] || 0;
        o.push('<rect class="partition g' + (g % 4) + '" x="' + f1(X(p[0])) + '" y="' + f1(laneY[l] - L.lane / 2) + '" width="' + f1(Math.max(1, (p[1] - p[0]) * scale)) + '" height="' + L.lane + '"><title>' + esc('partition ' + p[3] + ', ' + fmt(p[0]) + ' to ' + fmt(p[1])) + '</title></rect>');
      });
    });
    for (var i = 0; i < D.bl.length; i += 4) {
      var ba = D.bl[i], bb = D.bl[i + 1], bf = D.bl[i + 2], bt = D.bl[i + 3];
      if (bt < t0 || bf > t1) continue;
      [ba, bb].forEach(function (l) {
        if (!laneOn[l]) return;
        o.push('<rect class="blocked" x="' + f1(X(bf)) + '" y="' + f1(laneY[l] - L.lane / 2 + 2) + '" width="' + f1(Math.max(1, (bt - bf) * scale)) + '" height="' + (L.lane / 2 - 8) + '"><title>' + esc('link ' + D.lanes[ba] + '–' + D.lanes[bb] + ' blocked, ' + fmt(bf) + ' to ' + fmt(bt)) + '</title></rect>');
      });
    }
    // Lanes, beliefs, down and paused times.
    lanes.forEach(function (l) {
      var y = f1(laneY[l]);
      o.push('<g class="lane" data-node="' + esc(D.lanes[l]) + '"><line class="lane-line" x1="' + L.gutter + '" y1="' + y + '" x2="' + f1(L.gutter + pw) + '" y2="' + y + '" stroke="' + D.colors[l] + '"/></g>');
      spansIn(BELIEFS[l], D.b, 1, 2, t0, t1, function (i) {
        var a = D.b[i + 1], b = D.b[i + 2], role = D.b[i + 3], leader = D.b[i + 4];
        var own = leader === l ? ' own' : '';
        o.push('<rect class="belief' + own + '" data-node="' + esc(D.lanes[l]) + '" x="' + f1(X(a)) + '" y="' + f1(laneY[l] - 5) + '" width="' + f1(Math.max(1, (b - a) * scale)) + '" height="10" fill="' + (leader >= 0 ? D.colors[leader] : 'none') + '"><title>' +
          esc(D.lanes[l] + ' ' + ROLES[role] + ', leader ' + (leader >= 0 ? D.lanes[leader] : 'none') + ', status ' + D.texts[D.b[i + 5]] + (D.b[i + 6] ? ', group ' + D.b[i + 6] : '') + ' (' + fmt(a) + ' to ' + fmt(b) + ')') + '</title></rect>');
      });
      spansIn(STATESBY[l], D.st, 1, 2, t0, t1, function (i) {
        var a = D.st[i + 1], b = D.st[i + 2], s = STATES[D.st[i + 3]];
        o.push('<rect class="' + s + '" x="' + f1(X(a)) + '" y="' + f1(laneY[l] - 7) + '" width="' + f1(Math.max(1, (b - a) * scale)) + '" height="14"><title>' + esc(D.lanes[l] + ' ' + s + ', ' + fmt(a) + ' to ' + fmt(b)) + '</title></rect>');
      });
    });
    // Messages.
    var shown = function (a, i) {
      return laneOn[a[i * M + 2]] && laneOn[a[i * M + 3]] && kindOn[a[i * M + 4]];
    };
    var visible = messagesIn(MSG, t0, t1, []).filter(function (i) { return shown(D.m, i); });
    var orphans = messagesIn(ORPHANS, t0, t1, []).filter(function (i) { return shown(D.o, i); });
    var notice = '';
    if (visible.length + orphans.length > MAX_ARROWS) {
      // Too many to draw one by one: sends per lane, in columns of 3 px.
      var cols = Math.ceil(pw / 3), counts = {}, max = 1;
      visible.forEach(function (i) {
        var s = D.m[i * M];
        if (s < t0) return;
        var key = D.m[i * M + 2] * cols + Math.min(cols - 1, Math.floor((s - t0) * scale / 3));
        counts[key] = (counts[key] || 0) + 1;
        if (counts[key] > max) max = counts[key];
      });
      var paths = {};
      Object.keys(counts).forEach(function (key) {
        var lane = Math.floor(key / cols), col = key % cols;
        var h = Math.max(1, 18 * counts[key] / max);
        paths[lane] = (paths[lane] || '') + 'M' + (L.gutter + col * 3) + ',' + f1(laneY[lane] - 2) + 'h2.5v' + f1(-h) + 'h-2.5z';
      });
      Object.keys(paths).forEach(function (lane) {
        o.push('<path class="density" d="' + paths[lane] + '"/>');
      });
      notice = visible.length + ' messages in view: zoom in to see each one';
    } else {
      drawMessages(o, D.m, visible, false, X, f1);
      drawMessages(o, D.o, orphans, true, X, f1);
    }
    // Marks.
    var ms = D.mk, nm = ms.length / 4;
    var from = lowerBound(nm, function (i) { return ms[i * 4]; }, t0);
    var to = lowerBound(nm, function (i) { return ms[i * 4]; }, t1 + 1);
    var minor = showMarks && to - from <= MAX_MARKS;
    for (i = from; i < to; i++) {
      var kind = D.marks[ms[i * 4 + 2]], lane = ms[i * 4 + 1];
      if (!laneOn[lane]) continue;
      if (!minor && (kind === 'timer' || kind === 'suspect' || kind === 'trust')) continue;
      var txt = ms[i * 4 + 3] >= 0 ? ' ' + D.texts[ms[i * 4 + 3]] : '';
      o.push('<g class="mark ' + kind + '" transform="translate(' + f1(X(ms[i * 4])) + ',' + f1(laneY[lane]) + ')">' + SHAPES[kind] + '<title>' + esc(D.lanes[lane] + ' ' + kind + txt + ' at ' + fmt(ms[i * 4])) + '</title></g>');
    }
    // The first violation.
    if (D.violation && D.violation.at >= t0 && D.violation.at <= t1) {
      var vx = f1(X(D.violation.at));
      o.push('<line id="violation-line" class="violation' + (flashing ? ' flash' : '') + '" x1="' + vx + '" y1="' + L.axis + '" x2="' + vx + '" y2="' + H + '"><title>' + esc('first violation: ' + D.violation.what + ' at ' + fmt(D.violation.at)) + '</title></line>' +
        '<text class="violation-label" x="' + f1(vx + 4) + '" y="' + (L.axis + 10) + '">' + esc(D.violation.what.length > 60 ? D.violation.what.slice(0, 57) + '…' : D.violation.what) + '</text>');
    }
    o.push('</g>');
    // The gutter: lane names over anything drawn left of the plot.
    o.push('<rect class="gutter" x="0" y="' + L.axis + '" width="' + (L.gutter - 2) + '" height="' + (H - L.axis) + '"/>');
    o.push('<text class="strip-name" x="4" y="' + (stripTop + 9) + '">leader</text>');
    lanes.forEach(function (l) {
      o.push('<text class="lane-name" x="6" y="' + f1(laneY[l] + 4) + '" fill="' + D.colors[l] + '">' + esc(D.lanes[l]) + '</text>');
    });
    if (notice) o.push('<text class="notice" x="' + (L.gutter + 6) + '" y="' + (lanesTop - 4) + '">' + esc(notice) + '</text>');
    svg.setAttribute('width', W);
    svg.setAttribute('height', H);
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    svg.setAttribute('data-t0', t0);
    svg.setAttribute('data-t1', t1);
    svg.setAttribute('data-messages', visible.length);
    svg.innerHTML = o.join('');
    document.getElementById('window').textContent = fmt(t0) + ' – ' + fmt(t1) + ' of ' + fmt(D.end) + (notice ? '' : ', ' + visible.length + ' messages in view');
    drawOverviewWindow();
    document.body.setAttribute('data-drawn', String(++draws));
  }
  var draws = 0, flashing = false;

  function drawMessages(o, a, list, orphan, X, f1) {
    var minLabel = 34, labelEnd = {};
    list.forEach(function (i) {
      var b = i * M, s = a[b], e = a[b + 1], f = a[b + 2], to = a[b + 3], k = a[b + 4], code = a[b + 6];
      var dup = code >= 8, c = code & 7;
      var cls = c === 0 ? 'delivered' : c === 1 ? 'inflight' : 'dropped';
      var x0 = X(s), y0 = laneYOf(f), x1 = X(e), y1 = laneYOf(to);
      if (c >= 2) y1 = y0 + (y1 - y0) * L.dropAt;
      var klass = orphan ? 'orphan ' + cls : 'msg ' + cls + (dup ? ' duplicate' : '');
      var kind = D.kinds[k];
      var what = c === 0 ? 'delivered at ' + fmt(e) : c === 1 ? 'still in flight at the end' : 'dropped at ' + fmt(e) + ': ' + REASONS[c - 2];
      var title = D.lanes[f] + ' → ' + D.lanes[to] + ': ' + D.texts[a[b + 5]] + '\nsent at ' + fmt(s) + ', ' + what + (dup ? ' (second copy)' : '') + (orphan ? ' (its send is not in the trace)' : '');
      o.push('<g class="' + klass + '" data-kind="' + esc(kind) + '" data-i="' + (orphan ? -1 : i) + '"><line x1="' + f1(x0) + '" y1="' + f1(y0) + '" x2="' + f1(x1) + '" y2="' + f1(y1) + '"' + (c >= 2 ? '' : ' marker-end="url(#ah)"') + '/>');
      if (c >= 2) o.push('<path class="cross" d="M' + f1(x1 - 4) + ',' + f1(y1 - 4) + 'l8,8m0,-8l-8,8"/>');
      // A label where it overlaps no label drawn before it at that height.
      var lx = (x0 + x1) / 2 + 3, ly = (y0 + y1) / 2 - 2, row = Math.round(ly / 9);
      if (Math.abs(x1 - x0) + Math.abs(y1 - y0) >= minLabel && !(labelEnd[row] > lx)) {
        labelEnd[row] = lx + kind.length * 6 + 4;
        o.push('<text class="label" x="' + f1(lx) + '" y="' + f1(ly) + '">' + esc(kind) + '</text>');
      }
      o.push('<title>' + esc(title) + '</title></g>');
    });
  }
  var laneYCache = [];
  function laneYOf(l) { return laneYCache[l]; }

  // The overview: sends over the whole run, conflicts, the violation, the window in view.
  var OVERVIEW_COLS = 300;
  function drawOverview() {
    var W = overview.clientWidth || 900, pw = Math.max(50, W - L.gutter - L.right);
    var counts = new Array(OVERVIEW_COLS).fill(0), max = 1;
    for (var i = 0; i < MSG.n; i++) {
      var c = Math.min(OVERVIEW_COLS - 1, Math.floor((D.m[i * M] - D.start) / full * OVERVIEW_COLS));
      if (++counts[c] > max) max = counts[c];
    }
    var o = ['<text x="4" y="26" class="strip-name">whole run</text>'];
    var cw = pw / OVERVIEW_COLS, d = '';
    counts.forEach(function (n, c) {
      if (!n) return;
      var h = Math.max(1, 30 * n / max);
      d += 'M' + (L.gutter + c * cw).toFixed(1) + ',40v' + (-h).toFixed(1) + 'h' + Math.max(0.5, cw - 0.3).toFixed(2) + 'v' + h.toFixed(1) + 'z';
    });
    o.push('<path class="hist" d="' + d + '"/>');
    D.cf.forEach(function (c) {
      o.push('<rect class="conflict" x="' + (L.gutter + (c[0] - D.start) / full * pw).toFixed(1) + '" y="2" width="' + Math.max(1, (c[1] - c[0]) / full * pw).toFixed(1) + '" height="6" fill="#c62828" opacity=".5"/>');
    });
    if (D.violation) {
      var vx = (L.gutter + (D.violation.at - D.start) / full * pw).toFixed(1);
      o.push('<line x1="' + vx + '" y1="0" x2="' + vx + '" y2="44" stroke="#c62828" stroke-width="2"/>');
    }
    o.push('<rect id="overview-window" class="window" x="0" y="1" width="1" height="42"/>');
    overview.setAttribute('viewBox', '0 0 ' + W + ' 44');
    overview.setAttribute('width', W);
    overview.innerHTML = o.join('');
  }
  function drawOverviewWindow() {
    var r = document.getElementById('overview-window');
    if (!r) return;
    var pw = Math.max(50, (overview.clientWidth || 900) - L.gutter - L.right);
    r.setAttribute('x', (L.gutter + (view.t0 - D.start) / full * pw).toFixed(1));
    r.setAttribute('width', Math.max(2, view.span / full * pw).toFixed(1));
  }
  function overviewTime(clientX) {
    var rect = overview.getBoundingClientRect();
    var pw = Math.max(50, rect.width - L.gutter - L.right);
    return D.start + (clientX - rect.left - L.gutter) / pw * full;
  }
  var overviewDrag = false;
  overview.addEventListener('mousedown', function (e) {
    overviewDrag = true;
    view.t0 = overviewTime(e.clientX) - view.span / 2;
    redraw();
    e.preventDefault();
  });
  window.addEventListener('mousemove', function (e) {
    if (overviewDrag) { view.t0 = overviewTime(e.clientX) - view.span / 2; redraw(); }
  });
  window.addEventListener('mouseup', function () { overviewDrag = false; });

  // Zoom and scroll.
  function zoom(factor, atX) {
    var rect = chartBox.getBoundingClientRect();
    var frac = atX === undefined ? 0.5 : Math.min(1, Math.max(0, (atX - rect.left - L.gutter) / plotWidth()));
    var pivot = view.t0 + frac * view.span;
    view.span = Math.min(Math.max(view.span * factor, MIN_SPAN), full);
    view.t0 = pivot - frac * view.span;
    redraw();
  }
  function pan(fraction) { view.t0 += fraction * view.span; redraw(); }
  function goTo(t) {
    if (view.span >= full && MSG.n > 1500) {
      view.span = Math.max(MIN_SPAN, full / 20);
    }
    view.t0 = t - view.span / 2;
    redraw();
  }
  document.getElementById('zoom-in').onclick = function () { zoom(0.5); };
  document.getElementById('zoom-out').onclick = function () { zoom(2); };
  document.getElementById('zoom-fit').onclick = function () { view.t0 = D.start; view.span = full; redraw(); };
  document.getElementById('pan-left').onclick = function () { pan(-0.5); };
  document.getElementById('pan-right').onclick = function () { pan(0.5); };
  chartBox.addEventListener('wheel', function (e) {
    if (e.ctrlKey || e.metaKey) {
      e.preventDefault();
      zoom(Math.exp(e.deltaY * 0.002), e.clientX);
    } else if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
      e.preventDefault();
      var d = Math.abs(e.deltaX) > Math.abs(e.deltaY) ? e.deltaX : e.deltaY;
      view.t0 += d / plotWidth() * view.span;
      redraw();
    }
  }, { passive: false });
  var drag = null;
  chartBox.addEventListener('mousedown', function (e) {
    drag = { x: e.clientX, t0: view.t0, moved: false };
    chartBox.classList.add('dragging');
  });
  window.addEventListener('mousemove', function (e) {
    if (!drag) return;
    if (Math.abs(e.clientX - drag.x) > 3) drag.moved = true;
    view.t0 = drag.t0 - (e.clientX - drag.x) / plotWidth() * view.span;
    redraw();
  });
  window.addEventListener('mouseup', function () { chartBox.classList.remove('dragging'); setTimeout(function () { drag = null; }, 0); });
  chartBox.addEventListener('keydown', function (e) {
    var keys = { ArrowLeft: function () { pan(-0.2); }, ArrowRight: function () { pan(0.2); }, '+': function () { zoom(0.5); }, '=': function () { zoom(0.5); }, '-': function () { zoom(2); } };
    if (keys[e.key]) { keys[e.key](); e.preventDefault(); }
  });
  // A click on a message shows its whole text.
  chartBox.addEventListener('click', function (e) {
    if (drag && drag.moved) return;
    var g = e.target.closest ? e.target.closest('.msg, .orphan') : null;
    if (!g) return;
    var t = g.querySelector('title');
    details.hidden = false;
    details.textContent = t ? t.textContent : '';
  });

  // Filters.
  function checkbox(parent, label, color, count, on) {
    var el = document.createElement('label');
    var box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = true;
    box.addEventListener('change', function () { on(box.checked); redraw(); });
    el.appendChild(box);
    if (color) {
      var sw = document.createElement('span');
      sw.className = 'swatch';
      sw.style.background = color;
      el.appendChild(sw);
    }
    el.appendChild(document.createTextNode(label));
    if (count !== null) {
      var c = document.createElement('span');
      c.className = 'count';
      c.textContent = ' ' + count;
      el.appendChild(c);
    }
    parent.appendChild(el);
    return box;
  }
  var nodeFilter = document.getElementById('node-filter');
  D.lanes.forEach(function (name, l) {
    checkbox(nodeFilter, name, D.colors[l], null, function (on) { laneOn[l] = on; }).setAttribute('data-node', name);
  });
  var kindCounts = D.kinds.map(function () { return 0; });
  for (var mi = 0; mi < MSG.n; mi++) if (D.m[mi * M + 6] < 8) kindCounts[D.m[mi * M + 4]]++;
  var kindFilter = document.getElementById('kind-filter');
  D.kinds.forEach(function (name, k) {
    checkbox(kindFilter, name, null, kindCounts[k], function (on) { kindOn[k] = on; }).setAttribute('data-kind', name);
  });
  document.getElementById('show-labels').addEventListener('change', function (e) {
    svg.classList.toggle('nolabels', !e.target.checked);
  });
  document.getElementById('show-marks').addEventListener('change', function (e) {
    showMarks = e.target.checked; redraw();
  });

  // The first violation, and every time link in the summary.
  function scrollToChart() {
    var header = document.getElementById('top');
    var y = chartBox.getBoundingClientRect().top + window.scrollY - (header ? header.offsetHeight : 0) - 4;
    window.scrollTo(0, Math.max(0, y));
  }
  var fv = document.getElementById('first-violation');
  if (fv && D.violation) {
    fv.addEventListener('click', function () {
      flashing = true;
      goTo(D.violation.at);
      scrollToChart();
      setTimeout(function () { flashing = false; }, 2500);
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll('a.goto'), function (a) {
    a.addEventListener('click', function (e) {
      e.preventDefault();
      goTo(Number(a.getAttribute('data-t')));
      scrollToChart();
    });
  });

  window.addEventListener('resize', function () { drawOverview(); redraw(); });
  // For tests and the console: the view, and a way to set it.
  window.conclaveChart = {
    view: function () { return { t0: view.t0, t1: view.t0 + view.span }; },
    show: function (t0, t1) { view.t0 = t0; view.span = t1 - t0; draw(); },
    messages: MSG.n
  };
  drawOverview();
  draw();
  window.conclaveChart.firstDrawMs = performance.now();
})();
