// Dashboard behaviour beyond htmx: the theme switch and uPlot charts fed from the JSON API.
(function () {
  "use strict";

  function currentTheme() {
    var set = document.documentElement.dataset.theme;
    if (set) return set;
    return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function wireThemeToggle() {
    var button = document.getElementById("theme-toggle");
    if (!button || button.dataset.wired) return;
    button.dataset.wired = "1";
    button.addEventListener("click", function () {
      var next = currentTheme() === "dark" ? "light" : "dark";
      document.documentElement.dataset.theme = next;
      localStorage.setItem("wk-theme", next);
      drawCharts(document, true);
    });
  }

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  var PALETTE = ["--c1", "--c2", "--c3", "--c4", "--c5", "--c6"];

  function seriesOpts(label, i, unit) {
    return {
      label: label,
      stroke: css(PALETTE[i % PALETTE.length]),
      width: 1.5,
      spanGaps: false,
      value: function (_u, v) { return v == null ? "–" : v.toFixed(unit === "ms" ? 0 : 2) + (unit ? " " + unit : ""); },
    };
  }

  function toSeconds(t) { return Date.parse(t) / 1000; }

  // Each chart kind turns an API answer into uPlot's columns: [xs, ys1, ys2, ...].
  var KINDS = {
    check: function (data) {
      var pts = data.points || [];
      return {
        columns: [
          pts.map(function (p) { return toSeconds(p.t); }),
          pts.map(function (p) { return p.avg_response_time == null ? null : p.avg_response_time * 1000; }),
          pts.map(function (p) { return p.max_response_time == null ? null : p.max_response_time * 1000; }),
        ],
        labels: ["mean", "max"],
        unit: "ms",
      };
    },
    metrics: function (data, el) {
      var prefix = el.dataset.prefix;
      var series = (data.series || []).filter(function (s) { return s.metric.indexOf(prefix) === 0; });
      return fromSeries(series);
    },
    series: function (data) {
      return fromSeries(data.series || []);
    },
  };

  function fromSeries(series) {
    var times = {};
    series.forEach(function (s) { s.points.forEach(function (p) { times[p.t] = true; }); });
    var xs = Object.keys(times).sort();
    var columns = [xs.map(toSeconds)];
    series.forEach(function (s) {
      var byT = {};
      s.points.forEach(function (p) { byT[p.t] = p.value; });
      columns.push(xs.map(function (t) { return t in byT ? byT[t] : null; }));
    });
    return { columns: columns, labels: series.map(function (s) { return s.metric || s.check; }), unit: "" };
  }

  function draw(el, spec) {
    if (el._plot) { el._plot.destroy(); el._plot = null; }
    el.textContent = "";
    if (!spec.columns[0].length || spec.labels.length === 0) {
      el.innerHTML = '<p class="muted">No data in this range yet.</p>';
      return;
    }
    var opts = {
      width: Math.max(el.clientWidth, 240),
      height: 200,
      series: [{}].concat(spec.labels.map(function (l, i) { return seriesOpts(l, i, spec.unit); })),
      axes: [
        { stroke: css("--muted"), grid: { stroke: css("--grid") } },
        { stroke: css("--muted"), grid: { stroke: css("--grid") }, size: 60 },
      ],
      legend: { live: true },
    };
    el._plot = new uPlot(opts, spec.columns, el);
  }

  function drawCharts(root, force) {
    if (typeof uPlot === "undefined") return;
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.drawn && !force) return;
      el.dataset.drawn = "1";
      fetch(el.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error(r.status + " " + r.statusText); return r.json(); })
        .then(function (data) { draw(el, KINDS[el.dataset.chart](data, el)); })
        .catch(function (err) { el.innerHTML = '<p class="error">Chart unavailable: ' + err.message + "</p>"; });
    });
  }

  function init(root) {
    wireThemeToggle();
    drawCharts(root || document, false);
  }

  // Whether this page is receiving live updates: a dashboard that silently stopped updating
  // (the service restarted, the session ended, the network dropped) must say so.
  function liveState(ok, text) {
    var el = document.getElementById("live");
    if (!el) return;
    el.hidden = false;
    el.textContent = text;
    el.classList.toggle("down", !ok);
  }
  document.addEventListener("htmx:sseOpen", function () { liveState(true, "\u25cf live"); });
  document.addEventListener("htmx:sseError", function () {
    liveState(false, "\u25cb not live: reconnecting, figures may be stale");
  });
  document.addEventListener("htmx:sseClose", function () {
    liveState(false, "\u25cb not live: reload the page");
  });

  // Where a form goes once htmx has sent it (log out: to the login page). An attribute, not
  // hx-on: that needs eval, which the pages' CSP does not allow.
  document.addEventListener("htmx:afterRequest", function (e) {
    var go = e.target.getAttribute && e.target.getAttribute("data-then-go");
    if (go) window.location = go;
  });

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (e) { init(e.target); });
  var resizeTimer;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      document.querySelectorAll("[data-chart]").forEach(function (el) {
        if (el._plot) el._plot.setSize({ width: Math.max(el.clientWidth, 240), height: 200 });
      });
    }, 150);
  });
})();
