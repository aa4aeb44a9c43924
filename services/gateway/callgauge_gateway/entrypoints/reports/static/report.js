/* Callgauge run report: draws the charts (Chart.js, served with the page). The calls table is
   paged, sorted and filtered on the server (plain links). No network requests, no inline code (CSP). */
(function () {
  "use strict";
  var el = document.getElementById("report-data");
  var data = el ? JSON.parse(el.textContent) : {};
  var s = data.series;

  function line(id, label, datasets, opts) {
    var canvas = document.getElementById(id);
    if (!canvas || typeof Chart === "undefined") return null;
    return new Chart(canvas, {
      type: (opts && opts.type) || "line",
      data: { labels: (opts && opts.labels) || s.t, datasets: datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, spanGaps: true,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { display: datasets.length > 1 } },
        scales: {
          x: { title: { display: true, text: (opts && opts.xTitle) || "second" } },
          y: Object.assign({ beginAtZero: true, title: { display: !!label, text: label } }, (opts && opts.y) || {})
        }
      }
    });
  }
  function ds(label, values, color, extra) {
    return Object.assign({ label: label, data: values, borderColor: color, backgroundColor: color,
                           pointRadius: values.length > 60 ? 0 : 2, borderWidth: 2, stepped: false }, extra || {});
  }

  window.callgaugeCharts = [];
  if (s && s.t && s.t.length) {
    window.callgaugeCharts.push(line("chart-active", "calls", [ds("active calls", s.active, "#2563eb", { stepped: true })]));
    window.callgaugeCharts.push(line("chart-attempts", "calls", [
      ds("attempts", s.attempts, "#6b7280"), ds("answers", s.answers, "#16a34a"), ds("failures", s.failures, "#dc2626")
    ], { type: "bar" }));
    window.callgaugeCharts.push(line("chart-jitter", "ms", [ds("mean", s.jitterMean, "#7c3aed"), ds("max", s.jitterMax, "#db2777")]));
    window.callgaugeCharts.push(line("chart-loss", "%", [ds("loss", s.lossPct, "#ea580c")]));
    window.callgaugeCharts.push(line("chart-mos", "MOS", [ds("MOS", s.mos, "#0d9488")], { y: { min: 1, max: 5, beginAtZero: false } }));
  }
  var codes = data.sipCodes || {};
  var codeLabels = Object.keys(codes);
  if (codeLabels.length && document.getElementById("chart-sip")) {
    var colors = codeLabels.map(function (c) { return /^2/.test(c) ? "#16a34a" : (/^[3]/.test(c) ? "#ca8a04" : "#dc2626"); });
    window.callgaugeCharts.push(line("chart-sip", "calls", [ds("calls", codeLabels.map(function (c) { return codes[c]; }), colors)],
                                     { type: "bar", labels: codeLabels, xTitle: "SIP code" }));
  }
  window.callgaugeCharts = window.callgaugeCharts.filter(Boolean);
})();
