// Conveyor dashboard: list pages refresh in place (one poll of the page itself), a job's page
// follows its progress through the JSON API, and one toggle pauses both. No framework; values
// from the API go into the page as text, never as HTML.
"use strict";
(function () {
  var body = document.body;
  var base = body.dataset.base || "";

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

  // Theme: the toggle switches to the other one and remembers it (theme.js applies it early).
  var THEME_KEY = "conveyor.theme";
  var themeToggle = document.querySelector("[data-theme-toggle]");
  var systemDark = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  function theme() {
    var chosen = document.documentElement.dataset.theme;
    if (chosen === "light" || chosen === "dark") { return chosen; }
    return systemDark && systemDark.matches ? "dark" : "light";
  }
  function showTheme() {
    var other = theme() === "dark" ? "light" : "dark";
    themeToggle.textContent = other === "dark" ? "Dark theme" : "Light theme";
    themeToggle.setAttribute("aria-label", "Switch to the " + other + " theme");
    body.dataset.themeShown = theme();
  }
  if (themeToggle) {
    themeToggle.hidden = false;
    themeToggle.addEventListener("click", function () {
      var next = theme() === "dark" ? "light" : "dark";
      document.documentElement.dataset.theme = next;
      try { window.localStorage.setItem(THEME_KEY, next); } catch (e) { /* private mode */ }
      showTheme();
    });
    window.addEventListener("storage", function (event) {  // another tab chose
      if (event.key === THEME_KEY && (event.newValue === "light" || event.newValue === "dark")) {
        document.documentElement.dataset.theme = event.newValue;
        showTheme();
      }
    });
    if (systemDark && systemDark.addEventListener) { systemDark.addEventListener("change", showTheme); }
    showTheme();
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

  // What the server last sent for each region: the script rewrites times in place, so the
  // shown HTML is never compared with a fresh answer.
  var served = {};
  document.querySelectorAll("[data-live-region]").forEach(function (region) {
    served[region.dataset.liveRegion] = region.innerHTML;
  });

  // A focused selection checkbox does not hold its region back: the selection is kept by the
  // script (below) and the focus moves to the same job's new checkbox.
  function selectionBox(node) {
    return node && node.matches && node.matches("input[data-select], input[data-select-page]");
  }

  function swapRegions(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    if (fresh.body && fresh.body.dataset.now) { syncClock(Number(fresh.body.dataset.now)); }
    document.querySelectorAll("[data-live-region]").forEach(function (region) {
      var name = region.dataset.liveRegion;
      var next = null;
      fresh.querySelectorAll("[data-live-region]").forEach(function (node) {
        if (node.dataset.liveRegion === name) { next = node; }
      });
      if (!next || next.innerHTML === served[name]) { return; }
      var focused = document.activeElement;
      var refocus = null;
      if (focused && focused !== body && region.contains(focused)) {
        if (!selectionBox(focused)) { return; }
        refocus = focused.matches("[data-select-page]") ? "input[data-select-page]"
          : "input[data-select][value='" + focused.value.replace(/[^0-9a-fA-F-]/g, "") + "']";
      }
      if (holdsSelection(region)) { return; }
      var scrollers = [region].concat(Array.prototype.slice.call(region.querySelectorAll(".scroll")));
      var kept = scrollers.map(function (node) { return [node.scrollLeft, node.scrollTop]; });
      served[name] = next.innerHTML;
      region.replaceChildren.apply(region, Array.prototype.slice.call(next.childNodes));
      var now = [region].concat(Array.prototype.slice.call(region.querySelectorAll(".scroll")));
      now.forEach(function (node, i) {
        if (kept[i]) { node.scrollLeft = kept[i][0]; node.scrollTop = kept[i][1]; }
      });
      if (refocus) {
        var again = region.querySelector(refocus);
        if (again) { again.focus({ preventScroll: true }); }
      }
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

  // confirmation for destructive forms (the bulk form asks with its count, below)
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.matches && form.matches("[data-bulk]")) {
      var question = bulkQuestion(event.submitter);
      if (question && !window.confirm(question)) { event.preventDefault(); }
      return;
    }
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  // Times: the server writes UTC; shown here relative ("3 min ago"), with the absolute time
  // in the viewer's own zone, labelled, on hover. The offset keeps "now" the server's.
  var offset = 0;
  function syncClock(serverMs) { if (serverMs) { offset = serverMs - Date.now(); } }
  syncClock(Number(body.dataset.now));
  function nowMs() { return Date.now() + offset; }

  // the same words as the server's duration filter (page_routes.duration)
  function duration(seconds) {
    seconds = Math.max(0, seconds);
    if (seconds < 0.9995) { return Math.round(seconds * 1000) + " ms"; }
    if (seconds < 9.95) { return seconds.toFixed(1) + " s"; }
    if (seconds < 60) { return Math.floor(seconds) + " s"; }
    var whole = Math.floor(seconds), minutes = Math.floor(whole / 60), secs = whole % 60;
    if (minutes < 60) { return minutes + " min" + (secs ? " " + secs + " s" : ""); }
    var hours = Math.floor(minutes / 60); minutes %= 60;
    if (hours < 24) { return hours + " h" + (minutes ? " " + minutes + " min" : ""); }
    var days = Math.floor(hours / 24); hours %= 24;
    return days + " d" + (hours ? " " + hours + " h" : "");
  }

  function relative(ms) {
    var seconds = (nowMs() - ms) / 1000;
    if (Math.abs(seconds) < 1) { return "just now"; }
    var size = Math.abs(seconds);
    // one unit is enough for "ago": 45 s, 3 min, 2 h, 1 d
    var words = size < 60 ? Math.floor(size) + " s" : duration(size).replace(/ \d+ (s|min|h)$/, "");
    return seconds > 0 ? words + " ago" : "in " + words;
  }

  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { zone = ""; }

  function absolute(date) {
    var local = date.toLocaleString(undefined, {
      year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
      second: "2-digit", hourCycle: "h23", timeZoneName: "short"
    });
    return local + (zone ? " (your time zone, " + zone + ")" : " (your time zone)");
  }

  function showTimes() {
    document.querySelectorAll("time[data-when]").forEach(function (node) {
      var date = new Date(node.getAttribute("datetime"));
      if (isNaN(date.getTime())) { return; }
      node.textContent = relative(date.getTime());
      node.title = node.dataset.when + ": " + absolute(date) + "; " + date.toISOString().slice(0, 19).replace("T", " ") + " UTC";
    });
    document.querySelectorAll("[data-since]").forEach(function (node) {
      var from = Date.parse(node.dataset.since);
      if (isNaN(from)) { return; }
      node.textContent = node.dataset.sinceLabel + " " + duration((nowMs() - from) / 1000);
    });
  }
  showTimes();
  setInterval(showTimes, 1000);
  document.addEventListener("conveyor:refreshed", showTimes);

  // Selection on the jobs list: ticked rows (kept across live refreshes while they are on the
  // page), all on the page, or all the filter matches (the server then acts on the filter).
  var bulk = document.querySelector("[data-bulk]");
  var picked = {};
  var matching = false;

  function boxes() { return Array.prototype.slice.call(document.querySelectorAll("input[data-select]")); }
  function table() { return document.querySelector("table[data-total]"); }
  function count(n) { return n.toLocaleString("en-US"); }
  function jobs(n) { return count(n) + (n === 1 ? " job" : " jobs"); }

  function matchingWords() {
    var t = table();
    if (!t) { return "all matching jobs"; }
    var total = Number(t.dataset.total);
    return t.dataset.totalExact === "yes" ? "all " + jobs(total) + " matching" : "the more than " + count(total) + " matching jobs";
  }

  function stateOf(box) {
    var row = box.closest("tr");
    return row ? row.dataset.state : "";
  }

  function eligible(button) {
    var states = (button.dataset.states || "").split(",");
    return boxes().filter(function (box) { return box.checked && states.indexOf(stateOf(box)) >= 0; }).length;
  }

  function syncSelection() {
    if (!bulk) { return; }
    var all = boxes();
    var shown = {};
    all.forEach(function (box) {
      shown[box.value] = true;
      if (matching) { picked[box.value] = true; }
      box.checked = !!picked[box.value];
    });
    Object.keys(picked).forEach(function (id) { if (!shown[id]) { delete picked[id]; } });
    var n = all.filter(function (box) { return box.checked; }).length;
    if (!all.length) { matching = false; }
    var head = document.querySelector("input[data-select-page]");
    if (head) {
      head.checked = all.length > 0 && n === all.length;
      head.indeterminate = n > 0 && n < all.length;
    }
    var t = table();
    var total = t ? Number(t.dataset.total) : 0;
    var more = t && (t.dataset.totalExact !== "yes" || total > all.length);
    var label = bulk.querySelector("[data-bulk-count]");
    var offer = bulk.querySelector("[data-select-matching]");
    var clear = bulk.querySelector("[data-select-none]");
    bulk.querySelector("[data-bulk-scope]").value = matching ? "matching" : "selected";
    bulk.dataset.scope = matching ? "matching" : "selected";
    bulk.dataset.selected = String(n);
    if (matching) {
      label.textContent = "Selected: " + matchingWords() + " (at most 10,000 a click)";
    } else if (n) {
      label.textContent = n === all.length && more ? "All " + jobs(n) + " on this page selected" : jobs(n) + " selected";
    } else {
      label.textContent = "No job selected";
    }
    offer.hidden = matching || !more || n !== all.length || !n;
    offer.textContent = "Select " + matchingWords();
    clear.hidden = !n;
    bulk.querySelectorAll("[data-bulk-action]").forEach(function (button) {
      var word = button.dataset.label || (button.dataset.label = button.textContent);
      if (matching) {
        button.disabled = false;
        button.textContent = word;
      } else {
        var k = eligible(button);
        button.disabled = k === 0;
        button.textContent = n ? word + " (" + k + ")" : word;
      }
    });
  }

  function bulkQuestion(button) {
    if (!button || !button.dataset || button.dataset.destructive === undefined) { return ""; }
    var verb = button.dataset.label || button.textContent;
    if (matching) {
      return verb + " " + matchingWords() + " that are " + button.dataset.applies + "? " +
        "At most 10,000 are changed a click.";
    }
    var k = eligible(button);
    var n = boxes().filter(function (box) { return box.checked; }).length;
    var skipped = n - k;
    return verb + " " + jobs(k) + (button.dataset.bulkAction === "delete" ? " for good" : "") + "?" +
      (skipped ? " (" + count(skipped) + " of the " + count(n) + " selected " + (skipped === 1 ? "was " : "were ") + button.dataset.passedOver + ": left as they are.)" : "");
  }

  if (bulk) {
    document.addEventListener("change", function (event) {
      var box = event.target;
      if (box.matches("input[data-select]")) {
        if (box.checked) { picked[box.value] = true; } else { delete picked[box.value]; matching = false; }
      } else if (box.matches("input[data-select-page]")) {
        matching = false;
        boxes().forEach(function (b) { if (box.checked) { picked[b.value] = true; } else { delete picked[b.value]; } });
      } else {
        return;
      }
      syncSelection();
    });
    // shift-click ticks (or unticks) every row from the last one clicked to this one
    var lastClicked = null;
    document.addEventListener("click", function (event) {
      var box = event.target;
      if (!box.matches || !box.matches("input[data-select]")) { return; }
      var all = boxes();
      var from = all.findIndex(function (b) { return b.value === lastClicked; });
      var to = all.indexOf(box);
      if (event.shiftKey && from >= 0 && to >= 0) {
        all.slice(Math.min(from, to), Math.max(from, to) + 1).forEach(function (b) {
          b.checked = box.checked;
          if (box.checked) { picked[b.value] = true; } else { delete picked[b.value]; matching = false; }
        });
      }
      lastClicked = box.value;
    });
    bulk.querySelector("[data-select-matching]").addEventListener("click", function () {
      matching = true;
      syncSelection();
    });
    bulk.querySelector("[data-select-none]").addEventListener("click", function () {
      matching = false;
      picked = {};
      syncSelection();
    });
    document.addEventListener("conveyor:refreshed", syncSelection);
    syncSelection();
  }


  var live = document.querySelector("[data-live-job]");
  if (live) {
    offerLive();
    var initial = live.dataset.state;
    var finished = ["completed", "failed", "cancelled", "skipped"];
    var timer = every(1000, function () {
      return getJSON("/api/jobs/" + encodeURIComponent(live.dataset.liveJob)).then(function (job) {
        var pct = Math.max(0, Math.min(100, Math.round(job.progress)));
        var card = live.querySelector("[data-progress-card]");
        if (card && (job.progress > 0 || job.progress_message)) { card.hidden = false; }
        live.querySelectorAll("[data-progress]").forEach(function (bar) { bar.value = pct; bar.textContent = pct + "%"; });
        var text = live.querySelector("[data-progress-text]");
        if (text) { text.textContent = pct + "%"; }
        var msg = live.querySelector("[data-progress-message]");
        if (msg) { msg.textContent = job.progress_message || ""; }
        var logs = live.querySelector("[data-logs]");
        var mine = job.logs;
        if (logs) {
          // the page follows the lines of the attempt it shows as current
          var attempt = Number(logs.dataset.logsAttempt || 0);
          mine = job.logs.filter(function (l) { return !attempt || l.attempt === attempt; });
          logs.textContent = mine.map(function (l) {
            return l.at.slice(0, 19).replace("T", " ") + "  " + l.message + "\n";
          }).join("");
        }
        var count = live.querySelector("[data-log-count]");
        if (count) { count.textContent = mine.length + " lines"; }
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
