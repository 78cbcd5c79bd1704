// Conveyor dashboard: list pages refresh in place (one poll of the page itself), a job's page
// follows its progress through the JSON API, and one toggle pauses both. No framework; values
// from the API go into the page as text, never as HTML.
"use strict";
(function () {
  var body = document.body;
  var base = body.dataset.base || "";
  var SVG = "http://www.w3.org/2000/svg";

  function getJSON(path) {
    return fetch(base + path, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); });
  }

  // Live updates: one switch for the whole dashboard, kept in localStorage.
  var LIVE_KEY = "conveyor.live";
  var control = document.querySelector("[data-live-control]");
  var toggle = document.querySelector("[data-live-toggle]");
  var liveStatus = document.querySelector("[data-live-status]");
  var stopped = false;

  function stored(key) {
    try { return window.localStorage.getItem(key); } catch (e) { return null; }
  }

  function paused() { return stored(LIVE_KEY) === "paused"; }

  function showLive(message) {
    body.dataset.live = stopped ? "stopped" : (paused() ? "paused" : "on");
    if (toggle) {
      toggle.setAttribute("aria-pressed", paused() ? "true" : "false");
      toggle.textContent = paused() ? "Resume live updates" : "Pause live updates";
      toggle.hidden = stopped;
    }
    if (liveStatus && message !== undefined) { liveStatus.textContent = message; }
  }

  function offerLive() {
    if (!control || !toggle) { return; }
    control.hidden = false;
    toggle.addEventListener("click", function () {
      try { window.localStorage.setItem(LIVE_KEY, paused() ? "on" : "paused"); } catch (e) { /* private mode */ }
      showLive(paused() ? "paused" : "");
    });
    window.addEventListener("storage", function (event) {  // another tab flipped it
      if (event.key === LIVE_KEY) { showLive(paused() ? "paused" : ""); }
    });
    showLive(paused() ? "paused" : "");
  }

  function every(ms, fn, waitFirst) {
    var busy = false;
    function tick() {
      if (busy || stopped || paused() || document.hidden) { return; }
      busy = true;
      fn().catch(function () {}).then(function () { busy = false; });
    }
    if (!waitFirst) { tick(); }
    return setInterval(tick, ms);
  }

  // The list pages: one poll fetches this page again (same filters) and swaps in each
  // [data-live-region] whose content changed. The server rendered and escaped it; the parsed
  // document is inert (its scripts never run). A region holding the focus or a text selection
  // waits for the next round, and scroll positions inside it are kept.
  function holdsSelection(node) {
    var selection = window.getSelection();
    if (!selection || selection.isCollapsed || !selection.rangeCount) { return false; }
    return node.contains(selection.getRangeAt(0).commonAncestorContainer);
  }

  function swapRegions(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    document.querySelectorAll("[data-live-region]").forEach(function (region) {
      var name = region.dataset.liveRegion;
      var next = null;
      fresh.querySelectorAll("[data-live-region]").forEach(function (node) {
        if (node.dataset.liveRegion === name) { next = node; }
      });
      if (!next || next.innerHTML === region.innerHTML) { return; }
      var focused = document.activeElement;
      if ((focused && focused !== body && region.contains(focused)) || holdsSelection(region)) { return; }
      var scrollers = [region].concat(Array.prototype.slice.call(region.querySelectorAll(".scroll")));
      var kept = scrollers.map(function (node) { return [node.scrollLeft, node.scrollTop]; });
      region.replaceChildren.apply(region, Array.prototype.slice.call(next.childNodes));
      var now = [region].concat(Array.prototype.slice.call(region.querySelectorAll(".scroll")));
      now.forEach(function (node, i) {
        if (kept[i]) { node.scrollLeft = kept[i][0]; node.scrollTop = kept[i][1]; }
      });
    });
    document.dispatchEvent(new CustomEvent("conveyor:refreshed"));
  }

  var polls = 0;
  if (document.querySelector("[data-live-region]")) {
    offerLive();
    every(2000, function () {
      polls += 1;
      body.dataset.livePolls = String(polls);
      return fetch(window.location.href, {
        credentials: "same-origin", cache: "no-store",
        headers: { Accept: "text/html", "X-Conveyor-Live": "1" }
      }).then(function (r) {
        if (!r.ok) {
          stopped = true;
          showLive("live updates stopped (HTTP " + r.status + "): reload the page");
          return null;
        }
        return r.text().then(function (html) {
          swapRegions(html);
          showLive("updated " + new Date().toLocaleTimeString());
        });
      }, function () {
        showLive("offline: trying again");
      }).then(function () { body.dataset.liveDone = String(polls); });
    }, true);  // the page was just rendered: the first refresh is one period later
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

  function drawCharts() {
    var data = document.querySelector("[data-throughput]");
    if (!data) { return; }
    var minutes = JSON.parse(data.dataset.throughput);
    var done = document.getElementById("chart-completed");
    var failed = document.getElementById("chart-failed");
    if (done) { drawChart(done, minutes, "completed"); }
    if (failed) { drawChart(failed, minutes, "failed"); }
  }
  drawCharts();
  document.addEventListener("conveyor:refreshed", drawCharts);

  var live = document.querySelector("[data-live-job]");
  if (live) {
    offerLive();
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
