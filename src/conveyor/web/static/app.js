// Conveyor dashboard: live counts, charts and job progress by polling the JSON API.
// No framework; every value goes into the page as text, never as HTML.
"use strict";
(function () {
  var body = document.body;
  var base = body.dataset.base || "";
  var SVG = "http://www.w3.org/2000/svg";

  function getJSON(path) {
    return fetch(base + path, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); });
  }

  function every(ms, fn) {
    var busy = false;
    function tick() {
      if (busy || document.hidden) { return; }
      busy = true;
      fn().catch(function () {}).then(function () { busy = false; });
    }
    tick();
    return setInterval(tick, ms);
  }

  // confirmation for destructive forms
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  function el(name, attrs, text) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function drawChart(svg, minutes, field) {
    var W = 600, H = 160, left = 34, bottom = 20, top = 8;
    var values = minutes.map(function (m) { return m[field]; });
    var max = Math.max(1, Math.max.apply(null, values));
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var plotH = H - bottom - top, step = (W - left) / Math.max(values.length, 1);
    svg.appendChild(el("line", { x1: left, y1: H - bottom, x2: W, y2: H - bottom, "class": "axis" }));
    svg.appendChild(el("text", { x: 0, y: top + 10 }, String(max)));
    svg.appendChild(el("text", { x: 0, y: H - bottom }, "0"));
    svg.appendChild(el("text", { x: left, y: H - 4 }, "-60 min"));
    svg.appendChild(el("text", { x: W - 30, y: H - 4 }, "now"));
    values.forEach(function (v, i) {
      if (!v) { return; }
      var h = Math.max(1, (v / max) * plotH);
      var bar = el("rect", { x: left + i * step + 1, y: H - bottom - h, width: Math.max(1, step - 2), height: h, "class": "col" });
      bar.appendChild(el("title", {}, minutes[i].minute.slice(11, 16) + " UTC: " + v));
      svg.appendChild(bar);
    });
  }

  var stats = document.querySelector("[data-live-stats]");
  if (stats) {
    every(2000, function () {
      return getJSON("/api/stats").then(function (data) {
        document.querySelectorAll("[data-count]").forEach(function (node) {
          node.textContent = String(data.by_state[node.dataset.count] || 0);
        });
        var done = document.getElementById("chart-completed");
        var failed = document.getElementById("chart-failed");
        if (done) { drawChart(done, data.throughput, "completed"); }
        if (failed) { drawChart(failed, data.throughput, "failed"); }
      });
    });
  }

  var live = document.querySelector("[data-live-job]");
  if (live) {
    var initial = live.dataset.state;
    var finished = ["completed", "failed", "cancelled", "skipped"];
    var timer = every(1000, function () {
      return getJSON("/api/jobs/" + encodeURIComponent(live.dataset.liveJob)).then(function (job) {
        var pct = Math.max(0, Math.min(100, Math.round(job.progress)));
        live.querySelectorAll("[data-progress]").forEach(function (bar) { bar.value = pct; bar.textContent = pct + "%"; });
        var text = live.querySelector("[data-progress-text]");
        if (text) { text.textContent = pct + "%"; }
        var msg = live.querySelector("[data-progress-message]");
        if (msg) { msg.textContent = job.progress_message || ""; }
        var logs = live.querySelector("[data-logs]");
        if (logs) {
          logs.textContent = job.logs.map(function (l) {
            return l.at.slice(0, 19).replace("T", " ") + "  " + l.message + "\n";
          }).join("");
        }
        var count = live.querySelector("[data-log-count]");
        if (count) { count.textContent = job.logs.length + " lines"; }
        if (job.state !== initial) {
          clearInterval(timer);
          window.location.reload();  // new state: new buttons, result, errors
        } else if (finished.indexOf(job.state) >= 0) {
          clearInterval(timer);
        }
      });
    });
  }
})();
