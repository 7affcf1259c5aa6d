/* Treue: draws the simulator's bar charts (today's programme beside the draft) with Chart.js from the JSON block
   <script type="application/json" id="sim-chart-data">, when the page loads and again after HTMX swapped in a
   new report. No inline script, so the CSP script-src 'self' holds. */
(function () {
  "use strict";
  var COLOURS = ["#0b4f8a", "#a4161a"];
  function draw() {
    var block = document.getElementById("sim-chart-data");
    if (!block || typeof Chart === "undefined") { return; }
    var data = JSON.parse(block.textContent);
    var numbers = new Intl.NumberFormat(data.locale);
    document.querySelectorAll("canvas[data-sim-chart]").forEach(function (canvas) {
      var spec = data[canvas.getAttribute("data-sim-chart")];
      if (!spec || canvas.getAttribute("data-drawn")) { return; }
      var chart = new Chart(canvas, {
        type: "bar",
        data: {
          labels: spec.labels,
          datasets: spec.series.map(function (series, index) {
            return { label: series.label, data: series.data.map(Number), backgroundColor: COLOURS[index % COLOURS.length] };
          })
        },
        options: {
          responsive: true, maintainAspectRatio: true, aspectRatio: 1.4, animation: false, locale: data.locale,
          plugins: { legend: { position: "bottom" },
                     tooltip: { callbacks: { label: function (c) { return c.dataset.label + ": " + numbers.format(c.parsed.y); } } } },
          scales: { y: { beginAtZero: true, ticks: { callback: function (v) { return numbers.format(v); } } } }
        }
      });
      canvas.setAttribute("data-drawn", String(chart.data.datasets.length));
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
  document.addEventListener("htmx:afterSettle", draw);
})();
