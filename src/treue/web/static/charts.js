/* Treue: draws the overview's charts with Chart.js (static/chart.umd.js) from the page's JSON block
   <script type="application/json" id="chart-data">; no inline script, so the CSP script-src 'self' holds. */
(function () {
  "use strict";
  var COLOURS = ["#0b4f8a", "#1d6b2f", "#a4161a", "#8a5a00", "#5b2c83", "#2f6f73"];
  function draw() {
    var block = document.getElementById("chart-data");
    if (!block || typeof Chart === "undefined") { return; }
    var data = JSON.parse(block.textContent);
    var numbers = new Intl.NumberFormat(data.locale);
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var spec = data[canvas.getAttribute("data-chart")];
      if (!spec) { return; }
      var round = spec.type === "doughnut";
      var datasets = spec.series.map(function (series, index) {
        return {
          label: series.label, data: series.data,
          backgroundColor: round ? COLOURS : COLOURS[index % COLOURS.length],
          borderColor: round ? "#ffffff" : COLOURS[index % COLOURS.length], fill: false, tension: 0.2
        };
      });
      var chart = new Chart(canvas, {
        type: spec.type,
        data: { labels: spec.labels, datasets: datasets },
        options: {
          responsive: true, maintainAspectRatio: true, aspectRatio: round ? 1.6 : 1.3, animation: false, locale: data.locale,
          plugins: { legend: { position: "bottom" },
                     tooltip: { callbacks: { label: function (c) {
                       return (c.dataset.label ? c.dataset.label + ": " : "") + numbers.format(c.parsed.y !== undefined ? c.parsed.y : c.parsed);
                     } } } },
          scales: round ? {} : { y: { beginAtZero: true, ticks: { callback: function (v) { return numbers.format(v); } } } }
        }
      });
      canvas.setAttribute("data-drawn", String(chart.data.datasets.length));
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
